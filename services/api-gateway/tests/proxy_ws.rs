//! Websockets through the pod proxy: the upgrade is passed to the pod, messages flow both
//! ways, and a tunnel that carries traffic keeps its pool instance active.

mod common;
mod proxy_support;

use std::time::Duration;

use common::Gateway;
use futures::{SinkExt, StreamExt};
use proxy_support::{Upstream, activity_after, claimed_member, last_activity, running_pod};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(gw: &Gateway, path: &str, token: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let url = format!("{}{path}", gw.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().expect("ws request");
    req.headers_mut().insert("X-Tapis-Token", token.parse().expect("header value"));
    tokio_tungstenite::connect_async(req).await.map(|(socket, _)| socket)
}

async fn round_trip(socket: &mut Socket, text: &str) {
    socket.send(Message::Text(text.into())).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("echo in time")
        .expect("socket open")
        .expect("message");
    assert_eq!(reply, Message::Text(text.into()));
}

#[tokio::test]
async fn websocket_messages_are_echoed_through_the_proxy() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    running_pod(&gw, "acme", "alice", "wsp", None, up.endpoint()).await;

    let mut socket = connect(&gw, "/user/wsp/ws", &gw.token("acme", "alice")).await.expect("upgrade through the proxy");
    for text in ["hello", "second message", &"x".repeat(70_000)] {
        round_trip(&mut socket, text).await;
    }
    socket.close(None).await.expect("close");

    let refused = connect(&gw, "/user/wsp/ws", &gw.token("acme", "bob")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!("someone else's upgrade must be refused with 404, got {other:?}"),
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_busy_websocket_keeps_its_instance_active() {
    let gw = Gateway::start().await;
    let up = Upstream::start().await;
    let pool = "acme/lab";
    running_pod(&gw, "acme", "alice", "wsinst", Some(pool), up.endpoint()).await;
    claimed_member(&gw, pool, "wsinst", "alice").await;
    let claimed_at = last_activity(&gw, pool, "wsinst").await;

    let mut socket = connect(&gw, "/user/wsinst/ws", &gw.token("acme", "alice")).await.expect("upgrade");
    let at_upgrade = activity_after(&gw, pool, "wsinst", claimed_at, Duration::from_secs(5)).await;

    // No new HTTP request: only the tunnel's bytes can move the activity on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        round_trip(&mut socket, "ping").await;
        if last_activity(&gw, pool, "wsinst").await > at_upgrade {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "tunnel traffic is recorded as activity");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    socket.close(None).await.expect("close");
    gw.shutdown().await;
}
