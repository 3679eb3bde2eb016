//! CORS for proxied pods, from the pod's `networking.default.cors_*` settings.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use corral_model::Networking;

/// An `OPTIONS` request a browser sends before a cross-origin one.
pub(super) fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn allows(net: &Networking, origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else { return false };
    net.cors_allow_origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// The `Access-Control-Allow-Origin` value: the origin itself unless any origin is allowed
/// without credentials (browsers refuse `*` with credentials).
fn allow_origin(net: &Networking, origin: &HeaderValue) -> HeaderValue {
    if net.cors_allow_origins.iter().any(|o| o == "*") && !net.cors_allow_credentials {
        HeaderValue::from_static("*")
    } else {
        origin.clone()
    }
}

/// The answer to a preflight: 204 with the allow headers for an allowed origin, 403
/// without them otherwise (the browser then refuses the real request).
pub(super) fn preflight(net: &Networking, origin: Option<&HeaderValue>, req: &HeaderMap) -> Response {
    let mut resp = Response::new(Body::empty());
    let Some(origin) = origin.filter(|o| allows(net, o)) else {
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    };
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin(net, origin));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    // An empty list allows what was asked, as a wildcard would.
    let methods = if net.cors_allow_methods.is_empty() {
        req.get(header::ACCESS_CONTROL_REQUEST_METHOD).cloned()
    } else {
        HeaderValue::from_str(&net.cors_allow_methods.join(", ")).ok()
    };
    if let Some(m) = methods {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m);
    }
    let headers = if net.cors_allow_headers.is_empty() {
        req.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned()
    } else {
        HeaderValue::from_str(&net.cors_allow_headers.join(", ")).ok()
    };
    if let Some(v) = headers {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if net.cors_allow_credentials {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(net.cors_max_age));
    resp
}

/// Adds the allow headers to a proxied response for an allowed origin, replacing whatever
/// the pod said: the pod's networking settings are the policy.
pub(super) fn decorate(net: &Networking, origin: &HeaderValue, headers: &mut HeaderMap) {
    if !allows(net, origin) {
        return;
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin(net, origin));
    if net.cors_allow_credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    } else {
        headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(origins: &[&str], credentials: bool) -> Networking {
        Networking {
            cors_allow_origins: origins.iter().map(|s| (*s).to_string()).collect(),
            cors_allow_methods: vec!["GET".into(), "POST".into()],
            cors_allow_credentials: credentials,
            cors_max_age: 60,
            ..Networking::default()
        }
    }

    #[test]
    fn preflights_follow_the_pod_settings() {
        let origin = HeaderValue::from_static("https://app.example");
        let mut req = HeaderMap::new();
        req.insert(header::ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("POST"));
        req.insert(header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("x-a"));

        let r = preflight(&net(&["https://app.example"], true), Some(&origin), &req);
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let h = r.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "x-a");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "60");

        let r = preflight(&net(&["*"], false), Some(&origin), &req);
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");

        let r = preflight(&net(&["https://other.example"], false), Some(&origin), &req);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(!r.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(preflight(&net(&[], false), Some(&origin), &req).status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn responses_get_allow_headers_only_for_allowed_origins() {
        let origin = HeaderValue::from_static("https://app.example");
        let mut h = HeaderMap::new();
        decorate(&net(&["https://app.example"], false), &origin, &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        let mut h = HeaderMap::new();
        decorate(&net(&[], false), &origin, &mut h);
        assert!(h.is_empty());
    }
}
