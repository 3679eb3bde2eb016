//! Tracing and OpenTelemetry set-up shared by every binary, named task spawning, trace
//! context in message headers, and the shutdown signal.

mod propagation;

use std::future::Future;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use tracing::Instrument;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

pub use propagation::{extract_parent, inject_current};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter '{filter}': {detail}")]
    Filter { filter: String, detail: String },
    #[error("cannot set up the OTLP exporter: {0}")]
    Otlp(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Settings for [`init`].
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub service: String,
    pub json: bool,
    pub filter: String,
    /// OTLP/HTTP endpoint; empty disables trace export.
    pub otlp_endpoint: String,
}

/// Flushes exported spans when dropped (at the end of `main`, after services stopped).
pub struct Guard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber: fmt (text or JSON) filtered by `RUST_LOG` or the
/// configured filter, plus OpenTelemetry export when an endpoint is configured.
pub fn init(settings: &Settings) -> Result<Guard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => f,
        _ => settings.filter.clone(),
    };
    let env_filter = EnvFilter::try_new(&filter)
        .map_err(|e| TelemetryError::Filter { filter: filter.clone(), detail: e.to_string() })?;
    let fmt_text = (!settings.json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let fmt_json = settings.json.then(|| tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr));
    let (otel, provider) = if settings.otlp_endpoint.is_empty() {
        (None, None)
    } else {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", settings.otlp_endpoint.trim_end_matches('/')))
            .build()
            .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(settings.service.clone()).build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(settings.service.clone());
        (Some(tracing_opentelemetry::layer().with_tracer(tracer)), Some(provider))
    };
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    tracing_subscriber::registry()
        .with(env_filter)
        .with(fmt_text)
        .with(fmt_json)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Guard { provider })
}

/// Spawns a task inside a span named after its purpose, so its logs and traces say which
/// task they come from.
pub fn spawn_named<F>(name: &'static str, fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(fut.instrument(tracing::info_span!("task", name)))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
