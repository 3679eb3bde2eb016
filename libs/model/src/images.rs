//! The images allowlist (Tapis `/pods/images`): which container images a tenant's pods may
//! run. Entries are patterns on the image name without its tag (`corral-test/*` allows every
//! image under `corral-test/`); an entry names the tenants it applies to.

use serde::{Deserialize, Serialize};

use crate::{FieldError, Millis};

/// Scope of entries that apply across tenants (written by global admins only).
pub const GLOBAL_SCOPE: &str = "*";

/// One allowlist entry as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Image name or pattern, without tag.
    pub image: String,
    /// `T` allows tenant T, `-T` denies it, `*`/`**` allow every tenant.
    pub tenants: Vec<String>,
    pub description: String,
    pub added_by: String,
    pub creation_ts: Millis,
}

/// The body of `POST /pods/images` (one element of the bulk body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewImage {
    pub image: String,
    pub tenants: Vec<String>,
    pub description: String,
}

impl NewImage {
    /// Every problem, with `prefix` before field names (for bulk bodies).
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut out = Vec::new();
        let f = |name: &str| format!("{prefix}{name}");
        let name = self.image.trim();
        if name.is_empty() || name.len() > 255 {
            out.push(FieldError::new(f("image"), "must be 1 to 255 characters"));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()) {
            out.push(FieldError::new(f("image"), "must be lowercase without whitespace"));
        }
        if name.contains('@') || (name.contains(':') && !name.contains('*') && name_of(name) != name) {
            out.push(FieldError::new(f("image"), "give the name without tag or digest; tags are not part of the rule"));
        }
        for t in &self.tenants {
            let bare = t.strip_prefix('-').unwrap_or(t);
            let ok = matches!(bare, "*" | "**")
                || (!bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            if !ok || (t.starts_with('-') && matches!(bare, "*" | "**")) {
                out.push(FieldError::new(f("tenants"), format!("'{t}' is not a tenant, -tenant, * or **")));
            }
        }
        if !self.description.is_ascii() || self.description.len() > 255 {
            out.push(FieldError::new(f("description"), "must be ASCII, at most 255 characters"));
        }
        out
    }
}

/// The image name without tag or digest: `a/b:1` → `a/b`, `host:5000/a/b:1` → `host:5000/a/b`.
pub fn name_of(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(n, _)| n);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// Does `pattern` (with `*` matching any run of characters) match `name`?
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else { return pattern == name };
    let Some(mut remaining) = name.strip_prefix(head) else { return false };
    let mut parts = rest.split('*').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// What an entry says about `tenant`: `Some(true)` allow, `Some(false)` deny, `None` silent.
fn verdict(entry: &Image, tenant: &str) -> Option<bool> {
    if entry.tenants.iter().any(|t| t.strip_prefix('-') == Some(tenant)) {
        return Some(false);
    }
    entry.tenants.iter().any(|t| t == tenant || t == "*" || t == "**").then_some(true)
}

/// Is `image` allowed for `tenant`? `Ok` names the rule that allows it; `Err` explains the
/// refusal, naming the image and the rule (or the lack of one). A denying entry beats any
/// allowing one, so a tenant can be excluded from a site-wide pattern.
pub fn check(image: &str, tenant: &str, entries: &[Image], config_allow: &[String]) -> Result<String, String> {
    let name = name_of(image);
    let matching: Vec<&Image> = entries.iter().filter(|e| pattern_matches(&e.image, name)).collect();
    if let Some(deny) = matching.iter().find(|e| verdict(e, tenant) == Some(false)) {
        return Err(format!(
            "image '{image}' is not allowed in tenant '{tenant}': the allowlist entry '{}' excludes this tenant",
            deny.image
        ));
    }
    if let Some(allow) = matching.iter().find(|e| verdict(e, tenant) == Some(true)) {
        return Ok(format!("allowlist entry '{}'", allow.image));
    }
    if let Some(p) = config_allow.iter().find(|p| pattern_matches(p, name)) {
        return Ok(format!("configured pattern '{p}'"));
    }
    Err(format!(
        "image '{image}' is not allowed in tenant '{tenant}': no entry of the images allowlist matches '{name}' \
         (a tenant admin can add it with POST /v3/pods/images)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(image: &str, tenants: &[&str]) -> Image {
        Image {
            image: image.into(),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            description: String::new(),
            added_by: "root".into(),
            creation_ts: 0,
        }
    }

    #[test]
    fn names_lose_tags_and_digests_but_keep_registry_ports() {
        for (input, name) in [
            ("busybox", "busybox"),
            ("busybox:1.36", "busybox"),
            ("corral-test/busybox:latest", "corral-test/busybox"),
            ("host:5000/team/app:2", "host:5000/team/app"),
            ("host:5000/team/app", "host:5000/team/app"),
            ("app@sha256:abcd", "app"),
        ] {
            assert_eq!(name_of(input), name, "{input}");
        }
    }

    #[test]
    fn patterns_table() {
        for (pattern, name, want) in [
            ("corral-test/*", "corral-test/busybox", true),
            ("corral-test/*", "corral-test", false),
            ("corral-test/*", "other/busybox", false),
            ("busybox", "busybox", true),
            ("busybox", "busybox2", false),
            ("*", "anything/at/all", true),
            ("team/*-runtime", "team/py-runtime", true),
            ("team/*-runtime", "team/py-runtime-x", false),
            ("*/jupyter*", "lab/jupyter-minimal", true),
        ] {
            assert_eq!(pattern_matches(pattern, name), want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn allowlist_decisions_table() {
        let entries = [
            entry("corral-test/*", &["dev"]),
            entry("shared/*", &["**", "-banned"]),
            entry("everyone", &["*"]),
            entry("secret/app", &["acme"]),
        ];
        let cfg = ["dev-only/*".to_string()];
        for (image, tenant, allowed) in [
            ("corral-test/busybox:latest", "dev", true),
            ("corral-test/busybox", "acme", false),
            ("shared/tool:1", "acme", true),
            ("shared/tool:1", "banned", false),
            ("everyone:3", "zzz", true),
            ("secret/app", "dev", false),
            ("secret/app:9", "acme", true),
            ("dev-only/thing", "anyone", true),
            ("unknown/image", "dev", false),
        ] {
            let got = check(image, tenant, &entries, &cfg);
            assert_eq!(got.is_ok(), allowed, "{image} in {tenant}: {got:?}");
            if let Err(msg) = got {
                assert!(msg.contains(image) && msg.contains(tenant), "{msg}");
            }
        }
    }

    #[test]
    fn new_image_validation_lists_problems() {
        let bad =
            NewImage {
                image: "Bad Name:tag".into(), tenants: vec!["-*".into(), "ok".into()], description: "é".into()
            };
        let fields: Vec<String> = bad.validate("0.").into_iter().map(|e| e.field).collect();
        assert!(fields.contains(&"0.image".to_string()));
        assert!(fields.contains(&"0.tenants".to_string()));
        assert!(fields.contains(&"0.description".to_string()));
        let good = NewImage { image: "corral-test/*".into(), tenants: vec!["dev".into()], description: "test".into() };
        assert!(good.validate("").is_empty());
    }
}
