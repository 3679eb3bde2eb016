//! The behaviour every [`Bus`] implementation must show, as async test functions that
//! panic on a violation. Each implementation's test suite calls every function with a
//! *fresh* bus (nothing declared, no messages), one test per function.
//!
//! Every wait is bounded ([`WAIT`]); the only wait for something *not* to happen is the
//! prefetch check, kept to [`ABSENCE_WAIT`].

mod delivery;
mod failures;
mod routing;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::{Bus, ConsumeOptions, Consumer, Delivery, OutMessage, Topology};

pub use delivery::{
    auto_acked_deliveries_are_not_redelivered, exclusive_consumer_conflicts, prefetch_bound_is_respected,
    unacked_are_redelivered_after_cancel, unacked_are_redelivered_after_drop,
};
pub use failures::{dead_letter_at_once, retry_counts_attempts_then_dead_letters};
pub use routing::{
    concurrent_publishes_all_arrive, declare_is_idempotent, multi_key_subscription_matches_any_key_once,
    order_is_preserved, request_reply_via_send_to_queue, round_trip_preserves_the_message, routes_by_shard_key,
    topic_subscription_filters, unroutable_publish_fails,
};

/// Shards the contract declares (for tests that clean up after themselves).
pub const SHARDS: u32 = 4;
/// Upper bound for anything the contract waits for.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long the prefetch check watches for a delivery that must not come.
pub const ABSENCE_WAIT: Duration = Duration::from_millis(300);
/// Interval of bounded polling loops (for effects a bus applies asynchronously).
const POLL: Duration = Duration::from_millis(20);

async fn declared(bus: &Arc<dyn Bus>) {
    bus.declare(&Topology { shards: SHARDS }).await.expect("declare the topology");
}

fn msg(body: &str) -> OutMessage {
    OutMessage::new(body.as_bytes().to_vec())
}

fn text(delivery: &Delivery) -> String {
    String::from_utf8_lossy(&delivery.body).into_owned()
}

fn opts(prefetch: u16) -> ConsumeOptions {
    ConsumeOptions { prefetch, ..ConsumeOptions::default() }
}

async fn consume(bus: &Arc<dyn Bus>, queue: &str, prefetch: u16) -> Consumer {
    bus.consume(queue, opts(prefetch)).await.unwrap_or_else(|e| panic!("consume {queue}: {e}"))
}

/// The next delivery, failing the test if none comes within [`WAIT`].
async fn next(consumer: &mut Consumer, what: &str) -> Delivery {
    match tokio::time::timeout(WAIT, consumer.stream.next()).await {
        Ok(Some(delivery)) => delivery,
        Ok(None) => panic!("{what}: the consumer stream ended"),
        Err(_) => panic!("{what}: nothing arrived within {WAIT:?}"),
    }
}

/// Publishes `bodies` one after another to a shard.
async fn publish_all(bus: &Arc<dyn Bus>, shard: u32, bodies: impl IntoIterator<Item = String>) {
    let key = corral_protocol::topology::shard_routing_key(shard);
    for body in bodies {
        bus.publish(corral_protocol::topology::COMMANDS_EXCHANGE, &key, msg(&body))
            .await
            .unwrap_or_else(|e| panic!("publish {body}: {e}"));
    }
}
