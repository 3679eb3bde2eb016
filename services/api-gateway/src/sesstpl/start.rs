//! `POST /api/session-templates/{id}/start`: overrides applied, then an ordinary pod made from
//! the pinned template version with the overrides' difference as the pod's own layer.

use std::collections::BTreeMap;

use corral_model::session::SessionRun;
use corral_model::sesstpl::{SessionTemplate, SessionType, apply_overrides, to_pod_layer};
use corral_model::template::{PodLayer, ResourcesLayer};
use corral_model::{FieldError, PodSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::docs::{SESSION_POD_KIND, SessionPod, doc_name, encode};
use super::store;
use crate::AppState;
use crate::error::ApiError;
use crate::input::NewPod;
use crate::service::{Ctx, create_pod};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    #[serde(default)]
    pub pod_id: Option<String>,
    /// A partial document: scalars replace, maps merge per key, `null` removes.
    #[serde(default)]
    pub overrides: Value,
}

#[derive(Debug, Serialize)]
pub struct Started {
    /// The created pod, as `GET /v3/pods/{pod_id}` shows it.
    pub pod: Value,
    pub session_type: SessionType,
    pub template_id: String,
    /// The tag version the pod was made from.
    pub tag_timestamp: String,
    /// The resolved document (template with overrides).
    pub template: SessionTemplate,
    /// Parts of the template that are not applied.
    pub warnings: Vec<String>,
}

/// What the pod does not get from the template; never pretended. The session type, batch
/// timeout, bootstrap script and git source travel in the pod's `session`.
fn warnings(t: &SessionTemplate) -> Vec<String> {
    let mut out = Vec::new();
    if t.metadata.tag.is_some() {
        out.push("metadata.tag: not applied: pods have no session tag".to_string());
    }
    out
}

/// A fresh pod id: the template id and twelve random hex digits.
fn generated_pod_id(template_id: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let head: String = template_id.chars().take(64 - 12).collect();
    format!("{head}{}", &suffix[..12])
}

