//! What wakes the pool-manager between its periodic passes: pod events of pool members
//! (AVAILABLE: promote it; DELETING, STOPPED, ERROR: release or replace it) and the
//! gateways' claim hints (refill), all from `corral.events`. Events are hints: the pass
//! reads the store, and the periodic pass covers whatever is lost.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use corral_bus::{Bus, ConsumeOptions, Consumer};
use corral_model::{PodKey, PodStatus};
use corral_protocol::topology::{EVENTS_EXCHANGE, event_routing_key, pool_claimed_routing_key};
use corral_protocol::{PodEvent, PodEvents, PoolClaimed, decode};
use futures::StreamExt as _;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Statuses whose events concern a pool: a warming member ready, or a member going away.
const WATCHED: [PodStatus; 4] = [PodStatus::Available, PodStatus::Deleting, PodStatus::Stopped, PodStatus::Error];

/// Pools due for a pass before the periodic one, and the members the last passes saw (to
/// tell which pool a pod event concerns).
#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
    dirty: Mutex<BTreeSet<String>>,
    all: AtomicBool,
    members: Mutex<HashMap<PodKey, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a few map operations; a panic cannot leave them torn.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Wake {
    /// Resolves once something is due.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// `pool` changed: pass over it soon.
    pub fn pool_changed(&self, pool: &str) {
        lock(&self.dirty).insert(pool.to_owned());
        self.notify.notify_one();
    }

    /// A pod changed: pass over its pool soon, if it is a known member.
    pub fn pod_changed(&self, key: &PodKey) {
        let pool = lock(&self.members).get(key).cloned();
        if let Some(pool) = pool {
            self.pool_changed(&pool);
        }
    }

    /// Every pool is due (events may have been lost).
    pub fn everything(&self) {
        self.all.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// The pools due, `None` meaning all of them; clears the request.
    pub fn take(&self) -> Option<BTreeSet<String>> {
        let pools = std::mem::take(&mut *lock(&self.dirty));
        if self.all.swap(false, Ordering::SeqCst) { None } else { Some(pools) }
    }

    /// Records the members of `pool` (pods of `tenant`) after a pass.
    pub fn set_members(&self, pool: &str, tenant: &str, ids: &[String]) {
        let mut members = lock(&self.members);
        members.retain(|_, p| p != pool);
        for id in ids {
            members.insert(PodKey::new(tenant, id), pool.to_owned());
        }
    }

    /// Forgets the members of pools not in `live`.
    pub fn retain_pools(&self, live: &[String]) {
        lock(&self.members).retain(|_, p| live.contains(p));
    }
}

/// What arrives on the subscription.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Incoming {
    Claimed(PoolClaimed),
    Pods(PodEvents),
    Pod(Box<PodEvent>),
}

/// Subscribes to pod events and claim hints and turns them into wake-ups until cancelled,
/// re-subscribing with backoff.
pub async fn watch(bus: Arc<dyn Bus>, wake: Arc<Wake>, cancel: CancellationToken) {
    let mut keys: Vec<String> = WATCHED.iter().map(|s| event_routing_key("#", s.as_str())).collect();
    keys.push(pool_claimed_routing_key("#"));
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut failures = 0u32;
    loop {
        // Events are hints (its periodic pass covers lost ones): no ack per event.
        let opts = ConsumeOptions { consumer_tag: "pool-manager".into(), auto_ack: true, ..ConsumeOptions::default() };
        match bus.subscribe_keys(EVENTS_EXCHANGE, &keys, opts).await {
            Ok((queue, consumer)) => {
                tracing::info!(queue, "subscribed to pod events and claim hints");
                failures = 0;
                // Whatever was published while we were not subscribed is lost.
                wake.everything();
                consume(consumer, &wake, &cancel).await;
                if cancel.is_cancelled() {
                    return;
                }
                tracing::warn!("pod event subscription ended; subscribing again");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to pod events"),
        }
        failures = failures.saturating_add(1);
        let delay = Duration::from_millis(100u64.saturating_mul(1 << failures.min(6))).min(Duration::from_secs(5));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn consume(consumer: Consumer, wake: &Wake, cancel: &CancellationToken) {
    let Consumer { mut stream, cancel: stop_consuming } = consumer;
    loop {
        let delivery = tokio::select! {
            () = cancel.cancelled() => break,
            d = stream.next() => match d {
                Some(d) => d,
                None => break,
            },
        };
        match decode::<Incoming>(&delivery.body, delivery.content_type.as_deref()) {
            Ok(Incoming::Claimed(hint)) => wake.pool_changed(&hint.pool),
            Ok(Incoming::Pod(event)) => wake.pod_changed(&PodKey::new(event.tenant, event.pod_id)),
            Ok(Incoming::Pods(batch)) => {
                for event in batch.events {
                    wake.pod_changed(&PodKey::new(event.tenant, event.pod_id));
                }
            }
            Err(e) => tracing::warn!(error = %e, "ignoring an undecodable event"),
        }
        // Hints: nothing to redeliver if handling one went wrong.
        if let Err(e) = delivery.ack().await {
            tracing::warn!(error = %e, "cannot ack an event");
        }
    }
    stop_consuming();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_tracks_due_pools_and_members() {
        let wake = Wake::default();
        assert_eq!(wake.take(), Some(BTreeSet::new()));
        wake.set_members("acme/web", "acme", &["i1".into(), "i2".into()]);
        wake.pod_changed(&PodKey::new("acme", "i2"));
        wake.pod_changed(&PodKey::new("acme", "stranger"));
        wake.pod_changed(&PodKey::new("other", "i1"));
        assert_eq!(wake.take(), Some(BTreeSet::from(["acme/web".to_string()])));
        wake.set_members("acme/web", "acme", &["i3".into()]);
        wake.pod_changed(&PodKey::new("acme", "i1"));
        assert_eq!(wake.take(), Some(BTreeSet::new()), "former members are forgotten");
        wake.pool_changed("acme/db");
        wake.everything();
        assert_eq!(wake.take(), None, "everything wins");
        assert_eq!(wake.take(), Some(BTreeSet::new()), "and is cleared");
        wake.retain_pools(&[]);
        wake.pod_changed(&PodKey::new("acme", "i3"));
        assert_eq!(wake.take(), Some(BTreeSet::new()));
    }

    #[test]
    fn hints_and_pod_events_decode_apart() {
        let hint = corral_protocol::encode(&PoolClaimed { pool: "acme/web".into() }).expect("encode");
        assert!(matches!(decode::<Incoming>(&hint, None), Ok(Incoming::Claimed(h)) if h.pool == "acme/web"));
        let event = PodEvent {
            tenant: "acme".into(),
            pod_id: "i1".into(),
            status: PodStatus::Available,
            generation: 1,
            instance: 1,
            ..PodEvent::default()
        };
        let body = corral_protocol::encode(&event).expect("encode");
        assert!(matches!(decode::<Incoming>(&body, None), Ok(Incoming::Pod(e)) if e.pod_id == "i1"));
        let second = PodEvent { pod_id: "i2".into(), ..event.clone() };
        let batch = corral_protocol::encode(&PodEvents { events: vec![event, second] }).expect("encode");
        let Ok(Incoming::Pods(got)) = decode::<Incoming>(&batch, None) else { panic!("a batch decodes as one") };
        let ids: Vec<&str> = got.events.iter().map(|e| e.pod_id.as_str()).collect();
        assert_eq!(ids, ["i1", "i2"]);
    }
}
