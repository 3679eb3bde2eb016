use serde_json::Value;

use super::super::*;
use super::layer;
use crate::PodSpec;

const DEEP: &str = "deep:v1@2024-06-10-17:20:27";
const NEAR: &str = "near:latest@2024-06-10-17:20:28";
const P_DEEP: &str = "template deep:v1@2024-06-10-17:20:27";
const P_NEAR: &str = "template near:latest@2024-06-10-17:20:28";

#[derive(Clone, Copy)]
enum Src {
    Deep,
    Near,
    Pod,
}

/// Layers (deepest first) and, per field path, the merged JSON value and its provenance
/// (`None, None` = the key must be absent).
struct Row {
    name: &'static str,
    layers: &'static [(Src, &'static str)],
    expect: &'static [(&'static str, Option<&'static str>, Option<&'static str>)],
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { name: "defaults only", layers: &[], expect: &[
        ("image", Some(r#""""#), Some("default")),
        ("pod_id", Some(r#""web1""#), Some("pod")),
        ("template", Some(r#""""#), Some("default")),
        ("time_to_stop_default", Some("43200"), Some("default")),
        ("resources.cpu_limit", Some("2000"), Some("default")),
        ("networking.default.port", Some("5000"), Some("default")),
        ("compute_queue", Some(r#""default""#), Some("default")),
    ]},
    Row { name: "scalar: closer template replaces deeper", layers: &[(Src::Deep, r#"{"image":"a"}"#), (Src::Near, r#"{"image":"b"}"#), (Src::Pod, "{}")], expect: &[
        ("image", Some(r#""b""#), Some(P_NEAR)),
    ]},
    Row { name: "scalar: pod replaces templates", layers: &[(Src::Deep, r#"{"image":"a"}"#), (Src::Near, r#"{"image":"b"}"#), (Src::Pod, r#"{"image":"c"}"#)], expect: &[
        ("image", Some(r#""c""#), Some("pod")),
    ]},
    Row { name: "scalar: unset in closer layers keeps the deeper value", layers: &[(Src::Deep, r#"{"description":"deep","compute_queue":"gpu"}"#), (Src::Near, r#"{"image":"b"}"#), (Src::Pod, "{}")], expect: &[
        ("description", Some(r#""deep""#), Some(P_DEEP)),
        ("compute_queue", Some(r#""gpu""#), Some(P_DEEP)),
        ("image", Some(r#""b""#), Some(P_NEAR)),
    ]},
    Row { name: "scalar: lists replace whole", layers: &[(Src::Deep, r#"{"command":["a","b"],"arguments":["x"]}"#), (Src::Pod, r#"{"command":["c"]}"#)], expect: &[
        ("command", Some(r#"["c"]"#), Some("pod")),
        ("arguments", Some(r#"["x"]"#), Some(P_DEEP)),
    ]},
    Row { name: "scalar: time_to_stop fields", layers: &[(Src::Deep, r#"{"time_to_stop_default":600,"time_to_stop_instance":900}"#), (Src::Pod, r#"{"time_to_stop_instance":-1}"#)], expect: &[
        ("time_to_stop_default", Some("600"), Some(P_DEEP)),
        ("time_to_stop_instance", Some("-1"), Some("pod")),
    ]},
    Row { name: "resources merge per sub-field", layers: &[(Src::Deep, r#"{"resources":{"cpu_limit":4000,"mem_limit":4096}}"#), (Src::Near, r#"{"resources":{"cpu_limit":3000}}"#), (Src::Pod, r#"{"resources":{"mem_request":512}}"#)], expect: &[
        ("resources.cpu_limit", Some("3000"), Some(P_NEAR)),
        ("resources.mem_limit", Some("4096"), Some(P_DEEP)),
        ("resources.mem_request", Some("512"), Some("pod")),
        ("resources.cpu_request", Some("250"), Some("default")),
        ("resources.gpus", Some("0"), Some("default")),
    ]},
    Row { name: "env merges per key, null removes", layers: &[(Src::Deep, r#"{"environment_variables":{"A":"1","B":"1","C":"1"}}"#), (Src::Near, r#"{"environment_variables":{"B":"2","C":null}}"#), (Src::Pod, r#"{"environment_variables":{"A":"3","D":"4","Z":null}}"#)], expect: &[
        ("environment_variables.A", Some(r#""3""#), Some("pod")),
        ("environment_variables.B", Some(r#""2""#), Some(P_NEAR)),
        ("environment_variables.C", None, None),
        ("environment_variables.D", Some(r#""4""#), Some("pod")),
        ("environment_variables.Z", None, None),
    ]},
    Row { name: "env: a closer layer re-adds a removed key", layers: &[(Src::Deep, r#"{"environment_variables":{"A":"1"}}"#), (Src::Near, r#"{"environment_variables":{"A":null}}"#), (Src::Pod, r#"{"environment_variables":{"A":"2"}}"#)], expect: &[
        ("environment_variables.A", Some(r#""2""#), Some("pod")),
    ]},
    Row { name: "networking merges per key and per field", layers: &[(Src::Deep, r#"{"networking":{"default":{"port":8000,"tapis_auth":true}}}"#), (Src::Pod, r#"{"networking":{"default":{"port":9000}}}"#)], expect: &[
        ("networking.default.port", Some("9000"), Some("pod")),
        ("networking.default.tapis_auth", Some("true"), Some(P_DEEP)),
        ("networking.default.protocol", Some(r#""http""#), Some("default")),
    ]},
    Row { name: "networking: a new key starts from the entry defaults", layers: &[(Src::Near, r#"{"networking":{"pgsql":{"protocol":"tcp","port":5432}}}"#), (Src::Pod, "{}")], expect: &[
        ("networking.pgsql.protocol", Some(r#""tcp""#), Some(P_NEAR)),
        ("networking.pgsql.port", Some("5432"), Some(P_NEAR)),
        ("networking.pgsql.cors_max_age", Some("100"), Some("default")),
        ("networking.default.port", Some("5000"), Some("default")),
    ]},
    Row { name: "networking: null removes a key", layers: &[(Src::Deep, r#"{"networking":{"default":null,"web":{"port":8080}}}"#)], expect: &[
        ("networking.default", None, None),
        ("networking.default.port", None, None),
        ("networking.web.port", Some("8080"), Some(P_DEEP)),
    ]},
    Row { name: "networking: re-added after removal starts fresh", layers: &[(Src::Deep, r#"{"networking":{"default":{"port":8000,"tapis_auth":true}}}"#), (Src::Near, r#"{"networking":{"default":null}}"#), (Src::Pod, r#"{"networking":{"default":{"protocol":"tcp"}}}"#)], expect: &[
        ("networking.default.protocol", Some(r#""tcp""#), Some("pod")),
        ("networking.default.port", Some("5000"), Some("default")),
        ("networking.default.tapis_auth", Some("false"), Some("default")),
    ]},
    Row { name: "volume_mounts merge per key, null removes", layers: &[(Src::Deep, r#"{"volume_mounts":{"/data":{"type":"pvc"},"/scratch":{"type":"ephemeral"}}}"#), (Src::Pod, r#"{"volume_mounts":{"/scratch":null,"/home":{"type":"tapisvolume","source_id":"h"}}}"#)], expect: &[
        ("volume_mounts./data", Some(r#"{"type":"pvc"}"#), Some(P_DEEP)),
        ("volume_mounts./scratch", None, None),
        ("volume_mounts./home", Some(r#"{"type":"tapisvolume","source_id":"h"}"#), Some("pod")),
    ]},
    Row { name: "template is the closest template's pinned ref, set by the pod", layers: &[(Src::Deep, r#"{"image":"a"}"#), (Src::Near, r#"{"template":"deep:v1"}"#), (Src::Pod, r#"{"template":"near"}"#)], expect: &[
        ("template", Some(r#""near:latest@2024-06-10-17:20:28""#), Some("pod")),
    ]},
    Row { name: "template: templates alone label the closest one", layers: &[(Src::Deep, "{}")], expect: &[
        ("template", Some(r#""deep:v1@2024-06-10-17:20:27""#), Some(P_DEEP)),
    ]},
    Row { name: "session: one scalar, the closer layer replaces it whole", layers: &[(Src::Deep, r#"{"session":{"session_type":"batch","batch_timeout":60,"bootstrap":"echo hi"}}"#), (Src::Pod, r#"{"session":{"session_type":"batch"}}"#)], expect: &[
        ("session", Some(r#"{"session_type":"batch"}"#), Some("pod")),
    ]},
    Row { name: "session: unset in closer layers keeps the deeper one", layers: &[(Src::Deep, r#"{"session":{"bootstrap":"echo hi"}}"#), (Src::Near, r#"{"image":"b"}"#), (Src::Pod, "{}")], expect: &[
        ("session", Some(r#"{"session_type":"interactive","bootstrap":"echo hi"}"#), Some(P_DEEP)),
    ]},
    Row { name: "session: absent everywhere is absent, labelled default", layers: &[(Src::Pod, "{}")], expect: &[
        ("session", None, Some("default")),
    ]},
    Row { name: "template: a pod-only merge has none", layers: &[(Src::Pod, r#"{"template":"near"}"#)], expect: &[
        ("template", Some(r#""""#), Some("default")),
    ]},
];

/// The JSON value at a provenance path of a merged spec.
pub(super) fn lookup(spec: &Value, path: &str) -> Option<Value> {
    let Some((top, rest)) = path.split_once('.') else { return spec.get(path).cloned() };
    let map = spec.get(top)?;
    match (top, rest.split_once('.')) {
        ("networking", Some((key, field))) => map.get(key)?.get(field).cloned(),
        _ => map.get(rest).cloned(),
    }
}

#[test]
fn merge_table() {
    for row in ROWS {
        let layers: Vec<(LayerSource, PodLayer)> = row
            .layers
            .iter()
            .map(|(src, json)| {
                let source = match src {
                    Src::Deep => LayerSource::Template(DEEP.into()),
                    Src::Near => LayerSource::Template(NEAR.into()),
                    Src::Pod => LayerSource::Pod,
                };
                (source, layer(json))
            })
            .collect();
        let refs: Vec<(LayerSource, &PodLayer)> = layers.iter().map(|(s, l)| (s.clone(), l)).collect();
        let derived = merge("web1", &refs);
        let spec = serde_json::to_value(&derived.spec).expect("spec serialises");
        for (path, value, source) in row.expect {
            let want = value.map(|v| serde_json::from_str::<Value>(v).expect("expected value parses"));
            assert_eq!(lookup(&spec, path), want, "{}: value of {path}", row.name);
            assert_eq!(derived.provenance.get(*path).map(String::as_str), *source, "{}: source of {path}", row.name);
        }
    }
}

#[test]
fn defaults_are_all_labelled_default() {
    let d = merge("web1", &[]);
    assert_eq!(d.spec, PodSpec { pod_id: "web1".into(), ..PodSpec::default() });
    // 8 scalars, 5 resources, 16 fields of networking.default, template, pod_id.
    assert_eq!(d.provenance.len(), 31, "{:?}", d.provenance);
    assert!(d.provenance.iter().all(|(k, v)| v == if k == "pod_id" { "pod" } else { "default" }));
}

#[test]
fn source_labels() {
    assert_eq!(LayerSource::Default.to_string(), "default");
    assert_eq!(LayerSource::Pod.to_string(), "pod");
    assert_eq!(LayerSource::Template(DEEP.into()).to_string(), P_DEEP);
}
