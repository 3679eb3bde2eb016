//! The pod proxy's access rules: preflights without a token, `ip_allow_list`, users with
//! granted permissions, and `tapis_auth` with its allowed users and identity headers.

mod common;
mod proxy_support;

use common::Gateway;
use corral_model::PodStatus;
use proxy_support::{Upstream, running_pod, set_status};
use serde_json::{Value, json};

async fn get(gw: &Gateway, path: &str, token: &str) -> reqwest::Response {
    gw.http.get(format!("{}{path}", gw.base)).header("X-Tapis-Token", token).send().await.expect("request sent")
}

/// A pod of `alice` in `acme` with `networking.default` as given, AVAILABLE at `up`.
async fn pod_with_networking(gw: &Gateway, up: &Upstream, pod_id: &str, networking: Value) {
    let body = json!({"pod_id": pod_id, "image": "corral-test/busybox", "networking": {"default": networking}});
    let r = gw.call("POST", "/v3/pods", Some(&gw.token("acme", "alice")), Some(body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    set_status(gw, "acme", pod_id, PodStatus::Available, Some(up.endpoint())).await;
}

#[tokio::test]
async fn preflights_without_a_token_follow_the_pods_cors_settings() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    running_pod(&gw, "acme", "alice", "corsy", None, up.endpoint()).await;
    let preflight = |origin: &'static str, path: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", gw.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .send()
    };
    let r = preflight("https://app.example", "/user/corsy/api").await.expect("preflight");
    assert_eq!(r.status(), 204, "answered without a token");
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(r.headers()["access-control-allow-methods"], "GET, PUT");
    let r = preflight("https://evil.example", "/user/corsy/api").await.expect("preflight");
    assert_eq!(r.status(), 403);
    // A pod without CORS settings, or one nobody has, still needs a token.
    let r = preflight("https://app.example", "/user/nosuchpod/api").await.expect("preflight");
    assert_eq!(r.status(), 401);

    // The same pod id in a second tenant makes the tenant ambiguous: a token is needed.
    running_pod(&gw, "dev", "bob", "corsy", None, up.endpoint()).await;
    let r = preflight("https://app.example", "/user/corsy/api").await.expect("preflight");
    assert_eq!(r.status(), 401);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_ip_allow_list_restricts_the_peer_address() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    let alice = gw.token("acme", "alice");
    pod_with_networking(&gw, &up, "ipclosed", json!({"port": 8000, "ip_allow_list": ["10.0.0.0/8"]})).await;
    pod_with_networking(&gw, &up, "ipopen", json!({"port": 8000, "ip_allow_list": ["10.0.0.0/8", "127.0.0.0/8"]}))
        .await;
    let r = get(&gw, "/user/ipclosed/x", &alice).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.expect("json");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("127.0.0.1") && m.contains("ip_allow_list")));
    assert_eq!(get(&gw, "/user/ipopen/x", &alice).await.status(), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn granted_users_reach_the_pod_by_level() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    let alice = gw.token("acme", "alice");
    pod_with_networking(&gw, &up, "shared", json!({"port": 8000})).await;
    for (user, level) in [("bob", "USER"), ("carol", "READ")] {
        let r = gw
            .call("POST", "/v3/pods/shared/permissions", Some(&alice), Some(json!({"user": user, "level": level})))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    assert_eq!(get(&gw, "/user/shared/x", &gw.token("acme", "bob")).await.status(), 200, "USER passes");
    assert_eq!(get(&gw, "/user/shared/x", &gw.token("acme", "carol")).await.status(), 403, "READ is not enough");
    assert_eq!(get(&gw, "/user/shared/x", &gw.token("acme", "dave")).await.status(), 404, "strangers learn nothing");
    assert_eq!(get(&gw, "/user/shared/x", &gw.token("acme", "root")).await.status(), 404, "not even tenant admins");
    gw.shutdown().await;
}

#[tokio::test]
async fn tapis_auth_admits_the_allowed_users_and_names_them_to_the_pod() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    pod_with_networking(
        &gw,
        &up,
        "authd",
        json!({"port": 8000, "tapis_auth": true, "tapis_auth_allowed_users": ["erin"],
               "tapis_auth_response_headers": {"X-Remote-User": "<<tapisusername>>"}}),
    )
    .await;
    let r = get(&gw, "/user/authd/x", &gw.token("acme", "erin")).await;
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.expect("upstream description");
    assert_eq!(seen["x-tapis-username"], "erin");
    assert_eq!(seen["x-remote-user"], "erin");
    assert_eq!(get(&gw, "/user/authd/x", &gw.token("acme", "frank")).await.status(), 404);
    assert_eq!(
        get(&gw, "/user/authd/x", &gw.token("acme", "alice")).await.status(),
        403,
        "the owner is not on the list"
    );
    gw.shutdown().await;
}
