//! Batch runs and bootstrap scripts end to end against real RabbitMQ, Redis and Docker (the
//! busybox test image): exit codes and termination reasons in the API and the action log,
//! `batch_timeout`, runs that happen once per generation, and `session.bootstrap` running in
//! the container before the command.

mod common;

use std::time::Duration;

use common::{IMAGE, Spawners, Stack, eventually};
use serde_json::{Value, json};

fn action_text(logs: &Value) -> String {
    logs["action_logs"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// A batch pod running `script` with `sh -c`.
fn batch_pod(pod_id: &str, script: &str, session: Value) -> Value {
    json!({
        "pod_id": pod_id,
        "image": IMAGE,
        "command": ["sh", "-c", script],
        "resources": {"cpu_limit": 500, "mem_limit": 256, "mem_request": 256, "cpu_request": 250},
        "session": session,
    })
}

/// The action log once it contains `fragment`.
async fn actions_with(stack: &Stack, pod_id: &str, fragment: &str) -> String {
    eventually(&format!("'{fragment}' in the action log of {pod_id}"), Duration::from_secs(20), || async {
        let text = action_text(&stack.logs(pod_id).await);
        text.contains(fragment).then_some(text)
    })
    .await
}

/// The container output once it contains `fragment`.
async fn output_with(stack: &Stack, pod_id: &str, fragment: &str) -> String {
    eventually(&format!("'{fragment}' in the logs of {pod_id}"), Duration::from_secs(20), || async {
        let logs = stack.logs(pod_id).await;
        logs["logs"].as_str().filter(|s| s.contains(fragment)).map(str::to_string)
    })
    .await
}

/// Exit 3 ends the run COMPLETE with exit code 3 and reason `failed`; exit 0 with
/// `succeeded`. Neither is restarted; a restart runs the job again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_exit_codes_and_reasons() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let session = json!({"session_type": "batch"});
    let created = stack.create(batch_pod("fails3", "echo working; exit 3", session.clone())).await;
    assert_eq!(created["result"]["session"], session, "{created}");
    stack.create(batch_pod("ok0", "echo fine", session.clone())).await;

    let failed = stack.wait_status("fails3", "COMPLETE", Duration::from_secs(60)).await;
    let sc = &failed["status_container"];
    assert_eq!(sc["exit_code"], 3, "{failed}");
    assert_eq!(sc["reason"], "failed", "{failed}");
    assert_eq!(sc["message"], "batch run failed: exit code 3", "{failed}");
    assert_eq!(failed["session"], session);
    let actions = actions_with(&stack, "fails3", "batch run failed: exit code 3").await;
    assert_eq!(actions.matches("spawn requested").count(), 1, "run once, never retried: {actions}");
    assert!(!actions.contains("retrying"), "{actions}");
    output_with(&stack, "fails3", "working").await;
    eventually("the finished container removed", Duration::from_secs(20), || async {
        stack.containers("fails3").await.is_empty().then_some(())
    })
    .await;

    let ok = stack.wait_status("ok0", "COMPLETE", Duration::from_secs(60)).await;
    assert_eq!(
        (ok["status_container"]["exit_code"].clone(), ok["status_container"]["reason"].clone()),
        (json!(0), json!("succeeded"))
    );
    actions_with(&stack, "ok0", "batch run succeeded (exit code 0)").await;

    // Restart: the outcome is cleared and the job runs a second time.
    let (code, v) = stack.get("/v3/pods/fails3/restart").await;
    assert_eq!(code, 200, "{v}");
    let actions = actions_with(&stack, "fails3", "spawn requested (generation 2)").await;
    let again = eventually("the second run's outcome", Duration::from_secs(60), || async {
        let text = action_text(&stack.logs("fails3").await);
        (text.matches("batch run failed: exit code 3").count() == 2).then_some(text)
    })
    .await;
    assert!(again.len() > actions.len());
    let pod = stack.wait_status("fails3", "COMPLETE", Duration::from_secs(30)).await;
    assert_eq!(
        (pod["status_container"]["exit_code"].clone(), pod["status_container"]["reason"].clone()),
        (json!(3), json!("failed"))
    );
    stack.shutdown().await;
}

/// A run longer than `batch_timeout` is removed and ends COMPLETE with reason `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_timeout_stops_the_run() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    stack.create(batch_pod("sleeper", "sleep 600", json!({"session_type": "batch", "batch_timeout": 2}))).await;
    let running = stack.wait_status("sleeper", "AVAILABLE", Duration::from_secs(60)).await;
    assert_eq!(running["status_container"]["reason"], Value::Null, "{running}");
    let done = stack.wait_status("sleeper", "COMPLETE", Duration::from_secs(30)).await;
    let sc = &done["status_container"];
    assert_eq!(sc["reason"], "timeout", "{done}");
    assert_eq!(sc["exit_code"], Value::Null, "killed by Corral, not exited: {done}");
    assert_eq!(sc["message"], "batch run timed out after 2 s", "{done}");
    actions_with(&stack, "sleeper", "batch run timed out after 2 s").await;
    eventually("the timed-out container removed", Duration::from_secs(20), || async {
        stack.containers("sleeper").await.is_empty().then_some(())
    })
    .await;
    stack.shutdown().await;
}

