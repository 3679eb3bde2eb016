use std::collections::BTreeMap;

use super::super::*;
use super::layer;
use crate::{Networking, PodSpec, Protocol};

#[test]
fn validate_table() {
    #[rustfmt::skip]
    let rows: &[(&str, &[(&str, &str)])] = &[
        ("{}", &[]),
        (r#"{"image":"corral-test/busybox:latest","template":"base:v1","time_to_stop_default":-1}"#, &[]),
        (r#"{"image":"host:5000/img:tag"}"#, &[("image", "at most one ':'")]),
        (r#"{"image":"a b"}"#, &[("image", "whitespace")]),
        (r#"{"template":""}"#, &[]),
        (r#"{"template":"base@2024-06-10-17:20:27"}"#, &[("template", "a timestamp needs a tag")]),
        (r#"{"template":"Base"}"#, &[("template", "template id: must match")]),
        (r#"{"description":"caf\u00e9"}"#, &[("description", "ascii")]),
        (r#"{"environment_variables":{"1A":"x","OK_1":null,"B-C":null}}"#, &[("environment_variables.1A", "name must be"), ("environment_variables.B-C", "name must be")]),
        (r#"{"time_to_stop_default":299,"time_to_stop_instance":300}"#, &[("time_to_stop_default", "at least 300")]),
        (r#"{"time_to_stop_instance":0}"#, &[("time_to_stop_instance", "got 0")]),
        (r#"{"networking":{"ab":{"port":80}}}"#, &[("networking.ab", "3 to 64 lowercase")]),
        (r#"{"networking":{"ab":null}}"#, &[("networking.ab", "3 to 64 lowercase")]),
        (r#"{"networking":{"web":{"port":9}}}"#, &[("networking.web.port", "got 9")]),
        (r#"{"networking":{"web":{"port":65536}}}"#, &[("networking.web.port", "between 10 and 65535")]),
        (r#"{"networking":{"web":{"cors_max_age":101}}}"#, &[("networking.web.cors_max_age", "0 and 100")]),
        (r#"{"networking":{"web":{"tapis_auth_return_path":"x"}}}"#, &[("networking.web.tapis_auth_return_path", "start with '/'")]),
        (r#"{"networking":{"aaa":{},"bbb":{},"ccc":{},"ddd":{},"default":null}}"#, &[]),
        (r#"{"networking":{"aaa":{},"bbb":{},"ccc":{},"ddd":{},"eee":{}}}"#, &[("networking", "at most 4")]),
    ];
    for (json, want) in rows {
        let mut got = Vec::new();
        layer(json).validate(&mut got);
        assert_eq!(got.len(), want.len(), "{json}: {got:?}");
        for ((field, fragment), e) in want.iter().zip(&got) {
            assert_eq!(e.field, *field, "{json}");
            assert!(e.message.to_lowercase().contains(fragment), "{json}: {e}");
        }
    }
}

#[test]
fn serialisation_is_sparse_and_strict() {
    assert_eq!(serde_json::to_string(&PodLayer::default()).expect("serialises"), "{}");
    let l = layer(
        r#"{"resources":{"gpus":1},"networking":{"default":{"port":8000},"web":null},"environment_variables":{"X":null}}"#,
    );
    assert_eq!(
        serde_json::to_value(&l).expect("serialises"),
        serde_json::json!({"resources":{"gpus":1},"networking":{"default":{"port":8000},"web":null},"environment_variables":{"X":null}})
    );
    // Tapis clients send null for unset maps and resources.
    let nulls =
        layer(r#"{"environment_variables":null,"volume_mounts":null,"networking":null,"resources":null,"image":null}"#);
    assert_eq!(nulls, PodLayer::default());
    for bad in [r#"{"pod_id":"x"}"#, r#"{"resources":{"cpus":1}}"#, r#"{"networking":{"web":{"prot":"tcp"}}}"#] {
        assert!(serde_json::from_str::<PodLayer>(bad).is_err(), "{bad} must be rejected");
    }
}

fn busy_spec() -> PodSpec {
    PodSpec {
        pod_id: "web1".into(),
        image: "corral-test/busybox".into(),
        description: "d".into(),
        command: Some(vec!["sleep".into()]),
        environment_variables: BTreeMap::from([("A".into(), "1".into())]),
        volume_mounts: BTreeMap::from([("/data".into(), serde_json::json!({"type":"pvc"}))]),
        time_to_stop_instance: Some(600),
        networking: BTreeMap::from([(
            "web".into(),
            Networking { protocol: Protocol::Tcp, port: 8080, ..Networking::default() },
        )]),
        compute_queue: "gpu".into(),
        ..PodSpec::default()
    }
}

#[test]
fn from_spec_reproduces_the_spec() {
    for spec in [PodSpec { pod_id: "web1".into(), ..PodSpec::default() }, busy_spec()] {
        let l = PodLayer::from_spec(&spec);
        assert_eq!(l.template, None);
        let d = merge("web1", &[(LayerSource::Pod, &l)]);
        assert_eq!(d.spec, spec);
        // Also over a template that sets everything differently: the saved layer wins.
        let other = layer(
            r#"{"image":"x","environment_variables":{"B":"2"},"networking":{"default":{"port":81}},"resources":{"gpus":1}}"#,
        );
        let d = merge(
            "web1",
            &[(LayerSource::Template("t:latest@2024-06-10-17:20:27".into()), &other), (LayerSource::Pod, &l)],
        );
        assert_eq!(d.spec.image, spec.image);
        assert_eq!(d.spec.networking, spec.networking);
        assert_eq!(d.spec.resources, spec.resources);
    }
    // The default entry `busy_spec` dropped is removed explicitly.
    assert_eq!(PodLayer::from_spec(&busy_spec()).networking.get("default"), Some(&None));
}
