//! Bad input gets the right status, in the envelope, and changes nothing.

mod common;

use common::{Gateway, assert_envelope};
use corral_model::PodStatus;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    token: Option<String>,
    body: Body,
    status: u16,
    /// A piece of the message that must be there.
    says: &'static str,
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn forged(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes())).expect("sign")
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn claims(exp_offset: i64) -> Value {
    let exp = now().saturating_add_signed(exp_offset);
    json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "nbf": now() - 1000, "exp": exp})
}

#[tokio::test]
async fn bad_input_table() {
    let gw = Gateway::start().await;
    let secret = gw.cfg.auth.jwt_secret.clone();
    let alice = gw.token("dev", "alice");
    let bob = gw.token("dev", "bob");
    let alice_elsewhere = gw.token("other", "alice");

    // Seed: alice's running pod, and a pod of bob's.
    let r = gw.call("POST", "/v3/pods", Some(&alice), Some(json!({"pod_id": "alicepod", "image": "x"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    gw.observe("dev", "alicepod", PodStatus::Available).await;
    let r = gw.call("POST", "/v3/pods", Some(&bob), Some(json!({"pod_id": "bobpod", "image": "x"}))).await;
    assert_eq!(r.status, 200);

    let pod = |id: &str| json!({"pod_id": id, "image": "x"});
    let expired = forged(Algorithm::HS256, &secret, &claims(-100));
    let wrong_sig = forged(Algorithm::HS256, "not-the-gateway-secret", &claims(600));
    let hs512 = forged(Algorithm::HS512, &secret, &claims(600));
    let alg_none =
        format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), b64url(claims(600).to_string().as_bytes()));
    let big = vec![b' '; 2 * 1024 * 1024];
    let mut big_body = br#"{"pod_id":"bigpod","image":"x"}"#.to_vec();
    big_body.extend_from_slice(&big);
    let a = || Some(alice.clone());

    #[rustfmt::skip]
    let cases = vec![
        Case { name: "id too short", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(pod("ab")), status: 400, says: "pod_id: must be 3 to 64" },
        Case { name: "id uppercase", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(pod("MyPod")), status: 400, says: "pod_id: must match" },
        Case { name: "id reserved", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(pod("templates")), status: 400, says: "reserved" },
        Case { name: "id wrong type", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(json!({"pod_id": 5, "image": "x"})), status: 400, says: "pod_id" },
        Case { name: "nested wrong type", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(json!({"pod_id": "abc", "image": "x", "resources": {"cpu_limit": "lots"}})), status: 400, says: "resources.cpu_limit" },
        Case { name: "unknown field", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(json!({"pod_id": "abc", "image": "x", "secret_map": {}})), status: 400, says: "unknown field `secret_map`" },
        Case { name: "restart on create", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(json!({"pod_id": "abc", "image": "x", "status_requested": "RESTART"})), status: 400, says: "status_requested" },
        Case { name: "description 300 chars", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(json!({"pod_id": "abc", "image": "x", "description": "d".repeat(300)})), status: 400, says: "description: is 300 bytes long" },
        Case { name: "every problem listed", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(json!({"pod_id": "A", "time_to_stop_default": 1})), status: 400, says: "pod is invalid: 4 problems" },
        Case { name: "body over 1 MiB", method: "POST", path: "/v3/pods", token: a(), body: Body::Raw("application/json", big_body), status: 413, says: "larger than" },
        Case { name: "bad json", method: "POST", path: "/v3/pods", token: a(), body: Body::Raw("application/json", b"{\"pod_id\":".to_vec()), status: 400, says: "invalid request body" },
        Case { name: "wrong content type", method: "POST", path: "/v3/pods", token: a(), body: Body::Raw("text/plain", b"{}".to_vec()), status: 415, says: "Content-Type: application/json" },
        Case { name: "missing token", method: "POST", path: "/v3/pods", token: None, body: Body::Json(pod("abc")), status: 401, says: "missing token" },
        Case { name: "expired token", method: "GET", path: "/v3/pods/alicepod", token: Some(expired), body: Body::None, status: 401, says: "expired" },
        Case { name: "wrong signature", method: "GET", path: "/v3/pods/alicepod", token: Some(wrong_sig), body: Body::None, status: 401, says: "signature" },
        Case { name: "hs512 token", method: "GET", path: "/v3/pods/alicepod", token: Some(hs512), body: Body::None, status: 401, says: "HS256" },
        Case { name: "alg none token", method: "DELETE", path: "/v3/pods/alicepod", token: Some(alg_none), body: Body::None, status: 401, says: "HS256" },
        Case { name: "garbage token", method: "GET", path: "/v3/pods", token: Some("garbage".into()), body: Body::None, status: 401, says: "malformed" },
        Case { name: "another user's pod", method: "GET", path: "/v3/pods/bobpod", token: a(), body: Body::None, status: 404, says: "pod 'bobpod' not found" },
        Case { name: "stop another user's pod", method: "GET", path: "/v3/pods/bobpod/stop", token: a(), body: Body::None, status: 404, says: "not found" },
        Case { name: "delete another user's pod", method: "DELETE", path: "/v3/pods/bobpod", token: a(), body: Body::None, status: 404, says: "not found" },
        Case { name: "update another user's pod", method: "PUT", path: "/v3/pods/bobpod", token: a(), body: Body::Json(json!({"description": "mine"})), status: 404, says: "not found" },
        Case { name: "another tenant's pod", method: "GET", path: "/v3/pods/alicepod", token: Some(alice_elsewhere.clone()), body: Body::None, status: 404, says: "not found" },
        Case { name: "another tenant's logs", method: "GET", path: "/v3/pods/alicepod/logs", token: Some(alice_elsewhere), body: Body::None, status: 404, says: "not found" },
        Case { name: "duplicate id", method: "POST", path: "/v3/pods", token: a(), body: Body::Json(pod("alicepod")), status: 409, says: "pod 'alicepod' already exists" },
        Case { name: "unknown pod", method: "GET", path: "/v3/pods/nosuchpod", token: a(), body: Body::None, status: 404, says: "not found" },
        Case { name: "start of a running pod", method: "GET", path: "/v3/pods/alicepod/start", token: a(), body: Body::None, status: 409, says: "pod is AVAILABLE" },
        Case { name: "update unknown field", method: "PUT", path: "/v3/pods/alicepod", token: a(), body: Body::Json(json!({"pod_id": "renamed"})), status: 400, says: "unknown field `pod_id`" },
        Case { name: "update invalid value", method: "PUT", path: "/v3/pods/alicepod", token: a(), body: Body::Json(json!({"description": "é"})), status: 400, says: "description: must be ASCII" },
        Case { name: "unknown route", method: "GET", path: "/v3/nothing", token: a(), body: Body::None, status: 404, says: "no such route" },
        Case { name: "method not allowed", method: "PATCH", path: "/v3/pods", token: a(), body: Body::None, status: 405, says: "method not allowed" },
    ];

    for case in cases {
        let before = gw.snapshot(&["dev", "other"]).await;
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("method");
        let mut req = gw.http.request(method, format!("{}{}", gw.base, case.path));
        if let Some(t) = &case.token {
            req = req.header("X-Tapis-Token", t);
        }
        req = match case.body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(ct, bytes) => req.header("content-type", ct).body(bytes),
        };
        let r = gw.send(req).await;
        assert_envelope(&r);
        assert_eq!(r.status, case.status, "{}: {:?}", case.name, r.body);
        assert!(
            r.message().contains(case.says),
            "{}: message {:?} should contain {:?}",
            case.name,
            r.message(),
            case.says
        );
        if let Some(t) = &case.token {
            assert!(!r.message().contains(t.as_str()), "{}: the token is never echoed", case.name);
        }
        assert_eq!(gw.snapshot(&["dev", "other"]).await, before, "{}: the store must be unchanged", case.name);
    }

    // Validation problems are also structured.
    let r = gw.call("POST", "/v3/pods", Some(&alice), Some(json!({"pod_id": "A", "time_to_stop_default": 1}))).await;
    let problems = r.body["metadata"]["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems.iter().all(|p| p["field"].is_string() && p["message"].is_string()));
    gw.shutdown().await;
}
