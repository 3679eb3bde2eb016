//! What each operation does, independent of transport: HTTP handlers and the bus request
//! consumer call these same functions, so both behave identically.

pub mod access;
pub mod cors_index;
pub mod creds;
pub mod derive;
pub mod images;
mod lifecycle;
pub mod perms;
pub mod templates;

pub use lifecycle::{delete_pod, restart_pod, start_pod, stop_pod, update_pod};

use corral_model::access::Level;
use corral_model::shard::shard_of;
use corral_model::{ActionLogEntry, Desired, FieldError, Millis, Observed, PodKey, PodStatus, StatusRequested};
use corral_store::{PodRecord, StoreError, Versioned};
use serde_json::{Value, json};

use self::access::{load_pod, readable_pods};
use crate::AppState;
use crate::auth::Caller;
use crate::envelope::Outcome;
use crate::error::ApiError;
use crate::input::NewPod;
use crate::kick::kick;
use crate::view::{render_pod, set_network_urls};

/// Who asks, and the trace context their request carried.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub caller: Caller,
    pub traceparent: Option<String>,
}

impl Ctx {
    fn key(&self, pod_id: &str) -> PodKey {
        PodKey::new(&self.caller.tenant, pod_id)
    }
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> Millis {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn render(st: &AppState, rec: &PodRecord) -> Value {
    render_pod(rec, &st.config().http.pods_domain)
}

/// Appends to the action log; the change it records is already stored, so a failure
/// here is logged rather than failing the request.
async fn log_action(st: &AppState, key: &PodKey, actor: &str, message: String) {
    let entry = ActionLogEntry { ts: now_ms(), actor: actor.to_string(), message };
    if let Err(e) = st.store().append_action_log(key, &entry).await {
        tracing::warn!(pod = %key, error = %e, "action log entry not written");
    }
}

/// `POST /pods`: validates, stores desired and observed state, and kicks the shard.
pub async fn create_pod(st: &AppState, ctx: &Ctx, new: NewPod) -> Result<Outcome, ApiError> {
    let (pod_id, status_requested, layer, mut problems) = new.into_parts();
    // Every problem at once: the pod's own fields, its templates, and the merged result.
    let resolved = match derive::resolve(st, ctx, &pod_id, &layer).await {
        Ok(r) => r,
        Err(e) if !e.problems.is_empty() => {
            problems.extend(e.problems);
            return Err(ApiError::invalid("pod", dedup(problems)));
        }
        Err(e) => return Err(e),
    };
    let mut spec = resolved.derived.spec;
    problems.extend(spec.validate(&st.config().limits()));
    if spec.image.is_empty() && !spec.template.is_empty() {
        problems.push(FieldError::new("image", "is required: neither the pod nor its templates set one"));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid("pod", dedup(problems)));
    }
    images::enforce(st, &ctx.caller.tenant, &spec.image).await?;
    set_network_urls(&mut spec, &st.config().http.pods_domain);
    let now = now_ms();
    let on = status_requested == StatusRequested::On;
    let desired = Desired {
        tenant: ctx.caller.tenant.clone(),
        owner: ctx.caller.user.clone(),
        spec,
        status_requested,
        generation: 1,
        deleted: false,
        creation_ts: now,
        update_ts: now,
    };
    // An OFF pod starts out as already reconciled, so nothing is spawned.
    let observed = Observed {
        status: PodStatus::Stopped,
        observed_generation: if on { 0 } else { 1 },
        since: now,
        update_ts: now,
        ..Observed::default()
    };
    let key = desired.key();
    let shard = shard_of(&key.tenant, &key.pod_id, st.config().spawner.shards);
    // The record and the first action-log line in one store round trip.
    let created = ActionLogEntry {
        ts: now,
        actor: ctx.caller.user.clone(),
        message: format!("pod created by '{}'", ctx.caller.user),
    };
    match st.store().create_pod_logged(&desired, &observed, shard, &[created]).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => return Err(duplicate(st, &key).await),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(pod = %key, shard, "pod created");
    if resolved.pinned.is_some() {
        let meta = access::PodMeta {
            creation_ts: now,
            permissions: corral_model::access::Permissions::default(),
            layer: serde_json::to_value(&layer).ok(),
            provenance: resolved.derived.provenance,
        };
        write_new_meta(st, &key, &meta).await?;
    }
    if uses_credentials(&desired.spec) {
        creds::ensure_credentials(st, &key, now).await?;
    }
    if cors_index::wants_cors(&desired.spec)
        && let Err(e) = cors_index::note(st, &key).await
    {
        tracing::warn!(pod = %key, error = %e, "pod not recorded for CORS preflights");
    }
    if on {
        kick(st, &key, desired.generation, ctx.traceparent.as_deref()).await;
    }
    let rec = PodRecord {
        desired: Versioned { version: 1, value: desired },
        observed: Versioned { version: 1, value: observed },
    };
    Ok(Outcome::success(render(st, &rec), "pod created"))
}

/// Problems in first-seen order without repeats (the pod's own fields and the merged
/// definition are checked by overlapping rules).
fn dedup(problems: Vec<FieldError>) -> Vec<FieldError> {
    let mut seen = std::collections::HashSet::new();
    problems.into_iter().filter(|p| seen.insert(p.to_string())).collect()
}

/// Stores the meta of a pod just created, replacing any left by an earlier pod of its id.
async fn write_new_meta(st: &AppState, key: &PodKey, meta: &access::PodMeta) -> Result<(), ApiError> {
    let current = st.store().get_doc(access::POD_META_KIND, &access::meta_name(key)).await?;
    access::put_meta(st, key, meta, current.map_or(0, |d| d.version)).await.map(|_| ())
}

/// Does the definition reference the pod's generated credentials?
pub fn uses_credentials(spec: &corral_model::PodSpec) -> bool {
    let has = corral_model::secrets::has_placeholder;
    spec.environment_variables.values().any(|v| has(v))
        || spec.command.iter().flatten().any(|v| has(v))
        || spec.arguments.iter().flatten().any(|v| has(v))
}

/// The 409 for a taken pod id, saying so when the old pod is still being torn down.
async fn duplicate(st: &AppState, key: &PodKey) -> ApiError {
    let deleting = matches!(st.store().get_pod(key).await, Ok(Some(r)) if r.desired.value.deleted);
    if deleting {
        ApiError::conflict(format!("pod '{}' is still being deleted; try again shortly", key.pod_id))
    } else {
        ApiError::conflict(format!("pod '{}' already exists", key.pod_id))
    }
}

/// `GET /pods/{id}`.
pub async fn get_pod(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let pod = load_pod(st, ctx, pod_id, Level::Read).await?;
    Ok(Outcome::success(render(st, &pod.rec), "pod retrieved"))
}

/// `GET /pods`: the pods of the caller's tenant they may read.
pub async fn list_pods(st: &AppState, ctx: &Ctx) -> Result<Outcome, ApiError> {
    let all = readable_pods(st, ctx).await?;
    let pods: Vec<Value> = all.iter().map(|(r, _)| render(st, r)).collect();
    let n = pods.len();
    Ok(Outcome::success(Value::Array(pods), format!("{n} pods retrieved")))
}

/// `GET /pods/{id}/logs`: the latest instance's output and the action log.
pub async fn pod_logs(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let pod = load_pod(st, ctx, pod_id, Level::Read).await?;
    let key = pod.rec.desired.value.key();
    let (_, output) = st.store().output(&key).await?;
    let actions = st.store().action_log(&key).await?;
    let action_logs: Vec<String> = actions.iter().map(ActionLogEntry::render).collect();
    let logs = String::from_utf8_lossy(&output).into_owned();
    Ok(Outcome::success(json!({ "logs": logs, "action_logs": action_logs }), "pod logs retrieved"))
}

/// Health of the store and the bus: `(healthy, details)`.
pub async fn health(st: &AppState) -> (bool, Value) {
    let limit = std::time::Duration::from_secs(2);
    let store = match tokio::time::timeout(limit, st.store().ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("store ping timed out".to_string()),
    };
    let bus = match tokio::time::timeout(limit, st.bus().ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("bus ping timed out".to_string()),
    };
    let healthy = store.is_ok() && bus.is_ok();
    let show = |r: Result<(), String>| r.map_or_else(|e| e, |()| "ok".to_string());
    (healthy, json!({ "store": show(store), "bus": show(bus) }))
}
