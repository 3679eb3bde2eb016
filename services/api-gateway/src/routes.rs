//! HTTP routes: thin adapters from axum extractors to the service functions.

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::auth::Caller;
use crate::envelope::{
    JsonBody, MAX_BODY_BYTES, Outcome, ensure_envelope, envelope_response, method_not_allowed_fallback,
    not_found_fallback,
};
use crate::error::ApiError;
use crate::input::{NewPod, UpdatePod};
use crate::service::perms::SetPermission;
use crate::service::{self, Ctx};
use corral_model::images::NewImage;
use corral_model::template::{NewTemplate, NewTemplateTag, NewTemplateTagFromPod, UpdateTemplate};

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let traceparent = parts
            .headers
            .get(corral_protocol::topology::HEADER_TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Ctx { caller, traceparent })
    }
}

/// The gateway's HTTP surface (Tapis Pods v3 paths), every response in the envelope, and
/// the pod proxy in front of it (outside the envelope: pods answer as they like).
pub fn router(state: AppState) -> Router {
    let proxy = crate::proxy::Proxy::new(state.clone());
    let api = Router::new()
        .route("/v3/pods", get(list_pods).post(create_pod))
        .route("/v3/pods/healthcheck", get(healthcheck))
        .route("/healthz", get(healthcheck))
        .route("/v3/pods/{pod_id}", get(get_pod).put(update_pod).delete(delete_pod))
        .route("/v3/pods/{pod_id}/start", get(start_pod))
        .route("/v3/pods/{pod_id}/stop", get(stop_pod))
        .route("/v3/pods/{pod_id}/restart", get(restart_pod))
        .route("/v3/pods/{pod_id}/logs", get(pod_logs))
        .route("/v3/pods/{pod_id}/credentials", get(pod_credentials))
        .route("/v3/pods/{pod_id}/permissions", get(get_pod_permissions).post(set_pod_permission))
        .route("/v3/pods/{pod_id}/permissions/{user}", delete(delete_pod_permission))
        .route("/v3/pods/{pod_id}/derived", get(pod_derived))
        .route("/v3/pods/{pod_id}/save_pod_as_template_tag", post(save_pod_as_template_tag))
        .route("/v3/pods/templates", get(list_templates).post(add_template))
        .route("/v3/pods/templates/tags", get(list_templates_and_tags))
        .route("/v3/pods/templates/{template_id}", get(get_template).put(update_template).delete(delete_template))
        .route("/v3/pods/templates/{template_id}/tags", get(list_template_tags).post(add_template_tag))
        .route("/v3/pods/templates/{template_id}/tags/{tag_id}", get(get_template_tag))
        .route(
            "/v3/pods/templates/{template_id}/permissions",
            get(get_template_permissions).post(set_template_permission),
        )
        .route("/v3/pods/templates/{template_id}/permissions/{user}", delete(delete_template_permission))
        .route("/v3/pods/images", get(list_images).post(add_image))
        .route("/v3/pods/images/bulk", post(add_images))
        .route("/v3/pods/images/{*image}", get(get_image).delete(delete_image))
        .merge(crate::binder::routes())
        .merge(crate::secrets::routes())
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .layer(map_response(ensure_envelope))
        .merge(crate::sesstpl::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    // The proxy wraps the whole API (not each route), so it sees every request first,
    // whatever its path or method.
    Router::new()
        .fallback_service(api)
        .layer(from_fn_with_state(proxy, crate::proxy::intercept))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
}

/// One span per request; the auth extractor fills in tenant and user.
fn request_span(req: &Request) -> tracing::Span {
    tracing::info_span!(
        "http",
        method = %req.method(),
        path = %req.uri().path(),
        tenant = tracing::field::Empty,
        user = tracing::field::Empty,
    )
}

type Reply = Result<Outcome, ApiError>;

async fn list_pods(State(st): State<AppState>, ctx: Ctx) -> Reply {
    service::list_pods(&st, &ctx).await
}

async fn create_pod(State(st): State<AppState>, ctx: Ctx, JsonBody(new): JsonBody<NewPod>) -> Reply {
    service::create_pod(&st, &ctx, new).await
}

async fn get_pod(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::get_pod(&st, &ctx, &pod_id).await
}

async fn update_pod(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(pod_id): Path<String>,
    JsonBody(patch): JsonBody<UpdatePod>,
) -> Reply {
    service::update_pod(&st, &ctx, &pod_id, patch).await
}

async fn delete_pod(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::delete_pod(&st, &ctx, &pod_id).await
}

async fn start_pod(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::start_pod(&st, &ctx, &pod_id).await
}

async fn stop_pod(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::stop_pod(&st, &ctx, &pod_id).await
}

#[derive(Debug, Deserialize)]
struct RestartQuery {
    // Python clients send booleans as "True"/"False", so parse leniently.
    grab_latest_template_tag: Option<String>,
}

async fn restart_pod(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(pod_id): Path<String>,
    Query(q): Query<RestartQuery>,
) -> Reply {
    let grab = truthy(q.grab_latest_template_tag.as_deref());
    service::restart_pod(&st, &ctx, &pod_id, grab).await
}

async fn pod_logs(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::pod_logs(&st, &ctx, &pod_id).await
}

async fn pod_credentials(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::creds::get_credentials(&st, &ctx, &pod_id).await
}

async fn get_pod_permissions(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::perms::get_pod_permissions(&st, &ctx, &pod_id).await
}

async fn set_pod_permission(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(pod_id): Path<String>,
    JsonBody(body): JsonBody<SetPermission>,
) -> Reply {
    service::perms::set_pod_permission(&st, &ctx, &pod_id, body).await
}

async fn delete_pod_permission(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((pod_id, user)): Path<(String, String)>,
) -> Reply {
    service::perms::delete_pod_permission(&st, &ctx, &pod_id, &user).await
}

async fn list_images(State(st): State<AppState>, ctx: Ctx) -> Reply {
    service::images::list_images(&st, &ctx).await
}

async fn add_image(State(st): State<AppState>, ctx: Ctx, JsonBody(new): JsonBody<NewImage>) -> Reply {
    service::images::add_image(&st, &ctx, new).await
}

#[derive(Debug, Deserialize)]
struct BulkQuery {
    skip_duplicates: Option<String>,
}

async fn add_images(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(q): Query<BulkQuery>,
    JsonBody(list): JsonBody<Vec<NewImage>>,
) -> Reply {
    service::images::add_images(&st, &ctx, list, truthy(q.skip_duplicates.as_deref())).await
}

async fn get_image(State(st): State<AppState>, ctx: Ctx, Path(image): Path<String>) -> Reply {
    service::images::get_image(&st, &ctx, &image).await
}

async fn delete_image(State(st): State<AppState>, ctx: Ctx, Path(image): Path<String>) -> Reply {
    service::images::delete_image(&st, &ctx, &image).await
}

async fn pod_derived(State(st): State<AppState>, ctx: Ctx, Path(pod_id): Path<String>) -> Reply {
    service::derive::get_derived(&st, &ctx, &pod_id).await
}

async fn save_pod_as_template_tag(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(pod_id): Path<String>,
    JsonBody(body): JsonBody<NewTemplateTagFromPod>,
) -> Reply {
    service::derive::save_as_tag(&st, &ctx, &pod_id, body).await
}

async fn list_templates(State(st): State<AppState>, ctx: Ctx) -> Reply {
    service::templates::list_templates(&st, &ctx).await
}

async fn add_template(State(st): State<AppState>, ctx: Ctx, JsonBody(new): JsonBody<NewTemplate>) -> Reply {
    service::templates::add_template(&st, &ctx, new).await
}

#[derive(Debug, Deserialize)]
struct FullQuery {
    full: Option<String>,
}

impl FullQuery {
    /// `full` defaults to true, as in Tapis.
    fn full(&self) -> bool {
        self.full.as_deref().is_none_or(|v| truthy(Some(v)))
    }
}

async fn list_templates_and_tags(State(st): State<AppState>, ctx: Ctx, Query(q): Query<FullQuery>) -> Reply {
    service::templates::list_templates_and_tags(&st, &ctx, q.full()).await
}

async fn get_template(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    service::templates::get_template(&st, &ctx, &id).await
}

async fn update_template(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UpdateTemplate>,
) -> Reply {
    service::templates::update_template(&st, &ctx, &id, patch).await
}

async fn delete_template(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    service::templates::delete_template(&st, &ctx, &id).await
}

async fn list_template_tags(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<FullQuery>,
) -> Reply {
    service::templates::list_tags(&st, &ctx, &id, q.full()).await
}

async fn add_template_tag(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<NewTemplateTag>,
) -> Reply {
    service::templates::add_tag(&st, &ctx, &id, new).await
}

async fn get_template_tag(State(st): State<AppState>, ctx: Ctx, Path((id, tag)): Path<(String, String)>) -> Reply {
    service::templates::get_tag(&st, &ctx, &id, &tag).await
}

async fn get_template_permissions(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    service::templates::get_permissions(&st, &ctx, &id).await
}

async fn set_template_permission(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SetPermission>,
) -> Reply {
    service::templates::set_permission(&st, &ctx, &id, body).await
}

async fn delete_template_permission(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((id, user)): Path<(String, String)>,
) -> Reply {
    service::templates::delete_permission(&st, &ctx, &id, &user).await
}

/// Python clients send booleans as "True"/"False".
fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// No token needed: load balancers and container health checks call it.
async fn healthcheck(State(st): State<AppState>) -> Response {
    let (healthy, details) = service::health(&st).await;
    let empty = serde_json::json!({});
    if healthy {
        envelope_response(StatusCode::OK, details, true, "healthy", empty)
    } else {
        envelope_response(StatusCode::SERVICE_UNAVAILABLE, details, false, "unhealthy: store or bus unreachable", empty)
    }
}
