//! Creating and deleting member pods: the same store writes and shard kicks the gateway
//! makes for `POST /v3/pods` and `DELETE /v3/pods/{id}`.

use std::time::Duration;

use corral_bus::{Bus, OutMessage};
use corral_model::pool::{AppTemplate, member_pod};
use corral_model::shard::shard_of;
use corral_model::{Millis, PodKey};
use corral_protocol::ShardMessage;
use corral_protocol::topology::{COMMANDS_EXCHANGE, shard_routing_key};
use corral_store::{Store, StoreError};

use crate::Deps;

/// A kick that cannot be published in time is left to the spawner's resync.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the member's pod (nothing if it exists already) and kicks its shard.
pub async fn create_member_pod(
    deps: &Deps,
    shards: u32,
    template: &AppTemplate,
    pool: &str,
    member: &str,
    owner: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let (store, bus) = (deps.store.as_ref(), deps.bus.as_ref());
    let (desired, observed) = member_pod(template, pool, member, owner, now);
    let key = desired.key();
    let shard = shard_of(&key.tenant, &key.pod_id, shards);
    match store.create_pod(&desired, &observed, shard).await {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e),
    }
    kick(bus, shards, &key, desired.generation).await;
    Ok(())
}

/// Marks the pod deleted (the spawner tears it down and purges it) and kicks its shard.
/// A pod that is gone or already being deleted is left as it is.
pub async fn delete_member_pod(
    store: &dyn Store,
    bus: &dyn Bus,
    shards: u32,
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
                kick(bus, shards, key, next.generation).await;
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(format!("pod {key} kept changing while being deleted")))
}

async fn kick(bus: &dyn Bus, shards: u32, key: &PodKey, generation: u64) {
    let shard = shard_of(&key.tenant, &key.pod_id, shards);
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
    let published =
        tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(COMMANDS_EXCHANGE, &shard_routing_key(shard), out)).await;
    if !matches!(published, Ok(Ok(()))) {
        tracing::warn!(pod = %key, shard, "kick not published; the spawner's resync will converge");
    }
}
