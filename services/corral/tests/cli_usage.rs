//! The `corral` CLI without a server: help that teaches, usage errors (exit 2), input errors
//! and an unreachable server (exit 1, with a hint).

mod dev_support;

use std::process::{Command, Output, Stdio};

use dev_support::{BIN, free_port, stderr, stdout};

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
fn every_command_has_an_about_line_and_an_example() {
    let top = stdout(&corral(&["--help"]));
    for cmd in ["dev", "pods", "token", "serve"] {
        assert!(top.lines().any(|l| l.trim_start().starts_with(cmd) && l.len() > cmd.len() + 10), "{cmd}:\n{top}");
        let help = corral(&[cmd, "--help"]);
        assert!(help.status.success());
        let text = stdout(&help);
        assert!(text.contains("Examples:\n") && text.contains(&format!("\n  corral {cmd}")), "{cmd} --help:\n{text}");
    }
    let pods = stdout(&corral(&["pods", "--help"]));
    for sub in ["create", "list", "get", "logs", "start", "stop", "restart", "delete"] {
        assert!(pods.lines().any(|l| l.trim_start().starts_with(sub) && l.len() > sub.len() + 10), "{sub}:\n{pods}");
        let help = corral(&["pods", sub, "--help"]);
        assert!(help.status.success());
        let text = stdout(&help);
        assert!(text.contains(&format!("corral pods {sub}")), "pods {sub} --help has no example:\n{text}");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["pods", "get"][..],
        &["pods", "frobnicate"],
        &["pods", "create", "--env", "NOEQUALS"],
        &["pods", "create", "--timeout", "5s"],
        &["pods", "create", "-f", "pod.json", "--id", "abc"],
        &["pods", "start", "abc", "--wait", "--timeout", "soon"],
    ] {
        let out = corral(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn an_unreachable_server_gets_a_hint() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = corral(&["pods", "list", "--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("error: cannot reach corral at {url}: connection refused\n")), "{err}");
    assert!(err.contains("hint: is `corral dev` running?"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn bad_input_is_reported_before_any_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pod.json");
    std::fs::write(&file, "{ not json").expect("write");
    let out = corral(&["pods", "create", "-f", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not valid JSON"), "{}", stderr(&out));

    let missing = corral(&["pods", "create", "-f", "/nonexistent/pod.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).starts_with("error: cannot read /nonexistent/pod.json"), "{}", stderr(&missing));

    let url = corral(&["pods", "list", "--url", "ftp://example"]);
    assert_eq!(url.status.code(), Some(1));
    assert!(stderr(&url).contains("use http:// or https://"), "{}", stderr(&url));
}
