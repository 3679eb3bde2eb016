//! The images allowlist with enforcement on: who may change it, what it allows, and that the
//! image checked is the pod's final one, after template resolution.

mod common;

use common::{Gateway, Resp, full_snapshot};
use serde_json::{Value, json};

/// Tenant admins `root` (acme, dev), `ops` an admin of every tenant; enforcement on, with a
/// configured pattern.
const ENFORCING: &str =
    "[auth]\nadmin_users = \"acme:root,dev:root,ops\"\n[images]\nenforce = true\nallow = [\"cfgallowed/*\"]\n";

async fn start() -> Gateway {
    Gateway::start_configured(ENFORCING, |mem| mem).await
}

async fn ok(gw: &Gateway, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    let r = gw.call(method, path, Some(token), body).await;
    assert_eq!(r.status, 200, "{method} {path}: {:?}", r.body);
    assert_eq!(r.body["status"], "success", "{method} {path}: {:?}", r.body);
    r
}

async fn create(gw: &Gateway, token: &str, id: &str, image: &str) -> Resp {
    gw.call("POST", "/v3/pods", Some(token), Some(json!({"pod_id": id, "image": image, "status_requested": "OFF"})))
        .await
}

/// A refused pod: a 400 naming the image, saying why, and nothing stored.
async fn refused(gw: &Gateway, token: &str, body: Value, image: &str, rule: &str) {
    let before = full_snapshot(gw, &["dev", "acme"]).await;
    let r = gw.call("POST", "/v3/pods", Some(token), Some(body.clone())).await;
    assert_eq!(r.status, 400, "{body}: {:?}", r.body);
    assert!(r.message().contains(&format!("image '{image}'")), "{body}: {}", r.message());
    assert!(r.message().contains(rule), "{body}: {} should say {rule:?}", r.message());
    assert_eq!(full_snapshot(gw, &["dev", "acme"]).await, before, "{body}");
}

fn images(r: &Resp) -> Vec<String> {
    let mut out: Vec<String> =
        r.result().as_array().expect("list").iter().map(|i| i["image"].as_str().expect("image").to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn an_admin_allows_a_pattern_and_the_pod_is_accepted() {
    let gw = start().await;
    let alice = gw.token("dev", "alice");
    let root = gw.token("dev", "root");
    refused(
        &gw,
        &alice,
        json!({"pod_id": "early", "image": "corral-test/busybox:latest"}),
        "corral-test/busybox:latest",
        "no entry of the images allowlist matches 'corral-test/busybox'",
    )
    .await;

    let r = ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "corral-test/*", "description": "tests"})))
        .await;
    assert_eq!((r.result()["image"].clone(), r.result()["tenants"].clone()), (json!("corral-test/*"), json!(["dev"])));
    assert_eq!(r.result()["added_by"], "root");
    let r = create(&gw, &alice, "early", "corral-test/busybox:latest").await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Reading is for everyone, ids may contain slashes.
    let r = ok(&gw, "GET", "/v3/pods/images", &alice, None).await;
    assert_eq!(images(&r), ["corral-test/*"]);
    let r = ok(&gw, "GET", "/v3/pods/images/corral-test/*", &alice, None).await;
    assert_eq!(r.result()["description"], "tests");
    let r = gw.call("GET", "/v3/pods/images/corral-test/busybox", Some(&alice), None).await;
    assert_eq!(r.status, 404, "an entry is looked up by its own name: {:?}", r.body);
    ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "corral-test/busybox"}))).await;
    let r = ok(&gw, "GET", "/v3/pods/images/corral-test/busybox", &alice, None).await;
    assert_eq!(r.result()["image"], "corral-test/busybox");

    // A duplicate is a 409; deleting the pattern refuses the image again (the exact entry stays).
    let r = gw.call("POST", "/v3/pods/images", Some(&root), Some(json!({"image": "corral-test/*"}))).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    ok(&gw, "DELETE", "/v3/pods/images/corral-test/*", &root, None).await;
    assert_eq!(gw.call("GET", "/v3/pods/images/corral-test/*", Some(&alice), None).await.status, 404);
    assert_eq!(create(&gw, &alice, "exact", "corral-test/busybox").await.status, 200);
    refused(&gw, &alice, json!({"pod_id": "other", "image": "corral-test/other"}), "corral-test/other", "no entry")
        .await;
    gw.shutdown().await;
}

