use std::time::Duration;

use corral_model::machine::Settings;
use corral_model::{Desired, Observed, PodSpec, PodStatus, StatusRequested};
use corral_store::{PodRecord, Versioned};

use super::{Assessment, ShardMemo, first_resync_after, needs_kick};

const NOW: i64 = 1_700_000_000_000;
const SECOND: i64 = 1000;

fn desired(on: bool, generation: u64, deleted: bool, ttl: i64) -> Desired {
    let spec = PodSpec { pod_id: "pod".into(), image: "img".into(), time_to_stop_default: ttl, ..PodSpec::default() };
    Desired {
        tenant: "t".into(),
        owner: "o".into(),
        spec,
        status_requested: if on { StatusRequested::On } else { StatusRequested::Off },
        generation,
        deleted,
        creation_ts: NOW - 100 * SECOND,
        update_ts: NOW - 100 * SECOND,
    }
}

fn observed(status: PodStatus, generation: u64, container: bool) -> Observed {
    Observed {
        status,
        observed_generation: generation,
        instance: 1,
        container_id: container.then(|| "c1".to_owned()),
        since: NOW - 10 * SECOND,
        update_ts: NOW - 10 * SECOND,
        ..Observed::default()
    }
}

fn record(d: Desired, o: Observed) -> PodRecord {
    PodRecord { desired: Versioned { version: 1, value: d }, observed: Versioned { version: 3, value: o } }
}

struct Row {
    name: &'static str,
    record: PodRecord,
    with_actor: bool,
    without_actor: bool,
}

fn rows() -> Vec<Row> {
    let on = |generation| desired(true, generation, false, 43_200);
    let mut available = observed(PodStatus::Available, 1, true);
    available.time_to_stop_ts = Some(NOW + 3600 * SECOND);
    let mut expired = available.clone();
    expired.time_to_stop_ts = Some(NOW - SECOND);
    let mut no_ttl = available.clone();
    no_ttl.time_to_stop_ts = None;
    let mut backing_off = observed(PodStatus::Requested, 1, false);
    backing_off.retry_at = Some(NOW + 5 * SECOND);
    let mut retry_due = backing_off.clone();
    retry_due.retry_at = Some(NOW - SECOND);
    let mut stalled = observed(PodStatus::Creating, 1, true);
    stalled.since = NOW - 1000 * SECOND;
    vec![
        Row {
            name: "new pod whose kick was lost",
            record: record(on(1), observed(PodStatus::Stopped, 0, false)),
            with_actor: true,
            without_actor: true,
        },
        Row {
            name: "available, time-to-stop later",
            record: record(on(1), available.clone()),
            with_actor: false,
            without_actor: true,
        },
        Row {
            name: "available, time-to-stop passed",
            record: record(on(1), expired),
            with_actor: true,
            without_actor: true,
        },
        Row {
            name: "available, no time-to-stop",
            record: record(desired(true, 1, false, -1), no_ttl),
            with_actor: false,
            without_actor: false,
        },
        Row {
            name: "restart requested (generation bumped)",
            record: record(on(2), available.clone()),
            with_actor: true,
            without_actor: true,
        },
        Row {
            name: "stop requested while running",
            record: record(desired(false, 1, false, 43_200), available),
            with_actor: true,
            without_actor: true,
        },
        Row {
            name: "stopped and settled",
            record: record(desired(false, 1, false, 43_200), observed(PodStatus::Stopped, 1, false)),
            with_actor: false,
            without_actor: false,
        },
        Row {
            name: "deleted, container gone: purge pending",
            record: record(desired(true, 1, true, 43_200), observed(PodStatus::Stopped, 1, false)),
            with_actor: true,
            without_actor: true,
        },
        Row {
            name: "spawn in flight without an outcome",
            record: record(on(1), observed(PodStatus::SpawnerSetup, 1, false)),
            with_actor: true,
            without_actor: true,
        },
        Row {
            name: "creating, before the stall deadline",
            record: record(on(1), observed(PodStatus::Creating, 1, true)),
            with_actor: false,
            without_actor: true,
        },
        Row { name: "creating, stalled", record: record(on(1), stalled), with_actor: true, without_actor: true },
        Row {
            name: "backing off before a retry",
            record: record(on(1), backing_off),
            with_actor: false,
            without_actor: true,
        },
        Row { name: "retry due", record: record(on(1), retry_due), with_actor: true, without_actor: true },
        Row {
            name: "settled in ERROR",
            record: record(on(1), observed(PodStatus::Error, 1, false)),
            with_actor: false,
            without_actor: false,
        },
        Row {
            name: "COMPLETE",
            record: record(on(1), observed(PodStatus::Complete, 1, false)),
            with_actor: false,
            without_actor: false,
        },
    ]
}

