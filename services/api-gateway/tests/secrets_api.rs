//! Named secrets under `/api/secrets`: create or replace, list, read metadata, delete;
//! scoped to (tenant, user); values never in any answer.

mod common;

use common::{Gateway, Resp, assert_envelope};
use corral_model::user_secret::{Owner, SecretError, SecretsKey, USER_SECRET_KIND, UserSecret};
use corral_store::Store;
use serde_json::{Value, json};

const VALUE: &str = "tok-9f8e7d6c5b4a-very-secret";

/// Sends a request; every answer's body (success or error) is kept for the leak check.
struct Client<'a> {
    gw: &'a Gateway,
    seen: Vec<String>,
}

impl Client<'_> {
    async fn raw(&mut self, method: &str, path: &str, token: &str, body: Option<&str>) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.gw.http.request(method, format!("{}{path}", self.gw.base)).header("X-Tapis-Token", token);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let r = self.gw.send(req).await;
        if r.status >= 400 {
            assert_envelope(&r);
        }
        self.seen.push(format!("{path} -> {} {} {}", r.status, r.content_type, r.body));
        r
    }

    async fn json(&mut self, method: &str, path: &str, token: &str, body: Value) -> Resp {
        self.raw(method, path, token, Some(&body.to_string())).await
    }
}

#[tokio::test]
async fn crud_scoping_and_no_value_in_any_answer() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");
    let bob = gw.token("acme", "bob");
    let alice_other_tenant = gw.token("other", "alice");
    let mut c = Client { gw: &gw, seen: Vec::new() };

    // Create, then replace.
    let r = c.json("PUT", "/api/secrets/gh-token", &alice, json!({"value": VALUE, "username": "alice-gh"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["name"], "gh-token");
    assert_eq!(r.body["username"], "alice-gh");
    let created_at = r.body["created_at"].clone();
    assert!(created_at.is_string(), "{:?}", r.body);
    let r = c.json("PUT", "/api/secrets/gh-token", &alice, json!({"value": format!("{VALUE}-2")})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["username"], Value::Null, "a replace sets the username too");
    assert_eq!(r.body["created_at"], created_at, "creation time kept");
    let r = c.json("PUT", "/api/secrets/other.one", &alice, json!({"value": "x1"})).await;
    assert_eq!(r.status, 201);

    // The stored document holds the value encrypted, for alice's gh-token only; nothing
    // stored or shown holds it in clear.
    let doc = gw.store.get_doc(USER_SECRET_KIND, "acme/alice/gh-token").await.expect("store").expect("stored");
    assert!(!doc.value.contains(VALUE), "raw stored document holds the value: {}", doc.value);
    let stored: UserSecret = serde_json::from_str(&doc.value).expect("secret json");
    assert_eq!(stored.sealed.as_ref().map(|s| s.v), Some(1), "{}", doc.value);
    let key = gw.cfg.secrets_key().expect("key");
    let alice_gh = Owner { tenant: "acme", user: "alice", name: "gh-token" };
    assert_eq!(stored.open(&key, alice_gh), Ok(format!("{VALUE}-2")));
    let moved = Owner { user: "bob", ..alice_gh };
    assert_eq!(stored.open(&key, moved), Err(SecretError::Undecryptable("gh-token".into())));
    assert!(!format!("{stored:?}").contains(VALUE), "Debug shows no value");
    // A replace seals with a fresh nonce: the same value never gives the same ciphertext.
    let again = c.json("PUT", "/api/secrets/gh-token", &alice, json!({"value": format!("{VALUE}-2")})).await;
    assert_eq!(again.status, 200);
    let doc2 = gw.store.get_doc(USER_SECRET_KIND, "acme/alice/gh-token").await.expect("store").expect("stored");
    let stored2: UserSecret = serde_json::from_str(&doc2.value).expect("secret json");
    assert_ne!(stored2.sealed.as_ref().map(|s| &s.nonce), stored.sealed.as_ref().map(|s| &s.nonce));
    assert_eq!(stored2.open(&key, alice_gh), Ok(format!("{VALUE}-2")));

    let r = c.raw("GET", "/api/secrets", &alice, None).await;
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r.body.as_array().expect("list").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["gh-token", "other.one"]);
    let r = c.raw("GET", "/api/secrets/gh-token", &alice, None).await;
    assert_eq!(r.status, 200);
    let mut keys: Vec<&str> = r.body.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "name", "updated_at", "username"]);

    // Another user, or the same user name in another tenant, sees none of it.
    for token in [&bob, &alice_other_tenant] {
        let r = c.raw("GET", "/api/secrets", token, None).await;
        assert_eq!(r.body, json!([]));
        assert_eq!(c.raw("GET", "/api/secrets/gh-token", token, None).await.status, 404);
        assert_eq!(c.raw("DELETE", "/api/secrets/gh-token", token, None).await.status, 404);
    }
    // Bob's own secret of the same name is his, and does not touch alice's.
    let r = c.json("PUT", "/api/secrets/gh-token", &bob, json!({"value": "bobs"})).await;
    assert_eq!(r.status, 201);
    assert!(gw.store.get_doc(USER_SECRET_KIND, "acme/alice/gh-token").await.expect("store").is_some());

    // Delete.
    let r = c.raw("DELETE", "/api/secrets/gh-token", &alice, None).await;
    assert_eq!((r.status, &r.body), (200, &json!({"name": "gh-token", "deleted": true})));
    assert_eq!(c.raw("GET", "/api/secrets/gh-token", &alice, None).await.status, 404);
    assert_eq!(c.raw("DELETE", "/api/secrets/gh-token", &alice, None).await.status, 404);
    assert_eq!(c.raw("GET", "/api/secrets/gh-token", &bob, None).await.status, 200);

    // No token: 401.
    let r = gw.send(gw.http.get(format!("{}/api/secrets", gw.base))).await;
    assert_eq!(r.status, 401);

    let leaked: Vec<&String> = c.seen.iter().filter(|s| s.contains(VALUE) || s.contains("bobs")).collect();
    assert!(leaked.is_empty(), "values in answers: {leaked:?}");
    gw.shutdown().await;
}

