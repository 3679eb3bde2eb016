//! Another system publishes a spawn request straight to `corral.requests` with plain AMQP
//! (no Corral code on its side), gets its reply on its own queue, and the pod runs.

mod common;

use std::time::Duration;

use common::{Spawners, Stack, httpd_pod};
use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

async fn request(stack: &Stack, body: serde_json::Value, token: Option<&str>) -> serde_json::Value {
    let conn = Connection::connect(&common::amqp_url(), ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let q = ch
        .queue_declare(
            ShortString::from(""),
            QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("reply queue");
    let mut replies = ch
        .basic_consume(
            q.name().clone(),
            ShortString::from("client"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume replies");
    let mut headers = FieldTable::default();
    if let Some(t) = token {
        headers.insert(ShortString::from("x-tapis-token"), AMQPValue::LongString(LongString::from(t)));
    }
    let props = BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_reply_to(q.name().clone())
        .with_correlation_id(ShortString::from("req-42"))
        .with_delivery_mode(2)
        .with_headers(headers);
    let payload = serde_json::to_vec(&serde_json::json!({"v": 1, "body": body})).expect("json");
    let exchange = format!("{}.corral.requests", stack.ns);
    ch.basic_publish(
        ShortString::from(exchange.as_str()),
        ShortString::from("pods"),
        BasicPublishOptions::default(),
        &payload,
        props,
    )
    .await
    .expect("publish")
    .await
    .expect("confirm");
    let reply = tokio::time::timeout(Duration::from_secs(10), replies.next())
        .await
        .expect("a reply within 10 s")
        .expect("stream open")
        .expect("delivery");
    reply.ack(BasicAckOptions::default()).await.expect("ack");
    let corr = reply.properties.correlation_id().as_ref().map(|c| c.to_string());
    assert_eq!(corr.as_deref(), Some("req-42"));
    let v: serde_json::Value = serde_json::from_slice(&reply.data).expect("json reply");
    let _ = conn.close(0, "done".into()).await;
    v["body"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawn_request_from_another_system_gets_a_reply_and_runs() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let reply =
        request(&stack, serde_json::json!({"op": "spawn", "pod": httpd_pod("fromamqp")}), Some(&stack.token)).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["pod"]["pod_id"], "fromamqp");
    stack.wait_status("fromamqp", "AVAILABLE", Duration::from_secs(60)).await;

    let bad = request(&stack, serde_json::json!({"op": "spawn", "pod": {"pod_id": "X"}}), Some(&stack.token)).await;
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["error"]["status"], 400, "{bad}");

    let anon = request(&stack, serde_json::json!({"op": "get", "pod_id": "fromamqp"}), None).await;
    assert_eq!(anon["ok"], false);
    assert_eq!(anon["error"]["status"], 401, "{anon}");
    stack.shutdown().await;
}
