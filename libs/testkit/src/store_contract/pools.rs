//! Documents and pool members: compare-and-set documents, the member state machine and
//! claims that never hand a member out twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use corral_store::{Claim, MemberState, Store, StoreError};

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
