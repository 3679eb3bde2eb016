//! Batch runs: transition table and invariants over random event sequences.

use super::*;
use crate::record::Termination;
use crate::record::TerminationReason::{self, Failed, Infrastructure, Succeeded, Timeout};
use crate::session::{SessionRun, SessionType};

const KEEP: Millis = crate::machine::batch::KEEP_EXITED_MS;

/// A batch pod with a run limit of `timeout_s` (as `Want::from_desired` makes it: no probe).
fn batch(w: Want, timeout_s: Option<u32>) -> Want {
    Want { needs_probe: false, batch: Some(Batch { timeout_s }), ..w }
}

/// A running batch instance started at `at`.
fn running(cid: &str, at: Millis) -> Observed {
    let mut o = obs(Available, 1, 1, Some(cid)).ttl_at(at + TTL_12H);
    o.status_container.start_time = Some(at);
    o.start_instance_ts = Some(at);
    o
}

fn exited_because(cid: &str, code: Option<i64>, reason: &str) -> Event {
    Event::Exited { container_id: cid.into(), exit_code: code, reason: reason.into() }
}

/// A row of the transition table, plus the termination and exit code it must leave.
struct Row {
    case: Case,
    termination: Option<TerminationReason>,
    exit_code: Option<i64>,
    message: &'static str,
}

