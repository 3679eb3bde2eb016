//! One readiness check: a TCP connect, or an HTTP answer below 500.

use std::time::Duration;

use corral_model::Endpoint;
use corral_protocol::ProbeKind;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest status line read; anything longer is not HTTP.
const MAX_STATUS_LINE: usize = 1024;

/// Why a readiness check failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connection failed during the request: {0}")]
    Io(std::io::Error),
    #[error("answer is not an http status line")]
    NotHttp,
    #[error("http status {0} is not below 500")]
    Status(u16),
}

/// Checks `endpoint` once, within `timeout`.
pub(crate) async fn check(endpoint: &Endpoint, kind: ProbeKind, timeout: Duration) -> Result<(), ProbeError> {
    tokio::time::timeout(timeout, check_unbounded(endpoint, kind)).await.map_err(|_| ProbeError::Timeout(timeout))?
}

async fn check_unbounded(endpoint: &Endpoint, kind: ProbeKind) -> Result<(), ProbeError> {
    let mut stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await.map_err(ProbeError::Connect)?;
    if kind == ProbeKind::Tcp {
        return Ok(());
    }
    let request = format!("GET / HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n", host_header(endpoint));
    stream.write_all(request.as_bytes()).await.map_err(ProbeError::Io)?;
    let line = read_status_line(&mut stream).await?;
    match status_code(&line) {
        Some(code) if code < 500 => Ok(()),
        Some(code) => Err(ProbeError::Status(code)),
        None => Err(ProbeError::NotHttp),
    }
}

fn host_header(endpoint: &Endpoint) -> String {
    if endpoint.host.contains(':') {
        format!("[{}]:{}", endpoint.host, endpoint.port)
    } else {
        format!("{}:{}", endpoint.host, endpoint.port)
    }
}

/// Reads up to the first line break (or end of stream), at most [`MAX_STATUS_LINE`] bytes.
async fn read_status_line(stream: &mut TcpStream) -> Result<Vec<u8>, ProbeError> {
    let mut line = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    loop {
        let n = stream.read(&mut chunk).await.map_err(ProbeError::Io)?;
        line.extend_from_slice(&chunk[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            return Ok(line);
        }
        if n == 0 {
            return Ok(line);
        }
        if line.len() > MAX_STATUS_LINE {
            return Err(ProbeError::NotHttp);
        }
    }
}

/// The code of a status line like `HTTP/1.1 200 OK`.
fn status_code(line: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let cases: [(&[u8], Option<u16>); 7] = [
            (b"HTTP/1.1 200 OK\r", Some(200)),
            (b"HTTP/1.0 404 Not Found", Some(404)),
            (b"HTTP/1.1 503", Some(503)),
            (b"SSH-2.0-OpenSSH_9.2", None),
            (b"HTTP/1.1 20 OK", None),
            (b"", None),
            (b"\xff\xfe", None),
        ];
        for (line, want) in cases {
            assert_eq!(status_code(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_header(&Endpoint { host: "::1".into(), port: 80 }), "[::1]:80");
        assert_eq!(host_header(&Endpoint { host: "127.0.0.1".into(), port: 8 }), "127.0.0.1:8");
    }

    #[tokio::test]
    async fn closed_port_fails_to_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let err = check(&Endpoint { host: "127.0.0.1".into(), port }, ProbeKind::Tcp, Duration::from_secs(2))
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, ProbeError::Connect(_)), "{err}");
    }

    #[tokio::test]
    async fn silent_http_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // Accepted by the kernel backlog but never answered.
        let err = check(&Endpoint { host: "127.0.0.1".into(), port }, ProbeKind::Http, Duration::from_millis(100))
            .await
            .expect_err("no answer");
        assert!(matches!(err, ProbeError::Timeout(_)), "{err}");
        drop(listener);
    }
}