/// Bad names and bodies: 400 with the problem, nothing stored, and never the value echoed
/// (serde's own messages would quote a wrongly typed value).
#[tokio::test]
async fn bad_input_is_refused_without_echoing_it() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");
    let mut c = Client { gw: &gw, seen: Vec::new() };
    let secret_number = "987654321987654321";
    let rows: Vec<(&str, String, &str)> = vec![
        ("ghp_0123456789abcdef0123", json!({"value": "x"}).to_string(), "name"),
        ("-dash", json!({"value": "x"}).to_string(), "name"),
        ("ok", json!({"value": ""}).to_string(), "value"),
        ("ok", json!({"value": format!("{VALUE}\r\nX-Injected: 1")}).to_string(), "value"),
        ("ok", json!({"value": VALUE, "username": "a:b"}).to_string(), "username"),
        ("ok", format!(r#"{{"value": {secret_number}}}"#), "body"),
        ("ok", format!(r#"{{"value": "{VALUE}", "extra": 1}}"#), "body"),
        ("ok", format!(r#"{{"value": "{VALUE}""#), "body"),
        ("ok", format!(r#"["{VALUE}"]"#), "body"),
    ];
    for (name, body, field) in rows {
        let r = c.raw("PUT", &format!("/api/secrets/{name}"), &alice, Some(&body)).await;
        assert_eq!(r.status, 400, "{name} {body}: {:?}", r.body);
        let problems = r.body["metadata"]["problems"].to_string();
        assert!(problems.contains(&format!("\"{field}\"")), "{name} {body}: {problems}");
    }
    assert!(gw.store.list_docs(USER_SECRET_KIND).await.expect("store").is_empty(), "nothing stored");
    let leaked: Vec<&String> = c.seen.iter().filter(|s| s.contains(VALUE) || s.contains(secret_number)).collect();
    assert!(leaked.is_empty(), "input echoed: {leaked:?}");
    gw.shutdown().await;
}

/// With `secrets.key` set, values are sealed with that key (not the one derived from the token
/// key); a document from before encryption still shows its metadata and a PUT replaces it with
/// a sealed one, leaving no plain value behind.
#[tokio::test]
async fn configured_key_and_documents_from_before_encryption() {
    let hex_key = "8f".repeat(32);
    let config = format!("{}\n[secrets]\nkey = \"{hex_key}\"\n", common::BASE_CONFIG);
    let gw = Gateway::start_configured(&config, |mem| mem).await;
    let alice = gw.token("acme", "alice");
    let mut c = Client { gw: &gw, seen: Vec::new() };

    let r = c.json("PUT", "/api/secrets/gh", &alice, json!({"value": VALUE})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let doc = gw.store.get_doc(USER_SECRET_KIND, "acme/alice/gh").await.expect("store").expect("stored");
    assert!(!doc.value.contains(VALUE), "{}", doc.value);
    let stored: UserSecret = serde_json::from_str(&doc.value).expect("secret json");
    let owner = Owner { tenant: "acme", user: "alice", name: "gh" };
    let configured = SecretsKey::parse(&hex_key).expect("key");
    assert_eq!(stored.open(&configured, owner), Ok(VALUE.to_string()));
    let derived = SecretsKey::derive(gw.cfg.auth.jwt_secret.as_bytes());
    assert_eq!(stored.open(&derived, owner), Err(SecretError::Undecryptable("gh".into())));

    // A plain document as written before encryption existed.
    let legacy = json!({"name": "old", "value": "legacy-plain-value", "created": 1000, "updated": 1000});
    gw.store.put_doc(USER_SECRET_KIND, "acme/alice/old", &legacy.to_string(), 0).await.expect("put");
    let r = c.raw("GET", "/api/secrets/old", &alice, None).await;
    assert_eq!((r.status, &r.body["name"]), (200, &json!("old")), "{:?}", r.body);
    let legacy_created = r.body["created_at"].clone();
    assert!(legacy_created.is_string(), "{:?}", r.body);
    let r = c.json("PUT", "/api/secrets/old", &alice, json!({"value": "new-value-123"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["created_at"], legacy_created, "creation time kept");
    let doc = gw.store.get_doc(USER_SECRET_KIND, "acme/alice/old").await.expect("store").expect("stored");
    assert!(!doc.value.contains("legacy-plain") && !doc.value.contains("new-value"), "{}", doc.value);
    let stored: UserSecret = serde_json::from_str(&doc.value).expect("secret json");
    assert_eq!(stored.open(&configured, Owner { name: "old", ..owner }), Ok("new-value-123".to_string()));

    let leaked: Vec<&String> = c.seen.iter().filter(|s| s.contains(VALUE) || s.contains("legacy-plain")).collect();
    assert!(leaked.is_empty(), "values in answers: {leaked:?}");
    gw.shutdown().await;
}
