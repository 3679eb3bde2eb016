//! One pass over one pool: promote ready members, replace broken or outdated ones, cull
//! idle or old claimed ones, then size the pool with [`corral_model::pool::plan`].

use corral_model::pool::{AppTemplate, PoolAction, PoolConfig, PoolCounts, PoolTarget, plan, pool_owner};
use corral_model::{Millis, PodKey, PodStatus};
use corral_store::{MemberState, PodRecord, PoolMember, StoreError};

use crate::Deps;
use crate::pods::{create_member_pod, delete_member_pod};

/// A claimed member whose pod does not exist yet is given this long (ms) for its claimant
/// (a gateway starting a cold instance) to create it, before the pool-manager creates it.
const COLD_GRACE_MS: Millis = 5_000;
/// Beyond this age (ms) a claimed member without a pod is stale: it is released.
const MISSING_POD_RELEASE_MS: Millis = 60_000;

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub created: u32,
    pub ready: u32,
    pub removed: u32,
    pub culled: u32,
}

fn is_ready(rec: &PodRecord) -> bool {
    let (d, o) = (&rec.desired.value, &rec.observed.value);
    !d.deleted && o.status == PodStatus::Available && o.observed_generation == d.generation
}

fn is_broken(rec: &PodRecord) -> bool {
    let (d, o) = (&rec.desired.value, &rec.observed.value);
    d.deleted || (o.status == PodStatus::Error && o.observed_generation == d.generation)
}

/// Whether a claimed member is due for culling at `now`.
pub fn should_cull(member: &PoolMember, template: Option<&AppTemplate>, now: Millis) -> bool {
    let Some(t) = template else { return false };
    let secs = |s: u64| Millis::try_from(s.saturating_mul(1000)).unwrap_or(Millis::MAX);
    let idle = t.cull_timeout_s > 0 && now.saturating_sub(member.last_activity) >= secs(t.cull_timeout_s);
    let old = t.max_age_s > 0 && now.saturating_sub(member.since) >= secs(t.max_age_s);
    idle || old
}

/// Reconciles `pool` once. `template` is `None` once the template is gone: the pool then
/// only drains.
pub async fn reconcile_pool(
    deps: &Deps,
    shards: u32,
    pool_id: &str,
    cfg: &PoolConfig,
    template: Option<(&AppTemplate, u64)>,
    now: Millis,
) -> Result<PassReport, StoreError> {
    let store = deps.store.as_ref();
    let bus = deps.bus.as_ref();
    let mut report = PassReport::default();
    let mut counts = PoolCounts::default();
    let mut unclaimed: Vec<(String, MemberState)> = Vec::new();
    for m in store.pool_members(pool_id).await? {
        let key = PodKey::new(&cfg.tenant, &m.id);
        let rec = store.get_pod(&key).await?;
        let outdated = template.is_none_or(|(_, v)| v != m.template_version);
        match m.state {
            MemberState::Warming | MemberState::Available => {
                let broken = rec.as_ref().is_none_or(is_broken) && !(rec.is_none() && m.state == MemberState::Warming);
                if broken || outdated {
                    // Withdraw first: once withdrawn no claim can take it, so deleting is safe.
                    if store.pool_withdraw(pool_id, &m.id).await? {
                        delete_member_pod(store, bus, shards, &key, now).await?;
                        report.removed += 1;
                    }
                    continue;
                }
                if m.state == MemberState::Warming {
                    match (&rec, template) {
                        // Reserved but never created (a crash in between): create it now.
                        (None, Some((t, _))) => {
                            create_member_pod(deps, shards, t, pool_id, &m.id, &pool_owner(&cfg.template), now).await?;
                        }
                        (Some(r), _) if is_ready(r) && store.pool_ready(pool_id, &m.id, now).await? => {
                            report.ready += 1;
                            counts.available += 1;
                            unclaimed.push((m.id.clone(), MemberState::Available));
                            continue;
                        }
                        _ => {}
                    }
                    counts.warming += 1;
                } else {
                    counts.available += 1;
                }
                unclaimed.push((m.id.clone(), m.state));
            }
            MemberState::Claimed => {
                counts.claimed += 1;
                let age = now.saturating_sub(m.since);
                match rec {
                    None if age < COLD_GRACE_MS => {}
                    None if age < MISSING_POD_RELEASE_MS => {
                        if let (Some((t, _)), Some(owner)) = (template, m.claimant.as_deref()) {
                            create_member_pod(deps, shards, t, pool_id, &m.id, owner, now).await?;
                        }
                    }
                    None => {
                        store.pool_release(pool_id, &m.id).await?;
                        counts.claimed -= 1;
                    }
                    Some(r) if r.desired.value.deleted => {
                        store.pool_release(pool_id, &m.id).await?;
                        counts.claimed -= 1;
                    }
                    Some(r) => {
                        if should_cull(&m, template.map(|(t, _)| t), now) {
                            delete_member_pod(store, bus, shards, &key, now).await?;
                            store.pool_release(pool_id, &m.id).await?;
                            counts.claimed -= 1;
                            report.culled += 1;
                        } else {
                            ensure_owner(deps, &r, m.claimant.as_deref()).await?;
                        }
                    }
                }
            }
        }
    }
    let size = if cfg.deleted || template.is_none() { 0 } else { cfg.size };
    for action in plan(counts, PoolTarget { size, cap: cfg.cap }) {
        match action {
            PoolAction::Create(n) => {
                let Some((t, version)) = template else { continue };
                for _ in 0..n {
                    let id = corral_model::pool::member_id(&uuid::Uuid::new_v4().simple().to_string());
                    if !store.pool_reserve(pool_id, &id, version, cfg.cap, now).await? {
                        break;
                    }
                    create_member_pod(deps, shards, t, pool_id, &id, &pool_owner(&cfg.template), now).await?;
                    report.created += 1;
                }
            }
            PoolAction::Drain { warming, available } => {
                let picks = pick_drain(&unclaimed, warming, available);
                for id in picks {
                    if store.pool_withdraw(pool_id, &id).await? {
                        delete_member_pod(store, bus, shards, &PodKey::new(&cfg.tenant, &id), now).await?;
                        report.removed += 1;
                    }
                }
            }
        }
    }
    Ok(report)
}

fn pick_drain(unclaimed: &[(String, MemberState)], warming: u32, available: u32) -> Vec<String> {
    let of = |state: MemberState, n: u32| {
        unclaimed.iter().filter(move |(_, s)| *s == state).take(n as usize).map(|(id, _)| id.clone())
    };
    of(MemberState::Warming, warming).chain(of(MemberState::Available, available)).collect()
}

/// The claimant owns a claimed member's pod; the gateway sets this at claim time, and this
/// repairs a claim whose gateway died before doing so.
async fn ensure_owner(deps: &Deps, rec: &PodRecord, claimant: Option<&str>) -> Result<(), StoreError> {
    let Some(claimant) = claimant else { return Ok(()) };
    if rec.desired.value.owner == claimant {
        return Ok(());
    }
    let mut next = rec.desired.value.clone();
    claimant.clone_into(&mut next.owner);
    match deps.store.put_desired(&next, rec.desired.version).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
