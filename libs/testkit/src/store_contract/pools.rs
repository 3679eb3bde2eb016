//! Documents and pool members: compare-and-set documents, the member state machine, and
//! claims (member-only and whole-instance) that never hand a member out twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use corral_model::pool::{POOL_KIND, TEMPLATE_KIND};
use corral_model::{Desired, Observed, PodKey, PodStatus};
use corral_store::{Claim, ClaimOutcome, ClaimRequest, MemberState, Store, StoreError};

use super::unique;

/// Documents are created with expected version 0, replaced by compare-and-set, listed per
/// kind sorted by name, and deleted.
pub async fn documents_compare_and_set(store: Arc<dyn Store>) {
    let kind = unique("kind");
    let other_kind = unique("kind");
    assert_eq!(store.put_doc(&kind, "b", "{\"n\":1}", 0).await.expect("create"), 1);
    match store.put_doc(&kind, "b", "{}", 0).await {
        Err(StoreError::Conflict { expected: 0, found: 1, .. }) => {}
        other => panic!("creating an existing document must conflict, got {other:?}"),
    }
    match store.put_doc(&kind, "missing", "{}", 3).await {
        Err(StoreError::Conflict { expected: 3, found: 0, .. }) => {}
        other => panic!("replacing a missing document must conflict, got {other:?}"),
    }
    assert_eq!(store.put_doc(&kind, "b", "{\"n\":2}", 1).await.expect("replace"), 2);
    assert_eq!(store.put_doc(&kind, "a/x:y", "\"ü\"", 0).await.expect("create a"), 1);
    store.put_doc(&other_kind, "c", "{}", 0).await.expect("create in other kind");

    let doc = store.get_doc(&kind, "b").await.expect("get").expect("exists");
    assert_eq!((doc.version, doc.value.as_str()), (2, "{\"n\":2}"));
    assert_eq!(store.get_doc(&kind, "c").await.expect("get"), None, "kinds are separate");
    let names: Vec<(String, u64)> =
        store.list_docs(&kind).await.expect("list").into_iter().map(|(n, d)| (n, d.version)).collect();
    assert_eq!(names, [("a/x:y".to_string(), 1), ("b".to_string(), 2)]);

    assert!(store.delete_doc(&kind, "b").await.expect("delete"));
    assert!(!store.delete_doc(&kind, "b").await.expect("delete again"));
    assert_eq!(store.get_doc(&kind, "b").await.expect("get"), None);
    assert_eq!(store.put_doc(&kind, "b", "{}", 0).await.expect("re-create"), 1, "a deleted document starts over");
}

fn state_of(members: &[corral_store::PoolMember], id: &str) -> Option<MemberState> {
    members.iter().find(|m| m.id == id).map(|m| m.state)
}

