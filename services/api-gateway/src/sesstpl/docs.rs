//! The stored documents beside the Tapis template: the session document and the record of
//! a pod started from a session template.

use corral_model::Millis;
use corral_model::sesstpl::{SessionTemplate, SessionType};
use corral_store::{StoreError, Versioned};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

/// Doc kind of the normalised session document, named `{tenant}/{template id}`.
pub const SESSION_KIND: &str = "session_template";

/// Doc kind of what a pod was started from, named `{tenant}/{pod id}`.
pub const SESSION_POD_KIND: &str = "session_pod";

/// What a pod layer cannot carry, plus the version of the Tapis tag written with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionDoc {
    pub document: SessionTemplate,
    /// `{tag}@YYYY-MM-DD-HH:MM:SS`: the tag version this document describes.
    pub tag_timestamp: String,
    /// `creation_ts` of the Tapis template it belongs to: a different one means the template
    /// was deleted and re-created through the Tapis surface, and this document is stale.
    pub template_created: Millis,
}

/// A pod started from a session template: the resolved document and the pinned version.
#[derive(Debug, Clone, Serialize)]
pub struct SessionPod {
    pub template_id: String,
    pub tag_timestamp: String,
    pub session_type: SessionType,
    pub document: SessionTemplate,
    pub warnings: Vec<String>,
}

pub fn doc_name(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

fn corrupt(what: &str, e: serde_json::Error) -> ApiError {
    ApiError::from(StoreError::Corrupt(format!("stored {what} is unreadable: {e}")))
}

pub fn encode<T: Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::from(StoreError::Corrupt(format!("cannot encode: {e}"))))
}

/// The session document of template `id`, with its store version (0 when absent).
pub async fn load_session(st: &AppState, tenant: &str, id: &str) -> Result<Versioned<Option<SessionDoc>>, ApiError> {
    match st.store().get_doc(SESSION_KIND, &doc_name(tenant, id)).await? {
        Some(doc) => {
            let value = serde_json::from_str(&doc.value).map_err(|e| corrupt("session template", e))?;
            Ok(Versioned { version: doc.version, value: Some(value) })
        }
        None => Ok(Versioned { version: 0, value: None }),
    }
}
