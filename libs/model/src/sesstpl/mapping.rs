//! Session templates and Tapis template layers share the core model; see the table in the
//! [module docs](super) for which fields correspond.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::git::CredentialRef;
use super::model::{Git, SessionTemplate, SessionType};
use super::names::default_mount_path;
use super::node::Node;
use super::parse::from_node;
use crate::FieldError;
use crate::session::{GitSource, SessionRun};
use crate::template::{PodLayer, ResourcesLayer};

/// The Tapis volume type session-template mounts become.
pub const MOUNT_TYPE: &str = "tapisvolume";

/// A session template in core-model terms: the pod layer (whose `session` carries the session
/// type, batch timeout, bootstrap script and git source), plus the same parts unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMapping {
    pub layer: PodLayer,
    pub session_type: SessionType,
    pub batch_timeout: Option<u32>,
    /// Runs once before the startup command.
    pub bootstrap: Option<String>,
    /// Cloned before the bootstrap script and the startup command run.
    pub git: Option<Git>,
    /// Becomes the session's tag.
    pub tag: Option<String>,
}

impl PodMapping {
    /// The credential the clone needs, if any.
    pub fn git_credential(&self) -> Option<&CredentialRef> {
        self.git.as_ref().and_then(|g| g.credential.as_ref())
    }
}

/// The core-model view of `t`.
pub fn to_pod_layer(t: &SessionTemplate) -> PodMapping {
    let spec = &t.spec;
    let kernel = &spec.kernel;
    let cpu = spec.resources.cpu.map(|c| c.millicores());
    let mem = spec.resources.mem.map(|m| m.mib());
    let layer = PodLayer {
        image: Some(kernel.image.clone()),
        command: kernel.run.startup_command.as_ref().map(|s| vec!["sh".into(), "-c".into(), s.clone()]),
        environment_variables: kernel.environ.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        volume_mounts: spec
            .mounts
            .iter()
            .map(|(name, target)| {
                let path = target.clone().unwrap_or_else(|| default_mount_path(name));
                (path, Some(json!({ "type": MOUNT_TYPE, "source_id": name })))
            })
            .collect(),
        // A Backend.AI slot is an allocation: what is asked for is also the ceiling.
        resources: ResourcesLayer {
            cpu_request: cpu,
            cpu_limit: cpu,
            mem_request: mem,
            mem_limit: mem,
            gpus: spec.resources.gpus,
        },
        session: session_of(t),
        ..PodLayer::default()
    };
    PodMapping {
        layer,
        session_type: spec.session_type,
        batch_timeout: spec.batch_timeout,
        bootstrap: kernel.run.bootstrap.clone(),
        git: kernel.git.clone(),
        tag: t.metadata.tag.clone(),
    }
}

/// The pod's `session` for `t`; `None` for a plain interactive template (nothing to carry), so
/// such templates stay ordinary Tapis layers.
fn session_of(t: &SessionTemplate) -> Option<SessionRun> {
    let spec = &t.spec;
    let git = spec.kernel.git.as_ref().map(|g| GitSource {
        repository: g.repository.clone(),
        commit: g.commit.clone(),
        branch: g.branch.clone(),
        // Validated templates always have one; an empty one is refused by pod validation.
        destination: g.destination().unwrap_or_default(),
        credential: g.credential.as_ref().map(|c| c.name().to_string()),
    });
    let run = SessionRun {
        session_type: spec.session_type,
        batch_timeout: spec.batch_timeout,
        bootstrap: spec.kernel.run.bootstrap.clone(),
        git,
    };
    (run != SessionRun::default()).then_some(run)
}

/// A Tapis layer read as a session template, and the layer fields that had no counterpart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromPodLayer {
    pub template: SessionTemplate,
    /// Paths of set layer fields the template cannot express (`networking.default`,
    /// `resources.cpu_request`, `volume_mounts./data`, …).
    pub dropped: Vec<String>,
}

