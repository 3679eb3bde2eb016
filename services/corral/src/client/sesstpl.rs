//! `corral sesstpl …` and `corral start-template` against `/api/session-templates`.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use super::api::{Api, ClientError, Payload, not_found_as, segment};
use super::render::{self, or_dash, text};
use super::sesstpl_args::{SesstplArgs, SesstplCommand, StartTemplateArgs};
use super::wait::{self, Goal};
use super::{document, emit, emit_json, now_ms, progress_out};

const BASE: &str = "/api/session-templates";

fn path_of(id: &str) -> String {
    format!("{BASE}/{}", segment(id))
}

fn not_found(id: &str) -> impl FnOnce(ClientError) -> ClientError {
    not_found_as(format!("no session template '{id}'"))
}

pub async fn execute(args: SesstplArgs) -> Result<(), ClientError> {
    let api = Api::new(&args.conn.url, args.conn.token)?;
    let json = args.conn.json;
    match args.command {
        SesstplCommand::Create { file } => {
            let doc = document::read(file.as_deref(), "corral sesstpl create")?;
            let view = api.api_json(Method::POST, BASE, doc.payload()).await?;
            saved(&view, "created", json);
        }
        SesstplCommand::Update { id, file } => {
            let doc = document::read(file.as_deref(), &format!("corral sesstpl update {id}"))?;
            let view = api.api_json(Method::PUT, &path_of(&id), doc.payload()).await.map_err(not_found(&id))?;
            saved(&view, "updated", json);
        }
        SesstplCommand::List => {
            let views = api.api_json(Method::GET, BASE, Payload::None).await?;
            if json {
                emit_json(&views);
            } else {
                let views = views.as_array().cloned().unwrap_or_default();
                if views.is_empty() {
                    emit("No session templates yet. Upload one: corral sesstpl create -f template.yaml\n");
                } else {
                    emit(&template_table(&views, now_ms()));
                }
            }
        }
        SesstplCommand::Get { id } => {
            if json {
                emit_json(&api.api_json(Method::GET, &path_of(&id), Payload::None).await.map_err(not_found(&id))?);
            } else {
                let yaml = api.api_yaml(Method::GET, &path_of(&id)).await.map_err(not_found(&id))?;
                emit(&yaml);
            }
        }
        SesstplCommand::Delete { ids } => delete(&api, &ids, json).await?,
    }
    Ok(())
}

fn saved(view: &Value, what: &str, json: bool) {
    if json {
        emit_json(view);
        return;
    }
    let id = text(&view["id"]);
    emit(&format!(
        "session template '{id}' {what} (version {}); start it with: corral start-template {id}\n",
        or_dash(text(&view["tag_timestamp"]))
    ));
}

