//! Owned shards: a consumer per shard queue routing messages to pod actors, adoption when a
//! shard is taken, and (in the same task) the shard's periodic resync (see [`crate::resync`])
//! and the deadlines of its passivated pods (see [`crate::passivation`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use corral_bus::events::EventPublisher;
use corral_bus::{ConsumeOptions, Delivery};
use corral_config::Config;
use corral_model::shard::shard_of;
use corral_model::{Millis, PodKey};
use corral_protocol::{ShardMessage, decode, topology};
use corral_runtime::ContainerInfo;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use ractor::{Actor, ActorRef, ActorStatus};
use tracing::Instrument as _;

use crate::Deps;
use crate::actor::{PodActor, PodArgs, PodMsg};
use crate::passivation::{self, Settled};
use crate::registry::{CastError, Registry};
use crate::settle::{self, Settle};

/// Wall clock in milliseconds; injected so tests can control time.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    })
}

struct ShardHandle {
    cancel: Option<Box<dyn FnOnce() + Send>>,
    task: tokio::task::JoinHandle<()>,
}

/// Everything a spawner shares between its membership loop, shard consumers and actors.
pub struct Context {
    pub cfg: Config,
    pub deps: Deps,
    pub id: String,
    pub clock: Clock,
    /// Pod events leave through it, gathered per routing key.
    pub events: EventPublisher,
    shards: Mutex<HashMap<u32, ShardHandle>>,
    /// Live actors and passivated pods' deadlines. Messages are cast while holding it, so a
    /// pod's actor can never be passivated with a message in its mailbox.
    pods: Mutex<Registry>,
    last_renewed: AtomicI64,
}

impl Context {
    pub fn new(cfg: Config, deps: Deps, id: String) -> Self {
        Self::with_clock(cfg, deps, id, system_clock())
    }

    pub fn with_clock(cfg: Config, deps: Deps, id: String, clock: Clock) -> Self {
        let events = EventPublisher::new(Arc::clone(&deps.bus), usize::from(cfg.amqp.max_events_per_message));
        Self {
            cfg,
            deps,
            id,
            clock,
            events,
            shards: Mutex::new(HashMap::new()),
            pods: Mutex::new(Registry::default()),
            last_renewed: AtomicI64::new(0),
        }
    }

    pub fn now(&self) -> Millis {
        (self.clock)()
    }

    pub fn mark_renewed(&self, at: Millis) {
        self.last_renewed.store(at, Ordering::Relaxed);
    }

    pub fn last_renewed(&self) -> Millis {
        self.last_renewed.load(Ordering::Relaxed)
    }

    pub fn shard_of(&self, key: &PodKey) -> u32 {
        shard_of(&key.tenant, &key.pod_id, self.cfg.spawner.shards)
    }

    /// The registry of pods in hand. Never held across an await; a panic while holding it
    /// cannot leave it half-updated in a way that matters more than losing the spawner's
    /// view, so a poisoned lock is used as is.
    fn pods(&self) -> MutexGuard<'_, Registry> {
        self.pods.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of live pod actors (for metrics and tests).
    pub fn actor_count(&self) -> usize {
        self.pods().live_count()
    }

    /// Number of passivated pods whose next deadline the shards keep (for metrics and tests).
    pub fn kept_deadlines(&self) -> usize {
        self.pods().deadline_count()
    }

    /// The deadline kept for the pod while it has no actor.
    pub fn kept_deadline(&self, key: &PodKey) -> Option<Millis> {
        self.pods().deadline(key, self.shard_of(key))
    }