fn row(case: Case, termination: Option<TerminationReason>, exit_code: Option<i64>, message: &'static str) -> Row {
    Row { case, termination, exit_code, message }
}

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    let ended = |mut o: Observed, reason, code| {
        o.termination = Some(Termination { reason, message: "earlier run".into() });
        o.status_container.exit_code = code;
        o.status_container.message = "earlier run".into();
        o
    };
    vec![
        row(Case {
            name: "spawned batch run is AVAILABLE at once, with a wake-up at its deadline",
            given: (obs(SpawnerSetup, 1, 1, None), batch(on(1), Some(5)), spawned(1, "c1"), T),
            then: (
                Available,
                vec![x_log("batch run started (timeout 5 s)"), x_wake(T + 5_000), x_wake(T + TTL_12H)],
                key(1, 1, 0, Some("c1")).ttl(T + TTL_12H),
            ),
        }, None, None, "running"),
        row(Case {
            name: "no limit: no deadline",
            given: (obs(SpawnerSetup, 1, 1, None), batch(on(1), None), spawned(1, "c1"), T),
            then: (Available, vec![x_log("batch run started"), x_wake(T + TTL_12H)], key(1, 1, 0, Some("c1")).ttl(T + TTL_12H)),
        }, None, None, "running"),
        row(Case {
            name: "exit 3 ends the run COMPLETE/failed and keeps the code",
            given: (running("c1", T - 1_000), batch(on(1), Some(5)), exited("c1", 3), T),
            then: (
                Complete,
                vec![x_log("batch run failed: exit code 3; pod COMPLETE"), x_wake(T + KEEP)],
                key(1, 1, 0, Some("c1")).ttl(T - 1_000 + TTL_12H),
            ),
        }, Some(Failed), Some(3), "batch run failed: exit code 3"),
        row(Case {
            name: "exit 0 ends the run COMPLETE/succeeded",
            given: (running("c1", T - 1_000), batch(on(1), None), exited("c1", 0), T),
            then: (
                Complete,
                vec![x_log("batch run succeeded (exit code 0); pod COMPLETE"), x_wake(T + KEEP)],
                key(1, 1, 0, Some("c1")).ttl(T - 1_000 + TTL_12H),
            ),
        }, Some(Succeeded), Some(0), "batch run succeeded"),
        row(Case {
            name: "a failed bootstrap is a failed run, and says so",
            given: (running("c1", T - 1_000), batch(on(1), None), exited_because("c1", Some(7), "the bootstrap script failed"), T),
            then: (
                Complete,
                vec![x_log("exit code 7 (the bootstrap script failed)"), x_wake(T + KEEP)],
                key(1, 1, 0, Some("c1")).ttl(T - 1_000 + TTL_12H),
            ),
        }, Some(Failed), Some(7), "batch run failed: exit code 7 (the bootstrap script failed)"),
        row(Case {
            name: "a container gone without an exit code is an infrastructure ERROR, not retried",
            given: (running("c1", T - 1_000), batch(on(1), None), exited_because("c1", None, "container disappeared"), T),
            then: (
                Error,
                vec![x_log("without an exit code (container disappeared); pod ERROR"), x_remove("c1")],
                key(1, 1, 0, Some("c1")).ttl(T - 1_000 + TTL_12H),
            ),
        }, Some(Infrastructure), None, "batch run lost"),
        row(Case {
            name: "the exited container is kept while its output is collected",
            given: (ended(obs(Complete, 1, 1, Some("c1")).since(T - 1_000), Failed, Some(3)), batch(on(1), None), Event::Timer, T),
            then: (Complete, vec![x_wake(T - 1_000 + KEEP)], key(1, 1, 0, Some("c1"))),
        }, Some(Failed), Some(3), ""),
        row(Case {
            name: "then it is removed",
            given: (ended(obs(Complete, 1, 1, Some("c1")).since(T - KEEP), Succeeded, Some(0)), batch(on(1), None), Event::Timer, T),
            then: (Complete, vec![x_remove("c1")], key(1, 1, 0, Some("c1"))),
        }, Some(Succeeded), Some(0), ""),
        row(Case {
            name: "a restart meanwhile removes it at once",
            given: (ended(obs(Complete, 1, 1, Some("c1")), Failed, Some(3)), batch(on(2), None), Event::Reconcile, T),
            then: (Deleting, vec![x_log("stopping: restart requested"), x_remove("c1")], key(1, 1, 0, Some("c1"))),
        }, Some(Failed), Some(3), ""),
        row(Case {
            name: "timer before the deadline re-arms it",
            given: (running("c1", T - 4_000), batch(on(1), Some(5)), Event::Timer, T),
            then: (Available, vec![x_wake(T + 1_000), x_wake(T - 4_000 + TTL_12H)], key(1, 1, 0, Some("c1")).ttl(T - 4_000 + TTL_12H)),
        }, None, None, ""),
        row(Case {
            name: "timer at the deadline removes the container: COMPLETE/timeout",
            given: (running("c1", T - 5_000), batch(on(1), Some(5)), Event::Timer, T),
            then: (
                Complete,
                vec![x_log("batch run timed out after 5 s; removing the container"), x_remove("c1")],
                key(1, 1, 0, Some("c1")).ttl(T - 5_000 + TTL_12H),
            ),
        }, Some(Timeout), None, "batch run timed out after 5 s"),
        row(Case {
            name: "the kill after a timeout does not change the outcome",
            given: (ended(obs(Complete, 1, 1, Some("c1")), Timeout, None), batch(on(1), Some(5)), exited("c1", 137), T),
            then: (Complete, vec![x_remove("c1")], key(1, 1, 0, Some("c1"))),
        }, Some(Timeout), None, ""),
        row(Case {
            name: "COMPLETE stays COMPLETE once removed, and is not rerun",
            given: (ended(obs(Complete, 1, 1, Some("c1")), Failed, Some(3)), batch(on(1), None), removed("c1"), T),
            then: (Complete, vec![], key(1, 1, 0, None)),
        }, Some(Failed), Some(3), ""),
        row(Case {
            name: "a restart runs it again and clears the previous outcome",
            given: (ended(obs(Complete, 1, 1, None), Failed, Some(3)), batch(on(2), None), Event::Reconcile, T),
            then: (SpawnerSetup, vec![x_log("spawn requested (generation 2)"), x_spawn(2)], key(2, 2, 0, None)),
        }, None, None, "creating the container"),
        row(Case {
            name: "a spawn failure backs off and retries (the command never ran)",
            given: (obs(SpawnerSetup, 1, 1, None), batch(on(1), None), spawn_failed(1), T),
            then: (
                Requested,
                vec![x_log("no such image; retrying in 1.0s (attempt 2 of 5)"), x_wake(T + 1_000)],
                key(1, 1, 1, None).retry(T + 1_000),
            ),
        }, None, None, ""),
        row(Case {
            name: "the last spawn failure is an infrastructure ERROR",
            given: (obs(SpawnerSetup, 1, 5, None).attempts(4), batch(on(1), None), spawn_failed(5), T),
            then: (Error, vec![x_log("giving up after 5 attempts")], key(1, 5, 5, None)),
        }, Some(Infrastructure), None, "batch run could not start: could not start the container: no such image"),
        row(Case {
            name: "time_to_stop still stops a batch run",
            given: (running("c1", T - TTL_12H), batch(on(1), None), Event::Timer, T),
            then: (Deleting, vec![x_log("stopping: time_to_stop reached"), x_remove("c1")], key(1, 1, 0, Some("c1")).ttl(T)),
        }, None, None, ""),
        row(Case {
            name: "a stop mid-run tears down without an outcome",
            given: (running("c1", T - 1_000), batch(off(2), Some(5)), Event::Reconcile, T),
            then: (Deleting, vec![x_log("stopping: stop requested"), x_remove("c1")], key(1, 1, 0, Some("c1")).ttl(T - 1_000 + TTL_12H)),
        }, None, None, ""),
        row(Case {
            name: "exit of a stale container is ignored",
            given: (running("c2", T - 1_000), batch(on(1), None), exited("c1", 3), T),
            then: (Available, vec![x_wake(T - 1_000 + TTL_12H)], key(1, 1, 0, Some("c2")).ttl(T - 1_000 + TTL_12H)),
        }, None, None, ""),
    ]
}

