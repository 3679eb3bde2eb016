//! Every accepted spelling reads as the canonical one.

use super::*;

const TEMPLATE: &str = r"
API: v1
kind: KIND
metadata: {name: t}
spec:
  TYPE: batch
  TIMEOUT: 60
  kernel:
    image: img
    run: {STARTUP: run-it}
    git: {repository: /srv/r.git, DEST: /opt/r}
  resources: {GPUS: 1}
";

const CANONICAL: [(&str, &str); 7] = [
    ("API", "api_version"),
    ("KIND", "task_template"),
    ("TYPE", "session_type"),
    ("TIMEOUT", "batch_timeout"),
    ("STARTUP", "startup_command"),
    ("DEST", "destination_dir"),
    ("GPUS", "gpus"),
];

fn document(placeholder: &str, spelling: &str) -> String {
    CANONICAL.iter().fold(TEMPLATE.to_string(), |doc, (p, canonical)| {
        doc.replace(p, if *p == placeholder { spelling } else { canonical })
    })
}

#[test]
fn every_alias_reads_as_the_canonical_key() {
    let canonical = yaml(&document("", ""));
    assert_eq!(canonical.spec.kernel.run.startup_command.as_deref(), Some("run-it"));
    assert_eq!(canonical.spec.batch_timeout, Some(60));
    assert_eq!(canonical.spec.resources.gpus, Some(1));
    let rows = [
        ("API", "apiVersion"),
        ("KIND", "taskTemplate"),
        ("TYPE", "type"),
        ("TYPE", "sessionType"),
        ("TIMEOUT", "batchTimeout"),
        ("STARTUP", "startup"),
        ("STARTUP", "startupCommand"),
        ("STARTUP", "stratup"),
        ("DEST", "destinationDir"),
        ("GPUS", "cuda.device"),
    ];
    for (placeholder, spelling) in rows {
        let doc = document(placeholder, spelling);
        assert_eq!(parse(&doc, Format::Yaml), Ok(canonical.clone()), "{spelling}");
        // Overrides take the same spellings.
        let json: serde_json::Value = yaml_serde::from_str(&doc).expect("valid in this test");
        let mut over = json.clone();
        if let Some(o) = over.as_object_mut() {
            o.retain(|k, _| k == "spec");
        }
        assert_eq!(apply_overrides(&canonical, &over), Ok(canonical.clone()), "override {spelling}");
    }
}

#[test]
fn alias_conflicts_name_both_paths() {
    let rows = [
        ("STARTUP", "startup: a, startupCommand", "spec.kernel.run.startupCommand", "spec.kernel.run.startup"),
        ("STARTUP", "stratup: a, startup_command", "spec.kernel.run.startup_command", "spec.kernel.run.stratup"),
        (
            "DEST",
            "destination_dir: /a, destinationDir",
            "spec.kernel.git.destinationDir",
            "spec.kernel.git.destination_dir",
        ),
        ("GPUS", "gpus: 1, cuda.device", "spec.resources.cuda.device", "spec.resources.gpus"),
    ];
    for (placeholder, spelling, second, first) in rows {
        let got = problems(parse(&document(placeholder, spelling), Format::Yaml));
        assert_problems(spelling, &got, &[(second, &format!("conflicts with {first}"))]);
    }
    let doc = document("", "")
        .replace("api_version: v1", "api_version: v1\napiVersion: v2")
        .replace("  session_type: batch", "  type: batch\n  sessionType: batch");
    let got = problems(parse(&doc, Format::Yaml));
    assert_problems(
        "two conflicts",
        &got,
        &[("apiVersion", "conflicts with api_version"), ("spec.sessionType", "conflicts with spec.type")],
    );
}
