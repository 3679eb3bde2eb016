//! Requests from other systems over the bus: same behaviour as HTTP, replies on `reply_to`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::fault_store::{FaultStore, Faults};
use common::{Gateway, WAIT, kick_of, next_kick};
use corral_bus::{Bus, ConsumeOptions, Consumer, Delivery, OutMessage};
use corral_protocol::topology::{
    DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, HEADER_ATTEMPTS, HEADER_ERROR, HEADER_TOKEN, REQUESTS_EXCHANGE,
    REQUESTS_ROUTING_KEY,
};
use corral_protocol::{CONTENT_JSON, CONTENT_MSGPACK, Envelope, ExternalOp, ExternalReply, ExternalRequest};
use futures::StreamExt;
use serde_json::json;

struct Requester {
    reply_queue: String,
    replies: Consumer,
}

impl Requester {
    async fn new(gw: &Gateway) -> Self {
        let key = format!("test.replies.{}", uuid::Uuid::new_v4());
        let (reply_queue, replies) =
            gw.bus.subscribe(EVENTS_EXCHANGE, &key, ConsumeOptions::default()).await.expect("reply queue");
        Self { reply_queue, replies }
    }

    async fn send(&self, gw: &Gateway, body: Vec<u8>, content_type: &str, token: Option<&str>, correlation: &str) {
        let mut msg = OutMessage {
            body,
            content_type: Some(content_type.to_string()),
            reply_to: Some(self.reply_queue.clone()),
            correlation_id: Some(correlation.to_string()),
            ..OutMessage::default()
        };
        if let Some(t) = token {
            msg = msg.header(HEADER_TOKEN, t);
        }
        gw.bus.publish(REQUESTS_EXCHANGE, REQUESTS_ROUTING_KEY, msg).await.expect("publish request");
    }

    async fn reply(&mut self) -> (Delivery, ExternalReply) {
        let d = tokio::time::timeout(WAIT, self.replies.stream.next()).await.expect("reply in time").expect("stream");
        let reply: ExternalReply = corral_protocol::decode(&d.body, d.content_type.as_deref()).expect("reply decodes");
        d.ack().await.expect("ack reply");
        (d, reply)
    }
}

fn json_request(req: &ExternalRequest) -> Vec<u8> {
    serde_json::to_vec(&Envelope { v: 1, body: req }).expect("encode json")
}

async fn dead_letters(gw: &Gateway) -> Consumer {
    gw.bus.consume(DEAD_LETTER_QUEUE, ConsumeOptions::default()).await.expect("consume dead letters")
}

async fn next_dead_letter(c: &mut Consumer) -> Delivery {
    let d = tokio::time::timeout(WAIT, c.stream.next()).await.expect("dead letter in time").expect("stream");
    d.ack().await.expect("ack dead letter");
    d
}