#[test]
fn batch_transition_table() {
    let failed: Vec<&str> = rows()
        .into_iter()
        .filter_map(|r| {
            let name = r.case.name;
            let outcome = std::panic::catch_unwind(|| {
                let got = check(r.case);
                let ctx = format!("case '{name}': observed {got:?}");
                assert_eq!(got.termination.as_ref().map(|t| t.reason), r.termination, "{ctx}");
                assert_eq!(got.status_container.exit_code, r.exit_code, "{ctx}");
                if let Some(t) = &got.termination {
                    assert_eq!(t.message, got.status_container.message, "{ctx}: the message is shown");
                }
                assert!(got.status_container.message.contains(r.message), "{ctx}: message lacks {:?}", r.message);
            });
            outcome.is_err().then_some(name)
        })
        .collect();
    assert!(failed.is_empty(), "failing rows: {failed:#?}");
}

#[test]
fn want_of_a_batch_pod_needs_no_probe() {
    let mut spec = PodSpec { pod_id: "job".into(), image: "img".into(), ..PodSpec::default() };
    spec.session =
        Some(SessionRun { session_type: SessionType::Batch, batch_timeout: Some(9), ..SessionRun::default() });
    let d = Desired {
        tenant: "t".into(),
        owner: "o".into(),
        spec,
        status_requested: crate::record::StatusRequested::On,
        generation: 1,
        deleted: false,
        creation_ts: T,
        update_ts: T,
    };
    let w = Want::from_desired(&d);
    assert_eq!((w.batch, w.needs_probe), (Some(Batch { timeout_s: Some(9) }), false));
    let mut interactive = d;
    interactive.spec.session = Some(SessionRun { bootstrap: Some("true".into()), ..SessionRun::default() });
    let w = Want::from_desired(&interactive);
    assert_eq!((w.batch, w.needs_probe), (None, true), "an interactive session is an ordinary pod");
}

