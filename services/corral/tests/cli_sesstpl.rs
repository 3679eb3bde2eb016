//! `corral sesstpl …` and `corral start-template` against a real `corral dev` on Docker (the
//! local `corral-test/busybox` image): the seed's Backend.AI example uploaded from a file and
//! from stdin, listed, fetched as YAML and fed back, updated, started with overrides, the
//! container seeing its environment and the cloned repository; batch runs reporting their
//! exit code and termination reason; errors with every problem and path.

mod dev_support;
mod git_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dev_support::{BIN, Dev, DockerCleanup, eventually, free_port, ok, stderr, stdout};
use git_support::BareRepo;
use serde_json::Value;

/// The seed's example with the test image in place of `python:3.6-ubuntu18.04`, a local bare
/// repository in place of the GitHub one (pinned to its first commit, while its branch has
/// moved on), and a startup command that shows the environment and the cloned file and
/// serves the default port (5000), so the session becomes AVAILABLE.
fn seed_yaml(repo: &BareRepo) -> String {
    format!(
        "---
api_version: v1
kind: taskTemplate
metadata:
  name: template1234
  tag: example-tag
spec:
  kernel:
    environ:
      MYCONFIG: XXX
    git:
      branch: main
      commit: {commit}
      repository: {repository}
      destinationDir: /home/work/baiagent
    image: corral-test/busybox
    run:
      stratup: echo MYCONFIG=$MYCONFIG EXTRA=$EXTRA; echo REPO $(cat /home/work/baiagent/hello.txt); exec httpd -f -p 5000 -h /www
  resources:
    cpu: '2'
    mem: 4g
  mounts:
    hostpath-test: /home/work/hostDesktop
    test-vfolder:
  sessionType: interactive
",
        commit = repo.first,
        repository = repo.path(),
    )
}

