//! Pod events to `corral.events`, gathered per routing key (see [`crate::gather`]): while
//! one message for `pod.<tenant>.<status>` is being published, the events for the same key
//! that arrive meanwhile leave together as one [`PodEvents`]. A lone event still goes at
//! once as a plain [`PodEvent`] with its trace context in the headers. Events are hints:
//! published without confirm, and consumers read either form with
//! [`corral_protocol::decode_pod_events`].

use std::sync::Arc;
use std::time::Duration;

use corral_protocol::topology::{EVENTS_EXCHANGE, event_routing_key};
use corral_protocol::{PodEvent, PodEvents};
use futures::future::BoxFuture;

use crate::gather::{BatchSender, Gatherer, out_message};
use crate::{Bus, BusError, OutMessage};

/// A publish the broker does not take within this time (flow control, a dead connection)
/// fails its events rather than holding up the lane.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes pod events, gathered per routing key. Cheap to clone.
#[derive(Clone)]
pub struct EventPublisher {
    inner: Gatherer<EventSender>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").field("started", &self.inner.started()).finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// `max_batch`: events in one message at most (1 sends every event alone).
    pub fn new(bus: Arc<dyn Bus>, max_batch: usize) -> Self {
        Self { inner: Gatherer::new(EventSender { bus }, max_batch, "event-publisher") }
    }

    /// Publishes `event` on `pod.<tenant>.<status>` and returns once the message carrying it
    /// was handed to the broker (or failed).
    pub async fn publish(&self, event: PodEvent) -> Result<(), BusError> {
        let key = event_routing_key(&event.tenant, event.status.as_str());
        self.inner.submit(key, event).await
    }
}

struct EventSender {
    bus: Arc<dyn Bus>,
}

impl BatchSender for EventSender {
    type Key = String;
    type Item = PodEvent;

    fn send(&self, key: String, events: Vec<PodEvent>) -> BoxFuture<'static, Result<(), BusError>> {
        let bus = Arc::clone(&self.bus);
        Box::pin(async move {
            let msg = message(events)?;
            match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish_event(EVENTS_EXCHANGE, &key, msg)).await {
                Ok(published) => published,
                Err(_) => Err(BusError::Unavailable(format!("publishing an event took over {PUBLISH_TIMEOUT:?}"))),
            }
        })
    }
}

/// A lone event goes as [`PodEvent`] with its trace context in the headers, as every event
/// did before batches existed; more go as one [`PodEvents`].
fn message(mut events: Vec<PodEvent>) -> Result<OutMessage, BusError> {
    let encoded = if events.len() == 1 {
        let mut event = events.remove(0);
        let traceparent = event.traceparent.take();
        corral_protocol::encode(&event).map(|body| (body, traceparent))
    } else {
        corral_protocol::encode(&PodEvents { events }).map(|body| (body, None))
    };
    out_message(encoded)
}
