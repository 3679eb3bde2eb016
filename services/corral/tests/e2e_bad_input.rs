//! Bad input against the real stack (Redis, RabbitMQ, Docker): every case gets the right
//! status code and changes nothing — no record, no container.

mod common;

use common::{Spawners, Stack};
use serde_json::{Value, json};

fn token_with(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_inputs_get_the_right_codes_and_change_nothing() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let mine = json!({"pod_id": "mine", "image": common::IMAGE, "status_requested": "OFF"});
    stack.create(mine.clone()).await;
    let before = stack.store.list_tenant("dev").await.expect("list");

    let now = common::now_ms() / 1000;
    let secret = stack.cfg.auth.jwt_secret.clone();
    let expired = token_with(
        &secret,
        json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "exp": now - 3600, "nbf": now - 7200}),
    );
    let not_yet = token_with(
        &secret,
        json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "exp": now + 7200, "nbf": now + 3600}),
    );
    let forged = token_with(
        "some-other-secret-that-is-long",
        json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "exp": now + 3600}),
    );
    let bob = stack.token_for("dev", "bob");
    let other_tenant = stack.token_for("other", "alice");
    let good = stack.token.clone();
    let long = "x".repeat(300);

    // (name, method, path, body, token, expected status)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<Value>, Option<&'a str>, u16);
    let cases: Vec<Case<'_>> = vec![
        ("short id", "POST", "/v3/pods", Some(json!({"pod_id": "ab", "image": common::IMAGE})), Some(&good), 400),
        (
            "uppercase id",
            "POST",
            "/v3/pods",
            Some(json!({"pod_id": "Upper", "image": common::IMAGE})),
            Some(&good),
            400,
        ),
        (
            "reserved id",
            "POST",
            "/v3/pods",
            Some(json!({"pod_id": "images", "image": common::IMAGE})),
            Some(&good),
            400,
        ),
        ("wrong type", "POST", "/v3/pods", Some(json!({"pod_id": "okpod", "image": 5})), Some(&good), 400),
        (
            "unknown field",
            "POST",
            "/v3/pods",
            Some(json!({"pod_id": "okpod", "image": "x", "colour": "red"})),
            Some(&good),
            400,
        ),
        (
            "oversize value",
            "POST",
            "/v3/pods",
            Some(json!({"pod_id": "okpod", "image": "x", "description": long})),
            Some(&good),
            400,
        ),
        ("missing token", "POST", "/v3/pods", Some(json!({"pod_id": "okpod", "image": "x"})), None, 401),
        ("expired token", "POST", "/v3/pods", Some(json!({"pod_id": "okpod", "image": "x"})), Some(&expired), 401),
        (
            "token not yet valid",
            "POST",
            "/v3/pods",
            Some(json!({"pod_id": "okpod", "image": "x"})),
            Some(&not_yet),
            401,
        ),
        ("wrong signature", "POST", "/v3/pods", Some(json!({"pod_id": "okpod", "image": "x"})), Some(&forged), 401),
        ("another user's pod", "GET", "/v3/pods/mine", None, Some(&bob), 404),
        ("another user's start", "GET", "/v3/pods/mine/start", None, Some(&bob), 404),
        ("another user's delete", "DELETE", "/v3/pods/mine", None, Some(&bob), 404),
        ("another tenant's pod", "GET", "/v3/pods/mine", None, Some(&other_tenant), 404),
        ("duplicate id", "POST", "/v3/pods", Some(mine.clone()), Some(&good), 409),
        ("unknown pod", "GET", "/v3/pods/nosuchpod", None, Some(&good), 404),
    ];
    let mut failures = Vec::new();
    for (name, method, path, body, token, want) in cases {
        let mut req = stack.http.request(method.parse().expect("method"), format!("{}{path}", stack.base));
        if let Some(t) = token {
            req = req.header("X-Tapis-Token", t);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let code = resp.status().as_u16();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if code != want || ctype != "application/json" || v["status"] != "error" {
            failures.push(format!("{name}: got {code} ({ctype}) {v}, want {want}"));
        }
        if let Some(t) = token {
            assert!(!v.to_string().contains(t), "{name}: the token is echoed back");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    assert_eq!(stack.store.list_tenant("dev").await.expect("list"), before, "dev tenant unchanged");
    assert!(stack.store.list_tenant("other").await.expect("list").is_empty(), "nothing created elsewhere");
    assert!(stack.runtime.list().await.expect("containers").is_empty(), "no container was started");
    stack.shutdown().await;
}
