//! Pods made from templates: resolving a pod's template chain (the model's pure resolver,
//! fed tags from the store), the derived view with provenance, and saving a pod's own
//! definition as a new template tag.

use corral_model::access::Level;
use corral_model::template::{
    Chain, Derived, LayerSource, NetworkingLayer, NewTemplateTagFromPod, PodLayer, ResolveError, TemplateRef,
    TemplateTag, merge, select_tag,
};
use corral_model::{FieldError, PodSpec};
use serde_json::{Value, json};

use super::access::load_pod;
use super::templates::{append_tag, load_tags, load_template};
use super::{Ctx, log_action, render};
use crate::AppState;
use crate::envelope::Outcome;
use crate::error::ApiError;

/// A pod definition after template resolution.
pub struct Resolved {
    pub derived: Derived,
    /// The pod's own reference, pinned (`None` without templates).
    pub pinned: Option<TemplateRef>,
    /// The templates of the chain, closest first.
    pub templates: Vec<String>,
}

fn resolve_error(e: ResolveError) -> ApiError {
    ApiError::invalid("pod", vec![FieldError::new("template", e.to_string())])
}

/// The tag `r` names, if the caller may read its template (unreadable is the same as absent).
async fn fetch_tag(st: &AppState, ctx: &Ctx, r: &TemplateRef) -> Result<Option<TemplateTag>, ApiError> {
    match load_template(st, ctx, &r.template_id, Level::Read).await {
        Ok(_) => {}
        Err(e) if e.status.is_client_error() => return Ok(None),
        Err(e) => return Err(e),
    }
    let tags = load_tags(st, &ctx.caller.tenant, &r.template_id).await?.value;
    Ok(select_tag(&tags, r).cloned())
}

/// Follows `layer`'s template references and merges everything into one spec.
pub async fn resolve(st: &AppState, ctx: &Ctx, pod_id: &str, layer: &PodLayer) -> Result<Resolved, ApiError> {
    let mut chain = Chain::start(layer).map_err(resolve_error)?;
    let mut templates = Vec::new();
    while let Some(r) = chain.next_ref().cloned() {
        let tag = fetch_tag(st, ctx, &r).await?;
        chain.push(tag).map_err(resolve_error)?;
        templates.push(r.template_id);
    }
    let derived = merge(pod_id, &chain.layers(layer));
    Ok(Resolved { derived, pinned: chain.pinned(), templates })
}

/// Replaces a definition's template reference with its pinned form (tags are immutable,
/// so a pinned reference always means the same definition), for a new tag of template
/// `owner`: a chain leading back to `owner` would make the tag unusable, so it is refused.
pub async fn pin_nested(st: &AppState, ctx: &Ctx, owner: &str, def: &mut PodLayer) -> Result<(), ApiError> {
    if def.template.as_deref().is_none_or(str::is_empty) {
        return Ok(());
    }
    let resolved = resolve(st, ctx, "", def).await.map_err(|mut e| {
        for p in &mut e.problems {
            p.field = format!("pod_definition.{}", p.field);
        }
        e
    })?;
    if resolved.templates.iter().any(|t| t == owner) {
        let chain = std::iter::once(owner).chain(resolved.templates.iter().map(String::as_str)).collect::<Vec<_>>();
        return Err(ApiError::invalid(
            "template tag",
            vec![FieldError::new("pod_definition.template", format!("template cycle: {}", chain.join(" -> ")))],
        ));
    }
    def.template = resolved.pinned.map(|r| r.to_string());
    Ok(())
}

