//! Start-time overrides: scalars replace, maps merge per key, `null` removes.

use serde_json::{Value, json};

use super::*;

/// The seed plus a second variable, a bootstrap script and GPU, so every kind of field is set.
fn base() -> SessionTemplate {
    let mut t = seed();
    t.spec.kernel.environ.insert("OTHER".into(), "keep".into());
    t.spec.kernel.run.bootstrap = Some("echo hi".into());
    t.spec.resources.gpus = Some(1);
    t
}

type Edit = fn(&mut SessionTemplate);

/// A label, the override, and the expected `(path, message fragment)` problems.
type BadOverride = (&'static str, Value, &'static [(&'static str, &'static str)]);

#[test]
fn override_merge_table() {
    let rows: &[(&str, Value, Edit)] = &[
        ("empty override", json!({}), |_| {}),
        ("null override", Value::Null, |_| {}),
        ("scalar replaces", json!({"spec": {"kernel": {"image": "other:2"}}}), |t| {
            t.spec.kernel.image = "other:2".into();
        }),
        ("environ merges per key", json!({"spec": {"kernel": {"environ": {"MYCONFIG": "YYY", "NEW": "n"}}}}), |t| {
            t.spec.kernel.environ.insert("MYCONFIG".into(), "YYY".into());
            t.spec.kernel.environ.insert("NEW".into(), "n".into());
        }),
        ("environ null removes one key", json!({"spec": {"kernel": {"environ": {"MYCONFIG": null}}}}), |t| {
            t.spec.kernel.environ.remove("MYCONFIG");
        }),
        ("environ: null removes them all", json!({"spec": {"kernel": {"environ": null}}}), |t| {
            t.spec.kernel.environ.clear();
        }),
        ("resources merge per key", json!({"spec": {"resources": {"cpu": 4}}}), |t| {
            t.spec.resources.cpu = Cpu::from_millicores(4000);
        }),
        ("resource null removes", json!({"spec": {"resources": {"mem": null, "cuda.device": null}}}), |t| {
            t.spec.resources.mem = None;
            t.spec.resources.gpus = None;
        }),
        ("resources: null removes all", json!({"spec": {"resources": null}}), |t| {
            t.spec.resources = SessionResources::default();
        }),
        (
            "mounts merge per key; null removes, '' is the default path",
            json!({"spec": {"mounts": {"hostpath-test": null, "new-vol": "", "test-vfolder": "/mnt/t"}}}),
            |t| {
                t.spec.mounts.remove("hostpath-test");
                t.spec.mounts.insert("new-vol".into(), None);
                t.spec.mounts.insert("test-vfolder".into(), Some("/mnt/t".into()));
            },
        ),
        ("git merges per field", json!({"spec": {"kernel": {"git": {"branch": "main", "commit": null}}}}), |t| {
            let git = t.spec.kernel.git.as_mut().expect("valid in this test");
            git.branch = Some("main".into());
            git.commit = None;
        }),
        ("git: null removes the clone", json!({"spec": {"kernel": {"git": null}}}), |t| t.spec.kernel.git = None),
        ("tag removed", json!({"metadata": {"tag": null}}), |t| t.metadata.tag = None),
        (
            "aliases work; switching to batch with a command and timeout",
            json!({"spec": {"sessionType": "batch", "batchTimeout": 30, "kernel": {"run": {"startupCommand": "make"}}}}),
            |t| {
                t.spec.session_type = SessionType::Batch;
                t.spec.batch_timeout = Some(30);
                t.spec.kernel.run.startup_command = Some("make".into());
            },
        ),
        ("run: null removes both scripts", json!({"spec": {"kernel": {"run": null}}}), |t| {
            t.spec.kernel.run = Run::default();
        }),
    ];
    for (name, over, edit) in rows {
        let mut want = base();
        edit(&mut want);
        assert_eq!(apply_overrides(&base(), over), Ok(want), "{name}");
    }
}

#[test]
fn bad_overrides_report_every_problem() {
    let rows: &[BadOverride] = &[
        (
            "fixed and required fields",
            json!({"apiVersion": "v2", "kind": "taskTemplate", "metadata": {"name": "x"},
                   "spec": {"kernel": {"image": null}}}),
            &[
                ("apiVersion", "cannot be overridden"),
                ("kind", "cannot be overridden"),
                ("metadata.name", "cannot be overridden"),
                ("spec.kernel.image", "is required and cannot be removed"),
            ],
        ),
        (
            "same validation as documents",
            json!({"spec": {"resources": {"cpu": "-1", "mem": "lots"}, "kernel": {"environ": {"1X": "a"}, "bogus": 1}}}),
            &[
                ("spec.resources.cpu", "must not be negative"),
                ("spec.resources.mem", "must be a size"),
                ("spec.kernel.environ.1X", "name must be letters"),
                ("spec.kernel.bogus", "unknown key"),
            ],
        ),
        (
            "alias conflict in an override",
            json!({"spec": {"kernel": {"run": {"startup": "a", "startup_command": "b"}}}}),
            &[("spec.kernel.run.startup_command", "conflicts with spec.kernel.run.startup")],
        ),
        (
            "the result is checked as a whole",
            json!({"spec": {"type": "batch", "mounts": {"other": "/home/work/hostDesktop"}}}),
            &[
                ("spec.kernel.run.startup_command", "is required for a batch session"),
                ("spec.mounts.other", "like volume 'hostpath-test'"),
            ],
        ),
        (
            "required sections",
            json!({"spec": null, "metadata": null}),
            &[("spec", "is required and cannot be removed"), ("metadata", "is required and cannot be removed")],
        ),
        ("not a mapping", json!([1]), &[("document", "must be a mapping")]),
        ("git without a repository", json!({"spec": {"kernel": {"git": null}}}), &[]),
    ];
    for (name, over, want) in rows {
        match apply_overrides(&base(), over) {
            Ok(_) if want.is_empty() => {}
            result => {
                let got: Vec<(String, String)> =
                    result.expect_err("rejected in this test").into_iter().map(|e| (e.field, e.message)).collect();
                assert_problems(name, &got, want);
            }
        }
    }
    let mut no_git = base();
    no_git.spec.kernel.git = None;
    let got = apply_overrides(&no_git, &json!({"spec": {"kernel": {"git": {"branch": "main"}}}}))
        .expect_err("rejected in this test");
    assert_eq!(got, vec![crate::FieldError::new("spec.kernel.git.repository", "is required")]);
}

#[test]
fn an_invalid_stored_template_is_reported() {
    let mut t = base();
    t.spec.kernel.image = String::new();
    t.spec.session_type = SessionType::Batch;
    let got = problems(t.validate().map(|()| t.clone()));
    assert_problems(
        "invalid base",
        &got,
        &[("spec.kernel.image", "must not be empty"), ("spec.kernel.run.startup_command", "is required for a batch")],
    );
    assert_eq!(base().validate(), Ok(()));
}
