//! The pod actor: the only writer of a pod's observed state. Each message is handled by
//! reading the pod from the store, stepping the state machine, persisting the new observed
//! state (compare-and-set) *before* performing its actions, and feeding the actions' outcomes
//! back into the machine. Bus deliveries are acknowledged only after that.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use corral_model::machine::{Action, Event, Want, step};
use corral_model::{ActionLogEntry, Millis, PodKey, PodStatus};
use corral_protocol::Observation;
use corral_runtime::{ContainerInfo, ContainerState};
use corral_store::{PodRecord, StoreError};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};
use tracing::Instrument as _;

use crate::effects;
use crate::settle::Settle;
use crate::shard::Context;

pub struct PodActor {
    pub ctx: Arc<Context>,
}

pub struct PodArgs {
    pub key: PodKey,
}

pub enum PodMsg {
    /// Desired state may have changed (or a resync): reconcile.
    Kick(Option<Settle>),
    /// Something the health-poller saw.
    Observe { container_id: String, what: Observation, settle: Option<Settle> },
    /// A timer set by the machine fired.
    Timer,
    /// The shard was just taken: these are the containers the runtime has for this pod.
    Adopt(Vec<ContainerInfo>),
}

pub struct PodState {
    key: PodKey,
    /// Last (status, container) announced on the events exchange.
    announced: Option<(PodStatus, Option<String>)>,
    /// The machine's earliest pending wake-up. Every step of a pod with a deadline asks for
    /// its wake-up again (a resync, each observation): only an earlier one replaces it, so
    /// a long-lived pod holds one timer instead of one per step.
    wake: Option<(Millis, Timer)>,
}

/// A pending `send_after` of [`PodMsg::Timer`].
type Timer = JoinHandle<Result<(), MessagingErr<PodMsg>>>;

impl PodState {
    /// What passivation needs to know (see `crate::passivation`): the status and container
    /// last announced, which the last message left as stored, and the pending wake-up.
    fn settled(&self) -> Option<crate::passivation::Settled> {
        let (status, container) = self.announced.as_ref()?;
        let wake = self.wake.as_ref().filter(|(_, timer)| !timer.is_finished()).map(|(at, _)| *at);
        Some(crate::passivation::Settled { status: *status, has_container: container.is_some(), wake })
    }

    /// Arms a wake-up at `at` unless one at or before `at` is pending.
    fn wake_at(&mut self, me: &ActorRef<PodMsg>, at: Millis, now: Millis) {
        if let Some((pending, timer)) = &self.wake
            && *pending <= at
            && !timer.is_finished()
        {
            return;
        }
        if let Some((_, timer)) = self.wake.take() {
            timer.abort();
        }
        let after = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
        self.wake = Some((at, me.send_after(Duration::from_millis(after.max(1)), || PodMsg::Timer)));
    }
}

/// Why processing a message failed; transient failures are retried via the bus.
#[derive(Debug, thiserror::Error)]
enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Outcome {
    Continue,
    Purged,
}

impl Actor for PodActor {
    type Msg = PodMsg;
    type State = PodState;
    type Arguments = PodArgs;

    async fn pre_start(&self, _me: ActorRef<PodMsg>, args: PodArgs) -> Result<PodState, ActorProcessingErr> {
        Ok(PodState { key: args.key, announced: None, wake: None })
    }