fn namespace() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn docker_dev(tmp: &Path, ns: &str, env: &[(&str, &str)]) -> Dev {
    let mut all = vec![("CORRAL__RUNTIME__NAMESPACE", ns)];
    all.extend_from_slice(env);
    Dev::start(&tmp.join("data"), &["--runtime", "docker"], &all)
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[track_caller]
fn fails(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout:\n{}\nstderr:\n{}", stdout(out), stderr(out));
    stderr(out)
}

#[test]
fn the_seed_template_goes_through_the_cli_and_its_session_sees_the_environment() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ns = namespace();
    let _cleanup = DockerCleanup(ns.clone());
    let mut dev = docker_dev(tmp.path(), &ns, &[]);
    let repo = BareRepo::new();
    let seed = seed_yaml(&repo);

    // From a file, and the same document (another name) from stdin without -f.
    let file = tmp.path().join("session-template.yaml");
    std::fs::write(&file, &seed).expect("write the template");
    let created = ok(&dev.cli(&["sesstpl", "create", "-f", file.to_str().expect("utf-8 path")]));
    assert!(created.starts_with("session template 'template1234' created (version example-tag@"), "{created}");
    assert!(created.ends_with("; start it with: corral start-template template1234\n"), "{created}");
    let piped = seed.replace("name: template1234", "name: fromstdin");
    let out = ok(&dev.cli_stdin(&["sesstpl", "create"], &piped));
    assert!(out.starts_with("session template 'fromstdin' created"), "{out}");
    let dup = fails(&dev.cli(&["sesstpl", "create", "-f", file.to_str().expect("utf-8 path")]));
    assert!(dup.starts_with("error: template 'template1234' already exists"), "{dup}");

    let list = ok(&dev.cli(&["sesstpl", "list"]));
    let header = list.lines().next().expect("a header");
    assert_eq!(header.split_whitespace().collect::<Vec<_>>(), ["ID", "TAG", "TYPE", "IMAGE", "OWNER", "UPDATED"]);
    for id in ["template1234", "fromstdin"] {
        let row = list.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_else(|| panic!("{id}:\n{list}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[1..4], ["example-tag", "interactive", "corral-test/busybox"], "{row}");
        assert!(row.ends_with(" ago"), "{row}");
        assert_eq!(header.find("IMAGE"), row.find("corral-test/busybox"), "columns line up:\n{list}");
    }
    let ids: Vec<String> = json_of(&dev.cli(&["sesstpl", "list", "--json"]))
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(ids, ["fromstdin", "template1234"]);

    // YAML by default, in the normalised form; fed back unchanged it is the same template.
    let yaml = ok(&dev.cli(&["sesstpl", "get", "template1234"]));
    let expected =
        ["kind: task_template", "image: corral-test/busybox", "MYCONFIG: XXX", "destination_dir: /home/work/baiagent"];
    for line in expected {
        assert!(yaml.contains(line), "{line} in:\n{yaml}");
    }
    let before = json_of(&dev.cli(&["sesstpl", "get", "template1234", "--json"]));
    let fetched = tmp.path().join("fetched.yaml");
    std::fs::write(&fetched, &yaml).expect("write the fetched YAML");
    let updated = ok(&dev.cli(&["sesstpl", "update", "template1234", "-f", fetched.to_str().expect("utf-8 path")]));
    assert!(updated.starts_with("session template 'template1234' updated (version example-tag@"), "{updated}");
    let after = json_of(&dev.cli(&["sesstpl", "get", "template1234", "--json"]));
    assert_eq!(after["template"], before["template"], "the YAML round trip keeps the document");

    // An update from stdin (`-f -`) changes it.
    let changed = yaml.replace("MYCONFIG: XXX", "MYCONFIG: YYY");
    ok(&dev.cli_stdin(&["sesstpl", "update", "template1234", "-f", "-"], &changed));
    let now = json_of(&dev.cli(&["sesstpl", "get", "template1234", "--json"]));
    assert_eq!(now["template"]["spec"]["kernel"]["environ"]["MYCONFIG"], "YYY");

    // Started with an extra variable: AVAILABLE; the container sees both variables and the
    // repository cloned at the pinned commit.
    let args =
        ["start-template", "template1234", "--pod-id", "sess1", "--env", "EXTRA=yes", "--wait", "--timeout", "90s"];
    let started = dev.cli(&args);
    let progress = ok(&started);
    assert!(progress.starts_with("sess1: ") && progress.contains("AVAILABLE ("), "{progress}");
    let logs = eventually("the session's environment in its logs", Duration::from_secs(30), || {
        let out = ok(&dev.cli(&["pods", "logs", "sess1"]));
        out.contains("REPO ").then_some(out)
    });
    assert!(logs.contains("MYCONFIG=YYY EXTRA=yes\nREPO first version\n"), "{logs}");
    let pod = json_of(&dev.cli(&["pods", "get", "sess1", "--json"]));
    assert_eq!(pod["environment_variables"], serde_json::json!({"EXTRA": "yes", "MYCONFIG": "YYY"}));
    assert_eq!(pod["image"], "corral-test/busybox");

    // Without --wait: just the pod id on stdout; a removed variable is gone from the pod.
    let quick = dev.cli(&["start-template", "template1234", "--pod-id", "sess2", "--unset-env", "MYCONFIG"]);
    assert_eq!(ok(&quick), "sess2\n");
    assert!(stderr(&quick).contains("follow it with: corral pods get sess2"), "{}", stderr(&quick));
    let pod = json_of(&dev.cli(&["pods", "get", "sess2", "--json"]));
    assert_eq!(pod["environment_variables"], serde_json::json!({}), "{pod}");
    ok(&dev.cli(&["pods", "delete", "sess1", "sess2"]));

    // A bad document: exit 1, every problem on its own line with its path; nothing stored.
    let bad = "api_version: v1\nkind: podTemplate\nextra: 1\nmetadata: {name: badone}\nspec:\n  kernel:\n    \
               run: {startup: a, startupCommand: b}\n  resources: {cpu: lots}\n";
    let err = fails(&dev.cli_stdin(&["sesstpl", "create"], bad));
    // The headline counts the problems; each follows on its own line, with its path.
    let headline = err.lines().next().expect("an error line");
    let count: usize = headline
        .strip_prefix("error: session template is invalid: ")
        .and_then(|rest| rest.strip_suffix(" problems"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected headline:\n{err}"));
    assert_eq!(err.lines().filter(|l| l.starts_with("  - ")).count(), count, "{err}");
    for path in ["kind", "extra", "spec.kernel.image", "spec.kernel.run.startupCommand", "spec.resources.cpu"] {
        assert!(err.contains(&format!("\n  - {path}: ")), "{path} in:\n{err}");
    }
    let err = fails(&dev.cli(&["sesstpl", "get", "badone"]));
    assert_eq!(err, "error: no session template 'badone'\n");
    // A bad override: the server's problem with its path.
    let err = fails(&dev.cli(&["start-template", "template1234", "--set", "spec.resources.cpu=lots"]));
    assert!(err.contains("\n  - overrides.spec.resources.cpu: "), "{err}");

    let deleted = ok(&dev.cli(&["sesstpl", "delete", "fromstdin"]));
    assert_eq!(deleted, "session template 'fromstdin' deleted\n");
    for args in
        [&["sesstpl", "get", "fromstdin"][..], &["start-template", "fromstdin"], &["sesstpl", "delete", "fromstdin"]]
    {
        assert_eq!(fails(&dev.cli(args)), "error: no session template 'fromstdin'\n", "{args:?}");
    }
    let status = dev.terminate();
    assert!(status.success(), "clean shutdown: {status}\nlog:\n{}", dev.log_text());
}

#[test]
fn batch_sessions_end_with_their_exit_code() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ns = namespace();
    let _cleanup = DockerCleanup(ns.clone());
    let dev = docker_dev(tmp.path(), &ns, &[]);
    let batch = |name: &str, script: &str, extra: &str| {
        format!(
            "api_version: v1\nkind: taskTemplate\nmetadata: {{name: {name}}}\nspec:\n  type: batch\n{extra}  kernel:\n    \
             image: corral-test/busybox\n    run: {{startup_command: '{script}'}}\n"
        )
    };
    ok(&dev.cli_stdin(&["sesstpl", "create"], &batch("okbatch", "echo batch done", "")));
    ok(&dev.cli_stdin(&["sesstpl", "create", "-f", "-"], &batch("failbatch", "echo failing; exit 3", "")));
    ok(&dev.cli_stdin(&["sesstpl", "create"], &batch("slowbatch", "sleep 60", "  batch_timeout: 1\n")));
    let list = ok(&dev.cli(&["sesstpl", "list"]));
    assert!(list.lines().any(|l| l.starts_with("okbatch ") && l.contains(" batch ")), "{list}");

    let done = dev.cli(&["start-template", "okbatch", "--pod-id", "okrun", "--wait", "--timeout", "90s"]);
    let out = ok(&done);
    assert!(out.contains("COMPLETE ("), "{out}");
    assert!(out.ends_with("okrun: finished, exit code 0\n"), "{out}");

    let failed = dev.cli(&["start-template", "failbatch", "--pod-id", "failrun", "--wait", "--timeout", "90s"]);
    let err = fails(&failed);
    // Warnings about the template may come first; the error names the pod, exit code and reason.
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{err}"));
    assert!(line.starts_with("error: batch pod 'failrun' failed ("), "{err}");
    assert!(line.contains("exit code 3, reason: failed"), "{err}");
    let shown = ok(&dev.cli(&["pods", "get", "failrun"]));
    assert!(shown.contains("\nTYPE:      batch\n") && shown.contains("\nEXIT_CODE: 3\n"), "{shown}");
    assert!(shown.contains("\nREASON:    failed\n"), "{shown}");

    // Past its batch_timeout: the timeout is the reason given.
    let slow = dev.cli(&["start-template", "slowbatch", "--pod-id", "slowrun", "--wait", "--timeout", "90s"]);
    let err = fails(&slow);
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{err}"));
    assert!(line.starts_with("error: batch pod 'slowrun' failed (") && line.contains("reason: timeout"), "{err}");

    // --json: the finished pod on stdout, progress on stderr, and still exit 1.
    let failed = dev.cli(&["start-template", "failbatch", "--pod-id", "failjson", "--wait", "--json"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let pod: Value = serde_json::from_str(&stdout(&failed)).expect("the pod as JSON");
    assert_eq!(pod["status_container"]["exit_code"], 3, "{pod}");
    assert!(stderr(&failed).contains("failjson: "), "progress goes to stderr: {}", stderr(&failed));
    ok(&dev.cli(&["pods", "delete", "okrun", "failrun", "failjson", "slowrun"]));
}

fn corral(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CORRAL_URL")
        .env_remove("CORRAL_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run corral")
}

#[test]
fn every_new_command_teaches_with_an_example() {
    let top = stdout(&corral(&["--help"]));
    for cmd in ["sesstpl", "start-template", "secret"] {
        assert!(top.lines().any(|l| l.trim_start().starts_with(cmd) && l.len() > cmd.len() + 10), "{cmd}:\n{top}");
        let help = corral(&[cmd, "--help"]);
        assert!(help.status.success(), "{cmd}");
        let text = stdout(&help);
        assert!(text.contains("Examples:\n") && text.contains(&format!("\n  corral {cmd} ")), "{cmd}:\n{text}");
    }
    for (cmd, subs) in
        [("sesstpl", &["create", "update", "list", "get", "delete"][..]), ("secret", &["set", "list", "delete"])]
    {
        for sub in subs {
            let text = stdout(&corral(&[cmd, sub, "--help"]));
            assert!(text.contains(&format!("corral {cmd} {sub}")), "{cmd} {sub} --help has no example:\n{text}");
        }
    }
    let start = stdout(&corral(&["start-template", "--help"]));
    for flag in ["--pod-id", "--env", "--unset-env", "--set", "--wait", "--timeout"] {
        assert!(start.contains(flag), "{flag}:\n{start}");
    }
}

#[test]
fn usage_and_input_errors_before_any_request() {
    for args in [
        &["sesstpl", "get"][..],
        &["sesstpl", "update"],
        &["sesstpl", "delete"],
        &["start-template"],
        &["start-template", "t", "--env", "NOEQUALS"],
        &["start-template", "t", "--set", "spec..cpu=1"],
        &["start-template", "t", "--timeout", "5s"],
        &["secret", "set", "name", "the-value-as-an-argument"],
    ] {
        let out = corral(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // No -f and nothing piped (stdin is empty here): said plainly, nothing sent.
    let empty = corral(&["sesstpl", "create", "--url", "http://127.0.0.1:1"]);
    assert_eq!(
        stderr(&empty),
        "error: stdin is empty: expected a session template (kind: taskTemplate) in YAML or JSON\n"
    );
    let missing = corral(&["sesstpl", "update", "t", "-f", "/nonexistent/t.yaml"]);
    assert!(stderr(&missing).starts_with("error: cannot read /nonexistent/t.yaml"), "{}", stderr(&missing));
    let conflict = corral(&["start-template", "t", "--set", "spec.kernel.environ=null", "--env", "A=1"]);
    assert_eq!(conflict.status.code(), Some(1));
    assert!(stderr(&conflict).contains("'spec.kernel.environ' is already set"), "{}", stderr(&conflict));

    let url = format!("http://127.0.0.1:{}", free_port());
    for args in [&["sesstpl", "list"][..], &["start-template", "t"], &["secret", "list"]] {
        let out = corral(&[args, &["--url", url.as_str()]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.starts_with(&format!("error: cannot reach corral at {url}: connection refused\n")), "{err}");
        assert!(err.contains("hint: is `corral dev` running?"), "{err}");
    }
}
