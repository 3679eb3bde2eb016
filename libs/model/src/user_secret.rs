//! Named secrets a user stores once and references by name, e.g. the access token a git
//! source's `credential` names (`session.git.credential`).
//!
//! A secret belongs to (tenant, user) and is kept in the store document kind
//! [`USER_SECRET_KIND`] under [`doc_name`]. Only the spawner reads the value, when it needs
//! it; the API shows [`SecretInfo`] (name, username, timestamps) and never the value, and
//! [`UserSecret`]'s `Debug` hides it so it cannot reach a log by accident.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sesstpl::CredentialRef;
use crate::{FieldError, Millis};

/// Store document kind of named secrets; document name `{tenant}/{user}/{name}`.
pub const USER_SECRET_KIND: &str = "user_secret";
/// Longest accepted value (an access token, a password).
pub const MAX_VALUE_LEN: usize = 16 * 1024;
/// Longest accepted username.
pub const MAX_USERNAME_LEN: usize = 256;

/// Name of the store document holding `user`'s secret `name` in `tenant`.
pub fn doc_name(tenant: &str, user: &str, name: &str) -> String {
    format!("{tenant}/{user}/{name}")
}

/// Prefix of every document name of `user`'s secrets in `tenant`.
pub fn doc_prefix(tenant: &str, user: &str) -> String {
    format!("{tenant}/{user}/")
}

/// A stored secret. `username` goes with `value` for HTTP Basic authentication; git hosts
/// accept any username with a token, so it is optional.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSecret {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub value: String,
    pub created: Millis,
    pub updated: Millis,
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSecret")
            .field("name", &self.name)
            .field("username", &self.username)
            .field("value", &"(hidden)")
            .field("created", &self.created)
            .field("updated", &self.updated)
            .finish()
    }
}

/// What the API shows of a secret: everything but the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    pub username: Option<String>,
    pub created: Millis,
    pub updated: Millis,
}

impl UserSecret {
    pub fn info(&self) -> SecretInfo {
        SecretInfo {
            name: self.name.clone(),
            username: self.username.clone(),
            created: self.created,
            updated: self.updated,
        }
    }
}

/// Checks a secret's name: the grammar of a credential reference ([`CredentialRef::parse`]).
pub fn check_name(name: &str) -> Result<(), String> {
    CredentialRef::parse(name).map(|_| ())
}

/// Every problem with a new value and username, by field. Messages never repeat the value.
pub fn check_value(value: &str, username: Option<&str>) -> Vec<FieldError> {
    let mut out = Vec::new();
    if value.is_empty() {
        out.push(FieldError::new("value", "must not be empty"));
    }
    if value.len() > MAX_VALUE_LEN {
        out.push(FieldError::new("value", format!("is longer than {MAX_VALUE_LEN} bytes")));
    }
    // It travels in an HTTP header: a line break would end the header.
    if value.chars().any(char::is_control) {
        out.push(FieldError::new("value", "must not contain control characters (line breaks included)"));
    }
    if let Some(u) = username {
        if u.is_empty() || u.len() > MAX_USERNAME_LEN {
            out.push(FieldError::new("username", format!("must be 1 to {MAX_USERNAME_LEN} bytes long")));
        }
        if u.contains(':') || u.chars().any(char::is_control) {
            out.push(FieldError::new("username", "must not contain ':' or control characters"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = UserSecret {
            name: "gh".into(),
            username: Some("alice".into()),
            value: "s3cr3t-value".into(),
            created: 1,
            updated: 2,
        };
        let text = format!("{s:?} {:?}", s.info());
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("alice") && text.contains("gh"), "{text}");
        let json = serde_json::to_string(&s.info()).expect("json");
        assert!(!json.contains("s3cr3t"), "{json}");
    }

    #[test]
    fn value_and_username_table() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let rows: Vec<(&str, &str, Option<&str>, Vec<&str>)> = vec![
            ("token", "abc123", None, vec![]),
            ("with user", "abc123", Some("alice"), vec![]),
            ("empty value", "", None, vec!["value"]),
            ("long value", &long, None, vec!["value"]),
            ("line break", "abc\r\nX-Evil: 1", None, vec!["value"]),
            ("colon user", "abc", Some("a:b"), vec!["username"]),
            ("empty user", "abc", Some(""), vec!["username"]),
        ];
        for (what, value, user, want) in rows {
            let problems = check_value(value, user);
            let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
            assert_eq!(fields, want, "{what}");
            for p in &problems {
                assert!(value.is_empty() || !p.message.contains(value), "{what}: message repeats the value");
            }
        }
    }

    #[test]
    fn names_follow_the_credential_grammar() {
        assert!(check_name("my-git-token").is_ok());
        assert!(check_name("a.b_c-1").is_ok());
        for bad in ["", "-x", "has space", "a/b", "ghp_0123456789abcdef0123", "user:pw@host"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever is sent, no message repeats the value (or the username's secret part).
        #[test]
        fn messages_never_repeat_the_value(value in "\\PC{4,40}|[a-z\r\n:]{4,20}", user in proptest::option::of("\\PC{0,8}")) {
            for p in check_value(&value, user.as_deref()) {
                proptest::prop_assert!(!p.message.contains(&value));
            }
        }
    }

    #[test]
    fn document_names_scope_by_tenant_and_user() {
        assert_eq!(doc_name("t", "alice", "gh"), "t/alice/gh");
        assert!(doc_name("t", "alice", "gh").starts_with(&doc_prefix("t", "alice")));
        assert!(!doc_name("t", "alice2", "gh").starts_with(&doc_prefix("t", "alice")));
    }
}
