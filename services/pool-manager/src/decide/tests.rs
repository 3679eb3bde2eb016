use corral_model::PodSpec;
use proptest::prelude::*;

use super::*;

const NOW: Millis = 1_000_000;
const TV: u64 = 3;

fn template(cull_timeout_s: u64, max_age_s: u64) -> AppTemplate {
    AppTemplate {
        name: "web".into(),
        tenant: "acme".into(),
        spec: PodSpec::default(),
        cull_timeout_s,
        max_age_s,
        services: serde_json::Value::Null,
        limits: serde_json::Value::Null,
        command: None,
        image_name: "img".into(),
        created: 0,
        modified: 0,
    }
}

fn member(state: MemberState, age_ms: Millis, pod_seen: bool) -> PoolMember {
    PoolMember {
        id: "m1".into(),
        state,
        template_version: TV,
        claimant: (state == MemberState::Claimed).then(|| "alice".to_string()),
        since: NOW - age_ms,
        last_activity: NOW - age_ms,
        pod_seen,
    }
}

const fn pod(deleted: bool, ready: bool, failed: bool, owner: &'static str) -> Option<PodFacts<'static>> {
    Some(PodFacts { deleted, ready, failed, owner })
}
const STARTING: Option<PodFacts<'static>> = pod(false, false, false, "pool:web");
const READY: Option<PodFacts<'static>> = pod(false, true, false, "pool:web");
const FAILED: Option<PodFacts<'static>> = pod(false, false, true, "pool:web");
const DELETED: Option<PodFacts<'static>> = pod(true, false, false, "alice");
const ALICES: Option<PodFacts<'static>> = pod(false, true, false, "alice");
const GONE: Option<PodFacts<'static>> = None;

const SECS: Millis = 1_000;
const YOUNG: Millis = MISSING_POD_GRACE_MS - 1;
const OLD: Millis = MISSING_POD_GRACE_MS;

#[test]
fn decisions_table() {
    use Decision::{Cull, Keep, Promote, Release, Replace, SetOwner};
    use MemberState::{Available, Claimed, Warming};
    let tpl = template(60, 0);
    // (state, age ms, pod seen, pod, decision, why)
    let rows = [
        (Warming, YOUNG, false, GONE, Keep(Warming), "reserved; its creator is making the pod"),
        (Warming, OLD, false, GONE, Replace, "its creator died before making the pod"),
        (Warming, YOUNG, true, GONE, Replace, "its pod was deleted and purged"),
        (Warming, SECS, false, STARTING, Keep(Warming), "starting"),
        (Warming, SECS, false, READY, Promote, "ready"),
        (Warming, SECS, false, FAILED, Replace, "failed"),
        (Warming, SECS, true, DELETED, Replace, "being deleted"),
        (Available, SECS, true, READY, Keep(Available), "ready and waiting"),
        (Available, SECS, true, STARTING, Keep(Available), "restarting; a claim puts it back to warming"),
        (Available, YOUNG, true, GONE, Replace, "deleted and purged"),
        (Available, SECS, true, DELETED, Replace, "being deleted"),
        (Claimed, SECS, true, ALICES, Keep(Claimed), "in use"),
        (Claimed, SECS, true, READY, SetOwner, "claimed, its gateway died before the owner was set"),
        (Claimed, SECS, true, FAILED, SetOwner, "a failed claimed pod is still its claimant's"),
        (Claimed, SECS, true, DELETED, Release, "deleted by its owner"),
        (Claimed, 1, true, GONE, Release, "deleted by its owner and purged before the pass: never re-created"),
        (Claimed, YOUNG, false, GONE, Keep(Claimed), "cold: the claimant's gateway is creating it"),
        (Claimed, OLD, false, GONE, Release, "cold, and the claimant's gateway died first"),
        (Claimed, 61 * SECS, true, ALICES, Cull, "idle past the cull timeout"),
        (Claimed, 61 * SECS, true, GONE, Release, "gone: released, not culled"),
    ];
    for (state, age, seen, pod, want, why) in rows {
        let m = member(state, age, seen);
        assert_eq!(decide(&m, pod, Some((&tpl, TV)), NOW), want, "{why}: {m:?} {pod:?}");
    }
}

#[test]
fn outdated_or_missing_templates_replace_unclaimed_members_only() {
    let tpl = template(0, 0);
    for state in [MemberState::Warming, MemberState::Available] {
        let m = member(state, SECS, true);
        assert_eq!(decide(&m, READY, Some((&tpl, TV + 1)), NOW), Decision::Replace, "{state:?} outdated");
        assert_eq!(decide(&m, READY, None, NOW), Decision::Replace, "{state:?} without template");
    }
    let claimed = member(MemberState::Claimed, SECS, true);
    assert_eq!(decide(&claimed, ALICES, Some((&tpl, TV + 1)), NOW), Decision::Keep(MemberState::Claimed));
    assert_eq!(
        decide(&claimed, ALICES, None, NOW),
        Decision::Keep(MemberState::Claimed),
        "never culled without template"
    );
}

#[test]
fn culling_follows_idle_time_and_age() {
    let mut m = member(MemberState::Claimed, 10 * SECS, true);
    let cases = [
        (template(0, 0), 0, false, "no limits"),
        (template(10, 0), 0, true, "idle exactly the timeout"),
        (template(11, 0), 0, false, "idle less than the timeout"),
        (template(5, 0), 9 * SECS, false, "recent activity"),
        (template(0, 10), 9 * SECS, true, "older than the max age, even if active"),
        (template(0, 11), 9 * SECS, false, "younger than the max age"),
    ];
    for (tpl, active_since_ms, cull, why) in cases {
        m.last_activity = m.since + active_since_ms;
        assert_eq!(should_cull(&m, Some(&tpl), NOW), cull, "{why}");
    }
}

fn any_state() -> impl Strategy<Value = MemberState> {
    prop_oneof![Just(MemberState::Warming), Just(MemberState::Available), Just(MemberState::Claimed)]
}

proptest! {
    /// Whatever the member, its age or the template, a member whose pod was seen and is
    /// gone is never kept waiting for a pod (so nothing ever re-creates it), and a claimed
    /// member is only ever released, culled, re-owned or kept, never replaced or promoted.
    #[test]
    fn gone_pods_are_never_waited_for_and_claims_are_never_replaced(
        state in any_state(),
        age in 0i64..200_000,
        seen: bool,
        tv in 0u64..5,
        cull in 0u64..100,
        has_pod: bool,
        deleted: bool,
        ready: bool,
    ) {
        let tpl = template(cull, 0);
        let m = PoolMember { template_version: tv, ..member(state, age, seen) };
        let pod = has_pod.then_some(PodFacts { deleted, ready, failed: false, owner: "alice" });
        let d = decide(&m, pod, Some((&tpl, TV)), NOW);
        if seen && !has_pod {
            prop_assert!(!matches!(d, Decision::Keep(_) | Decision::Promote | Decision::SetOwner), "{d:?}");
        }
        if state == MemberState::Claimed {
            prop_assert!(!matches!(d, Decision::Replace | Decision::Promote), "{d:?}");
            if !has_pod || deleted {
                prop_assert!(matches!(d, Decision::Release | Decision::Keep(MemberState::Claimed)), "{d:?}");
            }
        } else {
            prop_assert!(!matches!(d, Decision::Release | Decision::Cull | Decision::SetOwner), "{d:?}");
        }
    }
}
