//! Documents that are accepted, and what they read as.

use serde_json::json;

use super::*;

const SEED_JSON: &str = r#"{
  "apiVersion": "v1",
  "kind": "taskTemplate",
  "metadata": {"name": "template1234", "tag": "example-tag"},
  "spec": {
    "kernel": {
      "environ": {"MYCONFIG": "XXX"},
      "git": {
        "branch": "19.09",
        "commit": "10daee9e328876d75e6d0fa4998d4456711730db",
        "repository": "/srv/git/backend.ai-agent.git",
        "destinationDir": "/home/work/baiagent"
      },
      "image": "corral-test/busybox"
    },
    "resources": {"cpu": "2", "mem": "4g"},
    "mounts": {"hostpath-test": "/home/work/hostDesktop", "test-vfolder": null},
    "sessionType": "interactive"
  }
}"#;

const MINIMAL: &str = "api_version: v1\nkind: task_template\nmetadata: {name: t}\nspec: {kernel: {image: img}}\n";

struct Row {
    name: &'static str,
    format: Format,
    text: &'static str,
    expect: fn() -> SessionTemplate,
}

#[test]
fn accepted_documents() {
    let rows = [
        Row { name: "the seed's example (YAML)", format: Format::Yaml, text: SEED_YAML, expect: seed },
        Row { name: "the seed's example (JSON)", format: Format::Json, text: SEED_JSON, expect: seed },
        Row { name: "minimal, defaults filled in", format: Format::Yaml, text: MINIMAL, expect: minimal },
        Row {
            name: "JSON is YAML too",
            format: Format::Yaml,
            text: r#"{"api_version":"v1","kind":"taskTemplate","metadata":{"name":"t"},"spec":{"kernel":{"image":"img"}}}"#,
            expect: minimal,
        },
        Row {
            name: "batch session with bootstrap and timeout",
            format: Format::Yaml,
            text: r"
api_version: '6'
kind: taskTemplate
metadata: {name: job}
spec:
  type: batch
  batch_timeout: 600
  kernel:
    image: img:1.0
    run:
      bootstrap: |
        echo prep
        touch /tmp/x
      startup: exit 3
",
            expect: || {
                let mut t = minimal();
                t.api_version = "6".into();
                t.metadata.name = "job".into();
                t.spec.session_type = SessionType::Batch;
                t.spec.batch_timeout = Some(600);
                t.spec.kernel.image = "img:1.0".into();
                t.spec.kernel.run.bootstrap = Some("echo prep\ntouch /tmp/x\n".into());
                t.spec.kernel.run.startup_command = Some("exit 3".into());
                t
            },
        },
        Row {
            name: "resources as numbers and other units",
            format: Format::Yaml,
            text: r"
api_version: v1
kind: taskTemplate
metadata: {name: t}
spec:
  kernel: {image: img}
  resources: {cpu: 0.5, mem: 536870912, cuda.device: 1}
",
            expect: || {
                let mut t = minimal();
                t.spec.resources =
                    SessionResources { cpu: Cpu::from_millicores(500), mem: Mem::from_mib(512), gpus: Some(1) };
                t
            },
        },
        Row {
            name: "mount paths normalised",
            format: Format::Yaml,
            text: r"
api_version: v1
kind: taskTemplate
metadata: {name: t}
spec:
  kernel: {image: img}
  mounts:
    rel: data/in
    empty: ''
    same: /home/work/same/
    abs: //mnt//x/
",
            expect: || {
                let mut t = minimal();
                t.spec.mounts = BTreeMap::from([
                    ("rel".into(), Some("/home/work/data/in".into())),
                    ("empty".into(), None),
                    ("same".into(), None),
                    ("abs".into(), Some("/mnt/x".into())),
                ]);
                t
            },
        },
        Row {
            name: "git with a credential reference, scp-like URL, upper-case commit",
            format: Format::Yaml,
            text: r"
api_version: v1
kind: taskTemplate
metadata: {name: t}
spec:
  kernel:
    image: img
    git:
      repository: git@example.test:org/proj.git
      commit: ABCDEF0123456789ABCDEF0123456789ABCDEF01
      credential: my-github-token
",
            expect: || {
                let mut t = minimal();
                t.spec.kernel.git = Some(Git {
                    repository: "git@example.test:org/proj.git".into(),
                    commit: Some("abcdef0123456789abcdef0123456789abcdef01".into()),
                    branch: None,
                    credential: CredentialRef::parse("my-github-token").ok(),
                    destination_dir: None,
                });
                t
            },
        },
        Row {
            name: "nulls for optional fields and sections",
            format: Format::Yaml,
            text: r"
api_version: v1
kind: taskTemplate
metadata: {name: t, tag: null}
spec:
  sessionType: ~
  kernel: {image: img, environ: null, run: null, git: null}
  mounts: null
  resources: null
",
            expect: minimal,
        },
    ];
    for row in rows {
        let got = parse(row.text, row.format);
        assert_eq!(got, Ok((row.expect)()), "{}", row.name);
    }
}

#[test]
fn canonical_form_is_snake_case_with_explicit_defaults() {
    let got = serde_json::to_value(yaml(SEED_YAML)).expect("valid in this test");
    let want = json!({
        "api_version": "v1",
        "kind": "task_template",
        "metadata": {"name": "template1234", "tag": "example-tag"},
        "spec": {
            "session_type": "interactive",
            "kernel": {
                "image": "corral-test/busybox",
                "environ": {"MYCONFIG": "XXX"},
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
    });
    assert_eq!(got, want);
    let min = serde_json::to_value(minimal()).expect("valid in this test");
    assert_eq!(
        min,
        json!({"api_version": "v1", "kind": "task_template", "metadata": {"name": "t"},
               "spec": {"session_type": "interactive", "kernel": {"image": "img", "environ": {}},
                        "mounts": {}, "resources": {}}})
    );
}

#[test]
fn rendered_text_reads_back() {
    for format in [Format::Yaml, Format::Json] {
        let text = seed().render(format).expect("valid in this test");
        assert_eq!(parse(&text, format), Ok(seed()), "{format:?}:\n{text}");
    }
    let via_serde: SessionTemplate = serde_json::from_str(SEED_JSON).expect("valid in this test");
    assert_eq!(via_serde, seed());
    let err =
        serde_json::from_str::<SessionTemplate>(r#"{"kind":"x"}"#).expect_err("rejected in this test").to_string();
    assert!(err.contains("kind: must be 'taskTemplate'") && err.contains("api_version: is required"), "{err}");
}

#[test]
fn content_type_picks_the_format() {
    for (ct, want) in [
        ("application/yaml", Format::Yaml),
        ("application/x-yaml; charset=utf-8", Format::Yaml),
        ("Text/YAML", Format::Yaml),
        ("text/x-yaml", Format::Yaml),
        ("application/json", Format::Json),
        ("", Format::Json),
        ("text/plain", Format::Json),
    ] {
        assert_eq!(Format::from_content_type(ct), want, "{ct}");
    }
}

#[test]
fn git_destination_defaults_to_the_repository_name() {
    for (repository, dest, want) in [
        ("/srv/git/proj.git", None, "/home/work/proj"),
        ("https://example.test/org/proj/", None, "/home/work/proj"),
        ("git@example.test:proj.git", None, "/home/work/proj"),
        ("file:///srv/proj", Some("/opt/src"), "/opt/src"),
    ] {
        let g = Git {
            repository: repository.into(),
            commit: None,
            branch: None,
            credential: None,
            destination_dir: dest.map(String::from),
        };
        assert_eq!(g.destination().as_deref(), Some(want), "{repository}");
    }
}
