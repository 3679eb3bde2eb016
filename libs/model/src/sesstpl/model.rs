//! The normalised session template. `Serialize` gives the canonical snake_case form, the one
//! stored and returned; `Deserialize` accepts everything [`parse`](super::parse()) accepts.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::git::{CredentialRef, repository_name};
use super::names::WORK_DIR;
use super::node::Node;
use super::quantity::{Cpu, Mem};

/// The text format of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// YAML for `application/yaml`, `application/x-yaml`, `text/yaml` and `text/x-yaml`
    /// (parameters such as `; charset=utf-8` ignored), JSON for anything else.
    pub fn from_content_type(content_type: &str) -> Self {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Self::Yaml,
            _ => Self::Json,
        }
    }
}

/// The document kind. Input may say `taskTemplate` or `task_template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    TaskTemplate,
}

pub use crate::session::SessionType;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionTemplate {
    /// Free-form (`v1`, `"6"`), kept as written.
    pub api_version: String,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
    /// Copied to the session's tag on start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    pub session_type: SessionType,
    pub kernel: Kernel,
    /// Volume name → absolute mount path; `None` mounts at `/home/work/<name>`.
    pub mounts: BTreeMap<String, Option<String>>,
    pub resources: SessionResources,
    /// Seconds a batch session may run; only for batch sessions; absent means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_timeout: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kernel {
    pub image: String,
    pub environ: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Run::is_empty")]
    pub run: Run,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<Git>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Shell script run once before the startup command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// Shell command line the session runs (`sh -c`); required for batch sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_command: Option<String>,
}

impl Run {
    pub fn is_empty(&self) -> bool {
        self.bootstrap.is_none() && self.startup_command.is_none()
    }
}

/// A repository cloned before the startup command runs. `Debug` hides the credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Git {
    pub repository: String,
    /// Full commit id, lowercase; checked out after the clone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialRef>,
    /// Absolute path; `None` means `/home/work/<repository name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_dir: Option<String>,
}

impl Git {
    /// Where the clone goes: `destination_dir`, or `/home/work/<name>` with the repository's
    /// last path segment (without `.git`) as the name.
    pub fn destination(&self) -> Option<String> {
        match &self.destination_dir {
            Some(d) => Some(d.clone()),
            None => repository_name(&self.repository).map(|n| format!("{WORK_DIR}/{n}")),
        }
    }
}

/// Resource slots Corral can honour. Absent slots take the deployment's pod defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionResources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<Mem>,
    /// Whole GPU devices (Backend.AI `cuda.device`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
}

impl<'de> Deserialize<'de> for SessionTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = Node::deserialize(d)?;
        super::parse::from_node(&node).map_err(|errors| {
            let joined: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(format!("invalid session template: {}", joined.join("; ")))
        })
    }
}
