//! Sparse pod definitions: a template tag's `pod_definition` and a pod's own submitted fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{NetworkingLayer, TemplateRef};
use crate::session::SessionRun;
use crate::{FieldError, PodSpec, Resources};

/// Every resource sub-field, optional; each set one replaces the deeper value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourcesLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_request: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
}

impl ResourcesLayer {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `(sub-field name, value)` for every sub-field, set or not.
    pub fn fields(&self) -> [(&'static str, Option<u32>); 5] {
        [
            ("cpu_request", self.cpu_request),
            ("cpu_limit", self.cpu_limit),
            ("mem_request", self.mem_request),
            ("mem_limit", self.mem_limit),
            ("gpus", self.gpus),
        ]
    }
}

impl From<&Resources> for ResourcesLayer {
    fn from(r: &Resources) -> Self {
        Self {
            cpu_request: Some(r.cpu_request),
            cpu_limit: Some(r.cpu_limit),
            mem_request: Some(r.mem_request),
            mem_limit: Some(r.mem_limit),
            gpus: Some(r.gpus),
        }
    }
}

/// A sparse pod definition. Scalars replace deeper values when set; the maps merge per key,
/// where a `null` value removes the key a deeper layer (or the defaults) put there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A further template this layer builds on; resolved, not merged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub environment_variables: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub volume_mounts: BTreeMap<String, Option<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_stop_default: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_stop_instance: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub networking: BTreeMap<String, Option<NetworkingLayer>>,
    #[serde(skip_serializing_if = "ResourcesLayer::is_empty", deserialize_with = "null_as_default")]
    pub resources: ResourcesLayer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_queue: Option<String>,
    /// Corral's `session` extension (batch run, bootstrap, git), one scalar: a layer that
    /// sets it replaces the deeper one whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRun>,
}

/// Tapis clients send `null` for an unset map or `resources`; treat it as empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn check_ttl(field: &str, v: Option<i64>, out: &mut Vec<FieldError>) {
    if let Some(v) = v
        && v != -1
        && v < 300
    {
        out.push(FieldError::new(field, format!("must be -1 (no limit) or at least 300 seconds (got {v})")));
    }
}

impl PodLayer {
    /// Checks that make sense on a partial definition. Bounds that depend on the merged result
    /// (resources, request ≤ limit, image required) are left to [`PodSpec::validate`].
    pub fn validate(&self, out: &mut Vec<FieldError>) {
        if let Some(image) = &self.image {
            if image.matches(':').count() > 1 {
                out.push(FieldError::new("image", "may contain at most one ':' (name:tag)"));
            }
            if image.chars().any(char::is_whitespace) {
                out.push(FieldError::new("image", "must not contain whitespace"));
            }
            if image.len() > 255 {
                out.push(FieldError::new("image", format!("is {} bytes long; at most 255 allowed", image.len())));
            }
        }
        if let Some(t) = self.template.as_deref().filter(|t| !t.is_empty())
            && let Err(reason) = TemplateRef::parse(t)
        {
            out.push(FieldError::new("template", reason));
        }
        if let Some(d) = &self.description {
            if !d.is_ascii() {
                out.push(FieldError::new("description", "must be ASCII"));
            }
            if d.len() > 255 {
                out.push(FieldError::new("description", format!("is {} bytes long; at most 255 allowed", d.len())));
            }
        }
        for k in self.environment_variables.keys() {
            let key_ok = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
                out.push(FieldError::new(
                    format!("environment_variables.{k}"),
                    "name must be letters, digits and '_' and not start with a digit",
                ));
            }
        }
        check_ttl("time_to_stop_default", self.time_to_stop_default, out);
        check_ttl("time_to_stop_instance", self.time_to_stop_instance, out);
        self.validate_networking(out);
        if let Some(session) = &self.session {
            session.validate("session", out);
        }
    }

    fn validate_networking(&self, out: &mut Vec<FieldError>) {
        if self.networking.values().flatten().count() > 4 {
            out.push(FieldError::new("networking", "at most 4 entries are allowed"));
        }
        for (name, net) in &self.networking {
            let f = format!("networking.{name}");
            let name_ok =
                (3..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !name_ok {
                out.push(FieldError::new(&f, "name must be 3 to 64 lowercase letters or digits"));
            }
            let Some(net) = net else { continue };
            if let Some(port) = net.port
                && !(10..=65535).contains(&port)
            {
                out.push(FieldError::new(format!("{f}.port"), format!("must be between 10 and 65535 (got {port})")));
            }
            if net.cors_max_age.is_some_and(|age| age > 100) {
                out.push(FieldError::new(format!("{f}.cors_max_age"), "must be between 0 and 100"));
            }
            if net.tapis_auth_return_path.as_deref().is_some_and(|p| !p.starts_with('/')) {
                out.push(FieldError::new(format!("{f}.tapis_auth_return_path"), "must start with '/'"));
            }
        }
    }

    /// The layer that reproduces `spec` exactly when merged over the defaults alone: every
    /// field set, and a `null` for each default networking entry `spec` lacks. `template` is
    /// left unset: the merged values already include everything the templates contributed,
    /// and following the template again would bring back keys the pod removed.
    pub fn from_spec(spec: &PodSpec) -> Self {
        let mut networking: BTreeMap<String, Option<NetworkingLayer>> =
            spec.networking.iter().map(|(k, n)| (k.clone(), Some(NetworkingLayer::from(n)))).collect();
        for key in PodSpec::default().networking.keys() {
            networking.entry(key.clone()).or_insert(None);
        }
        Self {
            image: Some(spec.image.clone()),
            template: None,
            description: Some(spec.description.clone()),
            command: spec.command.clone(),
            arguments: spec.arguments.clone(),
            environment_variables: spec
                .environment_variables
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            volume_mounts: spec.volume_mounts.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
            time_to_stop_default: Some(spec.time_to_stop_default),
            time_to_stop_instance: spec.time_to_stop_instance,
            networking,
            resources: ResourcesLayer::from(&spec.resources),
            compute_queue: Some(spec.compute_queue.clone()),
            session: spec.session.clone(),
        }
    }
}