/// The bootstrap script runs in the container before the command (its output comes first);
/// a failing one stops the run before the command, with its exit code and a message that
/// says the bootstrap failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_runs_before_the_command() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let boot = |script: &str| json!({"session_type": "batch", "bootstrap": script});
    stack
        .create(batch_pod(
            "booted",
            "echo command-ran; cat /tmp/made-by-bootstrap",
            boot("echo bootstrap-ran; echo file-content > /tmp/made-by-bootstrap"),
        ))
        .await;
    stack.create(batch_pod("badboot", "echo command-ran", boot("echo bootstrap-trying; exit 4"))).await;

    let ok = stack.wait_status("booted", "COMPLETE", Duration::from_secs(60)).await;
    assert_eq!(ok["status_container"]["reason"], "succeeded", "{ok}");
    let out = output_with(&stack, "booted", "file-content").await;
    let (boot_at, cmd_at) = (out.find("bootstrap-ran"), out.find("command-ran"));
    assert!(boot_at.zip(cmd_at).is_some_and(|(b, c)| b < c), "bootstrap output first: {out}");

    let bad = stack.wait_status("badboot", "COMPLETE", Duration::from_secs(60)).await;
    let sc = &bad["status_container"];
    assert_eq!((sc["exit_code"].clone(), sc["reason"].clone()), (json!(4), json!("failed")), "{bad}");
    assert_eq!(sc["message"], "batch run failed: exit code 4 (the bootstrap script failed)", "{bad}");
    actions_with(&stack, "badboot", "the bootstrap script failed").await;
    let out = output_with(&stack, "badboot", "bootstrap script failed with exit code 4").await;
    assert!(out.contains("bootstrap-trying") && !out.contains("command-ran"), "the command never ran: {out}");

    // A bootstrap script needs a command to hand over to.
    let (code, v) = stack
        .call(
            reqwest::Method::POST,
            "/v3/pods",
            Some(json!({"pod_id": "nocmd", "image": IMAGE, "session": boot("true")})),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert!(v.to_string().contains("session.bootstrap"), "{v}");
    stack.shutdown().await;
}

/// A Backend.AI batch template (type batch, startup command, batch_timeout, run.bootstrap),
/// started through `/api/session-templates`: the pod carries the session and the run's
/// outcome shows in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_session_template_runs_to_completion() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let doc = json!({
        "apiVersion": "v1",
        "kind": "taskTemplate",
        "metadata": {"name": "batchjob"},
        "spec": {
            "type": "batch",
            "batch_timeout": 120,
            "kernel": {
                "image": IMAGE,
                "environ": {"GREETING": "hello"},
                "run": {"bootstrap": "echo preparing", "startup": "echo $GREETING; exit 3"}
            },
            "resources": {"cpu": "500m", "mem": "256m"}
        }
    });
    let (code, v) = stack.call(reqwest::Method::POST, "/api/session-templates", Some(doc)).await;
    assert_eq!(code, 201, "{v}");
    let (code, started) = stack
        .call(reqwest::Method::POST, "/api/session-templates/batchjob/start", Some(json!({"pod_id": "tjob"})))
        .await;
    assert_eq!(code, 201, "{started}");
    assert_eq!(started["warnings"], json!([]), "everything is applied: {started}");
    assert_eq!(
        started["pod"]["session"],
        json!({"session_type": "batch", "batch_timeout": 120, "bootstrap": "echo preparing"}),
        "{started}"
    );
    let done = stack.wait_status("tjob", "COMPLETE", Duration::from_secs(60)).await;
    let sc = &done["status_container"];
    assert_eq!((sc["exit_code"].clone(), sc["reason"].clone()), (json!(3), json!("failed")), "{done}");
    actions_with(&stack, "tjob", "batch run failed: exit code 3").await;
    let out = output_with(&stack, "tjob", "hello").await;
    let order = out.find("preparing").zip(out.find("hello"));
    assert!(order.is_some_and(|(boot, cmd)| boot < cmd), "bootstrap output first: {out}");
    stack.shutdown().await;
}
