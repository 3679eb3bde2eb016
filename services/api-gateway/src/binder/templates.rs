//! `POST /api/templates`: a Binder template onto the core pod spec; reads of it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use corral_model::pool::{AppTemplate, POOL_KIND, PoolConfig, TEMPLATE_KIND, WhenFull, pool_id};
use corral_model::spec::validate_pod_id;
use corral_model::{FieldError, PodSpec};
use corral_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Binder, load_template, require_admin};
use crate::AppState;
use crate::auth::Caller;
use crate::envelope::JsonBody;
use crate::error::ApiError;
use crate::service::now_ms;

/// Cap of the size-0 pool every template gets, which tracks (and culls) its cold instances.
const DEFAULT_CAP: u32 = 100;

/// The Binder template body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(super) struct NewTemplate {
    name: Option<String>,
    image_name: String,
    #[serde(default)]
    limits: Value,
    command: Option<String>,
    #[serde(default)]
    cull_timeout: u64,
    #[serde(default)]
    max_age: u64,
    #[serde(default)]
    services: Value,
    port: Option<u32>,
}

/// `"512m"`, `"1g"`, `"256"` (MiB) → MiB.
fn parse_memory(v: &str) -> Option<u32> {
    let v = v.trim().to_ascii_lowercase();
    let (num, scale) = match v.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let scale = match v[i..].trim_end_matches(['b', 'i']) {
                "k" => 1.0 / 1024.0,
                "m" => 1.0,
                "g" => 1024.0,
                _ => return None,
            };
            (&v[..i], scale)
        }
        None => (v.as_str(), 1.0),
    };
    let mib = num.trim().parse::<f64>().ok()? * scale;
    (mib.is_finite() && mib >= 1.0 && mib <= f64::from(u32::MAX)).then(|| mib.round() as u32)
}

/// `"0.5"` CPUs or `"500m"` millicores → millicores.
fn parse_cpu(v: &str) -> Option<u32> {
    let v = v.trim();
    let milli = match v.strip_suffix('m') {
        Some(m) => m.trim().parse::<f64>().ok()?,
        None => v.parse::<f64>().ok()? * 1000.0,
    };
    (milli.is_finite() && milli >= 1.0 && milli <= f64::from(u32::MAX)).then(|| milli.round() as u32)
}

fn limit_str(limits: &Value, key: &str) -> Option<String> {
    match &limits[key] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl NewTemplate {
    /// The template, or every problem found.
    fn into_template(self, tenant: &str, now: i64) -> Result<AppTemplate, Vec<FieldError>> {
        let mut problems = Vec::new();
        let name = self.name.clone().unwrap_or_else(|| {
            let base = self.image_name.rsplit('/').next().unwrap_or_default();
            base.split(':').next().unwrap_or_default().chars().filter(char::is_ascii_alphanumeric).collect::<String>()
        });
        let name = name.to_ascii_lowercase();
        validate_pod_id("name", &name, &mut problems);
        let mut spec = PodSpec { image: self.image_name.clone(), ..PodSpec::default() };
        if let Some(port) = self.port
            && let Some(net) = spec.networking.get_mut("default")
        {
            net.port = port;
        }
        if let Some(mem) = limit_str(&self.limits, "memory") {
            match parse_memory(&mem) {
                Some(m) => spec.resources.mem_limit = m.max(spec.resources.mem_request),
                None => problems.push(FieldError::new("limits.memory", format!("'{mem}' is not a memory size"))),
            }
        }
        if let Some(cpu) = limit_str(&self.limits, "cpu") {
            match parse_cpu(&cpu) {
                Some(c) => spec.resources.cpu_limit = c.max(spec.resources.cpu_request),
                None => problems.push(FieldError::new("limits.cpu", format!("'{cpu}' is not a CPU amount"))),
            }
        }
        spec.pod_id = "template".into();
        problems.extend(spec.validate(&corral_model::Limits::default()).into_iter().filter(|p| p.field != "pod_id"));
        spec.pod_id.clear();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(AppTemplate {
            name,
            tenant: tenant.to_owned(),
            spec,
            cull_timeout_s: self.cull_timeout,
            max_age_s: self.max_age,
            services: self.services,
            limits: self.limits,
            command: self.command,
            image_name: self.image_name,
            created: now,
            modified: now,
        })
    }
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn render(t: &AppTemplate) -> Value {
    json!({
        "name": t.name,
        "image-name": t.image_name,
        "limits": t.limits,
        "command": t.command,
        "cull-timeout": t.cull_timeout_s,
        "max-age": t.max_age_s,
        "services": t.services,
        "time-created": rfc3339(t.created),
        "time-modified": rfc3339(t.modified),
    })
}

/// `POST /api/templates` (admin): registers or replaces a template. Replacing it makes the
/// pool-manager replace the pool's unclaimed instances.
pub(super) async fn register(
    State(st): State<AppState>,
    Extension(binder): Extension<Arc<Binder>>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTemplate>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let now = now_ms();
    let mut tpl = body.into_template(&caller.tenant, now).map_err(|p| ApiError::invalid("template", p))?;
    let id = pool_id(&caller.tenant, &tpl.name);
    for _ in 0..8 {
        let existing = st.store().get_doc(TEMPLATE_KIND, &id).await?;
        let expected = existing.as_ref().map_or(0, |d| d.version);
        if let Some(old) = existing.and_then(|d| serde_json::from_str::<AppTemplate>(&d.value).ok()) {
            tpl.created = old.created;
        }
        let json = serde_json::to_string(&tpl).map_err(|e| ApiError::bad_request(e.to_string()))?;
        match st.store().put_doc(TEMPLATE_KIND, &id, &json, expected).await {
            Ok(_) => {
                // Claims here would find it stale anyway; this saves them the retry.
                binder.docs.forget(&id);
                ensure_pool(&st, &tpl).await?;
                return Ok(Json(json!({
                    "name": tpl.name,
                    "time-created": rfc3339(tpl.created),
                    "time-modified": rfc3339(tpl.modified),
                })));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("template is being changed concurrently; try again"))
}

/// Every template has a pool (size 0 until an operator sizes it) so its instances are
/// tracked, capped and culled.
pub(super) async fn ensure_pool(st: &AppState, tpl: &AppTemplate) -> Result<(), ApiError> {
    let cfg = PoolConfig {
        tenant: tpl.tenant.clone(),
        template: tpl.name.clone(),
        size: 0,
        cap: DEFAULT_CAP,
        when_full: WhenFull::Reject,
        retry_after_s: 5,
        deleted: false,
    };
    let json = serde_json::to_string(&cfg).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match st.store().put_doc(POOL_KIND, &pool_id(&tpl.tenant, &tpl.name), &json, 0).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/templates/{name}`.
pub(super) async fn get_template(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tpl = load_template(&st, &caller, &name).await?;
    Ok(Json(render(&tpl.value)))
}

/// `GET /api/templates/{name}/status`: images are never built here, so a registered
/// template is always `completed`.
pub(super) async fn status(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    load_template(&st, &caller, &name).await?;
    Ok(Json(json!({ "status": "completed" })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(parse_memory("512m"), Some(512));
        assert_eq!(parse_memory("1G"), Some(1024));
        assert_eq!(parse_memory("1Gi"), Some(1024));
        assert_eq!(parse_memory("300"), Some(300));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_cpu("0.5"), Some(500));
        assert_eq!(parse_cpu("250m"), Some(250));
        assert_eq!(parse_cpu("-1"), None);
    }
}
