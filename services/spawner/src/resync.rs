//! The periodic resync of an owned shard: the safety net for lost kicks and lost timers.
//!
//! Each shard's pods are stepped through the machine right here, with the `Reconcile` event
//! a kick would deliver. Only pods for which that step would change something or act (a
//! missed kick, a due deadline, a purge to finish), or which need a timer and have no actor
//! holding one, are kicked. What a pass concludes about a pod stays valid while the pod's
//! versions are unchanged and its next deadline has not come, so later passes ask the store
//! for versions only and read (and decode) just the pods that changed: a shard of settled
//! pods costs a few small store round trips per interval. A pod with a live actor is read
//! again only when its desired state changed (a kick may have been lost): the actor made
//! every observed change itself and holds the pod's timers. A passivated pod's wake-up is
//! held by the deadline its shard keeps for it (see [`crate::passivation`]), so settled pods
//! are not revived by the resync either.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use corral_model::machine::{Action, Event, Settings, Want, step};
use corral_model::{Millis, PodKey};
use corral_store::{PodRecord, StoreError};

use crate::actor::PodMsg;
use crate::shard::Context;

/// Pods asked about per store call.
const BATCH: usize = 256;

/// What a kick would make of a pod now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// The pod would change or act at once.
    pub act: bool,
    /// The earliest wake-up it would ask for; until then the assessment holds.
    pub wake_at: Option<Millis>,
}

impl Assessment {
    pub fn of(record: &PodRecord, now: Millis, settings: &Settings) -> Self {
        let want = Want::from_desired(&record.desired.value);
        let observed = &record.observed.value;
        let (next, actions) = step(observed.clone(), &want, Event::Reconcile, now, settings);
        let mut act = next != *observed;
        let mut wake_at: Option<Millis> = None;
        for action in &actions {
            match action {
                Action::Wake { at } => wake_at = Some(wake_at.map_or(*at, |w| w.min(*at))),
                _ => act = true,
            }
        }
        Self { act, wake_at }
    }

    /// Whether the pod's actor must look at it: `held` means something holds the pod's
    /// wake-up (a live actor, or the deadline kept for a passivated pod), so a pod that only
    /// needs a wake-up later is left alone.
    pub fn needs_kick(&self, held: bool) -> bool {
        self.act || (self.wake_at.is_some() && !held)
    }

    fn holds_at(&self, now: Millis) -> bool {
        self.wake_at.is_none_or(|at| now < at)
    }
}

/// Whether the pod's actor must look at it now (see [`Assessment::needs_kick`]).
pub fn needs_kick(record: &PodRecord, has_actor: bool, now: Millis, settings: &Settings) -> bool {
    Assessment::of(record, now, settings).needs_kick(has_actor)
}

/// When shard `k` (of `shards`) resyncs first: resyncs of different shards are spread over
/// the interval instead of all reading the store at once.
pub fn first_resync_after(k: u32, shards: u32, interval: Duration) -> Duration {
    let slot = interval.mul_f64(f64::from(k % shards.max(1)) / f64::from(shards.max(1)));
    interval + slot
}

/// What the last pass over one shard knew, per pod: the versions it saw and, when it read
/// the pod at those versions, its assessment.
type Seen = ((u64, u64), Option<Assessment>);

/// What the last pass over one shard concluded, per pod.
#[derive(Debug, Default)]
pub struct ShardMemo {
    pods: HashMap<PodKey, Seen>,
    /// Records read by the last pass (for tests and logs).
    pub last_reads: usize,
}

impl Context {
    /// Kicks the pods of shard `k` that need their actor (see the module docs); `memo`
    /// carries what the previous pass over this shard concluded.
    pub async fn resync_shard(self: &Arc<Self>, k: u32, memo: &mut ShardMemo) {
        let mut fresh = HashMap::with_capacity(memo.pods.len());
        let mut due = Vec::new();
        let outcome = self.assess_shard(k, memo, &mut fresh, &mut due).await;
        match outcome {
            Ok(()) => memo.pods = fresh,
            Err(e) => {
                tracing::warn!(shard = k, error = %e, "resync: cannot read the shard");
                memo.pods.extend(fresh);
            }
        }
        for key in &due {
            self.send(key, || PodMsg::Kick(None)).await;
        }
        tracing::debug!(
            shard = k,
            pods = memo.pods.len(),
            reads = memo.last_reads,
            kicked = due.len(),
            "shard resynced"
        );
    }

    async fn assess_shard(
        self: &Arc<Self>,
        k: u32,
        memo: &mut ShardMemo,
        fresh: &mut HashMap<PodKey, Seen>,
        due: &mut Vec<PodKey>,
    ) -> Result<(), StoreError> {
        let settings = self.cfg.machine_settings();
        memo.last_reads = 0;
        let keys = self.deps.store.list_shard(k).await?;
        for batch in keys.chunks(BATCH) {
            let versions = self.deps.store.pod_versions(batch).await?;
            let now = self.now();
            let mut stale = Vec::new();
            for (key, versions) in batch.iter().zip(versions) {
                // A pod purged since the listing has nothing left to converge.
                let Some(versions) = versions else { continue };
                let has_actor = self.has_actor(key);
                match memo.pods.remove(key) {
                    // Only the desired side can have changed behind the actor's back.
                    Some((seen, assessment)) if has_actor && seen.0 == versions.0 => {
                        let assessment = assessment.filter(|_| seen == versions);
                        fresh.insert(key.clone(), (versions, assessment));
                    }
                    Some((seen, Some(assessment))) if seen == versions && assessment.holds_at(now) => {
                        if assessment.needs_kick(self.holds_wake(key, assessment.wake_at)) {
                            due.push(key.clone());
                        }
                        fresh.insert(key.clone(), (seen, Some(assessment)));
                    }
                    _ => stale.push(key.clone()),
                }
            }
            if stale.is_empty() {
                continue;
            }
            memo.last_reads += stale.len();
            let records = self.deps.store.get_pods(&stale).await?;
            let now = self.now();
            for (key, record) in stale.into_iter().zip(records) {
                let Some(record) = record else { continue };
                let assessment = Assessment::of(&record, now, &settings);
                if assessment.needs_kick(self.holds_wake(&key, assessment.wake_at)) {
                    due.push(key.clone());
                }
                fresh.insert(key, ((record.desired.version, record.observed.version), Some(assessment)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
