//! Backend.AI session templates (`kind: taskTemplate`) under `/api/session-templates`, stored
//! as Tapis templates so both surfaces share one core template model.
//!
//! - `POST /api/session-templates`: create (body YAML with `Content-Type: application/yaml`,
//!   `application/x-yaml`, `text/yaml` or `text/x-yaml`; JSON otherwise).
//! - `GET /api/session-templates`: the caller's readable templates.
//! - `GET|PUT|DELETE /api/session-templates/{id}`: read (READ), replace (USER, a new version),
//!   delete (ADMIN). Invisible templates are 404, as on the Tapis surface.
//! - `POST /api/session-templates/{id}/start` with `{pod_id?, overrides?}`: a pod from the
//!   template with the overrides applied (see [`corral_model::sesstpl::apply_overrides`]).
//!
//! Answers are plain JSON as elsewhere under `/api`, or the canonical YAML document(s) with
//! `Accept: application/yaml`. Errors come in the Tapis envelope; a 400 lists every problem
//! with its path in `metadata.problems`, and nothing is stored.
//!
//! # Storage: one core template model
//!
//! A session template `T` of tenant `t` is
//! - the Tapis template `T` (doc kind `pods_template`, name `t/T`): `template_id` =
//!   `metadata.name`, owner and permissions as for any Tapis template;
//! - a new version of its tag `metadata.tag` (or `latest`) per create or replace, whose
//!   `pod_definition` is `to_pod_layer(T).layer` (the table in [`corral_model::sesstpl`]);
//! - the normalised document in doc kind `session_template` (name `t/T`), with the tag
//!   version it wrote and the Tapis template's creation time. It carries what a pod layer
//!   cannot: `metadata.tag` and the exact spelling of resources (`session_type`,
//!   `batch_timeout`, `run.bootstrap` and `git` are in the layer's `session`).
//!
//! So `GET /v3/pods/templates/T` shows a session template, its tags show the layer, and a pod
//! made with `template: T` (or `T:tag`) gets its image, command, environment, mounts and
//! resources. The other way round, a Tapis template without a session document is read at
//! `GET /api/session-templates/T` through `from_pod_layer` on the newest version of its
//! `latest` tag (or of its newest tag); fields without a counterpart are listed in
//! `dropped`; a template whose definition has no image cannot be read this way (409).
//!
//! A session document is ignored when its Tapis template was deleted and re-created through
//! the Tapis surface (the recorded creation time differs). Tags added through the Tapis
//! surface after a session document was written are not reflected in the document; the
//! document names the tag version it describes (`tag_timestamp`) and start pins that version.
//!
//! # Start
//!
//! The pod's own layer is the difference the overrides make to the template's layer (a
//! removed environment variable or mount becomes a `null` entry, a removed resource the
//! deployment default), with `template` set to the pinned tag version, and goes through the
//! ordinary pod creation: the pod's stored `template` is that version, its definition the
//! merged result. The resolved document is stored in doc kind `session_pod` (`t/pod_id`)
//! with the template id and version. The pod's `session` carries the session type, batch
//! timeout, bootstrap script and git source (see docs/sessions.md); `metadata.tag` is not
//! applied, and `warnings` says so.
//! Removing the template's startup command by override is refused (a layer cannot unset it).

mod docs;
mod http;
mod start;
mod store;

use axum::Router;
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::{get, post};

use crate::AppState;

pub use docs::{SESSION_KIND, SESSION_POD_KIND, SessionDoc, SessionPod};

/// The session-template routes, to be merged into the gateway's router after its envelope
/// layer: YAML answers must pass through untouched; anything else still gets the envelope.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/session-templates", get(http::list).post(http::create))
        .route("/api/session-templates/{id}", get(http::get_one).put(http::replace).delete(http::delete))
        .route("/api/session-templates/{id}/start", post(http::start))
        .layer(map_response(keep_yaml))
}

async fn keep_yaml(resp: Response) -> Response {
    if http::is_yaml_response(&resp) { resp } else { crate::envelope::ensure_envelope(resp).await }
}
