//! Typed configuration: `config/default.toml`, then an optional file, then environment
//! variables. Strict: unknown keys are errors, so a typo never silently does nothing.

mod env;

use std::path::Path;

use corral_model::user_secret::SecretsKey;
use serde::Deserialize;

pub use env::ENV_SHORTCUTS;

/// The defaults, compiled in so every binary runs without a config file.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");
/// Above this, the spawns of a busy shard would wait noticeably for their kick message.
pub const MAX_KICK_INTERVAL_MS: u64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config {origin} is not valid TOML: {detail}")]
    Parse { origin: String, detail: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("environment variable {var}: {detail}")]
    Env { var: String, detail: String },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub amqp: Amqp,
    pub redis: Redis,
    pub http: Http,
    pub auth: Auth,
    pub secrets: Secrets,
    pub runtime: Runtime,
    pub spawner: Spawner,
    pub health: Health,
    pub pods: Pods,
    pub images: Images,
    pub telemetry: Telemetry,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Amqp {
    pub url: String,
    pub namespace: String,
    pub prefetch: u16,
    pub max_kicks_per_message: u16,
    pub kick_interval_ms: u64,
    pub max_events_per_message: u16,
    pub max_observations_per_message: u16,
}

impl Amqp {
    /// `kick_interval_ms` as a duration.
    pub fn kick_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.kick_interval_ms)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    pub url: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub addr: String,
    pub pods_domain: String,
    pub public_url: String,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub jwt_secret: String,
    pub token_ttl_s: u64,
    pub leeway_s: u64,
    pub admin_users: String,
    pub admin_role: String,
}

// The secret must never reach logs, even at debug level.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("jwt_secret", &"(hidden)")
            .field("token_ttl_s", &self.token_ttl_s)
            .field("leeway_s", &self.leeway_s)
            .field("admin_users", &self.admin_users)
            .field("admin_role", &self.admin_role)
            .finish()
    }
}

/// Encryption at rest of named secrets (`/api/secrets`).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// 32 bytes, hex or base64; empty: derived from `auth.jwt_secret` ([`Config::secrets_key`]).
    pub key: String,
}

