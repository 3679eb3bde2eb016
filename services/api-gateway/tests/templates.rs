//! Templates and tags through HTTP: versions, resolution of pod templates (nested, pinned,
//! re-grabbed), the merge rules end to end, provenance, and saving a pod as a tag.

mod common;

use common::{Gateway, Resp, full_snapshot};
use corral_store::Store;
use serde_json::{Value, json};

async fn ok(gw: &Gateway, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    let r = gw.call(method, path, Some(token), body).await;
    assert_eq!(r.status, 200, "{method} {path}: {:?}", r.body);
    assert_eq!(r.body["status"], "success", "{method} {path}: {:?}", r.body);
    r
}

async fn template(gw: &Gateway, token: &str, id: &str) {
    ok(gw, "POST", "/v3/pods/templates", token, Some(json!({"template_id": id, "description": "d"}))).await;
}

/// Pushes a tag version; returns its `tag_timestamp`.
async fn push(gw: &Gateway, token: &str, id: &str, tag: Option<&str>, def: Value) -> String {
    let mut body = json!({"pod_definition": def, "commit_message": "c"});
    if let Some(t) = tag {
        body["tag"] = json!(t);
    }
    let r = ok(gw, "POST", &format!("/v3/pods/templates/{id}/tags"), token, Some(body)).await;
    r.result()["tag_timestamp"].as_str().expect("tag_timestamp").to_string()
}

/// Creates an OFF pod from `body` and returns the created pod.
async fn pod(gw: &Gateway, token: &str, mut body: Value) -> Value {
    body["status_requested"] = json!("OFF");
    ok(gw, "POST", "/v3/pods", token, Some(body)).await.result().clone()
}

fn is_tag_timestamp(tag: &str, ts: &str) -> bool {
    let Some(time) = ts.strip_prefix(&format!("{tag}@")) else { return false };
    time.len() == 19
        && time.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 10 => b == b'-',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        })
}

