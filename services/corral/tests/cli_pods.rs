//! The `corral pods` client against a real `corral dev` (process runtime): the whole pod
//! lifecycle through the CLI, and how server errors are shown.

mod dev_support;

use std::time::Duration;

use dev_support::{Dev, ProcessCleanup, eventually, ok, pod_id, running_processes, stderr, stdout};

const HTTPD: &str = "echo hello from port $PORT; exec busybox httpd -f -p $PORT -h /tmp";

fn running_for(dev: &Dev, id: &str) -> usize {
    running_processes(&dev.data_dir).iter().filter(|c| c.pod.pod_id == id).count()
}

#[test]
fn dev_prints_how_to_use_it_and_the_cli_drives_a_pod_through_its_life() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let _cleanup = ProcessCleanup(data.clone());
    let mut dev = Dev::start(&data, &["--runtime", "process"], &[("USER", "alice")]);

    // The banner: URL, runtime, who the token is for, and a curl that creates a pod.
    assert!(dev.banner.contains(&format!("url:      {}", dev.url)), "{}", dev.banner);
    assert!(dev.banner.contains("runtime:  process (chosen with --runtime)"), "{}", dev.banner);
    assert!(dev.banner.contains("tenant dev, user alice"), "{}", dev.banner);
    assert!(dev.banner.contains(&format!("curl -s -X POST {}/v3/pods", dev.url)), "{}", dev.banner);

    let id = pod_id("web");
    let created = dev.cli(&["pods", "create", "--wait", "--id", &id, "--image", "busybox", "--", "sh", "-c", HTTPD]);
    let progress = ok(&created);
    assert!(progress.starts_with(&format!("{id}: ")), "{progress}");
    assert!(progress.contains(" → AVAILABLE (") && progress.ends_with("s)\n"), "{progress}");
    assert_eq!(running_for(&dev, &id), 1, "one process runs the pod");

    let list = ok(&dev.cli(&["pods", "list"]));
    let header = list.lines().next().expect("a header");
    assert!(header.starts_with("POD_ID") && header.contains("STATUS") && header.contains("AGE"), "{list}");
    let row = list.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("no row for {id}:\n{list}"));
    assert!(row.contains("AVAILABLE") && row.contains("busybox"), "{row}");
    // Columns line up: the STATUS column starts at the same offset in header and row.
    assert_eq!(header.find("STATUS"), row.find("AVAILABLE"), "{list}");

    let got: serde_json::Value =
        serde_json::from_str(&ok(&dev.cli(&["pods", "get", &id, "--json"]))).expect("--json is JSON");
    assert_eq!(got["pod_id"], id.as_str());
    assert_eq!(got["status"], "AVAILABLE");
    assert_eq!(got["command"][0], "sh");

    let logs = eventually("the container output in `pods logs`", Duration::from_secs(20), || {
        let out = ok(&dev.cli(&["pods", "logs", &id]));
        out.contains("hello from port").then_some(out)
    });
    assert!(logs.lines().any(|l| l.starts_with("hello from port ")), "{logs}");
    let actions = ok(&dev.cli(&["pods", "logs", &id, "--actions"]));
    assert!(actions.contains("pod created by 'alice'"), "{actions}");

    // Errors: a duplicate is the server's 409, shown plainly, exit 1.
    let dup = dev.cli(&["pods", "create", "--id", &id, "--image", "busybox", "--", "true"]);
    assert_eq!(dup.status.code(), Some(1), "{}", stderr(&dup));
    assert!(stderr(&dup).starts_with(&format!("error: pod '{id}' already exists")), "{}", stderr(&dup));
    // A bad id and no image: every problem listed on its own line.
    let bad = dev.cli(&["pods", "create", "--id", "Bad_Id", "--", "true"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    let err = stderr(&bad);
    assert!(err.starts_with("error: pod is invalid: 2 problems"), "{err}");
    assert!(err.contains("\n  - pod_id: must match"), "{err}");
    assert!(err.contains("\n  - image: is required"), "{err}");
    // A wrong token is refused with a hint.
    let denied = dev.cli_with_token(&["pods", "list"], "not-a-token");
    assert_eq!(denied.status.code(), Some(1));
    assert!(stderr(&denied).contains("hint: pass --token or set CORRAL_TOKEN"), "{}", stderr(&denied));

    let stopped = ok(&dev.cli(&["pods", "stop", &id, "--wait"]));
    assert!(stopped.contains("STOPPED ("), "{stopped}");
    assert_eq!(running_for(&dev, &id), 0, "a stopped pod runs no process");
    let started = ok(&dev.cli(&["pods", "start", &id, "--wait"]));
    assert!(started.contains("AVAILABLE ("), "{started}");
    let restarted = dev.cli(&["pods", "restart", &id, "--wait", "--json"]);
    let pod: serde_json::Value = serde_json::from_str(&ok(&restarted)).expect("restart --json is JSON");
    assert_eq!(pod["status"], "AVAILABLE");
    assert!(stderr(&restarted).contains("AVAILABLE ("), "progress goes to stderr with --json: {}", stderr(&restarted));
    assert_eq!(running_for(&dev, &id), 1, "a restart replaces the process");

    let deleted = ok(&dev.cli(&["pods", "delete", &id]));
    assert_eq!(deleted, format!("pod '{id}' deleted\n"));
    let gone = dev.cli(&["pods", "get", &id]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("not found"), "{}", stderr(&gone));
    eventually("the deleted pod's process to stop", Duration::from_secs(20), || {
        (running_for(&dev, &id) == 0).then_some(())
    });
    assert!(ok(&dev.cli(&["pods", "list"])).starts_with("No pods yet"));

    let status = dev.terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}\nlog:\n{}", dev.log_text());
}

