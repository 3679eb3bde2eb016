//! The official Tapis Python SDK (tapipy), unchanged, drives Corral: a whole pod lifecycle,
//! then templates, tags, derived pods, permissions and credentials. `scripts/test.sh`
//! prepares a virtualenv with tapipy and points CORRAL_TAPIPY_PYTHON at its interpreter;
//! without it these tests fail rather than skip.

mod common;

use common::{Spawners, Stack};

/// Runs `tests/tapipy/{script}` against a fresh stack and asserts it ends with `ok_line`.
async fn run_script(script: &str, ok_line: &str) {
    let python = std::env::var("CORRAL_TAPIPY_PYTHON")
        .expect("CORRAL_TAPIPY_PYTHON must name a python with tapipy installed (scripts/test.sh sets it up)");
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tapipy").join(script);
    let out = tokio::process::Command::new(&python)
        .arg(&path)
        .env("CORRAL_URL", &stack.base)
        .env("CORRAL_TOKEN", &stack.token)
        .env("CORRAL_OTHER_USER", "bob")
        .env("CORRAL_TOKEN_OTHER", stack.token_for("dev", "bob"))
        .output()
        .await
        .expect("run the tapipy script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tapipy {script} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(ok_line), "{stdout}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tapipy_drives_a_pod_lifecycle() {
    run_script("smoke.py", "tapipy smoke: ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tapipy_drives_templates_permissions_and_credentials() {
    run_script("templates_perms.py", "tapipy templates and permissions: ok").await;
}
