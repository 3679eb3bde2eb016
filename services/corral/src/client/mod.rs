//! The command-line client: `corral pods …` (the pod API), `corral sesstpl …` and
//! `corral start-template` (session templates), `corral secret …` (named secrets). Human views
//! by default, the API result as JSON with `--json`; server errors are printed with every
//! problem listed and exit with status 1 (clap's usage errors exit with 2).

mod api;
mod args;
mod document;
mod overrides;
mod render;
mod secrets;
mod sesstpl;
mod sesstpl_args;
mod spec;
mod wait;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::Value;

use api::{Api, ClientError};
pub use args::PodsArgs;
use args::{CreateArgs, PodsCommand, WaitArgs};
pub use secrets::SecretArgs;
pub use sesstpl_args::{START_EXAMPLES, SesstplArgs, StartTemplateArgs};
use spec::SpecFlags;
use wait::Goal;

/// Runs one `corral pods` command; errors are printed here.
pub async fn run(args: PodsArgs) -> ExitCode {
    finish(execute(args).await)
}

/// Runs one `corral sesstpl` command.
pub async fn run_sesstpl(args: SesstplArgs) -> ExitCode {
    finish(sesstpl::execute(args).await)
}

/// Runs `corral start-template`.
pub async fn run_start_template(args: StartTemplateArgs) -> ExitCode {
    finish(sesstpl::start(args).await)
}

/// Runs one `corral secret` command.
pub async fn run_secret(args: SecretArgs) -> ExitCode {
    finish(secrets::execute(args).await)
}

fn finish(result: Result<(), ClientError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error as shown to the user, with problems and hints on their own lines.
fn describe(e: &ClientError) -> String {
    let mut s = format!("error: {}\n", headline(e));
    match e {
        ClientError::Server { problems, status, .. } => {
            for p in problems {
                s.push_str(&format!("  - {}: {}\n", p.field, p.message));
            }
            if *status == 401 {
                s.push_str("  hint: pass --token or set CORRAL_TOKEN (`corral dev` prints a token when it starts)\n");
            }
            if *status == 404 && e.to_string() == api::NO_SUCH_ROUTE {
                s.push_str(
                    "  hint: the server at --url / CORRAL_URL does not offer this API; is it an older Corral?\n",
                );
            }
        }
        ClientError::Unreachable { .. } => {
            s.push_str("  hint: is `corral dev` running? Start it, or point --url / CORRAL_URL at a Corral server.\n");
        }
        _ => {}
    }
    s
}

/// The first line of an error. A validation message also lists every problem inline
/// (`… 2 problems: a: x; b: y`); that list is cut, since each problem gets its own line below.
fn headline(e: &ClientError) -> String {
    let full = e.to_string();
    if let ClientError::Server { problems, .. } = e
        && let Some(first) = problems.first()
        && let Some(at) = full.find(&format!(": {}: {}", first.field, first.message))
    {
        return full[..at].to_owned();
    }
    full
}

/// Writes to stdout; a closed pipe (`corral pods list | head`) is not an error worth a panic.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn emit_json(v: &Value) {
    emit(&format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())));
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

async fn execute(args: PodsArgs) -> Result<(), ClientError> {
    let conn = args.conn;
    let api = Api::new(&conn.url, conn.token)?;
    let json = conn.json;
    match args.command {
        PodsCommand::Create(create) => create_pod(&api, *create, json).await,
        PodsCommand::List => {
            let reply = api.list().await?;
            if json {
                emit_json(&reply.result);
            } else {
                let pods = reply.result.as_array().cloned().unwrap_or_default();
                if pods.is_empty() {
                    emit("No pods yet. Create one: corral pods create --help\n");
                } else {
                    emit(&render::pod_table(&pods, now_ms()));
                }
            }
            Ok(())
        }
        PodsCommand::Get { pod_id } => {
            let reply = api.get(&pod_id).await?;
            if json {
                emit_json(&reply.result)
            } else {
                emit(&render::pod_details(&reply.result, now_ms()))
            }
            Ok(())
        }
        PodsCommand::Logs { pod_id, actions } => {
            let reply = api.logs(&pod_id).await?;
            if json {
                emit_json(&reply.result);
            } else if actions {
                let lines = reply.result["action_logs"].as_array().cloned().unwrap_or_default();
                let text: String = lines.iter().map(|l| format!("{}\n", l.as_str().unwrap_or_default())).collect();
                emit(&text);
            } else {
                emit(reply.result["logs"].as_str().unwrap_or_default());
            }
            Ok(())
        }
        PodsCommand::Start { pod_id, wait } => lifecycle(&api, &pod_id, "start", Goal::Available, wait, json).await,
        PodsCommand::Stop { pod_id, wait } => lifecycle(&api, &pod_id, "stop", Goal::Settled, wait, json).await,
        PodsCommand::Restart { pod_id, wait } => lifecycle(&api, &pod_id, "restart", Goal::Available, wait, json).await,
        PodsCommand::Delete { pod_ids } => delete(&api, &pod_ids, json).await,
    }
}

