//! Corral's extension of the Tapis pod: how a container runs beyond a long-lived service.
//! Session templates (Backend.AI) set it; `POST /v3/pods` accepts it too.
//!
//! - `session_type: batch` runs to completion: the pod ends `COMPLETE` with the exit code kept
//!   and a termination reason (non-zero exit, timeout, infrastructure) instead of being
//!   restarted.
//! - `bootstrap` is a shell script run once before the command.
//! - `git` is a repository cloned by the spawner and placed into the container before it
//!   starts; its credential is the *name* of a stored secret, never the secret.

use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::sesstpl::CredentialRef;
use crate::sesstpl::git::{check_branch, check_repository, normalise_commit};

/// Longest accepted bootstrap script.
pub const MAX_BOOTSTRAP_LEN: usize = 64 * 1024;
pub use crate::sesstpl::MAX_BATCH_TIMEOUT as MAX_BATCH_TIMEOUT_S;

/// Interactive sessions behave like pods; batch sessions run to completion. Backend.AI's
/// `inference` and `system` types are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionType {
    #[default]
    Interactive,
    Batch,
}

/// The `session` field of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SessionRun {
    pub session_type: SessionType,
    /// Seconds a batch run may take before it is stopped with reason `timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_timeout: Option<u32>,
    /// Shell script (`/bin/sh -c`) run once before the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
}

