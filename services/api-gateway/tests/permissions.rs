//! The permission matrix: every pod and template route, for callers holding no permission,
//! READ, USER, ADMIN, the owner, a tenant admin and users of another tenant. Denials change
//! nothing and leak nothing; an invisible object is the same 404 as a missing one.

mod common;

use common::{Gateway, Resp, full_snapshot};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Read,
    User,
    Admin,
}

/// Who calls, and the level they hold on the object (`None`: they may not see it).
struct Actor {
    name: &'static str,
    tenant: &'static str,
    user: &'static str,
    level: Option<Level>,
}

#[rustfmt::skip]
const ACTORS: [Actor; 8] = [
    Actor { name: "no permission", tenant: "dev", user: "nobody", level: None },
    Actor { name: "READ", tenant: "dev", user: "reader", level: Some(Level::Read) },
    Actor { name: "USER", tenant: "dev", user: "userlvl", level: Some(Level::User) },
    Actor { name: "ADMIN", tenant: "dev", user: "adminlvl", level: Some(Level::Admin) },
    Actor { name: "owner", tenant: "dev", user: "alice", level: Some(Level::Admin) },
    Actor { name: "tenant admin", tenant: "dev", user: "root", level: Some(Level::Admin) },
    Actor { name: "same name, other tenant", tenant: "acme", user: "alice", level: None },
    Actor { name: "admin of other tenant", tenant: "acme", user: "root", level: None },
];

/// Values the object holds that no denied caller may see.
const POD_IMAGE: &str = "corral-test/hushimage";
const POD_ENV: &str = "hush-env-value-71";
const TPL_IMAGE: &str = "corral-test/tplhushimage";
const TPL_ENV: &str = "tpl-hush-env-value-93";

/// One route: method, path after the object id, optional body, required level.
struct Row {
    method: &'static str,
    suffix: &'static str,
    body: Option<Value>,
    need: Level,
}

fn row(method: &'static str, suffix: &'static str, body: Option<Value>, need: Level) -> Row {
    Row { method, suffix, body, need }
}

fn pod_rows() -> Vec<Row> {
    use Level::{Admin, Read, User};
    let grant = || Some(json!({"user": "carol", "level": "READ"}));
    vec![
        row("GET", "", None, Read),
        row("PUT", "", Some(json!({"description": "changed by caller"})), User),
        row("DELETE", "", None, Admin),
        row("GET", "/derived", None, Read),
        row("GET", "/credentials", None, User),
        row("GET", "/logs", None, Read),
        row("GET", "/permissions", None, User),
        row("POST", "/permissions", grant(), Admin),
        row("DELETE", "/permissions/reader", None, Admin),
        row("GET", "/start", None, Admin),
        row("GET", "/stop", None, Admin),
        row("GET", "/restart", None, Admin),
        row("POST", "/save_pod_as_template_tag", Some(json!({"template_id": "savet", "commit_message": "m"})), Admin),
    ]
}

fn template_rows() -> Vec<Row> {
    use Level::{Admin, Read, User};
    let tag = json!({"pod_definition": {"image": "corral-test/other"}, "commit_message": "next"});
    vec![
        row("GET", "", None, Read),
        row("PUT", "", Some(json!({"description": "changed by caller"})), User),
        row("DELETE", "", None, Admin),
        row("GET", "/tags", None, Read),
        row("POST", "/tags", Some(tag), User),
        row("GET", "/tags/latest", None, Read),
        row("GET", "/permissions", None, User),
        row("POST", "/permissions", Some(json!({"user": "carol", "level": "READ"})), Admin),
        row("DELETE", "/permissions/reader", None, Admin),
    ]
}

async fn ok(gw: &Gateway, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    let r = gw.call(method, path, Some(token), body).await;
    assert_eq!(r.status, 200, "{method} {path}: {:?}", r.body);
    r
}

/// Gives reader/userlvl/adminlvl their levels on the object at `base`, as its owner.
async fn grant_levels(gw: &Gateway, base: &str, owner: &str) {
    for (user, level) in [("reader", "READ"), ("userlvl", "USER"), ("adminlvl", "ADMIN")] {
        ok(gw, "POST", &format!("{base}/permissions"), owner, Some(json!({"user": user, "level": level}))).await;
    }
}

/// Alice's pod (OFF, so start/stop/restart succeed) with a secret-looking image and env.
async fn seed_pod(gw: &Gateway, id: &str) {
    let alice = gw.token("dev", "alice");
    let body = json!({
        "pod_id": id, "image": POD_IMAGE, "status_requested": "OFF",
        "environment_variables": {"HUSH": POD_ENV},
    });
    ok(gw, "POST", "/v3/pods", &alice, Some(body)).await;
    grant_levels(gw, &format!("/v3/pods/{id}"), &alice).await;
}

