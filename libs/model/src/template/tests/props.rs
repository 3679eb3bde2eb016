//! The two invariants the issue names, over arbitrary inputs.

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

use super::super::*;
use super::T0;
use super::merge::lookup;
use crate::{PodSpec, Protocol};

fn word() -> impl Strategy<Value = String> {
    "[a-z]{0,3}"
}

fn key(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(keys).prop_map(String::from)
}

fn net_layer() -> BoxedStrategy<NetworkingLayer> {
    let protocol = select(vec![Protocol::Http, Protocol::Tcp, Protocol::Postgres, Protocol::LocalOnly]);
    let first = (
        of(protocol),
        of(10u32..70_000),
        of(word()),
        of(vec(word(), 0..2)),
        of(any::<bool>()),
        of(btree_map(word(), word(), 0..2)),
        of(vec(word(), 0..2)),
        of("/[a-z]{0,3}"),
    );
    let second = (
        of(word()),
        of(any::<bool>()),
        of(word()),
        of(vec(word(), 0..2)),
        of(vec(word(), 0..2)),
        of(vec(word(), 0..2)),
        of(any::<bool>()),
        of(0u32..200),
    );
    (first, second)
        .prop_map(
            |((p, port, url, ips, auth, headers, users, ret), (ui, redir, ui_desc, orig, meth, hdrs, cred, age))| {
                NetworkingLayer {
                    protocol: p,
                    port,
                    url,
                    ip_allow_list: ips,
                    tapis_auth: auth,
                    tapis_auth_response_headers: headers,
                    tapis_auth_allowed_users: users,
                    tapis_auth_return_path: ret,
                    tapis_ui_uri: ui,
                    tapis_ui_uri_redirect: redir,
                    tapis_ui_uri_description: ui_desc,
                    cors_allow_origins: orig,
                    cors_allow_methods: meth,
                    cors_allow_headers: hdrs,
                    cors_allow_credentials: cred,
                    cors_max_age: age,
                }
            },
        )
        .boxed()
}

fn session() -> impl Strategy<Value = crate::session::SessionRun> {
    use crate::session::{SessionRun, SessionType};
    (any::<bool>(), of(1u32..100), of(word())).prop_map(|(batch, batch_timeout, bootstrap)| SessionRun {
        session_type: if batch { SessionType::Batch } else { SessionType::Interactive },
        batch_timeout,
        bootstrap,
        git: None,
    })
}

fn pod_layer() -> BoxedStrategy<PodLayer> {
    let resources = (of(any::<u32>()), of(any::<u32>()), of(any::<u32>()), of(any::<u32>()), of(any::<u32>()))
        .prop_map(|(cpu_request, cpu_limit, mem_request, mem_limit, gpus)| ResourcesLayer {
            cpu_request,
            cpu_limit,
            mem_request,
            mem_limit,
            gpus,
        });
    let mount = word().prop_map(|t| serde_json::json!({ "type": t }));
    (
        (of(word()), of(word()), of(vec(word(), 0..3)), of(vec(word(), 0..3)), of(word())),
        btree_map(key(&["A", "B", "C", "D"]), of(word()), 0..4),
        btree_map(key(&["/a", "/b", "/c"]), of(mount), 0..3),
        (of(-1i64..100_000), of(-1i64..100_000)),
        btree_map(key(&["default", "web", "db"]), of(net_layer()), 0..3),
        resources,
        of(session()),
    )
        .prop_map(
            |(
                (image, description, command, arguments, queue),
                env,
                mounts,
                (ttl, ttl_i),
                networking,
                resources,
                session,
            )| {
                PodLayer {
                    image,
                    template: None,
                    description,
                    command,
                    arguments,
                    environment_variables: env,
                    volume_mounts: mounts,
                    time_to_stop_default: ttl,
                    time_to_stop_instance: ttl_i,
                    networking,
                    resources,
                    compute_queue: queue,
                    session,
                }
            },
        )
        .boxed()
}

/// Every field path a merged spec has; provenance must name exactly these.
fn leaf_paths(spec: &PodSpec) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = [
        "pod_id",
        "template",
        "image",
        "description",
        "command",
        "arguments",
        "time_to_stop_default",
        "time_to_stop_instance",
        "compute_queue",
        "session",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    paths.extend(ResourcesLayer::default().fields().iter().map(|(n, _)| format!("resources.{n}")));
    paths.extend(spec.environment_variables.keys().map(|k| format!("environment_variables.{k}")));
    paths.extend(spec.volume_mounts.keys().map(|k| format!("volume_mounts.{k}")));
    for k in spec.networking.keys() {
        paths.extend(NETWORKING_FIELDS.iter().map(|f| format!("networking.{k}.{f}")));
    }
    paths
}

fn check_pod_wins(d: &Derived, spec: &Value, path: &str, value: &Value) -> Result<(), TestCaseError> {
    if value.is_null() {
        prop_assert_eq!(lookup(spec, path), None, "{} removed by the pod", path);
        prop_assert_eq!(d.provenance.get(path), None, "{} removed by the pod", path);
    } else {
        prop_assert_eq!(lookup(spec, path), Some(value.clone()), "{} set by the pod", path);
        prop_assert_eq!(d.provenance.get(path).map(String::as_str), Some("pod"), "{} set by the pod", path);
    }
    Ok(())
}

fn time_text(i: usize) -> String {
    format_tag_time(T0 + i64::try_from(i).unwrap_or(0) * 1000)
}

const IDS: [&str; 5] = ["aaa", "bbb", "ccc", "ddd", "zzz"];
const TAGS: [&str; 2] = ["latest", "v1"];

