//! Docker runtime against the local engine, with the `corral-test/busybox` image
//! (scripts/build-test-image.sh).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{KillContainerOptionsBuilder, ListContainersOptionsBuilder};
use common::{TEST_IMAGE, connects, eventually, next_matching, read_output, spec, unique};
use corral_runtime::docker::{DockerOptions, DockerRuntime, LABEL_NAMESPACE};
use corral_runtime::{ContainerState, Runtime, RuntimeError, RuntimeEvent};

/// Runtime on a fresh namespace; on drop (also when a test fails) force-removes every
/// container of that namespace.
struct Scoped {
    rt: DockerRuntime,
}

impl Scoped {
    async fn new() -> Self {
        let rt =
            DockerRuntime::connect(DockerOptions::new(unique("corral-test-"))).await.expect("docker engine reachable");
        let image = rt.client().inspect_image(TEST_IMAGE).await;
        assert!(image.is_ok(), "{TEST_IMAGE} missing: run scripts/build-test-image.sh");
        Self { rt }
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        let filter = format!("label={LABEL_NAMESPACE}={}", self.rt.namespace());
        let Ok(out) = std::process::Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker").args(["rm", "-f"]).args(&ids).output();
        }
    }
}

/// Two deployments on one engine, each with its own namespace, run the same tenant's pod of
/// the same id side by side: the namespace prefixes the container name.
#[tokio::test]
async fn namespaces_sharing_an_engine_run_the_same_pod_id_apart() {
    let (a, b) = (Scoped::new().await, Scoped::new().await);
    let spec = httpd("same-id");
    let (x, y) = tokio::join!(a.rt.spawn(&spec), b.rt.spawn(&spec));
    let (x, y) = (x.expect("spawn in the first namespace"), y.expect("spawn in the second namespace"));
    assert_ne!(x.id, y.id);
    assert_eq!(a.rt.container_name(&spec), format!("{}-t-same-id-1", a.rt.namespace()));
    for (rt, info) in [(&a.rt, &x), (&b.rt, &y)] {
        let raw = rt.client().inspect_container(&info.id, None).await.expect("inspect");
        assert_eq!(raw.name.as_deref(), Some(format!("/{}", rt.container_name(&spec)).as_str()));
    }
}

#[tokio::test]
async fn a_namespace_that_cannot_prefix_a_container_name_is_refused() {
    for bad in ["", "-lead", "has space", "a/b", "ünï"] {
        match DockerRuntime::connect(DockerOptions::new(bad)).await {
            Err(RuntimeError::Invalid(why)) => assert!(why.contains("prefixes the names"), "{bad:?}: {why}"),
            other => panic!("namespace {bad:?} must be refused, got {other:?}"),
        }
    }
}

fn httpd(pod: &str) -> corral_runtime::ContainerSpec {
    spec("t", pod, &["httpd", "-f", "-p", "8000", "-h", "/www"], &[("default", 8000)])
}

#[tokio::test]
async fn publishes_the_port_on_loopback_with_limits_and_hardening() {
    let s = Scoped::new().await;
    let info = s.rt.spawn(&httpd("web")).await.expect("spawn");
    assert_eq!(info.state, ContainerState::Running);
    assert!(info.started_at.is_some());
    let addr = info.ports.get("default").expect("default port published").clone();
    assert_eq!(addr.host, "127.0.0.1");
    assert!(connects(&addr.host, addr.port, Duration::from_secs(10)).await, "httpd answers on {addr:?}");

    let raw = s.rt.client().inspect_container(&info.id, None).await.expect("inspect");
    let hc = raw.host_config.expect("host config");
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.memory, Some(64 * 1024 * 1024));
    assert_eq!(hc.memory_swap, Some(64 * 1024 * 1024));
    assert_eq!(hc.pids_limit, Some(64));
    assert_eq!(hc.privileged, Some(false));
    assert!(hc.security_opt.unwrap_or_default().iter().any(|o| o == "no-new-privileges"));
    assert!(hc.binds.unwrap_or_default().is_empty());
    assert!(raw.mounts.unwrap_or_default().is_empty());
    assert_ne!(hc.network_mode.as_deref(), Some("host"));

    assert_eq!(s.rt.inspect(&info.id).await.expect("inspect"), Some(info.clone()));
    s.rt.remove(&info.id).await.expect("remove");
    assert_eq!(s.rt.inspect(&info.id).await.expect("inspect"), None);
    s.rt.remove(&info.id).await.expect("removing again is fine");
}

