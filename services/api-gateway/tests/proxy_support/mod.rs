//! What the proxy tests share: a stand-in pod (an HTTP server that describes each request
//! it gets, and echoes websockets) and pods registered as if a spawner had started them.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use corral_model::{Endpoint, Millis, PodStatus};
use corral_store::{Claim, MemberState, Store};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::common::Gateway;

/// A stand-in pod on a loopback port; stopped when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Self {
        let app = Router::new().fallback(describe_or_echo);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, task }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint { host: self.addr.ip().to_string(), port: self.addr.port() }
    }
}

/// Paths ending in `/ws` echo websocket messages; every other request is answered with a
/// description of what arrived, so tests can see what the proxy forwarded.
async fn describe_or_echo(ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>, req: Request) -> Response {
    if let Ok(ws) = ws
        && req.uri().path().ends_with("/ws")
    {
        return ws.on_upgrade(echo).into_response();
    }
    let header = |h: &HeaderMap, name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let h = req.headers();
    Json(json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "host": header(h, "host"),
        "cookie": header(h, "cookie"),
        "x-tapis-token": header(h, "x-tapis-token"),
        "authorization": header(h, "authorization"),
        "x-forwarded-host": header(h, "x-forwarded-host"),
        "x-tapis-username": header(h, "x-tapis-username"),
        "x-remote-user": header(h, "x-remote-user"),
    }))
    .into_response()
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        if socket.send(msg).await.is_err() {
            break;
        }
    }
}

/// Creates `pod_id` for `user` of `tenant` through the API (optionally a member of pool
/// `pool`), then plays the spawner: the pod is AVAILABLE at `endpoint`.
pub async fn running_pod(gw: &Gateway, tenant: &str, user: &str, pod_id: &str, pool: Option<&str>, endpoint: Endpoint) {
    let mut env = serde_json::Map::new();
    if let Some(p) = pool {
        env.insert(corral_model::pool::POOL_LABEL_ENV.into(), Value::String(p.into()));
    }
    let body = json!({"pod_id": pod_id, "image": "corral-test/busybox", "environment_variables": env,
        "networking": {"default": {"protocol": "http", "port": 8000,
            "cors_allow_origins": ["https://app.example"], "cors_allow_methods": ["GET", "PUT"],
            "cors_allow_credentials": true, "cors_max_age": 50}}});
    let r = gw.call("POST", "/v3/pods", Some(&gw.token(tenant, user)), Some(body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    set_status(gw, tenant, pod_id, PodStatus::Available, Some(endpoint)).await;
}

/// Plays the spawner: the pod's observed status and endpoint.
pub async fn set_status(gw: &Gateway, tenant: &str, pod_id: &str, status: PodStatus, endpoint: Option<Endpoint>) {
    let rec = gw.record(tenant, pod_id).await;
    let mut obs = rec.observed.value.clone();
    obs.status = status;
    obs.endpoint = endpoint;
    obs.observed_generation = rec.desired.value.generation;
    gw.store.put_observed(&rec.desired.value.key(), &obs, rec.observed.version).await.expect("put observed");
}

/// Plays the pool-manager and a claim: `pod_id` becomes a ready member of `pool`, claimed
/// by `user`.
pub async fn claimed_member(gw: &Gateway, pool: &str, pod_id: &str, user: &str) {
    assert!(gw.store.pool_reserve(pool, pod_id, 1, 10, 1).await.expect("reserve"));
    assert!(gw.store.pool_ready(pool, pod_id, 2).await.expect("ready"));
    let claim = gw.store.pool_claim(pool, user, "unused", 1, 10, 3).await.expect("claim");
    assert_eq!(claim, Claim::Ready(pod_id.to_string()));
}

/// The last activity recorded for a claimed member.
pub async fn last_activity(gw: &Gateway, pool: &str, pod_id: &str) -> Millis {
    let members = gw.store.pool_members(pool).await.expect("members");
    let m = members.iter().find(|m| m.id == pod_id).expect("member exists");
    assert_eq!(m.state, MemberState::Claimed);
    m.last_activity
}

/// Polls `last_activity` until it passes `after`, within `within`.
pub async fn activity_after(gw: &Gateway, pool: &str, pod_id: &str, after: Millis, within: Duration) -> Millis {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let t = last_activity(gw, pool, pod_id).await;
        if t > after {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "no activity after {after} recorded within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