/// Alice's template with a `latest` tag holding a secret-looking image and env.
async fn seed_template(gw: &Gateway, id: &str) {
    let alice = gw.token("dev", "alice");
    ok(gw, "POST", "/v3/pods/templates", &alice, Some(json!({"template_id": id}))).await;
    let tag = json!({"pod_definition": {"image": TPL_IMAGE, "environment_variables": {"HUSH": TPL_ENV}}, "commit_message": "first"});
    ok(gw, "POST", &format!("/v3/pods/templates/{id}/tags"), &alice, Some(tag)).await;
    grant_levels(gw, &format!("/v3/pods/templates/{id}"), &alice).await;
}

/// Runs one matrix: `seed` makes a fresh object per (row, actor) so rows stay independent.
async fn run_matrix(gw: &Gateway, kind: &str, prefix: &str, rows: Vec<Row>, secrets: [&str; 2]) {
    let mut checked = 0;
    for (ri, row) in rows.iter().enumerate() {
        for (ai, actor) in ACTORS.iter().enumerate() {
            let id = format!("{}r{ri}a{ai}", &kind[..1]);
            if kind == "pod" {
                seed_pod(gw, &id).await;
            } else {
                seed_template(gw, &id).await;
            }
            let token = gw.token(actor.tenant, actor.user);
            let what = format!("{} {prefix}{{id}}{} as {}", row.method, row.suffix, actor.name);
            let before = full_snapshot(gw, &["dev", "acme"]).await;
            let r = gw.call(row.method, &format!("{prefix}{id}{}", row.suffix), Some(&token), row.body.clone()).await;
            match actor.level {
                Some(held) if held >= row.need => {
                    assert!((200..300).contains(&r.status), "{what}: {:?}", r.body);
                    assert_eq!(r.body["status"], "success", "{what}: {:?}", r.body);
                }
                denied => {
                    let text = r.body.to_string();
                    for secret in secrets {
                        assert!(!text.contains(secret), "{what}: the body leaks {secret:?}: {text}");
                    }
                    assert_eq!(full_snapshot(gw, &["dev", "acme"]).await, before, "{what}: a denial changes nothing");
                    match denied {
                        None => {
                            // Exactly what the same caller gets for an object that does not exist.
                            let missing = gw
                                .call(
                                    row.method,
                                    &format!("{prefix}nosuch{id}{}", row.suffix),
                                    Some(&token),
                                    row.body.clone(),
                                )
                                .await;
                            assert_eq!(r.status, 404, "{what}: {:?}", r.body);
                            assert_eq!(missing.status, 404, "{what} (missing): {:?}", missing.body);
                            assert_eq!(r.message(), missing.message().replace(&format!("nosuch{id}"), &id), "{what}");
                            assert_eq!(r.message(), format!("{kind} '{id}' not found"), "{what}");
                        }
                        Some(held) => {
                            assert_eq!(r.status, 403, "{what}: {:?}", r.body);
                            let need = format!("{:?}", row.need).to_uppercase();
                            let held = format!("{held:?}").to_uppercase();
                            assert!(
                                r.message().contains(&need) && r.message().contains(&held),
                                "{what}: {}",
                                r.message()
                            );
                        }
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, rows.len() * ACTORS.len());
}

#[tokio::test]
async fn pod_routes_permission_matrix() {
    let gw = Gateway::start().await;
    // The template save_pod_as_template_tag writes to: USER for every caller with a pod level,
    // so a refusal there always comes from the pod level.
    let alice = gw.token("dev", "alice");
    ok(&gw, "POST", "/v3/pods/templates", &alice, Some(json!({"template_id": "savet"}))).await;
    for user in ["reader", "userlvl", "adminlvl"] {
        let body = Some(json!({"user": user, "level": "USER"}));
        ok(&gw, "POST", "/v3/pods/templates/savet/permissions", &alice, body).await;
    }
    run_matrix(&gw, "pod", "/v3/pods/", pod_rows(), [POD_IMAGE, POD_ENV]).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn template_routes_permission_matrix() {
    let gw = Gateway::start().await;
    run_matrix(&gw, "template", "/v3/pods/templates/", template_rows(), [TPL_IMAGE, TPL_ENV]).await;
    gw.shutdown().await;
}

fn ids(r: &Resp, field: &str) -> Vec<String> {
    let mut out: Vec<String> =
        r.result().as_array().expect("list").iter().map(|p| p[field].as_str().expect("id").to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn lists_show_exactly_what_the_caller_may_read() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let bob = gw.token("dev", "bob");
    let acme_alice = gw.token("acme", "alice");
    for (token, id) in [(&alice, "alpha"), (&alice, "beta"), (&bob, "gamma"), (&acme_alice, "delta")] {
        ok(&gw, "POST", "/v3/pods", token, Some(json!({"pod_id": id, "image": "x", "status_requested": "OFF"}))).await;
        ok(&gw, "POST", "/v3/pods/templates", token, Some(json!({"template_id": id}))).await;
    }
    for base in ["/v3/pods/alpha", "/v3/pods/templates/alpha"] {
        ok(&gw, "POST", &format!("{base}/permissions"), &alice, Some(json!({"user": "carol", "level": "READ"}))).await;
    }
    ok(&gw, "POST", "/v3/pods/gamma/permissions", &bob, Some(json!({"user": "alice", "level": "USER"}))).await;
    ok(&gw, "POST", "/v3/pods/templates/gamma/permissions", &bob, Some(json!({"user": "alice", "level": "USER"})))
        .await;
    // A grant to a user of the same name in another tenant gives nothing here.
    ok(&gw, "POST", "/v3/pods/alpha/permissions", &alice, Some(json!({"user": "dora", "level": "ADMIN"}))).await;

    #[rustfmt::skip]
    let cases: [(&str, &str, &[&str]); 7] = [
        ("dev", "alice", &["alpha", "beta", "gamma"]),
        ("dev", "bob", &["gamma"]),
        ("dev", "carol", &["alpha"]),
        ("dev", "nobody", &[]),
        ("dev", "root", &["alpha", "beta", "gamma"]),
        ("acme", "root", &["delta"]),
        ("acme", "dora", &[]),
    ];
    for (tenant, user, want) in cases {
        let token = gw.token(tenant, user);
        let pods = ok(&gw, "GET", "/v3/pods", &token, None).await;
        assert_eq!(ids(&pods, "pod_id"), want, "pods of {tenant}/{user}");
        let t = ok(&gw, "GET", "/v3/pods/templates", &token, None).await;
        assert_eq!(ids(&t, "template_id"), want, "templates of {tenant}/{user}");
        let all = ok(&gw, "GET", "/v3/pods/templates/tags", &token, None).await;
        let mut keys: Vec<&str> = all.result().as_object().expect("map").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, want, "templates with tags of {tenant}/{user}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed_or_downgraded() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    ok(&gw, "POST", "/v3/pods", &alice, Some(json!({"pod_id": "lastadm", "image": "x", "status_requested": "OFF"})))
        .await;
    ok(&gw, "POST", "/v3/pods/templates", &alice, Some(json!({"template_id": "lastadm"}))).await;
    for base in ["/v3/pods/lastadm", "/v3/pods/templates/lastadm"] {
        let perms = format!("{base}/permissions");
        for (method, path, body) in [
            ("POST", perms.clone(), Some(json!({"user": "alice", "level": "USER"}))),
            ("POST", perms.clone(), Some(json!({"user": "alice", "level": "READ"}))),
            ("DELETE", format!("{perms}/alice"), None),
        ] {
            let before = full_snapshot(&gw, &["dev"]).await;
            let r = gw.call(method, &path, Some(&alice), body).await;
            assert_eq!(r.status, 400, "{method} {path}: {:?}", r.body);
            assert!(r.message().contains("no user with ADMIN"), "{}", r.message());
            assert_eq!(full_snapshot(&gw, &["dev"]).await, before, "{method} {path} changes nothing");
        }
        // With a second ADMIN the owner may step down, and then the other is the last one.
        ok(&gw, "POST", &perms, &alice, Some(json!({"user": "bob", "level": "ADMIN"}))).await;
        let r = ok(&gw, "POST", &perms, &alice, Some(json!({"user": "alice", "level": "READ"}))).await;
        let mut listed: Vec<&str> =
            r.result()["permissions"].as_array().expect("perms").iter().filter_map(Value::as_str).collect();
        listed.sort_unstable();
        assert_eq!(listed, ["alice:READ", "bob:ADMIN"]);
        let bob = gw.token("dev", "bob");
        let r = gw.call("DELETE", &format!("{perms}/bob"), Some(&bob), None).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        // alice, now READ, may not manage permissions any more.
        let r = gw.call("GET", &perms, Some(&alice), None).await;
        assert_eq!(r.status, 403, "{:?}", r.body);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn permission_bodies_are_validated_and_unknown_users_are_not_found() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    ok(&gw, "POST", "/v3/pods", &alice, Some(json!({"pod_id": "valid", "image": "x", "status_requested": "OFF"})))
        .await;
    let before = full_snapshot(&gw, &["dev"]).await;
    for (method, path, body, status, says) in [
        ("POST", "/v3/pods/valid/permissions", Some(json!({"user": "bob", "level": "OWNER"})), 400, "level"),
        ("POST", "/v3/pods/valid/permissions", Some(json!({"user": "b b", "level": "READ"})), 400, "user name"),
        ("POST", "/v3/pods/valid/permissions", Some(json!({"user": "bob"})), 400, "level"),
        ("DELETE", "/v3/pods/valid/permissions/bob", None, 400, "'bob' has no permission"),
    ] {
        let r = gw.call(method, path, Some(&alice), body).await;
        assert_eq!(r.status, status, "{method} {path}: {:?}", r.body);
        assert!(r.message().contains(says), "{}", r.message());
    }
    assert_eq!(full_snapshot(&gw, &["dev"]).await, before);
    let r = ok(&gw, "GET", "/v3/pods/valid/permissions", &alice, None).await;
    assert_eq!(r.result()["permissions"], json!(["alice:ADMIN"]));
    gw.shutdown().await;
}
