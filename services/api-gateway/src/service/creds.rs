//! Per-pod credentials: generated once per pod, kept in their own document (never in the
//! pod record, so they travel in no message), substituted into the container by the spawner.

use corral_model::access::Level;
use corral_model::secrets::{Credentials, StoredCredentials};
use corral_model::{Millis, PodKey};
use corral_store::StoreError;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;

use super::Ctx;
use super::access::{load_pod, meta_name};
use crate::AppState;
use crate::envelope::Outcome;
use crate::error::ApiError;

/// Document kind of a pod's credentials (read by the spawner too).
pub const CREDENTIALS_KIND: &str = corral_model::secrets::CREDENTIALS_KIND;

/// Tapis generates 30-character passwords.
const PASSWORD_LEN: usize = 30;

fn password() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(PASSWORD_LEN).map(char::from).collect()
}

/// The credentials of the pod created at `creation_ts`, generating them on first use. Two
/// callers racing get the same ones: the loser of the create re-reads the winner's.
pub async fn ensure_credentials(st: &AppState, key: &PodKey, creation_ts: Millis) -> Result<Credentials, ApiError> {
    let name = meta_name(key);
    for _ in 0..4 {
        let current = st.store().get_doc(CREDENTIALS_KIND, &name).await?;
        let version = match &current {
            Some(doc) => {
                let stored: StoredCredentials = serde_json::from_str(&doc.value).map_err(|e| {
                    ApiError::from(StoreError::Corrupt(format!("stored credentials are unreadable: {e}")))
                })?;
                // Credentials of an earlier pod with this id are replaced, never reused.
                if stored.creation_ts == creation_ts {
                    return Ok(stored.credentials);
                }
                doc.version
            }
            None => 0,
        };
        let fresh =
            StoredCredentials { creation_ts, credentials: Credentials::new(&key.pod_id, password(), password()) };
        let json = serde_json::to_string(&fresh)
            .map_err(|e| ApiError::bad_request(format!("cannot encode credentials: {e}")))?;
        match st.store().put_doc(CREDENTIALS_KIND, &name, &json, version).await {
            Ok(_) => return Ok(fresh.credentials),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("credentials of pod '{}' are being created concurrently; try again", key.pod_id)))
}

/// `GET /pods/{id}/credentials` (USER): the pod's user credentials, as Tapis returns them.
pub async fn get_credentials(st: &AppState, ctx: &Ctx, pod_id: &str) -> Result<Outcome, ApiError> {
    let pod = load_pod(st, ctx, pod_id, Level::User).await?;
    let d = &pod.rec.desired.value;
    let creds = ensure_credentials(st, &d.key(), d.creation_ts).await?;
    let body = json!({ "user_username": creds.user_username, "user_password": creds.user_password });
    Ok(Outcome::success(body, "pod credentials retrieved"))
}
