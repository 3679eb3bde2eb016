use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corral_model::session::GitSource;
use proptest::prelude::*;

use super::clone::{base64, classify_clone, scrub};
use super::*;

#[test]
fn base64_matches_rfc_4648_vectors() {
    let rows = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        ("git:s3cret", "Z2l0OnMzY3JldA=="),
    ];
    for (plain, encoded) in rows {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
    }
}

#[test]
fn clone_failures_are_classified() {
    let rows: Vec<(&str, Option<&str>, bool, CloneError)> = vec![
        (
            "warning: Could not find remote branch nope to clone.\nfatal: Remote branch nope not found in upstream origin",
            Some("nope"),
            false,
            CloneError::BranchMissing("nope".into()),
        ),
        ("fatal: Authentication failed for 'http://127.0.0.1:1/r.git/'", None, true, CloneError::CredentialRefused),
        (
            "fatal: could not read Username for 'http://127.0.0.1:1': terminal prompts disabled",
            None,
            false,
            CloneError::CredentialNeeded,
        ),
        (
            "fatal: repository '/nope.git' does not exist",
            Some("main"),
            false,
            CloneError::Unreachable("fatal: repository '/nope.git' does not exist".into()),
        ),
        ("", None, false, CloneError::Unreachable("git gave no reason".into())),
    ];
    for (stderr, branch, cred, want) in rows {
        assert_eq!(classify_clone(stderr, branch, cred), want, "{stderr}");
    }
    let long = "x".repeat(1000);
    match classify_clone(&long, None, false) {
        CloneError::Unreachable(d) => assert!(d.chars().count() <= 301, "shortened"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn path_components_cannot_escape() {
    assert_eq!(path_component("pod-1.a_b"), "pod-1.a_b");
    for bad in ["..", ".", "", "a/b", ".hidden", "é"] {
        let c = path_component(bad);
        assert!(c.starts_with("x-") && !c.contains('/') && !c.contains(".."), "{bad} -> {c}");
    }
    assert_ne!(path_component("a/b"), path_component("a_b"));
}

#[test]
fn credential_debug_is_redacted() {
    let c = Credential { username: Some("alice".into()), value: "tok-123".into() };
    assert!(!format!("{c:?}").contains("tok-123"));
}

proptest! {
    /// Whatever the secret and wherever it appears, the scrubbed text does not hold it.
    #[test]
    fn scrub_removes_every_form(secret in "[A-Za-z0-9+/=_-]{6,40}", before in "\\PC{0,30}", after in "\\PC{0,30}") {
        let forms = vec![base64(format!("git:{secret}").as_bytes()), format!("git:{secret}"), secret.clone()];
        let text = format!("{before}{secret} and {} {after}", forms[0]);
        let out = scrub(&text, &forms);
        prop_assert!(!out.contains(&secret));
        prop_assert!(!out.contains(&forms[0]));
    }
}

// ---- cloning local repositories ----

struct Temp(PathBuf);

impl Temp {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("corral-git-unit-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository with two commits on `main` (file `v.txt` = "one", then "two") and a
/// branch `feature` with `f.txt`; returns (bare path, first commit, second commit).
fn bare_repo(t: &Temp) -> (String, String, String) {
    let work = t.0.join("work");
    std::fs::create_dir_all(&work).expect("work");
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("v.txt"), "one\n").expect("write");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("v.txt"), "two\n").expect("write");
    git(&work, &["commit", "-qam", "two"]);
    let second = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-qb", "feature"]);
    std::fs::write(work.join("f.txt"), "feature\n").expect("write");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "feature"]);
    git(&work, &["checkout", "-q", "main"]);
    let bare = t.0.join("repo.git");
    git(&t.0, &["clone", "-q", "--bare", work.to_str().expect("utf-8"), bare.to_str().expect("utf-8")]);
    (bare.display().to_string(), first, second)
}

fn source(repo: &str) -> GitSource {
    GitSource { repository: repo.into(), destination: "/src".into(), ..GitSource::default() }
}

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn clones_the_default_branch_a_branch_and_a_pinned_commit() {
    let t = Temp::new();
    let (repo, first, second) = bare_repo(&t);

    let head = clone_source(&source(&repo), None, &t.0.join("c1"), T).await.expect("default branch");
    assert_eq!(head, second);
    assert_eq!(std::fs::read_to_string(t.0.join("c1/v.txt")).expect("file"), "two\n");

    let s = GitSource { branch: Some("feature".into()), ..source(&repo) };
    clone_source(&s, None, &t.0.join("c2"), T).await.expect("branch");
    assert_eq!(std::fs::read_to_string(t.0.join("c2/f.txt")).expect("file"), "feature\n");

    let s = GitSource { commit: Some(first.to_ascii_uppercase()), ..source(&repo) };
    let head = clone_source(&s, None, &t.0.join("c3"), T).await.expect("pinned commit");
    assert_eq!(head, first);
    assert_eq!(std::fs::read_to_string(t.0.join("c3/v.txt")).expect("file"), "one\n");
}

#[tokio::test]
async fn failures_say_what_is_wrong() {
    let t = Temp::new();
    let (repo, _, _) = bare_repo(&t);
    let s = GitSource { branch: Some("nope".into()), ..source(&repo) };
    let e = clone_source(&s, None, &t.0.join("b"), T).await.expect_err("missing branch");
    assert_eq!(e, CloneError::BranchMissing("nope".into()));

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let s = GitSource { commit: Some(missing.into()), ..source(&repo) };
    let e = clone_source(&s, None, &t.0.join("c"), T).await.expect_err("missing commit");
    assert_eq!(e, CloneError::CommitMissing(missing.into()));

    let gone = t.0.join("absent.git").display().to_string();
    let e = clone_source(&source(&gone), None, &t.0.join("u"), T).await.expect_err("unreachable");
    assert!(matches!(&e, CloneError::Unreachable(_)), "{e}");
    assert!(e.to_string().contains("repository unreachable"), "{e}");

    let cred = Credential { username: None, value: "v".into() };
    let e = clone_source(&source(&repo), Some(&cred), &t.0.join("x"), T).await.expect_err("credential on a path");
    assert_eq!(e, CloneError::CredentialUnsupported);
}

#[tokio::test]
async fn a_clone_that_takes_too_long_is_stopped() {
    // A listener that accepts and never answers: the clone hangs until the deadline.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let t = Temp::new();
    let started = std::time::Instant::now();
    let repo = format!("http://127.0.0.1:{port}/slow.git");
    let e = clone_source(&source(&repo), None, &t.0.join("s"), Duration::from_millis(800)).await.expect_err("timeout");
    assert_eq!(e, CloneError::TimedOut(Duration::from_millis(800)));
    assert!(e.to_string().ends_with("timed out after 800ms"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "bounded: {:?}", started.elapsed());
    // Nothing of the clone is left running (git's http helper included).
    let left = || {
        let out = Command::new("pgrep").args(["-f", &format!("127.0.0.1:{port}/slow.git")]).output().expect("pgrep");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !left().is_empty() {
        assert!(std::time::Instant::now() < deadline, "git processes left: {}", left());
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(listener);
}

// ---- a generation without a git source ----

fn context_with_git_dir(git_dir: &Path) -> Context {
    use std::sync::Arc;

    use corral_bus::memory::MemoryBus;
    use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
    use corral_testkit::MemoryStore;

    let deps = crate::Deps {
        store: Arc::new(MemoryStore::new()),
        bus: Arc::new(MemoryBus::new()),
        runtime: Arc::new(SimulatedRuntime::new(SimulatedOptions {
            namespace: "t".into(),
            start_delay: Duration::ZERO,
        })),
    };
    let toml = format!("[spawner]\ngit_dir = {:?}\n[runtime]\nnamespace = \"ns\"\n", git_dir.display().to_string());
    let cfg = corral_config::Config::from_toml_over_defaults(&toml).expect("config");
    Context::new(cfg, deps, "test".into())
}

fn plain_desired(pod_id: &str) -> Desired {
    let spec = corral_model::PodSpec { pod_id: pod_id.into(), image: "img".into(), ..Default::default() };
    Desired {
        tenant: "dev".into(),
        owner: "o".into(),
        spec,
        status_requested: corral_model::StatusRequested::On,
        generation: 2,
        deleted: false,
        creation_ts: 0,
        update_ts: 0,
    }
}

#[tokio::test]
async fn a_generation_without_git_removes_earlier_clones_and_creates_nothing() {
    let t = Temp::new();
    let ctx = context_with_git_dir(&t.0);
    let left = t.0.join("ns/dev/old/1/done");
    std::fs::create_dir_all(&left).expect("an earlier generation's clone");
    let d = plain_desired("old");
    let mut spec = crate::effects::container_spec(&ctx, &d, 1);
    prepare(&ctx, &d, &mut spec).await.expect("nothing to clone");
    assert!(!t.0.join("ns/dev/old").exists(), "the earlier clone is gone");
    assert!(spec.files.is_empty());

    let d = plain_desired("fresh");
    prepare(&ctx, &d, &mut spec).await.expect("nothing to clone");
    assert!(!t.0.join("ns/dev/fresh").exists(), "nothing is created for a pod without git");
    assert!(t.0.join("ns/dev").exists(), "other pods' directories are left alone");
}