/// Reserve respects the cap; ready moves warming to available; claims take the oldest
/// available, then a warming member, then a cold one below the cap, then report `Full`;
/// withdraw spares claimed members; release and touch behave as documented.
pub async fn pool_members_follow_their_states(store: Arc<dyn Store>) {
    let pool = unique("tenant/pool");
    let cap = 4;
    for (i, id) in ["m1", "m2", "m3"].into_iter().enumerate() {
        let now = 1_000 + i64::try_from(i).unwrap_or(0);
        assert!(store.pool_reserve(&pool, id, 7, cap, now).await.expect("reserve"));
    }
    assert!(!store.pool_reserve(&pool, "m1", 7, cap, 2_000).await.expect("reserve"), "already a member");
    assert!(store.pool_ready(&pool, "m2", 1_500).await.expect("ready"));
    assert!(store.pool_ready(&pool, "m1", 1_600).await.expect("ready"));
    assert!(!store.pool_ready(&pool, "m1", 1_700).await.expect("ready"), "only warming members become ready");
    assert!(!store.pool_ready(&pool, "nobody", 1_700).await.expect("ready"));

    let members = store.pool_members(&pool).await.expect("members");
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"], "sorted by id");
    assert_eq!(members[1].since, 1_500);
    assert_eq!(members[2].template_version, 7);
    assert_eq!(state_of(&members, "m3"), Some(MemberState::Warming));

    assert_eq!(store.pool_claim(&pool, "alice", "c1", 8, cap, 3_000).await.expect("claim"), Claim::Ready("m2".into()));
    assert_eq!(store.pool_claim(&pool, "bob", "c2", 8, cap, 3_001).await.expect("claim"), Claim::Ready("m1".into()));
    assert_eq!(
        store.pool_claim(&pool, "carol", "c3", 8, cap, 3_002).await.expect("claim"),
        Claim::Warming("m3".into())
    );
    assert_eq!(store.pool_claim(&pool, "dave", "c4", 8, cap, 3_003).await.expect("claim"), Claim::Cold("c4".into()));
    assert_eq!(store.pool_claim(&pool, "erin", "c5", 8, cap, 3_004).await.expect("claim"), Claim::Full);
    assert!(!store.pool_reserve(&pool, "m9", 7, cap, 3_005).await.expect("reserve"), "the cap is reached");

    let members = store.pool_members(&pool).await.expect("members");
    assert_eq!(members.len(), 4, "{members:?}");
    let cold = members.iter().find(|m| m.id == "c4").expect("cold member recorded");
    assert_eq!((cold.state, cold.claimant.as_deref(), cold.template_version), (MemberState::Claimed, Some("dave"), 8));
    let m2 = members.iter().find(|m| m.id == "m2").expect("m2");
    assert_eq!((m2.claimant.as_deref(), m2.since, m2.last_activity), (Some("alice"), 3_000, 3_000));
    assert!(
        !store.pool_ready(&pool, "m3", 3_100).await.expect("ready"),
        "a member claimed while warming stays claimed"
    );

    assert!(store.pool_touch(&pool, "m2", 5_000).await.expect("touch"));
    assert!(store.pool_touch(&pool, "m2", 4_000).await.expect("touch"), "an older touch is accepted");
    let m2 = store.pool_members(&pool).await.expect("members").into_iter().find(|m| m.id == "m2").expect("m2");
    assert_eq!(m2.last_activity, 5_000, "but never moves activity back");

    assert!(!store.pool_withdraw(&pool, "m2").await.expect("withdraw"), "claimed members are not withdrawn");
    assert!(store.pool_release(&pool, "m2").await.expect("release"));
    assert!(!store.pool_release(&pool, "m2").await.expect("release again"));
    assert!(!store.pool_touch(&pool, "m2", 6_000).await.expect("touch"), "released members are gone");
    assert!(store.pool_reserve(&pool, "m5", 7, cap, 6_000).await.expect("reserve"), "release made room");
    assert!(store.pool_withdraw(&pool, "m5").await.expect("withdraw warming"));
    assert!(store.pool_reserve(&pool, "m6", 7, cap, 6_001).await.expect("reserve"));
    assert!(store.pool_ready(&pool, "m6", 6_002).await.expect("ready"));
    assert!(store.pool_withdraw(&pool, "m6").await.expect("withdraw available"));
    assert_eq!(
        store.pool_claim(&pool, "frank", "c6", 8, 3, 7_000).await.expect("claim"),
        Claim::Full,
        "withdrawn members are not handed out"
    );
    for id in ["m1", "m3", "c4"] {
        assert!(store.pool_release(&pool, id).await.expect("release"));
    }
    assert!(store.pool_members(&pool).await.expect("members").is_empty());
    assert!(store.pool_members(&unique("pool")).await.expect("members of unknown pool").is_empty());
}

/// Many concurrent claims: every member handed out at most once, cold members only up to
/// the cap, and the rest `Full`.
pub async fn concurrent_claims_hand_out_each_member_once(store: Arc<dyn Store>) {
    let pool = unique("tenant/pool");
    let (ready, cap, claims) = (20u32, 30u32, 50usize);
    for i in 0..ready {
        let id = format!("r{i:03}");
        assert!(store.pool_reserve(&pool, &id, 1, cap, 1_000).await.expect("reserve"));
        assert!(store.pool_ready(&pool, &id, 1_001).await.expect("ready"));
    }
    let mut tasks = Vec::new();
    for i in 0..claims {
        let store = Arc::clone(&store);
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            store.pool_claim(&pool, &format!("user{i}"), &format!("cold{i:03}"), 1, cap, 2_000).await.expect("claim")
        }));
    }
    let mut handed = BTreeSet::new();
    let (mut warm, mut cold, mut full) = (0, 0, 0);
    for task in tasks {
        let id = match task.await.expect("claim task") {
            Claim::Ready(id) => id,
            Claim::Warming(id) => {
                warm += 1;
                id
            }
            Claim::Cold(id) => {
                cold += 1;
                id
            }
            Claim::Full => {
                full += 1;
                continue;
            }
        };
        assert!(handed.insert(id.clone()), "{id} handed out twice");
    }
    assert_eq!((warm, cold, full), (0, cap - ready, claims - cap as usize));
    assert_eq!(handed.len(), cap as usize);
    let members = store.pool_members(&pool).await.expect("members");
    assert_eq!(members.len(), cap as usize);
    assert!(members.iter().all(|m| m.state == MemberState::Claimed && m.claimant.is_some()));
}

