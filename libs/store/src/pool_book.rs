//! [`PoolBook`]: the members of one pool as a plain value, with the pool operations of the
//! [`Store`](crate::Store) trait as methods. The embedded store keeps one book per pool (read,
//! changed and written back in one transaction) and in-memory fakes keep them in a map, so
//! both share these semantics; the Redis store implements the same rules in Lua.

use std::collections::{BTreeMap, VecDeque};

use corral_model::Millis;
use serde::{Deserialize, Serialize};

use crate::{Claim, MemberState, PoolMember};

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
                })
            })
            .collect()
    }
}
