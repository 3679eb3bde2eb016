// Shared by the service binaries' `main.rs` (included, not a crate): mapping configuration
// onto telemetry and runtime settings.

#[allow(dead_code)]
fn telemetry_settings(service: &str, cfg: &corral_config::Config) -> corral_telemetry::Settings {
    corral_telemetry::Settings {
        service: service.to_string(),
        json: cfg.telemetry.log_format == "json",
        filter: cfg.telemetry.log_filter.clone(),
        otlp_endpoint: cfg.telemetry.otlp_endpoint.clone(),
    }
}

#[allow(dead_code)]
fn runtime_kind(cfg: &corral_config::Config) -> corral_runtime::RuntimeKind {
    match cfg.runtime.kind {
        corral_config::RuntimeKind::Docker => corral_runtime::RuntimeKind::Docker,
        corral_config::RuntimeKind::Process => corral_runtime::RuntimeKind::Process,
        corral_config::RuntimeKind::Simulated => corral_runtime::RuntimeKind::Simulated,
    }
}

#[allow(dead_code)]
fn runtime_options(cfg: &corral_config::Config) -> corral_runtime::RuntimeOptions {
    corral_runtime::RuntimeOptions {
        namespace: cfg.runtime.namespace.clone(),
        host_ip: cfg.runtime.host_ip.clone(),
        process_state_dir: cfg.runtime.process_state_dir.clone().into(),
        simulated_start_delay: std::time::Duration::from_millis(cfg.runtime.simulated_start_delay_ms),
    }
}

#[allow(dead_code)]
async fn connect_store(cfg: &corral_config::Config) -> anyhow::Result<std::sync::Arc<dyn corral_store::Store>> {
    use anyhow::Context as _;
    let store = corral_store::redis::RedisStore::connect(&cfg.redis.url, &cfg.redis.namespace)
        .await
        .with_context(|| format!("connecting to redis at {}", cfg.redis.url))?;
    Ok(std::sync::Arc::new(store))
}

#[allow(dead_code)]
async fn connect_bus(cfg: &corral_config::Config) -> anyhow::Result<std::sync::Arc<dyn corral_bus::Bus>> {
    use anyhow::Context as _;
    let bus = corral_bus::amqp::AmqpBus::connect(&cfg.amqp.url, &cfg.amqp.namespace)
        .await
        .context("connecting to rabbitmq (amqp.url / CORRAL_AMQP_URL)")?;
    Ok(std::sync::Arc::new(bus))
}

#[allow(dead_code)]
async fn connect_runtime(cfg: &corral_config::Config) -> anyhow::Result<std::sync::Arc<dyn corral_runtime::Runtime>> {
    use anyhow::Context as _;
    corral_runtime::connect(runtime_kind(cfg), runtime_options(cfg))
        .await
        .with_context(|| format!("opening the {:?} container runtime", cfg.runtime.kind))
}
