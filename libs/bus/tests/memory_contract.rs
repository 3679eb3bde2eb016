//! The bus contract against the in-process implementation.

use std::sync::Arc;

use corral_bus::contract;
use corral_bus::memory::MemoryBus;

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let run = contract::$name(Arc::new(MemoryBus::new()));
                tokio::time::timeout(std::time::Duration::from_secs(60), run).await.expect("contract finishes");
            }
        )*
    };
}

contract_tests!(
    declare_is_idempotent,
    round_trip_preserves_the_message,
    routes_by_shard_key,
    unroutable_publish_fails,
    order_is_preserved,
    concurrent_publishes_all_arrive,
    topic_subscription_filters,
    multi_key_subscription_matches_any_key_once,
    request_reply_via_send_to_queue,
    unacked_are_redelivered_after_cancel,
    unacked_are_redelivered_after_drop,
    prefetch_bound_is_respected,
    exclusive_consumer_conflicts,
    retry_counts_attempts_then_dead_letters,
    dead_letter_at_once,
    auto_acked_deliveries_are_not_redelivered,
);
