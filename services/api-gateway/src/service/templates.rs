//! Templates and their tags, `/pods/templates`: stored per tenant, shared through the same
//! permission levels as pods; tags are append-only versions keyed by (template, tag, time).

use corral_model::access::{Level, Permissions, effective_level};
use corral_model::template::{
    NewTemplate, NewTemplateTag, Template, TemplateTag, UpdateTemplate, next_tag_time, parse_tag_time,
};
use corral_store::{StoreError, Versioned};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::forbidden;
use super::derive::pin_nested;
use super::perms::{SetPermission, permission_error, permissions_body};
use super::{Ctx, now_ms};
use crate::AppState;
use crate::envelope::Outcome;
use crate::error::ApiError;
use crate::view::iso;

/// Document kinds: the template (with its permissions) and the list of its tags.
pub const TEMPLATE_KIND: &str = "pods_template";
pub const TAGS_KIND: &str = "pods_template_tags";

/// Compare-and-set attempts before giving up on a template that keeps changing.
const MAX_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTemplate {
    pub template: Template,
    #[serde(default)]
    pub permissions: Permissions,
}

fn name(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

fn corrupt(what: &str, e: serde_json::Error) -> ApiError {
    ApiError::from(StoreError::Corrupt(format!("stored {what} is unreadable: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::bad_request(format!("cannot encode: {e}")))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("template '{id}' not found"))
}

fn render(t: &Template) -> Value {
    json!({
        "template_id": t.template_id,
        "description": t.description,
        "metatags": t.metatags,
        "archive_message": t.archive_message,
        "owner": t.owner,
        "creation_ts": iso(t.creation_ts),
        "update_ts": iso(t.update_ts),
    })
}

fn render_tag(t: &TemplateTag, full: bool) -> Value {
    let mut v = json!({
        "template_id": t.template_id,
        "tag": t.tag,
        "tag_timestamp": t.tag_timestamp,
        "commit_message": t.commit_message,
        "added_by": t.added_by,
        "creation_ts": iso(t.creation_ts),
    });
    if full && let Some(obj) = v.as_object_mut() {
        obj.insert("pod_definition".into(), serde_json::to_value(&t.pod_definition).unwrap_or(Value::Null));
    }
    v
}

/// A template the caller holds at least `need` on; invisible ones are a 404.
pub async fn load_template(
    st: &AppState,
    ctx: &Ctx,
    id: &str,
    need: Level,
) -> Result<(Versioned<StoredTemplate>, Level), ApiError> {
    let doc = st.store().get_doc(TEMPLATE_KIND, &name(&ctx.caller.tenant, id)).await?.ok_or_else(|| not_found(id))?;
    let stored: StoredTemplate = serde_json::from_str(&doc.value).map_err(|e| corrupt("template", e))?;
    let level = effective_level(&stored.permissions, &stored.template.owner, &ctx.caller.user, ctx.caller.admin)
        .ok_or_else(|| not_found(id))?;
    if level < need {
        return Err(forbidden("template", id, level, need));
    }
    Ok((Versioned { version: doc.version, value: stored }, level))
}

/// The tags of a template (empty when it has none), with the document version.
pub async fn load_tags(st: &AppState, tenant: &str, id: &str) -> Result<Versioned<Vec<TemplateTag>>, ApiError> {
    match st.store().get_doc(TAGS_KIND, &name(tenant, id)).await? {
        Some(doc) => {
            let tags = serde_json::from_str(&doc.value).map_err(|e| corrupt("template tags", e))?;
            Ok(Versioned { version: doc.version, value: tags })
        }
        None => Ok(Versioned { version: 0, value: Vec::new() }),
    }
}

/// `GET /pods/templates`: the templates of the tenant the caller may read.
pub async fn list_templates(st: &AppState, ctx: &Ctx) -> Result<Outcome, ApiError> {
    let list: Vec<Value> = readable(st, ctx).await?.iter().map(|t| render(&t.template)).collect();
    let n = list.len();
    Ok(Outcome::success(Value::Array(list), format!("{n} templates retrieved")))
}

async fn readable(st: &AppState, ctx: &Ctx) -> Result<Vec<StoredTemplate>, ApiError> {
    let prefix = format!("{}/", ctx.caller.tenant);
    let mut out = Vec::new();
    for (doc_name, doc) in st.store().list_docs(TEMPLATE_KIND).await? {
        if !doc_name.starts_with(&prefix) {
            continue;
        }
        let t: StoredTemplate = serde_json::from_str(&doc.value).map_err(|e| corrupt("template", e))?;
        if effective_level(&t.permissions, &t.template.owner, &ctx.caller.user, ctx.caller.admin).is_some() {
            out.push(t);
        }
    }
    Ok(out)
}

/// `POST /pods/templates`.
pub async fn add_template(st: &AppState, ctx: &Ctx, new: NewTemplate) -> Result<Outcome, ApiError> {
    let problems = new.validate();
    if !problems.is_empty() {
        return Err(ApiError::invalid("template", problems));
    }
    let id = new.template_id.clone();
    let template = new.into_template(&ctx.caller.tenant, &ctx.caller.user, now_ms());
    let stored = StoredTemplate { permissions: Permissions::owned_by(&ctx.caller.user), template };
    match st.store().put_doc(TEMPLATE_KIND, &name(&ctx.caller.tenant, &id), &encode(&stored)?, 0).await {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => return Err(ApiError::conflict(format!("template '{id}' already exists"))),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(template = %id, "template created");
    Ok(Outcome::success(render(&stored.template), "template created"))
}

/// `GET /pods/templates/{id}` (READ).
pub async fn get_template(st: &AppState, ctx: &Ctx, id: &str) -> Result<Outcome, ApiError> {
    let (t, _) = load_template(st, ctx, id, Level::Read).await?;
    Ok(Outcome::success(render(&t.value.template), "template retrieved"))
}

/// `PUT /pods/templates/{id}` (USER).
pub async fn update_template(st: &AppState, ctx: &Ctx, id: &str, patch: UpdateTemplate) -> Result<Outcome, ApiError> {
    let problems = patch.validate();
    if !problems.is_empty() {
        return Err(ApiError::invalid("template", problems));
    }
    for _ in 0..MAX_ATTEMPTS {
        let (t, _) = load_template(st, ctx, id, Level::User).await?;
        let mut next = t.value.clone();
        if !patch.apply(&mut next.template, now_ms()) {
            return Ok(Outcome {
                result: render(&next.template),
                message: "no changes to the template".into(),
                ok: true,
            });
        }
        match st.store().put_doc(TEMPLATE_KIND, &name(&ctx.caller.tenant, id), &encode(&next)?, t.version).await {
            Ok(_) => return Ok(Outcome::success(render(&next.template), "template updated")),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("template '{id}' is being changed concurrently; try again")))
}

/// `DELETE /pods/templates/{id}` (ADMIN), with its tags. Pods made from it keep running:
/// their merged definitions are stored with them.
pub async fn delete_template(st: &AppState, ctx: &Ctx, id: &str) -> Result<Outcome, ApiError> {
    load_template(st, ctx, id, Level::Admin).await?;
    let n = name(&ctx.caller.tenant, id);
    st.store().delete_doc(TAGS_KIND, &n).await?;
    st.store().delete_doc(TEMPLATE_KIND, &n).await?;
    tracing::info!(template = %id, "template deleted");
    Ok(Outcome::success(Value::String(String::new()), "template deleted"))
}

/// `GET /pods/templates/{id}/tags?full=` (READ).
pub async fn list_tags(st: &AppState, ctx: &Ctx, id: &str, full: bool) -> Result<Outcome, ApiError> {
    load_template(st, ctx, id, Level::Read).await?;
    let tags = load_tags(st, &ctx.caller.tenant, id).await?.value;
    let list: Vec<Value> = tags.iter().map(|t| render_tag(t, full)).collect();
    let n = list.len();
    Ok(Outcome::success(Value::Array(list), format!("{n} template tags retrieved")))
}

/// `GET /pods/templates/tags?full=`: every readable template with its tags.
pub async fn list_templates_and_tags(st: &AppState, ctx: &Ctx, full: bool) -> Result<Outcome, ApiError> {
    let mut out = serde_json::Map::new();
    for t in readable(st, ctx).await? {
        let id = t.template.template_id.clone();
        let tags = load_tags(st, &ctx.caller.tenant, &id).await?.value;
        let mut v = render(&t.template);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("tags".into(), Value::Array(tags.iter().map(|t| render_tag(t, full)).collect()));
        }
        out.insert(id, v);
    }
    let n = out.len();
    Ok(Outcome::success(Value::Object(out), format!("{n} templates with their tags retrieved")))
}

/// `GET /pods/templates/{id}/tags/{tag_id}` (READ): `tag_id` with `@` names one version,
/// otherwise every version of that tag (newest first); a list either way, as Tapis.
pub async fn get_tag(st: &AppState, ctx: &Ctx, id: &str, tag_id: &str) -> Result<Outcome, ApiError> {
    load_template(st, ctx, id, Level::Read).await?;
    let mut tags: Vec<TemplateTag> = load_tags(st, &ctx.caller.tenant, id)
        .await?
        .value
        .into_iter()
        .filter(|t| if tag_id.contains('@') { t.tag_timestamp == tag_id } else { t.tag == tag_id })
        .collect();
    if tags.is_empty() {
        return Err(ApiError::not_found(format!("template '{id}' has no tag '{tag_id}'")));
    }
    tags.sort_by_key(|t| std::cmp::Reverse(t.creation_ts));
    let list: Vec<Value> = tags.iter().map(|t| render_tag(t, true)).collect();
    Ok(Outcome::success(Value::Array(list), "template tag retrieved"))
}

/// `POST /pods/templates/{id}/tags` (USER): a new immutable version. A nested template
/// reference in the definition is resolved and pinned now, so the version never drifts.
pub async fn add_tag(st: &AppState, ctx: &Ctx, id: &str, new: NewTemplateTag) -> Result<Outcome, ApiError> {
    let problems = new.validate();
    if !problems.is_empty() {
        return Err(ApiError::invalid("template tag", problems));
    }
    load_template(st, ctx, id, Level::User).await?;
    let mut def = new.pod_definition;
    pin_nested(st, ctx, id, &mut def).await?;
    let tag = append_tag(st, ctx, id, &new.tag, def, &new.commit_message).await?;
    Ok(Outcome::success(render_tag(&tag, true), "template tag created"))
}

/// Appends a version of `tag` to template `id` (whose permissions the caller checked).
pub async fn append_tag(
    st: &AppState,
    ctx: &Ctx,
    id: &str,
    tag: &str,
    def: corral_model::template::PodLayer,
    commit_message: &str,
) -> Result<TemplateTag, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let tags = load_tags(st, &ctx.caller.tenant, id).await?;
        let newest = tags.value.iter().filter(|t| t.tag == tag).filter_map(|t| parse_tag_time(&t.time_text())).max();
        let at = next_tag_time(now_ms(), newest);
        let version = TemplateTag::new(id, tag, def.clone(), commit_message, ctx.caller.user.as_str(), at);
        let mut all = tags.value.clone();
        all.push(version.clone());
        match st.store().put_doc(TAGS_KIND, &name(&ctx.caller.tenant, id), &encode(&all)?, tags.version).await {
            Ok(_) => {
                tracing::info!(template = %id, tag = %version.tag_timestamp, "template tag created");
                return Ok(version);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("template '{id}' is being tagged concurrently; try again")))
}

/// `GET /pods/templates/{id}/permissions` (USER).
pub async fn get_permissions(st: &AppState, ctx: &Ctx, id: &str) -> Result<Outcome, ApiError> {
    let (t, _) = load_template(st, ctx, id, Level::User).await?;
    let body = permissions_body(&t.value.permissions, &t.value.template.owner);
    Ok(Outcome::success(body, "template permissions retrieved"))
}

/// `POST /pods/templates/{id}/permissions` (ADMIN).
pub async fn set_permission(st: &AppState, ctx: &Ctx, id: &str, body: SetPermission) -> Result<Outcome, ApiError> {
    let level = body.parsed_level()?;
    change_permissions(st, ctx, id, |p, owner| p.set(owner, &body.user, level)).await
}

/// `DELETE /pods/templates/{id}/permissions/{user}` (ADMIN).
pub async fn delete_permission(st: &AppState, ctx: &Ctx, id: &str, user: &str) -> Result<Outcome, ApiError> {
    change_permissions(st, ctx, id, |p, owner| p.remove(owner, user)).await
}

async fn change_permissions(
    st: &AppState,
    ctx: &Ctx,
    id: &str,
    apply: impl Fn(&Permissions, &str) -> Result<Permissions, corral_model::access::PermissionError>,
) -> Result<Outcome, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let (t, _) = load_template(st, ctx, id, Level::Admin).await?;
        let mut next = t.value.clone();
        next.permissions = apply(&next.permissions, &next.template.owner).map_err(permission_error)?;
        match st.store().put_doc(TEMPLATE_KIND, &name(&ctx.caller.tenant, id), &encode(&next)?, t.version).await {
            Ok(_) => {
                let body = permissions_body(&next.permissions, &next.template.owner);
                return Ok(Outcome::success(body, "template permissions updated"));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("the permissions of template '{id}' are being changed concurrently; try again")))
}