/// Creates the pod of pool member `id` (owned by `owner`) in `tenant`, in `status`.
async fn member_pod(store: &dyn Store, tenant: &str, id: &str, owner: &str, status: PodStatus) {
    let mut d = super::desired(tenant, id);
    owner.clone_into(&mut d.owner);
    let o = Observed { status, observed_generation: 1, ..super::observed() };
    store.create_pod(&d, &o, 0).await.expect("create member pod");
}

async fn owner_of(store: &dyn Store, tenant: &str, id: &str) -> (String, u64) {
    let rec = store.get_pod(&PodKey::new(tenant, id)).await.expect("get").expect("pod exists");
    (rec.desired.value.owner, rec.desired.version)
}

/// `pool_claim_instance`: refused as `Stale` when a document changed; hands out the oldest
/// ready member and makes the claimant its owner in the same operation; puts available
/// members whose pod is not ready back to warming; hands out warming members only if their
/// pod exists (as ready if it is); never takes a pod from another owner; then cold members
/// up to the cap, then `Full`.
pub async fn claim_instance_checks_documents_readiness_and_owner(store: Arc<dyn Store>) {
    let tenant = unique("tenant");
    let pool = format!("{tenant}/web");
    let (owner, cap) = ("pool:web", 7);
    let tv = store.put_doc(TEMPLATE_KIND, &pool, "{}", 0).await.expect("template");
    let pv = store.put_doc(POOL_KIND, &pool, "{}", 0).await.expect("pool");
    let claim = |claimant: &'static str, cold: &'static str, template_version: u64, pool_version: u64| {
        let (store, tenant, pool) = (Arc::clone(&store), tenant.clone(), pool.clone());
        async move {
            let req = ClaimRequest {
                tenant: &tenant,
                pool: &pool,
                template_version,
                pool_version,
                cap,
                pool_owner: owner,
                claimant,
                cold_member: cold,
                now: 5_000,
            };
            store.pool_claim_instance(&req).await.expect("claim")
        }
    };
    let claimed = |claim: Claim, owner_set: bool| ClaimOutcome::Claimed { claim, owner_set };

    // A ready member, with the documents at the versions read.
    assert!(store.pool_reserve(&pool, "a1", tv, cap, 1_000).await.expect("reserve"));
    member_pod(store.as_ref(), &tenant, "a1", owner, PodStatus::Available).await;
    assert!(store.pool_ready(&pool, "a1", 1_001).await.expect("ready"));
    assert_eq!(claim("alice", "c1", tv + 1, pv).await, ClaimOutcome::Stale, "template changed");
    assert_eq!(claim("alice", "c1", tv, pv + 1).await, ClaimOutcome::Stale, "pool changed");
    let members = store.pool_members(&pool).await.expect("members");
    assert_eq!(state_of(&members, "a1"), Some(MemberState::Available), "a stale claim changes nothing");
    assert_eq!(claim("alice", "c1", tv, pv).await, claimed(Claim::Ready("a1".into()), true));
    assert_eq!(owner_of(store.as_ref(), &tenant, "a1").await, ("alice".to_string(), 2), "owned, version bumped");
    let a1 = store.pool_members(&pool).await.expect("members").into_iter().find(|m| m.id == "a1").expect("a1");
    assert_eq!(
        (a1.state, a1.claimant.as_deref(), a1.since, a1.pod_seen),
        (MemberState::Claimed, Some("alice"), 5_000, true)
    );

    // An available member whose pod is starting again goes back to warming, and is then the
    // only warming member with a pod: handed out as warming. A reserved member whose pod does
    // not exist yet is never handed out.
    assert!(store.pool_reserve(&pool, "a2", tv, cap, 1_000).await.expect("reserve"));
    member_pod(store.as_ref(), &tenant, "a2", owner, PodStatus::Available).await;
    assert!(store.pool_ready(&pool, "a2", 1_001).await.expect("ready"));
    let rec = store.get_pod(&PodKey::new(&tenant, "a2")).await.expect("get").expect("a2");
    let restarting = Observed { status: PodStatus::Creating, ..rec.observed.value };
    store.put_observed(&PodKey::new(&tenant, "a2"), &restarting, rec.observed.version).await.expect("observe");
    assert!(store.pool_reserve(&pool, "w0", tv, cap, 1_000).await.expect("reserve"));
    assert_eq!(claim("bob", "c2", tv, pv).await, claimed(Claim::Warming("a2".into()), true));
    assert_eq!(owner_of(store.as_ref(), &tenant, "a2").await.0, "bob");

    // A warming member whose pod is already ready is handed out ready.
    assert!(store.pool_reserve(&pool, "w1", tv, cap, 1_000).await.expect("reserve"));
    member_pod(store.as_ref(), &tenant, "w1", owner, PodStatus::Available).await;
    assert_eq!(claim("carol", "c3", tv, pv).await, claimed(Claim::Ready("w1".into()), true));

    // A pod owned by someone else keeps its owner; the claim says so.
    assert!(store.pool_reserve(&pool, "a3", tv, cap, 1_000).await.expect("reserve"));
    member_pod(store.as_ref(), &tenant, "a3", "mallory", PodStatus::Available).await;
    assert!(store.pool_ready(&pool, "a3", 1_001).await.expect("ready"));
    assert_eq!(claim("dave", "c4", tv, pv).await, claimed(Claim::Ready("a3".into()), false));
    assert_eq!(owner_of(store.as_ref(), &tenant, "a3").await, ("mallory".to_string(), 1));

    // A member whose pod is being deleted is not handed out: a cold member is, below the cap.
    assert!(store.pool_reserve(&pool, "a4", tv, cap, 1_000).await.expect("reserve"));
    member_pod(store.as_ref(), &tenant, "a4", owner, PodStatus::Available).await;
    assert!(store.pool_ready(&pool, "a4", 1_001).await.expect("ready"));
    let rec = store.get_pod(&PodKey::new(&tenant, "a4")).await.expect("get").expect("a4");
    let deleting = Desired { deleted: true, ..rec.desired.value };
    store.put_desired(&deleting, rec.desired.version).await.expect("delete");
    assert_eq!(claim("erin", "c5", tv, pv).await, claimed(Claim::Cold("c5".into()), false));
    let members = store.pool_members(&pool).await.expect("members");
    assert_eq!(members.len(), cap as usize, "{members:?}");
    assert_eq!(state_of(&members, "a4"), Some(MemberState::Warming), "back to warming, for the pool-manager");
    assert_eq!(state_of(&members, "w0"), Some(MemberState::Warming));
    let c5 = members.iter().find(|m| m.id == "c5").expect("c5");
    assert_eq!(
        (c5.state, c5.claimant.as_deref(), c5.template_version, c5.pod_seen),
        (MemberState::Claimed, Some("erin"), tv, false)
    );
    assert_eq!(claim("frank", "c6", tv, pv).await, claimed(Claim::Full, false));
    assert_eq!(store.pool_members(&pool).await.expect("members").len(), cap as usize, "the cap holds");
}

