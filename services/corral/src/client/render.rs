//! Human output: aligned tables and detail views of pods, and ages like `3m`.

use serde_json::Value;

/// Aligned columns separated by two spaces; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn or_dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}

/// Milliseconds since the epoch of a naive-UTC ISO timestamp as the API writes it.
pub fn parse_ts(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let t = time::PrimitiveDateTime::parse(s, &fmt).ok()?.assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `45s`, `12m`, `5h`, `3d`.
pub fn age(since_ms: i64, now_ms: i64) -> String {
    let s = (now_ms.saturating_sub(since_ms) / 1000).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

fn age_of(pod: &Value, now_ms: i64) -> String {
    pod["creation_ts"].as_str().and_then(parse_ts).map_or_else(|| "-".to_owned(), |t| age(t, now_ms))
}

/// The address of the default networking entry (`hello.pods.localhost`).
fn url_of(pod: &Value) -> String {
    or_dash(text(&pod["networking"]["default"]["url"]))
}

/// The pod list as a table.
pub fn pod_table(pods: &[Value], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = pods
        .iter()
        .map(|p| vec![text(&p["pod_id"]), text(&p["status"]), or_dash(text(&p["image"])), url_of(p), age_of(p, now_ms)])
        .collect();
    table(&["POD_ID", "STATUS", "IMAGE", "URL", "AGE"], &rows)
}

/// A shell-like rendering of a command line (quotes only where needed).
fn argv(v: &Value) -> String {
    let Some(items) = v.as_array() else { return String::new() };
    items
        .iter()
        .map(|a| {
            let s = text(a);
            let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,$".contains(c));
            if plain { s } else { format!("'{}'", s.replace('\'', r"'\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One pod, field by field.
pub fn pod_details(pod: &Value, now_ms: i64) -> String {
    let sc = &pod["status_container"];
    let mut command = argv(&pod["command"]);
    let args = argv(&pod["arguments"]);
    if !args.is_empty() {
        command = format!("{command} {args}");
    }
    let net = &pod["networking"]["default"];
    let port = match (net["protocol"].as_str(), net["port"].as_u64()) {
        (Some(proto), Some(port)) => format!(" ({proto}/{port})"),
        _ => String::new(),
    };
    let env: Vec<String> = pod["environment_variables"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", text(v))).collect())
        .unwrap_or_default();
    let created = text(&pod["creation_ts"]);
    let mut rows: Vec<(&str, String)> = vec![
        ("POD_ID", text(&pod["pod_id"])),
        ("STATUS", text(&pod["status"])),
        ("REQUESTED", text(&pod["status_requested"])),
        ("IMAGE", text(&pod["image"])),
        ("COMMAND", command),
        ("ENV", env.join(" ")),
        ("URL", format!("{}{port}", url_of(pod))),
        ("CREATED", format!("{created} UTC ({} ago)", age_of(pod, now_ms))),
        ("STARTED", text(&pod["start_instance_ts"])),
        ("RESTARTS", text(&sc["restart_count"])),
        ("EXIT_CODE", text(&sc["exit_code"])),
        ("MESSAGE", text(&sc["message"])),
    ];
    // Only batch runs and finished containers have these; other pods stay as they were.
    let session_type = text(&pod["session"]["session_type"]);
    if !session_type.is_empty() {
        rows.insert(4, ("TYPE", session_type));
    }
    let reason = text(&sc["reason"]);
    if !reason.is_empty() {
        rows.push(("REASON", reason));
    }
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{:<11}{}\n", format!("{k}:"), or_dash(v)));
    }
    out
}

/// How a finished run ended: `Ok` with a summary (`exit code 0`) when it succeeded, `Err` with
/// exit code, reason (`failed`, `timeout`, `infrastructure`) and message when it did not.
/// Success is COMPLETE with exit code 0.
pub fn run_outcome(pod: &Value) -> Result<String, String> {
    let sc = &pod["status_container"];
    let status = text(&pod["status"]);
    let code = sc["exit_code"].as_i64();
    let mut parts = vec![code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"))];
    // A success's reason (`succeeded`) adds nothing to "exit code 0".
    if status == "COMPLETE" && code == Some(0) {
        return Ok(parts.join(", "));
    }
    let reason = text(&sc["reason"]);
    if !reason.is_empty() {
        parts.push(format!("reason: {reason}"));
    }
    let message = text(&sc["message"]);
    if !message.is_empty() {
        parts.push(message);
    }
    Err(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let t = table(
            &["A", "LONG_HEADER", "C"],
            &[vec!["xxxx".into(), "y".into(), "z".into()], vec!["1".into(), "".into(), "3".into()]],
        );
        assert_eq!(t, "A     LONG_HEADER  C\nxxxx  y            z\n1                  3\n");
    }

    #[test]
    fn timestamps_and_ages() {
        let t = parse_ts("2026-01-02T03:04:05.123000").expect("parses");
        assert_eq!(t % 1000, 123);
        assert_eq!(age(t, t + 59_000), "59s");
        assert_eq!(age(t, t + 600_000), "10m");
        assert_eq!(age(t, t + 3 * 3_600_000), "3h");
        assert_eq!(age(t, t + 3 * 86_400_000), "3d");
        assert_eq!(parse_ts("yesterday"), None);
    }

    fn pod() -> Value {
        json!({
            "pod_id": "web", "status": "AVAILABLE", "status_requested": "ON", "image": "busybox",
            "command": ["sh", "-c", "exec httpd -p $PORT"], "arguments": null,
            "environment_variables": {"A": "1"},
            "networking": {"default": {"protocol": "http", "port": 8000, "url": "web.pods.localhost"}},
            "creation_ts": "2026-01-02T03:04:05.000000", "start_instance_ts": null,
            "status_container": {"message": "", "exit_code": null, "restart_count": 0}
        })
    }

    #[test]
    fn pod_tables_show_id_status_image_url_and_age() {
        let now = parse_ts("2026-01-02T03:09:05.000000").expect("ts");
        let t = pod_table(&[pod()], now);
        assert_eq!(
            t,
            "POD_ID  STATUS     IMAGE    URL                 AGE\nweb     AVAILABLE  busybox  web.pods.localhost  5m\n"
        );
    }

    #[test]
    fn details_quote_commands_and_dash_empty_fields() {
        let now = parse_ts("2026-01-02T03:09:05.000000").expect("ts");
        let d = pod_details(&pod(), now);
        assert!(d.contains("COMMAND:   sh -c 'exec httpd -p $PORT'\n"), "{d}");
        assert!(d.contains("URL:       web.pods.localhost (http/8000)\n"), "{d}");
        assert!(d.contains("MESSAGE:   -\n"), "{d}");
        assert!(d.contains("ENV:       A=1\n"), "{d}");
        assert!(!d.contains("REASON") && !d.contains("TYPE"), "only when present: {d}");
    }

    #[test]
    fn details_show_type_exit_code_and_reason_of_batch_runs() {
        let mut p = pod();
        p["status"] = json!("COMPLETE");
        p["session"] = json!({"session_type": "batch"});
        p["status_container"] = json!({"exit_code": 3, "reason": "failed", "message": "exited"});
        let d = pod_details(&p, parse_ts("2026-01-02T03:09:05.000000").expect("ts"));
        assert!(d.contains("IMAGE:     busybox\nTYPE:      batch\n"), "{d}");
        assert!(d.contains("EXIT_CODE: 3\n"), "{d}");
        assert!(d.ends_with("MESSAGE:   exited\nREASON:    failed\n"), "{d}");
    }

    #[test]
    fn run_outcomes() {
        let run = |status: &str, sc: Value| run_outcome(&json!({"status": status, "status_container": sc}));
        let rows: [(&str, Value, Result<&str, &str>); 5] = [
            ("COMPLETE", json!({"exit_code": 0}), Ok("exit code 0")),
            ("COMPLETE", json!({"exit_code": 0, "reason": "succeeded"}), Ok("exit code 0")),
            (
                "COMPLETE",
                json!({"exit_code": 3, "reason": "failed", "message": "container exited with code 3"}),
                Err("exit code 3, reason: failed, container exited with code 3"),
            ),
            ("COMPLETE", json!({"exit_code": null, "reason": "timeout"}), Err("no exit code, reason: timeout")),
            ("ERROR", json!({"exit_code": 0, "message": "stalled"}), Err("exit code 0, stalled")),
        ];
        for (status, sc, want) in rows {
            let got = run(status, sc.clone());
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{status} {sc}");
        }
    }
}
