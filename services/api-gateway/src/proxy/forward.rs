//! Forwarding one request to a pod over HTTP/1, and tunnelling upgraded connections
//! (websockets) once the pod agrees to switch protocols.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::Response;
use corral_model::Endpoint;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::Instrument;

use super::activity::{Counted, TOUCH_INTERVAL, Toucher};
use crate::error::ApiError;

/// How long the pod may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers that describe one hop, never forwarded (RFC 9110 section 7.6.1); `Connection`
/// and `Upgrade` are kept on upgrade requests, where they are the point.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Sends `req` to the pod at `endpoint` and returns its answer. A `101 Switching
/// Protocols` answer to an upgrade request starts a tunnel between the client and the pod
/// that records activity through `toucher` while bytes flow.
pub(super) async fn forward(
    endpoint: &Endpoint,
    mut req: Request,
    toucher: Option<Toucher>,
) -> Result<Response, ApiError> {
    let upgrade = wants_upgrade(req.headers());
    let client_side = if upgrade { req.extensions_mut().remove::<OnUpgrade>() } else { None };
    prepare_request(&mut req, endpoint, upgrade);

    let addr = (endpoint.host.as_str(), endpoint.port);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| bad_gateway("it did not accept a connection in time"))?
        .map_err(|e| bad_gateway(&e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| bad_gateway(&e.to_string()))?;
    tokio::spawn(
        drive_connection(conn).instrument(tracing::info_span!("proxy_connection", pod = %endpoint_str(endpoint))),
    );

    let mut resp = sender.send_request(req).await.map_err(|e| bad_gateway(&e.to_string()))?;
    let switched = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switched && let Some(client_side) = client_side {
        let pod_side = hyper::upgrade::on(&mut resp);
        let span = tracing::info_span!("proxy_tunnel", pod = %endpoint_str(endpoint));
        tokio::spawn(tunnel(client_side, pod_side, toucher).instrument(span));
    }
    let (mut parts, body) = resp.into_parts();
    if !switched {
        strip_hop_by_hop(&mut parts.headers, false);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

fn endpoint_str(e: &Endpoint) -> String {
    format!("{}:{}", e.host, e.port)
}

fn bad_gateway(why: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, format!("the pod is not answering: {why}"))
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Origin-form target, HTTP/1.1, hop-by-hop headers dropped, a `Host` the pod can use,
/// and where the request came in.
fn prepare_request(req: &mut Request, endpoint: &Endpoint, upgrade: bool) {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    if let Ok(uri) = target.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    match headers.get(header::HOST).cloned() {
        Some(host) => {
            headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        None => {
            if let Ok(v) = HeaderValue::from_str(&endpoint_str(endpoint)) {
                headers.insert(header::HOST, v);
            }
        }
    }
    headers.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static("http"));
}

fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Headers the `Connection` header names are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && *n == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        if !(upgrade && *name == header::CONNECTION) {
            headers.remove(name);
        }
    }
    if !upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// Runs the client connection to the pod (with upgrades, so a tunnel can take it over).
async fn drive_connection(conn: hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Body>) {
    if let Err(e) = conn.with_upgrades().await {
        tracing::debug!(error = %e, "connection to the pod ended with an error");
    }
}

/// Copies bytes both ways between the client and the pod until either side closes,
/// recording activity once per [`TOUCH_INTERVAL`] in which bytes flowed.
async fn tunnel(client_side: OnUpgrade, pod_side: OnUpgrade, toucher: Option<Toucher>) {
    let (client, pod) = match tokio::try_join!(client_side, pod_side) {
        Ok(both) => both,
        Err(e) => {
            tracing::warn!(error = %e, "connection upgrade failed");
            return;
        }
    };
    let active = Arc::new(AtomicBool::new(false));
    let mut client = Counted::new(TokioIo::new(client), active.clone());
    let mut pod = TokioIo::new(pod);
    let copy = tokio::io::copy_bidirectional(&mut client, &mut pod);
    tokio::pin!(copy);
    let mut tick = tokio::time::interval(TOUCH_INTERVAL);
    loop {
        tokio::select! {
            done = &mut copy => {
                match done {
                    Ok((up, down)) => tracing::debug!(up, down, "tunnel closed"),
                    Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
                }
                break;
            }
            _ = tick.tick() => {
                if active.swap(false, Ordering::Relaxed) && let Some(t) = &toucher {
                    t.touch();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_but_upgrades_keep_theirs() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let mut plain = h.clone();
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.keys().collect::<Vec<_>>(), [header::ACCEPT]);

        let mut up = HeaderMap::new();
        up.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        up.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&up));
        strip_hop_by_hop(&mut up, true);
        assert!(up.contains_key(header::CONNECTION) && up.contains_key(header::UPGRADE));
        assert!(!wants_upgrade(&HeaderMap::new()));
    }
}