/// A reference text into the small graph: id (the last one never exists), optional tag, and a
/// time only when there is a tag.
fn ref_text() -> impl Strategy<Value = String> {
    (0..IDS.len(), of((0..TAGS.len(), of(0..2usize)))).prop_map(|(id, rest)| match rest {
        None => IDS[id].to_string(),
        Some((t, None)) => format!("{}:{}", IDS[id], TAGS[t]),
        Some((t, Some(ts))) => format!("{}:{}@{}", IDS[id], TAGS[t], time_text(ts)),
    })
}

/// Tag versions of the four existing templates, each optionally referencing another.
fn graph() -> impl Strategy<Value = Vec<TemplateTag>> {
    vec((0..4usize, 0..TAGS.len(), 0..2usize, of(ref_text())), 0..12).prop_map(|rows| {
        let unique: BTreeMap<(usize, usize, usize), Option<String>> =
            rows.into_iter().map(|(id, t, ts, r)| ((id, t, ts), r)).collect();
        unique
            .into_iter()
            .map(|((id, t, ts), r)| {
                let def = PodLayer { template: r, ..PodLayer::default() };
                TemplateTag::new(IDS[id], TAGS[t], def, "m", "alice", T0 + i64::try_from(ts).unwrap_or(0) * 1000)
            })
            .collect()
    })
}

fn parse(text: &str) -> Result<TemplateRef, TestCaseError> {
    TemplateRef::parse(text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pod_field_always_wins(templates in vec(pod_layer(), 0..4), pod in pod_layer()) {
        let mut layers: Vec<(LayerSource, &PodLayer)> = templates
            .iter()
            .enumerate()
            .map(|(i, l)| (LayerSource::Template(format!("t{i}:latest@{}", time_text(i))), l))
            .collect();
        layers.push((LayerSource::Pod, &pod));
        let d = merge("web1", &layers);
        let spec = serde_json::to_value(&d.spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let pod_json = serde_json::to_value(&pod).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Value::Object(fields) = pod_json else { return Err(TestCaseError::fail("layer is an object")) };
        for (field, value) in &fields {
            match (field.as_str(), value) {
                ("template", _) => {}
                ("networking", Value::Object(entries)) => {
                    for (k, entry) in entries {
                        match entry {
                            Value::Object(set) => {
                                for (f, v) in set {
                                    check_pod_wins(&d, &spec, &format!("networking.{k}.{f}"), v)?;
                                }
                            }
                            _ => {
                                prop_assert!(!d.spec.networking.contains_key(k), "networking.{} removed", k);
                                let prefix = format!("networking.{k}.");
                                prop_assert!(d.provenance.keys().all(|p| !p.starts_with(&prefix)));
                            }
                        }
                    }
                }
                ("environment_variables" | "volume_mounts" | "resources", Value::Object(entries)) => {
                    for (k, v) in entries {
                        check_pod_wins(&d, &spec, &format!("{field}.{k}"), v)?;
                    }
                }
                (_, v) => check_pod_wins(&d, &spec, field, v)?,
            }
        }
        let labelled: BTreeSet<String> = d.provenance.keys().cloned().collect();
        prop_assert_eq!(labelled, leaf_paths(&d.spec));
        // Saving the merged pod as a layer reproduces it.
        let mut flat = d.spec.clone();
        flat.template = String::new();
        let again = merge("web1", &[(LayerSource::Pod, &PodLayer::from_spec(&flat))]);
        prop_assert_eq!(again.spec, flat);
    }

    #[test]
    fn resolution_terminates_or_reports_a_cycle(tags in graph(), pod_ref in of(ref_text())) {
        let pod = PodLayer { template: pod_ref.clone(), ..PodLayer::default() };
        let mut lookups = 0usize;
        let got = resolve(&pod, |r| {
            lookups += 1;
            select_tag(&tags, r).cloned()
        });
        // Every lookup is for a template id not yet in the chain.
        prop_assert!(lookups <= IDS.len(), "{} lookups", lookups);
        match got {
            Ok((pinned, resolved)) => {
                let closest_first: Vec<&TemplateTag> = resolved.iter().rev().collect();
                let ids: BTreeSet<&str> = resolved.iter().map(|t| t.template_id.as_str()).collect();
                prop_assert_eq!(ids.len(), resolved.len(), "no repeated template id");
                prop_assert_eq!(pinned, closest_first.first().map(|t| t.pinned_ref()));
                let mut wanted = pod_ref.clone();
                for t in &closest_first {
                    let r = parse(wanted.as_deref().unwrap_or_default())?;
                    prop_assert_eq!(select_tag(&tags, &r), Some(*t));
                    wanted = t.pod_definition.template.clone();
                }
                prop_assert_eq!(wanted, None, "the deepest template references nothing");
            }
            Err(ResolveError::Cycle { chain }) => {
                let ids: Vec<String> = chain.iter().map(|c| parse(c).map(|r| r.template_id)).collect::<Result<_, _>>()?;
                prop_assert!(ids.len() >= 2);
                prop_assert_eq!(ids.first(), ids.last());
                let distinct: BTreeSet<&String> = ids[..ids.len() - 1].iter().collect();
                prop_assert_eq!(distinct.len(), ids.len() - 1);
                for pair in chain.windows(2) {
                    let t = select_tag(&tags, &parse(&pair[0])?).cloned();
                    let next = t.and_then(|t| t.pod_definition.template).map(|n| parse(&n)).transpose()?;
                    prop_assert_eq!(next.map(|r| r.to_string()), Some(pair[1].clone()));
                }
            }
            Err(ResolveError::NotFound { reference }) => {
                prop_assert_eq!(select_tag(&tags, &parse(&reference)?), None, "{} exists", reference);
            }
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }
}