#[test]
fn create_from_a_file_or_stdin_and_wait_reports_a_failing_pod() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let _cleanup = ProcessCleanup(data.clone());
    // Few attempts, so a crashing pod soon settles in ERROR after a visible retry.
    let dev = Dev::start(&data, &["--runtime", "process"], &[("CORRAL__SPAWNER__MAX_ATTEMPTS", "3")]);

    let id = pod_id("file");
    let file = tmp.path().join("pod.json");
    let body = serde_json::json!({"pod_id": id, "image": "busybox", "command": ["sh", "-c", HTTPD],
        "environment_variables": {"GREETING": "hi"}});
    std::fs::write(&file, body.to_string()).expect("write pod.json");
    let out = ok(&dev.cli(&["pods", "create", "-f", file.to_str().expect("utf-8 path"), "--json"]));
    let created: serde_json::Value = serde_json::from_str(&out).expect("create --json is JSON");
    assert_eq!(created["pod_id"], id.as_str());
    assert_eq!(created["environment_variables"]["GREETING"], "hi");

    // A command that exits at once with an error: --wait ends with the reason, exit 1.
    let failing = pod_id("fail");
    let spec = serde_json::json!({"pod_id": failing, "image": "busybox", "command": ["sh", "-c", "exit 3"]});
    let mut child = std::process::Command::new(dev_support::BIN)
        .args(["pods", "create", "-f", "-", "--wait", "--timeout", "90s"])
        .env("CORRAL_URL", &dev.url)
        .env("CORRAL_TOKEN", &dev.token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the CLI");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(spec.to_string().as_bytes()).expect("write the definition to stdin");
    }
    let out = child.wait_with_output().expect("CLI output");
    assert_eq!(out.status.code(), Some(1), "stdout:\n{}\nstderr:\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("error: pod '{failing}' is ERROR: container exited with code 3")), "{err}");
    assert!(stdout(&out).contains("REQUESTED (retry: container exited with code 3"), "{}", stdout(&out));

    ok(&dev.cli(&["pods", "delete", &id, &failing]));
    eventually("the pods' processes to stop", Duration::from_secs(20), || {
        running_processes(&dev.data_dir).is_empty().then_some(())
    });
}
