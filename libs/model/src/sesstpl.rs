//! Backend.AI-style session templates (`kind: taskTemplate`): the document model, its parsing
//! from YAML or JSON, start-time overrides, and the mapping onto the core pod model.
//!
//! Users bring Backend.AI documents as they are; Corral reads every documented spelling,
//! stores one normalised form, and fixes known flaws: unknown keys are errors (with their
//! path), every problem is reported at once, overrides merge maps per key instead of replacing
//! them, and git credentials are references to stored secrets, never the secrets themselves.
//!
//! # Schema
//!
//! Canonical key first, other accepted spellings after `|`. Two spellings of one field in the
//! same mapping are an error naming both paths.
//!
//! | Path | Value | Required | Notes |
//! |---|---|---|---|
//! | `api_version` \| `apiVersion` | string | yes | free-form (`v1`, `'6'`), ≤ 64 characters |
//! | `kind` | `taskTemplate` \| `task_template` | yes | stored as `task_template` |
//! | `metadata.name` | string | yes | ≤ 128 characters, one line |
//! | `metadata.tag` | string | no | ≤ 255 characters; becomes the session's tag |
//! | `spec.session_type` \| `spec.type` \| `spec.sessionType` | `interactive` \| `batch` | no | default `interactive` |
//! | `spec.kernel.image` | string | yes | no whitespace, at most one `:` |
//! | `spec.kernel.environ` | map name → string | no | names `[A-Za-z_][A-Za-z0-9_]*` |
//! | `spec.kernel.run.bootstrap` | string | no | script run once before the startup command |
//! | `spec.kernel.run.startup_command` \| `startup` \| `startupCommand` \| `stratup` | string | batch: yes | run with `sh -c` |
//! | `spec.kernel.git.repository` | string | if `git` | URL, `user@host:path` or local path; no embedded password or token |
//! | `spec.kernel.git.commit` | string | no | full commit id (40 or 64 hex), stored lowercase |
//! | `spec.kernel.git.branch` | string | no | git ref-name rules |
//! | `spec.kernel.git.credential` | string | no | **name** of a stored secret ([`CredentialRef`]) |
//! | `spec.kernel.git.destination_dir` \| `destinationDir` | path | no | default `/home/work/<repository name>` |
//! | `spec.mounts` | map volume → path \| null | no | null or `""`: `/home/work/<volume>`; relative paths are under `/home/work` |
//! | `spec.resources.cpu` | quantity | no | cores, see [`quantity`] |
//! | `spec.resources.mem` | quantity | no | bytes with binary units, see [`quantity`] |
//! | `spec.resources.gpus` \| `cuda.device` | whole number | no | GPU devices |
//! | `spec.batch_timeout` \| `batchTimeout` | whole seconds, 1 to one year | no | batch sessions only; absent: no limit |
//!
//! String fields refuse numbers and booleans (quote them in YAML: `branch: '19.10'`), since
//! YAML would already have altered them. Backend.AI's `architecture`, `scaling_group`,
//! `agent_list`, `cuda.shares`, the `inference`/`system` session types and cluster templates
//! are refused with a message saying so.
//!
//! # Overrides
//!
//! See [`apply_overrides`]: a partial document, scalars replace, `environ`, `mounts` and
//! `resources` merge per key, `git` and `run` per field, and `null` removes.
//!
//! # Mapping onto the core model
//!
//! [`to_pod_layer`] gives a [`PodLayer`](crate::PodLayer) plus what a layer cannot carry
//! ([`PodMapping`]); [`from_pod_layer`] reads a (resolved) Tapis layer as a session template.
//!
//! | Session template | Tapis `PodLayer` | Notes |
//! |---|---|---|
//! | `metadata.name` | (template id) | `from_pod_layer` takes it as an argument |
//! | `spec.kernel.image` | `image` | |
//! | `spec.kernel.environ.K` | `environment_variables.K` | layer `null` entries are dropped |
//! | `spec.kernel.run.startup_command` S | `command` = `["sh", "-c", S]` | back: `sh -c S` gives S; any other command (with `arguments`) is shell-quoted word by word |
//! | `spec.mounts.V` = P | `volume_mounts.P` = `{type: tapisvolume, source_id: V}` | P defaults to `/home/work/V`; other mount types are dropped |
//! | `spec.resources.cpu` | `resources.cpu_request` = `cpu_limit` (millicores) | back: the limit (or the request if alone) |
//! | `spec.resources.mem` | `resources.mem_request` = `mem_limit` (MiB) | back: the limit (or the request if alone) |
//! | `spec.resources.gpus` | `resources.gpus` | |
//! | `spec.session_type`, `spec.batch_timeout`, `run.bootstrap`, `git` | `session` ([`SessionRun`](crate::session::SessionRun)) | absent for a plain interactive template; `git.destination_dir` becomes `session.git.destination` (default filled in), the credential stays a secret *name* |
//! | `metadata.tag` | — | names the Tapis tag; also in [`PodMapping`] |
//! | `api_version`, `kind` | — | `from_pod_layer` gives `v1`, `task_template` |
//! | — | `description`, `template`, `networking`, `time_to_stop_*`, `compute_queue`, lone `arguments` | listed in [`FromPodLayer::dropped`] |
//!
//! # Layout
//! - [`model`]: the normalised types; [`quantity`]: CPU and memory grammars;
//!   [`git`]: credential references and repository rules; [`names`]: names and paths.
//! - `node`, `walk`, `schema`, `build`: the value tree, the walk that reports paths and
//!   aliases, the schema, and the whole-document checks. [`parse`](mod@parse): entry points.
//! - [`mapping`]: to and from the core pod model.

pub mod git;
pub mod mapping;
pub mod model;
pub mod names;
pub mod parse;
pub mod quantity;

mod build;
mod node;
mod schema;
mod walk;

pub use git::CredentialRef;
pub use mapping::{FromPodLayer, MOUNT_TYPE, PodMapping, from_pod_layer, to_pod_layer};
pub use model::{Format, Git, Kernel, Kind, Metadata, Run, SessionResources, SessionTemplate, SessionType, Spec};
pub use names::WORK_DIR;
pub use node::{DOCUMENT, MAX_DOCUMENT_BYTES};
pub use parse::{RenderError, apply_overrides, parse};
pub use quantity::{Cpu, Mem};
pub use schema::{MAX_BATCH_TIMEOUT, MAX_TEXT_BYTES};

#[cfg(test)]
mod tests;
