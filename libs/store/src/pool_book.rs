//! [`PoolBook`]: the members of one pool as a plain value, with the pool operations of the
//! [`Store`](crate::Store) trait as methods. The embedded store keeps one book per pool (read,
//! changed and written back in one transaction) and in-memory fakes keep them in a map, so
//! both share these semantics; the Redis store implements the same rules in Lua.

use std::collections::{BTreeMap, VecDeque};

use corral_model::{Desired, Millis, Observed, PodStatus};
use serde::{Deserialize, Serialize};

use crate::{Claim, MemberState, PodRecord, PoolMember};

/// What a claim needs to know of a member's pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodCheck {
    /// No pod record.
    Missing,
    /// Marked deleted: being torn down.
    Deleted,
    /// Exists but is not (or no longer) ready.
    Starting,
    /// Runs and answers at its current generation: its location can be handed out.
    Ready,
}

impl PodCheck {
    /// The check of a pod record (`None`: no pod).
    pub fn of(rec: Option<&PodRecord>) -> Self {
        rec.map_or(Self::Missing, |r| Self::of_state(&r.desired.value, &r.observed.value))
    }

    /// The check of an existing pod from its two records.
    pub fn of_state(d: &Desired, o: &Observed) -> Self {
        if d.deleted {
            Self::Deleted
        } else if o.status == PodStatus::Available && o.observed_generation == d.generation {
            Self::Ready
        } else {
            Self::Starting
        }
    }

    /// Whether the pod exists and is not being deleted.
    fn alive(self) -> bool {
        matches!(self, Self::Starting | Self::Ready)
    }
}

/// Hands a claimed member's pod to `claimant` if the pool still owns it (`pool_owner`);
/// a pod owned by anyone else is left alone. Returns whether the claimant now owns it and
/// whether `desired` changed (and must be written back with a new version).
pub fn hand_over(desired: &mut Desired, pool_owner: &str, claimant: &str) -> (bool, bool) {
    if desired.owner == claimant {
        (true, false)
    } else if desired.owner == pool_owner {
        claimant.clone_into(&mut desired.owner);
        (true, true)
    } else {
        (false, false)
    }
}

/// The members of one pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolBook {
    members: BTreeMap<String, Entry>,
    /// Available members, oldest first: claims take from the front.
    available: VecDeque<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    state: String,
    template_version: u64,
    claimant: Option<String>,
    since: Millis,
    last_activity: Millis,
    /// Books written before the flag existed lack it: their members count as unseen.
    #[serde(default)]
    pod_seen: bool,
}

impl Entry {
    fn state(&self) -> Option<MemberState> {
        MemberState::parse(&self.state)
    }

    fn claim(&mut self, claimant: &str, now: Millis) {
        self.state = MemberState::Claimed.as_str().into();
        self.claimant = Some(claimant.to_owned());
        self.since = now;
        self.last_activity = now;
    }
}

impl PoolBook {
    /// Whether the pool has no members (its book need not be kept).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// See [`Store::pool_reserve`](crate::Store::pool_reserve).
    pub fn reserve(&mut self, member: &str, template_version: u64, cap: u32, now: Millis) -> bool {
        if self.members.contains_key(member) || self.members.len() >= cap as usize {
            return false;
        }
        let entry = Entry {
            state: MemberState::Warming.as_str().into(),
            template_version,
            claimant: None,
            since: now,
            last_activity: now,
            pod_seen: false,
        };
        self.members.insert(member.to_owned(), entry);
        true
    }

    /// See [`Store::pool_ready`](crate::Store::pool_ready).
    pub fn ready(&mut self, member: &str, now: Millis) -> bool {
        match self.members.get_mut(member) {
            Some(e) if e.state() == Some(MemberState::Warming) => {
                e.state = MemberState::Available.as_str().into();
                e.since = now;
                e.pod_seen = true;
                self.available.push_back(member.to_owned());
                true
            }
            _ => false,
        }
    }