#[tokio::test]
async fn tags_are_immutable_versions_listed_newest_first() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    let r = ok(&gw, "POST", "/v3/pods/templates", a, Some(json!({"template_id": "base", "metatags": ["x"]}))).await;
    assert_eq!((r.result()["template_id"].clone(), r.result()["owner"].clone()), (json!("base"), json!("alice")));
    let r = gw.call("POST", "/v3/pods/templates", Some(a), Some(json!({"template_id": "base"}))).await;
    assert_eq!(r.status, 409, "{:?}", r.body);

    // Default tag `latest`; two pushes in the same second still get distinct timestamps.
    let v1 = push(&gw, a, "base", None, json!({"image": "img/one"})).await;
    let v2 = push(&gw, a, "base", None, json!({"image": "img/two"})).await;
    let rc = push(&gw, a, "base", Some("rc1"), json!({"image": "img/rc"})).await;
    assert!(is_tag_timestamp("latest", &v1) && is_tag_timestamp("latest", &v2), "{v1} {v2}");
    assert!(is_tag_timestamp("rc1", &rc), "{rc}");
    assert_ne!(v1, v2, "versions of one tag never share a timestamp");
    assert!(v2 > v1, "{v2} after {v1}");

    // By name: every version of that tag, newest first; by tag@ts: exactly that one.
    let r = ok(&gw, "GET", "/v3/pods/templates/base/tags/latest", a, None).await;
    let stamps: Vec<&str> =
        r.result().as_array().expect("list").iter().filter_map(|t| t["tag_timestamp"].as_str()).collect();
    assert_eq!(stamps, [v2.as_str(), v1.as_str()]);
    let r = ok(&gw, "GET", &format!("/v3/pods/templates/base/tags/{v1}"), a, None).await;
    let list = r.result().as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["pod_definition"]["image"], "img/one");
    let r = gw.call("GET", "/v3/pods/templates/base/tags/nosuch", Some(a), None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert!(r.message().contains("nosuch"), "{}", r.message());

    // Lists, with and without definitions.
    let r = ok(&gw, "GET", "/v3/pods/templates/base/tags", a, None).await;
    let tags = r.result().as_array().expect("tags");
    assert_eq!(tags.len(), 3);
    assert!(tags.iter().all(|t| t["pod_definition"].is_object() && t["added_by"] == "alice"));
    let r = ok(&gw, "GET", "/v3/pods/templates/base/tags?full=false", a, None).await;
    assert!(r.result().as_array().expect("tags").iter().all(|t| t.get("pod_definition").is_none()));
    template(&gw, a, "empty").await;
    let r = ok(&gw, "GET", "/v3/pods/templates/tags", a, None).await;
    assert_eq!(r.result()["base"]["tags"].as_array().expect("tags").len(), 3);
    assert_eq!(r.result()["empty"]["tags"], json!([]));
    assert!(r.result()["base"]["tags"][0]["pod_definition"].is_object());
    let r = ok(&gw, "GET", "/v3/pods/templates/tags?full=false", a, None).await;
    assert!(r.result()["base"]["tags"].as_array().expect("tags").iter().all(|t| t.get("pod_definition").is_none()));

    // Template update and bad bodies.
    let r = ok(&gw, "PUT", "/v3/pods/templates/base", a, Some(json!({"description": "new"}))).await;
    assert_eq!(r.result()["description"], "new");
    for (path, body, says) in [
        ("/v3/pods/templates", json!({"template_id": "Bad"}), "template_id"),
        ("/v3/pods/templates", json!({"template_id": "tags"}), "reserved"),
        ("/v3/pods/templates/base/tags", json!({"pod_definition": {}, "commit_message": "c", "tag": "a b"}), "tag"),
        ("/v3/pods/templates/base/tags", json!({"pod_definition": {"imag": "x"}, "commit_message": "c"}), "imag"),
    ] {
        let before = full_snapshot(&gw, &["dev"]).await;
        let r = gw.call("POST", path, Some(a), Some(body)).await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
        assert!(r.message().contains(says), "{}", r.message());
        assert_eq!(full_snapshot(&gw, &["dev"]).await, before);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn pods_pin_the_tag_they_were_made_from() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    template(&gw, a, "web").await;
    let old = push(&gw, a, "web", None, json!({"image": "img/old"})).await;
    let new = push(&gw, a, "web", None, json!({"image": "img/new"})).await;
    let stable = push(&gw, a, "web", Some("stable"), json!({"image": "img/stable"})).await;
    for (id, reference, image, pinned) in [
        ("plain", "web".to_string(), "img/new", format!("web:{new}")),
        ("named", "web:stable".to_string(), "img/stable", format!("web:{stable}")),
        ("exact", format!("web:{old}"), "img/old", format!("web:{old}")),
    ] {
        let p = pod(&gw, a, json!({"pod_id": id, "template": reference})).await;
        assert_eq!((p["image"].as_str(), p["template"].as_str()), (Some(image), Some(pinned.as_str())), "{id}");
        let rec = gw.record("dev", id).await;
        assert_eq!(rec.desired.value.spec.template, pinned, "{id}: the pinned reference is stored");
    }
    // A later push does not move existing pods.
    push(&gw, a, "web", None, json!({"image": "img/newer"})).await;
    let r = ok(&gw, "GET", "/v3/pods/plain", a, None).await;
    assert_eq!(r.result()["image"], "img/new");
    gw.shutdown().await;
}

#[tokio::test]
async fn nested_templates_merge_by_the_rules_and_derived_shows_provenance() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    template(&gw, a, "tone").await;
    let t1 = push(
        &gw,
        a,
        "tone",
        None,
        json!({
            "image": "img/base", "description": "from t1",
            "environment_variables": {"A": "t1", "B": "t1", "C": "t1"},
            "resources": {"cpu_limit": 3000, "mem_limit": 4096},
            "networking": {"default": {"port": 8000}, "extra": {"port": 9000}},
        }),
    )
    .await;
    template(&gw, a, "ttwo").await;
    let t2 = push(
        &gw,
        a,
        "ttwo",
        None,
        json!({
            "template": "tone", "description": "from t2",
            "environment_variables": {"B": "t2", "C": null},
            "resources": {"cpu_limit": 2500},
            "networking": {"extra": {"protocol": "tcp"}},
        }),
    )
    .await;
    // The nested reference is pinned when the tag is stored.
    let r = ok(&gw, "GET", "/v3/pods/templates/ttwo/tags/latest", a, None).await;
    assert_eq!(r.result()[0]["pod_definition"]["template"], format!("tone:{t1}"));

    let p = pod(
        &gw,
        a,
        json!({
            "pod_id": "nested", "template": "ttwo",
            "environment_variables": {"A": "pod"},
            "resources": {"mem_request": 512},
        }),
    )
    .await;
    assert_eq!(p["image"], "img/base");
    assert_eq!(p["description"], "from t2");
    assert_eq!(p["template"], format!("ttwo:{t2}"));
    assert_eq!(p["environment_variables"], json!({"A": "pod", "B": "t2"}), "null removes C");
    let res = &p["resources"];
    assert_eq!((res["cpu_limit"].clone(), res["mem_limit"].clone()), (json!(2500), json!(4096)));
    assert_eq!((res["mem_request"].clone(), res["cpu_request"].clone()), (json!(512), json!(250)));
    let extra = &p["networking"]["extra"];
    assert_eq!((extra["port"].clone(), extra["protocol"].clone()), (json!(9000), json!("tcp")));
    assert_eq!(p["networking"]["default"]["port"], 8000);

    let r = ok(&gw, "GET", "/v3/pods/nested/derived", a, None).await;
    let prov = &r.result()["provenance"];
    let from_t1 = format!("template tone:{t1}");
    let from_t2 = format!("template ttwo:{t2}");
    for (path, want) in [
        ("image", from_t1.as_str()),
        ("description", from_t2.as_str()),
        ("environment_variables.A", "pod"),
        ("environment_variables.B", from_t2.as_str()),
        ("resources.cpu_limit", from_t2.as_str()),
        ("resources.mem_limit", from_t1.as_str()),
        ("resources.mem_request", "pod"),
        ("resources.cpu_request", "default"),
        ("networking.extra.port", from_t1.as_str()),
        ("networking.extra.protocol", from_t2.as_str()),
        ("networking.default.port", from_t1.as_str()),
    ] {
        assert_eq!(prov[path].as_str(), Some(want), "provenance of {path}: {prov}");
    }
    assert!(prov.get("environment_variables.C").is_none(), "removed keys have no provenance");
    assert_eq!(r.result()["image"], "img/base");
    gw.shutdown().await;
}