/// A repository placed into the container before it starts. `Debug` hides the credential's
/// name (as [`CredentialRef`] does): whatever holds it may be logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GitSource {
    pub repository: String,
    /// Full commit id, checked out exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Absolute directory inside the container.
    pub destination: String,
    /// Name of a secret stored by the pod's owner; the spawner looks the value up at clone
    /// time and hands it to git without putting it on a command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("repository", &self.repository)
            .field("commit", &self.commit)
            .field("branch", &self.branch)
            .field("destination", &self.destination)
            .field("credential", &self.credential.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl SessionRun {
    pub fn is_batch(&self) -> bool {
        self.session_type == SessionType::Batch
    }

    /// Every problem, with paths under `field` (e.g. `session`).
    pub fn validate(&self, field: &str, out: &mut Vec<FieldError>) {
        if let Some(t) = self.batch_timeout {
            if !self.is_batch() {
                out.push(FieldError::new(format!("{field}.batch_timeout"), "is only allowed with session_type batch"));
            }
            if t == 0 || t > MAX_BATCH_TIMEOUT_S {
                out.push(FieldError::new(
                    format!("{field}.batch_timeout"),
                    format!("must be between 1 and {MAX_BATCH_TIMEOUT_S} seconds (got {t})"),
                ));
            }
        }
        if let Some(b) = &self.bootstrap {
            if b.trim().is_empty() {
                out.push(FieldError::new(format!("{field}.bootstrap"), "must not be empty"));
            }
            if b.len() > MAX_BOOTSTRAP_LEN {
                out.push(FieldError::new(
                    format!("{field}.bootstrap"),
                    format!("is {} bytes long; at most {MAX_BOOTSTRAP_LEN} allowed", b.len()),
                ));
            }
        }
        if let Some(g) = &self.git {
            g.validate(&format!("{field}.git"), out);
        }
    }

    /// Checks against the pod's command: the bootstrap script wraps the command
    /// (`sh -c '<script>; exec "$@"' -- <command> <arguments>`), and without one the image's
    /// own entrypoint is unknown to Corral, so there would be nothing to hand over to.
    pub fn validate_command(&self, field: &str, command: Option<&[String]>, out: &mut Vec<FieldError>) {
        if self.bootstrap.is_some() && command.is_none_or(|c| c.first().is_none_or(String::is_empty)) {
            out.push(FieldError::new(
                format!("{field}.bootstrap"),
                "needs a command to run after it: set the pod's command (the image's default command cannot be wrapped)",
            ));
        }
    }
}

impl GitSource {
    pub fn validate(&self, field: &str, out: &mut Vec<FieldError>) {
        let mut check = |name: &str, r: Result<(), String>| {
            if let Err(m) = r {
                out.push(FieldError::new(format!("{field}.{name}"), m));
            }
        };
        check("repository", check_repository(&self.repository));
        if let Some(c) = &self.commit {
            check("commit", normalise_commit(c).map(|_| ()));
        }
        if let Some(b) = &self.branch {
            check("branch", check_branch(b));
        }
        check("destination", check_destination(&self.destination));
        if let Some(c) = &self.credential {
            check("credential", CredentialRef::parse(c).map(|_| ()));
        }
    }
}

/// An absolute, normalised directory that is not the root.
pub fn check_destination(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if path.len() > 1024 {
        return Err("is longer than 1024 characters".into());
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Err("must not be the root directory".into());
    }
    if segments.iter().any(|s| *s == "." || *s == "..") || path.chars().any(char::is_control) {
        return Err("must not contain '.' or '..' segments or control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(s: &SessionRun) -> Vec<String> {
        let mut out = Vec::new();
        s.validate("session", &mut out);
        out.into_iter().map(|p| p.field).collect()
    }

    fn git(dest: &str) -> GitSource {
        GitSource { repository: "/srv/repo.git".into(), destination: dest.into(), ..GitSource::default() }
    }

    #[test]
    fn validation_table() {
        let batch =
            |t: Option<u32>| SessionRun { session_type: SessionType::Batch, batch_timeout: t, ..SessionRun::default() };
        let rows: Vec<(&str, SessionRun, Vec<&str>)> = vec![
            ("empty is fine", SessionRun::default(), vec![]),
            ("batch with timeout", batch(Some(60)), vec![]),
            ("zero timeout", batch(Some(0)), vec!["session.batch_timeout"]),
            (
                "timeout without batch",
                SessionRun { batch_timeout: Some(5), ..SessionRun::default() },
                vec!["session.batch_timeout"],
            ),
            (
                "blank bootstrap",
                SessionRun { bootstrap: Some("  ".into()), ..SessionRun::default() },
                vec!["session.bootstrap"],
            ),
            ("git ok", SessionRun { git: Some(git("/home/work/src")), ..SessionRun::default() }, vec![]),
            (
                "git relative",
                SessionRun { git: Some(git("src")), ..SessionRun::default() },
                vec!["session.git.destination"],
            ),
            ("git root", SessionRun { git: Some(git("/")), ..SessionRun::default() }, vec!["session.git.destination"]),
            (
                "git dotdot",
                SessionRun { git: Some(git("/a/../etc")), ..SessionRun::default() },
                vec!["session.git.destination"],
            ),
            (
                "git short commit and token credential",
                SessionRun {
                    git: Some(GitSource {
                        commit: Some("abc123".into()),
                        credential: Some("ghp_0123456789abcdef".into()),
                        ..git("/src")
                    }),
                    ..SessionRun::default()
                },
                vec!["session.git.commit", "session.git.credential"],
            ),
        ];
        for (name, run, want) in rows {
            assert_eq!(problems(&run), want, "{name}");
        }
    }

    #[test]
    fn a_bootstrap_needs_a_command_to_wrap() {
        let boot = SessionRun { bootstrap: Some("echo hi".into()), ..SessionRun::default() };
        let cmd = vec!["sleep".to_string(), "1".to_string()];
        let rows: [(&str, &SessionRun, Option<&[String]>, usize); 5] = [
            ("bootstrap and command", &boot, Some(&cmd), 0),
            ("bootstrap without command", &boot, None, 1),
            ("bootstrap with an empty command", &boot, Some(&[]), 1),
            ("no bootstrap, no command", &SessionRun::default(), None, 0),
            (
                "batch on the image's default command",
                &SessionRun { session_type: SessionType::Batch, ..SessionRun::default() },
                None,
                0,
            ),
        ];
        for (name, run, command, want) in rows {
            let mut out = Vec::new();
            run.validate_command("session", command, &mut out);
            assert_eq!(out.len(), want, "{name}: {out:?}");
            assert!(out.iter().all(|p| p.field == "session.bootstrap"), "{name}");
        }
    }

    #[test]
    fn debug_hides_the_credential_name() {
        let g = GitSource { credential: Some("my-git-token".into()), ..git("/src") };
        let shown = format!("{g:?}");
        assert!(!shown.contains("my-git-token") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<SessionRun>(r#"{"session_type":"batch","timeout":3}"#);
        assert!(err.is_err());
        let ok: SessionRun = serde_json::from_str(r#"{"session_type":"batch","batch_timeout":3}"#).expect("parses");
        assert!(ok.is_batch());
    }
}
