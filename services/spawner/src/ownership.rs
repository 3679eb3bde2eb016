//! Shard ownership: every spawner heartbeats into the `spawner` group; each computes the same
//! even assignment of shards over the live members (`corral_model::shard::shards_for`) and
//! holds a lease per shard it owns. A lease is renewed every membership interval and expires
//! after `lease_ttl_ms`, so a dead spawner's shards are taken over within about one TTL.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use corral_model::shard::shards_for;

use crate::shard::Context;

pub const GROUP: &str = "spawner";

pub fn lease_name(shard: u32) -> String {
    format!("shard.{shard}")
}

/// Membership loop: runs until shutdown, then releases everything in order.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let interval = Duration::from_millis(ctx.cfg.spawner.membership_interval_ms);
    let mut owned: BTreeSet<u32> = BTreeSet::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {
                if let Err(e) = rebalance(&ctx, &mut owned).await {
                    tracing::warn!(error = %e, "membership round failed; keeping current shards until leases lapse");
                    // If the store is unreachable we cannot renew: stop before the lease runs out
                    // so another spawner can never overlap with us.
                    drop_if_stale(&ctx, &mut owned).await;
                }
            }
        }
    }
    tracing::info!(shards = owned.len(), "spawner stopping: releasing shards");
    let owned: Vec<u32> = std::mem::take(&mut owned).into_iter().collect();
    ctx.release_shards(&owned, Some(drain(&ctx))).await;
    for k in owned {
        let _ = ctx.deps.store.release_lease(&lease_name(k), &ctx.id).await;
    }
    let _ = ctx.deps.store.leave(GROUP, &ctx.id).await;
    tracing::info!("spawner stopped");
    Ok(())
}

async fn rebalance(ctx: &Arc<Context>, owned: &mut BTreeSet<u32>) -> Result<(), corral_store::StoreError> {
    let store = &ctx.deps.store;
    let now = ctx.now();
    store.heartbeat(GROUP, &ctx.id, now).await?;
    let ttl = ctx.cfg.spawner.lease_ttl_ms;
    let since = now.saturating_sub(i64::try_from(ttl).unwrap_or(i64::MAX));
    let mut members = store.live_members(GROUP, since).await?;
    if !members.contains(&ctx.id) {
        members.push(ctx.id.clone());
    }
    let wanted: BTreeSet<u32> = shards_for(&ctx.id, &members, ctx.cfg.spawner.shards).into_iter().collect();
    // A consumer whose stream ended (broker restart, channel error) is restarted: drop the
    // shard locally and take it again below while we still hold its lease. Shards are
    // released together, so a round waits for their actors once.
    let ended: Vec<u32> = owned.iter().copied().filter(|&k| !ctx.shard_alive(k)).collect();
    if !ended.is_empty() {
        tracing::warn!(shards = ?ended, "shard consumers ended; resubscribing");
        ctx.release_shards(&ended, Some(drain(ctx))).await;
        owned.retain(|k| !ended.contains(k));
    }
    // Give up shards first, so their new owner can take them this round.
    let unwanted: Vec<u32> = owned.iter().copied().filter(|k| !wanted.contains(k)).collect();
    if !unwanted.is_empty() {
        ctx.release_shards(&unwanted, Some(drain(ctx))).await;
        for &k in &unwanted {
            store.release_lease(&lease_name(k), &ctx.id).await?;
            owned.remove(&k);
            tracing::info!(shard = k, "shard handed over");
        }
    }
    for &k in &wanted {
        let held = store.acquire_lease(&lease_name(k), &ctx.id, ttl).await?;
        match (held, owned.contains(&k)) {
            (true, false) => {
                if ctx.take_shard(k).await {
                    owned.insert(k);
                    tracing::info!(shard = k, "shard taken");
                } else {
                    // Could not consume yet (the previous owner's consumer is still registered).
                    store.release_lease(&lease_name(k), &ctx.id).await?;
                }
            }
            (false, true) => {
                // Already owned elsewhere: waiting would only delay renewing the others.
                tracing::warn!(shard = k, "lease lost to another spawner; stopping the shard");
                ctx.release_shards(&[k], None).await;
                owned.remove(&k);
            }
            _ => {}
        }
    }
    ctx.mark_renewed(now);
    Ok(())
}

/// How long a round's release of shards may wait for their actors: half the margin between
/// renewing and the lease running out, so waiting never costs this spawner its other leases.
fn drain(ctx: &Context) -> Duration {
    let margin = ctx.cfg.spawner.lease_ttl_ms.saturating_sub(ctx.cfg.spawner.membership_interval_ms);
    Duration::from_millis(margin / 2)
}

async fn drop_if_stale(ctx: &Arc<Context>, owned: &mut BTreeSet<u32>) {
    let age = ctx.now().saturating_sub(ctx.last_renewed());
    // Leave a safety margin of one interval before the lease could expire elsewhere.
    let limit = ctx.cfg.spawner.lease_ttl_ms.saturating_sub(ctx.cfg.spawner.membership_interval_ms);
    if u64::try_from(age).unwrap_or(0) >= limit {
        let stale: Vec<u32> = std::mem::take(owned).into_iter().collect();
        if !stale.is_empty() {
            tracing::warn!(shards = ?stale, "leases could not be renewed; stopping the shards");
            ctx.release_shards(&stale, None).await;
        }
    }
}