#[tokio::test]
async fn the_same_tag_name_in_two_templates_never_crosses() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    template(&gw, a, "first").await;
    template(&gw, a, "second").await;
    push(&gw, a, "first", None, json!({"image": "img/first"})).await;
    // Pushed later: Tapis's lookup would hand this to `first:latest`.
    push(&gw, a, "second", None, json!({"image": "img/second"})).await;
    let p = pod(&gw, a, json!({"pod_id": "fromfirst", "template": "first"})).await;
    assert_eq!(p["image"], "img/first");
    assert!(p["template"].as_str().expect("template").starts_with("first:latest@"));
    // A tag only `second` has, and a version of `second`, are not found under `first`.
    let only = push(&gw, a, "second", Some("only2"), json!({"image": "img/only2"})).await;
    for reference in ["first:only2".to_string(), format!("first:{only}")] {
        let r = gw.call("POST", "/v3/pods", Some(a), Some(json!({"pod_id": "cross", "template": reference}))).await;
        assert_eq!(r.status, 400, "{reference}: {:?}", r.body);
        assert!(r.message().contains(&reference), "{reference}: {}", r.message());
    }
    let r = ok(&gw, "GET", "/v3/pods/templates/first/tags/latest", a, None).await;
    assert_eq!(r.result().as_array().expect("versions").len(), 1, "only first's own version");
    assert_eq!(r.result()[0]["pod_definition"]["image"], "img/first");
    assert_eq!(gw.call("GET", "/v3/pods/templates/first/tags/only2", Some(a), None).await.status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn unresolvable_templates_and_missing_images_are_400s_that_change_nothing() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    template(&gw, a, "noimage").await;
    push(&gw, a, "noimage", None, json!({"description": "no image here"})).await;
    template(&gw, a, "notags").await;
    template(&gw, a, "cyca").await;
    push(&gw, a, "cyca", None, json!({"image": "img/a"})).await;
    template(&gw, a, "cycb").await;
    let cycb_ts = push(&gw, a, "cycb", None, json!({"template": "cyca"})).await;
    // cyca's newest version builds on cycb, which builds on (an older) cyca. The API refuses
    // to store such a version, so it is written straight into the store, as a damaged or
    // hand-edited store would hold it: resolution must still report the cycle.
    let tags = gw.store.get_doc("pods_template_tags", "dev/cyca").await.expect("read").expect("cyca has tags");
    let mut versions: Vec<corral_model::template::TemplateTag> = serde_json::from_str(&tags.value).expect("tags");
    let newest = versions.iter().map(|t| t.creation_ts).max().unwrap_or_default() + 5_000;
    let def = corral_model::template::PodLayer { template: Some(format!("cycb:{cycb_ts}")), ..Default::default() };
    versions.push(corral_model::template::TemplateTag::new("cyca", "latest", def, "loop", "alice", newest));
    let json = serde_json::to_string(&versions).expect("encode");
    gw.store.put_doc("pods_template_tags", "dev/cyca", &json, tags.version).await.expect("write");
    for (template, says) in [
        ("nosuchtemplate", "nosuchtemplate"),
        ("notags", "notags:latest"),
        ("noimage:beta", "noimage:beta"),
        ("noimage:latest@2001-01-01-00:00:00", "noimage:latest@2001-01-01-00:00:00"),
        ("noimage@2001-01-01-00:00:00", "timestamp needs a tag"),
        ("noimage", "neither the pod nor its templates set one"),
        ("cyca", "template cycle: cyca:latest -> cycb:latest@"),
    ] {
        let before = full_snapshot(&gw, &["dev"]).await;
        let r = gw.call("POST", "/v3/pods", Some(a), Some(json!({"pod_id": "willfail", "template": template}))).await;
        assert_eq!(r.status, 400, "{template}: {:?}", r.body);
        assert!(r.message().contains(says), "{template}: {}", r.message());
        assert_eq!(full_snapshot(&gw, &["dev"]).await, before, "{template}");
    }
    let r = gw.call("POST", "/v3/pods", Some(a), Some(json!({"pod_id": "bare"}))).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().contains("image"), "{}", r.message());
    gw.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_the_pinned_tag_unless_asked_to_grab_the_latest() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    template(&gw, a, "app").await;
    let v1 = push(
        &gw,
        a,
        "app",
        None,
        json!({"image": "img/v1", "description": "t v1", "environment_variables": {"K": "t1"}}),
    )
    .await;
    pod(&gw, a, json!({"pod_id": "regrab", "template": "app"})).await;
    pod(&gw, a, json!({"pod_id": "edited", "template": "app"})).await;
    let v2 = push(
        &gw,
        a,
        "app",
        None,
        json!({"image": "img/v2", "description": "t v2", "environment_variables": {"K": "t2"}}),
    )
    .await;

    ok(&gw, "GET", "/v3/pods/regrab/restart", a, None).await;
    let spec = gw.record("dev", "regrab").await.desired.value.spec;
    assert_eq!((spec.image.as_str(), spec.template), ("img/v1", format!("app:{v1}")), "a plain restart keeps the pin");

    let r = ok(&gw, "GET", "/v3/pods/regrab/restart?grab_latest_template_tag=true", a, None).await;
    assert_eq!(r.result()["image"], "img/v2");
    let spec = gw.record("dev", "regrab").await.desired.value.spec;
    assert_eq!((spec.image.as_str(), spec.template), ("img/v2", format!("app:{v2}")));
    let r = ok(&gw, "GET", "/v3/pods/regrab/derived", a, None).await;
    assert_eq!(r.result()["provenance"]["image"], format!("template app:{v2}"));

    // The owner's own change survives re-resolution; untouched fields follow the template.
    ok(&gw, "PUT", "/v3/pods/edited", a, Some(json!({"description": "mine", "environment_variables": {"K": "mine"}})))
        .await;
    ok(&gw, "GET", "/v3/pods/edited/restart?grab_latest_template_tag=True", a, None).await;
    let spec = gw.record("dev", "edited").await.desired.value.spec;
    assert_eq!(spec.image, "img/v2");
    assert_eq!(spec.description, "mine");
    assert_eq!(spec.environment_variables.get("K").map(String::as_str), Some("mine"));
    let r = ok(&gw, "GET", "/v3/pods/edited/derived", a, None).await;
    assert_eq!(r.result()["provenance"]["description"], "pod");
    assert_eq!(r.result()["provenance"]["image"], format!("template app:{v2}"));
    gw.shutdown().await;
}

