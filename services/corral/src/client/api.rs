//! A small client for the gateway's pod API: sends requests with the token and unwraps the
//! Tapis envelope into the result or a [`ClientError`].

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One validation problem the server listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach corral at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{message}")]
    Server { status: u16, message: String, problems: Vec<Problem> },
    #[error("unexpected answer from {url} (HTTP {status}): {detail}")]
    BadAnswer { url: String, status: u16, detail: String },
    #[error("{0}")]
    Input(String),
    #[error("pod '{pod}' is {status}: {message}")]
    PodFailed { pod: String, status: String, message: String },
    #[error("batch pod '{pod}' failed ({status}): {detail}")]
    RunFailed { pod: String, status: String, detail: String },
    #[error("pod '{pod}' did not become {goal} within {seconds}s (last status {status})")]
    Timeout { pod: String, goal: String, seconds: u64, status: String },
}

/// A successful answer: the envelope's `result` and `message`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub result: Value,
    pub message: String,
}

/// Where the server is and who is asking.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| ClientError::Input(format!("invalid server URL '{url}': {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Input(format!("invalid server URL '{url}': use http:// or https://")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Input(format!("cannot set up the HTTP client: {e}")))?;
        let token = token.filter(|t| !t.is_empty());
        Ok(Self { http, base: url.trim_end_matches('/').to_owned(), token })
    }

    pub async fn create(&self, body: &Value) -> Result<Reply, ClientError> {
        self.call(Method::POST, "/v3/pods", Some(body)).await
    }

    pub async fn list(&self) -> Result<Reply, ClientError> {
        self.call(Method::GET, "/v3/pods", None).await
    }

    pub async fn get(&self, pod_id: &str) -> Result<Reply, ClientError> {
        self.call(Method::GET, &format!("/v3/pods/{}", segment(pod_id)), None).await
    }

    pub async fn logs(&self, pod_id: &str) -> Result<Reply, ClientError> {
        self.call(Method::GET, &format!("/v3/pods/{}/logs", segment(pod_id)), None).await
    }

    /// `start`, `stop` or `restart`.
    pub async fn lifecycle(&self, pod_id: &str, action: &str) -> Result<Reply, ClientError> {
        self.call(Method::GET, &format!("/v3/pods/{}/{action}", segment(pod_id)), None).await
    }

    pub async fn delete(&self, pod_id: &str) -> Result<Reply, ClientError> {
        self.call(Method::DELETE, &format!("/v3/pods/{}", segment(pod_id)), None).await
    }

    /// A `/api` route answering JSON: its body on success (see [`plain_json`]).
    pub async fn api_json(&self, method: Method, path: &str, payload: Payload<'_>) -> Result<Value, ClientError> {
        let (url, status, text) = self.send(method, path, payload, false).await?;
        plain_json(&url, status, &text)
    }

    /// A `/api` route asked for YAML: the document text on success.
    pub async fn api_yaml(&self, method: Method, path: &str) -> Result<String, ClientError> {
        let (url, status, text) = self.send(method, path, Payload::None, true).await?;
        if (200..300).contains(&status) { Ok(text) } else { Err(error_of(&url, status, &text)) }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, ClientError> {
        let payload = body.map_or(Payload::None, Payload::Json);
        let (url, status, text) = self.send(method, path, payload, false).await?;
        unwrap_envelope(&url, status, &text)
    }

    /// Sends one request; answers with the full URL, the HTTP status and the body text.
    /// `yaml` asks for a YAML answer (`Accept: application/yaml`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
        yaml: bool,
    ) -> Result<(String, u16, String), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.header("X-Tapis-Token", token);
        }
        if yaml {
            req = req.header("Accept", YAML);
        }
        req = match payload {
            Payload::None => req,
            Payload::Json(b) => req.json(b),
            Payload::Text { content_type, text } => req.header("Content-Type", content_type).body(text),
        };
        let resp = req.send().await.map_err(|e| unreachable(&self.base, &e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| unreachable(&self.base, &e))?;
        Ok((url, status, text))
    }
}

/// A request body.
pub enum Payload<'a> {
    None,
    Json(&'a Value),
    /// A document as written, with its media type (`application/yaml`, `application/json`).
    Text {
        content_type: &'static str,
        text: String,
    },
}

/// The media type of YAML documents, sent and asked for.
pub const YAML: &str = "application/yaml";

fn unreachable(base: &str, e: &reqwest::Error) -> ClientError {
    let detail = if e.is_connect() {
        "connection refused".to_owned()
    } else if e.is_timeout() {
        "no answer in time".to_owned()
    } else {
        // The innermost cause says the most ("dns error", "connection reset", ...).
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        cause.to_string()
    };
    ClientError::Unreachable { url: base.to_owned(), detail }
}

