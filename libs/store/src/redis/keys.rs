//! The Redis key schema (documented in the parent module) and the escaping that keeps
//! tenant, pod, lease and group names from colliding with the `:` separators.

use corral_model::PodKey;

/// Builds every key of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    ns: String,
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Self { ns: namespace.to_owned() }
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.ns
    }

    /// Hash with the pod's versioned records: `dv`, `d`, `ov`, `o`, `shard`.
    pub(crate) fn pod(&self, key: &PodKey) -> String {
        format!("{}:pod:{}:{}", self.ns, escape(&key.tenant), escape(&key.pod_id))
    }

    /// List of JSON action-log entries, oldest first.
    pub(crate) fn actions(&self, key: &PodKey) -> String {
        format!("{}:actions", self.pod(key))
    }

    /// String with the kept output bytes.
    pub(crate) fn output(&self, key: &PodKey) -> String {
        format!("{}:output", self.pod(key))
    }

    /// String with the instance number the kept output belongs to.
    pub(crate) fn output_instance(&self, key: &PodKey) -> String {
        format!("{}:output:instance", self.pod(key))
    }

    /// Sorted set of a tenant's pod ids, all scored 0 so that members sort by pod id.
    pub(crate) fn tenant_index(&self, tenant: &str) -> String {
        format!("{}:tenant:{}:pods", self.ns, escape(tenant))
    }

    /// Set of [`Keys::shard_member`]s of the pods in a shard.
    pub(crate) fn shard_index(&self, shard: u32) -> String {
        format!("{}{shard}{}", self.shard_prefix(), SHARD_SUFFIX)
    }

    /// What goes before the shard number in a shard index key; the purge script rebuilds the
    /// key of the shard recorded at creation from it.
    pub(crate) fn shard_prefix(&self) -> String {
        format!("{}:shard:", self.ns)
    }

    pub(crate) fn lease(&self, name: &str) -> String {
        format!("{}:lease:{}", self.ns, escape(name))
    }

    /// Sorted set of members scored by their last heartbeat (milliseconds).
    pub(crate) fn group(&self, name: &str) -> String {
        format!("{}:group:{}", self.ns, escape(name))
    }

    /// Hash of a document kind: name → JSON.
    pub(crate) fn docs(&self, kind: &str) -> String {
        format!("{}:doc:{}", self.ns, escape(kind))
    }

    /// Hash of a document kind: name → version.
    pub(crate) fn doc_versions(&self, kind: &str) -> String {
        format!("{}:docv:{}", self.ns, escape(kind))
    }

    /// The keys of one pool, in the order the pool scripts take them: `state` (hash member →
    /// state), `warm` and `avail` (lists, oldest first), then hashes member → template
    /// version, claimant, since, last activity and whether its pod was seen.
    pub(crate) fn pool(&self, pool: &str) -> [String; 8] {
        let base = format!("{}:pool:{}", self.ns, escape(pool));
        ["state", "warm", "avail", "tv", "claimant", "since", "act", "seen"].map(|part| format!("{base}:{part}"))
    }

    /// What goes before the escaped pod id in the pod keys of `tenant`; the claim script
    /// builds the keys of the members it inspects from it.
    pub(crate) fn pod_prefix(&self, tenant: &str) -> String {
        format!("{}:pod:{}:", self.ns, escape(tenant))
    }

    /// A glob matching every key of the namespace and nothing else.
    pub(crate) fn namespace_pattern(&self) -> String {
        let mut out = String::with_capacity(self.ns.len() + 2);
        for c in self.ns.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str(":*");
        out
    }
}

/// Suffix of shard index keys.
pub(crate) const SHARD_SUFFIX: &str = ":pods";

/// A pod key as a shard-index member: both parts escaped, joined by `:`.
pub(crate) fn shard_member(key: &PodKey) -> String {
    format!("{}:{}", escape(&key.tenant), escape(&key.pod_id))
}

/// Inverse of [`shard_member`]; `None` if the member was not written by it.
pub(crate) fn parse_shard_member(member: &str) -> Option<PodKey> {
    let (tenant, pod_id) = member.split_once(':')?;
    Some(PodKey::new(unescape(tenant)?, unescape(pod_id)?))
}

/// Escapes `%` and `:` so a name never contains the key separator.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find(['%', ':']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("%25") {
            out.push('%');
        } else if tail.starts_with("%3A") {
            out.push(':');
        } else {
            return None;
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_members_round_trip_awkward_names() {
        for (tenant, pod) in [("acme", "web-1"), ("a:b", "c"), ("a", "b:c"), ("100%", "%3A"), ("", "x")] {
            let key = PodKey::new(tenant, pod);
            assert_eq!(parse_shard_member(&shard_member(&key)), Some(key));
        }
    }

    #[test]
    fn colons_in_names_cannot_collide() {
        let keys = Keys::new("ns");
        let a = keys.pod(&PodKey::new("a:b", "c"));
        let b = keys.pod(&PodKey::new("a", "b:c"));
        assert_ne!(a, b);
        assert_ne!(keys.tenant_index("a:b"), keys.tenant_index("a"));
        assert_eq!(a, "ns:pod:a%3Ab:c");
        assert_eq!(format!("{}c", keys.pod_prefix("a:b")), a, "the claim script's pod keys are the same");
    }

    #[test]
    fn foreign_members_are_rejected() {
        assert_eq!(parse_shard_member("no-separator"), None);
        assert_eq!(parse_shard_member("bad%zz:pod"), None);
        assert_eq!(parse_shard_member("a:b:c"), None);
    }

    #[test]
    fn namespace_pattern_escapes_glob_characters() {
        assert_eq!(Keys::new("t*[1]").namespace_pattern(), "t\\*\\[1\\]:*");
        assert_eq!(Keys::new("plain").shard_index(7), "plain:shard:7:pods");
    }
}
