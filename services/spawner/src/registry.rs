//! The pods a spawner has in hand: the live actors, with the count of messages cast to each
//! and not yet handled, and per shard the deadlines of passivated pods (see
//! [`crate::passivation`]). Always used under the [`crate::shard::Context`]'s lock, which is
//! what makes casting and passivating exclude each other.

use std::collections::HashMap;

use corral_model::{Millis, PodKey};
use ractor::{ActorId, ActorRef, MessagingErr};

use crate::actor::PodMsg;
use crate::passivation::{Passivate, Timers};

struct Live {
    actor: ActorRef<PodMsg>,
    /// Messages cast through the shard that the actor has not reported handled yet.
    queued: u32,
}

#[derive(Default)]
pub struct Registry {
    live: HashMap<PodKey, Live>,
    timers: HashMap<u32, Timers>,
}

/// Why a message could not be cast.
pub enum CastError {
    /// No live actor: the message comes back to be given to a new one (boxed: a message is
    /// large, and this path is taken once per actor start only).
    NoActor(Box<PodMsg>),
    /// The actor was gone and the channel kept the message.
    Lost,
}

impl Registry {
    /// Casts to the pod's live actor. An actor found stopped (it failed) is forgotten, and
    /// the message given back so a new actor can take it.
    pub fn cast(&mut self, key: &PodKey, msg: PodMsg) -> Result<(), CastError> {
        let Some(live) = self.live.get_mut(key) else {
            return Err(CastError::NoActor(Box::new(msg)));
        };
        match live.actor.cast(msg) {
            Ok(()) => {
                live.queued = live.queued.saturating_add(1);
                Ok(())
            }
            Err(e) => {
                self.live.remove(key);
                match e {
                    MessagingErr::SendErr(msg) => Err(CastError::NoActor(Box::new(msg))),
                    MessagingErr::ChannelClosed | MessagingErr::InvalidActorType => Err(CastError::Lost),
                }
            }
        }
    }

    /// Registers a new actor for the pod and casts `msg` to it. It holds the pod's timers
    /// from now on, so a deadline kept for the pod is dropped. When another live actor was
    /// registered meanwhile, that one gets the message. Returns the actor to stop (when it
    /// went unused) and whether the message was delivered.
    pub fn start(
        &mut self,
        key: &PodKey,
        shard: u32,
        actor: ActorRef<PodMsg>,
        msg: PodMsg,
    ) -> (Option<ActorRef<PodMsg>>, bool) {
        let msg = match self.cast(key, msg) {
            Ok(()) => return (Some(actor), true),
            Err(CastError::Lost) => return (Some(actor), false),
            Err(CastError::NoActor(msg)) => *msg,
        };
        if let Some(t) = self.timers.get_mut(&shard) {
            t.remove(key);
        }
        self.live.insert(key.clone(), Live { actor, queued: 0 });
        (None, self.cast(key, msg).is_ok())
    }

    /// The pod's actor `actor` handled a message (`counted`: one cast through the shard).
    /// Returns true when it must stop now: `passivate` says it may, nothing else was cast to
    /// it, and it is still the pod's registered actor. Its deadline is then kept here.
    pub fn handled(
        &mut self,
        key: &PodKey,
        shard: u32,
        actor: ActorId,
        counted: bool,
        passivate: Option<Passivate>,
    ) -> bool {
        let Some(live) = self.live.get_mut(key) else { return false };
        if live.actor.get_id() != actor {
            return false;
        }
        if counted {
            live.queued = live.queued.saturating_sub(1);
        }
        let Some(p) = passivate else { return false };
        if live.queued > 0 {
            return false;
        }
        self.live.remove(key);
        if let Some(at) = p.deadline {
            self.timers.entry(shard).or_default().set(key, at);
        }
        true
    }

    /// Forgets the pod entirely (it was purged).
    pub fn forget(&mut self, key: &PodKey, shard: u32) {
        self.live.remove(key);
        if let Some(t) = self.timers.get_mut(&shard) {
            t.remove(key);
        }
    }

    /// Forgets every pod of `shard`; returns the live actors, to be stopped.
    pub fn release(&mut self, shard: u32, shard_of: impl Fn(&PodKey) -> u32) -> Vec<ActorRef<PodMsg>> {
        self.timers.remove(&shard);
        let keys: Vec<PodKey> = self.live.keys().filter(|k| shard_of(k) == shard).cloned().collect();
        keys.iter().filter_map(|k| self.live.remove(k)).map(|l| l.actor).collect()
    }

    pub fn has_actor(&self, key: &PodKey) -> bool {
        self.live.contains_key(key)
    }

    /// The deadline kept for a passivated pod.
    pub fn deadline(&self, key: &PodKey, shard: u32) -> Option<Millis> {
        self.timers.get(&shard).and_then(|t| t.get(key))
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    pub fn deadline_count(&self) -> usize {
        self.timers.values().map(Timers::len).sum()
    }

    pub fn next_deadline(&self, shard: u32) -> Option<Millis> {
        self.timers.get(&shard).and_then(Timers::next)
    }

    pub fn take_due(&mut self, shard: u32, now: Millis) -> Vec<PodKey> {
        self.timers.get_mut(&shard).map(|t| t.take_due(now)).unwrap_or_default()
    }
}
