use std::collections::BTreeMap;

use corral_model::session::{SessionRun, SessionType};
use corral_model::{PodKey, PodSpec, StatusRequested};

use super::*;

pub(crate) fn desired(session: Option<SessionRun>) -> Desired {
    Desired {
        tenant: "t".into(),
        owner: "o".into(),
        spec: PodSpec { pod_id: "job".into(), image: "img".into(), session, ..PodSpec::default() },
        status_requested: StatusRequested::On,
        generation: 1,
        deleted: false,
        creation_ts: 0,
        update_ts: 0,
    }
}

pub(crate) fn with_bootstrap(script: &str) -> Desired {
    desired(Some(SessionRun { bootstrap: Some(script.into()), ..SessionRun::default() }))
}

pub(crate) fn spec(command: Option<&[&str]>, args: Option<&[&str]>) -> ContainerSpec {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ContainerSpec {
        pod: PodKey::new("t", "job"),
        generation: 1,
        instance: 1,
        image: "img".into(),
        command: command.map(words),
        args: args.map(words),
        env: BTreeMap::new(),
        cpu_limit_millis: 1000,
        mem_limit_mib: 256,
        pids_limit: 64,
        ports: Vec::new(),
        files: Vec::new(),
    }
}

#[test]
fn wrap_table() {
    let batch = desired(Some(SessionRun { session_type: SessionType::Batch, ..SessionRun::default() }));
    let rows: [(&str, Desired, ContainerSpec, Option<Vec<&str>>); 5] = [
        ("no session: untouched, no shell", desired(None), spec(Some(&["app", "-x"]), None), Some(vec!["app", "-x"])),
        ("a session without a script: untouched", batch, spec(Some(&["app"]), None), Some(vec!["app"])),
        (
            "script and command: wrapped",
            with_bootstrap("echo hi"),
            spec(Some(&["app", "-x"]), Some(&["arg"])),
            Some(vec!["/bin/sh", "-c", WRAPPER, ARGV0, "echo hi", "app", "-x"]),
        ),
        ("no command: nothing to wrap", with_bootstrap("echo hi"), spec(None, Some(&["arg"])), None),
        ("empty command: nothing to wrap", with_bootstrap("echo hi"), spec(Some(&[]), None), Some(vec![])),
    ];
    for (name, d, mut s, want) in rows {
        let args_before = s.args.clone();
        wrap(&d, &mut s);
        let want: Option<Vec<String>> = want.map(|w| w.into_iter().map(String::from).collect());
        assert_eq!(s.command, want, "{name}");
        assert_eq!(s.args, args_before, "{name}: arguments are never touched");
    }
}

/// Runs a wrapped spec's argv (command then arguments, as both runtimes do) on this host.
fn run(s: &ContainerSpec) -> std::process::Output {
    let argv: Vec<&String> = s.command.iter().flatten().chain(s.args.iter().flatten()).collect();
    std::process::Command::new(argv[0]).args(&argv[1..]).output().expect("/bin/sh runs")
}

#[test]
fn the_script_runs_first_and_the_command_gets_its_arguments_verbatim() {
    let d = with_bootstrap("echo bootstrapping; touch /dev/null && echo done with \"$0\"");
    let mut s = spec(Some(&["sh", "-c", r#"printf '%s|' "$@"; echo"#, "cmd"]), Some(&["a b", "it's", "$HOME", ""]));
    wrap(&d, &mut s);
    let out = run(&s);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "bootstrapping\ndone with corral-bootstrap\na b|it's|$HOME||\n");
}

#[test]
fn a_failing_script_stops_before_the_command_with_its_code() {
    let d = with_bootstrap("echo trying; echo broken >&2; exit 4");
    let mut s = spec(Some(&["echo", "the command ran"]), None);
    wrap(&d, &mut s);
    let out = run(&s);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "trying\n", "the command must not run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(is_failure_tail(stderr.as_bytes(), 4), "{stderr}");
    // The command's own failure is not the script's.
    let mut s = spec(Some(&["sh", "-c", "exit 5"]), None);
    wrap(&with_bootstrap("true"), &mut s);
    let out = run(&s);
    assert_eq!(out.status.code(), Some(5));
    assert!(!is_failure_tail(&out.stderr, 5));
}

#[test]
fn failure_tail_table() {
    let line = |code: i64| format!("{FAILED_LINE} {code}");
    let rows: [(&str, String, i64, bool); 7] = [
        ("the line, last", format!("out\n{}\n", line(3)), 3, true),
        ("the line with CRLF", format!("{}\r\n", line(3)), 3, true),
        ("another code", format!("{}\n", line(3)), 4, false),
        ("followed by the script's other stream", format!("{}\nmore output\n", line(3)), 3, true),
        ("a prefix of the line", format!("{FAILED_LINE}\n"), 3, false),
        ("a longer code", format!("{}\n", line(31)), 3, false),
        ("nothing", String::new(), 3, false),
    ];
    for (name, text, code, want) in rows {
        assert_eq!(is_failure_tail(text.as_bytes(), code), want, "{name}");
    }
}
