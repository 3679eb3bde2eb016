//! Claim hints: after a claim takes an unclaimed member, the pool-manager is told (a
//! [`PoolClaimed`] on the events exchange) so it refills the pool at once. Published by a
//! task of its own after the claim is answered, never on the claim path. The task waits
//! [`GATHER`] first, so a burst of claims (a class clicking "launch" together) is answered
//! before the refill it causes starts competing for the same cores, and costs one hint;
//! claims arriving while a hint is being published are covered by one more hint after it,
//! so every claim is followed by a hint sent after it. Refilling takes a container start
//! (hundreds of ms), so the wait does not change how soon the pool is full again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use corral_bus::OutMessage;
use corral_protocol::PoolClaimed;
use corral_protocol::topology::{EVENTS_EXCHANGE, pool_claimed_routing_key};
use tracing::Instrument as _;

use crate::AppState;

/// A hint not published by then is dropped: the pool-manager's periodic pass refills anyway.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long claims of one pool are gathered into one hint.
const GATHER: Duration = Duration::from_millis(20);

/// Pools with a hint being published → whether another claim came meanwhile.
#[derive(Debug, Default)]
pub(super) struct ClaimHints {
    pending: Mutex<HashMap<String, bool>>,
}

impl ClaimHints {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, bool>> {
        // Only plain map operations happen under the lock: a panic cannot leave it torn.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a claim from `pool` (of `tenant`); returns at once.
    pub(super) fn claimed(self: &Arc<Self>, st: &AppState, tenant: &str, pool: &str) {
        {
            let mut pending = self.lock();
            if let Some(again) = pending.get_mut(pool) {
                *again = true;
                return;
            }
            pending.insert(pool.to_owned(), false);
        }
        let (hints, st, tenant, pool) = (Arc::clone(self), st.clone(), tenant.to_owned(), pool.to_owned());
        let span = tracing::debug_span!("pool_claim_hint", pool = %pool);
        tokio::spawn(async move { hints.publish_until_settled(&st, &tenant, &pool).await }.instrument(span));
    }

    async fn publish_until_settled(&self, st: &AppState, tenant: &str, pool: &str) {
        loop {
            tokio::time::sleep(GATHER).await;
            if let Some(again) = self.lock().get_mut(pool) {
                *again = false;
            }
            publish(st, tenant, pool).await;
            let mut pending = self.lock();
            if !pending.get(pool).is_some_and(|again| *again) {
                pending.remove(pool);
                return;
            }
        }
    }
}

async fn publish(st: &AppState, tenant: &str, pool: &str) {
    let body = match corral_protocol::encode(&PoolClaimed { pool: pool.to_owned() }) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(pool, error = %e, "cannot encode a claim hint");
            return;
        }
    };
    let sent = tokio::time::timeout(
        PUBLISH_TIMEOUT,
        st.bus().publish_event(EVENTS_EXCHANGE, &pool_claimed_routing_key(tenant), OutMessage::new(body)),
    )
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        tracing::debug!(pool, "claim hint not published; the pool-manager's periodic pass refills");
    }
}
