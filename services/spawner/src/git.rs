//! Git sources (`session.git` of a pod): cloned on the spawner's host with the `git` CLI and
//! handed to the runtime as a file tree placed at the destination before the container starts
//! (so any image works, with or without git).
//!
//! - One directory per pod and generation, `<spawner.git_dir>/<namespace>/<tenant>/<pod>/<gen>`:
//!   retries and crash restarts of the same generation reuse the finished clone; the next
//!   generation (a spec change, a restart) clones afresh and removes the old one; purging the
//!   pod removes it all ([`forget`]).
//! - The credential is the *name* of a secret stored by the pod's owner (`/api/secrets`). Its
//!   value is read and decrypted with the secrets key (`Config::secrets_key`) at clone time and
//!   given to git in its environment as an HTTP header scoped to the repository URL, never on a
//!   command line or in a URL, with every prompt disabled. Whatever git prints is scrubbed of
//!   the value before it reaches an error or a log.
//! - Failures become a spawn failure with a reason that says what went wrong (repository
//!   unreachable, branch missing, commit not found, credential not found, undecryptable or
//!   refused, timeout).

mod clone;

use std::path::{Path, PathBuf};
use std::time::Duration;

use corral_model::session::GitSource;
use corral_model::user_secret::{Owner, USER_SECRET_KIND, UserSecret, doc_name};
use corral_model::{Desired, PodKey};
use corral_runtime::{ContainerSpec, FileTree};

pub use clone::{CloneError, Credential, clone_source};

use crate::shard::Context;

/// Name of a generation's finished clone (a clone is made next to it and renamed when done).
const DONE: &str = "repo";

/// Clones the pod's git source, if it has one, and adds it to the container's files. An
/// error is the spawn's failure reason (no secret in it).
pub async fn prepare(ctx: &Context, d: &Desired, spec: &mut ContainerSpec) -> Result<(), String> {
    let pod_dir = pod_dir(ctx, &d.key());
    let source = d.spec.session.as_ref().and_then(|s| s.git.as_ref());
    let Some(source) = source else {
        // Most pods never had a git source. One stat of a local path costs microseconds,
        // while `remove_dir` goes through the blocking pool (two thread hand-offs) on every
        // spawn, so the removal is only sent there when a clone of an earlier generation is left.
        if std::fs::symlink_metadata(&pod_dir).is_ok() {
            remove_dir(&pod_dir).await;
        }
        return Ok(());
    };
    let keep = d.generation.to_string();
    remove_other_generations(&pod_dir, &keep).await;
    let gen_dir = pod_dir.join(&keep);
    let done = gen_dir.join(DONE);
    if !tokio::fs::try_exists(&done).await.unwrap_or(false) {
        clone_generation(ctx, d, source, &gen_dir).await.map_err(|e| e.to_string())?;
    }
    spec.files.push(FileTree { source: done, destination: source.destination.clone() });
    Ok(())
}

/// Removes every clone of the pod (it was purged).
pub async fn forget(ctx: &Context, key: &PodKey) {
    remove_dir(&pod_dir(ctx, key)).await;
}

async fn clone_generation(ctx: &Context, d: &Desired, source: &GitSource, gen_dir: &Path) -> Result<(), CloneError> {
    let credential = match &source.credential {
        Some(name) => Some(load_credential(ctx, &d.tenant, &d.owner, name).await?),
        None => None,
    };
    tokio::fs::create_dir_all(gen_dir)
        .await
        .map_err(|e| CloneError::Local(format!("creating the clone directory: {e}")))?;
    // A unique scratch name: an interrupted clone never passes for a finished one.
    let scratch = gen_dir.join(format!("clone-{:016x}", rand::random::<u64>()));
    let timeout = Duration::from_millis(ctx.cfg.spawner.git_timeout_ms.max(1));
    let pod = d.key();
    tracing::info!(%pod, generation = d.generation, "cloning the pod's git source");
    let cloned = clone_source(source, credential.as_ref(), &scratch, timeout).await;
    let finished = match cloned {
        Ok(head) => {
            tracing::info!(%pod, %head, "git source cloned");
            tokio::fs::rename(&scratch, gen_dir.join(DONE)).await.or_else(|e| {
                // Another attempt finished first: its clone is as good.
                if gen_dir.join(DONE).exists() {
                    Ok(())
                } else {
                    Err(CloneError::Local(format!("keeping the clone: {e}")))
                }
            })
        }
        Err(e) => {
            tracing::warn!(%pod, reason = %e, "cloning the git source failed");
            Err(e)
        }
    };
    remove_dir(&scratch).await;
    finished
}

async fn load_credential(ctx: &Context, tenant: &str, owner: &str, name: &str) -> Result<Credential, CloneError> {
    let doc = ctx
        .deps
        .store
        .get_doc(USER_SECRET_KIND, &doc_name(tenant, owner, name))
        .await
        .map_err(|e| CloneError::Local(format!("cannot read the stored credential: {e}")))?
        .ok_or(CloneError::CredentialNotFound)?;
    let secret: UserSecret = serde_json::from_str(&doc.value)
        .map_err(|_| CloneError::Local("the stored credential is unreadable".to_string()))?;
    let key = ctx.cfg.secrets_key().map_err(|e| CloneError::Local(e.to_string()))?;
    // Opened for the owner the pod names: a record copied under another owner does not open.
    let value = secret.open(&key, Owner { tenant, user: owner, name }).map_err(|e| CloneError::Local(e.to_string()))?;
    Ok(Credential { username: secret.username, value })
}

/// `<git_dir>/<namespace>/<tenant>/<pod>`, each component made safe for a path.
fn pod_dir(ctx: &Context, key: &PodKey) -> PathBuf {
    PathBuf::from(&ctx.cfg.spawner.git_dir)
        .join(path_component(&ctx.cfg.runtime.namespace))
        .join(path_component(&key.tenant))
        .join(path_component(&key.pod_id))
}

/// The text itself when it is a plain name, else a hex form that cannot escape the parent.
fn path_component(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.starts_with('.')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain { text.to_string() } else { format!("x-{}", text.bytes().map(|b| format!("{b:02x}")).collect::<String>()) }
}

async fn remove_other_generations(pod_dir: &Path, keep: &str) {
    let Ok(mut entries) = tokio::fs::read_dir(pod_dir).await else { return };
    while let Ok(Some(e)) = entries.next_entry().await {
        if e.file_name() != keep {
            remove_dir(&e.path()).await;
        }
    }
}

async fn remove_dir(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a git clone directory"),
    }
}

#[cfg(test)]
mod tests;
