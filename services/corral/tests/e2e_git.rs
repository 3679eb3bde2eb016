//! Git sources (`session.git`): the spawner clones the repository on the host and the pod
//! sees it at its destination, at the pinned commit, before its command runs; the clone's
//! credential is the name of a secret stored through `/api/secrets`, and its value appears in
//! no API answer, action log, log record of the services or bus message.
//!
//! Docker runtime (whole stack in this process, RabbitMQ, Redis, the `corral-test/busybox`
//! image) and the process runtime (`corral dev --runtime process`).

mod common;
mod dev_support;
mod git_support;
mod secrets_support;

use std::time::Duration;

use common::{IMAGE, Spawners, Stack, eventually};
use corral_model::PodKey;
use corral_model::user_secret::USER_SECRET_KIND;
use git_support::{BareRepo, DumbHttp, base64};
use reqwest::Method;
use secrets_support::{BusTap, capture_logs, leaks, log_lines};
use serde_json::{Value, json};

const DEST: &str = "/home/work/src";

fn git_pod(pod_id: &str, git: Value) -> Value {
    json!({
        "pod_id": pod_id,
        "image": IMAGE,
        "command": ["sh", "-c", "echo \"content=$(cat /home/work/src/hello.txt)\"; exec sleep 600"],
        "resources": {"cpu_limit": 500, "mem_limit": 256, "mem_request": 256, "cpu_request": 250},
        "session": {"git": git}
    })
}

/// Every answer, kept as "METHOD path -> code body" for the leak check.
struct Api<'a> {
    stack: &'a Stack,
    seen: Vec<String>,
}

