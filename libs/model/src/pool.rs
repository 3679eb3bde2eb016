//! Pools of pre-warmed pods: the records the Binder API and the pool-manager share, and the
//! pure sizing decision [`plan`].
//!
//! A pool member is in exactly one state: *warming* (its pod is being created), *available*
//! (ready and unclaimed: what a claim hands out) or *claimed* (owned by a user). The pool's
//! `cap` bounds all three together; `size` is how many unclaimed members (warming or
//! available) the pool-manager keeps.

use serde::{Deserialize, Serialize};

use crate::{Millis, PodSpec};

/// Store document kind of [`AppTemplate`]s (name `{tenant}/{template}`).
pub const TEMPLATE_KIND: &str = "binder-template";
/// Store document kind of [`PoolConfig`]s (name `{tenant}/{template}`, the pool id).
pub const POOL_KIND: &str = "binder-pool";
/// Owner of pool members until they are claimed.
pub const POOL_OWNER_PREFIX: &str = "pool:";
/// Environment variable naming the pool a member pod belongs to (its label).
pub const POOL_LABEL_ENV: &str = "CORRAL_POOL";

/// The pool id (and template document name) of `template` in `tenant`.
pub fn pool_id(tenant: &str, template: &str) -> String {
    format!("{tenant}/{template}")
}

/// A launchable application template, registered through the Binder API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppTemplate {
    pub name: String,
    pub tenant: String,
    /// The pod every instance runs; `pod_id` is chosen per instance.
    pub spec: PodSpec,
    /// Idle seconds after which a claimed instance is culled (0: never).
    pub cull_timeout_s: u64,
    /// Age in seconds after which a claimed instance is culled even if active (0: never).
    pub max_age_s: u64,
    /// The Binder `services` list, kept as given.
    pub services: serde_json::Value,
    /// The Binder `limits` object, kept as given.
    pub limits: serde_json::Value,
    /// The command before substitution, as given.
    pub command: Option<String>,
    pub image_name: String,
    pub created: Millis,
    pub modified: Millis,
}

/// What a claim does when the pool is empty and the cap is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Refuse with 429 and `Retry-After`.
    #[default]
    Reject,
    /// Start a cold instance outside the pool's cap.
    ColdSpawn,
}

/// A pool's settings, stored as a versioned document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolConfig {
    pub tenant: String,
    pub template: String,
    /// Unclaimed members to keep.
    pub size: u32,
    /// Most members (warming + available + claimed) at any time.
    pub cap: u32,
    pub when_full: WhenFull,
    /// Seconds sent in `Retry-After` when a claim is refused.
    pub retry_after_s: u32,
    /// Set by `DELETE`: idle members are drained, claimed ones left until culled.
    pub deleted: bool,
}

/// How many members of a pool are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCounts {
    pub warming: u32,
    pub available: u32,
    pub claimed: u32,
}

impl PoolCounts {
    /// All members: what the cap bounds.
    pub fn total(&self) -> u32 {
        self.warming.saturating_add(self.available).saturating_add(self.claimed)
    }

    /// Members not claimed.
    pub fn unclaimed(&self) -> u32 {
        self.warming.saturating_add(self.available)
    }
}

/// What the pool-manager wants of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolTarget {
    pub size: u32,
    pub cap: u32,
}

/// One sizing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolAction {
    /// Start this many new (warming) members.
    Create(u32),
    /// Remove this many unclaimed members, warming ones first (they cost least to lose).
    Drain { warming: u32, available: u32 },
}

/// The sizing decision for one pool: create members until `size` are unclaimed, without
/// ever letting the total pass `cap`; drain unclaimed members beyond `size` (and beyond
/// the cap, should it have been lowered). Claimed members are never touched here.
pub fn plan(observed: PoolCounts, target: PoolTarget) -> Vec<PoolAction> {
    let unclaimed = observed.unclaimed();
    // Keep `size` unclaimed, and fewer if the claimed ones leave no room for them; since
    // `keep + claimed <= cap`, creating up to `keep` never passes the cap.
    let keep = target.size.min(target.cap.saturating_sub(observed.claimed));
    if unclaimed < keep {
        return vec![PoolAction::Create(keep - unclaimed)];
    }
    let excess = unclaimed - keep;
    if excess == 0 {
        return Vec::new();
    }
    let warming = excess.min(observed.warming);
    let available = excess - warming;
    vec![PoolAction::Drain { warming, available }]
}

/// The counts once `actions` are carried out (new members start warming).
pub fn apply(observed: PoolCounts, actions: &[PoolAction]) -> PoolCounts {
    let mut c = observed;
    for action in actions {
        match *action {
            PoolAction::Create(n) => c.warming = c.warming.saturating_add(n),
            PoolAction::Drain { warming, available } => {
                c.warming = c.warming.saturating_sub(warming);
                c.available = c.available.saturating_sub(available);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests;

/// The desired and observed state of a new pool member pod `member` of `template` in pool
/// `pool`, owned by `owner` (the pool's owner name until claimed, or the claimant of a
/// cold instance). The pod carries [`POOL_LABEL_ENV`] so it is recognisable as a pool
/// member wherever it is listed.
pub fn member_pod(
    template: &AppTemplate,
    pool: &str,
    member: &str,
    owner: &str,
    now: Millis,
) -> (crate::Desired, crate::Observed) {
    let mut spec = template.spec.clone();
    spec.pod_id = member.to_owned();
    spec.environment_variables.insert(POOL_LABEL_ENV.into(), pool.to_owned());
    if let Some(command) = &template.command {
        spec.command = Some(vec!["/bin/sh".into(), "-c".into(), substitute(command, member, &spec)]);
    }
    if spec.description.is_empty() {
        spec.description = format!("member of pool {pool}");
    }
    let desired = crate::Desired {
        tenant: template.tenant.clone(),
        owner: owner.to_owned(),
        spec,
        status_requested: crate::StatusRequested::On,
        generation: 1,
        deleted: false,
        creation_ts: now,
        update_ts: now,
    };
    // Not yet reconciled: the spawner starts it on the first kick or resync.
    let observed = crate::Observed {
        status: crate::PodStatus::Stopped,
        observed_generation: 0,
        since: now,
        update_ts: now,
        ..crate::Observed::default()
    };
    (desired, observed)
}

/// The Binder command placeholders: `{base_path}` (the instance's proxied path), `{port}`
/// (its default networking port), `{ip}` (all interfaces) and `{token}` (empty: the proxy
/// checks the owner's token, so the application need not).
fn substitute(command: &str, member: &str, spec: &PodSpec) -> String {
    let port = spec.networking.get("default").map_or(0, |n| n.port);
    command
        .replace("{base_path}", &format!("/user/{member}/"))
        .replace("{port}", &port.to_string())
        .replace("{ip}", "0.0.0.0")
        .replace("{token}", "")
}

/// The owner name of a pool's members until they are claimed.
pub fn pool_owner(template: &str) -> String {
    format!("{POOL_OWNER_PREFIX}{template}")
}

/// A fresh pool member id: a valid pod id (lowercase letters and digits, starting with a
/// letter) with enough randomness (`entropy`, hex digits) to be unguessable in a URL.
pub fn member_id(entropy: &str) -> String {
    let digits: String = entropy.chars().filter(char::is_ascii_alphanumeric).take(24).collect();
    format!("i{}", digits.to_ascii_lowercase())
}