/// The fields of a template-less pod that differ from the defaults: what its owner set.
pub fn own_layer(spec: &PodSpec) -> PodLayer {
    let d = PodSpec::default();
    let full = PodLayer::from_spec(spec);
    let mut layer = PodLayer {
        image: full.image.filter(|v| *v != d.image),
        template: None,
        description: full.description.filter(|v| *v != d.description),
        command: full.command.filter(|_| spec.command != d.command),
        arguments: full.arguments.filter(|_| spec.arguments != d.arguments),
        environment_variables: full.environment_variables,
        volume_mounts: full.volume_mounts,
        time_to_stop_default: full.time_to_stop_default.filter(|v| *v != d.time_to_stop_default),
        time_to_stop_instance: full.time_to_stop_instance,
        networking: full.networking,
        resources: full.resources,
        compute_queue: full.compute_queue.filter(|v| *v != d.compute_queue),
        session: full.session,
    };
    // A networking entry equal to the default one (URL aside) was not chosen by the user.
    let default_net = d.networking.get("default").map(NetworkingLayer::from);
    if let (Some(Some(mine)), Some(def)) = (layer.networking.get("default"), default_net.as_ref()) {
        let mut mine = mine.clone();
        mine.url = def.url.clone();
        if mine == *def {
            layer.networking.remove("default");
        }
    }
    let r = &mut layer.resources;
    let dr = d.resources;
    r.cpu_request = r.cpu_request.filter(|v| *v != dr.cpu_request);
    r.cpu_limit = r.cpu_limit.filter(|v| *v != dr.cpu_limit);
    r.mem_request = r.mem_request.filter(|v| *v != dr.mem_request);
    r.mem_limit = r.mem_limit.filter(|v| *v != dr.mem_limit);
    r.gpus = r.gpus.filter(|v| *v != dr.gpus);
    layer
}

/// Environment values that look like secrets are masked in the derived view.
fn mask_secrets(env: &mut serde_json::Map<String, Value>) {
    const HINTS: [&str; 5] = ["PASSWORD", "SECRET", "TOKEN", "PASSWD", "PRIVATE"];
    for (k, v) in env.iter_mut() {
        let upper = k.to_ascii_uppercase();
        let placeholder = v.as_str().is_some_and(|s| s.starts_with("<<") && s.ends_with(">>"));
        if HINTS.iter().any(|h| upper.contains(h)) && !placeholder {
            *v = Value::String("********".into());
        }
    }
}

/// `GET /pods/{id}/derived` (READ): the merged definition, with `provenance` saying which
/// layer set each field.
pub async fn get_derived(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let pod = load_pod(st, ctx, pod_id, Level::Read).await?;
    let spec = &pod.rec.desired.value.spec;
    let provenance = if pod.meta.value.provenance.is_empty() {
        merge(pod_id, &[(LayerSource::Pod, &own_layer(spec))]).provenance
    } else {
        pod.meta.value.provenance.clone()
    };
    let mut pod_json = render(st, &pod.rec);
    if let Some(env) = pod_json.get_mut("environment_variables").and_then(Value::as_object_mut) {
        mask_secrets(env);
    }
    // The merged pod, as `get_pod` shows it (Tapis's PodResponse), plus where each field came from.
    if let Some(obj) = pod_json.as_object_mut() {
        obj.insert("provenance".into(), json!(provenance));
    }
    Ok(Outcome::success(pod_json, "derived pod retrieved"))
}

/// The definition a pod was made from: its own layer for templated pods, else what differs
/// from the defaults.
pub fn pod_layer(meta_layer: Option<&Value>, spec: &PodSpec) -> PodLayer {
    meta_layer.and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_else(|| own_layer(spec))
}

/// `POST /pods/{id}/save_pod_as_template_tag` (pod ADMIN, template USER).
pub async fn save_as_tag(
    st: &AppState,
    ctx: &Ctx,
    pod_id: &str,
    body: NewTemplateTagFromPod,
) -> Result<Outcome, ApiError> {
    let problems = body.validate();
    if !problems.is_empty() {
        return Err(ApiError::invalid("template tag", problems));
    }
    let pod = load_pod(st, ctx, pod_id, Level::Admin).await?;
    load_template(st, ctx, &body.template_id, Level::User).await?;
    let spec = &pod.rec.desired.value.spec;
    let mut def = pod_layer(pod.meta.value.layer.as_ref(), spec);
    if def.template.is_some() {
        // The pod is pinned already; keep that exact version under the new tag.
        def.template = Some(spec.template.clone()).filter(|t| !t.is_empty());
        // Saved into a template of its own chain (a new version of the template it came
        // from), the tag could never resolve: store the whole merged definition instead.
        let chain = resolve(st, ctx, pod_id, &def).await?.templates;
        if chain.contains(&body.template_id) {
            def = own_layer(spec);
        }
    }
    let tag = append_tag(st, ctx, &body.template_id, &body.tag, def, &body.commit_message).await?;
    let key = pod.rec.desired.value.key();
    log_action(st, &key, &ctx.caller.user, format!("saved as template tag {}:{}", body.template_id, tag.tag_timestamp))
        .await;
    let out = json!({
        "template_id": tag.template_id,
        "tag": tag.tag,
        "tag_timestamp": tag.tag_timestamp,
        "pod_definition": tag.pod_definition,
        "commit_message": tag.commit_message,
        "added_by": tag.added_by,
    });
    Ok(Outcome::success(out, "pod saved as template tag"))
}