/// Entries of `new` that differ from `base`, and `null` for those `new` removed.
fn map_diff<V: Clone + PartialEq>(
    base: &BTreeMap<String, Option<V>>,
    new: &BTreeMap<String, Option<V>>,
) -> BTreeMap<String, Option<V>> {
    let mut out: BTreeMap<String, Option<V>> =
        new.iter().filter(|(k, v)| base.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    for k in base.keys().filter(|k| !new.contains_key(*k)) {
        out.insert(k.clone(), None);
    }
    out
}

/// The pod's own layer: what the overrides changed relative to the template's layer. A layer
/// cannot unset a deeper value, so a removed resource becomes the deployment default, and a
/// removed startup command is refused.
pub fn override_layer(base: &PodLayer, new: &PodLayer) -> Result<PodLayer, Vec<FieldError>> {
    if base.command.is_some() && new.command.is_none() {
        let problem = FieldError::new(
            "overrides.spec.kernel.run.startup_command",
            "cannot remove the template's startup command; give another one instead",
        );
        return Err(vec![problem]);
    }
    let d = PodSpec::default().resources;
    let defaults = ResourcesLayer::from(&d);
    let pick = |b: Option<u32>, n: Option<u32>, default: Option<u32>| if b == n { None } else { n.or(default) };
    let (b, n) = (&base.resources, &new.resources);
    let resources = ResourcesLayer {
        cpu_request: pick(b.cpu_request, n.cpu_request, defaults.cpu_request),
        cpu_limit: pick(b.cpu_limit, n.cpu_limit, defaults.cpu_limit),
        mem_request: pick(b.mem_request, n.mem_request, defaults.mem_request),
        mem_limit: pick(b.mem_limit, n.mem_limit, defaults.mem_limit),
        gpus: pick(b.gpus, n.gpus, defaults.gpus),
    };
    // `session` is one value: changed by the overrides, the pod's layer carries it whole; a
    // template's session turned into a plain interactive one is an explicit default session.
    let session = match (&base.session, &new.session) {
        (b, n) if b == n => None,
        (_, Some(n)) => Some(n.clone()),
        (Some(_), None) => Some(SessionRun::default()),
        (None, None) => None,
    };
    Ok(PodLayer {
        image: new.image.clone().filter(|i| base.image.as_ref() != Some(i)),
        command: new.command.clone().filter(|c| base.command.as_ref() != Some(c)),
        session,
        environment_variables: map_diff(&base.environment_variables, &new.environment_variables),
        volume_mounts: map_diff(&base.volume_mounts, &new.volume_mounts),
        resources,
        ..PodLayer::default()
    })
}

fn prefixed(problems: Vec<FieldError>) -> Vec<FieldError> {
    problems.into_iter().map(|p| FieldError::new(format!("overrides.{}", p.field), p.message)).collect()
}

pub async fn start_from_template(st: &AppState, ctx: &Ctx, id: &str, req: StartBody) -> Result<Started, ApiError> {
    let loaded = store::get(st, ctx, id).await?;
    let tag = loaded.tag.ok_or_else(|| ApiError::conflict(format!("template '{id}' has no version to start")))?;
    let base = loaded.view.template;
    let resolved =
        apply_overrides(&base, &req.overrides).map_err(|p| ApiError::invalid("start request", prefixed(p)))?;
    let mapped = to_pod_layer(&resolved);
    let mut base_layer = to_pod_layer(&base).layer;
    // The pod inherits the pinned tag's session; tags written before sessions were carried in
    // layers have none, so compare with what the tag really holds.
    base_layer.session.clone_from(&tag.pod_definition.session);
    let own = override_layer(&base_layer, &mapped.layer).map_err(|p| ApiError::invalid("start request", p))?;
    let pod_id = req.pod_id.unwrap_or_else(|| generated_pod_id(id));
    let new = NewPod {
        pod_id: pod_id.clone(),
        image: own.image,
        template: Some(tag.pinned_ref().to_string()),
        command: own.command,
        environment_variables: own.environment_variables,
        volume_mounts: own.volume_mounts,
        resources: own.resources,
        session: own.session,
        ..NewPod::default()
    };
    let created = create_pod(st, ctx, new).await?;
    let warnings = warnings(&resolved);
    let record = SessionPod {
        template_id: id.to_string(),
        tag_timestamp: tag.tag_timestamp.clone(),
        session_type: mapped.session_type,
        document: resolved.clone(),
        warnings: warnings.clone(),
    };
    // The pod exists either way; the record only explains where it came from.
    let name = doc_name(&ctx.caller.tenant, &pod_id);
    let current = st.store().get_doc(SESSION_POD_KIND, &name).await?.map_or(0, |d| d.version);
    st.store().put_doc(SESSION_POD_KIND, &name, &encode(&record)?, current).await?;
    tracing::info!(template = %id, pod = %pod_id, "pod started from session template");
    Ok(Started {
        pod: created.result,
        session_type: mapped.session_type,
        template_id: id.to_string(),
        tag_timestamp: tag.tag_timestamp,
        template: resolved,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(env: &[(&str, &str)], cpu: Option<u32>, command: Option<&str>) -> PodLayer {
        PodLayer {
            image: Some("img".into()),
            command: command.map(|c| vec!["sh".into(), "-c".into(), c.into()]),
            environment_variables: env.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect(),
            resources: ResourcesLayer { cpu_request: cpu, cpu_limit: cpu, ..ResourcesLayer::default() },
            ..PodLayer::default()
        }
    }

    #[test]
    fn the_pod_layer_is_what_the_overrides_changed() {
        let default_cpu = PodSpec::default().resources.cpu_request;
        let base = layer(&[("A", "1"), ("B", "2")], Some(2000), Some("run"));
        let rows: [(&str, PodLayer, PodLayer); 4] = [
            ("nothing changed", base.clone(), PodLayer::default()),
            (
                "env set, changed and removed",
                layer(&[("A", "9"), ("C", "3")], Some(2000), Some("run")),
                PodLayer {
                    environment_variables: BTreeMap::from([
                        ("A".into(), Some("9".into())),
                        ("B".into(), None),
                        ("C".into(), Some("3".into())),
                    ]),
                    ..PodLayer::default()
                },
            ),
            (
                "resource removed: the default",
                layer(&[("A", "1"), ("B", "2")], None, Some("run")),
                PodLayer {
                    resources: ResourcesLayer {
                        cpu_request: Some(default_cpu),
                        cpu_limit: Some(PodSpec::default().resources.cpu_limit),
                        ..ResourcesLayer::default()
                    },
                    ..PodLayer::default()
                },
            ),
            (
                "command replaced",
                layer(&[("A", "1"), ("B", "2")], Some(2000), Some("other")),
                PodLayer { command: Some(vec!["sh".into(), "-c".into(), "other".into()]), ..PodLayer::default() },
            ),
        ];
        for (name, new, want) in rows {
            assert_eq!(override_layer(&base, &new).expect(name), want, "{name}");
        }
        let batch = |timeout: Option<u32>| {
            Some(SessionRun { session_type: SessionType::Batch, batch_timeout: timeout, ..SessionRun::default() })
        };
        let with_session = |s: Option<SessionRun>| PodLayer { session: s, ..base.clone() };
        let session_rows = [
            ("same session: nothing", batch(Some(5)), batch(Some(5)), None),
            ("changed session: the whole new one", batch(Some(5)), batch(Some(9)), batch(Some(9))),
            ("new session", None, batch(None), batch(None)),
            ("session removed: an explicit plain one", batch(None), None, Some(SessionRun::default())),
        ];
        for (name, b, n, want) in session_rows {
            let got = override_layer(&with_session(b), &with_session(n)).expect(name);
            assert_eq!(got, PodLayer { session: want, ..PodLayer::default() }, "{name}");
        }
        let removed = override_layer(&base, &layer(&[("A", "1"), ("B", "2")], Some(2000), None));
        let problems = removed.expect_err("a layer cannot unset the command");
        assert_eq!(problems[0].field, "overrides.spec.kernel.run.startup_command");
    }
}
