//! Request bodies: Tapis `NewPod` (create) and `UpdatePod` (update). Unknown fields are
//! refused so a typo never silently does nothing.

use std::collections::BTreeMap;

use corral_model::session::SessionRun;
use corral_model::template::{NetworkingLayer, PodLayer, ResourcesLayer};
use corral_model::{FieldError, Networking, PodSpec, StatusRequested};
use serde::{Deserialize, Deserializer};

/// The create body: the pod's own fields (a sparse definition laid over its templates and
/// the defaults) plus `pod_id` and `status_requested` (ON or OFF).
// A flattened PodLayer would lose `deny_unknown_fields`, hence the field-by-field copy.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewPod {
    pub pod_id: String,
    pub status_requested: StatusRequested,
    pub image: Option<String>,
    pub template: Option<String>,
    pub description: Option<String>,
    pub command: Option<Vec<String>>,
    pub arguments: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub environment_variables: BTreeMap<String, Option<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub volume_mounts: BTreeMap<String, Option<serde_json::Value>>,
    pub time_to_stop_default: Option<i64>,
    pub time_to_stop_instance: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub networking: BTreeMap<String, Option<NetworkingLayer>>,
    #[serde(deserialize_with = "null_as_default")]
    pub resources: ResourcesLayer,
    pub compute_queue: Option<String>,
    /// Corral extension: batch run, bootstrap script, git source (`null`: none).
    pub session: Option<SessionRun>,
}

/// Tapis clients send `null` for "not set".
fn null_as_default<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: Deserialize<'de> + Default,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

impl NewPod {
    /// Splits into the pod id, the requested status and the pod's own layer, with the
    /// problems found in them; RESTART makes no sense on create.
    pub fn into_parts(self) -> (String, StatusRequested, PodLayer, Vec<FieldError>) {
        let mut problems = Vec::new();
        if self.status_requested == StatusRequested::Restart {
            problems.push(FieldError::new("status_requested", "must be ON or OFF when creating a pod"));
        }
        let layer = PodLayer {
            image: self.image,
            template: self.template.filter(|t| !t.is_empty()),
            description: self.description,
            command: self.command,
            arguments: self.arguments,
            environment_variables: self.environment_variables,
            volume_mounts: self.volume_mounts,
            time_to_stop_default: self.time_to_stop_default,
            time_to_stop_instance: self.time_to_stop_instance,
            networking: self.networking,
            resources: self.resources,
            compute_queue: self.compute_queue,
            session: self.session,
        };
        layer.validate(&mut problems);
        (self.pod_id, self.status_requested, layer, problems)
    }
}

/// Present-and-null becomes `Some(None)`, absent stays `None` (with `#[serde(default)]`).
fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Resource changes apply per subfield: the ones not sent keep their values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesPatch {
    pub cpu_request: Option<u32>,
    pub cpu_limit: Option<u32>,
    pub mem_request: Option<u32>,
    pub mem_limit: Option<u32>,
    pub gpus: Option<u32>,
}

/// The update body: only the fields sent are applied.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePod {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub command: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub arguments: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub environment_variables: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub status_requested: Option<StatusRequested>,
    #[serde(default)]
    pub volume_mounts: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub time_to_stop_default: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub time_to_stop_instance: Option<Option<i64>>,
    #[serde(default)]
    pub networking: Option<BTreeMap<String, Networking>>,
    #[serde(default)]
    pub resources: Option<ResourcesPatch>,
    #[serde(default)]
    pub compute_queue: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// Replaces the session whole; `null` removes it (an ordinary interactive pod).
    #[serde(default, deserialize_with = "nullable")]
    pub session: Option<Option<SessionRun>>,
}

fn set<T: PartialEq>(name: &'static str, slot: &mut T, value: Option<T>, changed: &mut Vec<&'static str>) {
    if let Some(v) = value
        && *slot != v
    {
        *slot = v;
        changed.push(name);
    }
}

