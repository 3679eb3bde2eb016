//! Running `git`: clone, check out the pinned commit, verify HEAD. No shell; the credential
//! travels only in git's environment; prompts, helpers and user/system configuration are off;
//! output is scrubbed of the credential before anything reads it.

use std::fmt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use corral_model::session::GitSource;
use tokio::time::Instant;

/// The most of git's own message kept in a failure reason.
const DETAIL_MAX: usize = 300;
/// What replaces a secret in git's output.
const REDACTED: &str = "[redacted]";
/// Username sent with a token when the secret has none (git hosts accept any).
const DEFAULT_USERNAME: &str = "git";

/// A stored secret's value (and username) for HTTP Basic authentication.
#[derive(Clone)]
pub struct Credential {
    pub username: Option<String>,
    pub value: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

impl Credential {
    fn basic(&self) -> String {
        let user = self.username.as_deref().unwrap_or(DEFAULT_USERNAME);
        base64(format!("{user}:{}", self.value).as_bytes())
    }

    /// Every form in which the secret could show up in git's output.
    fn forms(&self) -> Vec<String> {
        let user = self.username.as_deref().unwrap_or(DEFAULT_USERNAME);
        vec![self.basic(), format!("{user}:{}", self.value), self.value.clone()]
    }
}

/// Why a git source could not be prepared; the texts are spawn failure reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloneError {
    #[error("git clone failed: repository unreachable: {0}")]
    Unreachable(String),
    #[error("git clone failed: branch '{0}' not found in the repository")]
    BranchMissing(String),
    #[error("git clone failed: commit {0} not found in the repository")]
    CommitMissing(String),
    #[error("git clone failed: credential not found (no stored secret of that name for the pod's owner)")]
    CredentialNotFound,
    #[error("git clone failed: the repository refused the credential")]
    CredentialRefused,
    #[error("git clone failed: the repository needs a credential (set git.credential to a stored secret's name)")]
    CredentialNeeded,
    #[error("git clone failed: a credential can only be used with an http(s) repository")]
    CredentialUnsupported,
    #[error("git clone failed: timed out after {0:?}")]
    TimedOut(Duration),
    #[error("git clone failed: {0}")]
    Local(String),
}

/// Clones `source` into `target` (which must not exist) and checks out its commit, if any;
/// returns the checked-out commit. Bounded by `timeout` as a whole.
pub async fn clone_source(
    source: &GitSource,
    credential: Option<&Credential>,
    target: &Path,
    timeout: Duration,
) -> Result<String, CloneError> {
    let repo = &source.repository;
    if credential.is_some() && !is_http(repo) {
        return Err(CloneError::CredentialUnsupported);
    }
    let git = Git { credential, repo, deadline: Instant::now() + timeout, timeout };
    let target_text = target.to_str().ok_or_else(|| CloneError::Local("clone path is not UTF-8".into()))?;
    let mut args = vec!["clone", "--quiet", "--no-checkout"];
    if let Some(b) = &source.branch {
        args.extend(["--branch", b.as_str()]);
    }
    args.extend(["--", repo.as_str(), target_text]);
    let out = git.run(&args, None).await?;
    if !out.ok {
        return Err(classify_clone(&out.stderr, source.branch.as_deref(), credential.is_some()));
    }
    let wanted = match &source.commit {
        Some(c) => c.to_ascii_lowercase(),
        None => "HEAD".to_string(),
    };
    let exists = git.run(&["cat-file", "-e", &format!("{wanted}^{{commit}}")], Some(target)).await?;
    if !exists.ok {
        return Err(match &source.commit {
            Some(c) => CloneError::CommitMissing(c.clone()),
            None => CloneError::Unreachable("the repository has no commits".into()),
        });
    }
    let checkout = git.run(&["checkout", "--quiet", "--detach", &wanted], Some(target)).await?;
    if !checkout.ok {
        return Err(CloneError::Local(format!("checkout failed: {}", detail(&checkout.stderr))));
    }
    let head = git.run(&["rev-parse", "HEAD"], Some(target)).await?;
    let head_id = head.stdout.trim().to_ascii_lowercase();
    if !head.ok || source.commit.as_ref().is_some_and(|c| c.to_ascii_lowercase() != head_id) {
        return Err(CloneError::CommitMissing(source.commit.clone().unwrap_or_default()));
    }
    Ok(head_id)
}