#[test]
fn which_pods_a_resync_kicks() {
    let settings = Settings::default();
    for row in rows() {
        assert_eq!(needs_kick(&row.record, true, NOW, &settings), row.with_actor, "{} (with an actor)", row.name);
        assert_eq!(
            needs_kick(&row.record, false, NOW, &settings),
            row.without_actor,
            "{} (without an actor)",
            row.name
        );
    }
}

/// Over a grid of desired and observed states: a pod that is not kicked is one a kick would
/// leave exactly as it is, apart from arming a timer its live actor already holds; and a
/// pod kicked with an actor is kicked without one too.
#[test]
fn a_skipped_pod_is_one_a_kick_would_not_change() {
    use corral_model::machine::{Action, Event, Want, step};
    let settings = Settings::default();
    let statuses = [
        PodStatus::Requested,
        PodStatus::SpawnerSetup,
        PodStatus::Creating,
        PodStatus::Available,
        PodStatus::Deleting,
        PodStatus::Stopped,
        PodStatus::Complete,
        PodStatus::Error,
    ];
    let times = [None, Some(NOW - SECOND), Some(NOW), Some(NOW + SECOND)];
    let mut checked = 0;
    for status in statuses {
        for (on, deleted, generation, observed_generation) in
            [(true, false, 1, 1), (true, false, 2, 1), (false, false, 1, 1), (true, true, 1, 1), (false, false, 1, 0)]
        {
            for container in [false, true] {
                for ttl_at in times {
                    for retry_at in times {
                        let d = desired(on, generation, deleted, 43_200);
                        let mut o = observed(status, observed_generation, container);
                        o.time_to_stop_ts = ttl_at;
                        o.retry_at = retry_at;
                        let rec = record(d.clone(), o.clone());
                        let with = needs_kick(&rec, true, NOW, &settings);
                        let without = needs_kick(&rec, false, NOW, &settings);
                        assert!(!with || without, "{status} {o:?}: kicked with an actor but not without");
                        if !with {
                            let (next, actions) =
                                step(o.clone(), &Want::from_desired(&d), Event::Reconcile, NOW, &settings);
                            assert_eq!(next, o, "skipped, yet a kick would change it");
                            assert!(
                                actions.iter().all(|a| matches!(a, Action::Wake { at } if *at > NOW)),
                                "skipped, yet a kick would act: {actions:?}"
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 8 * 5 * 2 * 4 * 4);
}

#[test]
fn first_resyncs_are_spread_over_the_interval() {
    let interval = Duration::from_secs(4);
    assert_eq!(first_resync_after(0, 4, interval), Duration::from_secs(4));
    assert_eq!(first_resync_after(1, 4, interval), Duration::from_secs(5));
    assert_eq!(first_resync_after(3, 4, interval), Duration::from_secs(7));
    assert_eq!(first_resync_after(5, 4, interval), Duration::from_secs(5), "shard numbers wrap");
    assert_eq!(first_resync_after(0, 0, interval), Duration::from_secs(4), "no shards: no division by zero");
}

/// What a memo relies on: an assessment taken at `NOW` decides like a fresh one at any
/// later time before its `wake_at`, for every state of the grid.
#[test]
fn an_assessment_holds_until_its_wake_up() {
    let settings = Settings::default();
    let statuses = [PodStatus::Requested, PodStatus::Creating, PodStatus::Available, PodStatus::Stopped];
    let later = [1, SECOND, 100 * SECOND, 10_000 * SECOND];
    let mut compared = 0;
    for status in statuses {
        for container in [false, true] {
            for offset in [-SECOND, SECOND, 50 * SECOND, 5000 * SECOND] {
                let mut o = observed(status, 1, container);
                o.time_to_stop_ts = Some(NOW + offset);
                o.retry_at = Some(NOW + offset);
                let rec = record(desired(true, 1, false, 43_200), o);
                let then = Assessment::of(&rec, NOW, &settings);
                for dt in later {
                    let now = NOW + dt;
                    if then.wake_at.is_some_and(|at| now >= at) {
                        continue;
                    }
                    let fresh = Assessment::of(&rec, now, &settings);
                    for has_actor in [false, true] {
                        assert_eq!(
                            then.needs_kick(has_actor),
                            fresh.needs_kick(has_actor),
                            "{status} container={container} offset={offset} dt={dt} has_actor={has_actor}"
                        );
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 50, "the grid must exercise held assessments ({compared})");
}

#[tokio::test]
async fn later_passes_read_only_the_pods_that_changed() {
    use std::sync::Arc;

    use corral_bus::memory::MemoryBus;
    use corral_config::Config;
    use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
    use corral_store::Store;
    use corral_testkit::MemoryStore;

    let store = Arc::new(MemoryStore::new());
    let deps = crate::Deps {
        store: store.clone(),
        bus: Arc::new(MemoryBus::new()),
        runtime: Arc::new(SimulatedRuntime::new(SimulatedOptions {
            namespace: "t".into(),
            start_delay: Duration::ZERO,
        })),
    };
    let cfg = Config::from_toml_over_defaults("[spawner]\nshards = 1\n").expect("config");
    let ctx = Arc::new(crate::shard::Context::new(cfg, deps, "test".into()));
    // Settled pods (stopped as asked): nothing to kick, so no actor runs during the test.
    let mut keys = Vec::new();
    for n in 0..300 {
        let mut d = desired(false, 1, false, 43_200);
        d.spec.pod_id = format!("pod{n}");
        store.create_pod(&d, &observed(PodStatus::Stopped, 1, false), 0).await.expect("create");
        keys.push(d.key());
    }
    let mut memo = ShardMemo::default();
    ctx.resync_shard(0, &mut memo).await;
    assert_eq!(memo.last_reads, 300, "the first pass reads every pod");
    ctx.resync_shard(0, &mut memo).await;
    assert_eq!(memo.last_reads, 0, "nothing changed, nothing read");

    let mut o = observed(PodStatus::Stopped, 1, false);
    o.update_ts += 1;
    store.put_observed(&keys[7], &o, 1).await.expect("observed changes");
    store.purge_pod(&keys[8], 0).await.expect("purge");
    ctx.resync_shard(0, &mut memo).await;
    assert_eq!(memo.last_reads, 1, "only the changed pod is read");
    assert_eq!(ctx.actor_count(), 0, "settled pods are never kicked");

    // A pod with a live actor: its own observed changes need no second look, a desired
    // change (whose kick may have been lost) does, and gets the pod kicked.
    let key = keys[9].clone();
    let rec = store.get_pod(&key).await.expect("get").expect("exists");
    let mut d = rec.desired.value.clone();
    d.status_requested = StatusRequested::On;
    d.generation = 2;
    store.put_desired(&d, rec.desired.version).await.expect("switch on");
    ctx.resync_shard(0, &mut memo).await;
    assert_eq!(memo.last_reads, 1, "the switched-on pod is read");
    assert_eq!(ctx.actor_count(), 1, "and kicked");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = store.get_pod(&key).await.expect("get").expect("exists").observed.value;
        // The fixture's pod has a probed port: running, it waits for readiness.
        if o.status == PodStatus::Creating && o.observed_generation == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the kicked pod never started: {o:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ctx.resync_shard(0, &mut memo).await;
    assert_eq!(memo.last_reads, 0, "what its actor wrote is not read again");
    let mut d3 = d.clone();
    d3.status_requested = StatusRequested::Off;
    d3.generation = 3;
    store.put_desired(&d3, rec.desired.version + 1).await.expect("switch off without a kick");
    ctx.resync_shard(0, &mut memo).await;
    assert_eq!(memo.last_reads, 1, "a desired change is read");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = store.get_pod(&key).await.expect("get").expect("exists").observed.value;
        if o.status == PodStatus::Stopped && o.observed_generation == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the lost stop was not made up: {o:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