    async fn post_stop(&self, _me: ActorRef<PodMsg>, st: &mut PodState) -> Result<(), ActorProcessingErr> {
        // A pending timer holds the actor's cell: let it go with the actor.
        if let Some((_, timer)) = st.wake.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(&self, me: ActorRef<PodMsg>, msg: PodMsg, st: &mut PodState) -> Result<(), ActorProcessingErr> {
        // Everything but the actor's own timers is cast (and counted) by the shard.
        let counted = !matches!(msg, PodMsg::Timer);
        let (events, delivery) = match msg {
            PodMsg::Kick(settle) => (vec![Event::Reconcile], settle),
            PodMsg::Timer => (vec![Event::Timer], None),
            PodMsg::Observe { container_id, what, settle } => (vec![observation_event(container_id, what)], settle),
            PodMsg::Adopt(containers) => match self.adoption_events(st, containers).await {
                Ok(evs) => (evs, None),
                Err(e) => {
                    tracing::warn!(pod = %st.key, error = %e, "adoption failed; retrying on the next resync");
                    (vec![Event::Reconcile], None)
                }
            },
        };
        // Continue the trace of the request that caused this message, when it carries one.
        let span = tracing::info_span!("pod_step", pod = %st.key);
        if let Some(settle) = &delivery {
            settle.continue_trace(&span);
        }
        let result = self.process(&me, st, events).instrument(span).await;
        let settled = if matches!(result, Ok(Outcome::Continue)) { st.settled() } else { None };
        match result {
            Ok(outcome) => {
                if let Some(settle) = delivery {
                    settle.handled(&st.key).await;
                }
                if matches!(outcome, Outcome::Purged) {
                    self.ctx.forget(&st.key);
                    me.stop(Some("pod purged".into()));
                }
            }
            Err(e) => {
                tracing::warn!(pod = %st.key, error = %e, "processing failed; will retry");
                if let Some(settle) = delivery {
                    settle.failed(&e.to_string(), self.ctx.cfg.spawner.max_delivery_attempts).await;
                }
                let backoff = Duration::from_millis(self.ctx.cfg.spawner.backoff_base_ms.max(100));
                me.send_after(backoff, || PodMsg::Timer);
            }
        }
        if self.ctx.handled(&me, &st.key, counted, settled) {
            me.stop(Some("passivated".into()));
        }
        Ok(())
    }
}

fn observation_event(container_id: String, what: Observation) -> Event {
    match what {
        Observation::Ready => Event::Ready { container_id },
        Observation::Exited { exit_code, reason } => Event::Exited { container_id, exit_code, reason },
        Observation::Gone => Event::Exited { container_id, exit_code: None, reason: "container disappeared".into() },
    }
}

impl PodActor {
    async fn load(&self, key: &PodKey) -> Result<Option<PodRecord>, StoreError> {
        self.ctx.deps.store.get_pod(key).await
    }

    /// Turns what the runtime has for this pod into events: the current container's real
    /// state, an in-flight spawn to adopt, and strays to remove.
    async fn adoption_events(&self, st: &PodState, containers: Vec<ContainerInfo>) -> Result<Vec<Event>, ProcessError> {
        let Some(rec) = self.load(&st.key).await? else { return Ok(vec![Event::Reconcile]) };
        let obs = &rec.observed.value;
        let mut events = Vec::new();
        let mut current_seen = false;
        for c in containers {
            if obs.container_id.as_deref() == Some(c.id.as_str()) {
                current_seen = true;
                match c.state {
                    ContainerState::Running => {}
                    ContainerState::Exited(code) => events.push(Event::Exited {
                        container_id: c.id,
                        exit_code: code,
                        reason: "exited while no spawner owned the pod".into(),
                    }),
                    ContainerState::Created => events.push(Event::Exited {
                        container_id: c.id,
                        exit_code: None,
                        reason: "created but never started".into(),
                    }),
                }
            } else if obs.container_id.is_none() && obs.status == PodStatus::SpawnerSetup && c.instance == obs.instance
            {
                // The spawn in flight when the pod's last owner stopped.
                current_seen = true;
                match c.state {
                    // Created but never started (the owner died between the two): the
                    // reconcile below spawns the same instance again, which starts it.
                    ContainerState::Created => {
                        let (id, instance) = (short(&c.id), c.instance);
                        let note = format!(
                            "starting container {id} (instance {instance}): created but not started before the takeover"
                        );
                        self.log(&st.key, note).await;
                    }
                    ContainerState::Running => events.push(Event::Spawned {
                        instance: c.instance,
                        endpoint: effects::endpoint_of(&c),
                        container_id: c.id,
                    }),
                    ContainerState::Exited(code) => {
                        events.push(Event::Spawned {
                            instance: c.instance,
                            endpoint: effects::endpoint_of(&c),
                            container_id: c.id.clone(),
                        });
                        events.push(Event::Exited {
                            container_id: c.id,
                            exit_code: code,
                            reason: "exited while no spawner owned the pod".into(),
                        });
                    }
                }
            } else {
                tracing::info!(pod = %st.key, container = %c.id, "removing a stray container of the pod");
                self.ctx.deps.runtime.remove(&c.id).await.ok();
                self.log(&st.key, format!("removed stray container {} (instance {})", short(&c.id), c.instance)).await;
            }
        }
        if let (Some(id), false) = (&obs.container_id, current_seen) {
            events.push(Event::Exited {
                container_id: id.clone(),
                exit_code: None,
                reason: "container disappeared while no spawner owned the pod".into(),
            });
        }
        events.push(Event::Reconcile);
        // A pod that was CREATING needs its probe again: announce it afresh.
        self.reannounce(st, &rec).await;
        Ok(events)
    }

