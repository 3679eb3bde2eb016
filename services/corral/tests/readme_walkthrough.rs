//! The README, run as a reader would run it. `corral dev` is started with the README's run
//! command, then every ```sh block of "Five minutes with Corral" is pasted into one bash
//! session: on Docker (the engine here answers), and with Docker unavailable (DOCKER_HOST
//! points at a socket nobody serves), where `corral dev` falls back to local processes. The
//! "by hand" section runs the services against the RabbitMQ and Redis of this machine.
//!
//! What differs from a reader's terminal, and why:
//! - `cargo run --release --bin corral --` is this test's build of the same binary;
//! - 127.0.0.1:8080 is a free port (tests run in parallel), given to the servers through
//!   CORRAL_HTTP_ADDR, as a reader whose 8080 is taken would;
//! - the `export CORRAL_TOKEN=…` line is the one `corral dev` printed (the README says to
//!   paste it), and CORRAL_DATA_DIR and namespaces isolate each run;
//! - commands listed in `readme_support::COVERED_ELSEWHERE` are run by the scripts named there.

mod dev_support;
mod readme_support;

use std::path::Path;
use std::time::Duration;

use corral_runtime::{ContainerState, Runtime as _};
use dev_support::{DockerCleanup, ProcessCleanup, block_on, eventually, free_port, ok, running_processes};
use readme_support::server::DevServer;
use readme_support::session::Session;
use readme_support::{
    BY_HAND, DEFAULT_AMQP_URL, DEFAULT_REDIS_URL, DEV_COMMAND, TWO_COMMANDS, WALKTHROUGH, commands, readme, repo_root,
    runnable, sh_blocks,
};

const BIN: &str = env!("CARGO_BIN_EXE_corral");
const BLOCK_WITHIN: Duration = Duration::from_secs(120);
const STOP_WITHIN: Duration = Duration::from_secs(30);

fn namespace() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The README's run command, made runnable.
fn dev_command(md: &str, addr: &str) -> String {
    let found = sh_blocks(md, TWO_COMMANDS).iter().any(|b| commands(&b.text).iter().any(|c| c.key == DEV_COMMAND));
    assert!(found, "README.md has no `{DEV_COMMAND}` under {TWO_COMMANDS:?}");
    assert!(!BIN.contains(['\'', '"', ' ']), "the binary path must need no quoting: {BIN}");
    runnable(DEV_COMMAND, BIN, addr).trim().to_owned()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Docker,
    Unavailable,
}

/// Pods of the dev server that run, by pod id, on the runtime it chose.
fn running_pods(engine: Engine, ns: &str, data: &Path) -> Vec<String> {
    match engine {
        Engine::Docker => {
            let ns = ns.to_owned();
            block_on(async move {
                let rt = corral_runtime::docker::DockerRuntime::connect(corral_runtime::docker::DockerOptions::new(ns))
                    .await
                    .expect("docker must be running");
                let all = rt.list().await.expect("list containers");
                all.into_iter().filter(|c| c.state == ContainerState::Running).map(|c| c.pod.pod_id).collect()
            })
        }
        Engine::Unavailable => running_processes(data).into_iter().map(|c| c.pod.pod_id).collect(),
    }
}

