//! The body of `corral pods create`: from a JSON file, or from flags.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::api::ClientError;

/// Pod fields given as flags.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpecFlags {
    pub id: Option<String>,
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub port: Option<u16>,
    pub env: Vec<(String, String)>,
    pub description: Option<String>,
    pub stopped: bool,
}

impl SpecFlags {
    /// The create body. Missing or invalid values are left for the server to report, so
    /// every problem is listed at once, in the same words as for any other client.
    pub fn to_body(&self) -> Value {
        let mut body = Map::new();
        if let Some(id) = &self.id {
            body.insert("pod_id".into(), json!(id));
        }
        if let Some(image) = &self.image {
            body.insert("image".into(), json!(image));
        }
        if !self.command.is_empty() {
            body.insert("command".into(), json!(self.command));
        }
        if !self.args.is_empty() {
            body.insert("arguments".into(), json!(self.args));
        }
        if let Some(port) = self.port {
            body.insert("networking".into(), json!({"default": {"protocol": "http", "port": port}}));
        }
        if !self.env.is_empty() {
            let env: BTreeMap<&str, &str> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            body.insert("environment_variables".into(), json!(env));
        }
        if let Some(d) = &self.description {
            body.insert("description".into(), json!(d));
        }
        if self.stopped {
            body.insert("status_requested".into(), json!("OFF"));
        }
        Value::Object(body)
    }
}

/// Reads a JSON pod definition from `path`, or from stdin for `-`.
pub fn read_file(path: &Path) -> Result<Value, ClientError> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| ClientError::Input(format!("cannot read the pod definition from stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| ClientError::Input(format!("cannot read {}: {e}", path.display())))?
    };
    parse_definition(&text, &path.display().to_string())
}

fn parse_definition(text: &str, origin: &str) -> Result<Value, ClientError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| ClientError::Input(format!("{origin} is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ClientError::Input(format!("{origin} must hold a JSON object (a pod definition)")));
    }
    Ok(v)
}

/// `KEY=VALUE` for `--env`.
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// `120`, `120s`, `500ms`, `2m` or `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("expected a duration like 120s or 2m, got '{s}'"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("unknown unit '{other}' in '{s}' (use ms, s, m or h)")),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_a_tapis_body() {
        let flags = SpecFlags {
            id: Some("web".into()),
            image: Some("busybox".into()),
            command: vec!["sh".into(), "-c".into(), "exec httpd".into()],
            port: Some(8000),
            env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
            stopped: true,
            ..SpecFlags::default()
        };
        assert_eq!(
            flags.to_body(),
            json!({
                "pod_id": "web", "image": "busybox", "command": ["sh", "-c", "exec httpd"],
                "networking": {"default": {"protocol": "http", "port": 8000}},
                "environment_variables": {"A": "1", "B": "x=y"}, "status_requested": "OFF"
            })
        );
        assert_eq!(SpecFlags::default().to_body(), json!({}));
    }

    #[test]
    fn definitions_must_be_json_objects() {
        assert!(parse_definition(r#"{"pod_id":"a"}"#, "f").is_ok());
        let err = parse_definition("[1]", "f").expect_err("array");
        assert!(err.to_string().contains("JSON object"), "{err}");
        let err = parse_definition("{", "pod.json").expect_err("syntax");
        assert!(err.to_string().starts_with("pod.json is not valid JSON"), "{err}");
    }

    #[test]
    fn env_and_durations_parse() {
        assert_eq!(parse_env("K=v=w"), Ok(("K".into(), "v=w".into())));
        assert_eq!(parse_env("K="), Ok(("K".into(), String::new())));
        assert!(parse_env("=v").is_err());
        assert!(parse_env("K").is_err());
        assert_eq!(parse_duration("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
