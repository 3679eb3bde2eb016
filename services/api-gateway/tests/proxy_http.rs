//! The pod proxy over plain HTTP: routing by path and by `Host`, who may pass, what is
//! forwarded, CORS, and activity recorded for pool instances.

mod common;
mod proxy_support;

use std::time::Duration;

use common::Gateway;
use corral_model::{Endpoint, PodStatus};
use proxy_support::{Upstream, activity_after, claimed_member, last_activity, running_pod, set_status};
use reqwest::header;
use serde_json::Value;

async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = gw.http.get(format!("{}{path}", gw.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request sent")
}

async fn described(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "proxied request answered");
    resp.json().await.expect("upstream description")
}

#[tokio::test]
async fn the_owner_reaches_the_pod_by_path_and_by_host() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    running_pod(&gw, "acme", "alice", "web1", None, up.endpoint()).await;
    let alice = gw.token("acme", "alice");

    let seen = described(get(&gw, "/user/web1/tree/a.txt?x=1&y=2", &[("X-Tapis-Token", &alice)]).await).await;
    assert_eq!(seen["path"], "/user/web1/tree/a.txt", "the path is forwarded unchanged");
    assert_eq!(seen["query"], "x=1&y=2");
    assert_eq!(seen["x-tapis-token"], Value::Null, "the caller's token is not forwarded");

    let bearer = format!("Bearer {alice}");
    let seen =
        described(get(&gw, "/lab?k=v", &[("Host", "web1.pods.localhost:8000"), ("Authorization", &bearer)]).await)
            .await;
    assert_eq!((seen["path"].as_str(), seen["query"].as_str()), (Some("/lab"), Some("k=v")));
    assert_eq!(seen["authorization"], Value::Null);
    assert_eq!(seen["host"], "web1.pods.localhost:8000", "the pod sees the public host");
    assert_eq!(seen["x-forwarded-host"], "web1.pods.localhost:8000");

    // By Host, API paths are the pod's too.
    let cookie = format!("theme=dark; corral-token={alice}");
    let seen = described(get(&gw, "/v3/pods", &[("Host", "web1.pods.localhost"), ("Cookie", &cookie)]).await).await;
    assert_eq!(seen["path"], "/v3/pods");
    assert_eq!(seen["cookie"], "theme=dark", "the token cookie is not forwarded, other cookies are");

    // Methods other than GET, with a body.
    let r = gw
        .http
        .put(format!("{}/user/web1/api/contents", gw.base))
        .header("X-Tapis-Token", &alice)
        .body("hello")
        .send()
        .await
        .expect("put sent");
    assert_eq!(described(r).await["method"], "PUT");

    // The API itself is untouched.
    let r = gw.call("GET", "/v3/pods/web1", Some(&alice), None).await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn others_are_refused_without_learning_anything() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    running_pod(&gw, "acme", "alice", "web2", None, up.endpoint()).await;

    let r = get(&gw, "/user/web2/", &[]).await;
    assert_eq!(r.status(), 401, "no token");
    let r = get(&gw, "/user/web2/", &[("X-Tapis-Token", "not-a-token")]).await;
    assert_eq!(r.status(), 401, "bad token");

    let mut bodies = Vec::new();
    for (tenant, user, path) in
        [("acme", "bob", "/user/web2/"), ("other", "alice", "/user/web2/"), ("acme", "bob", "/user/nosuchpod/")]
    {
        let r = get(&gw, path, &[("X-Tapis-Token", &gw.token(tenant, user))]).await;
        assert_eq!(r.status(), 404, "{tenant}/{user} on {path}");
        let body: Value = r.json().await.expect("error envelope");
        bodies.push(body["message"].as_str().expect("message").replace("nosuchpod", "web2"));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "someone else's pod looks exactly like a missing one: {bodies:?}");
    let r = get(&gw, "/", &[("Host", "web2.pods.localhost"), ("X-Tapis-Token", &gw.token("acme", "bob"))]).await;
    assert_eq!(r.status(), 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn pods_not_serving_are_unavailable_or_bad_gateway() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");
    let up = Upstream::start().await;
    running_pod(&gw, "acme", "alice", "web3", None, up.endpoint()).await;
    set_status(&gw, "acme", "web3", PodStatus::Creating, None).await;
    let r = get(&gw, "/user/web3/", &[("X-Tapis-Token", &alice)]).await;
    assert_eq!(r.status(), 503, "not running yet");

    // Running, but nothing listens at its endpoint.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    set_status(&gw, "acme", "web3", PodStatus::Available, Some(Endpoint { host: "127.0.0.1".into(), port })).await;
    let r = get(&gw, "/user/web3/", &[("X-Tapis-Token", &alice)]).await;
    assert_eq!(r.status(), 502);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_query_token_sets_the_cookie_and_is_not_forwarded() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    running_pod(&gw, "acme", "alice", "web4", None, up.endpoint()).await;
    let alice = gw.token("acme", "alice");

    let r = get(&gw, &format!("/user/web4/tree?a=1&token={alice}"), &[]).await;
    let set_cookie = r.headers().get(header::SET_COOKIE).expect("cookie set").to_str().expect("ascii").to_string();
    assert!(set_cookie.starts_with(&format!("corral-token={alice};")), "{set_cookie}");
    assert!(set_cookie.contains("Path=/user/web4/") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    let seen = described(r).await;
    assert_eq!(seen["query"], "a=1", "the token is taken out of the query");

    let cookie = format!("corral-token={alice}");
    let r = get(&gw, "/user/web4/next", &[("Cookie", &cookie)]).await;
    assert!(r.headers().get(header::SET_COOKIE).is_none(), "a cookie is set only after a query token");
    assert_eq!(described(r).await["path"], "/user/web4/next");
    gw.shutdown().await;
}

#[tokio::test]
async fn cors_follows_the_pods_networking_settings() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    running_pod(&gw, "acme", "alice", "web5", None, up.endpoint()).await;
    let alice = gw.token("acme", "alice");

    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, format!("{}/user/web5/api", gw.base))
            .header("X-Tapis-Token", &alice)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .send()
    };
    let r = preflight("https://app.example").await.expect("preflight");
    assert_eq!(r.status(), 204, "answered by the proxy");
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-methods"], "GET, PUT");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-max-age"], "50");
    let r = preflight("https://evil.example").await.expect("preflight");
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    let r = get(&gw, "/user/web5/x", &[("X-Tapis-Token", &alice), ("Origin", "https://app.example")]).await;
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = get(&gw, "/user/web5/x", &[("X-Tapis-Token", &alice), ("Origin", "https://evil.example")]).await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn traffic_to_a_claimed_instance_is_recorded_as_activity() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    let pool = "acme/notebook";
    running_pod(&gw, "acme", "alice", "inst1", Some(pool), up.endpoint()).await;
    claimed_member(&gw, pool, "inst1", "alice").await;
    let alice = gw.token("acme", "alice");
    let claimed_at = last_activity(&gw, pool, "inst1").await;

    described(get(&gw, "/user/inst1/", &[("X-Tapis-Token", &alice)]).await).await;
    let first = activity_after(&gw, pool, "inst1", claimed_at, Duration::from_secs(5)).await;

    // Requests keep coming; each instance's activity is written at most once per interval.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let second = loop {
        described(get(&gw, "/user/inst1/again", &[("X-Tapis-Token", &alice)]).await).await;
        let t = last_activity(&gw, pool, "inst1").await;
        if t > first {
            break t;
        }
        assert!(tokio::time::Instant::now() < deadline, "later traffic is recorded too");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The write runs a moment after the decision, so allow for scheduling.
    assert!(second - first >= 900, "writes are about the interval apart: {first} then {second}");
    gw.shutdown().await;
}