#[tokio::test]
async fn save_pod_as_template_tag_recreates_the_pod() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    let original = pod(
        &gw,
        a,
        json!({
            "pod_id": "orig", "image": "img/saved", "description": "saved pod",
            "environment_variables": {"X": "1"}, "resources": {"cpu_limit": 3000},
            "networking": {"default": {"port": 8888}},
        }),
    )
    .await;
    template(&gw, a, "saves").await;
    let body = json!({"template_id": "saves", "tag": "snap", "commit_message": "from orig"});
    let r = ok(&gw, "POST", "/v3/pods/orig/save_pod_as_template_tag", a, Some(body)).await;
    let ts = r.result()["tag_timestamp"].as_str().expect("ts").to_string();
    assert!(is_tag_timestamp("snap", &ts), "{ts}");
    let copy = pod(&gw, a, json!({"pod_id": "copy", "template": "saves:snap"})).await;
    for field in ["image", "description", "environment_variables", "resources", "time_to_stop_default", "command"] {
        assert_eq!(copy[field], original[field], "{field}");
    }
    assert_eq!(copy["networking"]["default"]["port"], 8888);
    assert_eq!(copy["template"], format!("saves:{ts}"));

    // A templated pod saves its own layer with its pinned reference.
    template(&gw, a, "savesb").await;
    let body = json!({"template_id": "savesb", "tag": "again", "commit_message": "from copy"});
    let r = ok(&gw, "POST", "/v3/pods/copy/save_pod_as_template_tag", a, Some(body)).await;
    assert_eq!(r.result()["pod_definition"]["template"], format!("saves:{ts}"));
    let third = pod(&gw, a, json!({"pod_id": "third", "template": "savesb:again"})).await;
    assert_eq!(third["image"], "img/saved");

    // Another template needs USER on it: bob's template is invisible to alice.
    let bob = gw.token("dev", "bob");
    template(&gw, &bob, "bobs").await;
    let before = full_snapshot(&gw, &["dev"]).await;
    let body = json!({"template_id": "bobs", "commit_message": "m"});
    let r = gw.call("POST", "/v3/pods/orig/save_pod_as_template_tag", Some(a), Some(body)).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(full_snapshot(&gw, &["dev"]).await, before);
    gw.shutdown().await;
}

