//! Requests published by other systems to `corral.requests`, and the replies sent to their
//! `reply_to` queue with the same `correlation_id`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalOp {
    Spawn,
    Get,
    Start,
    Stop,
    Restart,
    Delete,
}

/// One request. `pod` is the Tapis `NewPod` body for `spawn`; the other operations name
/// the pod by `pod_id`. The caller's token travels in the `x-tapis-token` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalRequest {
    pub op: ExternalOp,
    #[serde(default)]
    pub pod_id: Option<String>,
    #[serde(default)]
    pub pod: Option<serde_json::Value>,
}

/// The structured error of a failed request: the HTTP status the same call would have had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyError {
    pub status: u16,
    pub message: String,
    #[serde(default)]
    pub problems: Vec<corral_model::FieldError>,
}

/// Reply body: the pod record (Tapis shape) on success, or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalReply {
    pub ok: bool,
    #[serde(default)]
    pub pod: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<ReplyError>,
}
