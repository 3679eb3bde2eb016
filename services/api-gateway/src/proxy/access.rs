//! Who may reach a pod through the proxy: the token, wherever it came from, and the pod it
//! resolves to.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use corral_model::{Endpoint, Networking, PodKey, PodStatus};

use super::rules::{Decision, user_allowed};
use crate::AppState;
use crate::auth::{AuthError, Caller, token_from_headers};
use crate::error::ApiError;

/// The cookie the proxy reads the token from (and sets after a `?token=`).
pub(super) const COOKIE: &str = "corral-token";

/// A token and where it was found.
#[derive(Debug, Clone)]
pub(super) struct Credentials {
    pub(super) token: String,
    pub(super) from_header: bool,
    pub(super) from_query: bool,
}

/// The token of a request: headers first, then the cookie, then `?token=`.
pub(super) fn credentials(req: &Request) -> Option<Credentials> {
    if let Some(t) = token_from_headers(req.headers()) {
        return Some(Credentials { token: t.to_string(), from_header: true, from_query: false });
    }
    if let Some(t) = cookie_token(req.headers()) {
        return Some(Credentials { token: t, from_header: false, from_query: false });
    }
    query_token(req.uri()).map(|t| Credentials { token: t, from_header: false, from_query: true })
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, value)| *name == "token" && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// The caller named by a valid token; 401 without one.
pub(super) fn authenticate(app: &AppState, creds: Option<&Credentials>) -> Result<Caller, ApiError> {
    let creds =
        creds.ok_or_else(|| ApiError::unauthorized(format!("{} (or in the '{COOKIE}' cookie)", AuthError::Missing)))?;
    crate::auth::authenticate_cached(app.config(), app.tokens(), &creds.token)
        .map_err(|e| ApiError::unauthorized(e.to_string()))
}

/// Where a request for a pod goes, and the pod's settings that apply on the way.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) endpoint: Endpoint,
    /// The pool the pod is a member of, if any (for activity).
    pub(super) pool: Option<String>,
    /// The default networking entry (CORS settings).
    pub(super) networking: Networking,
}

/// The pod `pod_id` of the caller's tenant, if the caller may use it (see
/// [`super::rules::user_allowed`]) and it is running. A pod the caller may not know about is
/// 404, exactly as a missing one. Tenant admins get no special access here: a pod's traffic
/// is its users' business.
pub(super) async fn resolve(st: &AppState, caller: &Caller, pod_id: &str) -> Result<Target, ApiError> {
    let rec = st
        .store()
        .get_pod(&PodKey::new(&caller.tenant, pod_id))
        .await?
        .filter(|r| !r.desired.value.deleted)
        .ok_or_else(|| ApiError::pod_not_found(pod_id))?;
    let meta = crate::service::access::load_meta(st, &rec).await?;
    let level = meta.value.permissions.level(&rec.desired.value.owner, &caller.user);
    let networking = rec.desired.value.spec.networking.get("default").cloned().unwrap_or_default();
    match user_allowed(&networking, &caller.user, level) {
        Decision::Allow => {}
        Decision::Hide => return Err(ApiError::pod_not_found(pod_id)),
        Decision::Deny(why) => return Err(ApiError::new(StatusCode::FORBIDDEN, why)),
    }
    let (desired, observed) = (rec.desired.value, rec.observed.value);
    let endpoint = match (observed.status, observed.endpoint) {
        (PodStatus::Available, Some(endpoint)) => endpoint,
        (status, _) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("pod '{pod_id}' is not serving (status {}); try again once it is AVAILABLE", status.as_str()),
            ));
        }
    };
    let pool =
        desired.spec.environment_variables.get(corral_model::pool::POOL_LABEL_ENV).filter(|p| !p.is_empty()).cloned();
    Ok(Target { endpoint, pool, networking })
}

/// For a preflight without credentials: the networking settings of the one pod named
/// `pod_id` that accepts cross-origin requests, if exactly one tenant has such a pod.
pub(super) async fn preflight_networking(st: &AppState, pod_id: &str) -> Result<Option<Networking>, ApiError> {
    let mut found = Vec::new();
    for tenant in crate::service::cors_index::tenants(st, pod_id).await? {
        let Some(rec) = st.store().get_pod(&PodKey::new(&tenant, pod_id)).await? else { continue };
        if rec.desired.value.deleted {
            continue;
        }
        if let Some(net) = rec.desired.value.spec.networking.get("default").filter(|n| !n.cors_allow_origins.is_empty())
        {
            found.push(net.clone());
        }
    }
    Ok(if found.len() == 1 { found.pop() } else { None })
}

/// Removes the credentials the proxy consumed, so the pod never sees the caller's token.
pub(super) fn strip_credentials(req: &mut Request, creds: &Credentials) {
    let headers = req.headers_mut();
    headers.remove("x-tapis-token");
    if creds.from_header
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().ends_with(creds.token.as_str()))
    {
        headers.remove(header::AUTHORIZATION);
    }
    strip_cookie(headers);
    if creds.from_query {
        strip_query_token(req);
    }
}

fn strip_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').is_none_or(|(name, _)| name != COOKIE))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, v);
    }
}

fn strip_query_token(req: &mut Request) {
    let uri = req.uri();
    let Some(query) = uri.query() else { return };
    let kept: Vec<&str> = query.split('&').filter(|p| p.split_once('=').is_none_or(|(n, _)| n != "token")).collect();
    let path = uri.path();
    let pq = if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) };
    if let Ok(next) = pq.parse::<Uri>() {
        *req.uri_mut() = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn tokens_come_from_header_cookie_or_query_in_that_order() {
        let c = credentials(&request("/x?token=q", &[("cookie", "a=1; corral-token=c"), ("x-tapis-token", "h")]));
        assert_eq!(c.map(|c| (c.token, c.from_header)), Some(("h".into(), true)));
        let c = credentials(&request("/x?token=q", &[("cookie", "a=1; corral-token=c")]));
        assert_eq!(c.map(|c| (c.token, c.from_query)), Some(("c".into(), false)));
        let c = credentials(&request("/x?a=1&token=q", &[]));
        assert_eq!(c.map(|c| (c.token, c.from_query)), Some(("q".into(), true)));
        assert!(credentials(&request("/x?token=", &[("cookie", "corral-token=")])).is_none());
    }

    #[test]
    fn consumed_credentials_are_not_forwarded() {
        let mut req = request("/user/p/x?a=1&token=q&b=2", &[("cookie", "a=1; corral-token=c; b=2")]);
        let creds = Credentials { token: "q".into(), from_header: false, from_query: true };
        strip_credentials(&mut req, &creds);
        assert_eq!(req.uri().to_string(), "/user/p/x?a=1&b=2");
        assert_eq!(req.headers().get(header::COOKIE).map(|v| v.to_str().expect("ascii")), Some("a=1; b=2"));

        let mut req = request("/x", &[("authorization", "Bearer t"), ("cookie", "corral-token=c")]);
        strip_credentials(&mut req, &Credentials { token: "t".into(), from_header: true, from_query: false });
        assert!(req.headers().get(header::AUTHORIZATION).is_none());
        assert!(req.headers().get(header::COOKIE).is_none());
    }
}