#[tokio::test]
async fn deleting_a_template_deletes_its_tags() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    template(&gw, a, "gone").await;
    push(&gw, a, "gone", None, json!({"image": "img/gone"})).await;
    pod(&gw, a, json!({"pod_id": "survivor", "template": "gone"})).await;
    let r = ok(&gw, "DELETE", "/v3/pods/templates/gone", a, None).await;
    assert_eq!(r.message(), "template deleted");
    assert_eq!(gw.call("GET", "/v3/pods/templates/gone", Some(a), None).await.status, 404);
    assert_eq!(gw.call("GET", "/v3/pods/templates/gone/tags", Some(a), None).await.status, 404);
    assert!(
        corral_store::Store::list_docs(gw.store.as_ref(), "pods_template_tags").await.expect("docs").is_empty(),
        "no tag is left behind"
    );
    // A new template of the same id starts without tags.
    template(&gw, a, "gone").await;
    let r = ok(&gw, "GET", "/v3/pods/templates/gone/tags", a, None).await;
    assert_eq!(r.result(), &json!([]));
    let r = gw.call("POST", "/v3/pods", Some(a), Some(json!({"pod_id": "late", "template": "gone"}))).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    // The pod made from it keeps its merged definition.
    let r = ok(&gw, "GET", "/v3/pods/survivor", a, None).await;
    assert_eq!(r.result()["image"], "img/gone");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_template_the_caller_cannot_read_is_the_same_as_a_missing_one() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let bob = gw.token("dev", "bob");
    let acme_alice = gw.token("acme", "alice");
    template(&gw, &alice, "private").await;
    push(&gw, &alice, "private", None, json!({"image": "img/private-hush", "environment_variables": {"S": "hush-93"}}))
        .await;
    for (who, token) in [("bob", &bob), ("acme alice", &acme_alice)] {
        let before = full_snapshot(&gw, &["dev", "acme"]).await;
        let r =
            gw.call("POST", "/v3/pods", Some(token), Some(json!({"pod_id": "stolen", "template": "private"}))).await;
        let missing =
            gw.call("POST", "/v3/pods", Some(token), Some(json!({"pod_id": "stolen", "template": "nosuchtpl"}))).await;
        assert_eq!((r.status, missing.status), (400, 400), "{who}: {:?} / {:?}", r.body, missing.body);
        assert_eq!(r.message(), missing.message().replace("nosuchtpl", "private"), "{who}");
        assert!(!r.body.to_string().contains("hush"), "{who}: {:?}", r.body);
        assert_eq!(full_snapshot(&gw, &["dev", "acme"]).await, before, "{who}");
        // Nested under a tag of the caller's own template: refused the same way.
        template(&gw, token, &format!("wrap{}", who.len())).await;
        let r = gw
            .call(
                "POST",
                &format!("/v3/pods/templates/wrap{}/tags", who.len()),
                Some(token),
                Some(json!({"pod_definition": {"template": "private"}, "commit_message": "c"})),
            )
            .await;
        assert_eq!(r.status, 400, "{who}: {:?}", r.body);
        assert!(!r.body.to_string().contains("hush"), "{who}: {:?}", r.body);
    }
    // With READ, bob may build on it.
    let grant = Some(json!({"user": "bob", "level": "READ"}));
    ok(&gw, "POST", "/v3/pods/templates/private/permissions", &alice, grant).await;
    let p = pod(&gw, &bob, json!({"pod_id": "granted", "template": "private"})).await;
    assert_eq!(p["image"], "img/private-hush");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_tag_whose_chain_leads_back_to_its_template_is_refused_but_saving_a_new_version_works() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let a = alice.as_str();
    template(&gw, a, "loopa").await;
    template(&gw, a, "loopb").await;
    push(&gw, a, "loopa", None, json!({"image": "img/a", "environment_variables": {"A": "1"}})).await;
    push(&gw, a, "loopb", None, json!({"template": "loopa"})).await;

    // loopa's new tag would sit on loopb, which sits on loopa: never resolvable.
    let before = full_snapshot(&gw, &["dev"]).await;
    let body = json!({"pod_definition": {"template": "loopb"}, "commit_message": "c"});
    let r = gw.call("POST", "/v3/pods/templates/loopa/tags", Some(a), Some(body)).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().contains("template cycle: loopa -> loopb -> loopa"), "{}", r.message());
    assert_eq!(full_snapshot(&gw, &["dev"]).await, before, "nothing stored");

    // A pod made from loopa, changed and saved as a new version of loopa, stores its whole
    // definition (no reference back to loopa), and that version resolves.
    pod(&gw, a, json!({"pod_id": "fromloop", "template": "loopa", "description": "changed"})).await;
    let body = json!({"template_id": "loopa", "tag": "v2", "commit_message": "next version"});
    let r = ok(&gw, "POST", "/v3/pods/fromloop/save_pod_as_template_tag", a, Some(body)).await;
    assert_eq!(r.result()["pod_definition"]["template"], Value::Null, "{:?}", r.result());
    let next = pod(&gw, a, json!({"pod_id": "fromv2", "template": "loopa:v2"})).await;
    assert_eq!(next["image"], "img/a");
    assert_eq!(next["description"], "changed");
    assert_eq!(next["environment_variables"]["A"], "1");
    gw.shutdown().await;
}
