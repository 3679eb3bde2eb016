//! One pass over one pool: decide for every member ([`crate::decide`]), carry the decisions
//! out, then size the pool with [`corral_model::pool::plan`].

use corral_model::pool::{AppTemplate, PoolAction, PoolConfig, PoolCounts, PoolTarget, plan, pool_owner};
use corral_model::{Millis, PodKey, PodStatus};
use corral_store::{MemberState, PodRecord, StoreError};

use crate::Deps;
use crate::decide::{Decision, PodFacts, decide};
use crate::pods::{PassKicks, create_member_pod, delete_member_pod};
use crate::records::RecordCache;

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub created: u32,
    pub ready: u32,
    pub removed: u32,
    pub released: u32,
    pub culled: u32,
}

/// The outcome of a pass over one pool.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PoolPass {
    pub report: PassReport,
    /// The pool's members once the pass is done (new ones included).
    pub members: Vec<String>,
}

fn facts(rec: &PodRecord) -> PodFacts<'_> {
    let (d, o) = (&rec.desired.value, &rec.observed.value);
    let current = o.observed_generation == d.generation;
    PodFacts {
        deleted: d.deleted,
        ready: current && o.status == PodStatus::Available,
        failed: current && o.status == PodStatus::Error,
        owner: &d.owner,
    }
}

/// Reconciles `pool` once. `template` is `None` once the template is gone: the pool then
/// only drains. The pass's kicks are in `kicks`; the caller awaits them.
pub async fn reconcile_pool(
    deps: &Deps,
    kicks: &mut PassKicks,
    cache: &mut RecordCache,
    pool_id: &str,
    cfg: &PoolConfig,
    template: Option<(&AppTemplate, u64)>,
    now: Millis,
) -> Result<PoolPass, StoreError> {
    let store = deps.store.as_ref();
    let mut report = PassReport::default();
    let mut counts = PoolCounts::default();
    let mut unclaimed: Vec<(String, MemberState)> = Vec::new();
    let mut kept = Vec::new();
    let members = store.pool_members(pool_id).await?;
    let keys: Vec<PodKey> = members.iter().map(|m| PodKey::new(&cfg.tenant, &m.id)).collect();
    let records = cache.read(store, pool_id, &keys).await?;
    for ((m, key), rec) in members.iter().zip(&keys).zip(&records) {
        let mut state = None;
        match decide(m, rec.as_deref().map(facts), template, now) {
            Decision::Keep(s) => state = Some(s),
            Decision::Promote => {
                // Refused only if it was claimed meanwhile.
                state = Some(if store.pool_ready(pool_id, &m.id, now).await? {
                    report.ready += 1;
                    MemberState::Available
                } else {
                    MemberState::Claimed
                });
            }
            Decision::Replace => {
                // Withdraw first: once withdrawn no claim can take it, so deleting is safe.
                if store.pool_withdraw(pool_id, &m.id).await? {
                    delete_member_pod(store, kicks, key, now).await?;
                    report.removed += 1;
                } else {
                    state = Some(MemberState::Claimed);
                }
            }
            Decision::Release => {
                store.pool_release(pool_id, &m.id).await?;
                report.released += 1;
            }
            Decision::Cull => {
                delete_member_pod(store, kicks, key, now).await?;
                store.pool_release(pool_id, &m.id).await?;
                report.culled += 1;
            }
            Decision::SetOwner => {
                if let Some(r) = rec {
                    ensure_owner(deps, r, m.claimant.as_deref()).await?;
                }
                state = Some(MemberState::Claimed);
            }
        }
        match state {
            None => continue,
            Some(MemberState::Warming) => counts.warming += 1,
            Some(MemberState::Available) => counts.available += 1,
            Some(MemberState::Claimed) => counts.claimed += 1,
        }
        if let Some(s @ (MemberState::Warming | MemberState::Available)) = state {
            unclaimed.push((m.id.clone(), s));
        }
        kept.push(m.id.clone());
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
                    create_member_pod(deps, kicks, t, pool_id, &id, &pool_owner(&cfg.template), now).await?;
                    kept.push(id);
                    report.created += 1;
                }
            }
            PoolAction::Drain { warming, available } => {
                for id in pick_drain(&unclaimed, warming, available) {
                    if store.pool_withdraw(pool_id, &id).await? {
                        delete_member_pod(store, kicks, &PodKey::new(&cfg.tenant, &id), now).await?;
                        kept.retain(|k| *k != id);
                        report.removed += 1;
                    }
                }
            }
        }
    }
    Ok(PoolPass { report, members: kept })
}

fn pick_drain(unclaimed: &[(String, MemberState)], warming: u32, available: u32) -> Vec<String> {
    let of = |state: MemberState, n: u32| {
        unclaimed.iter().filter(move |(_, s)| *s == state).take(n as usize).map(|(id, _)| id.clone())
    };
    of(MemberState::Warming, warming).chain(of(MemberState::Available, available)).collect()
}

/// The claimant owns a claimed member's pod; the claim sets this atomically, and this
/// repairs a claim whose owner could not be set then (a store without atomic claims, or a
/// gateway that died before its fallback).
async fn ensure_owner(deps: &Deps, rec: &PodRecord, claimant: Option<&str>) -> Result<(), StoreError> {
    let Some(claimant) = claimant else { return Ok(()) };
    if rec.desired.value.owner == claimant {
        return Ok(());
    }
    let mut next = rec.desired.value.clone();
    claimant.clone_into(&mut next.owner);
    match deps.store.put_desired(&next, rec.desired.version).await {
        Ok(_) | Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
