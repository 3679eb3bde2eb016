//! Operations that change desired state: update, start, stop, restart, delete. Each is a
//! compare-and-set on the desired record, retried on conflict with a fresh read.

use corral_model::access::Level;
use corral_model::{Desired, Millis, PodStatus, StatusRequested};
use corral_store::{PodRecord, StoreError, Versioned};
use serde_json::Value;

use super::access::{POD_META_KIND, load_pod, meta_name, put_meta};
use super::creds::{CREDENTIALS_KIND, ensure_credentials};
use super::derive;
use super::{Ctx, log_action, now_ms, render};
use crate::AppState;
use crate::envelope::Outcome;
use crate::error::ApiError;
use crate::input::UpdatePod;
use crate::kick::kick;
use crate::view::{displayed_status, displayed_status_requested, is_active, network_url};

/// Compare-and-set attempts before giving up on a pod that keeps changing underneath.
const MAX_CAS_ATTEMPTS: usize = 8;

/// Tapis answers an update that changes nothing with this message (HTTP 200, status "error").
pub const NO_CHANGES: &str = "Incoming data made no changes to pod. Is incoming data equal to current data?";

/// What an operation decided after looking at the current record.
enum Plan {
    /// Nothing to write.
    Keep { message: String, ok: bool },
    /// Store this desired state, then log and (if the generation moved) kick.
    Write { desired: Box<Desired>, log: String, message: String },
}

/// Reads the pod, lets `decide` plan the change, and writes it if the record is still
/// the one read; on a version conflict, starts over.
async fn mutate<F>(st: &AppState, ctx: &Ctx, pod_id: &str, need: Level, decide: F) -> Result<Outcome, ApiError>
where
    F: Fn(&PodRecord, Millis) -> Result<Plan, ApiError>,
{
    for _ in 0..MAX_CAS_ATTEMPTS {
        let rec = load_pod(st, ctx, pod_id, need).await?.rec;
        match decide(&rec, now_ms())? {
            Plan::Keep { message, ok } => return Ok(Outcome { result: render(st, &rec), message, ok }),
            Plan::Write { desired, log, message } => {
                let version = match st.store().put_desired(&desired, rec.desired.version).await {
                    Ok(v) => v,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::NotFound(_)) => return Err(ApiError::pod_not_found(pod_id)),
                    Err(e) => return Err(e.into()),
                };
                let desired = *desired;
                let key = desired.key();
                log_action(st, &key, &ctx.caller.user, log).await;
                if desired.generation != rec.desired.value.generation {
                    kick(st, &key, desired.generation, ctx.traceparent.as_deref()).await;
                }
                let updated = PodRecord { desired: Versioned { version, value: desired }, observed: rec.observed };
                return Ok(Outcome::success(render(st, &updated), message));
            }
        }
    }
    Err(ApiError::conflict(format!("pod '{pod_id}' is being changed concurrently; try again")))
}

/// The desired state with a new requested status and a bumped generation.
fn bumped(d: &Desired, status_requested: StatusRequested, now: Millis) -> Desired {
    let mut next = d.clone();
    next.status_requested = status_requested;
    next.generation = d.generation.saturating_add(1);
    next.update_ts = now;
    next
}

/// `PUT /pods/{id}`. Spec changes apply at the next start or restart; a change of
/// `status_requested` acts at once.
pub async fn update_pod(st: &AppState, ctx: &Ctx, pod_id: &str, mut patch: UpdatePod) -> Result<Outcome, ApiError> {
    // URLs are generated, never chosen: normalise them so they do not count as changes.
    let domain = st.config().http.pods_domain.clone();
    if let Some(nets) = patch.networking.as_mut() {
        for (name, net) in nets.iter_mut() {
            net.url = network_url(pod_id, name, &domain);
        }
    }
    let limits = st.config().limits();
    let user = ctx.caller.user.clone();
    let pod = load_pod(st, ctx, pod_id, Level::User).await?;
    let mut probe = pod.rec.desired.value.spec.clone();
    let touched = patch.apply(&mut probe);
    if super::uses_credentials(&probe) {
        let d = &pod.rec.desired.value;
        ensure_credentials(st, &d.key(), d.creation_ts).await?;
    }
    if touched.contains(&"networking")
        && super::cors_index::wants_cors(&probe)
        && let Err(e) = super::cors_index::note(st, &ctx.key(pod_id)).await
    {
        tracing::warn!(pod_id, error = %e, "pod not recorded for CORS preflights");
    }
    if touched.contains(&"image") {
        super::images::enforce(st, &ctx.caller.tenant, &probe.image).await?;
    }
    let out = mutate(st, ctx, pod_id, Level::User, |rec, now| {
        let (d, o) = (&rec.desired.value, &rec.observed.value);
        let mut next = d.clone();
        let mut changed = patch.apply(&mut next.spec);
        let mut acts_now = false;
        if let Some(sr) = patch.status_requested
            && sr != displayed_status_requested(d, o)
        {
            next = bumped(&next, sr, now);
            changed.push("status_requested");
            acts_now = true;
        }
        if changed.is_empty() {
            return Ok(Plan::Keep { message: NO_CHANGES.to_string(), ok: false });
        }
        let problems = next.spec.validate(&limits);
        if !problems.is_empty() {
            return Err(ApiError::invalid("pod", problems));
        }
        next.update_ts = now;
        let fields: Vec<String> = changed
            .iter()
            .map(|f| if *f == "environment_variables" { format!("{f} (hidden)") } else { (*f).to_string() })
            .collect();
        let message = if !acts_now && is_active(displayed_status(d, o)) {
            "pod updated; changes take effect at the next start or restart"
        } else {
            "pod updated"
        };
        Ok(Plan::Write {
            desired: Box::new(next),
            log: format!("pod updated by '{user}': {}", fields.join(", ")),
            message: message.to_string(),
        })
    })
    .await?;
    // A templated pod keeps its own fields apart from its templates': record the change.
    if out.ok
        && !touched.is_empty()
        && let Ok(fresh) = load_pod(st, ctx, pod_id, Level::Read).await
        && let Some(layer_json) = fresh.meta.value.layer.clone()
        && let Ok(mut layer) = serde_json::from_value::<corral_model::template::PodLayer>(layer_json)
    {
        derive::overlay(&mut layer, &fresh.rec.desired.value.spec, &touched);
        let mut meta = fresh.meta.value.clone();
        meta.layer = serde_json::to_value(&layer).ok();
        for field in &touched {
            meta.provenance.insert((*field).to_string(), "pod".to_string());
        }
        if let Err(e) = put_meta(st, &ctx.key(pod_id), &meta, fresh.meta.version).await {
            tracing::warn!(pod_id, error = %e, "pod definition not recorded after update");
        }
    }
    Ok(out)
}

