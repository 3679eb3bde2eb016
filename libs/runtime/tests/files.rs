//! File trees placed into containers before they start: Docker (upload into the created
//! container, owned by the image's user) and the process runtime (copied, re-rooted under
//! `$CORRAL_ROOT`). Docker tests need the `corral-test/busybox` image
//! (scripts/build-test-image.sh).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{TEST_IMAGE, eventually, read_output, spec, unique};
use corral_runtime::docker::{DockerOptions, DockerRuntime, LABEL_NAMESPACE};
use corral_runtime::process::{ProcessOptions, ProcessRuntime};
use corral_runtime::{ContainerSpec, ContainerState, FileTree, Runtime, RuntimeError};

/// A temporary directory removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small tree: a file, a nested file, an executable script and a symlink.
fn tree() -> Temp {
    let t = Temp::new("corral-files-src-");
    std::fs::write(t.0.join("hello.txt"), "hello from the tree\n").expect("file");
    std::fs::create_dir_all(t.0.join("sub/deeper")).expect("dirs");
    std::fs::write(t.0.join("sub/deeper/note.txt"), "nested\n").expect("nested");
    std::fs::write(t.0.join("run.sh"), "#!/bin/sh\necho script-ran\n").expect("script");
    let mut perms = std::fs::metadata(t.0.join("run.sh")).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(t.0.join("run.sh"), perms).expect("chmod");
    std::os::unix::fs::symlink("hello.txt", t.0.join("link.txt")).expect("symlink");
    t
}

fn with_files(mut s: ContainerSpec, source: &Temp, destination: &str) -> ContainerSpec {
    s.files = vec![FileTree { source: source.0.clone(), destination: destination.to_owned() }];
    s
}

// ---- process runtime ----

struct ProcessScope {
    rt: ProcessRuntime,
    _state: Temp,
}

impl ProcessScope {
    fn new() -> Self {
        let state = Temp::new("corral-files-state-");
        let rt = ProcessRuntime::new(ProcessOptions { namespace: "files".into(), state_dir: state.0.clone() })
            .expect("runtime");
        Self { rt, _state: state }
    }
}

#[tokio::test]
async fn process_runtime_re_roots_the_tree_under_corral_root() {
    let s = ProcessScope::new();
    let src = tree();
    let script = r#"cd /; cat "$CORRAL_ROOT/home/work/src/hello.txt" "$CORRAL_ROOT/home/work/src/link.txt" \
        "$CORRAL_ROOT/home/work/src/sub/deeper/note.txt"; "$CORRAL_ROOT/home/work/src/run.sh"; \
        [ "$PWD" = / ] && [ "$CORRAL_ROOT" = "$HOME" ] && echo root-is-work; \
        echo changed > "$CORRAL_ROOT/home/work/src/hello.txt"; echo done"#;
    let spec = with_files(spec("t", "proc-files", &["sh", "-c", script], &[]), &src, "/home/work/src");
    let info = s.rt.spawn(&spec).await.expect("spawn");
    let out = read_output(s.rt.output(&info.id, true).await.expect("output"), Duration::from_secs(10), |t| {
        t.contains("done")
    })
    .await;
    assert!(out.contains("hello from the tree\nhello from the tree\nnested\nscript-ran\n"), "{out}");
    assert!(out.contains("root-is-work"), "{out}");

    // A relaunch of the same container keeps what the first run changed.
    eventually(Duration::from_secs(10), || async {
        let i = s.rt.inspect(&info.id).await.expect("inspect")?;
        matches!(i.state, ContainerState::Exited(_)).then_some(())
    })
    .await
    .expect("the first run exits");
    let again = with_files(spec_for_cat(), &src, "/home/work/src");
    let info2 = s.rt.spawn(&again).await.expect("relaunch");
    assert_eq!(info2.id, info.id, "same instance, same container");
    let out = read_output(s.rt.output(&info.id, true).await.expect("output"), Duration::from_secs(10), |t| {
        t.contains("second:")
    })
    .await;
    assert!(out.contains("second: changed"), "files are placed once per container: {out}");
    assert_eq!(std::fs::read_to_string(src.0.join("hello.txt")).expect("source"), "hello from the tree\n");
}

