//! Bus messages and their versioned encoding. Types only: no I/O.
//!
//! Every message body is MessagePack with named fields (`rmp_serde::to_vec_named`) wrapped in
//! an [`Envelope`] that carries the protocol version, so a consumer can refuse a message
//! from a newer producer with a clear reason instead of misreading it. Requests from other
//! systems on `corral.requests` may also be JSON (by `content_type`). Secrets never travel in
//! messages: they are resolved by the spawner from the store when it starts a container.

pub mod request;
pub mod topology;

use corral_model::{Endpoint, Millis, PodStatus};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use request::{ExternalOp, ExternalReply, ExternalRequest, ReplyError};

/// Version of the message schema this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Content types understood on the bus.
pub const CONTENT_MSGPACK: &str = "application/msgpack";
pub const CONTENT_JSON: &str = "application/json";

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("message is not valid {format}: {detail}")]
    Decode { format: &'static str, detail: String },
    #[error("message encoding failed: {0}")]
    Encode(String),
    #[error("protocol version {got} is newer than the supported version {PROTOCOL_VERSION}")]
    Version { got: u16 },
    #[error("unsupported content type '{0}' (use application/msgpack or application/json)")]
    ContentType(String),
}

/// Versioned wrapper around every message body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u16,
    pub body: T,
}

/// Encodes `body` as versioned MessagePack.
pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, ProtocolError> {
    rmp_serde::to_vec_named(&Envelope { v: PROTOCOL_VERSION, body }).map_err(|e| ProtocolError::Encode(e.to_string()))
}

/// Decodes versioned MessagePack (or JSON when `content_type` says so).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], content_type: Option<&str>) -> Result<T, ProtocolError> {
    let env: Envelope<T> = match content_type.unwrap_or(CONTENT_MSGPACK) {
        CONTENT_MSGPACK => rmp_serde::from_slice(bytes)
            .map_err(|e| ProtocolError::Decode { format: "msgpack", detail: e.to_string() })?,
        CONTENT_JSON => serde_json::from_slice(bytes)
            .map_err(|e| ProtocolError::Decode { format: "json", detail: e.to_string() })?,
        other => return Err(ProtocolError::ContentType(other.to_string())),
    };
    if env.v > PROTOCOL_VERSION {
        return Err(ProtocolError::Version { got: env.v });
    }
    Ok(env.body)
}

/// What arrives on a shard queue `corral.shard.<k>`: kicks and observations for pods of
/// that shard. Both are hints; the actor always reconciles from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShardMessage {
    /// Desired state of the pod changed (or may have): reconcile.
    Kick { tenant: String, pod_id: String, generation: u64 },
    /// Something the health-poller saw about a pod's container.
    Observation { tenant: String, pod_id: String, container_id: String, what: Observation },
    /// Kicks for several pods of the shard in one message: publishers gather the kicks that
    /// arrive while their previous publish to the shard awaits its confirm. The delivery is
    /// settled once every kick in it has been handled.
    Kicks { kicks: Vec<PodKick> },
    /// Observations about several pods of the shard in one message, gathered by the
    /// health-poller as kicks are by their publishers; settled the same way.
    Observations { observations: Vec<PodObservation> },
}

/// One kick of a [`ShardMessage::Kicks`] batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodKick {
    pub tenant: String,
    pub pod_id: String,
    pub generation: u64,
    /// W3C trace context of the request behind this kick (a lone kick carries it in the
    /// message's headers instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// One observation of a [`ShardMessage::Observations`] batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodObservation {
    pub tenant: String,
    pub pod_id: String,
    pub container_id: String,
    pub what: Observation,
    /// W3C trace context of the probe or event behind it (a lone observation carries it in
    /// the message's headers instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Observation {
    /// The readiness probe passed.
    Ready,
    /// The container stopped running.
    Exited { exit_code: Option<i64>, reason: String },
    /// The runtime no longer knows the container.
    Gone,
}

/// Published on `corral.events` after every persisted status change of a pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodEvent {
    pub tenant: String,
    pub pod_id: String,
    pub status: PodStatus,
    pub generation: u64,
    pub instance: u64,
    pub container_id: Option<String>,
    /// Where the default networking port answers (for probes and the proxy).
    pub endpoint: Option<Endpoint>,
    /// `http` probes need an HTTP answer below 500; `tcp` a connect.
    pub probe: Option<ProbeKind>,
    pub ts: Millis,
    pub message: String,
    /// W3C trace context of the work behind the change, inside a [`PodEvents`] batch (a lone
    /// event carries it in the message's headers instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Several pod events with the same routing key (tenant and status) in one message:
/// publishers gather the events that arrive while their previous publish on that key is in
/// flight. Consumers read either form with [`decode_pod_events`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodEvents {
    pub events: Vec<PodEvent>,
}

/// Decodes a message published on a pod-event routing key: one [`PodEvent`] or a
/// [`PodEvents`] batch, as the events in order. A batch is tried first: it is the usual
/// shape under load, and a lone event fails that attempt cheaply (its fields are skipped,
/// not decoded). No `untagged` enum: that would buffer every message before decoding it.
pub fn decode_pod_events(bytes: &[u8], content_type: Option<&str>) -> Result<Vec<PodEvent>, ProtocolError> {
    match decode::<PodEvents>(bytes, content_type) {
        Ok(batch) => Ok(batch.events),
        Err(ProtocolError::Decode { .. }) => decode::<PodEvent>(bytes, content_type).map(|event| vec![event]),
        Err(e) => Err(e),
    }
}

