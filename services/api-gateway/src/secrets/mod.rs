//! Named secrets under `/api/secrets`: values a user stores once and references by name,
//! e.g. from a git source's `credential` (`session.git.credential`). The spawner looks the
//! value up when it clones; nothing else ever reads it back.
//!
//! - `PUT /api/secrets/{name}` with `{"value": "...", "username": "..."?}`: create (201) or
//!   replace (200). The name follows the credential-reference grammar (letters, digits, `.`,
//!   `_`, `-`, starting with a letter or digit, at most 128 characters, not token-like).
//! - `GET /api/secrets`: the caller's secrets (name, username, timestamps).
//! - `GET /api/secrets/{name}`: one secret's metadata.
//! - `DELETE /api/secrets/{name}`.
//!
//! Secrets belong to the calling user in the caller's tenant: nobody else can list, read,
//! replace or delete them, and a pod's clone uses its *owner's* secret of that name. No
//! answer, error, log record or bus message contains a value: answers show metadata only,
//! errors describe a bad value without repeating it, and the body parser never echoes input.
//! Answers are plain JSON as elsewhere under `/api`; errors come in the Tapis envelope.
//!
//! Stored as store documents of kind [`corral_model::user_secret::USER_SECRET_KIND`], name
//! `{tenant}/{user}/{name}`, the value encrypted with the secrets key (`secrets.key`, or one
//! derived from `auth.jwt_secret`) and bound to that owner and name
//! ([`corral_model::user_secret::crypto`]). The gateway only ever seals; listing and reading
//! metadata need no key.

mod http;

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// The secrets routes, to be merged into the gateway's router before its envelope layer.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/secrets", get(http::list))
        .route("/api/secrets/{name}", get(http::get_one).put(http::put).delete(http::delete))
}
