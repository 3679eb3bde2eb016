//! Session templates as Tapis templates: create, replace, read (either way round), list,
//! delete. Permission checks are the Tapis template ones ([`load_template`]).

use corral_model::FieldError;
use corral_model::access::{Level, Permissions, effective_level};
use corral_model::sesstpl::{SessionTemplate, from_pod_layer, to_pod_layer};
use corral_model::template::{
    DEFAULT_TAG, NewTemplate, PodLayer, TemplateRef, TemplateTag, select_tag, validate_tag_name, validate_template_id,
};
use corral_store::StoreError;
use serde::Serialize;

use super::docs::{SESSION_KIND, SessionDoc, doc_name, encode, load_session};
use crate::AppState;
use crate::error::ApiError;
use crate::service::templates::{StoredTemplate, TAGS_KIND, TEMPLATE_KIND, append_tag, load_tags, load_template};
use crate::service::{Ctx, derive, now_ms};

/// A session template as answered: the document and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub id: String,
    pub owner: String,
    /// The tag version the document describes.
    pub tag_timestamp: Option<String>,
    /// `session_template` (a stored document) or `tapis_template` (read from its layer).
    pub source: &'static str,
    /// Layer fields the document cannot express (Tapis templates only).
    pub dropped: Vec<String>,
    pub template: SessionTemplate,
}

/// The Tapis tag name and layer of `t`, or every problem (with document paths) that keeps it
/// from being stored as a Tapis template.
fn core_form(t: &SessionTemplate) -> Result<(String, PodLayer), Vec<FieldError>> {
    let mut problems = Vec::new();
    validate_template_id("metadata.name", &t.metadata.name, &mut problems);
    let tag = t.metadata.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string());
    validate_tag_name("metadata.tag", &tag, &mut problems);
    let layer = to_pod_layer(t).layer;
    let mut layer_problems = Vec::new();
    layer.validate(&mut layer_problems);
    problems
        .extend(layer_problems.into_iter().map(|p| FieldError::new(format!("pod_definition.{}", p.field), p.message)));
    if problems.is_empty() { Ok((tag, layer)) } else { Err(problems) }
}

fn invalid(problems: Vec<FieldError>) -> ApiError {
    ApiError::invalid("session template", problems)
}

fn commit_message(t: &SessionTemplate) -> String {
    format!("session template '{}'", t.metadata.name)
}

/// `POST`: a new Tapis template, its first tag version, and the session document.
pub async fn create(st: &AppState, ctx: &Ctx, t: SessionTemplate) -> Result<View, ApiError> {
    let (tag, layer) = core_form(&t).map_err(invalid)?;
    let id = t.metadata.name.clone();
    let tenant = ctx.caller.tenant.as_str();
    let new = NewTemplate { template_id: id.clone(), description: commit_message(&t), ..NewTemplate::default() };
    let template = new.into_template(tenant, &ctx.caller.user, now_ms());
    let created = template.creation_ts;
    let stored = StoredTemplate { permissions: Permissions::owned_by(&ctx.caller.user), template };
    match st.store().put_doc(TEMPLATE_KIND, &doc_name(tenant, &id), &encode(&stored)?, 0).await {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => return Err(ApiError::conflict(format!("template '{id}' already exists"))),
        Err(e) => return Err(e.into()),
    }
    let written = async {
        let version = append_tag(st, ctx, &id, &tag, layer, &commit_message(&t)).await?;
        // A document left by a template deleted through the Tapis surface is replaced.
        let old = load_session(st, tenant, &id).await?.version;
        let doc = SessionDoc { document: t, tag_timestamp: version.tag_timestamp, template_created: created };
        st.store().put_doc(SESSION_KIND, &doc_name(tenant, &id), &encode(&doc)?, old).await?;
        Ok::<_, ApiError>(doc)
    }
    .await;
    match written {
        Ok(doc) => {
            tracing::info!(template = %id, "session template created");
            Ok(session_view(&id, &stored.template.owner, doc))
        }
        Err(e) => {
            // Half a template is worse than none: the caller may simply retry.
            let name = doc_name(tenant, &id);
            for kind in [TAGS_KIND, TEMPLATE_KIND] {
                if let Err(undo) = st.store().delete_doc(kind, &name).await {
                    tracing::warn!(template = %id, kind, error = %undo, "partly created session template left behind");
                }
            }
            Err(e)
        }
    }
}

