//! The proxy's access rules, as pure decisions: the pod's `ip_allow_list`, and who may use
//! the pod (its permissions, or with `tapis_auth` its `tapis_auth_allowed_users`).

use std::net::IpAddr;

use corral_model::Networking;
use corral_model::access::Level;

/// What the proxy does with one caller's request for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Allow,
    /// Answered like a missing pod: the caller may not know it exists.
    Hide,
    /// The caller knows the pod but may not use it this way.
    Deny(String),
}

/// Is `ip` allowed by `list` (IPv4 addresses and CIDRs; empty allows everyone)? IPv4-mapped
/// IPv6 addresses are compared as IPv4; other IPv6 addresses only pass an empty list.
pub(super) fn ip_allowed(list: &[String], ip: IpAddr) -> bool {
    if list.is_empty() {
        return true;
    }
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return false,
        },
    };
    list.iter().any(|entry| {
        let (addr, prefix) = entry.split_once('/').map_or((entry.as_str(), Some("32")), |(a, p)| (a, Some(p)));
        let (Ok(net), Some(Ok(bits))) = (addr.parse::<std::net::Ipv4Addr>(), prefix.map(str::parse::<u32>)) else {
            return false;
        };
        if bits > 32 {
            return false;
        }
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        (u32::from(v4) & mask) == (u32::from(net) & mask)
    })
}

/// May `user`, holding `level` on the pod (`None`: no permission), use it through the proxy?
///
/// Without `tapis_auth`, USER or more is needed (the owner is ADMIN). With `tapis_auth`,
/// `tapis_auth_allowed_users` decides: user names, `*` (any user of the tenant), or the
/// groups `AUTHORIZED_READS` / `AUTHORIZED_USERS` / `AUTHORIZED_ADMINS` (that level or more).
pub(super) fn user_allowed(net: &Networking, user: &str, level: Option<Level>) -> Decision {
    if net.tapis_auth {
        let listed = net.tapis_auth_allowed_users.iter().any(|u| match u.as_str() {
            "*" => true,
            "AUTHORIZED_READS" => level >= Some(Level::Read),
            "AUTHORIZED_USERS" => level >= Some(Level::User),
            "AUTHORIZED_ADMINS" => level >= Some(Level::Admin),
            name => name == user,
        });
        return match (listed, level) {
            (true, _) => Decision::Allow,
            (false, None) => Decision::Hide,
            (false, Some(_)) => Decision::Deny(format!("user '{user}' is not among this pod's allowed users")),
        };
    }
    match level {
        Some(l) if l >= Level::User => Decision::Allow,
        Some(l) => Decision::Deny(format!("you hold {l} on this pod; using it needs USER")),
        None => Decision::Hide,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_allow_list_table() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for (list, addr, want) in [
            (vec![], "203.0.113.9", true),
            (vec!["127.0.0.0/8"], "127.0.0.1", true),
            (vec!["10.0.0.0/8"], "127.0.0.1", false),
            (vec!["10.0.0.0/8", "127.0.0.1"], "127.0.0.1", true),
            (vec!["192.168.1.7"], "192.168.1.8", false),
            (vec!["0.0.0.0/0"], "8.8.8.8", true),
            (vec!["127.0.0.0/8"], "::ffff:127.0.0.1", true),
            (vec!["127.0.0.0/8"], "::1", false),
            (vec!["garbage"], "127.0.0.1", false),
            (vec!["127.0.0.1/40"], "127.0.0.1", false),
        ] {
            let list: Vec<String> = list.iter().map(|s| (*s).to_string()).collect();
            assert_eq!(ip_allowed(&list, ip(addr)), want, "{list:?} vs {addr}");
        }
    }

    #[test]
    fn user_rules_table() {
        let plain = Networking::default();
        let auth = |users: &[&str]| Networking {
            tapis_auth: true,
            tapis_auth_allowed_users: users.iter().map(|s| (*s).to_string()).collect(),
            ..Networking::default()
        };
        use Decision::{Allow, Hide};
        let deny = |d: &Decision| matches!(d, Decision::Deny(_));
        assert_eq!(user_allowed(&plain, "alice", Some(Level::Admin)), Allow);
        assert_eq!(user_allowed(&plain, "bob", Some(Level::User)), Allow);
        assert!(deny(&user_allowed(&plain, "carol", Some(Level::Read))));
        assert_eq!(user_allowed(&plain, "eve", None), Hide);
        assert_eq!(user_allowed(&auth(&["*"]), "eve", None), Allow);
        assert_eq!(user_allowed(&auth(&["eve"]), "eve", None), Allow);
        assert_eq!(user_allowed(&auth(&["eve"]), "mallory", None), Hide);
        assert!(deny(&user_allowed(&auth(&["eve"]), "alice", Some(Level::Admin))));
        assert_eq!(user_allowed(&auth(&["AUTHORIZED_READS"]), "carol", Some(Level::Read)), Allow);
        assert!(deny(&user_allowed(&auth(&["AUTHORIZED_USERS"]), "carol", Some(Level::Read))));
        assert_eq!(user_allowed(&auth(&["AUTHORIZED_ADMINS"]), "alice", Some(Level::Admin)), Allow);
        assert_eq!(user_allowed(&auth(&["AUTHORIZED_ADMINS"]), "bob", None), Hide);
    }
}
