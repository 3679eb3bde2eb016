//! The pod proxy: HTTP and websocket traffic for a pod, forwarded to the port its default
//! networking entry publishes on the host (`Observed::endpoint`, never a container's bridge
//! address).
//!
//! A request is for a pod when its `Host` is `{pod_id}.{pods_domain}` (the pod's Tapis URL)
//! or its path starts with `/user/{pod_id}/` (a Binder `location`); the path is forwarded
//! unchanged either way, since Binder applications are started with that base path.
//! Everything else goes on to the API routes.
//!
//! # Access
//! A pod's users pass: USER or more on it (the owner is ADMIN; for a pool instance, whoever
//! claimed it), or, when its networking sets `tapis_auth`, whoever `tapis_auth_allowed_users`
//! names (user names, `*`, or `AUTHORIZED_READS|USERS|ADMINS`), who are then named to the pod
//! in `X-Tapis-Username` and the pod's `tapis_auth_response_headers`. A non-empty
//! `ip_allow_list` also restricts the peer address (403 outside it). The token comes
//! from `X-Tapis-Token`, `Authorization: Bearer`, the `corral-token` cookie or, once, a
//! `?token=` query parameter (answered with the cookie set, as Jupyter and Binder do). A
//! request without a valid token is 401; a pod that does not exist, belongs to someone else
//! or another tenant is 404 alike, so nothing is revealed. Credentials the proxy consumed
//! are not forwarded to the pod.
//!
//! # CORS
//! From the pod's `networking.default.cors_*` settings: the proxy answers preflights itself
//! and adds the allow headers to responses for allowed origins. Browsers send preflights
//! without credentials; pods are found by tenant, which only a token names, so for those the
//! gateway keeps a small index of pods with `cors_allow_origins` per pod id and answers when
//! exactly one tenant has such a pod (otherwise 401).
//!
//! # Activity
//! Traffic for a claimed pool instance is recorded as its last activity
//! ([`corral_store::Store::pool_touch`]), at most once per [`TOUCH_INTERVAL`] per instance
//! per gateway; the pool-manager culls instances idle longer than their template's
//! `cull-timeout`. Websocket tunnels count the bytes they carry, in both directions.

mod access;
mod activity;
mod cors;
mod forward;
mod rules;

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use activity::TOUCH_INTERVAL;

use crate::AppState;
use crate::error::ApiError;
use activity::{Activity, Toucher};

/// What the proxy middleware needs: the gateway's state and the activity limiter.
#[derive(Clone)]
pub struct Proxy {
    app: AppState,
    activity: Arc<Activity>,
}

impl Proxy {
    /// A proxy serving the pods of `app`'s store.
    pub fn new(app: AppState) -> Self {
        Self { app, activity: Arc::new(Activity::default()) }
    }
}

/// Middleware: forwards requests for a pod (see the module docs), passes the rest to `next`.
pub async fn intercept(State(proxy): State<Proxy>, req: Request, next: Next) -> Response {
    let Some(route) = route_of(&req, &proxy.app.config().http.pods_domain) else { return next.run(req).await };
    proxy.serve(route, req).await.unwrap_or_else(IntoResponse::into_response)
}

/// Which pod a request is for, and how it named it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    pod_id: String,
    by_host: bool,
}

fn route_of(req: &Request, pods_domain: &str) -> Option<Route> {
    if let Some(pod_id) = host_of(req).and_then(|h| pod_of_host(h, pods_domain)) {
        return Some(Route { pod_id, by_host: true });
    }
    let rest = req.uri().path().strip_prefix("/user/")?;
    let pod_id = rest.split('/').next().filter(|id| !id.is_empty())?;
    Some(Route { pod_id: pod_id.to_string(), by_host: false })
}

fn host_of(req: &Request) -> Option<&str> {
    req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host())
}

/// `{pod_id}.{pods_domain}` (any port, any case) to the pod id.
fn pod_of_host(host: &str, pods_domain: &str) -> Option<String> {
    let name = host.rsplit_once(':').map_or(
        host,
        |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }
        },
    );
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let domain = pods_domain.trim_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return None;
    }
    let label = name.strip_suffix(&domain)?.strip_suffix('.')?;
    (!label.is_empty() && !label.contains('.')).then(|| label.to_string())
}