impl UpdatePod {
    /// Applies the spec fields to `spec` and returns the names of those that changed.
    /// `networking` URLs must be normalised by the caller before comparing.
    pub fn apply(&self, spec: &mut PodSpec) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let u = self.clone();
        set("description", &mut spec.description, u.description, &mut changed);
        set("command", &mut spec.command, u.command, &mut changed);
        set("arguments", &mut spec.arguments, u.arguments, &mut changed);
        set("environment_variables", &mut spec.environment_variables, u.environment_variables, &mut changed);
        set("volume_mounts", &mut spec.volume_mounts, u.volume_mounts, &mut changed);
        set("time_to_stop_default", &mut spec.time_to_stop_default, u.time_to_stop_default, &mut changed);
        set("time_to_stop_instance", &mut spec.time_to_stop_instance, u.time_to_stop_instance, &mut changed);
        set("networking", &mut spec.networking, u.networking, &mut changed);
        set("compute_queue", &mut spec.compute_queue, u.compute_queue, &mut changed);
        set("image", &mut spec.image, u.image, &mut changed);
        set("session", &mut spec.session, u.session, &mut changed);
        if let Some(p) = u.resources {
            let r = &mut spec.resources;
            let before = *r;
            r.cpu_request = p.cpu_request.unwrap_or(r.cpu_request);
            r.cpu_limit = p.cpu_limit.unwrap_or(r.cpu_limit);
            r.mem_request = p.mem_request.unwrap_or(r.mem_request);
            r.mem_limit = p.mem_limit.unwrap_or(r.mem_limit);
            r.gpus = p.gpus.unwrap_or(r.gpus);
            if *r != before {
                changed.push("resources");
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_model::Resources;

    #[test]
    fn new_pod_keeps_only_what_was_sent() {
        let p: NewPod = serde_json::from_str(r#"{"pod_id":"abc","image":"x","networking":null}"#).expect("parses");
        let (id, sr, layer, problems) = p.into_parts();
        assert_eq!((id.as_str(), sr), ("abc", StatusRequested::On));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(layer, PodLayer { image: Some("x".into()), ..PodLayer::default() });
    }

    #[test]
    fn new_pod_refuses_unknown_fields_and_restart() {
        let err = serde_json::from_str::<NewPod>(r#"{"pod_id":"abc","secret_map":{}}"#).expect_err("unknown");
        assert!(err.to_string().contains("secret_map"), "{err}");
        let p: NewPod = serde_json::from_str(r#"{"pod_id":"abc","status_requested":"RESTART"}"#).expect("parses");
        assert_eq!(p.into_parts().3.len(), 1);
    }

    #[test]
    fn update_distinguishes_absent_from_null_and_merges_resources() {
        let u: UpdatePod = serde_json::from_str(r#"{"command":null,"resources":{"cpu_limit":3000}}"#).expect("parses");
        assert_eq!(u.command, Some(None));
        assert_eq!(u.arguments, None);
        let mut spec = PodSpec { command: Some(vec!["sh".into()]), ..PodSpec::default() };
        let changed = u.apply(&mut spec);
        assert_eq!(changed, vec!["command", "resources"]);
        assert_eq!(spec.command, None);
        assert_eq!(spec.resources.cpu_limit, 3000);
        assert_eq!(spec.resources.cpu_request, Resources::default().cpu_request);
        assert!(u.apply(&mut spec).is_empty(), "applying twice changes nothing");
    }

    #[test]
    fn session_is_accepted_on_create_and_update() {
        let p: NewPod =
            serde_json::from_str(r#"{"pod_id":"job","session":{"session_type":"batch","batch_timeout":5}}"#)
                .expect("parses");
        let (_, _, layer, problems) = p.into_parts();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(layer.session.as_ref().map(|s| (s.is_batch(), s.batch_timeout)), Some((true, Some(5))));
        let bad: NewPod = serde_json::from_str(r#"{"pod_id":"job","session":{"batch_timeout":0}}"#).expect("parses");
        let fields: Vec<String> = bad.into_parts().3.into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["session.batch_timeout", "session.batch_timeout"], "not batch, and zero");
        assert!(serde_json::from_str::<NewPod>(r#"{"pod_id":"job","session":{"kind":"batch"}}"#).is_err());

        let mut spec = PodSpec::default();
        let set: UpdatePod = serde_json::from_str(r#"{"session":{"bootstrap":"echo hi"}}"#).expect("parses");
        assert_eq!(set.apply(&mut spec), vec!["session"]);
        assert_eq!(spec.session.as_ref().and_then(|s| s.bootstrap.as_deref()), Some("echo hi"));
        let absent: UpdatePod = serde_json::from_str("{}").expect("parses");
        assert!(absent.apply(&mut spec).is_empty(), "absent keeps it");
        let removed: UpdatePod = serde_json::from_str(r#"{"session":null}"#).expect("parses");
        assert_eq!(removed.apply(&mut spec), vec!["session"]);
        assert_eq!(spec.session, None);
    }
}