/// `PUT`: a new tag version and a new session document (USER).
pub async fn replace(st: &AppState, ctx: &Ctx, id: &str, t: SessionTemplate) -> Result<View, ApiError> {
    let core = core_form(&t);
    let mut problems = core.as_ref().err().cloned().unwrap_or_default();
    if t.metadata.name != id {
        problems.push(FieldError::new("metadata.name", format!("must be '{id}', the template being replaced")));
    }
    let (tag, layer) = match core {
        Ok(core) if problems.is_empty() => core,
        _ => return Err(invalid(problems)),
    };
    let (stored, _) = load_template(st, ctx, id, Level::User).await?;
    let tenant = ctx.caller.tenant.as_str();
    let version = append_tag(st, ctx, id, &tag, layer, &commit_message(&t)).await?;
    let created = stored.value.template.creation_ts;
    let doc = SessionDoc { document: t, tag_timestamp: version.tag_timestamp, template_created: created };
    // Last writer wins, as with tags: each replace already made its own tag version.
    let mut attempts = 0;
    loop {
        let old = load_session(st, tenant, id).await?.version;
        match st.store().put_doc(SESSION_KIND, &doc_name(tenant, id), &encode(&doc)?, old).await {
            Ok(_) => break,
            Err(StoreError::Conflict { .. }) if attempts < 8 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(template = %id, "session template replaced");
    Ok(session_view(id, &stored.value.template.owner, doc))
}

fn session_view(id: &str, owner: &str, doc: SessionDoc) -> View {
    View {
        id: id.to_string(),
        owner: owner.to_string(),
        tag_timestamp: Some(doc.tag_timestamp),
        source: SESSION_KIND,
        dropped: Vec::new(),
        template: doc.document,
    }
}

/// A readable template as a session template, with the tag version it describes.
pub struct Loaded {
    pub view: View,
    /// The version a pod started from it pins (`None` for a Tapis template without tags).
    pub tag: Option<TemplateTag>,
}

/// `GET /{id}` (READ): the session document, or the Tapis template read as one.
pub async fn get(st: &AppState, ctx: &Ctx, id: &str) -> Result<Loaded, ApiError> {
    let (stored, _) = load_template(st, ctx, id, Level::Read).await?;
    read_as_session(st, ctx, &stored.value).await
}

async fn read_as_session(st: &AppState, ctx: &Ctx, stored: &StoredTemplate) -> Result<Loaded, ApiError> {
    let t = &stored.template;
    let id = t.template_id.as_str();
    let tags = load_tags(st, &ctx.caller.tenant, id).await?.value;
    if let Some(doc) = load_session(st, &ctx.caller.tenant, id).await?.value
        && doc.template_created == t.creation_ts
    {
        let tag = TemplateRef::parse(&format!("{id}:{}", doc.tag_timestamp))
            .ok()
            .and_then(|r| select_tag(&tags, &r).cloned());
        return Ok(Loaded { view: session_view(id, &t.owner, doc), tag });
    }
    let newest = |name: Option<&str>| {
        tags.iter()
            .filter(|tag| name.is_none_or(|n| tag.tag == n))
            .max_by(|a, b| (a.time_text(), a.creation_ts).cmp(&(b.time_text(), b.creation_ts)))
    };
    let tag = newest(Some(DEFAULT_TAG))
        .or_else(|| newest(None))
        .cloned()
        .ok_or_else(|| unreadable(id, vec![FieldError::new("tags", "the template has no tag to read")]))?;
    let mut layer = tag.pod_definition.clone();
    if layer.template.as_deref().is_some_and(|r| !r.is_empty()) {
        // Built on other templates: read what the whole chain sets.
        let resolved = derive::resolve(st, ctx, "", &layer).await?;
        layer = derive::own_layer(&resolved.derived.spec);
    }
    let read = from_pod_layer(id, &layer).map_err(|p| unreadable(id, p))?;
    let view = View {
        id: id.to_string(),
        owner: t.owner.clone(),
        tag_timestamp: Some(tag.tag_timestamp.clone()),
        source: "tapis_template",
        dropped: read.dropped,
        template: read.template,
    };
    Ok(Loaded { view, tag: Some(tag) })
}

fn unreadable(id: &str, problems: Vec<FieldError>) -> ApiError {
    let mut e = ApiError::invalid(&format!("template '{id}' read as a session template"), problems);
    e.status = axum::http::StatusCode::CONFLICT;
    e
}

/// `GET`: every template of the tenant the caller may read that reads as a session template.
pub async fn list(st: &AppState, ctx: &Ctx) -> Result<Vec<View>, ApiError> {
    let prefix = format!("{}/", ctx.caller.tenant);
    let mut out = Vec::new();
    for (name, doc) in st.store().list_docs(TEMPLATE_KIND).await? {
        if !name.starts_with(&prefix) {
            continue;
        }
        let t: StoredTemplate = serde_json::from_str(&doc.value)
            .map_err(|e| ApiError::from(StoreError::Corrupt(format!("stored template is unreadable: {e}"))))?;
        let c = &ctx.caller;
        if effective_level(&t.permissions, &t.template.owner, &c.user, c.admin).is_none() {
            continue;
        }
        match read_as_session(st, ctx, &t).await {
            Ok(loaded) => out.push(loaded.view),
            // Templates with no image or no tags are simply not session templates.
            Err(e) if e.status.is_client_error() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `DELETE /{id}` (ADMIN): the session document, then the Tapis template with its tags.
pub async fn delete(st: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    load_template(st, ctx, id, Level::Admin).await?;
    st.store().delete_doc(SESSION_KIND, &doc_name(&ctx.caller.tenant, id)).await?;
    crate::service::templates::delete_template(st, ctx, id).await?;
    tracing::info!(template = %id, "session template deleted");
    Ok(())
}