    /// Starts consuming shard `k` and reconciles every pod in it. Returns false if the
    /// queue is still consumed by someone else.
    pub async fn take_shard(self: &Arc<Self>, k: u32) -> bool {
        let opts = ConsumeOptions {
            prefetch: self.cfg.amqp.prefetch,
            exclusive: true,
            consumer_tag: format!("{}-shard-{k}", self.id),
            auto_ack: false,
        };
        let consumer = match self.deps.bus.consume(&topology::shard_queue(k), opts).await {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(shard = k, error = %e, "cannot consume the shard queue yet");
                return false;
            }
        };
        if let Err(e) = self.adopt_shard(k).await {
            tracing::warn!(shard = k, error = %e, "shard reconciliation failed; periodic resync will retry");
        }
        let ctx = Arc::clone(self);
        let mut stream = consumer.stream;
        let interval = Duration::from_millis(self.cfg.spawner.resync_interval_ms.max(1));
        let first = crate::resync::first_resync_after(k, self.cfg.spawner.shards, interval);
        let span = tracing::info_span!("task", name = "shard-consumer", shard = k);
        // The shard's resync runs in its consumer's task, so it stops with the shard and
        // can never start actors for a shard this spawner gave up.
        let task = tokio::spawn(
            async move {
                let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
                resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut memo = crate::resync::ShardMemo::default();
                // A deadline is kept at least `passivation::MARGIN_MS` ahead and the nap is
                // never longer, so it needs no reset when one is added.
                let timers = tokio::time::sleep(Duration::ZERO);
                tokio::pin!(timers);
                // Batches of kicks waiting for their pods' actors before they are settled.
                let mut batches = FuturesUnordered::new();
                loop {
                    tokio::select! {
                        delivery = stream.next() => match delivery {
                            Some(delivery) => {
                                if let Some(settle) = ctx.route(delivery).await {
                                    batches.push(settle);
                                }
                            }
                            None => break,
                        },
                        Some(()) = batches.next() => {}
                        _ = resync.tick() => ctx.resync_shard(k, &mut memo).await,
                        () = &mut timers => {
                            let nap = ctx.fire_deadlines(k).await;
                            timers.as_mut().reset(tokio::time::Instant::now() + nap);
                        }
                    }
                }
                tracing::info!("shard consumer stream ended");
            }
            .instrument(span),
        );
        let handle = ShardHandle { cancel: Some(consumer.cancel), task };
        if let Ok(mut shards) = self.shards.lock() {
            shards.insert(k, handle);
        }
        true
    }

    /// Stops consuming the shards `ks` and stops their actors; unacked messages go back to
    /// their queues.
    ///
    /// An actor finishes the message in hand before it stops. With `drain`, this waits that
    /// long at most (once, for all the shards' actors together) so that none still creates a
    /// container or writes a pod once the shard's next owner (another spawner, or this one
    /// retaking it) has adopted it.
    pub async fn release_shards(&self, ks: &[u32], drain: Option<Duration>) {
        let mut victims = Vec::new();
        for &k in ks {
            let handle = self.shards.lock().ok().and_then(|mut s| s.remove(&k));
            if let Some(mut h) = handle {
                if let Some(cancel) = h.cancel.take() {
                    cancel();
                }
                h.task.abort();
            }
            victims.extend(self.pods().release(k, |key| self.shard_of(key)));
        }
        for a in &victims {
            a.stop(Some("shard released".to_owned()));
        }
        let Some(bound) = drain else { return };
        let stopped = futures::future::join_all(victims.iter().map(|a| a.wait(None)));
        if tokio::time::timeout(bound, stopped).await.is_err() {
            let busy = victims.iter().filter(|a| a.get_status() != ActorStatus::Stopped).count();
            tracing::warn!(shards = ?ks, actors = busy, ?bound, "pod actors still busy after their shards were released");
        }
    }

    /// Is the shard consumer for `k` running (false once its stream ended)?
    pub fn shard_alive(&self, k: u32) -> bool {
        self.shards.lock().ok().and_then(|s| s.get(&k).map(|h| !h.task.is_finished())).unwrap_or(false)
    }

    /// Forgets a pod's actor and kept deadline (the actor stops itself: the pod was purged).
    pub fn forget(&self, key: &PodKey) {
        let shard = self.shard_of(key);
        self.pods().forget(key, shard);
    }

    /// Whether the pod has a live actor (which holds its pending timers).
    pub fn has_actor(&self, key: &PodKey) -> bool {
        self.pods().has_actor(key)
    }

    /// Whether something holds a wake-up for the pod at or before `at`: its live actor, or
    /// the deadline kept for it since its actor was passivated.
    pub fn holds_wake(&self, key: &PodKey, at: Option<Millis>) -> bool {
        let shard = self.shard_of(key);
        let pods = self.pods();
        pods.has_actor(key) || pods.deadline(key, shard).is_some_and(|kept| at.is_none_or(|at| kept <= at))
    }

    /// Called by a pod's actor after each message (`counted`: one the shard cast, i.e. any
    /// but its own timers; `settled`: what it knows when the message was handled without
    /// error). True when the actor must stop now: it is passivated (see
    /// [`crate::passivation`]).
    pub fn handled(&self, me: &ActorRef<PodMsg>, key: &PodKey, counted: bool, settled: Option<Settled>) -> bool {
        let passivate = settled.and_then(|s| passivation::decide(&s, self.now()));
        let shard = self.shard_of(key);
        self.pods().handled(key, shard, me.get_id(), counted, passivate)
    }

    /// Kicks the passivated pods of shard `k` whose deadline has come; returns how long the
    /// shard's timer loop may sleep before looking again.
    async fn fire_deadlines(self: &Arc<Self>, k: u32) -> Duration {
        let due = self.pods().take_due(k, self.now());
        for key in &due {
            // A kick, not `PodMsg::Timer`: the actor counts only its own timers as uncounted,
            // and a reconcile steps a due deadline exactly as a timer does.
            self.send(key, || PodMsg::Kick(None)).await;
        }
        let next = self.pods().next_deadline(k);
        Duration::from_millis(u64::try_from(passivation::nap(next, self.now())).unwrap_or(0))
    }

    /// Adoption after taking a shard: every pod gets an actor told which containers the
    /// runtime has for it; containers whose pod no longer exists are removed.
    async fn adopt_shard(self: &Arc<Self>, k: u32) -> anyhow::Result<()> {
        let keys = self.deps.store.list_shard(k).await?;
        let containers = self.deps.runtime.list().await?;
        let mut by_pod: BTreeMap<PodKey, Vec<ContainerInfo>> = BTreeMap::new();
        for c in containers.into_iter().filter(|c| self.shard_of(&c.pod) == k) {
            by_pod.entry(c.pod.clone()).or_default().push(c);
        }
        for key in &keys {
            let theirs = by_pod.remove(key).unwrap_or_default();
            self.send(key, move || PodMsg::Adopt(theirs)).await;
        }
        for (pod, orphans) in by_pod {
            // A record may have been created after we listed the shard: only remove
            // containers whose pod really does not exist.
            if matches!(self.deps.store.get_pod(&pod).await, Ok(None)) {
                for c in orphans {
                    tracing::info!(pod = %pod, container = %c.id, "removing orphan container");
                    if let Err(e) = self.deps.runtime.remove(&c.id).await {
                        tracing::warn!(container = %c.id, error = %e, "cannot remove orphan container");
                    }
                }
            }
        }
        Ok(())
    }

    /// Hands a delivery to its pod's actor; for a batch (of kicks or observations), one
    /// message to each pod's actor, and returns the future that settles the delivery once
    /// they are all handled.
    async fn route(self: &Arc<Self>, delivery: Delivery) -> Option<BoxFuture<'static, ()>> {
        let msg: ShardMessage = match decode(&delivery.body, delivery.content_type.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "dead-lettering an undecodable shard message");
                let _ = delivery.dead_letter(&e.to_string()).await;
                return None;
            }
        };
        match msg {
            ShardMessage::Kick { tenant, pod_id, .. } => {
                let key = PodKey::new(tenant, pod_id);
                self.send(&key, move || PodMsg::Kick(Some(Settle::Delivery(delivery)))).await;
                None
            }
            ShardMessage::Observation { tenant, pod_id, container_id, what } => {
                let key = PodKey::new(tenant, pod_id);
                let settle = Some(Settle::Delivery(delivery));
                self.send(&key, move || PodMsg::Observe { container_id, what, settle }).await;
                None
            }
            ShardMessage::Kicks { kicks } => {
                let traceparents = kicks.iter().map(|k| k.traceparent.clone()).collect();
                let (parts, settle) = settle::split(delivery, traceparents, self.cfg.spawner.max_delivery_attempts);
                for (kick, part) in kicks.into_iter().zip(parts) {
                    let key = PodKey::new(kick.tenant, kick.pod_id);
                    self.send(&key, move || PodMsg::Kick(Some(part))).await;
                }
                Some(settle)
            }
            ShardMessage::Observations { observations } => {
                let traceparents = observations.iter().map(|o| o.traceparent.clone()).collect();
                let (parts, settle) = settle::split(delivery, traceparents, self.cfg.spawner.max_delivery_attempts);
                for (o, part) in observations.into_iter().zip(parts) {
                    let key = PodKey::new(o.tenant, o.pod_id);
                    let (container_id, what) = (o.container_id, o.what);
                    self.send(&key, move || PodMsg::Observe { container_id, what, settle: Some(part) }).await;
                }
                Some(settle)
            }
        }
    }

    /// Delivers a message to the pod's actor, starting the actor if needed.
    pub(crate) async fn send(self: &Arc<Self>, key: &PodKey, msg: impl FnOnce() -> PodMsg) {
        let msg = match self.pods().cast(key, msg()) {
            Ok(()) => return,
            Err(CastError::NoActor(msg)) => *msg,
            Err(CastError::Lost) => {
                // Only when the actor's channel closed without handing the message back. A
                // delivery it held is redelivered once the consumer's channel closes, and the
                // periodic resync covers the rest.
                tracing::warn!(pod = %key, "actor gone; message dropped");
                return;
            }
        };
        let args = PodArgs { key: key.clone() };
        let actor = match Actor::spawn(None, PodActor { ctx: Arc::clone(self) }, args).await {
            Ok((a, _)) => a,
            Err(e) => {
                tracing::error!(pod = %key, error = %e, "cannot start the pod actor");
                return;
            }
        };
        let shard = self.shard_of(key);
        let (unused, delivered) = self.pods().start(key, shard, actor, msg);
        if let Some(a) = unused {
            a.stop(None);
        }
        if !delivered {
            tracing::warn!(pod = %key, "new actor gone; message dropped");
        }
    }
}