// The key must never reach logs, even at debug level.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.key.trim().is_empty() { "(unset)" } else { "(hidden)" };
        f.debug_struct("Secrets").field("key", &key).finish()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    Docker,
    Process,
    Simulated,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub kind: RuntimeKind,
    pub namespace: String,
    pub host_ip: String,
    pub pids_limit: i64,
    pub process_state_dir: String,
    pub simulated_start_delay_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spawner {
    pub shards: u32,
    pub lease_ttl_ms: u64,
    pub membership_interval_ms: u64,
    pub resync_interval_ms: u64,
    pub stall_timeout_ms: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub max_delivery_attempts: u32,
    /// Where pods' git sources are cloned (`<git_dir>/<namespace>/<tenant>/<pod>/<generation>`).
    pub git_dir: String,
    /// Longest a pod's git clone and checkout may take.
    pub git_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub resync_interval_ms: u64,
    pub probe_interval_ms: u64,
    pub probe_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pods {
    pub min_cpu: u32,
    pub max_cpu: u32,
    pub min_mem: u32,
    pub max_mem: u32,
    pub max_gpus: u32,
    pub max_value_len: usize,
    pub max_env_vars: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Images {
    pub enforce: bool,
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    pub log_format: String,
    pub log_filter: String,
    pub otlp_endpoint: String,
}

impl Config {
    /// Defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(file, &vars)
    }

    /// As [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(file: Option<&Path>, vars: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut table = parse(DEFAULT_TOML, "defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
            merge(&mut table, parse(&text, &path.display().to_string())?);
        }
        env::apply(&mut table, vars)?;
        Self::from_table(table)
    }

    /// Parses a complete TOML document laid over the defaults (no environment).
    pub fn from_toml_over_defaults(text: &str) -> Result<Self, ConfigError> {
        let mut table = parse(DEFAULT_TOML, "defaults")?;
        merge(&mut table, parse(text, "text")?);
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        let cfg: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.spawner.shards == 0 || self.spawner.shards > 4096 {
            problems.push("spawner.shards must be between 1 and 4096".to_string());
        }
        if self.amqp.max_kicks_per_message == 0 {
            problems.push("amqp.max_kicks_per_message must be at least 1".to_string());
        }
        if self.amqp.kick_interval_ms > MAX_KICK_INTERVAL_MS {
            problems.push(format!("amqp.kick_interval_ms must be at most {MAX_KICK_INTERVAL_MS}"));
        }
        if self.amqp.max_events_per_message == 0 {
            problems.push("amqp.max_events_per_message must be at least 1".to_string());
        }
        if self.amqp.max_observations_per_message == 0 {
            problems.push("amqp.max_observations_per_message must be at least 1".to_string());
        }
        if self.spawner.max_attempts == 0 {
            problems.push("spawner.max_attempts must be at least 1".to_string());
        }
        if self.spawner.lease_ttl_ms <= self.spawner.membership_interval_ms {
            problems.push("spawner.lease_ttl_ms must exceed spawner.membership_interval_ms".to_string());
        }
        if self.auth.jwt_secret.len() < 16 {
            problems.push("auth.jwt_secret must be at least 16 bytes".to_string());
        }
        if !self.secrets_key_is_derived()
            && let Err(e) = SecretsKey::parse(&self.secrets.key)
        {
            problems.push(format!("secrets.key {e}"));
        }
        if !matches!(self.telemetry.log_format.as_str(), "text" | "json") {
            problems.push("telemetry.log_format must be 'text' or 'json'".to_string());
        }
        if self.http.addr.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!("http.addr '{}' is not a socket address like 127.0.0.1:8080", self.http.addr));
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems.join("; "))) }
    }

    /// The key named secrets are sealed with: `secrets.key`, or, when that is empty, one
    /// derived from `auth.jwt_secret` (HKDF-SHA256, fixed context), so every service sharing
    /// the configuration gets the same key without further setup.
    pub fn secrets_key(&self) -> Result<SecretsKey, ConfigError> {
        if self.secrets_key_is_derived() {
            return Ok(SecretsKey::derive(self.auth.jwt_secret.as_bytes()));
        }
        SecretsKey::parse(&self.secrets.key).map_err(|e| ConfigError::Invalid(format!("secrets.key {e}")))
    }

    /// Whether [`Config::secrets_key`] is derived from the token key (no `secrets.key`).
    pub fn secrets_key_is_derived(&self) -> bool {
        self.secrets.key.trim().is_empty()
    }

    /// What services that seal or open secrets log once at startup when no dedicated key is
    /// set (the key itself is never part of it).
    pub fn secrets_key_warning(&self) -> Option<&'static str> {
        self.secrets_key_is_derived().then_some(
            "secrets.key (CORRAL_SECRETS_KEY) is not set: named secrets are encrypted with a key derived from \
             auth.jwt_secret, so changing that makes them unreadable; set a dedicated 32-byte key",
        )
    }

    /// Tenant administrators from `[auth] admin_users`.
    pub fn admin_users(&self) -> corral_model::access::AdminUsers {
        corral_model::access::AdminUsers::parse(&self.auth.admin_users)
    }

    /// `[http] public_url` without its trailing slash, when set.
    pub fn public_url(&self) -> Option<&str> {
        Some(self.http.public_url.trim().trim_end_matches('/')).filter(|u| !u.is_empty())
    }

    /// Pod validation limits derived from `[pods]`.
    pub fn limits(&self) -> corral_model::Limits {
        corral_model::Limits {
            min_cpu: self.pods.min_cpu,
            max_cpu: self.pods.max_cpu,
            min_mem: self.pods.min_mem,
            max_mem: self.pods.max_mem,
            max_gpus: self.pods.max_gpus,
            max_value_len: self.pods.max_value_len,
            max_env_vars: self.pods.max_env_vars,
        }
    }

    /// State-machine timing derived from `[spawner]`.
    pub fn machine_settings(&self) -> corral_model::machine::Settings {
        corral_model::machine::Settings {
            stall_timeout_ms: self.spawner.stall_timeout_ms,
            max_attempts: self.spawner.max_attempts,
            backoff_base_ms: self.spawner.backoff_base_ms,
            backoff_max_ms: self.spawner.backoff_max_ms,
        }
    }
}

fn parse(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Parse { origin: origin.to_string(), detail: e.message().to_string() })
}

/// Deep merge: tables merge per key, everything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