    /// See [`Store::pool_claim`](crate::Store::pool_claim).
    pub fn claim(&mut self, claimant: &str, cold_member: &str, template_version: u64, cap: u32, now: Millis) -> Claim {
        if let Some(id) = self.available.pop_front() {
            if let Some(e) = self.members.get_mut(&id) {
                e.claim(claimant, now);
            }
            return Claim::Ready(id);
        }
        let warming = self.members.iter_mut().find(|(_, e)| e.state() == Some(MemberState::Warming));
        if let Some((id, e)) = warming {
            e.claim(claimant, now);
            return Claim::Warming(id.clone());
        }
        if self.reserve(cold_member, template_version, cap, now) {
            if let Some(e) = self.members.get_mut(cold_member) {
                e.claim(claimant, now);
            }
            return Claim::Cold(cold_member.to_owned());
        }
        Claim::Full
    }

    /// The claim of [`Store::pool_claim_instance`](crate::Store::pool_claim_instance), with
    /// `pod` telling the state of a member's pod: the oldest available member whose pod is
    /// ready (available members whose pod is not are put back to warming, for the
    /// pool-manager to promote again or replace); else the first warming member whose pod
    /// exists (handed out as ready if its pod already is); else a cold member below `cap`;
    /// else `Full`. Members handed out are marked as having had a pod.
    pub fn claim_instance(
        &mut self,
        claimant: &str,
        cold_member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
        mut pod: impl FnMut(&str) -> PodCheck,
    ) -> Claim {
        while let Some(id) = self.available.pop_front() {
            let Some(e) = self.members.get_mut(&id) else { continue };
            if pod(&id) == PodCheck::Ready {
                e.claim(claimant, now);
                e.pod_seen = true;
                return Claim::Ready(id);
            }
            e.state = MemberState::Warming.as_str().into();
            e.since = now;
        }
        let warming = self.members.iter_mut().filter(|(_, e)| e.state() == Some(MemberState::Warming));
        for (id, e) in warming {
            let check = pod(id);
            if check.alive() {
                e.claim(claimant, now);
                e.pod_seen = true;
                return if check == PodCheck::Ready { Claim::Ready(id.clone()) } else { Claim::Warming(id.clone()) };
            }
        }
        if self.reserve(cold_member, template_version, cap, now) {
            if let Some(e) = self.members.get_mut(cold_member) {
                e.claim(claimant, now);
            }
            return Claim::Cold(cold_member.to_owned());
        }
        Claim::Full
    }

    /// See [`Store::pool_withdraw`](crate::Store::pool_withdraw).
    pub fn withdraw(&mut self, member: &str) -> bool {
        match self.members.get(member) {
            Some(e) if e.state() != Some(MemberState::Claimed) => self.release(member),
            _ => false,
        }
    }

    /// See [`Store::pool_release`](crate::Store::pool_release).
    pub fn release(&mut self, member: &str) -> bool {
        self.available.retain(|id| id != member);
        self.members.remove(member).is_some()
    }

    /// See [`Store::pool_touch`](crate::Store::pool_touch).
    pub fn touch(&mut self, member: &str, now: Millis) -> bool {
        match self.members.get_mut(member) {
            Some(e) if e.state() == Some(MemberState::Claimed) => {
                e.last_activity = e.last_activity.max(now);
                true
            }
            _ => false,
        }
    }

    /// See [`Store::pool_members`](crate::Store::pool_members). Entries with an unknown
    /// state (a newer writer) are skipped.
    pub fn members(&self) -> Vec<PoolMember> {
        self.members
            .iter()
            .filter_map(|(id, e)| {
                Some(PoolMember {
                    id: id.clone(),
                    state: e.state()?,
                    template_version: e.template_version,
                    claimant: e.claimant.clone(),
                    since: e.since,
                    last_activity: e.last_activity,
                    pod_seen: e.pod_seen,
                })
            })
            .collect()
    }
}