    async fn reannounce(&self, st: &PodState, rec: &PodRecord) {
        if rec.observed.value.status == PodStatus::Creating {
            effects::publish_event(&self.ctx, &st.key, &rec.desired.value, &rec.observed.value).await;
        }
    }

    async fn process(
        &self,
        me: &ActorRef<PodMsg>,
        st: &mut PodState,
        events: Vec<Event>,
    ) -> Result<Outcome, ProcessError> {
        let Some(rec) = self.load(&st.key).await? else {
            return Ok(Outcome::Purged);
        };
        let desired = rec.desired.value;
        let want = Want::from_desired(&desired);
        let settings = self.ctx.cfg.machine_settings();
        let mut obs = rec.observed.value;
        let mut version = rec.observed.version;
        let mut queue: VecDeque<Event> = events.into();
        let mut outcome = Outcome::Continue;
        while let Some(ev) = queue.pop_front() {
            // Batch exit codes settled, failed bootstrap scripts named (see `crate::exit`).
            let ev = crate::exit::explain_exit(&*self.ctx.deps.runtime, &desired, &obs, ev).await;
            let now = self.ctx.now();
            let (next, actions) = step(obs.clone(), &want, ev, now, &settings);
            let (entries, actions) = self.split_log(now, actions);
            // The step's log lines go with the state they explain, in one atomic write,
            // before any of its actions is performed.
            if next != obs {
                version = self.ctx.deps.store.put_observed_logged(&st.key, &next, version, &entries).await?;
                obs = next;
            } else {
                for entry in entries {
                    self.append_log(&st.key, &entry).await;
                }
            }
            for action in actions {
                match action {
                    // Split off above.
                    Action::Log(_) => {}
                    Action::Wake { at } => st.wake_at(me, at, now),
                    Action::Spawn { instance } => queue.push_back(effects::spawn(&self.ctx, &desired, instance).await),
                    Action::Remove { container_id } => match self.ctx.deps.runtime.remove(&container_id).await {
                        Ok(()) => queue.push_back(Event::Removed { container_id }),
                        Err(e) => {
                            tracing::warn!(pod = %st.key, error = %e, "container removal failed; retrying");
                            me.send_after(Duration::from_millis(1000), || PodMsg::Timer);
                        }
                    },
                    Action::Purge => {
                        let shard = self.ctx.shard_of(&st.key);
                        self.ctx.deps.store.purge_pod(&st.key, shard).await?;
                        crate::git::forget(&self.ctx, &st.key).await;
                        outcome = Outcome::Purged;
                    }
                }
            }
        }
        if matches!(outcome, Outcome::Continue) {
            let now_announced = (obs.status, obs.container_id.clone());
            if st.announced.as_ref() != Some(&now_announced) {
                effects::publish_event(&self.ctx, &st.key, &desired, &obs).await;
                st.announced = Some(now_announced);
            }
        }
        Ok(outcome)
    }

    /// Separates the step's log lines (as action-log entries at `now`) from its other
    /// actions, keeping the order of both.
    fn split_log(&self, now: Millis, actions: Vec<Action>) -> (Vec<ActionLogEntry>, Vec<Action>) {
        let mut entries = Vec::new();
        let mut rest = Vec::with_capacity(actions.len());
        for action in actions {
            match action {
                Action::Log(message) => entries.push(entry(now, message)),
                other => rest.push(other),
            }
        }
        (entries, rest)
    }

    async fn log(&self, key: &PodKey, message: String) {
        self.append_log(key, &entry(self.ctx.now(), message)).await;
    }

    async fn append_log(&self, key: &PodKey, entry: &ActionLogEntry) {
        if let Err(e) = self.ctx.deps.store.append_action_log(key, entry).await {
            tracing::warn!(pod = %key, error = %e, "cannot append to the action log");
        }
    }
}

fn entry(ts: Millis, message: String) -> ActionLogEntry {
    ActionLogEntry { ts, actor: "spawner".into(), message }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