/// Records fields the owner changed with `PUT` in a templated pod's own layer, so that a
/// later re-resolution (`grab_latest_template_tag`) keeps them.
pub fn overlay(layer: &mut PodLayer, spec: &PodSpec, changed: &[&str]) {
    let full = PodLayer::from_spec(spec);
    for field in changed {
        match *field {
            "image" => layer.image.clone_from(&full.image),
            "description" => layer.description.clone_from(&full.description),
            "command" => layer.command.clone_from(&full.command),
            "arguments" => layer.arguments.clone_from(&full.arguments),
            "environment_variables" => layer.environment_variables.clone_from(&full.environment_variables),
            "volume_mounts" => layer.volume_mounts.clone_from(&full.volume_mounts),
            "time_to_stop_default" => layer.time_to_stop_default = full.time_to_stop_default,
            "time_to_stop_instance" => layer.time_to_stop_instance = full.time_to_stop_instance,
            "networking" => layer.networking.clone_from(&full.networking),
            "resources" => layer.resources = full.resources,
            "compute_queue" => layer.compute_queue.clone_from(&full.compute_queue),
            // A layer cannot unset a deeper session: a removed one is an explicit plain
            // (interactive) session, so re-resolution does not bring the template's back.
            "session" => layer.session = Some(full.session.clone().unwrap_or_default()),
            _ => {}
        }
    }
}

/// For `restart?grab_latest_template_tag=true`: the pod re-resolved against the newest
/// version of its template's tag, with the new meta; `None` for pods without templates.
pub async fn regrab(
    st: &AppState,
    ctx: &Ctx,
    pod: &super::access::PodAccess,
) -> Result<Option<(PodSpec, super::access::PodMeta)>, ApiError> {
    let Some(layer_json) = pod.meta.value.layer.as_ref() else { return Ok(None) };
    let mut layer: PodLayer = serde_json::from_value(layer_json.clone())
        .map_err(|e| ApiError::bad_request(format!("stored pod definition is unreadable: {e}")))?;
    let Some(Ok(r)) = layer.template.as_deref().map(TemplateRef::parse) else { return Ok(None) };
    layer.template = Some(r.unpinned().to_string());
    let pod_id = &pod.rec.desired.value.spec.pod_id;
    let resolved = resolve(st, ctx, pod_id, &layer).await?;
    let mut spec = resolved.derived.spec;
    let problems = spec.validate(&st.config().limits());
    if !problems.is_empty() {
        return Err(ApiError::invalid("pod (with the latest template tag)", problems));
    }
    super::images::enforce(st, &ctx.caller.tenant, &spec.image).await?;
    crate::view::set_network_urls(&mut spec, &st.config().http.pods_domain);
    let mut meta = pod.meta.value.clone();
    meta.provenance = resolved.derived.provenance;
    Ok(Some((spec, meta)))
}

#[cfg(test)]
mod tests {
    use corral_model::session::{SessionRun, SessionType};

    use super::*;

    fn batch() -> SessionRun {
        SessionRun { session_type: SessionType::Batch, batch_timeout: Some(5), ..SessionRun::default() }
    }

    #[test]
    fn own_layer_and_overlay_carry_the_session() {
        let mut spec = PodSpec { pod_id: "job".into(), image: "img".into(), ..PodSpec::default() };
        assert_eq!(own_layer(&spec).session, None, "no session, none in the layer");
        spec.session = Some(batch());
        assert_eq!(own_layer(&spec).session, Some(batch()), "saved as a tag, the session goes with it");

        // PUT on a templated pod: the pod's layer records the new session, and a removed one
        // as an explicit plain session so the template's does not come back.
        let mut layer = PodLayer { template: Some("t:latest".into()), ..PodLayer::default() };
        overlay(&mut layer, &spec, &["session"]);
        assert_eq!(layer.session, Some(batch()));
        spec.session = None;
        overlay(&mut layer, &spec, &["session"]);
        assert_eq!(layer.session, Some(SessionRun::default()));
        let mut untouched = PodLayer::default();
        overlay(&mut untouched, &spec, &["image"]);
        assert_eq!(untouched.session, None, "only changed fields are recorded");
    }
}
