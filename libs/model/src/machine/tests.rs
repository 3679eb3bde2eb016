use super::*;
use crate::record::Desired;
use crate::record::PodStatus::{Available, Complete, Creating, Deleting, Error, Requested, SpawnerSetup, Stopped};
use crate::spec::{Networking, PodSpec, Protocol};

mod batch;

/// A fixed "now"; rows express other times relative to it.
const T: Millis = 1_700_000_000_000;
const MIN: Millis = 60_000;
/// Default TTL (43 200 s) in milliseconds.
const TTL_12H: Millis = 43_200_000;

fn cfg() -> Settings {
    Settings::default()
}

/// An observation in `status`, having acted on generation `generation`, with `instance`
/// instances created so far and `cid` as its current container.
fn obs(status: PodStatus, generation: u64, instance: u64, cid: Option<&str>) -> Observed {
    Observed {
        status,
        observed_generation: generation,
        instance,
        container_id: cid.map(str::to_string),
        since: T - 1_000,
        update_ts: T - 1_000,
        ..Observed::default()
    }
}

/// Chainable tweaks for table rows.
trait ObsExt {
    fn attempts(self, n: u32) -> Self;
    fn retry_at(self, at: Millis) -> Self;
    fn ttl_at(self, at: Millis) -> Self;
    fn since(self, at: Millis) -> Self;
}

impl ObsExt for Observed {
    fn attempts(mut self, n: u32) -> Self {
        self.attempts = n;
        self
    }
    fn retry_at(mut self, at: Millis) -> Self {
        self.retry_at = Some(at);
        self
    }
    fn ttl_at(mut self, at: Millis) -> Self {
        self.time_to_stop_ts = Some(at);
        self
    }
    fn since(mut self, at: Millis) -> Self {
        self.since = at;
        self
    }
}

fn on(generation: u64) -> Want {
    Want {
        on: true,
        generation,
        deleted: false,
        ttl_default_s: 43_200,
        ttl_instance_s: None,
        needs_probe: true,
        batch: None,
    }
}
fn off(generation: u64) -> Want {
    Want { on: false, ..on(generation) }
}
fn deleted(generation: u64) -> Want {
    Want { deleted: true, ..on(generation) }
}
fn no_probe(w: Want) -> Want {
    Want { needs_probe: false, ..w }
}
fn ttl(w: Want, default_s: i64, instance_s: Option<i64>) -> Want {
    Want { ttl_default_s: default_s, ttl_instance_s: instance_s, ..w }
}

fn spawned(instance: u64, cid: &str) -> Event {
    Event::Spawned {
        instance,
        container_id: cid.into(),
        endpoint: Some(Endpoint { host: "127.0.0.1".into(), port: 40_000 }),
    }
}
fn spawn_failed(instance: u64) -> Event {
    Event::SpawnFailed { instance, reason: "no such image".into() }
}
fn ready(cid: &str) -> Event {
    Event::Ready { container_id: cid.into() }
}
fn exited(cid: &str, code: i64) -> Event {
    Event::Exited { container_id: cid.into(), exit_code: Some(code), reason: "exited".into() }
}
fn removed(cid: &str) -> Event {
    Event::Removed { container_id: cid.into() }
}

