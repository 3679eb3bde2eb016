//! Pod status events from `corral.events`: start a readiness probe when a pod reaches
//! CREATING, stop it when the pod moves on.

use std::sync::Arc;

use corral_bus::{ConsumeOptions, Consumer, Delivery};
use corral_model::{PodKey, PodStatus};
use corral_protocol::topology::{EVENTS_EXCHANGE, event_routing_key};
use corral_protocol::{PodEvent, decode_pod_events};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::Ctx;
use crate::backoff::{reconnect_delay, sleep_unless_cancelled};
use crate::probes::Target;

/// The statuses whose events the poller acts on: CREATING starts a probe, the others end
/// one. AVAILABLE (the most frequent event) only ever follows the probe's own `Ready`, after
/// which the probe has ended, and SPAWNER SETUP never follows CREATING directly: receiving
/// them would cost a delivery and an ack per pod for nothing.
const WATCHED: [PodStatus; 6] = [
    PodStatus::Creating,
    PodStatus::Requested,
    PodStatus::Deleting,
    PodStatus::Stopped,
    PodStatus::Error,
    PodStatus::Complete,
];

/// Binding keys for [`WATCHED`], for every tenant (`#` also matches tenants with dots).
fn binding_keys() -> Vec<String> {
    WATCHED.iter().map(|status| event_routing_key("#", status.as_str())).collect()
}

/// Subscribes to pod events and handles them until cancelled, re-subscribing with backoff.
pub(crate) async fn watch(ctx: Arc<Ctx>, cancel: CancellationToken) {
    let mut failures = 0u32;
    let keys = binding_keys();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    loop {
        // Events are hints (a resync follows every re-subscription): no ack per event.
        let opts = ConsumeOptions { consumer_tag: "health-poller".into(), auto_ack: true, ..ConsumeOptions::default() };
        match ctx.bus.subscribe_keys(EVENTS_EXCHANGE, &keys, opts).await {
            Ok((queue, consumer)) => {
                tracing::info!(queue, "subscribed to pod events");
                if failures > 0 {
                    // Events published while we were away are gone: look at the store.
                    ctx.resync_now.notify_one();
                }
                if consume(&ctx, consumer, &cancel).await {
                    failures = 0;
                }
                if cancel.is_cancelled() {
                    return;
                }
                tracing::warn!("pod event subscription ended");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to pod events"),
        }
        failures = failures.saturating_add(1);
        if !sleep_unless_cancelled(reconnect_delay(failures), &cancel).await {
            return;
        }
    }
}

/// Handles deliveries until the stream ends or we are cancelled; returns whether any
/// delivery arrived (a working subscription resets the backoff).
async fn consume(ctx: &Ctx, consumer: Consumer, cancel: &CancellationToken) -> bool {
    let Consumer { mut stream, cancel: stop_consuming } = consumer;
    let mut received = false;
    loop {
        let delivery = tokio::select! {
            () = cancel.cancelled() => break,
            d = stream.next() => match d {
                Some(d) => d,
                None => break,
            },
        };
        received = true;
        handle(ctx, &delivery);
        // Events are hints: nothing to redeliver if handling them went wrong.
        if let Err(e) = delivery.ack().await {
            tracing::warn!(error = %e, "cannot ack pod event");
        }
    }
    stop_consuming();
    received
}

fn handle(ctx: &Ctx, delivery: &Delivery) {
    match decode_pod_events(&delivery.body, delivery.content_type.as_deref()) {
        Ok(events) => events.into_iter().for_each(|event| handle_event(ctx, event)),
        Err(e) => tracing::warn!(error = %e, "ignoring undecodable pod event"),
    }
}

fn handle_event(ctx: &Ctx, event: PodEvent) {
    let pod = PodKey::new(event.tenant, event.pod_id);
    match (event.status, event.container_id, event.endpoint, event.probe) {
        (PodStatus::Creating, Some(container_id), Some(endpoint), Some(kind)) => {
            let target = Target { pod, container_id, endpoint, kind };
            if ctx.probes.ensure(target, &ctx.publisher, &ctx.settings) {
                tracing::debug!("readiness probe started from a pod event");
            }
        }
        (status, container_id, _, _) => {
            let keep = container_id.filter(|_| status == PodStatus::Creating);
            ctx.probes.stop_unless(&pod, keep.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use corral_protocol::topology::event_routing_key;

    use super::*;

    /// What each status's event does to the poller, and so whether it must be bound.
    #[test]
    fn bound_statuses_are_those_that_start_or_end_a_probe() {
        let keys = binding_keys();
        let table = [
            (PodStatus::Creating, true),
            (PodStatus::Requested, true),
            (PodStatus::Deleting, true),
            (PodStatus::Stopped, true),
            (PodStatus::Error, true),
            (PodStatus::Complete, true),
            (PodStatus::Available, false),
            (PodStatus::SpawnerSetup, false),
        ];
        for (status, bound) in table {
            let key = event_routing_key("#", status.as_str());
            assert_eq!(keys.contains(&key), bound, "{status}");
        }
        assert_eq!(keys.len(), table.iter().filter(|(_, bound)| *bound).count());
        assert!(keys.contains(&"pod.#.CREATING".to_owned()), "{keys:?}");
    }
}
