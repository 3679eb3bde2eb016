//! The git section: what may be cloned, from where, into where, and the credential reference.
//!
//! Backend.AI keeps `credential: {username, password}` in plain text inside the template and
//! puts it into the clone URL. Corral only accepts the *name* of a stored secret; anything that
//! looks like the secret itself is refused, and no error message ever repeats the value.

use std::fmt;

use serde::{Serialize, Serializer};

/// Prefixes of access tokens issued by common git hosts.
const TOKEN_PREFIXES: &[&str] =
    &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "gloas-"];

/// Longest accepted credential reference (a secret *name*, not a secret).
pub const MAX_CREDENTIAL_REF_LEN: usize = 128;

/// The name of a stored secret the spawner uses when cloning, e.g. `my-github-token`.
///
/// Grammar: 1 to 128 characters, ASCII letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit; never a token-like value (see [`CredentialRef::parse`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialRef(String);

impl CredentialRef {
    /// Accepts a secret name; refuses values that look like literal tokens or passwords.
    /// The error describes the problem without repeating the value.
    pub fn parse(text: &str) -> Result<Self, String> {
        const USE_A_NAME: &str = "store the secret and give its name here (e.g. credential: my-git-token)";
        if text.len() > MAX_CREDENTIAL_REF_LEN {
            return Err(format!(
                "is longer than {MAX_CREDENTIAL_REF_LEN} characters, so it looks like a literal secret; {USE_A_NAME}"
            ));
        }
        if looks_like_token(text) {
            return Err(format!("looks like a literal access token; {USE_A_NAME}"));
        }
        if text.contains("://") || (text.contains(':') && text.contains('@')) {
            return Err(format!("looks like literal credentials (user:password@…); {USE_A_NAME}"));
        }
        let mut chars = text.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(
                "must be a secret name: letters, digits, '.', '_' and '-', starting with a letter or digit".into()
            );
        }
        Ok(Self(text.to_string()))
    }

    /// The secret name, for the component that looks the secret up.
    pub fn name(&self) -> &str {
        &self.0
    }
}

// Whatever holds a reference may be logged; keep even the name out of logs.
impl fmt::Debug for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialRef(<redacted>)")
    }
}

impl Serialize for CredentialRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

fn looks_like_token(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    TOKEN_PREFIXES.iter().any(|p| lower.contains(p))
}

/// Checks a repository location: a URL (`https://`, `ssh://`, `git://`, `file://`), an
/// scp-like `user@host:path`, or a local path. Never repeats the value in the error, since a
/// pasted URL may carry a password.
pub fn check_repository(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    if text.starts_with('-') {
        return Err("must not start with '-'".into());
    }
    if looks_like_token(text) {
        return Err("must not contain an access token; use git.credential to reference a stored secret".into());
    }
    if let Some((_, rest)) = text.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':')) {
            return Err("must not contain credentials (user:password@); use git.credential to reference a stored \
                        secret"
                .into());
        }
    }
    if repository_name(text).is_none() {
        return Err("must end with a repository name (e.g. …/project.git)".into());
    }
    Ok(())
}

/// The directory name a clone gets by default: the last path segment without `.git`.
pub fn repository_name(repository: &str) -> Option<&str> {
    let trimmed = repository.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

/// Checks a branch (or tag) name with git's ref-name rules that matter for a clone.
pub fn check_branch(text: &str) -> Result<(), String> {
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c);
    if text.is_empty() || text.len() > 255 {
        return Err("must be 1 to 255 characters long".into());
    }
    if text.starts_with(['-', '/', '.']) || text.ends_with(['/', '.']) || text.ends_with(".lock") {
        return Err("must not start with '-', '/' or '.', nor end with '/', '.' or '.lock'".into());
    }
    if text.chars().any(bad_char) || text.contains("..") || text.contains("@{") || text.contains("//") {
        return Err("is not a valid git branch name".into());
    }
    Ok(())
}

/// A full commit id (40 hex digits for SHA-1, 64 for SHA-256), lowercased: the checkout is
/// pinned exactly, so abbreviations and ref names are refused.
pub fn normalise_commit(text: &str) -> Result<String, String> {
    let ok = matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(text.to_ascii_lowercase())
    } else {
        Err("must be a full commit id (40 or 64 hex digits); use branch for a branch or tag name".into())
    }
}
