//! Names of exchanges, queues and routing keys: one place, so producers and consumers agree.

/// Kicks and observations, routed to shard queues by `shard.<k>`.
pub const COMMANDS_EXCHANGE: &str = "corral.commands";
/// Pod status events (topic exchange; routing key `pod.<tenant>.<status>`).
pub const EVENTS_EXCHANGE: &str = "corral.events";
/// Requests from other systems (direct exchange; routing key `pods`).
pub const REQUESTS_EXCHANGE: &str = "corral.requests";
/// Where messages that keep failing end up, with their reason in a header.
pub const DEAD_LETTER_EXCHANGE: &str = "corral.dead-letter";
pub const DEAD_LETTER_QUEUE: &str = "corral.dead-letter";
pub const REQUESTS_QUEUE: &str = "corral.requests";
pub const REQUESTS_ROUTING_KEY: &str = "pods";
/// Header carrying why a message was dead-lettered.
pub const HEADER_ERROR: &str = "x-corral-error";
/// Header counting failed processing attempts of a message.
pub const HEADER_ATTEMPTS: &str = "x-corral-attempts";
/// Header carrying the caller's token on external requests.
pub const HEADER_TOKEN: &str = "x-tapis-token";
/// W3C trace context.
pub const HEADER_TRACEPARENT: &str = "traceparent";

pub fn shard_queue(shard: u32) -> String {
    format!("corral.shard.{shard}")
}

pub fn shard_routing_key(shard: u32) -> String {
    format!("shard.{shard}")
}

pub fn event_routing_key(tenant: &str, status: &str) -> String {
    format!("pod.{tenant}.{}", status.replace(' ', "_"))
}

/// Routing key of [`PoolClaimed`](crate::PoolClaimed) hints on the events exchange.
pub fn pool_claimed_routing_key(tenant: &str) -> String {
    format!("pool.{tenant}.claimed")
}
