use corral_model::{PodKey, PodStatus};
use proptest::prelude::*;

use super::{MARGIN_MS, MAX_NAP_MS, Passivate, Settled, Timers, decide, nap};

const NOW: i64 = 1_700_000_000_000;

fn settled(status: PodStatus, has_container: bool, wake: Option<i64>) -> Settled {
    Settled { status, has_container, wake }
}

#[test]
fn which_actors_are_passivated() {
    let keep = None;
    let bare = Some(Passivate { deadline: None });
    let later = NOW + 3_600_000;
    let rows = [
        (
            "available, time-to-stop in an hour",
            settled(PodStatus::Available, true, Some(later)),
            Some(Passivate { deadline: Some(later) }),
        ),
        ("available, no time-to-stop", settled(PodStatus::Available, true, None), bare),
        ("available, time-to-stop within the margin", settled(PodStatus::Available, true, Some(NOW + MARGIN_MS)), keep),
        (
            "available, time-to-stop just past the margin",
            settled(PodStatus::Available, true, Some(NOW + MARGIN_MS + 1)),
            Some(Passivate { deadline: Some(NOW + MARGIN_MS + 1) }),
        ),
        ("available, wake-up overdue", settled(PodStatus::Available, true, Some(NOW - 1)), keep),
        ("stopped", settled(PodStatus::Stopped, false, None), bare),
        ("stopped, a stale timer pending", settled(PodStatus::Stopped, false, Some(later)), bare),
        ("stopped, container removal failed", settled(PodStatus::Stopped, true, None), keep),
        ("complete", settled(PodStatus::Complete, false, None), bare),
        ("complete, container removal failed", settled(PodStatus::Complete, true, None), keep),
        ("error", settled(PodStatus::Error, false, Some(NOW + 10)), bare),
        ("error, container removal failed", settled(PodStatus::Error, true, None), keep),
        ("requested, backing off", settled(PodStatus::Requested, false, Some(later)), keep),
        ("spawner setup", settled(PodStatus::SpawnerSetup, false, None), keep),
        ("creating, waiting for readiness", settled(PodStatus::Creating, true, Some(later)), keep),
        ("deleting", settled(PodStatus::Deleting, true, None), keep),
    ];
    for (name, s, want) in rows {
        assert_eq!(decide(&s, NOW), want, "{name}");
    }
}

fn key(n: u32) -> PodKey {
    PodKey::new("t", format!("pod{n}"))
}

#[test]
fn timers_keep_one_deadline_per_pod_and_hand_out_the_due_ones_in_order() {
    let mut t = Timers::default();
    assert!(t.is_empty());
    assert_eq!(t.next(), None);
    t.set(&key(1), NOW + 300);
    t.set(&key(2), NOW + 100);
    t.set(&key(3), NOW + 200);
    t.set(&key(1), NOW + 50);
    assert_eq!(t.len(), 3, "a pod has one deadline: the last one set");
    assert_eq!(t.get(&key(1)), Some(NOW + 50));
    assert_eq!(t.next(), Some(NOW + 50));
    assert_eq!(t.take_due(NOW + 49), Vec::<PodKey>::new());
    assert_eq!(t.take_due(NOW + 200), vec![key(1), key(2), key(3)]);
    assert!(t.is_empty());
    t.set(&key(4), NOW + 10);
    assert_eq!(t.remove(&key(4)), Some(NOW + 10));
    assert_eq!(t.remove(&key(4)), None);
    assert_eq!(t.take_due(i64::MAX), Vec::<PodKey>::new(), "a removed deadline never fires");
}

#[test]
fn naps_are_bounded_and_end_at_the_next_deadline() {
    assert_eq!(nap(None, NOW), MAX_NAP_MS);
    assert_eq!(nap(Some(NOW + 10), NOW), 10);
    assert_eq!(nap(Some(NOW - 10), NOW), 0, "overdue: no nap");
    assert_eq!(nap(Some(NOW + 10 * MAX_NAP_MS), NOW), MAX_NAP_MS);
    assert_eq!(nap(Some(i64::MIN), i64::MAX), 0, "no overflow");
}

proptest! {
    /// Whatever is set and removed, the timers hand out exactly the pods whose last deadline
    /// is due, each once, and keep the others.
    #[test]
    fn timers_match_a_plain_map(ops in prop::collection::vec((0u32..20, prop::option::of(0i64..1000)), 0..200), now in 0i64..1000) {
        let mut t = Timers::default();
        let mut model = std::collections::BTreeMap::new();
        for (n, at) in ops {
            match at {
                Some(at) => { t.set(&key(n), at); model.insert(n, at); }
                None => { prop_assert_eq!(t.remove(&key(n)), model.remove(&n)); }
            }
        }
        prop_assert_eq!(t.len(), model.len());
        let mut due: Vec<(i64, PodKey)> = model.iter().filter(|(_, at)| **at <= now).map(|(n, at)| (*at, key(*n))).collect();
        due.sort();
        let got = t.take_due(now);
        prop_assert_eq!(got, due.into_iter().map(|(_, k)| k).collect::<Vec<_>>());
        prop_assert!(t.next().is_none_or(|at| at > now));
        prop_assert_eq!(t.len(), model.values().filter(|at| **at > now).count());
    }

    /// A passivated pod's kept deadline is never within the margin: a timer loop that naps at
    /// most `MAX_NAP_MS` looks again before it comes.
    #[test]
    fn kept_deadlines_are_beyond_the_longest_nap(wake in prop::option::of(-5_000i64..5_000), container: bool) {
        let s = settled(PodStatus::Available, container, wake.map(|w| NOW + w));
        if let Some(Passivate { deadline: Some(at) }) = decide(&s, NOW) {
            prop_assert!(at > NOW + MAX_NAP_MS);
        }
    }
}