fn spec_for_cat() -> ContainerSpec {
    spec(
        "t",
        "proc-files",
        &["sh", "-c", r#"printf 'second: %s' "$(cat "$CORRAL_ROOT/home/work/src/hello.txt")""#],
        &[],
    )
}

#[tokio::test]
async fn process_runtime_refuses_bad_destinations_and_sources() {
    let s = ProcessScope::new();
    let src = tree();
    for dest in ["relative/dir", "/", "/a/../../etc"] {
        let spec = with_files(spec("t", "bad-dest", &["true"], &[]), &src, dest);
        let err = s.rt.spawn(&spec).await.expect_err(dest);
        assert!(matches!(err, RuntimeError::Invalid(_)), "{dest}: {err}");
    }
    let missing = Temp::new("corral-files-missing-");
    let gone = Temp(missing.0.join("nope"));
    let spec = with_files(spec("t", "bad-src", &["true"], &[]), &gone, "/src");
    let err = s.rt.spawn(&spec).await.expect_err("missing source");
    assert!(err.to_string().contains("copying files to /src"), "{err}");
    assert!(s.rt.list().await.expect("list").is_empty(), "nothing is left behind");
}

// ---- docker runtime ----

/// Runtime on a fresh namespace; removes its containers (and any image it made) on drop.
struct DockerScope {
    rt: DockerRuntime,
    images: Vec<String>,
}

impl DockerScope {
    async fn new() -> Self {
        let rt =
            DockerRuntime::connect(DockerOptions::new(unique("corral-files-"))).await.expect("docker engine reachable");
        assert!(
            rt.client().inspect_image(TEST_IMAGE).await.is_ok(),
            "{TEST_IMAGE} missing: run scripts/build-test-image.sh"
        );
        Self { rt, images: Vec::new() }
    }

    /// The test image with `USER nobody`, made with `docker commit` (nothing is pulled).
    fn nobody_image(&mut self) -> String {
        let name = format!("corral-test/busybox-nobody:{}", unique("t"));
        let created = Command::new("docker").args(["create", TEST_IMAGE, "true"]).output().expect("docker create");
        assert!(created.status.success(), "{created:?}");
        let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
        let committed = Command::new("docker")
            .args(["commit", "--change", "USER nobody", &id, &name])
            .output()
            .expect("docker commit");
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        assert!(committed.status.success(), "{committed:?}");
        self.images.push(name.clone());
        name
    }
}

impl Drop for DockerScope {
    fn drop(&mut self) {
        let filter = format!("label={LABEL_NAMESPACE}={}", self.rt.namespace());
        if let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).output();
            }
        }
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

async fn output_until(rt: &DockerRuntime, id: &str, marker: &str) -> String {
    read_output(rt.output(id, true).await.expect("output"), Duration::from_secs(20), |t| t.contains(marker)).await
}

#[tokio::test]
async fn docker_places_the_tree_before_start_and_keeps_it_on_adoption() {
    let s = DockerScope::new().await;
    let src = tree();
    let script = "cat /home/work/src/hello.txt /home/work/src/link.txt /home/work/src/sub/deeper/note.txt; \
                  /home/work/src/run.sh; stat -c '%u %a' /home/work/src/hello.txt; echo done; exec sleep 600";
    let spec = with_files(spec("t", "dock-files", &["sh", "-c", script], &[]), &src, "/home/work/src");
    let info = s.rt.spawn(&spec).await.expect("spawn");
    assert_eq!(info.state, ContainerState::Running);
    let out = output_until(&s.rt, &info.id, "done").await;
    assert!(out.contains("hello from the tree\nhello from the tree\nnested\nscript-ran\n0 644\n"), "{out}");

    // Same instance again: the same container, not a second one.
    let again = s.rt.spawn(&spec).await.expect("spawn again");
    assert_eq!(again.id, info.id);
    assert_eq!(s.rt.list().await.expect("list").len(), 1);
}

