//! The log-collector: follows the output of every running container into the store, where
//! the pod's logs are read from (the store keeps the last 10 MB per pod).
//!
//! One follower task per container. Output is written in batches (at 64 KiB or every
//! 250 ms, whichever comes first), so a chatty container does not cost one store write per
//! line. A restarted collector skips what the store already holds for the same instance, so
//! output is not duplicated.

mod backoff;
mod batch;
mod followers;
mod watch;

use std::future::Future;
use std::sync::Arc;

use corral_config::Config;
use corral_runtime::Runtime;
use corral_store::Store;
use tokio_util::sync::CancellationToken;

use crate::followers::Followers;

/// The external systems the collector talks to.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub runtime: Arc<dyn Runtime>,
}

/// Runs the collector until `shutdown` resolves, then flushes what the followers hold and
/// returns. The configuration has no collector settings yet (batch limits are constants).
pub async fn run(_cfg: Config, deps: Deps, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let followers = Arc::new(Followers::new(deps.store, deps.runtime.clone(), cancel.clone()));
    let watcher =
        corral_telemetry::spawn_named("runtime-events", watch::watch(deps.runtime, followers.clone(), cancel.clone()));
    tracing::info!("log-collector running");
    shutdown.await;
    tracing::info!("log-collector stopping");
    cancel.cancel();
    if let Err(e) = watcher.await {
        tracing::warn!(error = %e, "runtime event watcher ended abnormally");
    }
    followers.join_all().await;
    Ok(())
}
