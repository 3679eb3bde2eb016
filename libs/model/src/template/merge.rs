//! Merging layers into a full [`PodSpec`], recording which layer set each field.
//!
//! Order is deepest template first, the pod last, so a later layer always wins: scalars
//! (`session` included, as one value) replace, `resources` sub-fields replace one by one, and `environment_variables`,
//! `volume_mounts` and `networking` merge per key (`null` removes the key; a networking entry
//! applies field by field over the deeper entry, or over [`Networking::default`] for a new key).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{NETWORKING_FIELDS, PodLayer, ResourcesLayer};
use crate::{Networking, PodSpec};

/// Where a merged value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerSource {
    /// The model defaults the merge starts from.
    Default,
    /// A template tag, named by its pinned reference text (`t:tag@YYYY-MM-DD-HH:MM:SS`).
    Template(String),
    /// The pod's own fields.
    Pod,
}

impl fmt::Display for LayerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Template(r) => write!(f, "template {r}"),
            Self::Pod => f.write_str("pod"),
        }
    }
}

/// A merged definition and, for every field path, the label of the layer that set it.
///
/// Paths: `image`, `resources.cpu_limit`, `environment_variables.FOO`,
/// `volume_mounts./data`, `networking.default.port`, …; removed keys have no path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derived {
    pub spec: PodSpec,
    pub provenance: BTreeMap<String, String>,
}

const SCALARS: [&str; 8] = [
    "image",
    "description",
    "command",
    "arguments",
    "time_to_stop_default",
    "time_to_stop_instance",
    "compute_queue",
    "session",
];

struct Merger {
    spec: PodSpec,
    provenance: BTreeMap<String, String>,
}

impl Merger {
    fn start(pod_id: &str) -> Self {
        let spec = PodSpec { pod_id: pod_id.to_string(), ..PodSpec::default() };
        let default = LayerSource::Default.to_string();
        let mut provenance: BTreeMap<String, String> =
            SCALARS.iter().map(|f| (f.to_string(), default.clone())).collect();
        for (name, _) in ResourcesLayer::default().fields() {
            provenance.insert(format!("resources.{name}"), default.clone());
        }
        let mut m = Self { spec, provenance };
        for key in m.spec.environment_variables.keys() {
            m.provenance.insert(format!("environment_variables.{key}"), default.clone());
        }
        for key in m.spec.volume_mounts.keys() {
            m.provenance.insert(format!("volume_mounts.{key}"), default.clone());
        }
        let net_keys: Vec<String> = m.spec.networking.keys().cloned().collect();
        for key in net_keys {
            m.label_all_networking_fields(&key, &default);
        }
        m
    }

    fn label(&mut self, path: impl Into<String>, label: &str) {
        self.provenance.insert(path.into(), label.to_string());
    }

    fn label_all_networking_fields(&mut self, key: &str, label: &str) {
        for field in NETWORKING_FIELDS {
            self.label(format!("networking.{key}.{field}"), label);
        }
    }

    /// Drops the labels of every path under `prefix` (which ends with '.').
    fn unlabel_prefix(&mut self, prefix: &str) {
        let doomed: Vec<String> = self
            .provenance
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.provenance.remove(&k);
        }
    }

    fn apply(&mut self, layer: &PodLayer, label: &str) {
        fn set<T: Clone>(dst: &mut T, src: &Option<T>) -> bool {
            src.as_ref().map(|v| *dst = v.clone()).is_some()
        }
        fn set_opt<T: Clone>(dst: &mut Option<T>, src: &Option<T>) -> bool {
            src.as_ref().map(|v| *dst = Some(v.clone())).is_some()
        }
        let s = &mut self.spec;
        let applied = [
            ("image", set(&mut s.image, &layer.image)),
            ("description", set(&mut s.description, &layer.description)),
            ("command", set_opt(&mut s.command, &layer.command)),
            ("arguments", set_opt(&mut s.arguments, &layer.arguments)),
            ("time_to_stop_default", set(&mut s.time_to_stop_default, &layer.time_to_stop_default)),
            ("time_to_stop_instance", set_opt(&mut s.time_to_stop_instance, &layer.time_to_stop_instance)),
            ("compute_queue", set(&mut s.compute_queue, &layer.compute_queue)),
            ("session", set_opt(&mut s.session, &layer.session)),
        ];
        for (path, was_set) in applied {
            if was_set {
                self.label(path, label);
            }
        }
        let (r, src) = (&mut self.spec.resources, &layer.resources);
        let applied = [
            ("resources.cpu_request", set(&mut r.cpu_request, &src.cpu_request)),
            ("resources.cpu_limit", set(&mut r.cpu_limit, &src.cpu_limit)),
            ("resources.mem_request", set(&mut r.mem_request, &src.mem_request)),
            ("resources.mem_limit", set(&mut r.mem_limit, &src.mem_limit)),
            ("resources.gpus", set(&mut r.gpus, &src.gpus)),
        ];
        for (path, was_set) in applied {
            if was_set {
                self.label(path, label);
            }
        }
        for (key, value) in &layer.environment_variables {
            let path = format!("environment_variables.{key}");
            match value {
                Some(v) => {
                    self.spec.environment_variables.insert(key.clone(), v.clone());
                    self.label(path, label);
                }
                None => {
                    self.spec.environment_variables.remove(key);
                    self.provenance.remove(&path);
                }
            }
        }
        for (key, value) in &layer.volume_mounts {
            let path = format!("volume_mounts.{key}");
            match value {
                Some(v) => {
                    self.spec.volume_mounts.insert(key.clone(), v.clone());
                    self.label(path, label);
                }
                None => {
                    self.spec.volume_mounts.remove(key);
                    self.provenance.remove(&path);
                }
            }
        }
        for (key, value) in &layer.networking {
            match value {
                Some(entry) => {
                    if !self.spec.networking.contains_key(key) {
                        self.spec.networking.insert(key.clone(), Networking::default());
                        self.label_all_networking_fields(key, &LayerSource::Default.to_string());
                    }
                    let applied = self.spec.networking.get_mut(key).map(|net| entry.apply_to(net)).unwrap_or_default();
                    for field in applied {
                        self.label(format!("networking.{key}.{field}"), label);
                    }
                }
                None => {
                    self.spec.networking.remove(key);
                    self.unlabel_prefix(&format!("networking.{key}."));
                }
            }
        }
    }
}

/// Merges `layers` (deepest first, the pod's own layer last) over [`PodSpec::default`] and
/// sets `pod_id`. `template` is not merged: it becomes the reference of the closest template
/// layer (the pod's own reference, pinned), labelled with the layer that referenced it, and
/// stays "" when there is no template layer.
pub fn merge(pod_id: &str, layers: &[(LayerSource, &PodLayer)]) -> Derived {
    let mut m = Merger::start(pod_id);
    for (source, layer) in layers {
        m.apply(layer, &source.to_string());
    }
    m.label("pod_id", &LayerSource::Pod.to_string());
    let closest = layers.iter().enumerate().rev().find_map(|(i, (source, _))| match source {
        LayerSource::Template(r) => Some((i, source, r)),
        _ => None,
    });
    match closest {
        Some((i, source, r)) => {
            m.spec.template = r.clone();
            // Normally the pod's layer, which holds the reference; a template itself otherwise.
            let by = layers.get(i + 1).map_or(source, |(s, _)| s).to_string();
            m.label("template", &by);
        }
        None => m.label("template", &LayerSource::Default.to_string()),
    }
    Derived { spec: m.spec, provenance: m.provenance }
}
