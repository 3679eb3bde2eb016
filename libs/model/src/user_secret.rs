//! Named secrets a user stores once and references by name, e.g. the access token a git
//! source's `credential` names (`session.git.credential`).
//!
//! A secret belongs to (tenant, user) and is kept in the store document kind
//! [`USER_SECRET_KIND`] under [`doc_name`]. The value is stored encrypted ([`crypto`]): the
//! gateway seals it when it is written, and only the spawner opens it, when it needs it. The
//! API shows [`SecretInfo`] (name, username, timestamps) and never the value.

pub mod crypto;

use serde::{Deserialize, Serialize};

pub use crypto::{Owner, Sealed, SecretsKey};

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

/// A stored secret: metadata in clear, the value sealed for its owner. `username` goes with
/// the value for HTTP Basic authentication; git hosts accept any username with a token, so it
/// is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSecret {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The value sealed for (tenant, user, name). `None` in a document written before values
    /// were encrypted: those held a plain `value`, which is deliberately never read
    /// ([`SecretError::NotEncrypted`]), so the owner must store the secret again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Sealed>,
    pub created: Millis,
    pub updated: Millis,
}

/// What the API shows of a secret: everything but the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    pub username: Option<String>,
    pub created: Millis,
    pub updated: Millis,
}

/// Why a stored secret's value cannot be had. Messages name the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret '{0}' was stored unencrypted by an older version and is not used; store it again (PUT /api/secrets/{0})"
    )]
    NotEncrypted(String),
    #[error("cannot decrypt secret '{0}' (was the secrets key changed?)")]
    Undecryptable(String),
    #[error("secret '{name}' is stored in a form this version cannot read ({reason})")]
    Unreadable { name: String, reason: String },
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

    /// The value, opened for `owner` (whose document this is: the name comes from the
    /// document's key, not from the record, so a record copied elsewhere does not open).
    pub fn open(&self, key: &SecretsKey, owner: Owner<'_>) -> Result<String, SecretError> {
        let sealed = self.sealed.as_ref().ok_or_else(|| SecretError::NotEncrypted(owner.name.to_string()))?;
        crypto::open(key, owner, sealed).map_err(|e| match e {
            crypto::OpenError::Rejected => SecretError::Undecryptable(owner.name.to_string()),
            other => SecretError::Unreadable { name: owner.name.to_string(), reason: other.to_string() },
        })
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

    const OWNER: Owner<'static> = Owner { tenant: "t", user: "alice", name: "gh" };

    fn sealed_secret(key: &SecretsKey, value: &str) -> UserSecret {
        UserSecret {
            name: "gh".into(),
            username: Some("alice".into()),
            sealed: Some(crypto::seal(key, OWNER, value, [3; crypto::NONCE_LEN]).expect("seal")),
            created: 1,
            updated: 2,
        }
    }

    #[test]
    fn no_form_of_a_record_shows_the_value() {
        let s = sealed_secret(&SecretsKey::from_bytes([1; 32]), "s3cr3t-value");
        let text = format!("{s:?} {:?} {}", s.info(), serde_json::to_string(&s).expect("json"));
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("alice") && text.contains("gh"), "{text}");
        let json = serde_json::to_string(&s.info()).expect("json");
        assert!(!json.contains("s3cr3t"), "{json}");
    }

    #[test]
    fn open_table() {
        let key = SecretsKey::from_bytes([1; 32]);
        let good = sealed_secret(&key, "tok");
        // A document from before encryption: plain `value`, no `sealed`.
        let legacy: UserSecret =
            serde_json::from_str(r#"{"name":"gh","value":"old-plain","created":1,"updated":2}"#).expect("legacy");
        let future = UserSecret { sealed: good.sealed.clone().map(|s| Sealed { v: 9, ..s }), ..good.clone() };
        let other = SecretsKey::from_bytes([2; 32]);
        let moved = Owner { user: "bob", ..OWNER };
        type Row<'a> = (&'a str, &'a UserSecret, &'a SecretsKey, Owner<'a>, Result<&'a str, SecretError>);
        let rows: Vec<Row<'_>> = vec![
            ("sealed", &good, &key, OWNER, Ok("tok")),
            ("wrong key", &good, &other, OWNER, Err(SecretError::Undecryptable("gh".into()))),
            ("another owner's document", &good, &key, moved, Err(SecretError::Undecryptable("gh".into()))),
            ("stored before encryption", &legacy, &key, OWNER, Err(SecretError::NotEncrypted("gh".into()))),
            (
                "unknown version",
                &future,
                &key,
                OWNER,
                Err(SecretError::Unreadable { name: "gh".into(), reason: "unknown sealed format version 9".into() }),
            ),
        ];
        for (what, s, k, who, want) in rows {
            let got = s.open(k, who);
            assert_eq!(got, want.map(str::to_string), "{what}");
            if let Err(e) = got {
                let text = e.to_string();
                assert!(
                    text.contains("'gh'") && !text.contains("tok") && !text.contains("old-plain"),
                    "{what}: {text}"
                );
            }
        }
        assert_eq!(
            SecretError::Undecryptable("gh".into()).to_string(),
            "cannot decrypt secret 'gh' (was the secrets key changed?)"
        );
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
