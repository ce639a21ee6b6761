//! Revocation before expiry: "tokens of this principal (or tenant) issued before T are
//! refused from now on", for leavers, compromised accounts and incident response.
//!
//! Entra access tokens live 60–90 minutes (up to 28 hours with Continuous Access
//! Evaluation), so a revocation only matters while tokens issued before it can still be
//! alive: entries older than [`MAX_TOKEN_LIFETIME`] are pruned. The set is bounded
//! ([`DEFAULT_MAX_REVOCATIONS`]); when it is full of live entries a new revocation is
//! refused with an error rather than silently dropped. Reads are lock-free (the set is
//! swapped as a whole), so checking costs two hash lookups per request.
//!
//! Persisted as JSON when a file is configured (written atomically on every change), so a
//! restarted service keeps its revocations:
//!
//! ```json
//! {"version":1,
//!  "principals":[{"tenant":"…","object":"…","issued_before":1795400000}],
//!  "tenants":[{"tenant":"…","issued_before":1795400000}]}
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::ids::{ObjectId, PrincipalId, TenantId};

// The token stage enforces the limit; revocation prunes by it.
pub use crate::token::validate::MAX_TOKEN_LIFETIME_SECS;

/// See [`MAX_TOKEN_LIFETIME_SECS`].
pub const MAX_TOKEN_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(MAX_TOKEN_LIFETIME_SECS);
/// Default bound on live revocation entries.
pub const DEFAULT_MAX_REVOCATIONS: usize = 100_000;

/// Why a revocation could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The set holds the maximum number of live entries.
    #[error("the revocation list is full ({max} live entries); raise the limit")]
    Full {
        /// The configured bound.
        max: usize,
    },
    /// The revocation file could not be read or written.
    #[error("revocation file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The revocation file is not in the expected format.
    #[error("revocation file {path} is malformed: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

#[derive(Clone, Debug, Default)]
struct Set {
    principals: HashMap<PrincipalId, u64>,
    tenants: HashMap<TenantId, u64>,
}

impl Set {
    fn get(&self, subject: &Subject) -> Option<u64> {
        match subject {
            Subject::Principal(id) => self.principals.get(id).copied(),
            Subject::Tenant(t) => self.tenants.get(t).copied(),
        }
    }

    fn raise(&mut self, subject: &Subject, before: u64) {
        let slot = match subject {
            Subject::Principal(id) => self.principals.entry(id.clone()).or_insert(before),
            Subject::Tenant(t) => self.tenants.entry(t.clone()).or_insert(before),
        };
        *slot = (*slot).max(before);
    }
}

