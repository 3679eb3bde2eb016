//! The contract every [`Store`] implementation must meet, as async functions taking the
//! store under test. Each function uses fresh, uniquely named tenants, leases and groups, so
//! the functions can share one store (see [`run_all`]); an implementation's test file should
//! still give each its own test through [`store_contract_tests!`](crate::store_contract_tests)
//! so a failure names the broken rule.
//!
//! Beyond the trait's documentation, the contract pins down:
//! - appending to the action log or output of a pod that does not exist is `NotFound` (no
//!   keys are left behind after a purge); reading them gives an empty log and `(0, [])`;
//! - `purge_pod` also cleans the shard recorded at creation if the caller names another;
//! - `live_members` and `list_shard` are sorted;
//! - `create_pod_logged` / `put_observed_logged` write state and log lines all or nothing;
//! - `get_pods` and `pod_versions` answer in the order asked, `None` for missing pods.

mod batched;
mod coordination;
mod indexes;
mod logs;
mod pools;
mod records;

use std::sync::Arc;

use corral_model::{ActionLogEntry, Desired, Networking, Observed, PodSpec, PodStatus, StatusRequested};
use corral_store::Store;

pub use batched::*;
pub use coordination::*;
pub use indexes::*;
pub use logs::*;
pub use pools::*;
pub use records::*;

/// `prefix` followed by a fresh uuid: names that no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A desired state with enough fields set that a lossy encoding would show.
pub fn desired(tenant: &str, pod_id: &str) -> Desired {
    let mut spec = PodSpec {
        pod_id: pod_id.to_owned(),
        image: "corral-test/busybox".into(),
        description: "contract fixture: ünïcode too".into(),
        command: Some(vec!["httpd".into(), "-f".into()]),
        time_to_stop_instance: Some(600),
        ..PodSpec::default()
    };
    spec.environment_variables.insert("GREETING".into(), "hello \"world\"".into());
    spec.networking.insert("admin".into(), Networking::default());
    Desired {
        tenant: tenant.to_owned(),
        owner: "owner-1".into(),
        spec,
        status_requested: StatusRequested::On,
        generation: 1,
        deleted: false,
        creation_ts: 1_700_000_000_000,
        update_ts: 1_700_000_000_000,
    }
}

/// The observed state of a pod nothing has acted on yet.
pub fn observed() -> Observed {
    Observed { status: PodStatus::Requested, since: 1_700_000_000_000, ..Observed::default() }
}

/// An action-log entry whose message carries `n`.
pub fn action(n: usize) -> ActionLogEntry {
    ActionLogEntry {
        ts: 1_700_000_000_000 + i64::try_from(n).unwrap_or(i64::MAX),
        actor: "contract".into(),
        message: format!("entry {n}"),
    }
}

/// Runs the whole contract against one store, one function after another.
pub async fn run_all(store: Arc<dyn Store>) {
    crate::store_contract_tests!(@list @run_all store);
}

/// Defines one `#[tokio::test]` per contract function. `$harness` is an async function
/// taking the contract function (`FnOnce(Arc<dyn Store>) -> impl Future<Output = ()>`): it
/// builds a fresh store, runs the function on it and cleans up. For example (see
/// `tests/memory_store_contract.rs` of this crate):
///
/// ```text
/// async fn with_store<F, Fut>(contract: F)
/// where
///     F: FnOnce(Arc<dyn Store>) -> Fut,
///     Fut: Future<Output = ()>,
/// {
///     contract(Arc::new(MemoryStore::new())).await;
/// }
/// corral_testkit::store_contract_tests!(with_store);
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($harness:path) => {
        $crate::store_contract_tests!(@list @tests $harness);
    };
    // The single list of contract functions, handed to the mode that asked for it.
    (@list $($mode:tt)*) => {
        $crate::store_contract_tests!(
            $($mode)*;
            create_get_round_trip,
            duplicate_create_is_rejected,
            desired_compare_and_set,
            observed_compare_and_set,
            writes_to_missing_pod_are_not_found,
            concurrent_compare_and_set_has_one_winner,
            create_pod_logged_starts_the_log,
            put_observed_logged_is_all_or_nothing,
            logged_writes_keep_the_cap,
            get_pods_reads_many_in_order,
            pod_versions_follow_writes,
            list_tenant_is_isolated_and_ordered,
            list_shard_follows_create_and_purge,
            purge_removes_everything,
            action_log_keeps_order_and_cap,
            output_keeps_exact_tail_under_cap,
            output_follows_latest_instance,
            lease_is_exclusive,
            lease_renewal_extends_ttl,
            lease_expires_after_ttl,
            membership_tracks_heartbeats,
            documents_compare_and_set,
            pool_members_follow_their_states,
            concurrent_claims_hand_out_each_member_once,
            claim_instance_checks_documents_readiness_and_owner,
            concurrent_instance_claims_hand_out_and_own_each_member_once
        );
    };
    (@tests $harness:path; $($name:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $harness($crate::store_contract::$name).await;
            }
        )*
    };
    (@run_all $store:ident; $($name:ident),*) => {
        $( $crate::store_contract::$name(::std::sync::Arc::clone(&$store)).await; )*
    };
}
