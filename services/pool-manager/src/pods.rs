//! Creating and deleting member pods: the same store writes and shard kicks the gateway
//! makes for `POST /v3/pods` and `DELETE /v3/pods/{id}`.

use std::collections::BTreeMap;

use corral_bus::shard_publish::KickPublisher;
use corral_model::pool::{AppTemplate, member_pod};
use corral_model::shard::shard_of;
use corral_model::{Millis, PodKey};
use corral_protocol::PodKick;
use corral_protocol::topology::HEADER_TRACEPARENT;
use corral_store::{Store, StoreError};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::Deps;

/// The kicks of one pass: each leaves at once, gathered per shard with the others in flight
/// ([`KickPublisher`]), and the pass awaits them together at its end instead of one confirm
/// per member in turn. A kick that is not published is left to the spawner's resync.
pub struct PassKicks {
    publisher: KickPublisher,
    shards: u32,
    pending: Vec<JoinHandle<()>>,
}

impl PassKicks {
    pub fn new(publisher: KickPublisher, shards: u32) -> Self {
        Self { publisher, shards, pending: Vec::new() }
    }

    fn kick(&mut self, key: &PodKey, generation: u64) {
        let shard = shard_of(&key.tenant, &key.pod_id, self.shards);
        let mut headers = BTreeMap::new();
        corral_telemetry::inject_current(&mut headers);
        let kick = PodKick {
            tenant: key.tenant.clone(),
            pod_id: key.pod_id.clone(),
            generation,
            traceparent: headers.remove(HEADER_TRACEPARENT),
        };
        let publisher = self.publisher.clone();
        let pod = key.to_string();
        let publish = async move {
            if let Err(e) = publisher.kick(shard, kick).await {
                tracing::warn!(pod, shard, error = %e, "kick not published; the spawner's resync will converge");
            }
        };
        self.pending.push(tokio::spawn(publish.instrument(tracing::info_span!("task", name = "member-kick"))));
    }

    /// Waits until every kick of the pass is confirmed or given up.
    pub async fn finish(self) {
        for task in self.pending {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "a kick task failed");
            }
        }
    }
}

/// Creates the member's pod (nothing if it exists already) and kicks its shard.
pub async fn create_member_pod(
    deps: &Deps,
    kicks: &mut PassKicks,
    template: &AppTemplate,
    pool: &str,
    member: &str,
    owner: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let (desired, observed) = member_pod(template, pool, member, owner, now);
    let key = desired.key();
    let shard = shard_of(&key.tenant, &key.pod_id, kicks.shards);
    match deps.store.create_pod(&desired, &observed, shard).await {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e),
    }
    kicks.kick(&key, desired.generation);
    Ok(())
}

/// Marks the pod deleted (the spawner tears it down and purges it) and kicks its shard.
/// A pod that is gone or already being deleted is left as it is.
pub async fn delete_member_pod(
    store: &dyn Store,
    kicks: &mut PassKicks,
    key: &PodKey,
    now: Millis,
) -> Result<(), StoreError> {
    for _ in 0..8 {
        let Some(rec) = store.get_pod(key).await? else { return Ok(()) };
        if rec.desired.value.deleted {
            return Ok(());
        }
        let mut next = rec.desired.value.clone();
        next.deleted = true;
        next.generation = next.generation.saturating_add(1);
        next.update_ts = now;
        match store.put_desired(&next, rec.desired.version).await {
            Ok(_) => {
                kicks.kick(key, next.generation);
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(format!("pod {key} kept changing while being deleted")))
}