impl Api<'_> {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.stack.http.request(method.clone(), format!("{}{path}", self.stack.base));
        req = req.header("X-Tapis-Token", &self.stack.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let code = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        self.seen.push(format!("{method} {path} -> {code} {text}"));
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn ok(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (code, v) = self.call(method.clone(), path, body).await;
        assert!(code == 200 || code == 201, "{method} {path}: {code} {v}");
        v
    }

    /// Polls the pod's logs until its output holds `want`; returns the logs answer.
    async fn output_with(&mut self, pod_id: &str, want: &str) -> Value {
        let path = format!("/v3/pods/{pod_id}/logs");
        for _ in 0..600 {
            let (code, v) = self.call(Method::GET, &path, None).await;
            if code == 200 && v["result"]["logs"].as_str().unwrap_or_default().contains(want) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{pod_id}: output never held {want:?}: {}", self.seen.last().cloned().unwrap_or_default());
    }

    /// Polls the pod's action log until it holds `want`.
    async fn action_log_with(&mut self, pod_id: &str, want: &str) -> String {
        let path = format!("/v3/pods/{pod_id}/logs");
        for _ in 0..600 {
            let (code, v) = self.call(Method::GET, &path, None).await;
            let text = v["result"]["action_logs"].to_string();
            if code == 200 && text.contains(want) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{pod_id}: action log never held {want:?}: {}", self.seen.last().cloned().unwrap_or_default());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_pods_get_the_repository_and_credentials_never_leak() {
    let logs = capture_logs();
    let repo = BareRepo::new();
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let http = DumbHttp::start(&repo.bare, "alice-git", &password).await;
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let tap = BusTap::start(stack.connect_bus().await, stack.cfg.spawner.shards).await;
    let mut api = Api { stack: &stack, seen: Vec::new() };

    // The secrets, by name.
    api.ok(Method::PUT, "/api/secrets/gitpw", Some(json!({"value": password, "username": "alice-git"}))).await;
    api.ok(Method::PUT, "/api/secrets/wrongpw", Some(json!({"value": wrong, "username": "alice-git"}))).await;
    api.ok(Method::GET, "/api/secrets", None).await;
    api.ok(Method::GET, "/api/secrets/gitpw", None).await;
    // Stored encrypted: the raw documents go into the leak check below. One copied as-is under
    // another name does not decrypt (the ciphertext is bound to its owner and name).
    let mut raw_secrets = Vec::new();
    for name in ["dev/alice/gitpw", "dev/alice/wrongpw"] {
        raw_secrets.push(stack.store.get_doc(USER_SECRET_KIND, name).await.expect("store").expect("stored").value);
    }
    stack.store.put_doc(USER_SECRET_KIND, "dev/alice/copied", &raw_secrets[0], 0).await.expect("put");

    // (1) The right credential, pinned to the first commit (the branch head is the second).
    let git = json!({"repository": http.url, "branch": "main", "commit": repo.first, "destination": DEST,
                     "credential": "gitpw"});
    let created = api.ok(Method::POST, "/v3/pods", Some(git_pod("gitweb", git))).await;
    assert_eq!(created["result"]["session"]["git"]["credential"], "gitpw", "{created}");
    api.output_with("gitweb", "content=first version").await;
    let running = stack.running_containers("gitweb").await;
    assert_eq!(running.len(), 1);
    let out = std::process::Command::new("docker")
        .args(["exec", &running[0].id, "cat", "/home/work/src/.git/HEAD"])
        .output()
        .expect("docker exec");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), repo.first, "detached at the pinned commit");
    assert!(http.statuses().contains(&200), "the clone went through the authenticated server");

    // (2) The same through a session template and its start.
    let template = json!({
        "apiVersion": "v1", "kind": "taskTemplate", "metadata": {"name": "gittpl"},
        "spec": {"kernel": {"image": IMAGE, "run": {"startup": "echo \"content=$(cat /srv/code/hello.txt)\"; exec sleep 600"},
                 "git": {"repository": http.url, "commit": repo.second, "destinationDir": "/srv/code",
                         "credential": "gitpw"}},
                 "resources": {"cpu": "1", "mem": "256m"}}
    });
    api.ok(Method::POST, "/api/session-templates", Some(template)).await;
    api.ok(Method::GET, "/api/session-templates/gittpl", None).await;
    let started =
        api.ok(Method::POST, "/api/session-templates/gittpl/start", Some(json!({"pod_id": "gittplpod"}))).await;
    assert_eq!(started["pod"]["session"]["git"]["commit"], repo.second.as_str(), "{started}");
    api.output_with("gittplpod", "content=second version").await;

    // (3) The wrong secret, (4) a missing one, (5) a missing branch: clear reasons.
    let git = json!({"repository": http.url, "destination": DEST, "credential": "wrongpw"});
    api.ok(Method::POST, "/v3/pods", Some(git_pod("gitwrong", git))).await;
    api.action_log_with("gitwrong", "the repository refused the credential").await;
    assert!(http.statuses().contains(&401));
    let git = json!({"repository": http.url, "destination": DEST, "credential": "nosuch"});
    api.ok(Method::POST, "/v3/pods", Some(git_pod("gitnocred", git))).await;
    api.action_log_with("gitnocred", "credential not found").await;
    let git = json!({"repository": http.url, "destination": DEST, "credential": "copied"});
    api.ok(Method::POST, "/v3/pods", Some(git_pod("gitcopied", git))).await;
    api.action_log_with("gitcopied", "cannot decrypt secret 'copied' (was the secrets key changed?)").await;
    let git = json!({"repository": http.url, "destination": DEST, "credential": "gitpw", "branch": "nope"});
    api.ok(Method::POST, "/v3/pods", Some(git_pod("gitnobranch", git))).await;
    api.action_log_with("gitnobranch", "branch 'nope' not found").await;
    let missing_commit = "0123456789abcdef0123456789abcdef01234567";
    let git = json!({"repository": repo.path(), "destination": DEST, "commit": missing_commit});
    api.ok(Method::POST, "/v3/pods", Some(git_pod("gitnocommit", git))).await;
    api.action_log_with("gitnocommit", &format!("commit {missing_commit} not found")).await;

    // Every read route of the pods.
    for pod in ["gitweb", "gittplpod", "gitwrong", "gitnocred"] {
        api.ok(Method::GET, &format!("/v3/pods/{pod}"), None).await;
        api.ok(Method::GET, &format!("/v3/pods/{pod}/derived"), None).await;
        api.ok(Method::GET, &format!("/v3/pods/{pod}/logs"), None).await;
    }
    api.ok(Method::GET, "/v3/pods", None).await;
    api.ok(Method::GET, "/api/session-templates", None).await;

    // Stored records and action logs of the pods.
    let mut stored = Vec::new();
    stored.append(&mut raw_secrets);
    for pod in ["gitweb", "gittplpod", "gitwrong", "gitnocred", "gitnobranch", "gitcopied"] {
        let key = PodKey::new("dev", pod);
        stored.push(format!("{:?}", stack.store.get_pod(&key).await.expect("store answers")));
        stored.extend(stack.store.action_log(&key).await.expect("store answers").iter().map(|e| format!("{e:?}")));
    }

    // Deleting the pods removes their clones.
    let clone_dir = |pod: &str| std::path::Path::new(&stack.cfg.spawner.git_dir).join(&stack.ns).join("dev").join(pod);
    assert!(clone_dir("gitweb").exists(), "the clone is kept while the pod lives");
    for pod in ["gitweb", "gittplpod", "gitwrong", "gitnocred", "gitnobranch", "gitnocommit", "gitcopied"] {
        api.ok(Method::DELETE, &format!("/v3/pods/{pod}"), None).await;
    }
    eventually("pods purged and their clones removed", Duration::from_secs(40), || async {
        let purged = stack.store.get_pod(&PodKey::new("dev", "gitweb")).await.expect("store").is_none()
            && stack.store.get_pod(&PodKey::new("dev", "gittplpod")).await.expect("store").is_none();
        (purged && !clone_dir("gitweb").exists() && !clone_dir("gittplpod").exists()).then_some(())
    })
    .await;
    api.ok(Method::DELETE, "/api/secrets/gitpw", None).await;

    let secrets = [
        ("password", password.clone()),
        ("wrong password", wrong.clone()),
        ("basic header", base64(format!("alice-git:{password}").as_bytes())),
        ("wrong basic header", base64(format!("alice-git:{wrong}").as_bytes())),
    ];
    let secrets: Vec<(&str, &str)> = secrets.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let bus = tap.snapshot();
    let lines = log_lines(&logs);
    assert!(lines.iter().any(|l| l.contains("cloning the pod's git source")), "the capture sees the spawner");
    let mut found = leaks(&bus, &secrets);
    found.extend(leaks(&lines, &secrets));
    found.extend(leaks(&api.seen, &secrets));
    found.extend(leaks(&stored, &secrets));
    assert!(
        found.is_empty(),
        "secret values leaked ({} bus messages, {} log lines, {} answers):\n{}",
        bus.len(),
        lines.len(),
        api.seen.len(),
        found.join("\n")
    );
    tap.stop();
    stack.shutdown().await;
}

/// The process runtime re-roots the destination under the process's work directory
/// (`$CORRAL_ROOT`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_runtime_pods_get_the_repository_under_corral_root() {
    let repo = BareRepo::new();
    let data = repo.root.join("dev-data");
    let git_dir = repo.root.join("clones");
    let git_dir_text = git_dir.display().to_string();
    let dev = tokio::task::block_in_place(|| {
        dev_support::Dev::start(&data, &["--runtime", "process"], &[("CORRAL__SPAWNER__GIT_DIR", &git_dir_text)])
    });
    let http = reqwest::Client::new();
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut req = http.request(method, format!("{}{path}", dev.url)).header("X-Tapis-Token", &dev.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.expect("request");
            (resp.status().as_u16(), resp.json::<Value>().await.expect("json"))
        }
    };
    let pod = json!({
        "pod_id": "procgit",
        "image": IMAGE,
        "command": ["sh", "-c", "echo \"content=$(cat \"$CORRAL_ROOT/home/work/src/hello.txt\")\"; exec sleep 600"],
        "session": {"git": {"repository": repo.path(), "commit": repo.first, "destination": DEST}}
    });
    let (code, v) = call(Method::POST, "/v3/pods", Some(pod)).await;
    assert_eq!(code, 200, "{v}");
    let logs = eventually("the pod prints the pinned file", Duration::from_secs(60), || async {
        let (_, v) = call(Method::GET, "/v3/pods/procgit/logs", None).await;
        let text = v["result"]["logs"].as_str().unwrap_or_default().to_string();
        text.contains("content=").then_some(text)
    })
    .await;
    assert!(logs.contains("content=first version"), "{logs}");
    let clones: Vec<_> = walk(&git_dir).into_iter().filter(|p| p.ends_with("repo/hello.txt")).collect();
    assert_eq!(clones.len(), 1, "one clone for the pod's generation: {clones:?}");

    let (code, v) = call(Method::DELETE, "/v3/pods/procgit", None).await;
    assert_eq!(code, 200, "{v}");
    eventually("the clone is removed with the pod", Duration::from_secs(30), || async {
        walk(&git_dir).iter().all(|p| !p.ends_with("repo/hello.txt")).then_some(())
    })
    .await;
    drop(dev);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