/// The `result` of a success envelope, or the error it carries.
pub fn unwrap_envelope(url: &str, status: u16, text: &str) -> Result<Reply, ClientError> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        let snippet: String = text.chars().take(200).collect();
        return Err(ClientError::BadAnswer { url: url.to_owned(), status, detail: format!("not JSON: {snippet}") });
    };
    let message = v["message"].as_str().unwrap_or_default().to_owned();
    if (200..300).contains(&status) && v["status"] == "success" {
        return Ok(Reply { result: v["result"].clone(), message });
    }
    if v.get("status").is_none() {
        return Err(ClientError::BadAnswer { url: url.to_owned(), status, detail: "not a Corral API envelope".into() });
    }
    let problems = v["metadata"]["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| Problem {
                    field: p["field"].as_str().unwrap_or_default().to_owned(),
                    message: p["message"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let message = if message.is_empty() { format!("request failed with HTTP {status}") } else { message };
    Err(ClientError::Server { status, message, problems })
}

/// What the gateway answers for a path it has no route for.
pub const NO_SUCH_ROUTE: &str = "no such route";

/// A route's own 404 in the CLI's words (`no session template 'x'`). The 404 of a path the
/// server has no route for (an older server) is left as it is, so it is not mistaken for a
/// missing object.
pub fn not_found_as(what: impl Into<String>) -> impl FnOnce(ClientError) -> ClientError {
    let what = what.into();
    move |e| match e {
        ClientError::Server { status: 404, message, problems } if problems.is_empty() && message != NO_SUCH_ROUTE => {
            ClientError::Server { status: 404, message: what, problems }
        }
        other => other,
    }
}

/// The error a non-2xx answer carries.
fn error_of(url: &str, status: u16, text: &str) -> ClientError {
    match unwrap_envelope(url, status, text) {
        Err(e) => e,
        // Only 2xx answers unwrap; keep the type honest anyway.
        Ok(_) => ClientError::BadAnswer { url: url.to_owned(), status, detail: "an error without an error".into() },
    }
}

/// The body of a `/api` answer: plain JSON on success, the Tapis envelope on errors. A
/// success that arrives enveloped anyway is unwrapped, so routes may move to the envelope
/// without breaking the client.
pub fn plain_json(url: &str, status: u16, text: &str) -> Result<Value, ClientError> {
    if !(200..300).contains(&status) {
        return Err(error_of(url, status, text));
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        let snippet: String = text.chars().take(200).collect();
        return Err(ClientError::BadAnswer { url: url.to_owned(), status, detail: format!("not JSON: {snippet}") });
    };
    let enveloped = v["status"] == "success" && v.get("result").is_some() && v.get("version").is_some();
    Ok(if enveloped { v["result"].clone() } else { v })
}

/// Percent-encodes one path segment (pod ids are plain, but the input is the user's).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_envelopes_give_their_result() {
        let r = unwrap_envelope("u", 200, r#"{"result":{"pod_id":"a"},"status":"success","message":"ok"}"#)
            .expect("success");
        assert_eq!(r.result["pod_id"], "a");
        assert_eq!(r.message, "ok");
    }

    #[test]
    fn error_envelopes_give_message_and_problems() {
        let body = r#"{"result":null,"status":"error","message":"pod is invalid: 1 problem: pod_id: too short",
            "metadata":{"problems":[{"field":"pod_id","message":"too short"}]}}"#;
        match unwrap_envelope("u", 400, body) {
            Err(ClientError::Server { status, message, problems }) => {
                assert_eq!(status, 400);
                assert!(message.starts_with("pod is invalid"));
                assert_eq!(problems, vec![Problem { field: "pod_id".into(), message: "too short".into() }]);
            }
            other => panic!("expected a server error, got {other:?}"),
        }
    }

    #[test]
    fn other_answers_are_reported_as_unexpected() {
        assert!(matches!(unwrap_envelope("u", 502, "<html>bad gateway</html>"), Err(ClientError::BadAnswer { .. })));
        assert!(matches!(unwrap_envelope("u", 200, r#"{"hello":1}"#), Err(ClientError::BadAnswer { .. })));
    }

    #[test]
    fn api_answers_are_plain_json_with_enveloped_errors() {
        let plain = plain_json("u", 201, r#"{"id":"t1","owner":"alice"}"#).expect("plain success");
        assert_eq!(plain["id"], "t1");
        let wrapped = plain_json("u", 200, r#"{"result":[1],"status":"success","message":"ok","version":"1"}"#)
            .expect("enveloped success");
        assert_eq!(wrapped, serde_json::json!([1]));
        // A session template view has a `status`-free shape; a pod-like object keeps its own fields.
        let own = plain_json("u", 200, r#"{"status":"success","result":1}"#).expect("no version: plain");
        assert_eq!(own["result"], 1);
        let body = r#"{"result":null,"status":"error","message":"session template is invalid: 1 problem: kind: bad",
            "metadata":{"problems":[{"field":"kind","message":"bad"}]},"version":"1"}"#;
        match plain_json("u", 400, body) {
            Err(ClientError::Server { status: 400, problems, .. }) => assert_eq!(problems[0].field, "kind"),
            other => panic!("expected a server error, got {other:?}"),
        }
        assert!(matches!(plain_json("u", 200, "name: x"), Err(ClientError::BadAnswer { .. })));
        assert!(matches!(plain_json("u", 404, "nope"), Err(ClientError::BadAnswer { .. })));
    }

    #[test]
    fn not_found_names_the_object_unless_the_route_is_missing() {
        let plain = ClientError::Server { status: 404, message: "template 'x' not found".into(), problems: vec![] };
        assert_eq!(not_found_as("no session template 'x'")(plain).to_string(), "no session template 'x'");
        let route = ClientError::Server { status: 404, message: NO_SUCH_ROUTE.into(), problems: vec![] };
        assert_eq!(not_found_as("no secret 'x'")(route).to_string(), NO_SUCH_ROUTE);
        let other = ClientError::Server { status: 409, message: "conflict".into(), problems: vec![] };
        assert_eq!(not_found_as("no secret 'x'")(other).to_string(), "conflict");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("abc123"), "abc123");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn urls_must_be_http() {
        assert!(Api::new("http://127.0.0.1:8080/", None).is_ok());
        assert!(matches!(Api::new("ftp://x", None), Err(ClientError::Input(_))));
        assert!(matches!(Api::new("not a url", None), Err(ClientError::Input(_))));
    }
}
