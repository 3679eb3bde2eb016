//! Telling the pod's shard that its desired state changed.

use std::time::Duration;

use corral_bus::OutMessage;
use corral_model::PodKey;
use corral_model::shard::shard_of;
use corral_protocol::ShardMessage;
use corral_protocol::topology::{COMMANDS_EXCHANGE, HEADER_TRACEPARENT, shard_routing_key};

use crate::AppState;

/// A kick is a hint: if it cannot be published in time the request still succeeds (the
/// store holds the truth and the spawner's periodic resync converges).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes `Kick{generation}` to the pod's shard queue. Failures are logged, not
/// returned: the change is accepted once it is stored.
///
/// The message carries the W3C trace context of the current span (when tracing export is on),
/// otherwise the `traceparent` the request arrived with, so the spawner continues the trace.
pub async fn kick(st: &AppState, key: &PodKey, generation: u64, traceparent: Option<&str>) {
    let shard = shard_of(&key.tenant, &key.pod_id, st.config().spawner.shards);
    let msg = ShardMessage::Kick { tenant: key.tenant.clone(), pod_id: key.pod_id.clone(), generation };
    let body = match corral_protocol::encode(&msg) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(pod = %key, error = %e, "cannot encode kick; the spawner's resync will converge");
            return;
        }
    };
    let mut out = OutMessage::new(body);
    corral_telemetry::inject_current(&mut out.headers);
    if let (false, Some(tp)) = (out.headers.contains_key(HEADER_TRACEPARENT), traceparent) {
        out = out.header(HEADER_TRACEPARENT, tp);
    }
    let routing_key = shard_routing_key(shard);
    match tokio::time::timeout(PUBLISH_TIMEOUT, st.bus().publish(COMMANDS_EXCHANGE, &routing_key, out)).await {
        Ok(Ok(())) => tracing::debug!(pod = %key, shard, generation, "kick published"),
        Ok(Err(e)) => {
            tracing::warn!(pod = %key, shard, error = %e, "kick not published; the spawner's resync will converge")
        }
        Err(_) => tracing::warn!(pod = %key, shard, "kick publish timed out; the spawner's resync will converge"),
    }
}
