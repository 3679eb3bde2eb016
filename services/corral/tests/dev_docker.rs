//! `corral dev` on Docker (the engine on this machine, with the locally built
//! `corral-test/busybox` image): a pod reaches AVAILABLE in a real container, and Docker is
//! what dev picks by itself when the engine answers.

mod dev_support;

use std::time::Duration;

use dev_support::{Dev, DockerCleanup, docker_containers, eventually, ok, pod_id};

fn namespace() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

#[test]
fn a_busybox_pod_becomes_available_in_docker() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ns = namespace();
    let _cleanup = DockerCleanup(ns.clone());
    let mut dev =
        Dev::start(&tmp.path().join("data"), &["--runtime", "docker"], &[("CORRAL__RUNTIME__NAMESPACE", ns.as_str())]);
    assert!(dev.banner.contains("runtime:  docker (chosen with --runtime)"), "{}", dev.banner);
    assert!(dev.banner.contains("corral-test/busybox"), "the docker example uses the local image:\n{}", dev.banner);

    let id = pod_id("box");
    let args = ["pods", "create", "--wait", "--timeout", "90s", "--id", &id, "--image", "corral-test/busybox"];
    let progress =
        ok(&dev.cli(&[&args[..], &["--port", "8000", "--", "httpd", "-f", "-p", "8000", "-h", "/www"]].concat()));
    assert!(progress.contains("AVAILABLE ("), "{progress}");
    assert_eq!(docker_containers(&ns, false).len(), 1, "one running container for the pod");
    let got: serde_json::Value =
        serde_json::from_str(&ok(&dev.cli(&["pods", "get", &id, "--json"]))).expect("get --json is JSON");
    assert_eq!(got["status"], "AVAILABLE");

    ok(&dev.cli(&["pods", "delete", &id]));
    eventually("the pod's container to be removed", Duration::from_secs(30), || {
        docker_containers(&ns, true).is_empty().then_some(())
    });
    let status = dev.terminate();
    assert!(status.success(), "clean shutdown: {status}\nlog:\n{}", dev.log_text());
}

#[test]
fn dev_chooses_docker_when_the_engine_answers() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ns = namespace();
    let _cleanup = DockerCleanup(ns.clone());
    let mut dev = Dev::start(&tmp.path().join("data"), &[], &[("CORRAL__RUNTIME__NAMESPACE", ns.as_str())]);
    assert!(dev.banner.contains("runtime:  docker (a Docker engine answered)"), "{}", dev.banner);
    let status = dev.terminate();
    assert!(status.success(), "clean shutdown: {status}");
}
