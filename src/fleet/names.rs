//! The Redis keys of one fleet namespace `{ns}`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{ns}:revocations` | hash | `p:{tid}:{oid}` or `t:{tid}` → issued-before (unix s) |
//! | `{ns}:revocations:log` | stream | each revocation as it is made (`f`, `b`), trimmed |
//! | `{ns}:replicas` | hash | replica id → its last check-in (JSON) |
//! | `{ns}:policy` | string | the published policy, sealed |
//! | `{ns}:policy:hint` | string | its version hash (a hint: the sealed document decides) |
//! | `{ns}:graph:m:{groups}:{tid}:{oid}` | string | a membership answer, sealed, with a TTL |
//! | `{ns}:graph:lock:{groups}:{tid}:{oid}` | string | who is asking Graph now, with a TTL |
//! | `{ns}:graph:hold:{tid}` | string | a tenant held back by a 429 until (unix ms), with a TTL |
//!
//! `{groups}` is a digest of the sorted group ids asked about: a policy that binds other
//! groups reads and writes other keys.

use aws_lc_rs::digest;

use crate::ids::{GroupId, PrincipalId, TenantId};

/// Key names of one namespace.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    ns: String,
}

impl Names {
    /// `None` unless `ns` is 1 to 64 letters, digits, `-`, `_` or `.`.
    pub(crate) fn new(ns: &str) -> Option<Self> {
        let ok = !ns.is_empty()
            && ns.len() <= 64
            && ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        ok.then(|| Self { ns: ns.to_owned() })
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.ns
    }

    pub(crate) fn revocations(&self) -> String {
        format!("{}:revocations", self.ns)
    }

    pub(crate) fn revocation_log(&self) -> String {
        format!("{}:revocations:log", self.ns)
    }

    pub(crate) fn replicas(&self) -> String {
        format!("{}:replicas", self.ns)
    }

    pub(crate) fn policy(&self) -> String {
        format!("{}:policy", self.ns)
    }

    pub(crate) fn policy_hint(&self) -> String {
        format!("{}:policy:hint", self.ns)
    }

    pub(crate) fn membership(&self, groups: &str, id: &PrincipalId) -> String {
        format!("{}:graph:m:{groups}:{}:{}", self.ns, id.tenant, id.object)
    }

    pub(crate) fn membership_lock(&self, groups: &str, id: &PrincipalId) -> String {
        format!(
            "{}:graph:lock:{groups}:{}:{}",
            self.ns, id.tenant, id.object
        )
    }

    pub(crate) fn graph_hold(&self, tenant: &TenantId) -> String {
        format!("{}:graph:hold:{tenant}", self.ns)
    }
}

/// A digest (128 bits, hex) of a set of group ids, whatever their order.
pub(crate) fn groups_digest(groups: &[GroupId]) -> String {
    let mut ids: Vec<&str> = groups.iter().map(GroupId::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let d = digest::digest(&digest::SHA256, ids.join(",").as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_the_set_not_the_order() {
        let g =
            |n: u8| GroupId::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}")).unwrap();
        assert_eq!(
            groups_digest(&[g(1), g(2)]),
            groups_digest(&[g(2), g(1), g(2)])
        );
        assert_ne!(groups_digest(&[g(1), g(2)]), groups_digest(&[g(1)]));
        assert_eq!(groups_digest(&[g(1)]).len(), 32);
        assert!(Names::new("ai-platform.prod_1").is_some());
        for bad in ["", "a:b", "a b", &"x".repeat(65)] {
            assert!(Names::new(bad).is_none(), "{bad:?}");
        }
    }
}