fn walkthrough(engine: Engine) {
    let md = readme();
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    let ns = namespace();
    let no_docker = format!("unix://{}", tmp.path().join("no-docker.sock").display());
    let data_env = data.display().to_string();
    let mut env = vec![("CORRAL_DATA_DIR", data_env.as_str()), ("CORRAL_HTTP_ADDR", addr.as_str()), ("USER", "alice")];
    let (_docker_cleanup, _process_cleanup) = match engine {
        Engine::Docker => {
            env.push(("CORRAL__RUNTIME__NAMESPACE", ns.as_str()));
            (Some(DockerCleanup(ns.clone())), None)
        }
        Engine::Unavailable => {
            env.push(("DOCKER_HOST", no_docker.as_str()));
            (None, Some(ProcessCleanup(data.clone())))
        }
    };
    let mut dev =
        DevServer::start(&dev_command(&md, &addr), &env, &tmp.path().join("dev.log"), Duration::from_secs(60));
    let expected_runtime = match engine {
        Engine::Docker => "runtime:  docker (a Docker engine answered)",
        Engine::Unavailable => "runtime:  process (no Docker engine answered; pods run as local processes)",
    };
    assert!(dev.banner.contains(expected_runtime), "{engine:?}: {}", dev.banner);

    let (url_line, token_line) = (dev.export_line("CORRAL_URL"), dev.export_line("CORRAL_TOKEN"));
    let mut session = Session::start(tmp.path(), &repo_root(), &[("USER", "alice")]);
    let (mut pasted_url, mut pasted_token, mut created) = (false, false, false);
    let mut output = String::new();
    for block in sh_blocks(&md, WALKTHROUGH) {
        let mut script = String::new();
        for line in runnable(&block.text, BIN, &addr).lines() {
            let line = if line.trim_start().starts_with("export CORRAL_TOKEN=") {
                pasted_token = true;
                token_line.as_str()
            } else {
                line
            };
            if line.trim_start().starts_with("export CORRAL_URL=") {
                // The README's line is the banner's, as a reader would paste it.
                assert_eq!(line.split_whitespace().nth(1), url_line.split_whitespace().nth(1), "{}", dev.banner);
                pasted_url = true;
            }
            script.push_str(line);
            script.push('\n');
        }
        output.push_str(&session.run(&script, BLOCK_WITHIN));
        if block.text.contains("-X POST") {
            // The acceptance: the README's curl gives an AVAILABLE pod, on this runtime.
            created = true;
            let cli = |args: &[&str]| {
                std::process::Command::new(BIN)
                    .args(args)
                    .env("CORRAL_URL", format!("http://{addr}"))
                    .env("CORRAL_TOKEN", token_line.trim_start_matches("export CORRAL_TOKEN="))
                    .output()
                    .expect("run the CLI")
            };
            let pod: serde_json::Value =
                serde_json::from_str(&ok(&cli(&["pods", "get", "hello", "--json"]))).expect("get --json is JSON");
            assert_eq!(pod["status"], "AVAILABLE", "{pod}");
            let running = running_pods(engine, &ns, &data);
            assert_eq!(running, ["hello"], "{engine:?}: one container/process runs the pod");
        }
    }
    assert!(pasted_url && pasted_token, "the walk-through no longer sets CORRAL_URL and CORRAL_TOKEN");
    assert!(created, "the walk-through no longer creates a pod with curl -X POST");

    let lines: Vec<&str> = output.lines().collect();
    let has = |prefix: &str, part: &str| lines.iter().any(|l| l.starts_with(prefix) && l.contains(part));
    assert!(has("STATUS:", "AVAILABLE"), "`corral pods get hello` shows it AVAILABLE:\n{output}");
    assert!(has("hello: ", "→ STOPPED ("), "stop --wait:\n{output}");
    assert!(has("hello: ", "→ AVAILABLE ("), "start --wait:\n{output}");
    assert!(has("web: ", "→ AVAILABLE ("), "create --wait:\n{output}");
    // curl prints no final newline, so a deletion message may share a line with JSON.
    assert!(output.contains("pod 'hello' deleted\n") && output.contains("pod 'web' deleted\n"), "{output}");
    let status = session.finish(STOP_WITHIN);
    assert!(status.success(), "the session ended with {status}:\n{}", session.transcript());

    eventually("the deleted pods' containers to go", Duration::from_secs(30), || {
        running_pods(engine, &ns, &data).is_empty().then_some(())
    });
    let status = dev.terminate(STOP_WITHIN);
    assert!(status.success(), "corral dev stops cleanly on SIGTERM: {status}\nlog:\n{}", dev.log_text());
}

#[test]
fn the_walkthrough_gives_an_available_pod_on_docker() {
    walkthrough(Engine::Docker);
}

#[test]
fn the_walkthrough_gives_an_available_pod_on_processes_without_docker() {
    walkthrough(Engine::Unavailable);
}

#[test]
fn the_services_run_by_hand_against_rabbitmq_and_redis() {
    let md = readme();
    let tmp = tempfile::tempdir().expect("temp dir");
    let addr = format!("127.0.0.1:{}", free_port());
    let ns = namespace();
    let _cleanup = DockerCleanup(ns.clone());
    let amqp = std::env::var("CORRAL_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.into());
    let redis = std::env::var("CORRAL_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into());
    // What a reader's machine would differ in: the gateway's port, and namespaces that keep
    // this run apart from the other tests on the same servers and engine.
    let env = [
        ("USER", "alice"),
        ("CORRAL_HTTP_ADDR", addr.as_str()),
        ("CORRAL__AMQP__NAMESPACE", ns.as_str()),
        ("CORRAL__REDIS__NAMESPACE", ns.as_str()),
        ("CORRAL__RUNTIME__NAMESPACE", ns.as_str()),
    ];
    let mut session = Session::start(tmp.path(), &repo_root(), &env);
    let blocks = sh_blocks(&md, BY_HAND);
    let mut output = String::new();
    for block in &blocks {
        let script =
            runnable(&block.text, BIN, &addr).replace(DEFAULT_AMQP_URL, &amqp).replace(DEFAULT_REDIS_URL, &redis);
        output.push_str(&session.run(&script, BLOCK_WITHIN));
    }
    let started = blocks.iter().map(|b| b.text.matches("corral serve ").count()).sum::<usize>();
    assert!(started >= 5, "the by-hand section starts the five services:\n{output}");
    assert!(
        output.lines().any(|l| l.starts_with("demo: ") && l.contains("AVAILABLE (")),
        "the pod became AVAILABLE:\n{output}"
    );
    assert!(output.contains("pod 'demo' deleted\n"), "{output}");
    // The section ends by stopping the services; they exit on SIGTERM.
    let status = session.finish(STOP_WITHIN);
    assert!(status.success(), "the session ended with {status}:\n{}", session.transcript());
    eventually("the deleted pod's container to go", Duration::from_secs(30), || {
        dev_support::docker_containers(&ns, false).is_empty().then_some(())
    });
}
