//! Backend.AI session templates under `/api/session-templates`: documents in YAML and JSON,
//! CRUD with the Tapis template permissions, start with overrides, and the shared core model
//! (a session template is a Tapis template and vice versa).

mod common;

use common::{Gateway, full_snapshot};
use corral_store::Store;
use serde_json::{Value, json};

/// The seed's example, with a local repository and the test image.
const SEED_YAML: &str = r"---
api_version: v1
kind: taskTemplate
metadata:
  name: template1234
  tag: example-tag
spec:
  kernel:
    environ:
      MYCONFIG: XXX
    git:
      branch: '19.09'
      commit: 10daee9e328876d75e6d0fa4998d4456711730db
      repository: /srv/git/backend.ai-agent.git
      destinationDir: /home/work/baiagent
    image: corral-test/busybox
    run:
      stratup: sleep 600
  resources:
    cpu: '2'
    mem: 4g
  mounts:
    hostpath-test: /home/work/hostDesktop
    test-vfolder:
  sessionType: interactive
";

/// The same document as JSON, under another name and with other aliases.
fn seed_json(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "task_template",
        "metadata": {"name": name, "tag": "example-tag"},
        "spec": {
            "type": "interactive",
            "kernel": {
                "image": "corral-test/busybox",
                "environ": {"MYCONFIG": "XXX"},
                "run": {"startupCommand": "sleep 600"},
                "git": {
                    "repository": "/srv/git/backend.ai-agent.git",
                    "branch": "19.09",
                    "commit": "10daee9e328876d75e6d0fa4998d4456711730db",
                    "destination_dir": "/home/work/baiagent"
                }
            },
            "resources": {"cpu": "2", "mem": "4g"},
            "mounts": {"hostpath-test": "/home/work/hostDesktop", "test-vfolder": null}
        }
    })
}

/// The canonical form both spellings are stored and returned as.
fn canonical(name: &str) -> Value {
    json!({
        "api_version": "v1",
        "kind": "task_template",
        "metadata": {"name": name, "tag": "example-tag"},
        "spec": {
            "session_type": "interactive",
            "kernel": {
                "image": "corral-test/busybox",
                "environ": {"MYCONFIG": "XXX"},
                "run": {"startup_command": "sleep 600"},
                "git": {
                    "repository": "/srv/git/backend.ai-agent.git",
                    "commit": "10daee9e328876d75e6d0fa4998d4456711730db",
                    "branch": "19.09",
                    "destination_dir": "/home/work/baiagent"
                }
            },
            "mounts": {"hostpath-test": "/home/work/hostDesktop", "test-vfolder": null},
            "resources": {"cpu": "2", "mem": "4g"}
        }
    })
}

/// A raw answer: status, content type, body text.
struct Raw {
    status: u16,
    content_type: String,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn raw(gw: &Gateway, method: &str, path: &str, token: &str, body: Option<(&str, String)>, accept: &str) -> Raw {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = gw.http.request(method, format!("{}{path}", gw.base)).header("X-Tapis-Token", token);
    if !accept.is_empty() {
        req = req.header("Accept", accept);
    }
    if let Some((content_type, text)) = body {
        req = req.header("Content-Type", content_type).body(text);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let content_type =
        resp.headers().get("content-type").map(|v| v.to_str().expect("ascii").to_string()).unwrap_or_default();
    Raw { status, content_type, text: resp.text().await.expect("body") }
}

async fn post_yaml(gw: &Gateway, token: &str, text: &str) -> Raw {
    raw(gw, "POST", "/api/session-templates", token, Some(("application/yaml", text.to_string())), "").await
}

async fn send_json(gw: &Gateway, method: &str, path: &str, token: &str, body: &Value) -> Raw {
    raw(gw, method, path, token, Some(("application/json", body.to_string())), "").await
}

async fn get_json(gw: &Gateway, path: &str, token: &str) -> Raw {
    raw(gw, "GET", path, token, None, "").await
}

/// Problems of an enveloped 400 as `(path, message)`.
fn problems(r: &Raw) -> Vec<(String, String)> {
    let body = r.json();
    assert_eq!(body["status"], "error", "{body}");
    body["metadata"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems listed: {body}"))
        .iter()
        .map(|p| (p["field"].as_str().expect("string").to_string(), p["message"].as_str().expect("string").to_string()))
        .collect()
}

async fn session_docs(gw: &Gateway) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    for kind in ["session_template", "session_pod"] {
        for (name, doc) in gw.store.list_docs(kind).await.expect("list docs") {
            out.push((format!("{kind}:{name}"), doc.version, doc.value));
        }
    }
    out
}

#[tokio::test]
async fn seed_example_from_yaml_and_json_is_stored_listed_fetched_and_updated() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");

    let created = post_yaml(&gw, &alice, SEED_YAML).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.content_type, "application/json");
    let body = created.json();
    assert_eq!(body["template"], canonical("template1234"));
    assert_eq!((body["id"].as_str(), body["owner"].as_str()), (Some("template1234"), Some("alice")));
    assert_eq!(body["source"], "session_template");
    let first_version = body["tag_timestamp"].as_str().expect("string").to_string();
    assert!(first_version.starts_with("example-tag@"), "{first_version}");

