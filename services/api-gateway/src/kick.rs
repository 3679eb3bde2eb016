//! Telling the pod's shard that its desired state changed.

use std::collections::BTreeMap;

use corral_model::PodKey;
use corral_model::shard::shard_of;
use corral_protocol::PodKick;
use corral_protocol::topology::HEADER_TRACEPARENT;

use crate::AppState;

/// Publishes a kick for the pod's `generation` to its shard queue (gathered with other
/// kicks for the shard, see [`corral_bus::shard_publish`]). A kick is a hint: failures are logged,
/// not returned, since the change is accepted once it is stored and the spawner's periodic
/// resync converges.
///
/// The kick carries the W3C trace context of the current span (when tracing export is on),
/// otherwise the `traceparent` the request arrived with, so the spawner continues the trace.
pub async fn kick(st: &AppState, key: &PodKey, generation: u64, traceparent: Option<&str>) {
    let shard = shard_of(&key.tenant, &key.pod_id, st.config().spawner.shards);
    let mut headers = BTreeMap::new();
    corral_telemetry::inject_current(&mut headers);
    let traceparent = headers.remove(HEADER_TRACEPARENT).or_else(|| traceparent.map(str::to_owned));
    let kick = PodKick { tenant: key.tenant.clone(), pod_id: key.pod_id.clone(), generation, traceparent };
    match st.kicks().kick(shard, kick).await {
        Ok(()) => tracing::debug!(pod = %key, shard, generation, "kick published"),
        Err(e) => {
            tracing::warn!(pod = %key, shard, error = %e, "kick not published; the spawner's resync will converge")
        }
    }
}
