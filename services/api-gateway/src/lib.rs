//! The api-gateway: the Tapis Pods v3 HTTP API for pods, and the consumer of requests
//! other systems publish on `corral.requests`. Both validate, authorise and write desired
//! state to the store, then kick the pod's shard; they share one implementation
//! ([`service`]), so a request behaves the same whichever way it arrives.
//!
//! # Layout
//! - [`auth`]: HS256 tokens with Tapis claims; the caller extractor.
//! - [`envelope`]: the Tapis response envelope on every response.
//! - [`input`]: request bodies (`NewPod`, `UpdatePod`).
//! - [`service`]: the operations.
//! - [`view`]: the pod as clients see it (displayed status, URLs, timestamps).
//! - [`consumer`]: external requests from the bus.
//! - [`binder`]: the Binder API (templates, applications, pools) under `/api`.
//! - [`secrets`]: named secrets under `/api/secrets` (values never shown).
//! - [`proxy`]: the pod proxy (HTTP and websockets to a pod's port, by path or `Host`).

pub mod auth;
pub mod binder;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod input;
mod kick;
pub mod proxy;
mod routes;
pub mod secrets;
pub mod service;
pub mod sesstpl;
pub mod view;

use std::future::Future;
use std::sync::Arc;

use corral_bus::Bus;
use corral_bus::shard_publish::{CONFIRM_TIMEOUT, KickPublisher};
use corral_config::Config;
use corral_store::Store;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use error::ApiError;
pub use routes::router;

/// The systems the gateway talks to.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
}

/// Shared state of every request handler: configuration and the store and bus handles.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    deps: Deps,
    allowlists: service::images::AllowlistCache,
    tokens: auth::TokenCache,
    kicks: kick::Kicks,
}

impl AppState {
    pub fn new(cfg: Config, deps: Deps) -> Self {
        let publisher = KickPublisher::new(Arc::clone(&deps.bus), usize::from(cfg.amqp.max_kicks_per_message))
            .with_min_interval(cfg.amqp.kick_interval());
        let kicks = kick::Kicks::new(publisher);
        Self { inner: Arc::new(Inner { cfg, deps, allowlists: Default::default(), tokens: Default::default(), kicks }) }
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.deps.store.as_ref()
    }

    pub fn bus(&self) -> &dyn Bus {
        self.inner.deps.bus.as_ref()
    }

    /// Kicks to shard queues, gathered per shard and confirmed in the background.
    pub(crate) fn kicks(&self) -> &kick::Kicks {
        &self.inner.kicks
    }

    /// Tokens verified recently (see [`auth::TokenCache`]).
    pub fn tokens(&self) -> &auth::TokenCache {
        &self.inner.tokens
    }

    /// Images allowlists read recently (see [`service::images::AllowlistCache`]).
    pub fn allowlists(&self) -> &service::images::AllowlistCache {
        &self.inner.allowlists
    }
}

/// Serves HTTP on `listener` and consumes `corral.requests` until `shutdown` resolves;
/// then stops consuming, lets in-flight requests finish, waits for their kicks to be
/// confirmed, and returns.
pub async fn run(
    cfg: Config,
    deps: Deps,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(cfg, deps);
    let stop = CancellationToken::new();

    let consumer = tokio::spawn(
        consumer::consume_requests(state.clone(), stop.clone()).instrument(tracing::info_span!("request_consumer")),
    );

    let graceful = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = stop.cancelled() => {}
            }
            tracing::info!("api-gateway shutting down: finishing in-flight requests");
            stop.cancel();
        }
    };
    // The peer address feeds the pod proxy's `ip_allow_list` checks.
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(graceful).await;
    // The server may also end on its own (an I/O error): stop the consumer either way.
    stop.cancel();
    let consumed = consumer.await;
    // Requests answered before their kick was confirmed: let those kicks go out.
    if !state.kicks().drain(CONFIRM_TIMEOUT).await {
        tracing::warn!("kicks still unconfirmed at shutdown; the spawners' resync will converge");
    }
    served?;
    consumed.map_err(|e| anyhow::anyhow!("request consumer task failed: {e}"))?;
    tracing::info!("api-gateway stopped");
    Ok(())
}