impl Proxy {
    async fn serve(&self, route: Route, mut req: Request) -> Result<Response, ApiError> {
        let creds = access::credentials(&req);
        let origin = req.headers().get(header::ORIGIN).cloned();
        if creds.is_none()
            && cors::is_preflight(&req)
            && let Some(net) = access::preflight_networking(&self.app, &route.pod_id).await?
        {
            return Ok(cors::preflight(&net, origin.as_ref(), req.headers()));
        }
        let caller = access::authenticate(&self.app, creds.as_ref())?;
        let target = access::resolve(&self.app, &caller, &route.pod_id).await?;
        // Without the peer address (a server not started by `run`), a restricted pod stays closed.
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let list = &target.networking.ip_allow_list;
        if !list.is_empty() && !peer.is_some_and(|ip| rules::ip_allowed(list, ip)) {
            let who = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("your address ({who}) is not in the ip_allow_list of pod '{}'", route.pod_id),
            ));
        }
        if cors::is_preflight(&req) {
            return Ok(cors::preflight(&target.networking, origin.as_ref(), req.headers()));
        }
        if let Some(creds) = &creds {
            access::strip_credentials(&mut req, creds);
        }
        if target.networking.tapis_auth {
            add_identity_headers(&mut req, &target.networking, &caller.user);
        }
        let toucher = target.pool.as_ref().map(|pool| Toucher {
            activity: self.activity.clone(),
            app: self.app.clone(),
            pool: pool.clone(),
            member: route.pod_id.clone(),
        });
        if let Some(t) = &toucher {
            t.touch();
        }
        let mut resp = forward::forward(&target.endpoint, req, toucher).await?;
        if let Some(origin) = &origin {
            cors::decorate(&target.networking, origin, resp.headers_mut());
        }
        if let Some(creds) = creds.filter(|c| c.from_query) {
            let path = if route.by_host { "/".to_string() } else { format!("/user/{}/", route.pod_id) };
            let cookie = format!("{}={}; Path={path}; HttpOnly; SameSite=Lax", access::COOKIE, creds.token);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        Ok(resp)
    }
}

/// What a `tapis_auth` pod learns about its caller: `X-Tapis-Username`, plus the pod's
/// `tapis_auth_response_headers` (`<<tapisusername>>` in a value becomes the user name).
fn add_identity_headers(req: &mut Request, net: &corral_model::Networking, user: &str) {
    let headers = req.headers_mut();
    if let Ok(v) = HeaderValue::from_str(user) {
        headers.insert("x-tapis-username", v);
    }
    for (name, value) in &net.tapis_auth_response_headers {
        let value = value.replace("<<tapisusername>>", user);
        if let (Ok(n), Ok(v)) = (axum::http::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            headers.insert(n, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, path: &str) -> Request {
        Request::builder().uri(path).header(header::HOST, host).body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn pods_are_found_by_host_then_by_path() {
        let r = |h: &str, p: &str| route_of(&req(h, p), "pods.localhost");
        assert_eq!(r("abc.pods.localhost:8000", "/x"), Some(Route { pod_id: "abc".into(), by_host: true }));
        assert_eq!(r("ABC.Pods.Localhost", "/"), Some(Route { pod_id: "abc".into(), by_host: true }));
        assert_eq!(r("127.0.0.1:8000", "/user/i42/tree"), Some(Route { pod_id: "i42".into(), by_host: false }));
        assert_eq!(r("127.0.0.1:8000", "/user/i42"), Some(Route { pod_id: "i42".into(), by_host: false }));
        assert_eq!(r("a.b.pods.localhost", "/v3/pods"), None);
        assert_eq!(r("pods.localhost", "/v3/pods"), None);
        assert_eq!(r("127.0.0.1:8000", "/user/"), None);
        assert_eq!(r("127.0.0.1:8000", "/v3/pods/user/x"), None);
        assert_eq!(r("evilpods.localhost", "/"), None);
    }
}
