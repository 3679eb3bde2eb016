//! The stack's spawners: each one stoppable on its own (the scale scenario hands its pods
//! over from one spawner to a fresh one), the wait for their shard ownership to settle, and
//! the purge of pods between phases run by different spawners.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral_store::Store as _;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{LocalStack, STOP_TIMEOUT, cancelled, connect_bus, connect_store};

/// Bound on waiting for the spawners to settle shard ownership.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One service task with its own stop signal.
pub(super) struct ServiceHandle {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl LocalStack {
    /// Starts one more in-process spawner over the stack's runtime, with its own Redis and
    /// RabbitMQ connections.
    pub async fn add_spawner(&self) -> anyhow::Result<()> {
        let deps = spawner::Deps {
            store: connect_store(&self.cfg).await?,
            bus: connect_bus(&self.cfg).await?,
            runtime: self.runtime.clone(),
        };
        let stop = CancellationToken::new();
        let service = spawner::run(self.cfg.clone(), deps, cancelled(&stop));
        let task = tokio::spawn(service.instrument(tracing::info_span!("service", name = "spawner")));
        if let Ok(mut s) = self.spawners.lock() {
            s.push(ServiceHandle { stop, task });
        }
        Ok(())
    }

    /// Stops every in-process spawner the way a deployment stops one (it releases its
    /// shards and leaves the group), and waits for them to finish.
    pub async fn stop_spawners(&self) {
        let handles: Vec<ServiceHandle> = self.spawners.lock().map(|mut s| s.drain(..).collect()).unwrap_or_default();
        for h in &handles {
            h.stop.cancel();
        }
        for h in handles {
            let abort = h.task.abort_handle();
            match tokio::time::timeout(STOP_TIMEOUT, h.task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "a spawner failed while stopping"),
                Ok(Err(e)) => tracing::warn!(error = %e, "a spawner task panicked"),
                Err(_) => {
                    tracing::warn!("a spawner did not stop within {STOP_TIMEOUT:?}; aborting it");
                    abort.abort();
                }
            }
        }
    }

    /// Removes every pod of the namespace from the store (not through the API: no spawner
    /// stops anything), so that the next phase's spawners adopt none of them.
    pub async fn purge_pods(&self) -> anyhow::Result<()> {
        let mut keys = Vec::new();
        for shard in 0..self.cfg.spawner.shards {
            keys.extend(self.store.list_shard(shard).await.context("listing a shard")?.into_iter().map(|k| (k, shard)));
        }
        let store = &self.store;
        let failed = futures::stream::iter(keys)
            .map(|(k, shard)| async move { store.purge_pod(&k, shard).await })
            .buffer_unordered(64)
            .filter(|r| futures::future::ready(r.is_err()))
            .count()
            .await;
        anyhow::ensure!(failed == 0, "{failed} pods could not be purged");
        Ok(())
    }

    /// Waits until every shard is leased and the leases are spread over `spawners` holders
    /// (in this process or not), and that has held for two membership rounds, so runs do
    /// not measure a rebalance.
    pub async fn wait_for_shard_owners(&self, spawners: usize) -> anyhow::Result<()> {
        let client = redis::Client::open(self.redis_url.as_str()).context("redis url")?;
        let mut conn = client.get_multiplexed_async_connection().await.context("connecting to redis")?;
        let keys: Vec<String> = (0..self.cfg.spawner.shards).map(|k| format!("{}:lease:shard.{k}", self.ns)).collect();
        let round = Duration::from_millis(self.cfg.spawner.membership_interval_ms);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut stable_since: Option<(Instant, Vec<Option<String>>)> = None;
        loop {
            let holders: Vec<Option<String>> =
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await.context("reading shard leases")?;
            let mut distinct: Vec<&String> = holders.iter().flatten().collect();
            distinct.sort();
            distinct.dedup();
            let settled = holders.iter().all(Option::is_some) && distinct.len() == spawners.max(1);
            stable_since = match (settled, stable_since) {
                (false, _) => None,
                (true, Some((t, prev))) if prev == holders => {
                    if t.elapsed() >= round * 2 {
                        return Ok(());
                    }
                    Some((t, prev))
                }
                (true, _) => Some((Instant::now(), holders)),
            };
            anyhow::ensure!(
                Instant::now() < deadline,
                "spawners did not settle shard ownership within {SETTLE_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