/// A whole run: spawned, exits 3, removed; a restart runs it again and it succeeds.
#[test]
fn a_run_happens_once_per_generation() {
    let w = batch(on(1), Some(60));
    let (o, a) = step(Observed::default(), &w, Event::Reconcile, T, &cfg());
    assert_eq!(a.last(), Some(&Action::Spawn { instance: 1 }));
    let steps = run(o, &w, &[spawned(1, "c1"), exited("c1", 3), removed("c1"), Event::Timer, Event::Reconcile]);
    let statuses: Vec<_> = steps.iter().map(|(o, _)| o.status).collect();
    assert_eq!(statuses, [Available, Complete, Complete, Complete, Complete]);
    assert!(steps[2..].iter().all(|(_, a)| a.is_empty()), "a finished run does nothing more: {steps:?}");
    let done = steps.last().map(|(o, _)| o.clone()).expect("steps");
    let again = batch(on(2), Some(60));
    let steps = run(done, &again, &[Event::Reconcile, spawned(2, "c2"), exited("c2", 0)]);
    let last = &steps[2].0;
    assert_eq!(steps[0].0.termination, None, "the restart clears the outcome");
    assert_eq!((last.status, last.status_container.exit_code), (Complete, Some(0)));
    assert_eq!(last.termination.as_ref().map(|t| t.reason), Some(Succeeded));
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    #[derive(Debug, Clone)]
    enum Ev {
        Reconcile,
        Timer,
        Spawned {
            current: bool,
        },
        SpawnFailed,
        Exited {
            current: bool,
            code: Option<i64>,
        },
        Removed,
        /// The user restarts (generation bump), stops or starts the pod.
        Want {
            on: bool,
        },
    }

    fn ev() -> impl Strategy<Value = Ev> {
        let code = prop_oneof![Just(Some(0i64)), Just(Some(3)), Just(Some(137)), Just(None)];
        prop_oneof![
            2 => Just(Ev::Reconcile),
            3 => Just(Ev::Timer),
            3 => any::<bool>().prop_map(|current| Ev::Spawned { current }),
            1 => Just(Ev::SpawnFailed),
            3 => (prop::bool::weighted(0.8), code).prop_map(|(current, code)| Ev::Exited { current, code }),
            3 => Just(Ev::Removed),
            1 => any::<bool>().prop_map(|on| Ev::Want { on }),
        ]
    }

    fn resolve(ev: &Ev, o: &Observed, i: usize) -> Event {
        let tracked = o.container_id.clone().unwrap_or_else(|| "none".into());
        match ev {
            Ev::Reconcile | Ev::Want { .. } => Event::Reconcile,
            Ev::Timer => Event::Timer,
            Ev::Spawned { current: true } => {
                Event::Spawned { instance: o.instance, container_id: format!("k{i}"), endpoint: None }
            }
            Ev::Spawned { current: false } => Event::Spawned {
                instance: o.instance.saturating_sub(1),
                container_id: format!("old{i}"),
                endpoint: None,
            },
            Ev::SpawnFailed => Event::SpawnFailed { instance: o.instance, reason: "boom".into() },
            Ev::Exited { current, code } => Event::Exited {
                container_id: if *current { tracked } else { "stale".into() },
                exit_code: *code,
                reason: "exited".into(),
            },
            Ev::Removed => Event::Removed { container_id: tracked },
        }
    }

    /// What must hold after every step of a batch pod.
    fn invariants(before: &Observed, w: &Want, o: &Observed, actions: &[Action], now: Millis) -> Result<(), String> {
        let spawns = actions.iter().filter(|a| matches!(a, Action::Spawn { .. })).count();
        let same_gen = before.observed_generation == o.observed_generation;
        // Once the run has ended, nothing is spawned again within the generation.
        let ended = before.termination.is_some() && before.status != SpawnerSetup;
        if ended && same_gen && spawns > 0 {
            return Err("a finished run was spawned again in the same generation".into());
        }
        if spawns > 0 && o.container_id.is_some() {
            return Err("spawn while a container is tracked".into());
        }
        if spawns > 0 && o.termination.is_some() {
            return Err("a new run keeps the previous outcome".into());
        }
        // COMPLETE and ERROR always say why, consistently with the exit code.
        match (o.status, o.termination.as_ref().map(|t| t.reason)) {
            (Complete, Some(Succeeded)) if o.status_container.exit_code == Some(0) => {}
            (Complete, Some(Failed)) if o.status_container.exit_code.is_some_and(|c| c != 0) => {}
            (Complete, Some(Timeout)) | (Error, Some(Infrastructure)) => {}
            (Complete | Error, t) => {
                return Err(format!(
                    "{} with termination {t:?} and exit code {:?}",
                    o.status, o.status_container.exit_code
                ));
            }
            _ => {}
        }
        // A run is never retried after it started: no backoff once an instance was running.
        if before.status == Available && o.status == Requested && same_gen {
            return Err("a batch run was retried".into());
        }
        // Past its deadline a run is not left running.
        let limit = w.batch.and_then(|b| b.timeout_s).map(|t| i64::from(t) * 1000);
        if let (Available, Some(limit), Some(start)) = (o.status, limit, o.status_container.start_time)
            && w.on
            && !w.deleted
            && now >= start + limit
        {
            return Err(format!("still AVAILABLE {} ms after the start", now - start));
        }
        if let Some(a) = actions.iter().find(|a| matches!(a, Action::Wake { at } if *at <= now)) {
            return Err(format!("wake not in the future: {a:?}"));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn batch_invariants_hold_for_any_event_sequence(
            timeout in prop_oneof![Just(None), (1u32..20).prop_map(Some)],
            script in prop::collection::vec((ev(), 0i64..8_000), 1..60),
        ) {
            let settings = Settings { stall_timeout_ms: 10_000, max_attempts: 3, backoff_base_ms: 1_000, backoff_max_ms: 4_000 };
            let mut w = batch(on(1), timeout);
            let mut o = Observed::default();
            let mut now = T;
            for (i, (ev, dt)) in script.into_iter().enumerate() {
                now += dt;
                if let Ev::Want { on } = ev {
                    w = Want { on, generation: w.generation + 1, ..w };
                }
                let event = resolve(&ev, &o, i);
                let (next, actions) = step(o.clone(), &w, event.clone(), now, &settings);
                invariants(&o, &w, &next, &actions, now).map_err(|m| {
                    TestCaseError::fail(format!("step {i}: {m}\nevent {event:?}\nwant {w:?}\nbefore {o:?}\nafter {next:?}\nactions {actions:?}"))
                })?;
                o = next;
            }
        }
    }
}
