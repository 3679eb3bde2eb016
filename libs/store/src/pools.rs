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