#[tokio::test]
async fn spawn_and_get_over_the_bus_reply_in_the_request_encoding() {
    let gw = Gateway::start().await;
    let token = gw.token("dev", "alice");
    let mut req = Requester::new(&gw).await;
    let mut shard = gw.shard_consumer("dev", "buspod").await;

    let spawn = ExternalRequest {
        op: ExternalOp::Spawn,
        pod_id: Some("buspod".into()),
        pod: Some(json!({"image": "corral-test/busybox", "networking": {"default": {"port": 8080}}})),
    };
    req.send(&gw, json_request(&spawn), CONTENT_JSON, Some(&token), "corr-1").await;
    let (d, reply) = req.reply().await;
    assert_eq!(d.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(d.content_type.as_deref(), Some(CONTENT_JSON));
    assert!(reply.ok, "{reply:?}");
    let pod = reply.pod.expect("pod");
    assert_eq!((pod["pod_id"].clone(), pod["status"].clone()), (json!("buspod"), json!("REQUESTED")));
    assert_eq!(pod["networking"]["default"]["url"], "buspod.pods.localhost");
    assert_eq!(gw.record("dev", "buspod").await.desired.value.owner, "alice");
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "buspod", 1));

    // MessagePack in, MessagePack out; the same visibility rules as HTTP.
    let get = ExternalRequest { op: ExternalOp::Get, pod_id: Some("buspod".into()), pod: None };
    let body = corral_protocol::encode(&get).expect("msgpack");
    req.send(&gw, body.clone(), CONTENT_MSGPACK, Some(&token), "corr-2").await;
    let (d, reply) = req.reply().await;
    assert_eq!((d.correlation_id.as_deref(), d.content_type.as_deref()), (Some("corr-2"), Some(CONTENT_MSGPACK)));
    assert_eq!(reply.pod.expect("pod")["pod_id"], "buspod");
    req.send(&gw, body, CONTENT_MSGPACK, Some(&gw.token("dev", "bob")), "corr-3").await;
    let (_, reply) = req.reply().await;
    assert!(!reply.ok);
    assert_eq!(reply.error.expect("error").status, 404);

    // Stop and delete work too.
    let stop = ExternalRequest { op: ExternalOp::Stop, pod_id: Some("buspod".into()), pod: None };
    req.send(&gw, json_request(&stop), CONTENT_JSON, Some(&token), "corr-4").await;
    let (_, reply) = req.reply().await;
    assert_eq!(reply.pod.expect("pod")["status_requested"], "OFF");
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "buspod", 2));
    let delete = ExternalRequest { op: ExternalOp::Delete, pod_id: Some("buspod".into()), pod: None };
    req.send(&gw, json_request(&delete), CONTENT_JSON, Some(&token), "corr-5").await;
    let (_, reply) = req.reply().await;
    assert!(reply.ok && reply.pod.is_none(), "{reply:?}");
    assert!(gw.record("dev", "buspod").await.desired.value.deleted);
    gw.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_are_answered_and_only_malformed_ones_dead_lettered() {
    let gw = Gateway::start().await;
    let token = gw.token("dev", "alice");
    let mut req = Requester::new(&gw).await;
    let mut dlq = dead_letters(&gw).await;

    // Understood but invalid: an error reply with every problem, and no dead letter.
    let bad_pod = ExternalRequest { op: ExternalOp::Spawn, pod_id: None, pod: Some(json!({"pod_id": "X"})) };
    req.send(&gw, json_request(&bad_pod), CONTENT_JSON, Some(&token), "invalid").await;
    let (_, reply) = req.reply().await;
    let err = reply.error.expect("error");
    assert_eq!((reply.ok, err.status, err.problems.len()), (false, 400, 3), "{err:?}");
    let before = gw.snapshot(&["dev"]).await;
    assert!(before.is_empty());

    // Malformed: answered and dead-lettered with the reason, in order.
    let unknown_op = br#"{"v":1,"body":{"op":"explode","pod_id":"abc"}}"#.to_vec();
    let no_token = json_request(&ExternalRequest { op: ExternalOp::Get, pod_id: Some("abc".into()), pod: None });
    let no_pod_id = json_request(&ExternalRequest { op: ExternalOp::Start, pod_id: None, pod: None });
    // (correlation id, body, content type, token, reply status, reason contains)
    type Case<'a> = (&'a str, Vec<u8>, &'a str, Option<&'a str>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("garbage", b"\xc1\xc1 not msgpack".to_vec(), CONTENT_MSGPACK, Some(&token), 400, "undecodable"),
        ("unknown-op", unknown_op, CONTENT_JSON, Some(&token), 400, "explode"),
        ("no-token", no_token, CONTENT_JSON, None, 401, "missing token"),
        ("no-pod-id", no_pod_id, CONTENT_JSON, Some(&token), 400, "'start' needs 'pod_id'"),
    ];
    for (name, body, ct, tok, status, says) in cases {
        req.send(&gw, body.clone(), ct, tok, name).await;
        let (d, reply) = req.reply().await;
        assert_eq!(d.correlation_id.as_deref(), Some(name));
        let err = reply.error.expect("error");
        assert_eq!(err.status, status, "{name}: {err:?}");
        assert!(err.message.contains(says), "{name}: {:?} should contain {says:?}", err.message);
        let dead = next_dead_letter(&mut dlq).await;
        assert_eq!(dead.correlation_id.as_deref(), Some(name), "the invalid pod was not dead-lettered");
        assert_eq!(dead.body, body);
        assert!(dead.headers.get(HEADER_ERROR).is_some_and(|r| r.contains(says)), "{name}: {:?}", dead.headers);
    }
    assert_eq!(gw.snapshot(&["dev"]).await, before, "nothing was stored");
    gw.shutdown().await;
}

#[tokio::test]
async fn store_outage_retries_then_dead_letters_with_a_final_reply() {
    let faults = Arc::new(Faults::default());
    faults.down.store(true, Ordering::SeqCst);
    let gw = Gateway::start_with(FaultStore::wrap(faults.clone())).await;
    let token = gw.token("dev", "alice");
    let mut req = Requester::new(&gw).await;
    let mut dlq = dead_letters(&gw).await;

    // HTTP says 503 in the envelope; health says so too.
    let r = gw.call("GET", "/v3/pods/healthcheck", None, None).await;
    assert_eq!(r.status, 503);
    let r = gw.call("GET", "/v3/pods", Some(&token), None).await;
    assert_eq!(r.status, 503, "{:?}", r.body);

    let get = ExternalRequest { op: ExternalOp::Get, pod_id: Some("abc".into()), pod: None };
    req.send(&gw, json_request(&get), CONTENT_JSON, Some(&token), "outage").await;
    let (_, reply) = req.reply().await;
    assert_eq!(reply.error.expect("error").status, 503);
    let dead = next_dead_letter(&mut dlq).await;
    let max = gw.cfg.spawner.max_delivery_attempts.to_string();
    assert_eq!(dead.headers.get(HEADER_ATTEMPTS), Some(&max), "retried up to the limit: {:?}", dead.headers);

    // Once the store is back, the same request succeeds (404: there is no such pod).
    faults.down.store(false, Ordering::SeqCst);
    req.send(&gw, json_request(&get), CONTENT_JSON, Some(&token), "after").await;
    let (d, reply) = req.reply().await;
    assert_eq!(d.correlation_id.as_deref(), Some("after"));
    assert_eq!(reply.error.expect("error").status, 404);
    gw.shutdown().await;
}
