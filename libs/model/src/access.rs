//! Object permissions (Tapis `SetPermission`): levels READ ⊂ USER ⊂ ADMIN per user, the
//! owner an ADMIN, and tenant admins who may act on everything in their tenant only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A permission level; the order is the inclusion order (ADMIN may do all USER may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Read,
    User,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::User => "USER",
            Self::Admin => "ADMIN",
        }
    }

    /// Parses `READ`/`USER`/`ADMIN`, any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "READ" => Some(Self::Read),
            "USER" => Some(Self::User),
            "ADMIN" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a permission change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("the change would leave no user with ADMIN; grant ADMIN to someone else first")]
    NoAdminLeft,
    #[error("user '{0}' has no permission to remove")]
    NotGranted(String),
    #[error("user name must be 1 to 128 characters without spaces, ':' or ','")]
    BadUser,
}

/// Who holds which level on one object. Stored with the object; an empty map (records
/// written before permissions existed) means "the owner is ADMIN".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Permissions(BTreeMap<String, Level>);

impl Permissions {
    /// A new object's permissions: its creator is ADMIN.
    pub fn owned_by(owner: &str) -> Self {
        Self(BTreeMap::from([(owner.to_string(), Level::Admin)]))
    }

    /// The level `user` holds, reading an empty map as "`owner` is ADMIN".
    pub fn level(&self, owner: &str, user: &str) -> Option<Level> {
        if self.0.is_empty() {
            return (user == owner).then_some(Level::Admin);
        }
        self.0.get(user).copied()
    }

    /// The explicit map, with the implicit owner entry made explicit.
    pub fn effective(&self, owner: &str) -> BTreeMap<String, Level> {
        if self.0.is_empty() { BTreeMap::from([(owner.to_string(), Level::Admin)]) } else { self.0.clone() }
    }

    /// Tapis renders permissions as `["user:LEVEL", …]`.
    pub fn render(&self, owner: &str) -> Vec<String> {
        self.effective(owner).iter().map(|(u, l)| format!("{u}:{l}")).collect()
    }

    /// Grants `level` to `user` (replacing what they held); refuses to remove the last ADMIN.
    pub fn set(&self, owner: &str, user: &str, level: Level) -> Result<Self, PermissionError> {
        check_user(user)?;
        let mut map = self.effective(owner);
        map.insert(user.to_string(), level);
        Self::checked(map)
    }

    /// Removes `user`'s permission; refuses to remove the last ADMIN.
    pub fn remove(&self, owner: &str, user: &str) -> Result<Self, PermissionError> {
        let mut map = self.effective(owner);
        if map.remove(user).is_none() {
            return Err(PermissionError::NotGranted(user.to_string()));
        }
        Self::checked(map)
    }

    fn checked(map: BTreeMap<String, Level>) -> Result<Self, PermissionError> {
        if map.values().any(|l| *l == Level::Admin) { Ok(Self(map)) } else { Err(PermissionError::NoAdminLeft) }
    }
}

fn check_user(user: &str) -> Result<(), PermissionError> {
    let ok = (1..=128).contains(&user.len()) && !user.chars().any(|c| c.is_whitespace() || c == ':' || c == ',');
    if ok { Ok(()) } else { Err(PermissionError::BadUser) }
}

/// Tenant administrators: `tenant:user` (that user in that tenant) or `user` (that name in
/// every tenant), comma-separated, as in `CORRAL_ADMIN_USERS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminUsers(Vec<(Option<String>, String)>);

impl AdminUsers {
    pub fn parse(raw: &str) -> Self {
        Self(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|entry| match entry.split_once(':') {
                    Some((tenant, user)) => (Some(tenant.trim().to_string()), user.trim().to_string()),
                    None => (None, entry.to_string()),
                })
                .collect(),
        )
    }

    /// Is `user` listed without a tenant, i.e. an administrator of every tenant (the only
    /// ones who may write allowlist entries that span tenants)?
    pub fn is_global(&self, user: &str) -> bool {
        self.0.iter().any(|(t, u)| u == user && t.is_none())
    }

    /// Is `user` an administrator of `tenant`?
    pub fn contains(&self, tenant: &str, user: &str) -> bool {
        self.0.iter().any(|(t, u)| u == user && t.as_deref().is_none_or(|t| t == tenant))
    }
}

/// What an authenticated caller may do with one object of their tenant.
///
/// `None` means the object is invisible to them (answered like a missing object, so
/// existence never leaks); tenant admins see everything in their tenant at ADMIN.
pub fn effective_level(perms: &Permissions, owner: &str, user: &str, tenant_admin: bool) -> Option<Level> {
    if tenant_admin { Some(Level::Admin) } else { perms.level(owner, user) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse_any_case() {
        assert!(Level::Read < Level::User && Level::User < Level::Admin);
        assert_eq!(Level::parse("user"), Some(Level::User));
        assert_eq!(Level::parse("Admin"), Some(Level::Admin));
        assert_eq!(Level::parse("owner"), None);
    }

    #[test]
    fn empty_permissions_mean_owner_is_admin() {
        let p = Permissions::default();
        assert_eq!(p.level("alice", "alice"), Some(Level::Admin));
        assert_eq!(p.level("alice", "bob"), None);
        assert_eq!(p.render("alice"), vec!["alice:ADMIN".to_string()]);
    }

    #[test]
    fn set_and_remove_keep_an_admin() {
        let p = Permissions::owned_by("alice");
        let p = p.set("alice", "bob", Level::Read).expect("grant read");
        assert_eq!(p.level("alice", "bob"), Some(Level::Read));
        assert_eq!(p.set("alice", "alice", Level::User), Err(PermissionError::NoAdminLeft));
        assert_eq!(p.remove("alice", "alice"), Err(PermissionError::NoAdminLeft));
        let p = p.set("alice", "bob", Level::Admin).expect("second admin");
        let p = p.remove("alice", "alice").expect("alice may go now");
        assert_eq!(p.level("alice", "alice"), None, "the owner keeps no implicit level once the map is explicit");
        assert_eq!(p.remove("alice", "carol"), Err(PermissionError::NotGranted("carol".into())));
        assert_eq!(p.set("alice", "a b", Level::Read), Err(PermissionError::BadUser));
    }

    #[test]
    fn admin_users_are_per_tenant_or_global() {
        let a = AdminUsers::parse(" acme:root , ops,, ");
        assert!(a.contains("acme", "root"));
        assert!(!a.contains("other", "root"));
        assert!(a.contains("any", "ops"));
        assert!(!a.contains("acme", "alice"));
        assert!(a.is_global("ops") && !a.is_global("root"));
        assert_eq!(AdminUsers::parse(""), AdminUsers::default());
    }

    #[test]
    fn tenant_admins_get_admin_everywhere_in_their_tenant() {
        let p = Permissions::owned_by("alice");
        assert_eq!(effective_level(&p, "alice", "root", true), Some(Level::Admin));
        assert_eq!(effective_level(&p, "alice", "root", false), None);
    }
}