async fn delete(api: &Api, ids: &[String], json: bool) -> Result<(), ClientError> {
    let mut failed = false;
    for id in ids {
        match api.api_json(Method::DELETE, &path_of(id), Payload::None).await.map_err(not_found(id)) {
            Ok(answer) if json => emit_json(&answer),
            Ok(_) => emit(&format!("session template '{id}' deleted\n")),
            // Report every failure, carry on with the other ids, and fail at the end.
            Err(e) if ids.len() > 1 => {
                eprint!("{}", super::describe(&e));
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if failed { Err(ClientError::Input("some session templates were not deleted".into())) } else { Ok(()) }
}

/// Milliseconds since the epoch of the time in a tag version (`tag@YYYY-MM-DD-HH:MM:SS`, UTC).
fn version_time(tag_timestamp: &str) -> Option<i64> {
    let (_, when) = tag_timestamp.rsplit_once('@')?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]-[hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(when, &fmt).ok()?.assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The template list as a table. The id is the document's `metadata.name`, so the name is not
/// repeated; the tag is shown instead.
pub fn template_table(views: &[Value], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let t = &v["template"];
            let updated = v["tag_timestamp"]
                .as_str()
                .and_then(version_time)
                .map_or_else(|| "-".to_owned(), |ms| format!("{} ago", render::age(ms, now_ms)));
            vec![
                text(&v["id"]),
                or_dash(text(&t["metadata"]["tag"])),
                or_dash(text(&t["spec"]["session_type"])),
                or_dash(text(&t["spec"]["kernel"]["image"])),
                or_dash(text(&v["owner"])),
                updated,
            ]
        })
        .collect();
    render::table(&["ID", "TAG", "TYPE", "IMAGE", "OWNER", "UPDATED"], &rows)
}

/// `corral start-template`: the pod id on stdout (so `POD=$(corral start-template t)` works),
/// what happened and the server's warnings on stderr; with `--wait`, the run followed to its
/// goal, and a failed batch run is an error with its exit code and reason.
pub async fn start(args: StartTemplateArgs) -> Result<(), ClientError> {
    let overrides = args.overrides().build()?;
    let api = Api::new(&args.conn.url, args.conn.token.clone())?;
    let json = args.conn.json;
    let mut body = json!({ "overrides": overrides });
    if let Some(pod_id) = &args.pod_id {
        body["pod_id"] = json!(pod_id);
    }
    let started_at = Instant::now();
    let path = format!("{}/start", path_of(&args.id));
    let started = api.api_json(Method::POST, &path, Payload::Json(&body)).await.map_err(not_found(&args.id))?;
    let pod_id = text(&started["pod"]["pod_id"]);
    if pod_id.is_empty() {
        let detail = "the start answer names no pod".to_owned();
        return Err(ClientError::BadAnswer { url: format!("{}{path}", args.conn.url), status: 201, detail });
    }
    for w in started["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", text(w));
    }
    if !args.wait.wait {
        if json {
            emit_json(&started);
        } else {
            emit(&format!("{pod_id}\n"));
            eprintln!(
                "pod '{pod_id}' started from session template '{}' (version {}); follow it with: corral pods get {pod_id}",
                args.id,
                or_dash(text(&started["tag_timestamp"]))
            );
        }
        return Ok(());
    }
    let batch = started["session_type"] == "batch";
    let goal = if batch { Goal::Finished } else { Goal::Available };
    let pod = wait::wait(&api, &pod_id, goal, args.wait.timeout, started_at, &mut *progress_out(json)).await?;
    if json {
        emit_json(&pod);
    }
    if !batch {
        return Ok(());
    }
    match render::run_outcome(&pod) {
        Ok(summary) => {
            if !json {
                emit(&format!("{pod_id}: finished, {summary}\n"));
            }
            Ok(())
        }
        Err(detail) => Err(ClientError::RunFailed { pod: pod_id, status: text(&pod["status"]), detail }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_times_are_utc_seconds() {
        let t = version_time("example-tag@2026-01-02-03:04:05").expect("parses");
        assert_eq!(t, render::parse_ts("2026-01-02T03:04:05.000000").expect("ts"));
        assert_eq!(version_time("latest"), None);
        assert_eq!(version_time("latest@yesterday"), None);
    }

    #[test]
    fn template_tables_show_id_tag_type_image_owner_and_update() {
        let now = version_time("x@2026-01-02-03:09:05").expect("ts");
        let views = [
            json!({"id": "template1234", "owner": "alice", "tag_timestamp": "example-tag@2026-01-02-03:04:05",
                "template": {"metadata": {"name": "template1234", "tag": "example-tag"},
                    "spec": {"session_type": "interactive", "kernel": {"image": "corral-test/busybox"}}}}),
            json!({"id": "nightly", "owner": "bob", "tag_timestamp": null,
                "template": {"metadata": {"name": "nightly"}, "spec": {"session_type": "batch", "kernel": {"image": "img"}}}}),
        ];
        assert_eq!(
            template_table(&views, now),
            "ID            TAG          TYPE         IMAGE                OWNER  UPDATED\n\
             template1234  example-tag  interactive  corral-test/busybox  alice  5m ago\n\
             nightly       -            batch        img                  bob    -\n"
        );
    }
}