/// Published on `corral.events` (routing key [`topology::pool_claimed_routing_key`]) by a
/// gateway after claims from a pool, so the pool-manager refills it at once rather than at
/// its next periodic pass. A hint: a lost one only delays the refill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolClaimed {
    /// The pool id (`{tenant}/{template}`).
    pub pool: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Http,
    Tcp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_message_round_trips_with_version() {
        let m = ShardMessage::Kick { tenant: "dev".into(), pod_id: "abc".into(), generation: 3 };
        let bytes = encode(&m).expect("encode");
        let back: ShardMessage = decode(&bytes, None).expect("decode");
        assert_eq!(back, m);
    }

    #[test]
    fn kick_batches_round_trip_and_omit_missing_trace_context() {
        let kick = |pod_id: &str, traceparent: Option<&str>| PodKick {
            tenant: "dev".into(),
            pod_id: pod_id.into(),
            generation: 1,
            traceparent: traceparent.map(str::to_owned),
        };
        let m = ShardMessage::Kicks {
            kicks: vec![kick("a", None), kick("b", Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))],
        };
        let bytes = encode(&m).expect("encode");
        let back: ShardMessage = decode(&bytes, None).expect("decode");
        assert_eq!(back, m);
        let json: ShardMessage = decode(
            br#"{"v":1,"body":{"kind":"kicks","kicks":[{"tenant":"t","pod_id":"p","generation":2}]}}"#,
            Some(CONTENT_JSON),
        )
        .expect("json");
        assert_eq!(
            json,
            ShardMessage::Kicks {
                kicks: vec![PodKick { tenant: "t".into(), pod_id: "p".into(), generation: 2, traceparent: None }]
            }
        );
    }

    #[test]
    fn observation_batches_round_trip_and_read_from_json() {
        let m = ShardMessage::Observations {
            observations: vec![
                PodObservation {
                    tenant: "dev".into(),
                    pod_id: "a".into(),
                    container_id: "c1".into(),
                    what: Observation::Ready,
                    traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
                },
                PodObservation {
                    tenant: "dev".into(),
                    pod_id: "b".into(),
                    container_id: "c2".into(),
                    what: Observation::Exited { exit_code: Some(3), reason: "exited".into() },
                    traceparent: None,
                },
            ],
        };
        let back: ShardMessage = decode(&encode(&m).expect("encode"), None).expect("decode");
        assert_eq!(back, m);
        let json: ShardMessage = decode(
            br#"{"v":1,"body":{"kind":"observations","observations":[{"tenant":"t","pod_id":"p","container_id":"c","what":{"type":"gone"}}]}}"#,
            Some(CONTENT_JSON),
        )
        .expect("json");
        let expected = PodObservation {
            tenant: "t".into(),
            pod_id: "p".into(),
            container_id: "c".into(),
            what: Observation::Gone,
            traceparent: None,
        };
        assert_eq!(json, ShardMessage::Observations { observations: vec![expected] });
    }

    fn event(pod_id: &str, traceparent: Option<&str>) -> PodEvent {
        PodEvent {
            tenant: "dev".into(),
            pod_id: pod_id.into(),
            status: PodStatus::Available,
            generation: 2,
            instance: 1,
            container_id: Some("c1".into()),
            probe: Some(ProbeKind::Tcp),
            ts: 5,
            traceparent: traceparent.map(str::to_owned),
            ..PodEvent::default()
        }
    }

    #[test]
    fn pod_events_decode_alone_or_batched_in_order() {
        let one = encode(&event("a", None)).expect("encode");
        assert_eq!(decode_pod_events(&one, None).expect("one"), vec![event("a", None)]);
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let many = encode(&PodEvents { events: vec![event("a", Some(tp)), event("b", None)] }).expect("encode");
        assert_eq!(decode_pod_events(&many, None).expect("many"), vec![event("a", Some(tp)), event("b", None)]);
        let json = br#"{"v":1,"body":{"tenant":"t","pod_id":"p","status":"AVAILABLE","generation":1,"instance":1,"container_id":null,"endpoint":null,"probe":null,"ts":0,"message":""}}"#;
        let from_json = decode_pod_events(json, Some(CONTENT_JSON)).expect("json");
        assert_eq!(from_json.len(), 1);
        assert_eq!(from_json[0].traceparent, None);
        assert!(decode_pod_events(b"\xc1garbage", None).is_err());
        let not_an_event = encode(&PoolClaimed { pool: "dev/web".into() }).expect("encode");
        assert!(decode_pod_events(&not_an_event, None).is_err());
    }

    #[test]
    fn a_lone_event_without_trace_context_omits_the_field() {
        let bytes = encode(&event("a", None)).expect("encode");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("traceparent"), "{text}");
    }

    #[test]
    fn newer_version_is_refused() {
        let bytes = rmp_serde::to_vec_named(&Envelope { v: PROTOCOL_VERSION + 1, body: 1u8 }).expect("encode");
        let err = decode::<u8>(&bytes, None).expect_err("must refuse");
        assert!(matches!(err, ProtocolError::Version { .. }), "{err}");
    }

    #[test]
    fn json_is_accepted_and_garbage_is_an_error() {
        let m: ShardMessage = decode(
            br#"{"v":1,"body":{"kind":"observation","tenant":"t","pod_id":"p","container_id":"c","what":{"type":"exited","exit_code":137,"reason":"killed"}}}"#,
            Some(CONTENT_JSON),
        )
        .expect("json");
        assert!(matches!(m, ShardMessage::Observation { .. }));
        assert!(decode::<ShardMessage>(b"\xc1garbage", None).is_err());
        assert!(decode::<ShardMessage>(b"{}", Some("text/plain")).is_err());
    }
}