#[tokio::test]
async fn only_tenant_admins_change_the_allowlist() {
    let gw = start().await;
    let alice = gw.token("dev", "alice");
    let root = gw.token("dev", "root");
    ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "kept/*"}))).await;
    let acme_root = gw.token("acme", "root");
    for (who, token) in [("dev user", &alice), ("another dev user", &gw.token("dev", "mallory"))] {
        for (method, path, body) in [
            ("POST", "/v3/pods/images", Some(json!({"image": "evil/*"}))),
            ("POST", "/v3/pods/images/bulk", Some(json!([{"image": "evil/*"}, {"image": "worse/*"}]))),
            ("POST", "/v3/pods/images/bulk?skip_duplicates=true", Some(json!([{"image": "evil/*"}]))),
            ("DELETE", "/v3/pods/images/kept/*", None),
        ] {
            let before = full_snapshot(&gw, &["dev"]).await;
            let r = gw.call(method, path, Some(token), body).await;
            assert_eq!(r.status, 403, "{who}: {method} {path}: {:?}", r.body);
            assert!(r.message().contains("tenant admins"), "{}", r.message());
            assert_eq!(full_snapshot(&gw, &["dev"]).await, before, "{who}: {method} {path}");
        }
    }
    // acme's admin cannot touch dev's entries: a delete there only looks at acme's own.
    let r = gw.call("DELETE", "/v3/pods/images/kept/*", Some(&acme_root), None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(images(&ok(&gw, "GET", "/v3/pods/images", &alice, None).await), ["kept/*"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_tenant_admin_writes_only_their_own_tenant() {
    let gw = start().await;
    let root = gw.token("dev", "root");
    for tenants in [json!(["acme"]), json!(["dev", "acme"]), json!(["*"]), json!(["**"]), json!(["-acme"])] {
        let before = full_snapshot(&gw, &["dev", "acme"]).await;
        let body = json!({"image": "cross/*", "tenants": tenants});
        let r = gw.call("POST", "/v3/pods/images", Some(&root), Some(body.clone())).await;
        assert_eq!(r.status, 403, "{tenants}: {:?}", r.body);
        assert!(r.message().contains("'dev'"), "{}", r.message());
        let r = gw.call("POST", "/v3/pods/images/bulk", Some(&root), Some(json!([{"image": "fine/*"}, body]))).await;
        assert_eq!(r.status, 403, "bulk {tenants}: {:?}", r.body);
        assert_eq!(full_snapshot(&gw, &["dev", "acme"]).await, before, "{tenants}: all or nothing");
    }
    // Bad entries are 400s listing every problem, and nothing is stored.
    let r = gw
        .call("POST", "/v3/pods/images/bulk", Some(&root), Some(json!([{"image": "ok/*"}, {"image": "Bad Name"}])))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().contains("1.image"), "{}", r.message());
    assert!(corral_store::Store::list_docs(gw.store.as_ref(), "pods_images").await.expect("docs").is_empty());

    // A site admin (listed without a tenant) may write an entry for every tenant.
    let ops = gw.token("dev", "ops");
    ok(&gw, "POST", "/v3/pods/images", &ops, Some(json!({"image": "shared/*", "tenants": ["*"]}))).await;
    for tenant in ["dev", "acme"] {
        let r = create(&gw, &gw.token(tenant, "alice"), "sharedpod", "shared/tool:1").await;
        assert_eq!(r.status, 200, "{tenant}: {:?}", r.body);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn bulk_add_skips_duplicates_when_asked() {
    let gw = start().await;
    let root = gw.token("dev", "root");
    ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "one/*"}))).await;
    let list = json!([{"image": "one/*"}, {"image": "two/*"}, {"image": "three", "description": "d"}]);
    let r = ok(&gw, "POST", "/v3/pods/images/bulk?skip_duplicates=true", &root, Some(list.clone())).await;
    assert_eq!(images(&r), ["three", "two/*"], "only the new ones are returned");
    let r = ok(&gw, "GET", "/v3/pods/images", &root, None).await;
    assert_eq!(images(&r), ["one/*", "three", "two/*"]);
    let before = full_snapshot(&gw, &["dev"]).await;
    // All or nothing: a duplicate late in the list stores none of the list.
    let r = gw
        .call("POST", "/v3/pods/images/bulk", Some(&root), Some(json!([{"image": "four/*"}, {"image": "two/*"}])))
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(r.message().contains("two/*"), "{}", r.message());
    assert_eq!(full_snapshot(&gw, &["dev"]).await, before);
    let r = ok(&gw, "POST", "/v3/pods/images/bulk?skip_duplicates=True", &root, Some(list)).await;
    assert_eq!(r.result(), &json!([]));
    gw.shutdown().await;
}

