//! What the store keeps for a pod: desired state (gateway), observed state (the pod's actor)
//! and action-log entries.

use serde::{Deserialize, Serialize};

use crate::{Millis, PodSpec};

/// A pod's identity: pods are scoped per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodKey {
    pub tenant: String,
    pub pod_id: String,
}

impl PodKey {
    pub fn new(tenant: impl Into<String>, pod_id: impl Into<String>) -> Self {
        Self { tenant: tenant.into(), pod_id: pod_id.into() }
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.pod_id)
    }
}

/// Desired lifecycle state, as in Tapis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum StatusRequested {
    #[default]
    On,
    Off,
    Restart,
}

/// Observed status; names and spellings follow Tapis (note the space in `SPAWNER SETUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum PodStatus {
    #[serde(rename = "REQUESTED")]
    Requested,
    #[serde(rename = "SPAWNER SETUP")]
    SpawnerSetup,
    #[serde(rename = "CREATING")]
    Creating,
    #[serde(rename = "AVAILABLE")]
    Available,
    #[serde(rename = "DELETING")]
    Deleting,
    #[default]
    #[serde(rename = "STOPPED")]
    Stopped,
    #[serde(rename = "COMPLETE")]
    Complete,
    #[serde(rename = "ERROR")]
    Error,
}

impl PodStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::SpawnerSetup => "SPAWNER SETUP",
            Self::Creating => "CREATING",
            Self::Available => "AVAILABLE",
            Self::Deleting => "DELETING",
            Self::Stopped => "STOPPED",
            Self::Complete => "COMPLETE",
            Self::Error => "ERROR",
        }
    }
}

impl std::fmt::Display for PodStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Desired state: written by the gateway only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    pub tenant: String,
    pub owner: String,
    pub spec: PodSpec,
    pub status_requested: StatusRequested,
    /// Bumped by every change the actor must act on (start, stop, restart, spec change).
    pub generation: u64,
    /// Set by DELETE: the actor tears down and then removes every record of the pod.
    pub deleted: bool,
    pub creation_ts: Millis,
    pub update_ts: Millis,
}

impl Desired {
    pub fn key(&self) -> PodKey {
        PodKey::new(&self.tenant, &self.spec.pod_id)
    }
}

/// Tapis `status_container`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StatusContainer {
    pub phase: String,
    pub start_time: Option<Millis>,
    pub message: String,
    pub exit_code: Option<i64>,
    pub restart_count: u32,
}

/// Where the default networking port answers on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// Observed state: written only by the pod's actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Observed {
    pub status: PodStatus,
    pub status_container: StatusContainer,
    /// The generation of desired state this observation has acted on.
    pub observed_generation: u64,
    /// Counts container instances ever created for this pod; names the next one.
    pub instance: u64,
    pub container_id: Option<String>,
    pub endpoint: Option<Endpoint>,
    pub start_instance_ts: Option<Millis>,
    pub time_to_stop_ts: Option<Millis>,
    /// Failed attempts for the current generation (crashes, stalls, spawn errors).
    pub attempts: u32,
    /// When the next spawn attempt may start (set while backing off after a failure).
    pub retry_at: Option<Millis>,
    /// Since when the pod is in its current status.
    pub since: Millis,
    pub update_ts: Millis,
    /// How the current generation's batch run ended (batch pods only; cleared by the next
    /// spawn). Records written before batch runs existed lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
}

/// Why a batch run ended. `Failed` is the run's own failure (non-zero exit, including a
/// failed bootstrap script); `Infrastructure` is Corral's or the host's (the container could
/// not be started, or vanished without an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    Succeeded,
    Failed,
    Timeout,
    Infrastructure,
}

impl TerminationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Infrastructure => "infrastructure",
        }
    }
}

impl std::fmt::Display for TerminationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a batch run ended: the reason, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Termination {
    pub reason: TerminationReason,
    pub message: String,
}

/// One action-log line: what happened, who caused it, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLogEntry {
    pub ts: Millis,
    pub actor: String,
    pub message: String,
}

impl ActionLogEntry {
    /// Tapis renders entries as `"yy/mm/dd HH:MM: message"`; we keep seconds and the actor.
    pub fn render(&self) -> String {
        let ts = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.ts) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let fmt = time::macros::format_description!("[year repr:last_two]/[month]/[day] [hour]:[minute]:[second]");
        let stamp = ts.format(&fmt).unwrap_or_default();
        format!("{stamp}: {} ({})", self.message, self.actor)
    }
}
