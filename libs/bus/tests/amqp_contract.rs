//! The bus contract against RabbitMQ (`CORRAL_TEST_AMQP_URL`), each test in its own
//! namespace, deleted afterwards.

mod support;

use corral_bus::contract;

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                support::with_namespaced_bus(|bus| contract::$name(bus)).await;
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
