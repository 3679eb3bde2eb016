//! Types of the pool and document operations of [`Store`](crate::Store).

use corral_model::Millis;

/// The state of one pool member (see [`corral_model::pool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// Reserved; its pod is being created.
    Warming,
    /// Ready and unclaimed.
    Available,
    /// Handed to a user.
    Claimed,
}

impl MemberState {
    /// The name stored for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warming => "warming",
            Self::Available => "available",
            Self::Claimed => "claimed",
        }
    }

    /// Inverse of [`MemberState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warming" => Some(Self::Warming),
            "available" => Some(Self::Available),
            "claimed" => Some(Self::Claimed),
            _ => None,
        }
    }
}

/// One member of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMember {
    /// The member's pod id.
    pub id: String,
    pub state: MemberState,
    /// Version of the template document the member was started from.
    pub template_version: u64,
    /// Who claimed it (claimed members only).
    pub claimant: Option<String>,
    /// When it entered its current state.
    pub since: Millis,
    /// Last activity recorded by the proxy; `since` until then.
    pub last_activity: Millis,
    /// Whether the member's pod is known to have existed (it was ready, or it was claimed
    /// ready or warming). A member with this flag and no pod has had its pod deleted and
    /// purged: it is released, never re-created.
    pub pod_seen: bool,
}

/// What [`Store::pool_claim`](crate::Store::pool_claim) handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A ready member: usable at once.
    Ready(String),
    /// A member whose pod is still starting: usable once ready.
    Warming(String),
    /// No unclaimed member, but room under the cap: the caller's `cold_member` was recorded
    /// as claimed and the caller must create its pod.
    Cold(String),
    /// No unclaimed member and the cap is reached.
    Full,
}

/// A claim as the Binder API makes it: see [`Store::pool_claim_instance`](crate::Store::pool_claim_instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRequest<'a> {
    /// Tenant of the pool's pods.
    pub tenant: &'a str,
    /// The pool id: also the name of the pool's template and pool documents.
    pub pool: &'a str,
    /// The versions of the template (`corral_model::pool::TEMPLATE_KIND`) and pool
    /// (`POOL_KIND`) documents the caller's `cap` and template were read at. If either
    /// document has changed (or is gone), nothing is claimed: [`ClaimOutcome::Stale`].
    pub template_version: u64,
    pub pool_version: u64,
    /// The pool's cap (from the pool document).
    pub cap: u32,
    /// Owner of the pool's unclaimed member pods (`corral_model::pool::pool_owner`).
    pub pool_owner: &'a str,
    /// Who claims: recorded with the member and made the owner of its pod.
    pub claimant: &'a str,
    /// The id a cold instance gets when the pool has no member to hand out.
    pub cold_member: &'a str,
    pub now: Millis,
}

/// What [`Store::pool_claim_instance`](crate::Store::pool_claim_instance) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// A member was handed out (or `Full`). `owner_set` says the claimant now owns the
    /// member's pod and, for [`Claim::Ready`], that the pod was ready when claimed; when
    /// false the caller sets the owner itself (and checks readiness on the record).
    Claimed { claim: Claim, owner_set: bool },
    /// The template or pool document changed since the caller read it: reload, retry.
    Stale,
}
