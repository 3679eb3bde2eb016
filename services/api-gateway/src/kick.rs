//! Telling the pod's shard that its desired state changed.
//!
//! A kick is a hint: the change is accepted once it is stored, and the spawner's periodic
//! resync converges even if a kick is lost. So a request does not wait for the broker to
//! confirm its kick: the kick is queued (in order, gathered with other kicks for the shard,
//! see [`corral_bus::shard_publish`]) and confirmed in the background. Only while too many
//! kicks are unconfirmed does a request wait for its own, so a slow broker slows the
//! gateway down instead of piling kicks up in memory. At shutdown the gateway waits for
//! the kicks in hand ([`Kicks::drain`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use corral_bus::BusError;
use corral_bus::shard_publish::KickPublisher;
use corral_model::PodKey;
use corral_model::shard::shard_of;
use corral_protocol::PodKick;
use corral_protocol::topology::HEADER_TRACEPARENT;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::AppState;

/// Kicks queued but not yet confirmed, at most; past this a request waits for its own.
const KICKS_IN_HAND: u32 = 4096;

/// The gateway's kick publisher and the kicks it has in hand.
pub struct Kicks {
    publisher: KickPublisher,
    in_hand: Arc<Semaphore>,
}

impl Kicks {
    pub fn new(publisher: KickPublisher) -> Self {
        Self { publisher, in_hand: Arc::new(Semaphore::new(KICKS_IN_HAND as usize)) }
    }

    /// Queues `kick` for `shard`; returns at once unless too many kicks are unconfirmed.
    async fn send(&self, shard: u32, kick: PodKick, key: PodKey) {
        let generation = kick.generation;
        let confirmed = self.publisher.send(shard, kick);
        let report = move |outcome: Result<(), BusError>| match outcome {
            Ok(()) => tracing::debug!(pod = %key, shard, generation, "kick published"),
            Err(e) => {
                tracing::warn!(pod = %key, shard, error = %e, "kick not published; the spawner's resync will converge")
            }
        };
        match Arc::clone(&self.in_hand).try_acquire_owned() {
            Ok(slot) => {
                let wait = async move {
                    report(confirmed.await);
                    drop(slot);
                };
                tokio::spawn(wait.instrument(tracing::debug_span!("task", name = "kick-confirm")));
            }
            Err(_) => report(confirmed.await),
        }
    }

    /// Waits, at most `within`, until every kick in hand is confirmed or failed; false if
    /// some were still unconfirmed.
    pub async fn drain(&self, within: Duration) -> bool {
        matches!(tokio::time::timeout(within, self.in_hand.acquire_many(KICKS_IN_HAND)).await, Ok(Ok(_)))
    }
}

/// Queues a kick for the pod's `generation` to its shard queue. Failures are logged, not
/// returned (see the module documentation).
///
/// The kick carries the W3C trace context of the current span (when tracing export is on),
/// otherwise the `traceparent` the request arrived with, so the spawner continues the trace.
pub async fn kick(st: &AppState, key: &PodKey, generation: u64, traceparent: Option<&str>) {
    let shard = shard_of(&key.tenant, &key.pod_id, st.config().spawner.shards);
    let mut headers = BTreeMap::new();
    corral_telemetry::inject_current(&mut headers);
    let traceparent = headers.remove(HEADER_TRACEPARENT).or_else(|| traceparent.map(str::to_owned));
    let kick = PodKick { tenant: key.tenant.clone(), pod_id: key.pod_id.clone(), generation, traceparent };
    st.kicks().send(shard, kick, key.clone()).await;
}
