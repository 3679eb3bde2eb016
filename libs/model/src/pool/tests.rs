use proptest::prelude::*;

use super::*;

fn counts() -> impl Strategy<Value = PoolCounts> {
    (0u32..200, 0u32..200, 0u32..200).prop_map(|(warming, available, claimed)| PoolCounts {
        warming,
        available,
        claimed,
    })
}

fn target() -> impl Strategy<Value = PoolTarget> {
    (0u32..150, 0u32..250).prop_map(|(size, cap)| PoolTarget { size, cap })
}

/// Every warming member becomes ready.
fn warm_up(c: PoolCounts) -> PoolCounts {
    PoolCounts { warming: 0, available: c.available + c.warming, claimed: c.claimed }
}

proptest! {
    #[test]
    fn never_creates_past_the_cap(c in counts(), t in target()) {
        let after = apply(c, &plan(c, t));
        prop_assert!(after.total() <= t.cap.max(c.total()), "{c:?} {t:?} -> {after:?}");
        prop_assert_eq!(after.claimed, c.claimed, "claimed members are never touched");
        // Growing only happens below the cap.
        if after.total() > c.total() {
            prop_assert!(after.total() <= t.cap);
        }
    }

    #[test]
    fn is_idempotent(c in counts(), t in target()) {
        let after = apply(c, &plan(c, t));
        prop_assert_eq!(plan(after, t), Vec::new(), "{:?} {:?}", c, t);
    }

    #[test]
    fn converges_to_size_within_the_cap(c in counts(), t in target(), claims in 0u32..20) {
        let mut now = c;
        for _ in 0..4 {
            now = warm_up(apply(now, &plan(now, t)));
        }
        let want = t.size.min(t.cap.saturating_sub(now.claimed));
        prop_assert_eq!(now.available, want, "{:?} {:?}", c, t);
        // After some claims the pool refills to the same level.
        let taken = claims.min(now.available);
        now.available -= taken;
        now.claimed += taken;
        for _ in 0..2 {
            now = warm_up(apply(now, &plan(now, t)));
        }
        let want = t.size.min(t.cap.saturating_sub(now.claimed));
        prop_assert_eq!(now.available, want);
    }
}

#[test]
fn table() {
    let c = |warming, available, claimed| PoolCounts { warming, available, claimed };
    let t = |size, cap| PoolTarget { size, cap };
    assert_eq!(plan(c(0, 0, 0), t(5, 10)), vec![PoolAction::Create(5)]);
    assert_eq!(plan(c(2, 1, 0), t(5, 10)), vec![PoolAction::Create(2)]);
    assert_eq!(plan(c(0, 0, 8), t(5, 10)), vec![PoolAction::Create(2)], "capped");
    assert_eq!(plan(c(0, 5, 10), t(5, 10)), vec![PoolAction::Drain { warming: 0, available: 5 }], "cap lowered");
    assert_eq!(plan(c(2, 5, 0), t(3, 10)), vec![PoolAction::Drain { warming: 2, available: 2 }]);
    assert_eq!(plan(c(0, 5, 3), t(5, 10)), vec![]);
    assert_eq!(plan(c(0, 0, 3), t(0, 0)), vec![], "claimed members of a deleted pool stay");
}