/// Reads `layer` (best a resolved one: a layer that only names a deeper template has no
/// image) as an interactive session template called `name`. Errors carry session-template
/// paths (`spec.kernel.image`) since that is the document being made.
pub fn from_pod_layer(name: &str, layer: &PodLayer) -> Result<FromPodLayer, Vec<FieldError>> {
    let mut dropped = Vec::new();
    let mut set = |field: &str, is_set: bool| {
        if is_set {
            dropped.push(field.to_string());
        }
    };
    set("template", layer.template.as_deref().is_some_and(|t| !t.is_empty()));
    set("description", layer.description.as_deref().is_some_and(|d| !d.is_empty()));
    set("time_to_stop_default", layer.time_to_stop_default.is_some());
    set("time_to_stop_instance", layer.time_to_stop_instance.is_some());
    set("compute_queue", layer.compute_queue.is_some());
    let has_command = layer.command.as_ref().is_some_and(|c| !c.is_empty());
    set("arguments", !has_command && layer.arguments.as_ref().is_some_and(|a| !a.is_empty()));
    for key in layer.networking.keys() {
        dropped.push(format!("networking.{key}"));
    }

    let mut kernel = Map::new();
    if let Some(image) = &layer.image {
        kernel.insert("image".into(), json!(image));
    }
    let mut environ = Map::new();
    for (k, v) in &layer.environment_variables {
        match v {
            Some(v) => {
                environ.insert(k.clone(), json!(v));
            }
            None => dropped.push(format!("environment_variables.{k}")),
        }
    }
    kernel.insert("environ".into(), Value::Object(environ));
    let mut run = Map::new();
    if let Some(startup) = startup_command(layer) {
        run.insert("startup_command".into(), json!(startup));
    }
    let session = layer.session.clone().unwrap_or_default();
    if let Some(bootstrap) = &session.bootstrap {
        run.insert("bootstrap".into(), json!(bootstrap));
    }
    if !run.is_empty() {
        kernel.insert("run".into(), Value::Object(run));
    }
    if let Some(git) = &session.git {
        kernel.insert("git".into(), git_of(git));
    }
    let mounts = mounts_of(layer, &mut dropped);
    let resources = resources_of(&layer.resources, &mut dropped);
    let mut spec = json!({ "kernel": kernel, "mounts": mounts, "resources": resources });
    if let Some(obj) = spec.as_object_mut() {
        obj.insert("session_type".into(), json!(session.session_type));
        if let Some(t) = session.batch_timeout {
            obj.insert("batch_timeout".into(), json!(t));
        }
    }
    let doc = json!({
        "api_version": "v1",
        "kind": "task_template",
        "metadata": { "name": name },
        "spec": spec,
    });
    let node = Node::from_json(&doc).map_err(|e| vec![e])?;
    let template = from_node(&node)?;
    Ok(FromPodLayer { template, dropped })
}

/// The `git` section for a pod's git source; a destination equal to the default one is left
/// out, so templates round-trip.
fn git_of(g: &GitSource) -> Value {
    let mut out = Map::new();
    out.insert("repository".into(), json!(g.repository));
    for (key, value) in [("commit", &g.commit), ("branch", &g.branch), ("credential", &g.credential)] {
        if let Some(v) = value {
            out.insert(key.into(), json!(v));
        }
    }
    let default = super::git::repository_name(&g.repository).map(|n| format!("{}/{n}", super::WORK_DIR));
    if default.as_deref() != Some(g.destination.as_str()) {
        out.insert("destination_dir".into(), json!(g.destination));
    }
    Value::Object(out)
}

/// `sh -c X` gives back `X`; any other command line is quoted word by word, so `sh -c` runs
/// the same program with the same arguments.
fn startup_command(layer: &PodLayer) -> Option<String> {
    let command = layer.command.as_deref().filter(|c| !c.is_empty())?;
    let arguments = layer.arguments.as_deref().unwrap_or_default();
    if let ([sh, dash_c, script], []) = (command, arguments)
        && sh == "sh"
        && dash_c == "-c"
    {
        return Some(script.clone());
    }
    let words: Vec<String> = command.iter().chain(arguments).map(|w| shell_quote(w)).collect();
    Some(words.join(" "))
}

/// One word for `sh`: left bare when it cannot be misread (no `=`, which would make a first
/// word an assignment), single-quoted otherwise.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:@%+,-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `tapisvolume` mounts with nothing but a `source_id` map to `name: path`; anything else, and a
/// second mount of the same volume, is dropped.
fn mounts_of(layer: &PodLayer, dropped: &mut Vec<String>) -> Map<String, Value> {
    let mut mounts = Map::new();
    for (path, mount) in &layer.volume_mounts {
        let source = mount.as_ref().and_then(|m| {
            let m = m.as_object()?;
            let only_type_and_source = m.keys().all(|k| k == "type" || k == "source_id");
            let is_volume = m.get("type").and_then(Value::as_str) == Some(MOUNT_TYPE);
            if only_type_and_source && is_volume { m.get("source_id").and_then(Value::as_str) } else { None }
        });
        match source {
            Some(name) if !mounts.contains_key(name) => {
                let target = if *path == default_mount_path(name) { Value::Null } else { json!(path) };
                mounts.insert(name.to_string(), target);
            }
            _ => dropped.push(format!("volume_mounts.{path}")),
        }
    }
    mounts
}

/// The limit is the allocation; a request that differs from it cannot be expressed.
fn resources_of(r: &ResourcesLayer, dropped: &mut Vec<String>) -> BTreeMap<&'static str, Value> {
    let mut out = BTreeMap::new();
    let pairs = [("cpu", r.cpu_request, r.cpu_limit, "m"), ("mem", r.mem_request, r.mem_limit, "m")];
    for (key, request, limit, unit) in pairs {
        if let Some(v) = limit.or(request) {
            out.insert(key, json!(format!("{v}{unit}")));
            if request.is_some_and(|req| req != v) {
                dropped.push(format!("resources.{key}_request"));
            }
        }
    }
    if let Some(g) = r.gpus {
        out.insert("gpus", json!(g));
    }
    out
}