#[tokio::test]
async fn spawn_is_idempotent_even_when_concurrent() {
    let s = Scoped::new().await;
    let spec = httpd("twice");
    let (a, b) = tokio::join!(s.rt.spawn(&spec), s.rt.spawn(&spec));
    let (a, b) = (a.expect("spawn a"), b.expect("spawn b"));
    assert_eq!(a.id, b.id);
    let again = s.rt.spawn(&spec).await.expect("spawn again");
    assert_eq!(again.id, a.id);

    let name = s.rt.container_name(&spec);
    let filters = HashMap::from([("name", vec![name.clone()])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let found = s.rt.client().list_containers(Some(options)).await.expect("list");
    assert_eq!(found.len(), 1, "exactly one container named {name}");
    assert_eq!(s.rt.list().await.expect("list").len(), 1);

    // An exited container is started again by spawn.
    s.rt.client().kill_container(&a.id, None::<bollard::query_parameters::KillContainerOptions>).await.expect("kill");
    let exited = eventually(Duration::from_secs(5), || async {
        let st = s.rt.inspect(&a.id).await.expect("inspect")?.state;
        matches!(st, ContainerState::Exited(_)).then_some(st)
    })
    .await;
    assert_eq!(exited, Some(ContainerState::Exited(Some(137))));
    let restarted = s.rt.spawn(&spec).await.expect("spawn restarts");
    assert_eq!((restarted.id, restarted.state), (a.id, ContainerState::Running));
}

#[tokio::test]
async fn kill_is_reported_as_an_exit_with_code_137() {
    let s = Scoped::new().await;
    let mut events = s.rt.events().await.expect("events");
    let info = s.rt.spawn(&spec("t", "victim", &["sleep", "300"], &[])).await.expect("spawn");
    let started = next_matching(&mut events, Duration::from_secs(5), |_| true).await;
    assert_eq!(started, Some(RuntimeEvent::Started { id: info.id.clone(), pod: info.pod.clone() }));

    let kill = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    s.rt.client().kill_container(&info.id, Some(kill)).await.expect("kill");
    let exited = next_matching(&mut events, Duration::from_secs(2), |e| matches!(e, RuntimeEvent::Exited { .. })).await;
    assert_eq!(
        exited,
        Some(RuntimeEvent::Exited {
            id: info.id.clone(),
            pod: info.pod.clone(),
            exit_code: Some(137),
            reason: "killed (signal 9)".into()
        })
    );

    s.rt.remove(&info.id).await.expect("remove");
    let removed =
        next_matching(&mut events, Duration::from_secs(5), |e| matches!(e, RuntimeEvent::Removed { .. })).await;
    assert_eq!(removed, Some(RuntimeEvent::Removed { id: info.id.clone(), pod: info.pod.clone() }));
}

#[tokio::test]
async fn output_has_stdout_and_stderr() {
    let s = Scoped::new().await;
    let info =
        s.rt.spawn(&spec("t", "talk", &["sh", "-c", "echo hello; echo err >&2; sleep 30"], &[])).await.expect("spawn");
    let done = |t: &str| t.contains("hello") && t.contains("err");
    let text = read_output(s.rt.output(&info.id, true).await.expect("output"), Duration::from_secs(10), done).await;
    assert!(done(&text), "followed output was {text:?}");
    let text =
        read_output(s.rt.output(&info.id, false).await.expect("output"), Duration::from_secs(10), |_| false).await;
    assert!(done(&text), "output was {text:?}");
    assert!(matches!(s.rt.output("corral-no-such-container", false).await, Err(RuntimeError::NotFound(_))));
    s.rt.remove(&info.id).await.expect("remove");
}

#[tokio::test]
async fn a_missing_image_is_reported_not_pulled() {
    let s = Scoped::new().await;
    let mut missing = spec("t", "noimg", &["sh"], &[]);
    missing.image = format!("corral-test/{}", unique("missing-"));
    match s.rt.spawn(&missing).await {
        Err(RuntimeError::ImageNotFound(image)) => assert_eq!(image, missing.image),
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
    assert!(s.rt.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let a = Scoped::new().await;
    let b = Scoped::new().await;
    let mut events_b = b.rt.events().await.expect("events");
    let ia = a.rt.spawn(&spec("t", "pa", &["sleep", "300"], &[])).await.expect("spawn a");
    let ib = b.rt.spawn(&spec("t", "pb", &["sleep", "300"], &[])).await.expect("spawn b");
    assert_eq!(a.rt.list().await.expect("list a").into_iter().map(|i| i.id).collect::<Vec<_>>(), vec![ia.id.clone()]);
    assert_eq!(b.rt.list().await.expect("list b").into_iter().map(|i| i.id).collect::<Vec<_>>(), vec![ib.id.clone()]);
    assert_eq!(a.rt.inspect(&ib.id).await.expect("inspect"), None);
    // b's first event is its own container's start, not a's.
    let first = next_matching(&mut events_b, Duration::from_secs(5), |_| true).await;
    assert_eq!(first, Some(RuntimeEvent::Started { id: ib.id.clone(), pod: ib.pod.clone() }));
    a.rt.ping().await.expect("ping");
}
