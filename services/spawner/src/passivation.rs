//! Passivation: the actor of a pod that has settled (AVAILABLE and waiting only for its
//! time-to-stop, or STOPPED / COMPLETE / ERROR) is stopped, and the shard keeps at most the
//! pod's next deadline. An idle ractor actor costs ~14 KB (its mailbox channels, task and
//! state), so a spawner holding 100,000 settled pods would spend most of its memory on
//! actors waiting for nothing.
//!
//! Revival is on demand: [`crate::shard::Context::send`] starts an actor for any message
//! to a pod without one (a kick, an observation, a resync, adoption) and the shard's timer
//! loop sends [`crate::actor::PodMsg::Timer`] when a kept deadline comes.
//!
//! No message may be lost in between. Every message except the actor's own timers is cast
//! through the shard while holding its lock, and counted there; the actor reports each
//! message it has handled ([`crate::shard::Context::handled`]). The actor is removed from
//! the shard, under that same lock, only when it has handled everything cast to it, so
//! nothing can be waiting in its mailbox and nothing can be cast to it afterwards. Its own
//! pending timer is replaced by the deadline kept in the shard; only a timer due within
//! [`MARGIN_MS`] keeps the actor alive, so a timer that may be firing right now is never
//! dropped.

use std::collections::{BTreeSet, HashMap};

use corral_model::{Millis, PodKey, PodStatus};

/// A wake-up closer than this keeps the actor alive: its timer may already be firing.
pub const MARGIN_MS: Millis = 1_000;

/// Longest nap of a shard's timer loop, so deadlines are met even when the clock jumps
/// (an injected test clock, or the wall clock being set). Not above [`MARGIN_MS`]: a
/// deadline kept while the loop naps is at least that far away, so it is never missed.
pub const MAX_NAP_MS: Millis = MARGIN_MS;

/// What an actor knows about its pod after handling a message without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub status: PodStatus,
    /// The observed state still names a container.
    pub has_container: bool,
    /// The actor's pending wake-up (a timer not fired yet).
    pub wake: Option<Millis>,
}

/// The outcome of [`decide`]: passivate, keeping this deadline (if any) in the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passivate {
    pub deadline: Option<Millis>,
}

/// Whether a pod's actor may stop now. `None` keeps the actor: the pod is between states
/// (a spawn, readiness, a removal or a retry are pending), or its wake-up is too close.
pub fn decide(settled: &Settled, now: Millis) -> Option<Passivate> {
    match settled.status {
        // A removal that failed is retried by the actor's own timer: keep it.
        PodStatus::Stopped | PodStatus::Complete | PodStatus::Error if settled.has_container => None,
        // The machine asks no wake-up in these states: a pending timer is left over from an
        // earlier state and need not be kept.
        PodStatus::Stopped | PodStatus::Complete | PodStatus::Error => Some(Passivate { deadline: None }),
        PodStatus::Available => match settled.wake {
            Some(at) if at <= now.saturating_add(MARGIN_MS) => None,
            wake => Some(Passivate { deadline: wake }),
        },
        PodStatus::Requested | PodStatus::SpawnerSetup | PodStatus::Creating | PodStatus::Deleting => None,
    }
}

/// The deadlines one shard keeps for its passivated pods.
#[derive(Debug, Default)]
pub struct Timers {
    by_pod: HashMap<PodKey, Millis>,
    order: BTreeSet<(Millis, PodKey)>,
}

impl Timers {
    /// Keeps `at` as the pod's deadline, replacing any earlier one.
    pub fn set(&mut self, key: &PodKey, at: Millis) {
        self.remove(key);
        self.by_pod.insert(key.clone(), at);
        self.order.insert((at, key.clone()));
    }

    /// Forgets the pod's deadline (its actor holds its timers again, or it is gone).
    pub fn remove(&mut self, key: &PodKey) -> Option<Millis> {
        let at = self.by_pod.remove(key)?;
        self.order.remove(&(at, key.clone()));
        Some(at)
    }

    pub fn get(&self, key: &PodKey) -> Option<Millis> {
        self.by_pod.get(key).copied()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Millis> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Removes and returns the pods whose deadline is at or before `now`, earliest first.
    pub fn take_due(&mut self, now: Millis) -> Vec<PodKey> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.order.first()
            && *at <= now
        {
            if let Some((_, key)) = self.order.pop_first() {
                self.by_pod.remove(&key);
                due.push(key);
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.by_pod.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pod.is_empty()
    }
}

/// How long a shard's timer loop may sleep at `now` with `next` as its earliest deadline.
pub fn nap(next: Option<Millis>, now: Millis) -> Millis {
    next.map_or(MAX_NAP_MS, |at| at.saturating_sub(now).clamp(0, MAX_NAP_MS))
}

#[cfg(test)]
mod tests;
