//! A pod whose environment, command and arguments reference its generated credentials: the
//! container gets the values, and no bus message, log record, API response (except the
//! credentials endpoint, which asks for them) or stored record of the pod holds them.

mod common;
mod secrets_support;

use std::time::Duration;

use common::{IMAGE, Spawners, Stack, eventually};
use corral_model::PodKey;
use corral_model::secrets::{CREDENTIALS_KIND, StoredCredentials};
use reqwest::Method;
use secrets_support::{BusTap, capture_logs, leaks, log_lines};
use serde_json::{Value, json};

const POD: &str = "secretweb";

/// `$0` and `$1` of the script are the substituted command word and argument; the script
/// says whether they match the environment without ever printing them.
fn secret_pod() -> Value {
    let script = r#"if [ "$0" = "$SVC_PW" ] && [ "$1" = "$USER_PW" ] && [ -n "$USER_PW" ]; then echo args-substituted; else echo args-missing; fi; exec httpd -f -v -p 8000 -h /www"#;
    json!({
        "pod_id": POD,
        "image": IMAGE,
        "command": ["sh", "-c", script, "<<tapissecret_service_password>>"],
        "arguments": ["<<tapissecret_user_password>>"],
        "environment_variables": {
            "USER_NAME": "<<tapissecret_user_username>>",
            "USER_PW": "<<tapissecret_user_password>>",
            "SVC_NAME": "<<tapissecret_service_username>>",
            "SVC_PW": "<<tapissecret_service_password>>",
            "DSN": "postgres://<<tapissecret_user_username>>:<<tapissecret_user_password>>@db/x"
        },
        "networking": {"default": {"protocol": "http", "port": 8000}},
        "resources": {"cpu_limit": 500, "mem_limit": 256, "mem_request": 256, "cpu_request": 250}
    })
}

/// Every API answer except the credentials one, as "METHOD path -> code body".
struct Responses<'a> {
    stack: &'a Stack,
    seen: Vec<String>,
}

impl Responses<'_> {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (code, v) = self.stack.call(method.clone(), path, body).await;
        self.seen.push(format!("{method} {path} -> {code} {v}"));
        (code, v)
    }

    async fn ok(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (code, v) = self.call(method.clone(), path, body).await;
        assert_eq!(code, 200, "{method} {path}: {v}");
        v
    }

    async fn wait_status(&mut self, status: &str) {
        let path = format!("/v3/pods/{POD}");
        for _ in 0..1200 {
            let (code, v) = self.call(Method::GET, &path, None).await;
            if code == 200 && v["result"]["status"] == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{POD} did not reach {status} in 60 s: {}", self.seen.last().cloned().unwrap_or_default());
    }
}