fn is_http(repo: &str) -> bool {
    let lower = repo.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

struct Git<'a> {
    credential: Option<&'a Credential>,
    repo: &'a str,
    deadline: Instant,
    timeout: Duration,
}

struct Output {
    ok: bool,
    stdout: String,
    /// Already scrubbed of the credential.
    stderr: String,
}

impl Git<'_> {
    /// The configuration given through the environment (`GIT_CONFIG_*`), so nothing
    /// secret is on a command line, where other users of the host could read it.
    fn config(&self) -> Vec<(String, String)> {
        let mut c = vec![
            // An empty helper list: no stored or cached credentials are consulted.
            ("credential.helper".to_string(), String::new()),
            ("core.hooksPath".to_string(), "/dev/null".to_string()),
            ("protocol.ext.allow".to_string(), "never".to_string()),
            ("advice.detachedHead".to_string(), "false".to_string()),
        ];
        if let Some(cred) = self.credential {
            // Scoped to the repository's URL: a redirect elsewhere does not get it.
            let url = self.repo.trim_end_matches('/');
            c.push((format!("http.{url}.extraHeader"), format!("Authorization: Basic {}", cred.basic())));
        }
        c
    }

    async fn run(&self, args: &[&str], cwd: Option<&Path>) -> Result<Output, CloneError> {
        let mut cmd = tokio::process::Command::new("git");
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()))
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            // Set but empty: git then asks no helper program at all (nor SSH_ASKPASS).
            .env("GIT_ASKPASS", "")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own group: a timeout stops git's helpers (git-remote-http) too.
            .process_group(0);
        let config = self.config();
        cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (k, v)) in config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), k).env(format!("GIT_CONFIG_VALUE_{i}"), v);
        }
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                CloneError::Local("the git command is not installed on the spawner's host".into())
            }
            _ => CloneError::Local(format!("cannot run git: {e}")),
        })?;
        let pgid = child.id();
        // Dropping the child on timeout kills git itself (kill_on_drop); the group kill
        // reaches the helpers it started.
        let Ok(waited) = tokio::time::timeout_at(self.deadline, child.wait_with_output()).await else {
            if let Some(pgid) = pgid {
                kill_group(pgid).await;
            }
            return Err(CloneError::TimedOut(self.timeout));
        };
        let out = waited.map_err(|e| CloneError::Local(format!("waiting for git: {e}")))?;
        let forms = self.credential.map(Credential::forms).unwrap_or_default();
        Ok(Output {
            ok: out.status.success(),
            stdout: scrub(&String::from_utf8_lossy(&out.stdout), &forms),
            stderr: scrub(&String::from_utf8_lossy(&out.stderr), &forms),
        })
    }
}

/// SIGKILL to a process group, through `kill(1)` (this workspace has no unsafe code).
async fn kill_group(pgid: u32) {
    let killed = tokio::process::Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if let Err(e) = killed {
        tracing::warn!(pgid, error = %e, "cannot stop a timed-out git clone");
    }
}

/// `text` with every occurrence of every (non-empty) secret form replaced.
pub(crate) fn scrub(text: &str, forms: &[String]) -> String {
    let mut out = text.to_string();
    for f in forms.iter().filter(|f| !f.is_empty()) {
        out = out.replace(f.as_str(), REDACTED);
    }
    out
}

/// What a failed clone's (scrubbed) message means.
pub(crate) fn classify_clone(stderr: &str, branch: Option<&str>, with_credential: bool) -> CloneError {
    let lower = stderr.to_ascii_lowercase();
    if let Some(b) = branch
        && lower.contains("remote branch")
        && lower.contains("not found")
    {
        return CloneError::BranchMissing(b.to_string());
    }
    let auth =
        ["authentication failed", "could not read username", "could not read password", "error: 401", "error: 403"];
    if auth.iter().any(|a| lower.contains(a)) {
        return if with_credential { CloneError::CredentialRefused } else { CloneError::CredentialNeeded };
    }
    CloneError::Unreachable(detail(stderr))
}

/// git's last meaningful lines, shortened.
fn detail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let text = lines.iter().rev().take(2).rev().copied().collect::<Vec<_>>().join(" / ");
    let text = if text.is_empty() { "git gave no reason".to_string() } else { text };
    if text.len() <= DETAIL_MAX {
        return text;
    }
    let mut cut = DETAIL_MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Standard base64 with padding (RFC 4648), for the Basic authorization header.
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