/// Whose tokens a revocation refuses: one caller's, or a whole tenant's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Subject {
    /// One caller, by `(tid, oid)`.
    Principal(PrincipalId),
    /// Every caller of a tenant.
    Tenant(TenantId),
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Subject {
    /// The subject as a Redis hash field: `p:{tid}:{oid}` or `t:{tid}`.
    pub(crate) fn field(&self) -> String {
        match self {
            Self::Principal(id) => format!("p:{}:{}", id.tenant, id.object),
            Self::Tenant(t) => format!("t:{t}"),
        }
    }

    /// The subject a field names, if it names one (GUIDs checked).
    pub(crate) fn parse_field(field: &str) -> Option<Self> {
        match field.split_once(':')? {
            ("p", rest) => {
                let (tenant, object) = rest.split_once(':')?;
                Some(Self::Principal(PrincipalId::new(
                    TenantId::parse(tenant).ok()?,
                    ObjectId::parse(object).ok()?,
                )))
            }
            ("t", tenant) => Some(Self::Tenant(TenantId::parse(tenant).ok()?)),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct FileForm {
    version: u32,
    principals: Vec<PrincipalEntry>,
    tenants: Vec<TenantEntry>,
}

#[derive(Serialize, Deserialize)]
struct PrincipalEntry {
    tenant: TenantId,
    object: ObjectId,
    issued_before: u64,
}

#[derive(Serialize, Deserialize)]
struct TenantEntry {
    tenant: TenantId,
    issued_before: u64,
}

/// The revocation list: lock-free reads, serialized writes, optional file persistence.
pub(crate) struct Revocations {
    current: ArcSwap<Set>,
    write: Mutex<()>,
    file: Option<PathBuf>,
    max: usize,
}

impl Revocations {
    /// An empty list, or the one saved in `file` (a missing file is an empty list).
    pub(crate) fn open(file: Option<PathBuf>, max: usize) -> Result<Self, RevocationError> {
        let set = match &file {
            Some(path) if path.exists() => load(path)?,
            _ => Set::default(),
        };
        Ok(Self {
            current: ArcSwap::from_pointee(set),
            write: Mutex::new(()),
            file,
            max,
        })
    }

    /// The instant before which tokens of this caller are refused, if any.
    pub(crate) fn revoked_before(&self, id: &PrincipalId) -> Option<u64> {
        let set = self.current.load();
        if set.principals.is_empty() && set.tenants.is_empty() {
            return None; // the usual case: no hashing on the hot path
        }
        let p = set.principals.get(id).copied();
        let t = set.tenants.get(&id.tenant).copied();
        p.max(t)
    }

    pub(crate) fn revoke_principal(
        &self,
        id: PrincipalId,
        before: u64,
        now: u64,
    ) -> Result<(), RevocationError> {
        self.update(now, |set| set.raise(&Subject::Principal(id), before))
    }

    pub(crate) fn revoke_tenant(
        &self,
        tenant: TenantId,
        before: u64,
        now: u64,
    ) -> Result<(), RevocationError> {
        self.update(now, |set| set.raise(&Subject::Tenant(tenant), before))
    }

    /// Merges revocations learnt from the fleet: each raises its subject's instant (the
    /// later one wins), in one swap and one file write, and none is refused for the
    /// bound: a revocation the fleet holds is enforced here even past `max` (logged),
    /// since refusing it would let a revoked caller in. Entries already past the token
    /// lifetime are skipped. Returns how many subjects changed.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn merge(
        &self,
        entries: &[(Subject, u64)],
        now: u64,
    ) -> Result<usize, RevocationError> {
        let horizon = now.saturating_sub(MAX_TOKEN_LIFETIME_SECS);
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current.load();
        let changes: Vec<&(Subject, u64)> = entries
            .iter()
            .filter(|(subject, before)| *before > horizon && current.get(subject) < Some(*before))
            .collect();
        if changes.is_empty() {
            return Ok(0);
        }
        let mut set = Set::clone(&current);
        for (subject, before) in &changes {
            set.raise(subject, *before);
        }
        set.principals.retain(|_, before| *before > horizon);
        set.tenants.retain(|_, before| *before > horizon);
        if set.principals.len() + set.tenants.len() > self.max {
            tracing::warn!(
                max = self.max,
                held = set.principals.len() + set.tenants.len(),
                "the fleet holds more live revocations than max_revocations; all are enforced"
            );
        }
        if let Some(path) = &self.file {
            save(path, &set)?;
        }
        self.current.store(Arc::new(set));
        Ok(changes.len())
    }

    /// Every live entry (for comparing with the fleet's).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn entries(&self) -> Vec<(Subject, u64)> {
        let set = self.current.load();
        let principals = set
            .principals
            .iter()
            .map(|(id, before)| (Subject::Principal(id.clone()), *before));
        let tenants = set
            .tenants
            .iter()
            .map(|(t, before)| (Subject::Tenant(t.clone()), *before));
        principals.chain(tenants).collect()
    }

    pub(crate) fn len(&self) -> usize {
        let set = self.current.load();
        set.principals.len() + set.tenants.len()
    }

    fn update(&self, now: u64, change: impl FnOnce(&mut Set)) -> Result<(), RevocationError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut set = Set::clone(&self.current.load());
        change(&mut set);
        // Tokens issued before `now - MAX_TOKEN_LIFETIME` have expired anyway.
        let horizon = now.saturating_sub(MAX_TOKEN_LIFETIME_SECS);
        set.principals.retain(|_, before| *before > horizon);
        set.tenants.retain(|_, before| *before > horizon);
        if set.principals.len() + set.tenants.len() > self.max {
            return Err(RevocationError::Full { max: self.max });
        }
        if let Some(path) = &self.file {
            save(path, &set)?;
        }
        self.current.store(Arc::new(set));
        Ok(())
    }
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> RevocationError {
    RevocationError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn load(path: &Path) -> Result<Set, RevocationError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let form: FileForm =
        serde_json::from_slice(&bytes).map_err(|e| RevocationError::Malformed {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    if form.version != 1 {
        return Err(RevocationError::Malformed {
            path: path.display().to_string(),
            message: format!("unsupported version {}", form.version),
        });
    }
    Ok(Set {
        principals: form
            .principals
            .into_iter()
            .map(|e| (PrincipalId::new(e.tenant, e.object), e.issued_before))
            .collect(),
        tenants: form
            .tenants
            .into_iter()
            .map(|e| (e.tenant, e.issued_before))
            .collect(),
    })
}

/// Writes to a sibling temporary file and renames it over the target: a crash never
/// leaves a half-written list.
fn save(path: &Path, set: &Set) -> Result<(), RevocationError> {
    let mut principals: Vec<PrincipalEntry> = set
        .principals
        .iter()
        .map(|(id, before)| PrincipalEntry {
            tenant: id.tenant.clone(),
            object: id.object.clone(),
            issued_before: *before,
        })
        .collect();
    principals.sort_by(|a, b| (&a.tenant, &a.object).cmp(&(&b.tenant, &b.object)));
    let mut tenants: Vec<TenantEntry> = set
        .tenants
        .iter()
        .map(|(t, before)| TenantEntry {
            tenant: t.clone(),
            issued_before: *before,
        })
        .collect();
    tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    let form = FileForm {
        version: 1,
        principals,
        tenants,
    };
    let json = serde_json::to_vec_pretty(&form).map_err(|e| io_error(path, e))?;
    let tmp = path.with_extension("tmp");
    // Written and synced before the rename, so a crash leaves the old file or the new one.
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, &json)?;
        file.sync_all()
    };
    write().map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> PrincipalId {
        PrincipalId::new(
            TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            ObjectId::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}")).unwrap(),
        )
    }

    #[test]
    fn latest_revocation_wins_and_tenant_applies_to_all() {
        let r = Revocations::open(None, 10).unwrap();
        let now = 2_000_000_000;
        r.revoke_principal(id(1), now - 10, now).unwrap();
        r.revoke_principal(id(1), now - 20, now).unwrap();
        assert_eq!(r.revoked_before(&id(1)), Some(now - 10));
        assert_eq!(r.revoked_before(&id(2)), None);
        r.revoke_tenant(id(2).tenant, now - 5, now).unwrap();
        assert_eq!(r.revoked_before(&id(2)), Some(now - 5));
        assert_eq!(r.revoked_before(&id(1)), Some(now - 5));
    }

    #[test]
    fn bounded_and_pruned() {
        let r = Revocations::open(None, 2).unwrap();
        let now = 2_000_000_000;
        r.revoke_principal(id(1), now, now).unwrap();
        r.revoke_principal(id(2), now, now).unwrap();
        assert!(matches!(
            r.revoke_principal(id(3), now, now),
            Err(RevocationError::Full { max: 2 })
        ));
        assert_eq!(
            r.revoked_before(&id(3)),
            None,
            "a refused revocation changes nothing"
        );
        // Much later, the old entries cannot matter any more and make room.
        let later = now + MAX_TOKEN_LIFETIME_SECS + 1;
        r.revoke_principal(id(3), later, later).unwrap();
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn fleet_entries_merge_by_the_later_instant_past_the_bound() {
        let r = Revocations::open(None, 1).unwrap();
        let now = 2_000_000_000;
        r.revoke_principal(id(1), now - 10, now).unwrap();
        let tenant = id(1).tenant;
        let merged = r
            .merge(
                &[
                    (Subject::Principal(id(1)), now - 20), // older: changes nothing
                    (Subject::Principal(id(2)), now),
                    (Subject::Tenant(tenant.clone()), now - 30),
                    (Subject::Principal(id(3)), now - MAX_TOKEN_LIFETIME_SECS), // expired
                ],
                now,
            )
            .unwrap();
        assert_eq!(merged, 2);
        assert_eq!(r.revoked_before(&id(1)), Some(now - 10));
        assert_eq!(r.revoked_before(&id(2)), Some(now));
        assert_eq!(
            r.revoked_before(&id(4)),
            Some(now - 30),
            "the tenant's entry"
        );
        assert_eq!(
            r.revoked_before(&id(3)),
            Some(now - 30),
            "expired entry skipped"
        );
        assert_eq!(
            r.len(),
            3,
            "beyond max = 1: the fleet's revocations are all enforced"
        );
        let mut fields: Vec<String> = r.entries().iter().map(|(s, _)| s.field()).collect();
        fields.sort();
        for field in &fields {
            assert_eq!(
                Subject::parse_field(field).map(|s| s.field()),
                Some(field.clone())
            );
        }
        assert_eq!(fields[2], format!("t:{tenant}"));
        for garbage in [
            "",
            "p:",
            "x:1",
            "t:nope",
            "p:72f988bf-86f1-41af-91ab-2d7cd011db47",
        ] {
            assert_eq!(Subject::parse_field(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn survives_a_restart_through_the_file() {
        let path = std::env::temp_dir().join(format!("eg-revocations-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let now = 2_000_000_000;
        {
            let r = Revocations::open(Some(path.clone()), 10).unwrap();
            r.revoke_principal(id(7), now, now).unwrap();
            r.revoke_tenant(id(7).tenant, now - 100, now).unwrap();
        }
        let reopened = Revocations::open(Some(path.clone()), 10).unwrap();
        assert_eq!(reopened.revoked_before(&id(7)), Some(now));
        assert_eq!(reopened.revoked_before(&id(8)), Some(now - 100));
        std::fs::write(&path, "{nope").unwrap();
        assert!(matches!(
            Revocations::open(Some(path.clone()), 10),
            Err(RevocationError::Malformed { .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }
}
