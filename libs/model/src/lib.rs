//! Corral's domain: pods, their specs and validation, shard placement and the pod state
//! machine. Everything here is pure: no I/O, no clocks (time is passed in as `now`).
//!
//! # Layout
//! - [`spec`]: the user-settable pod definition (Tapis `NewPod`), defaults and validation.
//! - [`record`]: what the store keeps: desired state (written by the gateway) and observed
//!   state (written only by the pod's actor), plus action-log entries.
//! - [`machine`]: the pod state machine, `step(state, event, now) -> (state, actions)`.
//! - [`shard`]: which shard a pod lives in and which spawner owns which shard.
//! - [`backoff`]: retry delays.
//! - [`access`]: object permissions and tenant admins.
//! - [`images`]: the images allowlist.
//! - [`secrets`]: per-pod credentials and the placeholders that reference them.
//! - [`session`]: the pod's `session` extension: batch runs, bootstrap script, git source.

pub mod access;
pub mod backoff;
pub mod images;
pub mod machine;
pub mod pool;
pub mod record;
pub mod secrets;
pub mod session;
pub mod sesstpl;
pub mod shard;
pub mod spec;
pub mod template;
pub mod user_secret;

pub use record::{ActionLogEntry, Desired, Endpoint, Observed, PodKey, PodStatus, StatusContainer, StatusRequested};
pub use spec::{FieldError, Limits, Networking, PodSpec, Protocol, Resources};
pub use template::{Chain, Derived, LayerSource, PodLayer, ResolveError, Template, TemplateRef, TemplateTag};

/// Milliseconds since the Unix epoch. All timestamps in records and messages use it.
pub type Millis = i64;