#[tokio::test]
async fn denial_entries_and_other_tenants_entries() {
    let gw = start().await;
    let alice = gw.token("dev", "alice");
    let acme_alice = gw.token("acme", "alice");
    let root = gw.token("dev", "root");
    let acme_root = gw.token("acme", "root");
    ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "corral-test/*"}))).await;
    ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "corral-test/blocked", "tenants": ["-dev"]}))).await;
    ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "cfgallowed/bad", "tenants": ["-dev"]}))).await;
    ok(&gw, "POST", "/v3/pods/images", &acme_root, Some(json!({"image": "acmeonly/*"}))).await;

    // A denial beats an allowing pattern and the configured patterns.
    refused(
        &gw,
        &alice,
        json!({"pod_id": "blocked", "image": "corral-test/blocked:1"}),
        "corral-test/blocked:1",
        "excludes this tenant",
    )
    .await;
    refused(
        &gw,
        &alice,
        json!({"pod_id": "cfgbad", "image": "cfgallowed/bad"}),
        "cfgallowed/bad",
        "'cfgallowed/bad' excludes",
    )
    .await;
    assert_eq!(create(&gw, &alice, "cfgok", "cfgallowed/good").await.status, 200);
    assert_eq!(create(&gw, &alice, "allowed", "corral-test/busybox").await.status, 200);

    // acme's entries neither show nor apply in dev, and dev's do not apply in acme.
    refused(&gw, &alice, json!({"pod_id": "acmeimg", "image": "acmeonly/app"}), "acmeonly/app", "tenant 'dev'").await;
    assert_eq!(create(&gw, &acme_alice, "acmeimg", "acmeonly/app").await.status, 200);
    refused(
        &gw,
        &acme_alice,
        json!({"pod_id": "devimg", "image": "corral-test/busybox"}),
        "corral-test/busybox",
        "tenant 'acme'",
    )
    .await;
    assert_eq!(
        images(&ok(&gw, "GET", "/v3/pods/images", &alice, None).await),
        ["cfgallowed/bad", "corral-test/*", "corral-test/blocked"]
    );
    assert_eq!(images(&ok(&gw, "GET", "/v3/pods/images", &acme_alice, None).await), ["acmeonly/*"]);
    assert_eq!(gw.call("GET", "/v3/pods/images/acmeonly/*", Some(&alice), None).await.status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_image_after_template_resolution_is_checked() {
    let gw = start().await;
    let alice = gw.token("dev", "alice");
    let root = gw.token("dev", "root");
    let a = alice.as_str();
    ok(&gw, "POST", "/v3/pods/images", &root, Some(json!({"image": "corral-test/*"}))).await;
    ok(&gw, "POST", "/v3/pods/templates", a, Some(json!({"template_id": "bad"}))).await;
    let def = json!({"pod_definition": {"image": "unlisted/app"}, "commit_message": "c"});
    ok(&gw, "POST", "/v3/pods/templates/bad/tags", a, Some(def)).await;
    refused(&gw, a, json!({"pod_id": "frombad", "template": "bad"}), "unlisted/app", "no entry").await;
    // The pod's own image wins over the template's, and is the one checked.
    let r = gw
        .call(
            "POST",
            "/v3/pods",
            Some(a),
            Some(json!({"pod_id": "override", "template": "bad", "image": "corral-test/x", "status_requested": "OFF"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    ok(&gw, "POST", "/v3/pods/templates", a, Some(json!({"template_id": "good"}))).await;
    let def = json!({"pod_definition": {"image": "corral-test/busybox"}, "commit_message": "c"});
    ok(&gw, "POST", "/v3/pods/templates/good/tags", a, Some(def)).await;
    let r = gw
        .call(
            "POST",
            "/v3/pods",
            Some(a),
            Some(json!({"pod_id": "fromgood", "template": "good", "status_requested": "OFF"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // A newer tag with an unlisted image: grabbing it is refused and changes nothing.
    let def = json!({"pod_definition": {"image": "unlisted/newer"}, "commit_message": "c"});
    ok(&gw, "POST", "/v3/pods/templates/good/tags", a, Some(def)).await;
    let before = full_snapshot(&gw, &["dev"]).await;
    let r = gw.call("GET", "/v3/pods/fromgood/restart?grab_latest_template_tag=true", Some(a), None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().contains("image 'unlisted/newer'"), "{}", r.message());
    assert_eq!(full_snapshot(&gw, &["dev"]).await, before);

    // An update to an unlisted image is refused too.
    let r = gw.call("PUT", "/v3/pods/fromgood", Some(a), Some(json!({"image": "unlisted/put"}))).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().contains("image 'unlisted/put'"), "{}", r.message());
    assert_eq!(full_snapshot(&gw, &["dev"]).await, before);
    gw.shutdown().await;
}

#[tokio::test]
async fn enforcement_off_allows_any_image() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    assert_eq!(create(&gw, &alice, "anything", "not/listed:1").await.status, 200);
    gw.shutdown().await;
}
