//! Template objects and the request bodies of the template and tag endpoints.

use serde::{Deserialize, Serialize};

use super::{DEFAULT_TAG, PodLayer, validate_tag_name, validate_template_id};
use crate::{FieldError, Millis};

const MAX_TEMPLATE_DESCRIPTION: usize = 1600;
const MAX_COMMIT_MESSAGE: usize = 255;

/// A template: named, owned, versioned through its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Template {
    pub template_id: String,
    pub tenant: String,
    pub description: String,
    pub metatags: Vec<String>,
    pub archive_message: String,
    pub owner: String,
    pub creation_ts: Millis,
    pub update_ts: Millis,
}

fn check_ascii_len(field: &str, v: &str, max: usize, out: &mut Vec<FieldError>) {
    if !v.is_ascii() {
        out.push(FieldError::new(field, "must be ASCII"));
    }
    if v.len() > max {
        out.push(FieldError::new(field, format!("must be at most {max} characters (got {})", v.len())));
    }
}

fn latest() -> String {
    DEFAULT_TAG.to_string()
}

/// Body of `POST /pods/templates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewTemplate {
    pub template_id: String,
    pub description: String,
    pub metatags: Vec<String>,
    pub archive_message: String,
}

impl NewTemplate {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        validate_template_id("template_id", &self.template_id, &mut out);
        check_ascii_len("description", &self.description, MAX_TEMPLATE_DESCRIPTION, &mut out);
        out
    }

    /// The template this body creates, owned by `owner` in `tenant`.
    pub fn into_template(self, tenant: &str, owner: &str, now: Millis) -> Template {
        Template {
            template_id: self.template_id,
            tenant: tenant.to_string(),
            description: self.description,
            metatags: self.metatags,
            archive_message: self.archive_message,
            owner: owner.to_string(),
            creation_ts: now,
            update_ts: now,
        }
    }
}

/// Body of `PUT /pods/templates/{template_id}`: only the fields sent change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateTemplate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metatags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_message: Option<String>,
}

impl UpdateTemplate {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        if let Some(d) = &self.description {
            check_ascii_len("description", d, MAX_TEMPLATE_DESCRIPTION, &mut out);
        }
        out
    }

    /// Applies the sent fields; returns whether anything changed (and bumps `update_ts` if so).
    pub fn apply(&self, t: &mut Template, now: Millis) -> bool {
        let before = t.clone();
        if let Some(d) = &self.description {
            t.description.clone_from(d);
        }
        if let Some(m) = &self.metatags {
            t.metatags.clone_from(m);
        }
        if let Some(a) = &self.archive_message {
            t.archive_message.clone_from(a);
        }
        let changed = *t != before;
        if changed {
            t.update_ts = now;
        }
        changed
    }
}

/// Body of `POST /pods/templates/{template_id}/tags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTemplateTag {
    pub pod_definition: PodLayer,
    pub commit_message: String,
    #[serde(default = "latest")]
    pub tag: String,
}

impl NewTemplateTag {
    /// Problems with the tag name, the commit message and the definition (whose paths are
    /// prefixed with `pod_definition.`).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        validate_tag_name("tag", &self.tag, &mut out);
        check_ascii_len("commit_message", &self.commit_message, MAX_COMMIT_MESSAGE, &mut out);
        let mut def = Vec::new();
        self.pod_definition.validate(&mut def);
        out.extend(def.into_iter().map(|e| FieldError::new(format!("pod_definition.{}", e.field), e.message)));
        out
    }
}

/// Body of `POST /pods/{pod_id}/save_pod_as_template_tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTemplateTagFromPod {
    pub template_id: String,
    #[serde(default = "latest")]
    pub tag: String,
    pub commit_message: String,
}

impl NewTemplateTagFromPod {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        validate_template_id("template_id", &self.template_id, &mut out);
        validate_tag_name("tag", &self.tag, &mut out);
        check_ascii_len("commit_message", &self.commit_message, MAX_COMMIT_MESSAGE, &mut out);
        out
    }
}
