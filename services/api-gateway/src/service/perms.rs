//! `GET|POST /pods/{id}/permissions` and `DELETE /pods/{id}/permissions/{user}`.

use corral_model::access::{Level, PermissionError, Permissions};
use serde::Deserialize;
use serde_json::json;

use super::access::{load_pod, put_meta};
use super::{Ctx, log_action};
use crate::AppState;
use crate::envelope::Outcome;
use crate::error::ApiError;

/// Compare-and-set attempts before giving up on permissions that keep changing.
const MAX_ATTEMPTS: usize = 8;

/// Tapis `SetPermission`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPermission {
    pub user: String,
    pub level: String,
}

impl SetPermission {
    /// The level, or a 400 naming the accepted ones.
    pub fn parsed_level(&self) -> Result<Level, ApiError> {
        Level::parse(&self.level).ok_or_else(|| {
            ApiError::invalid(
                "permission",
                vec![corral_model::FieldError::new("level", format!("'{}' is not READ, USER or ADMIN", self.level))],
            )
        })
    }
}

/// A refused permission change as a 400.
pub fn permission_error(e: PermissionError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// The permissions response body: `{"permissions": ["user:LEVEL", …]}`.
pub fn permissions_body(perms: &Permissions, owner: &str) -> serde_json::Value {
    json!({ "permissions": perms.render(owner) })
}

/// `GET /pods/{id}/permissions` (USER).
pub async fn get_pod_permissions(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let pod = load_pod(st, ctx, pod_id, Level::User).await?;
    let owner = &pod.rec.desired.value.owner;
    Ok(Outcome::success(permissions_body(&pod.meta.value.permissions, owner), "pod permissions retrieved"))
}

/// `POST /pods/{id}/permissions` (ADMIN).
pub async fn set_pod_permission(
    st: &AppState,
    ctx: &Ctx,
    pod_id: &str,
    body: SetPermission,
) -> Result<Outcome, ApiError> {
    let level = body.parsed_level()?;
    change(
        st,
        ctx,
        pod_id,
        |perms, owner| perms.set(owner, &body.user, level),
        format!("{level} granted to '{}'", body.user),
    )
    .await
}

/// `DELETE /pods/{id}/permissions/{user}` (ADMIN).
pub async fn delete_pod_permission(st: &AppState, ctx: &Ctx, pod_id: &str, user: &str) -> Result<Outcome, ApiError> {
    change(st, ctx, pod_id, |perms, owner| perms.remove(owner, user), format!("permission of '{user}' removed")).await
}

async fn change(
    st: &AppState,
    ctx: &Ctx,
    pod_id: &str,
    apply: impl Fn(&Permissions, &str) -> Result<Permissions, PermissionError>,
    what: String,
) -> Result<Outcome, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let pod = load_pod(st, ctx, pod_id, Level::Admin).await?;
        let d = &pod.rec.desired.value;
        let mut meta = pod.meta.value.clone();
        meta.permissions = apply(&meta.permissions, &d.owner).map_err(permission_error)?;
        match put_meta(st, &d.key(), &meta, pod.meta.version).await {
            Ok(_) => {
                log_action(st, &d.key(), &ctx.caller.user, format!("{what} by '{}'", ctx.caller.user)).await;
                let body = permissions_body(&meta.permissions, &d.owner);
                return Ok(Outcome::success(body, "pod permissions updated"));
            }
            Err(e) if e.status == axum::http::StatusCode::CONFLICT => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(format!("the permissions of pod '{pod_id}' are being changed concurrently; try again")))
}