/// One expected action: exact, or a log line containing a fragment.
#[derive(Debug)]
enum Ex {
    Is(Action),
    Log(&'static str),
}

fn x_spawn(instance: u64) -> Ex {
    Ex::Is(Action::Spawn { instance })
}
fn x_remove(cid: &str) -> Ex {
    Ex::Is(Action::Remove { container_id: cid.into() })
}
fn x_wake(at: Millis) -> Ex {
    Ex::Is(Action::Wake { at })
}
fn x_purge() -> Ex {
    Ex::Is(Action::Purge)
}
fn x_log(fragment: &'static str) -> Ex {
    Ex::Log(fragment)
}

/// The observed fields every row pins down.
#[derive(Debug, PartialEq, Eq)]
struct Key {
    observed_generation: u64,
    instance: u64,
    attempts: u32,
    container_id: Option<String>,
    retry_at: Option<Millis>,
    time_to_stop_ts: Option<Millis>,
}

fn key(observed_generation: u64, instance: u64, attempts: u32, cid: Option<&str>) -> Key {
    Key {
        observed_generation,
        instance,
        attempts,
        container_id: cid.map(str::to_string),
        retry_at: None,
        time_to_stop_ts: None,
    }
}

impl Key {
    fn retry(mut self, at: Millis) -> Self {
        self.retry_at = Some(at);
        self
    }
    fn ttl(mut self, at: Millis) -> Self {
        self.time_to_stop_ts = Some(at);
        self
    }
    fn of(o: &Observed) -> Self {
        Self {
            observed_generation: o.observed_generation,
            instance: o.instance,
            attempts: o.attempts,
            container_id: o.container_id.clone(),
            retry_at: o.retry_at,
            time_to_stop_ts: o.time_to_stop_ts,
        }
    }
}

struct Case {
    name: &'static str,
    /// Starting state, what the user wants, the event and when it happens.
    given: (Observed, Want, Event, Millis),
    /// Resulting status, the exact actions, and the key observed fields.
    then: (PodStatus, Vec<Ex>, Key),
}

/// Runs one step and checks it against the expectation; returns the new state for chaining.
fn check(c: Case) -> Observed {
    let (start, want, event, now) = c.given;
    let (status, expected, key) = c.then;
    let (got, actions) = step(start.clone(), &want, event.clone(), now, &cfg());
    let ctx = format!("case '{}': event {event:?}\nactions {actions:?}\nobserved {got:?}", c.name);
    assert_eq!(got.status, status, "{ctx}");
    assert_eq!(Key::of(&got), key, "{ctx}");
    assert_eq!(actions.len(), expected.len(), "{ctx}\nexpected {expected:?}");
    for (a, e) in actions.iter().zip(&expected) {
        match (a, e) {
            (Action::Log(text), Ex::Log(frag)) => {
                assert!(text.contains(frag), "{ctx}\nlog {text:?} lacks {frag:?}");
            }
            (a, Ex::Is(e)) => assert_eq!(a, e, "{ctx}"),
            (a, e) => panic!("{ctx}\ngot {a:?}, expected {e:?}"),
        }
    }
    let changed = Observed { update_ts: start.update_ts, ..got.clone() } != start;
    let want_ts = if changed { now } else { start.update_ts };
    assert_eq!(got.update_ts, want_ts, "{ctx}: update_ts moves exactly when the record changes");
    let since = if got.status == start.status { start.since } else { now };
    assert_eq!(got.since, since, "{ctx}: since moves exactly when the status changes");
    if !want.on || want.deleted {
        let spawns = actions.iter().any(|a| matches!(a, Action::Spawn { .. }));
        assert!(!spawns, "{ctx}: spawn while off or deleted");
    }
    got
}

#[rustfmt::skip]
fn lifecycle_rows() -> Vec<Case> {
    vec![
        Case {
            name: "new pod is spawned",
            given: (Observed::default(), on(1), Event::Reconcile, T),
            then: (SpawnerSetup, vec![x_log("spawn requested (generation 1)"), x_spawn(1)], key(1, 1, 0, None)),
        },
        Case {
            name: "new pod created OFF is stored STOPPED without a spawn",
            given: (Observed::default(), off(1), Event::Reconcile, T),
            then: (Stopped, vec![], key(1, 0, 0, None)),
        },
        Case {
            name: "spawned with a probe waits in CREATING",
            given: (obs(SpawnerSetup, 1, 1, None), on(1), spawned(1, "c1"), T),
            then: (Creating, vec![x_log("waiting for readiness"), x_wake(T + 120_000)], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "spawned without a probe is AVAILABLE at once",
            given: (obs(SpawnerSetup, 1, 1, None), no_probe(on(1)), spawned(1, "c1"), T),
            then: (Available, vec![x_log("AVAILABLE"), x_wake(T + TTL_12H)], key(1, 1, 0, Some("c1")).ttl(T + TTL_12H)),
        },
        Case {
            name: "ready makes the pod AVAILABLE",
            given: (obs(Creating, 1, 1, Some("c1")), on(1), ready("c1"), T),
            then: (Available, vec![x_log("AVAILABLE"), x_wake(T + TTL_12H)], key(1, 1, 0, Some("c1")).ttl(T + TTL_12H)),
        },
        Case {
            name: "ready for another container is ignored",
            given: (obs(Creating, 1, 1, Some("c1")).since(T - 5_000), on(1), ready("c2"), T),
            then: (Creating, vec![x_wake(T + 115_000)], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "ttl -1 sets no deadline",
            given: (obs(Creating, 1, 1, Some("c1")), ttl(on(1), -1, None), ready("c1"), T),
            then: (Available, vec![x_log("AVAILABLE")], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "time_to_stop_instance overrides the default",
            given: (obs(Creating, 1, 1, Some("c1")), ttl(on(1), 43_200, Some(300)), ready("c1"), T),
            then: (Available, vec![x_log("AVAILABLE"), x_wake(T + 300_000)], key(1, 1, 0, Some("c1")).ttl(T + 300_000)),
        },
        Case {
            name: "time_to_stop_instance -1 falls back to the default",
            given: (obs(Creating, 1, 1, Some("c1")), ttl(on(1), 600, Some(-1)), ready("c1"), T),
            then: (Available, vec![x_log("AVAILABLE"), x_wake(T + 600_000)], key(1, 1, 0, Some("c1")).ttl(T + 600_000)),
        },
        Case {
            name: "stop tears the container down",
            given: (obs(Available, 1, 1, Some("c1")).ttl_at(T + MIN), off(2), Event::Reconcile, T),
            then: (
                Deleting,
                vec![x_log("stopping: stop requested"), x_remove("c1")],
                key(1, 1, 0, Some("c1")).ttl(T + MIN),
            ),
        },
        Case {
            name: "removed after stop settles STOPPED at the wanted generation",
            given: (obs(Deleting, 1, 1, Some("c1")), off(2), removed("c1"), T),
            then: (Stopped, vec![x_log("pod STOPPED: stop requested")], key(2, 1, 0, None)),
        },
        Case {
            name: "exit while DELETING re-issues the remove",
            given: (obs(Deleting, 1, 1, Some("c1")), off(2), exited("c1", 143), T),
            then: (Deleting, vec![x_remove("c1")], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "restart with a container tears it down first",
            given: (obs(Available, 1, 1, Some("c1")), on(2), Event::Reconcile, T),
            then: (Deleting, vec![x_log("stopping: restart requested"), x_remove("c1")], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "restart spawns the next instance once the old one is removed",
            given: (obs(Deleting, 1, 1, Some("c1")).attempts(2), on(2), removed("c1"), T),
            then: (SpawnerSetup, vec![x_log("spawn requested (generation 2)"), x_spawn(2)], key(2, 2, 0, None)),
        },
        Case {
            name: "restart from ERROR starts over with zero attempts",
            given: (obs(Error, 1, 5, None).attempts(5), on(2), Event::Reconcile, T),
            then: (SpawnerSetup, vec![x_log("spawn requested (generation 2)"), x_spawn(6)], key(2, 6, 0, None)),
        },
        Case {
            name: "TTL reached tears down",
            given: (obs(Available, 1, 1, Some("c1")).ttl_at(T), on(1), Event::Timer, T),
            then: (
                Deleting,
                vec![x_log("stopping: time_to_stop reached"), x_remove("c1")],
                key(1, 1, 0, Some("c1")).ttl(T),
            ),
        },
        Case {
            name: "TTL not reached re-arms the timer",
            given: (obs(Available, 1, 1, Some("c1")).ttl_at(T + 1), on(1), Event::Timer, T),
            then: (Available, vec![x_wake(T + 1)], key(1, 1, 0, Some("c1")).ttl(T + 1)),
        },
        Case {
            name: "removed after TTL settles STOPPED",
            given: (obs(Deleting, 1, 1, Some("c1")).ttl_at(T - 1), on(1), removed("c1"), T),
            then: (Stopped, vec![x_log("pod STOPPED: time_to_stop reached")], key(1, 1, 0, None)),
        },
        Case {
            name: "STOPPED at the wanted generation is not respawned",
            given: (obs(Stopped, 1, 1, None), on(1), Event::Reconcile, T),
            then: (Stopped, vec![], key(1, 1, 0, None)),
        },
        Case {
            name: "delete with a container removes it",
            given: (obs(Available, 1, 1, Some("c1")), deleted(2), Event::Reconcile, T),
            then: (Deleting, vec![x_log("stopping: pod deleted"), x_remove("c1")], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "delete: a timer while DELETING re-issues only the remove",
            given: (obs(Deleting, 1, 1, Some("c1")), deleted(2), Event::Timer, T),
            then: (Deleting, vec![x_remove("c1")], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "delete: removed then purge",
            given: (obs(Deleting, 1, 1, Some("c1")), deleted(2), removed("c1"), T),
            then: (Deleting, vec![x_purge()], key(1, 1, 0, None)),
        },
        Case {
            name: "delete without a container purges at once",
            given: (obs(Stopped, 1, 1, None), deleted(2), Event::Reconcile, T),
            then: (Stopped, vec![x_purge()], key(1, 1, 0, None)),
        },
        Case {
            name: "persisted SPAWNER SETUP re-spawns the same instance",
            given: (obs(SpawnerSetup, 1, 3, None), on(1), Event::Reconcile, T),
            then: (SpawnerSetup, vec![x_spawn(3)], key(1, 3, 0, None)),
        },
    ]
}

#[rustfmt::skip]
fn failure_rows() -> Vec<Case> {
    vec![
        Case {
            name: "exit code 0 completes",
            given: (obs(Available, 1, 1, Some("c1")).ttl_at(T + MIN), on(1), exited("c1", 0), T),
            then: (Complete, vec![x_log("exited with code 0"), x_remove("c1")], key(1, 1, 0, Some("c1")).ttl(T + MIN)),
        },
        Case {
            name: "COMPLETE stays COMPLETE once removed",
            given: (obs(Complete, 1, 1, Some("c1")), on(1), removed("c1"), T),
            then: (Complete, vec![], key(1, 1, 0, None)),
        },
        Case {
            name: "crash backs off and retries",
            given: (obs(Available, 1, 1, Some("c1")), on(1), exited("c1", 137), T),
            then: (
                Requested,
                vec![x_remove("c1"), x_log("code 137 (exited); retrying in 1.0s (attempt 2 of 5)"), x_wake(T + 1_000)],
                key(1, 1, 1, Some("c1")).retry(T + 1_000),
            ),
        },
        Case {
            name: "old container removed while backing off: wait for the retry time",
            given: (obs(Requested, 1, 1, Some("c1")) .attempts(1) .retry_at(T + 1_000), on(1), removed("c1"), T),
            then: (Requested, vec![x_wake(T + 1_000)], key(1, 1, 1, None).retry(T + 1_000)),
        },
        Case {
            name: "timer before retry_at only re-arms",
            given: (obs(Requested, 1, 1, None).attempts(1).retry_at(T + 1_000), on(1), Event::Timer, T + 999),
            then: (Requested, vec![x_wake(T + 1_000)], key(1, 1, 1, None).retry(T + 1_000)),
        },
        Case {
            name: "timer at retry_at spawns the next instance",
            given: (obs(Requested, 1, 1, None).attempts(1).retry_at(T + 1_000), on(1), Event::Timer, T + 1_000),
            then: (SpawnerSetup, vec![x_spawn(2)], key(1, 2, 1, None)),
        },
        Case {
            // The failed container may still be running (a stall) or being torn down: a new
            // one now could make two. Re-issue the remove and wait for `Removed`.
            name: "timer at retry_at waits while the old container is not yet removed",
            given: (obs(Requested, 1, 1, Some("c1")) .attempts(1) .retry_at(T + 1_000), on(1), Event::Timer, T + 1_000),
            then: (Requested, vec![x_remove("c1")], key(1, 1, 1, Some("c1")).retry(T + 1_000)),
        },
        Case {
            name: "spawn failure backs off (third failure waits 4s)",
            given: (obs(SpawnerSetup, 1, 3, None).attempts(2), on(1), spawn_failed(3), T),
            then: (
                Requested,
                vec![x_log("could not start the container: no such image; retrying in 4.0s (attempt 4 of 5)"), x_wake(T + 4_000)],
                key(1, 3, 3, None).retry(T + 4_000),
            ),
        },
        Case {
            name: "last allowed crash settles in ERROR",
            given: (obs(Available, 1, 5, Some("c5")).attempts(4), on(1), exited("c5", 1), T),
            then: (Error, vec![x_remove("c5"), x_log("giving up after 5 attempts")], key(1, 5, 5, Some("c5"))),
        },
        Case {
            name: "ERROR is sticky on reconcile",
            given: (obs(Error, 1, 5, None).attempts(5), on(1), Event::Reconcile, T),
            then: (Error, vec![], key(1, 5, 5, None)),
        },
        Case {
            name: "ERROR is sticky on timer",
            given: (obs(Error, 1, 5, None).attempts(5), on(1), Event::Timer, T + 10 * MIN),
            then: (Error, vec![], key(1, 5, 5, None)),
        },
        Case {
            name: "stall in CREATING fails the attempt",
            given: (obs(Creating, 1, 1, Some("c1")).since(T - 120_000), on(1), Event::Timer, T),
            then: (
                Requested,
                vec![x_remove("c1"), x_log("did not become ready within 120s; retrying"), x_wake(T + 1_000)],
                key(1, 1, 1, Some("c1")).retry(T + 1_000),
            ),
        },
        Case {
            name: "CREATING before the stall deadline re-arms",
            given: (obs(Creating, 1, 1, Some("c1")).since(T - 119_999), on(1), Event::Timer, T),
            then: (Creating, vec![x_wake(T + 1)], key(1, 1, 0, Some("c1"))),
        },
    ]
}

#[rustfmt::skip]
fn stale_and_invalid_rows() -> Vec<Case> {
    vec![
        Case {
            name: "late spawn of an old instance is removed",
            given: (obs(Available, 1, 2, Some("c2")), ttl(on(1), -1, None), spawned(1, "c1"), T),
            then: (Available, vec![x_remove("c1")], key(1, 2, 0, Some("c2"))),
        },
        Case {
            name: "spawn result after a spawn failure is removed",
            given: (obs(Requested, 1, 1, None).attempts(1).retry_at(T + 1_000), on(1), spawned(1, "c1"), T),
            then: (Requested, vec![x_remove("c1"), x_wake(T + 1_000)], key(1, 1, 1, None).retry(T + 1_000)),
        },
        Case {
            name: "redelivered spawn result for the current container keeps it",
            given: (obs(Creating, 1, 1, Some("c1")), on(1), spawned(1, "c1"), T),
            then: (Creating, vec![x_wake(T - 1_000 + 120_000)], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "exit of a stale container is ignored",
            given: (obs(Available, 1, 2, Some("c2")), ttl(on(1), -1, None), exited("c1", 137), T),
            then: (Available, vec![], key(1, 2, 0, Some("c2"))),
        },
        Case {
            name: "spawn failure of a stale instance is ignored",
            given: (obs(Creating, 1, 2, Some("c2")), on(1), spawn_failed(1), T),
            then: (Creating, vec![x_wake(T - 1_000 + 120_000)], key(1, 2, 0, Some("c2"))),
        },
        Case {
            name: "ready while STOPPED is ignored",
            given: (obs(Stopped, 1, 1, None), on(1), ready("c1"), T),
            then: (Stopped, vec![], key(1, 1, 0, None)),
        },
        Case {
            name: "removed for an unknown container is ignored",
            given: (obs(Available, 1, 1, Some("c1")), ttl(on(1), -1, None), removed("c9"), T),
            then: (Available, vec![], key(1, 1, 0, Some("c1"))),
        },
        Case {
            name: "spawn result while switched off is removed",
            given: (obs(Stopped, 2, 1, None), off(2), spawned(1, "c1"), T),
            then: (Stopped, vec![x_remove("c1")], key(2, 1, 0, None)),
        },
        Case {
            name: "spawn result after a stop arrived mid-spawn is torn down",
            given: (obs(SpawnerSetup, 1, 1, None), off(2), spawned(1, "c1"), T),
            then: (
                Deleting,
                vec![x_log("container started"), x_log("stopping: stop requested"), x_remove("c1")],
                key(1, 1, 0, Some("c1")),
            ),
        },
    ]
}

#[test]
fn transition_table() {
    // Every row runs even when an earlier one fails, so one run lists all broken rows.
    let failed: Vec<&str> = lifecycle_rows()
        .into_iter()
        .chain(failure_rows())
        .chain(stale_and_invalid_rows())
        .filter_map(|case| {
            let name = case.name;
            std::panic::catch_unwind(|| check(case)).is_err().then_some(name)
        })
        .collect();
    assert!(failed.is_empty(), "failing rows: {failed:#?}");
}

/// Feeds `events` in order, at one-second intervals from `T`, and returns every step's output.
fn run(mut o: Observed, want: &Want, events: &[Event]) -> Vec<(Observed, Vec<Action>)> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let now = T + 1_000 * i64::try_from(i).expect("few events");
        let (next, actions) = step(o, want, e.clone(), now, &cfg());
        out.push((next.clone(), actions));
        o = next;
    }
    out
}

#[test]
fn ttl_stop_is_not_undone_by_later_reconciles() {
    let w = ttl(no_probe(on(1)), 300, None);
    let start = T - 300_000;
    let (o, _) = step(Observed::default(), &w, Event::Reconcile, start, &cfg());
    let (o, _) = step(o, &w, spawned(1, "c1"), start, &cfg());
    assert_eq!((o.status, o.time_to_stop_ts), (Available, Some(T)));
    let steps = run(o, &w, &[Event::Timer, removed("c1"), Event::Reconcile, Event::Timer, Event::Reconcile]);
    let statuses: Vec<_> = steps.iter().map(|(o, _)| o.status).collect();
    assert_eq!(statuses, [Deleting, Stopped, Stopped, Stopped, Stopped]);
    for (o, actions) in &steps[2..] {
        assert!(actions.is_empty(), "settled pod acted: {actions:?} in {o:?}");
    }
}

#[test]
fn crash_loop_doubles_the_delay_then_settles_in_error() {
    let w = no_probe(on(1));
    let mut o = step(Observed::default(), &w, Event::Reconcile, T, &cfg()).0;
    let mut delays = Vec::new();
    for attempt in 1..=5u64 {
        let now = T + i64::try_from(attempt).expect("small") * 10 * MIN;
        let cid = format!("c{attempt}");
        o = step(o, &w, spawned(attempt, &cid), now, &cfg()).0;
        assert_eq!(o.status, Available, "attempt {attempt}");
        o = step(o, &w, exited(&cid, 1), now, &cfg()).0;
        o = step(o, &w, removed(&cid), now, &cfg()).0;
        if let Some(at) = o.retry_at {
            delays.push(at - now);
            let (next, actions) = step(o, &w, Event::Timer, at, &cfg());
            assert_eq!(actions, [Action::Spawn { instance: attempt + 1 }]);
            o = next;
        }
    }
    assert_eq!(delays, [1_000, 2_000, 4_000, 8_000]);
    assert_eq!((o.status, o.attempts, o.status_container.restart_count), (Error, 5, 4));
}

#[test]
fn want_follows_desired() {
    let spec = PodSpec { pod_id: "mypod".into(), image: "img".into(), ..PodSpec::default() };
    let d = Desired {
        tenant: "t".into(),
        owner: "o".into(),
        spec,
        status_requested: crate::record::StatusRequested::Restart,
        generation: 7,
        deleted: false,
        creation_ts: T,
        update_ts: T,
    };
    assert_eq!(Want::from_desired(&d), on(7));
    let off_d = Desired { status_requested: crate::record::StatusRequested::Off, deleted: true, ..d.clone() };
    let w = Want::from_desired(&off_d);
    assert_eq!((w.on, w.deleted), (false, true));
    let mut local = d.clone();
    local
        .spec
        .networking
        .insert("default".into(), Networking { protocol: Protocol::LocalOnly, ..Networking::default() });
    local.spec.time_to_stop_instance = Some(-1);
    let w = Want::from_desired(&local);
    assert_eq!((w.needs_probe, w.ttl_instance_s), (false, Some(-1)));
    let mut none = d;
    none.spec.networking.clear();
    assert!(!Want::from_desired(&none).needs_probe, "no default port: running is ready");
}

/// Invariants over random event sequences. Events name containers and instances relative to
/// the current state, so that sequences reach every status instead of being mostly stale.
mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    #[derive(Debug, Clone)]
    enum Cid {
        Current,
        Fresh,
        Pool(u8),
    }

    #[derive(Debug, Clone)]
    enum Ev {
        Reconcile,
        Timer,
        /// `offset` from the current instance (0 = the one being spawned).
        Spawned {
            offset: i8,
            cid: Cid,
        },
        SpawnFailed {
            offset: i8,
        },
        Ready(Cid),
        Exited(Cid, Option<i64>),
        Removed(Cid),
        /// The user changes desired state; the actor then reconciles.
        Want {
            on: bool,
            bump: bool,
            delete: bool,
        },
    }

    fn small_cfg() -> Settings {
        Settings { stall_timeout_ms: 10_000, max_attempts: 3, backoff_base_ms: 1_000, backoff_max_ms: 4_000 }
    }

    fn offset() -> impl Strategy<Value = i8> {
        prop_oneof![4 => Just(0i8), 1 => -2i8..=1]
    }

    fn known_cid() -> impl Strategy<Value = Cid> {
        prop_oneof![3 => Just(Cid::Current), 1 => (0u8..3).prop_map(Cid::Pool)]
    }

    fn ev() -> impl Strategy<Value = Ev> {
        let new_cid = prop_oneof![3 => Just(Cid::Fresh), 1 => (0u8..3).prop_map(Cid::Pool)];
        let code = prop_oneof![Just(Some(0)), Just(Some(1)), Just(Some(137)), Just(None)];
        prop_oneof![
            2 => Just(Ev::Reconcile),
            3 => Just(Ev::Timer),
            3 => (offset(), new_cid).prop_map(|(offset, cid)| Ev::Spawned { offset, cid }),
            1 => offset().prop_map(|offset| Ev::SpawnFailed { offset }),
            2 => known_cid().prop_map(Ev::Ready),
            2 => (known_cid(), code).prop_map(|(c, code)| Ev::Exited(c, code)),
            3 => known_cid().prop_map(Ev::Removed),
            1 => (any::<bool>(), any::<bool>(), prop::bool::weighted(0.1))
                .prop_map(|(on, bump, delete)| Ev::Want { on, bump, delete }),
        ]
    }

    fn initial_want() -> impl Strategy<Value = Want> {
        let ttl_default = prop_oneof![Just(-1i64), Just(300), Just(43_200)];
        let ttl_instance = prop_oneof![Just(None), Just(Some(-1i64)), Just(Some(300))];
        (any::<bool>(), any::<bool>(), ttl_default, ttl_instance).prop_map(|(on, needs_probe, d, i)| Want {
            on,
            generation: 1,
            deleted: false,
            ttl_default_s: d,
            ttl_instance_s: i,
            needs_probe,
            batch: None,
        })
    }

    fn dt() -> impl Strategy<Value = Millis> {
        prop_oneof![0i64..3_000, 0i64..400_000]
    }

    /// Desired-state changes as the gateway makes them: switching on or off bumps the
    /// generation, and a delete is final.
    fn change(w: Want, on: bool, bump: bool, delete: bool) -> Want {
        if w.deleted {
            return w;
        }
        let generation = if bump || delete || on != w.on { w.generation + 1 } else { w.generation };
        Want { on, generation, deleted: delete, ..w }
    }

    fn resolve(ev: Ev, o: &Observed, i: usize) -> Event {
        let cid = |c: Cid| match c {
            Cid::Current => o.container_id.clone().unwrap_or_else(|| "c0".into()),
            Cid::Fresh => format!("k{i}"),
            Cid::Pool(n) => format!("c{n}"),
        };
        let inst = |d: i8| o.instance.saturating_add_signed(i64::from(d));
        match ev {
            Ev::Reconcile | Ev::Want { .. } => Event::Reconcile,
            Ev::Timer => Event::Timer,
            Ev::Spawned { offset, cid: c } => {
                Event::Spawned { instance: inst(offset), container_id: cid(c), endpoint: None }
            }
            Ev::SpawnFailed { offset } => Event::SpawnFailed { instance: inst(offset), reason: "boom".into() },
            Ev::Ready(c) => Event::Ready { container_id: cid(c) },
            Ev::Exited(c, exit_code) => Event::Exited { container_id: cid(c), exit_code, reason: "x".into() },
            Ev::Removed(c) => Event::Removed { container_id: cid(c) },
        }
    }

    fn invariants(
        before: &Observed,
        w: &Want,
        o: &Observed,
        actions: &[Action],
        now: Millis,
        cfg: &Settings,
    ) -> Result<(), String> {
        let spawns: Vec<u64> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn { instance } => Some(*instance),
                _ => None,
            })
            .collect();
        // (a) a new container is only asked for once the previous one is confirmed gone.
        if !spawns.is_empty() && o.container_id.is_some() {
            return Err(format!("(a) spawn emitted while container {:?} is still tracked", o.container_id));
        }
        if spawns.len() > 1 || spawns.iter().any(|&n| n != o.instance) {
            return Err(format!("(a) spawns {spawns:?} are not exactly the current instance {}", o.instance));
        }
        if o.instance < before.instance || o.observed_generation < before.observed_generation {
            return Err("instance or observed_generation went backwards".into());
        }
        // (b) bounded retries; ERROR exactly when they are used up (within a generation).
        if o.attempts > cfg.max_attempts {
            return Err(format!("(b) attempts {} > max {}", o.attempts, cfg.max_attempts));
        }
        if o.status == Error && o.attempts < cfg.max_attempts {
            return Err("(b) ERROR before the attempts are used up".into());
        }
        let settled_gen = w.on && !w.deleted && o.observed_generation == w.generation;
        if settled_gen && (o.status == Error) != (o.attempts >= cfg.max_attempts) {
            return Err(format!("(b) status {} with {} attempts", o.status, o.attempts));
        }
        // (c) a deleted pod with nothing running is purged.
        if w.deleted && o.container_id.is_none() && !actions.contains(&Action::Purge) {
            return Err("(c) deleted without a container but no purge".into());
        }
        // (e) switched off and nothing running: STOPPED at the wanted generation.
        if !w.on
            && !w.deleted
            && o.container_id.is_none()
            && (o.status != Stopped || o.observed_generation != w.generation)
        {
            return Err(format!(
                "(e) off without a container but {} at generation {}",
                o.status, o.observed_generation
            ));
        }
        // A retry never starts before its backoff has passed.
        let backing_off = before.status == Requested
            && before.observed_generation == w.generation
            && before.retry_at.is_some_and(|at| at > now);
        if backing_off && !spawns.is_empty() {
            return Err(format!("retry spawned before retry_at {:?}", before.retry_at));
        }
        // (f) nothing is spawned for a pod that is off or deleted.
        if (!w.on || w.deleted) && !spawns.is_empty() {
            return Err("(f) spawn while off or deleted".into());
        }
        // Timers are always in the future: no hot loop.
        if let Some(a) = actions.iter().find(|a| matches!(a, Action::Wake { at } if *at <= now)) {
            return Err(format!("wake not in the future: {a:?} at {now}"));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn invariants_hold_for_any_event_sequence(
            first in initial_want(),
            script in prop::collection::vec((ev(), dt()), 1..80),
        ) {
            let cfg = small_cfg();
            let mut w = first;
            let mut o = Observed::default();
            let mut now = T;
            for (i, (ev, dt)) in script.into_iter().enumerate() {
                now += dt;
                if let Ev::Want { on, bump, delete } = ev {
                    w = change(w, on, bump, delete);
                }
                let event = resolve(ev, &o, i);
                let out = step(o.clone(), &w, event.clone(), now, &cfg);
                // (d) determinism.
                prop_assert_eq!(&step(o.clone(), &w, event.clone(), now, &cfg), &out, "step is not deterministic");
                let (next, actions) = out;
                invariants(&o, &w, &next, &actions, now, &cfg).map_err(|m| {
                    TestCaseError::fail(format!("step {i}: {m}\nevent {event:?}\nwant {w:?}\nbefore {o:?}\nafter {next:?}\nactions {actions:?}"))
                })?;
                o = next;
            }
        }
    }
}

/// Periodic resyncs send `Reconcile` to every pod: for a settled or steady pod that must be
/// an exact no-op (same record, no actions), or every resync would cost a store write.
#[test]
fn reconcile_of_a_steady_pod_changes_nothing() {
    let steady = [
        (obs(PodStatus::Stopped, 1, 0, None), off(1)),
        (obs(PodStatus::Error, 1, 1, None), on(1)),
        (obs(PodStatus::Complete, 1, 1, None), on(1)),
        (obs(PodStatus::Available, 1, 1, Some("c1")), no_probe(on(1))),
    ];
    for (start, want) in steady {
        let (got, actions) = step(start.clone(), &want, Event::Reconcile, T + 5, &cfg());
        let actions: Vec<_> = actions.into_iter().filter(|a| !matches!(a, Action::Wake { .. })).collect();
        assert_eq!(got, start, "{:?} changed on a no-op reconcile", start.status);
        assert!(actions.is_empty(), "{:?}: {actions:?}", start.status);
    }
}