/// `GET /pods/{id}/start`: from STOPPED, ERROR or COMPLETE (or while a stop is pending).
pub async fn start_pod(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let user = ctx.caller.user.clone();
    mutate(st, ctx, pod_id, Level::Admin, |rec, now| {
        let (d, o) = (&rec.desired.value, &rec.observed.value);
        let shown = displayed_status(d, o);
        let settled = matches!(shown, PodStatus::Stopped | PodStatus::Error | PodStatus::Complete);
        if !settled && d.status_requested != StatusRequested::Off {
            return Err(ApiError::conflict(format!("pod is {shown}; use restart to get a new container")));
        }
        Ok(Plan::Write {
            desired: Box::new(bumped(d, StatusRequested::On, now)),
            log: format!("start requested by '{user}'"),
            message: "pod start requested".into(),
        })
    })
    .await
}

/// `GET /pods/{id}/stop`: idempotent.
pub async fn stop_pod(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let user = ctx.caller.user.clone();
    mutate(st, ctx, pod_id, Level::Admin, |rec, now| {
        let (d, o) = (&rec.desired.value, &rec.observed.value);
        let shown = displayed_status(d, o);
        if d.status_requested == StatusRequested::Off {
            let message = if is_active(shown) || shown == PodStatus::Deleting {
                "pod is already stopping"
            } else {
                "pod is already stopped"
            };
            return Ok(Plan::Keep { message: message.into(), ok: true });
        }
        let message = if shown == PodStatus::Stopped { "pod is already stopped" } else { "pod stop requested" };
        Ok(Plan::Write {
            desired: Box::new(bumped(d, StatusRequested::Off, now)),
            log: format!("stop requested by '{user}'"),
            message: message.into(),
        })
    })
    .await
}

/// `GET /pods/{id}/restart`: a new container, whatever the current state. With
/// `grab_latest_template_tag`, a pod made from a template is first re-resolved against the
/// newest version of the tag it names.
pub async fn restart_pod(
    st: &AppState,
    ctx: &Ctx,
    pod_id: &str,
    grab_latest_template_tag: bool,
) -> Result<Outcome, ApiError> {
    let regrabbed = if grab_latest_template_tag {
        let pod = load_pod(st, ctx, pod_id, Level::Admin).await?;
        derive::regrab(st, ctx, &pod).await?.map(|(spec, meta)| (spec, meta, pod.meta.version))
    } else {
        None
    };
    let user = ctx.caller.user.clone();
    let new_spec = regrabbed.as_ref().map(|(spec, _, _)| spec.clone());
    let out = mutate(st, ctx, pod_id, Level::Admin, |rec, now| {
        let mut next = bumped(&rec.desired.value, StatusRequested::Restart, now);
        let mut log = format!("restart requested by '{user}'");
        if let Some(spec) = &new_spec {
            if spec.template != next.spec.template {
                log.push_str(&format!("; template now {}", spec.template));
            }
            next.spec = spec.clone();
        }
        Ok(Plan::Write { desired: Box::new(next), log, message: "pod restart requested".into() })
    })
    .await?;
    if let Some((_, meta, version)) = regrabbed {
        put_meta(st, &ctx.key(pod_id), &meta, version).await?;
    }
    Ok(out)
}

/// `DELETE /pods/{id}`: the pod disappears for the user at once; the spawner tears the
/// container down and then removes the records.
pub async fn delete_pod(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let user = ctx.caller.user.clone();
    let out = mutate(st, ctx, pod_id, Level::Admin, |rec, now| {
        let d = &rec.desired.value;
        let mut next = bumped(d, d.status_requested, now);
        next.deleted = true;
        Ok(Plan::Write {
            desired: Box::new(next),
            log: format!("delete requested by '{user}'"),
            message: "pod deleted".into(),
        })
    })
    .await?;
    // The pod's documents go with it (they would be ignored by a new pod of the same id
    // anyway: they name the pod incarnation they belong to).
    let name = meta_name(&ctx.key(pod_id));
    for kind in [POD_META_KIND, CREDENTIALS_KIND] {
        if let Err(e) = st.store().delete_doc(kind, &name).await {
            tracing::warn!(pod_id, kind, error = %e, "pod document not removed");
        }
    }
    Ok(Outcome { result: Value::String(String::new()), ..out })
}