#[tokio::test]
async fn docker_gives_the_files_to_the_image_user() {
    let mut s = DockerScope::new().await;
    let image = s.nobody_image();
    let src = tree();
    let script = "id -u; stat -c 'owner %u' /opt/src/hello.txt /opt/src/sub/deeper; \
                  echo more >> /opt/src/hello.txt && touch /opt/src/sub/new && echo writable; echo done";
    let mut spec = with_files(spec("t", "dock-nobody", &["sh", "-c", script], &[]), &src, "/opt/src");
    spec.image = image;
    let info = s.rt.spawn(&spec).await.expect("spawn");
    let out = output_until(&s.rt, &info.id, "done").await;
    assert!(out.starts_with("65534\n"), "runs as nobody: {out}");
    assert_eq!(out.matches("owner 65534").count(), 2, "{out}");
    assert!(out.contains("writable"), "{out}");
}

/// A container created by an earlier attempt that died before starting it (here: created
/// without its files) gets the files when adopted.
#[tokio::test]
async fn docker_uploads_into_a_created_container_it_adopts() {
    let s = DockerScope::new().await;
    let src = tree();
    let script = "cat /srv/tree/hello.txt; echo done; exec sleep 600";
    let bare = spec("t", "dock-adopt", &["sh", "-c", script], &[]);
    let labels = [
        "corral.managed=true".to_owned(),
        format!("{LABEL_NAMESPACE}={}", s.rt.namespace()),
        "corral.tenant=t".to_owned(),
        "corral.pod=dock-adopt".to_owned(),
        "corral.generation=1".to_owned(),
        "corral.instance=1".to_owned(),
    ];
    let mut args = vec!["create".to_owned(), "--name".to_owned(), s.rt.container_name(&bare)];
    for l in &labels {
        args.extend(["--label".to_owned(), l.clone()]);
    }
    args.extend([TEST_IMAGE.to_owned(), "sh".to_owned(), "-c".to_owned(), script.to_owned()]);
    let created = Command::new("docker").args(&args).output().expect("docker create");
    assert!(created.status.success(), "{created:?}");

    let info = s.rt.spawn(&with_files(bare, &src, "/srv/tree")).await.expect("adopt");
    let out = output_until(&s.rt, &info.id, "done").await;
    assert!(out.contains("hello from the tree"), "{out}");
}

#[tokio::test]
async fn docker_refuses_a_bad_tree_and_leaves_no_container() {
    let s = DockerScope::new().await;
    let missing = Temp::new("corral-files-missing-");
    let gone = Temp(missing.0.join("nope"));
    let bad = with_files(spec("t", "dock-bad", &["true"], &[]), &gone, "/srv/x");
    let err = s.rt.spawn(&bad).await.expect_err("missing source");
    assert!(err.to_string().contains("archiving files"), "{err}");
    assert!(s.rt.list().await.expect("list").is_empty(), "the half-made container is removed");
    let src = tree();
    let err = s.rt.spawn(&with_files(spec("t", "dock-root", &["true"], &[]), &src, "/")).await.expect_err("root");
    assert!(matches!(err, RuntimeError::Invalid(_)), "{err}");
}

// ---- simulated runtime ----

#[tokio::test]
async fn simulated_runtime_accepts_and_ignores_files() {
    let rt = corral_runtime::simulated::SimulatedRuntime::new(corral_runtime::simulated::SimulatedOptions {
        namespace: "files".into(),
        start_delay: Duration::ZERO,
    });
    let src = tree();
    let info = rt.spawn(&with_files(spec("t", "sim-files", &["true"], &[]), &src, "/srv/x")).await.expect("spawn");
    assert_eq!(rt.inspect(&info.id).await.expect("inspect").map(|i| i.id), Some(info.id));
}