/// `docker inspect` of the pod's one running container: its Env and its command line.
async fn inspect_running(stack: &Stack) -> (String, Vec<String>, Vec<String>) {
    let running = eventually("one running container", Duration::from_secs(30), || async {
        let r = stack.running_containers(POD).await;
        (r.len() == 1).then_some(r)
    })
    .await;
    let id = running[0].id.clone();
    let out = std::process::Command::new("docker").args(["inspect", &id]).output().expect("docker inspect");
    assert!(out.status.success(), "docker inspect {id}: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect json");
    let strings = |x: &Value| -> Vec<String> {
        x.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let env = strings(&v[0]["Config"]["Env"]);
    let mut cmdline = vec![v[0]["Path"].as_str().unwrap_or_default().to_string()];
    cmdline.extend(strings(&v[0]["Args"]));
    (id, env, cmdline)
}

fn assert_substituted(env: &[String], cmdline: &[String], creds: &StoredCredentials) {
    let c = &creds.credentials;
    for want in [
        format!("USER_NAME={}", c.user_username),
        format!("USER_PW={}", c.user_password),
        format!("SVC_NAME={}", c.service_username),
        format!("SVC_PW={}", c.service_password),
        format!("DSN=postgres://{}:{}@db/x", c.user_username, c.user_password),
    ] {
        assert!(env.contains(&want), "container env lacks {}=…: {:?}", want.split('=').next().unwrap_or(""), env.len());
    }
    assert!(cmdline.contains(&c.service_password), "the command word is substituted");
    assert!(cmdline.contains(&c.user_password), "the argument is substituted");
    assert!(!cmdline.iter().chain(env).any(|s| s.contains("<<tapissecret")), "no placeholder left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_reach_only_the_container() {
    let logs = capture_logs();
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let tap = BusTap::start(stack.connect_bus().await, stack.cfg.spawner.shards).await;
    let mut api = Responses { stack: &stack, seen: Vec::new() };

    let created = api.ok(Method::POST, "/v3/pods", Some(secret_pod())).await;
    assert_eq!(created["result"]["environment_variables"]["USER_PW"], "<<tapissecret_user_password>>", "{created}");
    api.wait_status("AVAILABLE").await;

    // The one answer allowed to hold a secret: it asks for it.
    let (code, asked) = stack.get(&format!("/v3/pods/{POD}/credentials")).await;
    assert_eq!(code, 200, "{asked}");
    let doc = stack
        .store
        .get_doc(CREDENTIALS_KIND, &format!("dev/{POD}"))
        .await
        .expect("store answers")
        .expect("credentials doc");
    let creds: StoredCredentials = serde_json::from_str(&doc.value).expect("credentials json");
    assert_eq!(asked["result"]["user_username"], creds.credentials.user_username);
    assert_eq!(asked["result"]["user_password"], creds.credentials.user_password);
    assert!(creds.credentials.user_password.len() >= 16 && creds.credentials.service_password.len() >= 16);
    let secrets = [
        ("user_password", creds.credentials.user_password.as_str()),
        ("service_password", creds.credentials.service_password.as_str()),
    ];

    let (first, env, cmdline) = inspect_running(&stack).await;
    assert_substituted(&env, &cmdline, &creds);
    let out = eventually("the script's verdict in /logs", Duration::from_secs(20), || async {
        let l = stack.logs(POD).await;
        let s = l["logs"].as_str().unwrap_or_default().to_string();
        (s.contains("args-substituted") || s.contains("args-missing")).then_some(s)
    })
    .await;
    assert!(out.contains("args-substituted"), "{out}");

    // Every read route, a permission round trip and a template saved from the pod.
    let pod_path = format!("/v3/pods/{POD}");
    api.ok(Method::GET, "/v3/pods", None).await;
    let derived = api.ok(Method::GET, &format!("{pod_path}/derived"), None).await;
    assert!(derived["result"].to_string().contains("USER_PW"), "derived shows the variable: {derived}");
    api.ok(Method::GET, &format!("{pod_path}/logs"), None).await;
    api.ok(Method::GET, &format!("{pod_path}/permissions"), None).await;
    api.ok(Method::POST, &format!("{pod_path}/permissions"), Some(json!({"user": "bob", "level": "READ"}))).await;
    api.ok(Method::GET, &format!("{pod_path}/permissions"), None).await;
    api.ok(Method::DELETE, &format!("{pod_path}/permissions/bob"), None).await;
    api.ok(Method::POST, "/v3/pods/templates", Some(json!({"template_id": "secrettpl", "description": "x"}))).await;
    let saved = api
        .ok(
            Method::POST,
            &format!("{pod_path}/save_pod_as_template_tag"),
            Some(json!({"template_id": "secrettpl", "tag": "v1", "commit_message": "from a pod with secrets"})),
        )
        .await;
    assert!(saved["result"]["pod_definition"].to_string().contains("tapissecret"), "{saved}");
    api.ok(Method::GET, "/v3/pods/templates/secrettpl/tags", None).await;
    api.ok(Method::GET, "/v3/pods/templates/tags", None).await;
    api.ok(Method::PUT, &pod_path, Some(json!({"description": "has secrets"}))).await;

    // Error answers about the pod.
    let (code, _) = api.call(Method::POST, "/v3/pods", Some(secret_pod())).await;
    assert_eq!(code, 409, "a duplicate is refused");
    let mut bad = secret_pod();
    bad["pod_id"] = json!("secretweb2");
    bad["environment_variables"]["bad name"] = json!("<<tapissecret_user_password>>");
    let (code, _) = api.call(Method::POST, "/v3/pods", Some(bad)).await;
    assert_eq!(code, 400, "an invalid variable name is refused");
    let (code, _) = api.call(Method::PUT, &pod_path, Some(json!({"resources": {"cpu_limit": -5}}))).await;
    assert!(code == 400 || code == 422, "invalid update refused: {code}");

    // Lifecycle, including a crash the pod recovers from (its status message is an error).
    api.ok(Method::GET, &format!("{pod_path}/stop"), None).await;
    api.wait_status("STOPPED").await;
    api.ok(Method::GET, &format!("{pod_path}/start"), None).await;
    api.wait_status("AVAILABLE").await;
    let (started, _, _) = inspect_running(&stack).await;
    assert_ne!(started, first, "start makes a new container");
    api.ok(Method::GET, &format!("{pod_path}/restart"), None).await;
    eventually("a new container after restart", Duration::from_secs(40), || async {
        let r = stack.running_containers(POD).await;
        (r.len() == 1 && r[0].id != started).then_some(())
    })
    .await;
    api.wait_status("AVAILABLE").await;
    let (second, env, cmdline) = inspect_running(&stack).await;
    assert_ne!(second, started);
    assert_substituted(&env, &cmdline, &creds);
    let killed = std::process::Command::new("docker").args(["kill", &second]).output().expect("docker kill");
    assert!(killed.status.success(), "{killed:?}");
    eventually("the crash in the action log", Duration::from_secs(10), || async {
        let l = stack.logs(POD).await;
        l["action_logs"].to_string().contains("137").then_some(())
    })
    .await;
    api.ok(Method::GET, &pod_path, None).await;
    api.wait_status("AVAILABLE").await;
    api.ok(Method::GET, &format!("{pod_path}/logs"), None).await;
    api.ok(Method::GET, &format!("{pod_path}/derived"), None).await;

    // The stored record, action log and output of the pod.
    let key = PodKey::new("dev", POD);
    let mut stored = vec![format!("{:?}", stack.store.get_pod(&key).await.expect("store answers"))];
    stored.extend(stack.store.action_log(&key).await.expect("store answers").iter().map(|e| format!("{e:?}")));
    stored.push(String::from_utf8_lossy(&stack.store.output(&key).await.expect("store answers").1).into_owned());
    for kind in ["pod_meta", "pods_template", "pods_template_tags"] {
        stored.extend(
            stack
                .store
                .list_docs(kind)
                .await
                .expect("store answers")
                .into_iter()
                .map(|(n, d)| format!("{kind}/{n} {d:?}")),
        );
    }

    api.ok(Method::DELETE, &pod_path, None).await;
    eventually("container, records and credentials gone", Duration::from_secs(30), || async {
        let none_left = stack.containers(POD).await.is_empty();
        let purged = stack.store.get_pod(&key).await.expect("store answers").is_none();
        let no_creds =
            stack.store.get_doc(CREDENTIALS_KIND, &format!("dev/{POD}")).await.expect("store answers").is_none();
        (none_left && purged && no_creds).then_some(())
    })
    .await;
    let (code, _) = api.call(Method::GET, &format!("{pod_path}/credentials"), None).await;
    assert_eq!(code, 404, "no credentials for a deleted pod");

    // The deletion's events have reached the tap once a later event of the pod is there.
    eventually("the tap saw the pod's events", Duration::from_secs(10), || async {
        let msgs = tap.snapshot();
        (msgs.iter().any(|m| m.contains(POD) && m.contains("STOPPED"))
            && msgs.iter().any(|m| m.starts_with("corral.commands")))
        .then_some(())
    })
    .await;
    let bus = tap.snapshot();
    let lines = log_lines(&logs);
    assert!(lines.iter().any(|l| l.contains(POD)), "the log capture sees the services ({} lines)", lines.len());

    let mut found = leaks(&bus, &secrets);
    found.extend(leaks(&lines, &secrets));
    found.extend(leaks(&api.seen, &secrets));
    found.extend(leaks(&stored, &secrets));
    assert!(
        found.is_empty(),
        "secret values leaked ({} bus messages, {} log lines, {} responses checked):\n{}",
        bus.len(),
        lines.len(),
        api.seen.len(),
        found.join("\n")
    );
    tap.stop();
    stack.shutdown().await;
}
