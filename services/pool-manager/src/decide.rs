//! What a pass does with one pool member, decided from the member's record, what is known
//! of its pod and the template: a pure function, so every case is a row of a table test.
//!
//! The rule that keeps deleted instances deleted: a pass never creates a pod for an
//! existing member. A member without a pod is either in flight (its creator, the
//! pool-manager or a claimant's gateway, creates the pod right after recording the member)
//! or its pod is gone: a member whose pod was seen is released (or replaced) at once, and
//! one whose pod never appeared is given [`MISSING_POD_GRACE_MS`] before the same happens.

use corral_model::Millis;
use corral_model::pool::AppTemplate;
use corral_store::{MemberState, PoolMember};

/// How long (ms) a member may lack a pod that was never seen before it is given up: its
/// creator records the member first and creates the pod right after, so this only passes
/// when the creator died in between (the claimant of a cold instance then got an error).
pub const MISSING_POD_GRACE_MS: Millis = 5_000;

/// What is known of a member's pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodFacts<'a> {
    /// Marked deleted: being torn down.
    pub deleted: bool,
    /// AVAILABLE at its current generation.
    pub ready: bool,
    /// In ERROR at its current generation: it will not become ready by itself.
    pub failed: bool,
    pub owner: &'a str,
}

/// What the pass does with a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: counted in this state.
    Keep(MemberState),
    /// A warming member whose pod is ready: make it available.
    Promote,
    /// An unclaimed member that cannot serve (pod broken, deleted, gone, or from an outdated
    /// template): withdraw it and delete its pod; the sizing plan starts a replacement.
    Replace,
    /// A claimed member whose pod is gone or being deleted: free its slot under the cap.
    Release,
    /// A claimed member idle or old past the template's limits: delete its pod, free its slot.
    Cull,
    /// A claimed member whose pod is not yet owned by its claimant: fix the owner.
    SetOwner,
}

/// Whether a claimed member is due for culling at `now`.
pub fn should_cull(member: &PoolMember, template: Option<&AppTemplate>, now: Millis) -> bool {
    let Some(t) = template else { return false };
    let secs = |s: u64| Millis::try_from(s.saturating_mul(1000)).unwrap_or(Millis::MAX);
    let idle = t.cull_timeout_s > 0 && now.saturating_sub(member.last_activity) >= secs(t.cull_timeout_s);
    let old = t.max_age_s > 0 && now.saturating_sub(member.since) >= secs(t.max_age_s);
    idle || old
}

/// Decides for one member. `template` is the pool's template and its version, `None` once
/// the template is gone (the pool then only drains).
pub fn decide(
    member: &PoolMember,
    pod: Option<PodFacts<'_>>,
    template: Option<(&AppTemplate, u64)>,
    now: Millis,
) -> Decision {
    let in_flight = !member.pod_seen && now.saturating_sub(member.since) < MISSING_POD_GRACE_MS;
    match member.state {
        MemberState::Warming | MemberState::Available => {
            let outdated = template.is_none_or(|(_, v)| v != member.template_version);
            match pod {
                _ if outdated => Decision::Replace,
                None if in_flight && member.state == MemberState::Warming => Decision::Keep(MemberState::Warming),
                None => Decision::Replace,
                Some(p) if p.deleted || p.failed => Decision::Replace,
                Some(p) if p.ready && member.state == MemberState::Warming => Decision::Promote,
                Some(_) => Decision::Keep(member.state),
            }
        }
        MemberState::Claimed => match pod {
            None if in_flight => Decision::Keep(MemberState::Claimed),
            None => Decision::Release,
            Some(p) if p.deleted => Decision::Release,
            Some(_) if should_cull(member, template.map(|(t, _)| t), now) => Decision::Cull,
            Some(p) if member.claimant.as_deref().is_some_and(|c| c != p.owner) => Decision::SetOwner,
            Some(_) => Decision::Keep(MemberState::Claimed),
        },
    }
}

#[cfg(test)]
mod tests;
