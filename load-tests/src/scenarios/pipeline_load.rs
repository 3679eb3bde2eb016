//! The two halves of the pipeline run: posting pods with bounded concurrency, and counting
//! their AVAILABLE events on `corral.events`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use corral_bus::{Bus, ConsumeOptions, Consumer};
use corral_model::PodStatus;
use corral_protocol::topology::EVENTS_EXCHANGE;
use corral_protocol::{PodEvent, decode_pod_events};
use futures::StreamExt as _;
use serde_json::Value;
use tracing::Instrument as _;

use crate::stack::Target;
use crate::stats::Latencies;

/// Unacked events the tracker's queue may hand over at once.
const EVENT_PREFETCH: u16 = 2000;

/// When each pod of the run became AVAILABLE (or ERROR), as events arrive.
#[derive(Default)]
pub struct Tracker {
    pub available: AtomicUsize,
    pub errors: AtomicUsize,
    /// Messages the events arrived in (events are gathered per routing key when busy).
    pub messages: AtomicUsize,
    /// Events of any status and pod received.
    pub events: AtomicUsize,
    seen: Mutex<HashMap<String, Instant>>,
}

impl Tracker {
    /// Arrival time of each pod's first AVAILABLE event.
    pub fn arrivals(&self) -> HashMap<String, Instant> {
        self.seen.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn on_event(&self, ev: &PodEvent, prefix: &str) {
        if !ev.pod_id.starts_with(prefix) {
            return;
        }
        match ev.status {
            PodStatus::Available => {
                let now = Instant::now();
                let first = self.seen.lock().map(|mut m| m.insert(ev.pod_id.clone(), now).is_none()).unwrap_or(false);
                if first {
                    self.available.fetch_add(1, Ordering::Relaxed);
                }
            }
            PodStatus::Error => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Subscribes to the tenant's pod events (before any pod is posted, so none is missed).
pub async fn subscribe(bus: &dyn Bus, tenant: &str) -> anyhow::Result<Consumer> {
    let opts = ConsumeOptions {
        prefetch: EVENT_PREFETCH,
        exclusive: false,
        consumer_tag: "corral-load-events".into(),
        // Events are hints: consumed as the services consume them.
        auto_ack: true,
    };
    let (_, consumer) = bus.subscribe(EVENTS_EXCHANGE, &format!("pod.{tenant}.*"), opts).await?;
    Ok(consumer)
}

/// Counts events into `tracker` until the stream ends (the consumer is cancelled).
pub fn track(
    mut stream: futures::stream::BoxStream<'static, corral_bus::Delivery>,
    tracker: Arc<Tracker>,
    prefix: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        async move {
            while let Some(delivery) = stream.next().await {
                match decode_pod_events(&delivery.body, delivery.content_type.as_deref()) {
                    Ok(events) => {
                        tracker.messages.fetch_add(1, Ordering::Relaxed);
                        tracker.events.fetch_add(events.len(), Ordering::Relaxed);
                        events.iter().for_each(|ev| tracker.on_event(ev, &prefix));
                    }
                    Err(e) => tracing::warn!(error = %e, "undecodable pod event"),
                }
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, "event ack failed");
                }
            }
        }
        .instrument(tracing::info_span!("task", name = "event-tracker")),
    )
}

/// What the posting workers saw.
#[derive(Default)]
pub struct Posted {
    pub latency: Latencies,
    /// When the gateway's answer to each pod's POST arrived.
    pub acked: HashMap<String, Instant>,
    pub failures: Vec<String>,
    pub last_ack: Option<Instant>,
}

/// Shared by the posting workers.
pub struct PostPlan {
    pub target: Arc<Target>,
    pub body: Value,
    pub prefix: String,
    pub pods: usize,
    pub next: AtomicUsize,
    /// Pods whose POST has been answered (successfully or not).
    pub done: AtomicUsize,
    /// Pods whose POST failed.
    pub failed: AtomicUsize,
}

impl PostPlan {
    pub fn pod_id(&self, i: usize) -> String {
        format!("{}{i:06}", self.prefix)
    }
}

/// Starts `concurrency` workers that post the plan's pods; each returns what it saw.
pub fn post_all(plan: Arc<PostPlan>, concurrency: usize) -> Vec<tokio::task::JoinHandle<Posted>> {
    (0..concurrency.max(1))
        .map(|w| {
            let plan = plan.clone();
            tokio::spawn(post_worker(plan).instrument(tracing::info_span!("task", name = "poster", worker = w)))
        })
        .collect()
}

async fn post_worker(plan: Arc<PostPlan>) -> Posted {
    let mut out = Posted::default();
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.pods {
            return out;
        }
        let pod_id = plan.pod_id(i);
        let mut body = plan.body.clone();
        body["pod_id"] = Value::String(pod_id.clone());
        let t = Instant::now();
        let result = plan.target.create_pod(&body).await;
        let now = Instant::now();
        match result {
            Ok(()) => {
                out.latency.record(now - t);
                out.acked.insert(pod_id, now);
                out.last_ack = Some(out.last_ack.map_or(now, |l| l.max(now)));
            }
            Err(e) => {
                plan.failed.fetch_add(1, Ordering::SeqCst);
                out.failures.push(format!("{pod_id}: {e:#}"));
            }
        }
        // Counted after `failed`, so a reader never sees a failure as a pending success.
        plan.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Merges the workers' results.
pub fn merge(parts: Vec<Posted>) -> Posted {
    let mut all = Posted::default();
    for p in parts {
        all.latency.merge(&p.latency);
        all.acked.extend(p.acked);
        all.failures.extend(p.failures);
        all.last_ack = match (all.last_ack, p.last_ack) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    all
}
