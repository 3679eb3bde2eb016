//! Session templates ↔ Tapis pod layers.

use serde_json::json;

use super::*;
use crate::session::{GitSource, SessionRun};
use crate::template::{NetworkingLayer, PodLayer, ResourcesLayer};

#[test]
fn the_seed_as_a_pod_layer() {
    let mut t = seed();
    t.spec.session_type = SessionType::Batch;
    t.spec.batch_timeout = Some(60);
    t.spec.kernel.run = Run { bootstrap: Some("echo b".into()), startup_command: Some("echo $MYCONFIG".into()) };
    t.spec.resources.gpus = Some(1);
    let m = to_pod_layer(&t);
    let want = PodLayer {
        image: Some("corral-test/busybox".into()),
        command: Some(vec!["sh".into(), "-c".into(), "echo $MYCONFIG".into()]),
        environment_variables: BTreeMap::from([("MYCONFIG".into(), Some("XXX".into()))]),
        volume_mounts: BTreeMap::from([
            ("/home/work/hostDesktop".into(), Some(json!({"type": "tapisvolume", "source_id": "hostpath-test"}))),
            ("/home/work/test-vfolder".into(), Some(json!({"type": "tapisvolume", "source_id": "test-vfolder"}))),
        ]),
        resources: ResourcesLayer {
            cpu_request: Some(2000),
            cpu_limit: Some(2000),
            mem_request: Some(4096),
            mem_limit: Some(4096),
            gpus: Some(1),
        },
        session: Some(SessionRun {
            session_type: SessionType::Batch,
            batch_timeout: Some(60),
            bootstrap: Some("echo b".into()),
            git: Some(GitSource {
                repository: "/srv/git/backend.ai-agent.git".into(),
                commit: Some("10daee9e328876d75e6d0fa4998d4456711730db".into()),
                branch: Some("19.09".into()),
                destination: "/home/work/baiagent".into(),
                credential: None,
            }),
        }),
        ..PodLayer::default()
    };
    assert_eq!(m.layer, want);
    let mut errors = Vec::new();
    m.layer.validate(&mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(m.session_type, SessionType::Batch);
    assert_eq!(m.batch_timeout, Some(60));
    assert_eq!(m.bootstrap.as_deref(), Some("echo b"));
    assert_eq!(m.git, t.spec.kernel.git);
    assert_eq!(m.tag.as_deref(), Some("example-tag"));
    assert_eq!(m.git_credential(), None);
}

#[test]
fn templates_round_trip_through_layers() {
    // Everything but the tag, which names the Tapis tag rather than living in the layer.
    let mut t = seed();
    t.metadata.tag = None;
    t.spec.kernel.run.startup_command = Some("python -m http.server 'x y'".into());
    let back = from_pod_layer("template1234", &to_pod_layer(&t).layer).expect("valid in this test");
    assert_eq!(back, FromPodLayer { template: t, dropped: vec![] });
    let back = from_pod_layer("t", &to_pod_layer(&minimal()).layer).expect("valid in this test");
    assert_eq!(back.template, minimal());
    assert_eq!(to_pod_layer(&minimal()).layer.session, None, "a plain interactive template adds no session");
    // A batch run with a bootstrap script, and git with the default destination and a
    // credential reference.
    let mut batch = seed();
    batch.metadata.tag = None;
    batch.spec.session_type = SessionType::Batch;
    batch.spec.batch_timeout = Some(30);
    batch.spec.kernel.run = Run { bootstrap: Some("echo boot\nexit 0".into()), startup_command: Some("exit 3".into()) };
    if let Some(git) = batch.spec.kernel.git.as_mut() {
        git.destination_dir = None;
        git.credential = Some(CredentialRef::parse("my-git-token").expect("a name"));
    }
    let layer = to_pod_layer(&batch).layer;
    let git = layer.session.as_ref().and_then(|s| s.git.as_ref()).expect("git carried");
    assert_eq!(git.destination, "/home/work/backend.ai-agent");
    assert_eq!(git.credential.as_deref(), Some("my-git-token"));
    let back = from_pod_layer("template1234", &layer).expect("valid in this test");
    assert_eq!(back, FromPodLayer { template: batch, dropped: vec![] });
}

#[test]
fn a_tapis_layer_as_a_session_template() {
    let layer = PodLayer {
        image: Some("img".into()),
        template: Some("base".into()),
        description: Some("d".into()),
        command: Some(vec!["python".into(), "-c".into(), "print('hi')".into()]),
        arguments: Some(vec!["A=b".into(), "".into()]),
        environment_variables: BTreeMap::from([("KEEP".into(), Some("v".into())), ("GONE".into(), None)]),
        volume_mounts: BTreeMap::from([
            ("/home/work/data".into(), Some(json!({"type": "tapisvolume", "source_id": "data"}))),
            ("/mnt/data2".into(), Some(json!({"type": "tapisvolume", "source_id": "data"}))),
            ("/snap".into(), Some(json!({"type": "tapissnapshot", "source_id": "s"}))),
            ("/ro".into(), Some(json!({"type": "tapisvolume", "source_id": "ro", "read_only": true}))),
            ("/removed".into(), None),
        ]),
        time_to_stop_default: Some(600),
        time_to_stop_instance: Some(600),
        networking: BTreeMap::from([("default".into(), Some(NetworkingLayer::default()))]),
        resources: ResourcesLayer {
            cpu_request: Some(250),
            cpu_limit: Some(1500),
            mem_request: None,
            mem_limit: Some(1536),
            gpus: Some(0),
        },
        compute_queue: Some("default".into()),
        session: None,
    };
    let got = from_pod_layer("from-tapis", &layer).expect("valid in this test");
    let mut want = minimal();
    want.metadata.name = "from-tapis".into();
    want.spec.kernel.environ = BTreeMap::from([("KEEP".into(), "v".into())]);
    want.spec.kernel.run.startup_command = Some(r"python -c 'print('\''hi'\'')' 'A=b' ''".into());
    want.spec.mounts = BTreeMap::from([("data".into(), None)]);
    want.spec.resources = SessionResources { cpu: Cpu::from_millicores(1500), mem: Mem::from_mib(1536), gpus: Some(0) };
    assert_eq!(got.template, want);
    let dropped: Vec<&str> = got.dropped.iter().map(String::as_str).collect();
    assert_eq!(
        dropped,
        [
            "template",
            "description",
            "time_to_stop_default",
            "time_to_stop_instance",
            "compute_queue",
            "networking.default",
            "environment_variables.GONE",
            "volume_mounts./mnt/data2",
            "volume_mounts./removed",
            "volume_mounts./ro",
            "volume_mounts./snap",
            "resources.cpu_request",
        ]
    );
}

#[test]
fn layers_that_cannot_be_session_templates() {
    let no_image = PodLayer { template: Some("base".into()), ..PodLayer::default() };
    let errors = from_pod_layer("t", &no_image).expect_err("rejected in this test");
    assert_eq!(errors, vec![crate::FieldError::new("spec.kernel.image", "is required")]);
    let bad_env = PodLayer {
        image: Some("img".into()),
        environment_variables: BTreeMap::from([("1X".into(), Some("v".into()))]),
        ..PodLayer::default()
    };
    let errors = from_pod_layer("t", &bad_env).expect_err("rejected in this test");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "spec.kernel.environ.1X");
    let arguments_only =
        PodLayer { image: Some("img".into()), arguments: Some(vec!["x".into()]), ..PodLayer::default() };
    let got = from_pod_layer("t", &arguments_only).expect("valid in this test");
    assert_eq!(got.dropped, vec!["arguments".to_string()]);
    assert_eq!(got.template.spec.kernel.run.startup_command, None);
}

#[test]
fn sh_dash_c_layers_round_trip() {
    let layer = PodLayer {
        image: Some("img".into()),
        command: Some(vec!["sh".into(), "-c".into(), "exec httpd -f -p 5000".into()]),
        environment_variables: BTreeMap::from([("A".into(), Some("1".into()))]),
        volume_mounts: BTreeMap::from([("/mnt/v".into(), Some(json!({"type": "tapisvolume", "source_id": "vol"})))]),
        resources: ResourcesLayer {
            cpu_request: Some(500),
            cpu_limit: Some(500),
            mem_request: Some(512),
            mem_limit: Some(512),
            gpus: None,
        },
        ..PodLayer::default()
    };
    let t = from_pod_layer("t", &layer).expect("valid in this test");
    assert!(t.dropped.is_empty(), "{:?}", t.dropped);
    assert_eq!(to_pod_layer(&t.template).layer, layer);
}