/// Concurrent `pool_claim_instance` calls hand each ready member to one claimant, who owns
/// its pod afterwards; the rest get cold members up to the cap, then `Full`.
pub async fn concurrent_instance_claims_hand_out_and_own_each_member_once(store: Arc<dyn Store>) {
    let tenant = unique("tenant");
    let pool = format!("{tenant}/web");
    let (ready, cap, claims) = (12u32, 16u32, 30usize);
    let tv = store.put_doc(TEMPLATE_KIND, &pool, "{}", 0).await.expect("template");
    let pv = store.put_doc(POOL_KIND, &pool, "{}", 0).await.expect("pool");
    for i in 0..ready {
        let id = format!("r{i:03}");
        assert!(store.pool_reserve(&pool, &id, tv, cap, 1_000).await.expect("reserve"));
        member_pod(store.as_ref(), &tenant, &id, "pool:web", PodStatus::Available).await;
        assert!(store.pool_ready(&pool, &id, 1_001).await.expect("ready"));
    }
    let tasks: Vec<_> = (0..claims)
        .map(|i| {
            let (store, tenant, pool) = (Arc::clone(&store), tenant.clone(), pool.clone());
            tokio::spawn(async move {
                let (user, cold) = (format!("user{i}"), format!("cold{i:03}"));
                let req = ClaimRequest {
                    tenant: &tenant,
                    pool: &pool,
                    template_version: tv,
                    pool_version: pv,
                    cap,
                    pool_owner: "pool:web",
                    claimant: &user,
                    cold_member: &cold,
                    now: 2_000,
                };
                let outcome = store.pool_claim_instance(&req).await.expect("claim");
                (user, outcome)
            })
        })
        .collect();
    let (mut handed, mut cold, mut full) = (BTreeSet::new(), 0, 0);
    for task in tasks {
        let (user, outcome) = task.await.expect("claim task");
        match outcome {
            ClaimOutcome::Claimed { claim: Claim::Ready(id), owner_set: true } => {
                assert_eq!(owner_of(store.as_ref(), &tenant, &id).await.0, user, "{id} is owned by its claimant");
                assert!(handed.insert(id.clone()), "{id} handed out twice");
            }
            ClaimOutcome::Claimed { claim: Claim::Cold(id), owner_set: false } => {
                cold += 1;
                assert!(handed.insert(id.clone()), "{id} handed out twice");
            }
            ClaimOutcome::Claimed { claim: Claim::Full, .. } => full += 1,
            other => panic!("unexpected claim outcome {other:?}"),
        }
    }
    assert_eq!((handed.len(), cold, full), (cap as usize, cap - ready, claims - cap as usize));
}