    let from_json = send_json(&gw, "POST", "/api/session-templates", &alice, &seed_json("jsontemplate")).await;
    assert_eq!(from_json.status, 201, "{}", from_json.text);
    assert_eq!(from_json.json()["template"], canonical("jsontemplate"));

    let again = post_yaml(&gw, &alice, SEED_YAML).await;
    assert_eq!(again.status, 409, "{}", again.text);

    let list = get_json(&gw, "/api/session-templates", &alice).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let mut ids: Vec<String> =
        list.json().as_array().expect("array").iter().map(|v| v["id"].as_str().expect("string").to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["jsontemplate", "template1234"]);

    let got = get_json(&gw, "/api/session-templates/template1234", &alice).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["template"], canonical("template1234"));

    // YAML out, and that YAML read back in gives the same document (as a replace).
    let yaml = raw(&gw, "GET", "/api/session-templates/template1234", &alice, None, "application/yaml").await;
    assert_eq!((yaml.status, yaml.content_type.as_str()), (200, "application/yaml"), "{}", yaml.text);
    assert!(yaml.text.contains("image: corral-test/busybox") && yaml.text.contains("kind: task_template"));
    let put =
        raw(&gw, "PUT", "/api/session-templates/template1234", &alice, Some(("text/yaml", yaml.text.clone())), "")
            .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json()["template"], canonical("template1234"));

    let list_yaml = raw(&gw, "GET", "/api/session-templates", &alice, None, "application/yaml").await;
    assert_eq!(list_yaml.content_type, "application/yaml");
    assert_eq!(list_yaml.text.matches("- api_version: v1").count(), 2, "{}", list_yaml.text);

    // Update: a new document, a new tag version.
    let changed = SEED_YAML.replace("MYCONFIG: XXX", "MYCONFIG: YYY");
    let put =
        raw(&gw, "PUT", "/api/session-templates/template1234", &alice, Some(("application/x-yaml", changed)), "").await;
    assert_eq!(put.status, 200, "{}", put.text);
    let now = get_json(&gw, "/api/session-templates/template1234", &alice).await.json();
    assert_eq!(now["template"]["spec"]["kernel"]["environ"]["MYCONFIG"], "YYY");
    assert_ne!(now["tag_timestamp"].as_str().expect("string"), first_version);
    let tags = gw.call("GET", "/v3/pods/templates/template1234/tags", Some(&alice), None).await;
    assert_eq!(tags.result().as_array().expect("array").len(), 3, "create, replace, replace: {:?}", tags.body);

    // The name in the document is the template's id.
    let renamed = SEED_YAML.replace("name: template1234", "name: other");
    let put =
        raw(&gw, "PUT", "/api/session-templates/template1234", &alice, Some(("application/yaml", renamed)), "").await;
    assert_eq!(put.status, 400);
    assert!(problems(&put).iter().any(|(f, _)| f == "metadata.name"), "{}", put.text);

    let deleted = raw(&gw, "DELETE", "/api/session-templates/jsontemplate", &alice, None, "").await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(get_json(&gw, "/api/session-templates/jsontemplate", &alice).await.status, 404);
    assert_eq!(gw.call("GET", "/v3/pods/templates/jsontemplate", Some(&alice), None).await.status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn start_applies_overrides_and_pins_the_template_version() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");
    assert_eq!(post_yaml(&gw, &alice, SEED_YAML).await.status, 201);
    let version = get_json(&gw, "/api/session-templates/template1234", &alice).await.json()["tag_timestamp"]
        .as_str()
        .expect("value")
        .to_string();

    let body = json!({
        "pod_id": "sess1",
        "overrides": {
            "spec": {
                "kernel": {"environ": {"EXTRA": "1"}},
                "mounts": {"test-vfolder": null},
                "resources": {"cpu": "500m", "mem": null}
            }
        }
    });
    let started = send_json(&gw, "POST", "/api/session-templates/template1234/start", &alice, &body).await;
    assert_eq!(started.status, 201, "{}", started.text);
    let s = started.json();
    assert_eq!(s["session_type"], "interactive");
    assert_eq!(s["pod"]["pod_id"], "sess1");
    assert_eq!(s["tag_timestamp"], version.as_str());
    // Git travels in the pod's `session`; only the session tag is not applied.
    assert_eq!(s["warnings"], json!(["metadata.tag: not applied: pods have no session tag"]));
    assert_eq!(s["pod"]["session"]["git"]["destination"], "/home/work/baiagent", "{}", s["pod"]);
    assert_eq!(s["template"]["spec"]["kernel"]["environ"], json!({"EXTRA": "1", "MYCONFIG": "XXX"}));

    let spec = gw.record("acme", "sess1").await.desired.value.spec;
    assert_eq!(spec.template, format!("template1234:{version}"), "pinned to the version started");
    assert_eq!(spec.image, "corral-test/busybox");
    assert_eq!(spec.command, Some(vec!["sh".to_string(), "-c".to_string(), "sleep 600".to_string()]));
    let env: Vec<(&str, &str)> = spec.environment_variables.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, [("EXTRA", "1"), ("MYCONFIG", "XXX")], "maps merge per key");
    let mounts: Vec<&str> = spec.volume_mounts.keys().map(String::as_str).collect();
    assert_eq!(mounts, ["/home/work/hostDesktop"], "null removes the mount");
    assert_eq!((spec.resources.cpu_request, spec.resources.cpu_limit), (500, 500));
    let defaults = corral_model::PodSpec::default().resources;
    assert_eq!((spec.resources.mem_request, spec.resources.mem_limit), (defaults.mem_request, defaults.mem_limit));

    // The resolved document is stored with the template id and version.
    let rec = gw.store.get_doc("session_pod", "acme/sess1").await.expect("get doc").expect("session record");
    let rec: Value = serde_json::from_str(&rec.value).expect("record json");
    assert_eq!((rec["template_id"].as_str(), rec["tag_timestamp"].as_str()), (Some("template1234"), Some(&*version)));
    assert_eq!(rec["document"]["spec"]["resources"], json!({"cpu": "0.5"}));

    // No pod id: one is made up. Bad overrides: every problem, no pod.
    let anon = send_json(&gw, "POST", "/api/session-templates/template1234/start", &alice, &json!({})).await;
    assert_eq!(anon.status, 201, "{}", anon.text);
    let id = anon.json()["pod"]["pod_id"].as_str().expect("string").to_string();
    assert!(id.starts_with("template1234") && id.len() == "template1234".len() + 12, "{id}");
    let before = full_snapshot(&gw, &["acme"]).await;
    let bad =
        json!({"pod_id": "sess2", "overrides": {"spec": {"resources": {"cpu": "lots"}, "kernel": {"envron": {}}}}});
    let refused = send_json(&gw, "POST", "/api/session-templates/template1234/start", &alice, &bad).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    let fields: Vec<String> = problems(&refused).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["overrides.spec.kernel.envron", "overrides.spec.resources.cpu"]);
    assert_eq!(full_snapshot(&gw, &["acme"]).await, before);

    // A batch template starts a batch pod.
    let batch = SEED_YAML.replace("name: template1234", "name: batchone").replace("interactive", "batch");
    assert_eq!(post_yaml(&gw, &alice, &batch).await.status, 201);
    let b = send_json(&gw, "POST", "/api/session-templates/batchone/start", &alice, &json!({"pod_id": "batch1"})).await;
    assert_eq!(b.status, 201, "{}", b.text);
    let b = b.json();
    assert_eq!(b["session_type"], "batch");
    assert_eq!(b["pod"]["session"]["session_type"], "batch", "{}", b["pod"]);
    assert!(!b["warnings"].to_string().contains("session_type"), "{}", b["warnings"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn session_templates_and_tapis_templates_are_one_model() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");
    assert_eq!(post_yaml(&gw, &alice, SEED_YAML).await.status, 201);

    // A session template is a Tapis template with a tag, and pods can build on it.
    let t = gw.call("GET", "/v3/pods/templates/template1234", Some(&alice), None).await;
    assert_eq!((t.status, t.result()["owner"].as_str()), (200, Some("alice")), "{:?}", t.body);
    let tag = gw.call("GET", "/v3/pods/templates/template1234/tags/example-tag", Some(&alice), None).await;
    let def = &tag.result()[0]["pod_definition"];
    assert_eq!(def["image"], "corral-test/busybox");
    assert_eq!(
        def["resources"],
        json!({"cpu_request": 2000, "cpu_limit": 2000, "mem_request": 4096, "mem_limit": 4096})
    );
    assert_eq!(def["volume_mounts"]["/home/work/baiagent"], Value::Null, "git is not a mount: {def}");
    let pod = json!({"pod_id": "frompods", "template": "template1234:example-tag"});
    let made = gw.call("POST", "/v3/pods", Some(&alice), Some(pod)).await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let spec = gw.record("acme", "frompods").await.desired.value.spec;
    assert_eq!(spec.environment_variables["MYCONFIG"], "XXX");

    // A Tapis template reads as a session template where the fields map.
    let new = json!({"template_id": "tapisone", "description": "plain"});
    assert_eq!(gw.call("POST", "/v3/pods/templates", Some(&alice), Some(new)).await.status, 200);
    let tag = json!({"tag": "latest", "commit_message": "by hand", "pod_definition": {
        "image": "corral-test/busybox",
        "command": ["sleep", "60"],
        "environment_variables": {"A": "b"},
        "resources": {"cpu_limit": 1500, "mem_limit": 512},
        "time_to_stop_default": 3600
    }});
    let added = gw.call("POST", "/v3/pods/templates/tapisone/tags", Some(&alice), Some(tag)).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let read = get_json(&gw, "/api/session-templates/tapisone", &alice).await;
    assert_eq!(read.status, 200, "{}", read.text);
    let read = read.json();
    assert_eq!(read["source"], "tapis_template");
    assert_eq!(read["dropped"], json!(["time_to_stop_default"]));
    let kernel = &read["template"]["spec"]["kernel"];
    assert_eq!(
        (kernel["image"].as_str(), kernel["run"]["startup_command"].as_str()),
        (Some("corral-test/busybox"), Some("sleep 60"))
    );
    assert_eq!(read["template"]["spec"]["resources"], json!({"cpu": "1.5", "mem": "512m"}));
    let ids: Vec<Value> = get_json(&gw, "/api/session-templates", &alice)
        .await
        .json()
        .as_array()
        .expect("value")
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(ids, [json!("tapisone"), json!("template1234")]);

    // Started like a session template: the pod pins the Tapis tag it was read from.
    let body = json!({"pod_id": "tapispod", "overrides": {"spec": {"kernel": {"environ": {"A": null}}}}});
    let started = send_json(&gw, "POST", "/api/session-templates/tapisone/start", &alice, &body).await;
    assert_eq!(started.status, 201, "{}", started.text);
    let spec = gw.record("acme", "tapispod").await.desired.value.spec;
    assert!(spec.environment_variables.is_empty(), "{:?}", spec.environment_variables);
    assert_eq!(spec.time_to_stop_default, 3600, "fields without a counterpart still come from the template");
    assert!(spec.template.starts_with("tapisone:latest@"), "{}", spec.template);

    // A Tapis template with no image is not a session template.
    let bare = json!({"template_id": "noimage"});
    gw.call("POST", "/v3/pods/templates", Some(&alice), Some(bare)).await;
    let tag = json!({"tag": "latest", "commit_message": "x", "pod_definition": {"description": "x"}});
    gw.call("POST", "/v3/pods/templates/noimage/tags", Some(&alice), Some(tag)).await;
    let r = get_json(&gw, "/api/session-templates/noimage", &alice).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(problems(&r).iter().any(|(f, _)| f == "spec.kernel.image"), "{}", r.text);

    // Deleted and re-made through the Tapis surface: the old session document no longer applies.
    assert_eq!(gw.call("DELETE", "/v3/pods/templates/template1234", Some(&alice), None).await.status, 200);
    assert_eq!(get_json(&gw, "/api/session-templates/template1234", &alice).await.status, 404);
    let new = json!({"template_id": "template1234"});
    assert_eq!(gw.call("POST", "/v3/pods/templates", Some(&alice), Some(new)).await.status, 200);
    let tag = json!({"tag": "latest", "commit_message": "x", "pod_definition": {"image": "corral-test/other"}});
    assert_eq!(gw.call("POST", "/v3/pods/templates/template1234/tags", Some(&alice), Some(tag)).await.status, 200);
    let read = get_json(&gw, "/api/session-templates/template1234", &alice).await.json();
    assert_eq!(
        (read["source"].as_str(), read["template"]["spec"]["kernel"]["image"].as_str()),
        (Some("tapis_template"), Some("corral-test/other"))
    );
    assert_eq!(raw(&gw, "DELETE", "/api/session-templates/template1234", &alice, None, "").await.status, 200);
    let again = post_yaml(&gw, &alice, SEED_YAML).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.json()["template"], canonical("template1234"));
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_documents_list_every_problem_and_store_nothing() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");
    let head = "api_version: v1\nkind: taskTemplate\nmetadata: {name: bad}\n";
    let rows: [(&str, String, &[&str]); 6] = [
        ("unknown kind", "api_version: v1\nkind: podTemplate\nmetadata: {name: bad}\nspec: {kernel: {image: img}}\n".into(), &["kind"]),
        ("missing image", format!("{head}spec: {{kernel: {{environ: {{A: b}}}}}}\n"), &["spec.kernel.image"]),
        (
            "bad resource strings",
            format!("{head}spec:\n  kernel: {{image: img}}\n  resources: {{cpu: lots, mem: 4x}}\n"),
            &["spec.resources.cpu", "spec.resources.mem"],
        ),
        ("unknown key", format!("{head}spec:\n  kernel: {{image: img, imgae: x}}\n"), &["spec.kernel.imgae"]),
        (
            "alias conflict startup and startupCommand",
            format!("{head}spec:\n  kernel:\n    image: img\n    run: {{startup: a, startupCommand: b}}\n"),
            &["spec.kernel.run.startupCommand"],
        ),
        (
            "everything at once, and a name Tapis cannot take",
            "api_version: v1\nkind: podTemplate\nextra: 1\nmetadata: {name: Bad_Name}\nspec:\n  kernel:\n    run: {startup: a, startupCommand: b}\n  resources: {cpu: lots}\n".into(),
            &["kind", "extra", "spec.kernel.image", "spec.kernel.run.startupCommand", "spec.resources.cpu"],
        ),
    ];
    let before = (full_snapshot(&gw, &["acme"]).await, session_docs(&gw).await);
    for (name, text, want) in &rows {
        for json_too in [false, true] {
            let r = if json_too {
                // The same document as JSON: the paths are the same.
                let Some(v) = yaml_as_json(text) else { continue };
                raw(&gw, "POST", "/api/session-templates", &alice, Some(("application/json", v)), "").await
            } else {
                post_yaml(&gw, &alice, text).await
            };
            assert_eq!(r.status, 400, "{name}: {}", r.text);
            assert_eq!(r.content_type, "application/json");
            let mut got: Vec<String> = problems(&r).into_iter().map(|(f, _)| f).collect();
            got.sort();
            got.dedup();
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{name} (json: {json_too}): {}", r.text);
        }
    }
    let renamed = SEED_YAML.replace("name: template1234", "name: Bad_Name");
    let r = post_yaml(&gw, &alice, &renamed).await;
    assert_eq!(r.status, 400);
    assert_eq!(problems(&r).iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(), ["metadata.name"]);
    let syntax =
        raw(&gw, "POST", "/api/session-templates", &alice, Some(("application/json", "{\"kind\": ".into())), "").await;
    assert_eq!(problems(&syntax)[0].0, "document");
    assert_eq!((full_snapshot(&gw, &["acme"]).await, session_docs(&gw).await), before, "nothing stored");
    gw.shutdown().await;
}

