//! Per-pod generated credentials and the placeholders that reference them.
//!
//! A pod's environment, command and arguments may contain `<<tapissecret_user_username>>`,
//! `<<tapissecret_user_password>>`, `<<tapissecret_service_username>>` and
//! `<<tapissecret_service_password>>` (also the legacy `<<TAPIS_user_password>>` spelling).
//! Definitions keep the placeholders; only the spawner substitutes the values, when it starts
//! the container, so the values never travel in messages nor appear in the pod's records.

use serde::{Deserialize, Serialize};

/// Store document kind holding a pod's credentials (`{tenant}/{pod_id}`), written by the
/// gateway and read by the spawner.
pub const CREDENTIALS_KIND: &str = "pod_credentials";

/// The service account name Tapis uses for pods' admin credentials.
pub const SERVICE_USERNAME: &str = "podsservice";

/// The credentials document: tied to the pod incarnation created at `creation_ts`, so a
/// document left by an earlier pod of the same id is never used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredentials {
    pub creation_ts: crate::Millis,
    pub credentials: Credentials,
}

/// The credentials generated for one pod at creation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub user_username: String,
    pub user_password: String,
    pub service_username: String,
    pub service_password: String,
}

// Passwords must never reach logs, even at debug level.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_username", &self.user_username)
            .field("user_password", &"(hidden)")
            .field("service_username", &self.service_username)
            .field("service_password", &"(hidden)")
            .finish()
    }
}

impl Credentials {
    /// Credentials for `pod_id` with the given random passwords (randomness is the caller's).
    pub fn new(pod_id: &str, user_password: String, service_password: String) -> Self {
        Self {
            user_username: pod_id.to_string(),
            user_password,
            service_username: SERVICE_USERNAME.to_string(),
            service_password,
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        match name.to_ascii_lowercase().as_str() {
            "user_username" => Some(&self.user_username),
            "user_password" => Some(&self.user_password),
            "service_username" | "admin_username" => Some(&self.service_username),
            "service_password" | "admin_password" => Some(&self.service_password),
            _ => None,
        }
    }

    /// `text` with every known placeholder replaced; unknown ones are left as written.
    pub fn substitute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("<<") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let replaced = after.find(">>").and_then(|end| {
                let name = placeholder_name(&after[..end])?;
                Some((self.value(name)?, end))
            });
            match replaced {
                Some((value, end)) => {
                    out.push_str(value);
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str("<<");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// `tapissecret_user_password` / `TAPIS_user_password` → `user_password`.
fn placeholder_name(inner: &str) -> Option<&str> {
    let lower = inner.to_ascii_lowercase();
    ["tapissecret_", "tapis_"].iter().find(|p| lower.starts_with(*p)).map(|p| &inner[p.len()..])
}

/// Does `text` reference one of the credentials?
pub fn has_placeholder(text: &str) -> bool {
    let probe = Credentials::new("", String::new(), String::new());
    probe.substitute(text) != text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("mypod", "u-pass".into(), "s-pass".into())
    }

    #[test]
    fn substitution_table() {
        for (input, want) in [
            ("<<tapissecret_user_password>>", "u-pass"),
            ("user=<<tapissecret_user_username>>;pw=<<tapissecret_user_password>>", "user=mypod;pw=u-pass"),
            ("<<tapissecret_service_username>>:<<tapissecret_service_password>>", "podsservice:s-pass"),
            ("<<TAPIS_user_password>>", "u-pass"),
            ("<<TAPISSECRET_USER_PASSWORD>>", "u-pass"),
            ("<<tapissecret_unknown>>", "<<tapissecret_unknown>>"),
            ("<<not closed", "<<not closed"),
            ("a << b >> c", "a << b >> c"),
            ("<<<<tapissecret_user_password>>>>", "<<u-pass>>"),
            ("plain", "plain"),
        ] {
            assert_eq!(creds().substitute(input), want, "{input}");
        }
    }

    #[test]
    fn placeholders_are_detected() {
        assert!(has_placeholder("x<<tapissecret_user_password>>"));
        assert!(!has_placeholder("<<nothing>>"));
    }

    #[test]
    fn debug_hides_passwords() {
        let shown = format!("{:?}", creds());
        assert!(!shown.contains("u-pass") && !shown.contains("s-pass"), "{shown}");
    }
}