/// Where progress goes: stdout for people, stderr when stdout carries JSON.
fn progress_out(json: bool) -> Box<dyn Write> {
    if json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) }
}

async fn create_pod(api: &Api, a: CreateArgs, json: bool) -> Result<(), ClientError> {
    let body = match &a.file {
        Some(path) => spec::read_file(path)?,
        None => SpecFlags {
            id: a.id,
            image: a.image,
            command: if a.argv.is_empty() { a.command } else { a.argv },
            args: a.arg,
            port: a.port,
            env: a.env,
            description: a.description,
            stopped: a.stopped,
        }
        .to_body(),
    };
    let started = Instant::now();
    let reply = api.create(&body).await?;
    let pod_id = reply.result["pod_id"].as_str().unwrap_or_default().to_owned();
    if a.wait.wait {
        let goal = if reply.result["status_requested"] == "OFF" { Goal::Settled } else { Goal::Available };
        let pod = wait::wait(api, &pod_id, goal, a.wait.timeout, started, &mut *progress_out(json)).await?;
        if json {
            emit_json(&pod);
        }
    } else if json {
        emit_json(&reply.result);
    } else {
        let status = reply.result["status"].as_str().unwrap_or_default();
        emit(&format!("pod '{pod_id}' created ({status}); follow it with: corral pods get {pod_id}\n"));
    }
    Ok(())
}

async fn lifecycle(
    api: &Api,
    pod_id: &str,
    action: &str,
    goal: Goal,
    w: WaitArgs,
    json: bool,
) -> Result<(), ClientError> {
    let started = Instant::now();
    let reply = api.lifecycle(pod_id, action).await?;
    if w.wait {
        let pod = wait::wait(api, pod_id, goal, w.timeout, started, &mut *progress_out(json)).await?;
        if json {
            emit_json(&pod);
        }
    } else if json {
        emit_json(&reply.result);
    } else {
        emit(&format!("{pod_id}: {}\n", reply.message));
    }
    Ok(())
}

async fn delete(api: &Api, pod_ids: &[String], json: bool) -> Result<(), ClientError> {
    let mut first_error = None;
    for pod_id in pod_ids {
        match api.delete(pod_id).await {
            Ok(reply) if json => emit_json(&reply.result),
            Ok(_) => emit(&format!("pod '{pod_id}' deleted\n")),
            // Report every failure, carry on with the other ids, and fail at the end.
            Err(e) if pod_ids.len() > 1 => {
                eprint!("{}", describe(&e));
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match first_error {
        None => Ok(()),
        Some(_) => Err(ClientError::Input("some pods were not deleted".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::Problem;

    #[test]
    fn problems_are_listed_once_one_per_line() {
        let problems = vec![
            Problem { field: "kind".into(), message: "must be 'taskTemplate'".into() },
            Problem { field: "spec.kernel.image".into(), message: "is required".into() },
        ];
        let e = ClientError::Server {
            status: 400,
            message:
                "session template is invalid: 2 problems: kind: must be 'taskTemplate'; spec.kernel.image: is required"
                    .into(),
            problems,
        };
        assert_eq!(
            describe(&e),
            "error: session template is invalid: 2 problems\n  - kind: must be 'taskTemplate'\n  - spec.kernel.image: is required\n"
        );
        let plain =
            ClientError::Server { status: 409, message: "template 't' already exists".into(), problems: vec![] };
        assert_eq!(describe(&plain), "error: template 't' already exists\n");
    }
}