/// The few rows of the table that have a JSON twin, written out by hand.
fn yaml_as_json(yaml: &str) -> Option<String> {
    let doc = match yaml {
        y if y.contains("podTemplate") && !y.contains("extra") => {
            json!({"api_version": "v1", "kind": "podTemplate", "metadata": {"name": "bad"}, "spec": {"kernel": {"image": "img"}}})
        }
        y if y.contains("imgae") => {
            json!({"api_version": "v1", "kind": "taskTemplate", "metadata": {"name": "bad"}, "spec": {"kernel": {"image": "img", "imgae": "x"}}})
        }
        y if y.contains("startupCommand: b}\n") && !y.contains("extra") => json!({
            "api_version": "v1", "kind": "taskTemplate", "metadata": {"name": "bad"},
            "spec": {"kernel": {"image": "img", "run": {"startup": "a", "startupCommand": "b"}}}
        }),
        _ => return None,
    };
    Some(doc.to_string())
}

#[tokio::test]
async fn permissions_follow_the_tapis_template_model() {
    let gw = Gateway::start().await;
    let alice = gw.token("acme", "alice");
    let bob = gw.token("acme", "bob");
    let eve = gw.token("dev", "alice");
    assert_eq!(post_yaml(&gw, &alice, SEED_YAML).await.status, 201);
    let path = "/api/session-templates/template1234";

    // Invisible: 404 for every operation, and not listed.
    for (who, token) in [("bob", &bob), ("other tenant", &eve)] {
        assert_eq!(get_json(&gw, path, token).await.status, 404, "{who}");
        let put = raw(&gw, "PUT", path, token, Some(("application/yaml", SEED_YAML.into())), "").await;
        assert_eq!(put.status, 404, "{who}");
        assert_eq!(raw(&gw, "DELETE", path, token, None, "").await.status, 404, "{who}");
        let start = send_json(&gw, "POST", &format!("{path}/start"), token, &json!({"pod_id": "bobs"})).await;
        assert_eq!(start.status, 404, "{who}");
        assert_eq!(get_json(&gw, "/api/session-templates", token).await.json(), json!([]), "{who}");
    }

    // READ: get, list and start, but not replace or delete.
    let grant = json!({"user": "bob", "level": "READ"});
    assert_eq!(
        gw.call("POST", "/v3/pods/templates/template1234/permissions", Some(&alice), Some(grant)).await.status,
        200
    );
    assert_eq!(get_json(&gw, path, &bob).await.status, 200);
    assert_eq!(get_json(&gw, "/api/session-templates", &bob).await.json().as_array().expect("array").len(), 1);
    let put = raw(&gw, "PUT", path, &bob, Some(("application/yaml", SEED_YAML.into())), "").await;
    assert_eq!(put.status, 403, "{}", put.text);
    assert_eq!(raw(&gw, "DELETE", path, &bob, None, "").await.status, 403);
    let start = send_json(&gw, "POST", &format!("{path}/start"), &bob, &json!({"pod_id": "bobs"})).await;
    assert_eq!(start.status, 201, "{}", start.text);
    assert_eq!(gw.record("acme", "bobs").await.desired.value.owner, "bob");

    // USER: replace, still not delete; the owner (ADMIN) deletes.
    let grant = json!({"user": "bob", "level": "USER"});
    gw.call("POST", "/v3/pods/templates/template1234/permissions", Some(&alice), Some(grant)).await;
    let put = raw(&gw, "PUT", path, &bob, Some(("application/yaml", SEED_YAML.into())), "").await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(raw(&gw, "DELETE", path, &bob, None, "").await.status, 403);
    assert_eq!(raw(&gw, "DELETE", path, &alice, None, "").await.status, 200);
    assert_eq!(get_json(&gw, path, &alice).await.status, 404);
    assert!(gw.store.list_docs("session_template").await.expect("list docs").is_empty());
    gw.shutdown().await;
}
