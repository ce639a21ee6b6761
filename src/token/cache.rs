//! The verified-token cache: the same bearer token is presented again and again for its
//! 60–90 minutes of life, so its verified claims are kept and the RSA check is skipped on
//! a repeat — without weakening anything:
//!
//! - an entry is found by a fast seeded hash but served only when the **whole token**
//!   compares equal, so a different token can never hit another token's entry;
//! - an entry never outlives its token's `exp` (the clock skew is granted only at first
//!   verification: after `exp` a token is verified in full again);
//! - an entry is served only while the key that verified it is still the published key
//!   for its `kid`: a key dropped from the JWKS (or replaced) evicts its tokens;
//! - verified *claims* are cached, not decisions: revocations and policy reloads apply to
//!   every request, cached or not;
//! - memory is bounded: entries are weighed by their size and the cache holds at most
//!   [`DEFAULT_TOKEN_CACHE_BYTES`](crate::DEFAULT_TOKEN_CACHE_BYTES) by default.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::fast_hash::FastBuildHasher;
use crate::principal::Principal;
use crate::token::keys::{KeySet, SigningKey};

/// Estimated bytes of a cached principal beyond the token text (ids, scopes, groups).
const ENTRY_OVERHEAD: usize = 1024;

struct Entry {
    token: Box<str>,
    principal: Arc<Principal>,
    key: Arc<SigningKey>,
    /// `exp` as an `Instant`, for moka's per-entry expiry.
    expires: Instant,
}

struct UntilExp;

impl moka::Expiry<u64, Arc<Entry>> for UntilExp {
    fn expire_after_create(&self, _: &u64, e: &Arc<Entry>, now: Instant) -> Option<Duration> {
        Some(e.expires.saturating_duration_since(now))
    }
}

/// How tokens are turned into cache keys.
enum KeyHash {
    /// A seeded fast hash (random per process).
    Seeded(FastBuildHasher),
    /// Every token gets the same key: tests prove lookups compare whole tokens.
    #[cfg(test)]
    Constant,
}

impl KeyHash {
    fn of(&self, token: &str) -> u64 {
        match self {
            Self::Seeded(h) => h.hash_one(token),
            #[cfg(test)]
            Self::Constant => 7,
        }
    }
}

/// Verified tokens by hash, compared in full on every hit.
pub(crate) struct VerifiedTokens {
    cache: Cache<u64, Arc<Entry>>,
    hasher: KeyHash,
}

impl VerifiedTokens {
    /// A cache holding at most `max_bytes` of tokens and claims.
    pub(crate) fn new(max_bytes: u64) -> Self {
        Self::with_hasher(max_bytes, KeyHash::Seeded(FastBuildHasher::new()))
    }

    fn with_hasher(max_bytes: u64, hasher: KeyHash) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, e: &Arc<Entry>| {
                u32::try_from(e.token.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .expire_after(UntilExp)
            .build();
        Self { cache, hasher }
    }

    /// The cached principal for exactly this token, if its entry is still valid under
    /// the current key set at `now` (seconds since the epoch).
    pub(crate) fn get(&self, token: &str, keys: &KeySet, now: u64) -> Option<Arc<Principal>> {
        let hash = self.hasher.of(token);
        let entry = self.cache.get(&hash)?;
        if *entry.token != *token {
            return None;
        }
        let key_current = keys
            .get(&entry.key.kid)
            .is_some_and(|k| Arc::ptr_eq(k, &entry.key));
        if now >= entry.principal.expires_at() || !key_current {
            self.cache.invalidate(&hash);
            return None;
        }
        Some(entry.principal.clone())
    }

    /// Remembers a token verified under `key`, until its `exp`.
    pub(crate) fn insert(
        &self,
        token: &str,
        principal: Arc<Principal>,
        key: Arc<SigningKey>,
        now: u64,
    ) {
        let Some(remaining) = principal.expires_at().checked_sub(now).filter(|r| *r > 0) else {
            return; // accepted only thanks to the skew: never cached
        };
        let entry = Entry {
            token: token.into(),
            expires: Instant::now() + Duration::from_secs(remaining),
            principal,
            key,
        };
        self.cache.insert(self.hasher.of(token), Arc::new(entry));
    }

    /// Entries currently held (approximate; for tests and metrics).
    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

#[cfg(test)]
impl VerifiedTokens {
    /// A cache whose hash sends every token to the same entry: proves that lookups
    /// compare whole tokens.
    pub(crate) fn colliding(max_bytes: u64) -> Self {
        Self::with_hasher(max_bytes, KeyHash::Constant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ObjectId, TenantId};

    fn principal(n: u8, exp: u64) -> Arc<Principal> {
        Arc::new(
            Principal::builder(
                TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
                ObjectId::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}")).unwrap(),
            )
            .expires_at(exp)
            .build(),
        )
    }

    #[test]
    fn a_different_token_never_hits_another_tokens_entry() {
        let (set, key) = crate::token::keys::tests::set_with_one_key();
        let cache = VerifiedTokens::colliding(1 << 20);
        let now = 1_000;
        cache.insert("token-a", principal(1, now + 60), key.clone(), now);
        assert!(cache.get("token-b", &set, now).is_none());
        assert_eq!(
            cache.get("token-a", &set, now).unwrap().object_id(),
            principal(1, 0).object_id()
        );
        // The colliding token replaces the entry; the first is then simply a miss.
        cache.insert("token-b", principal(2, now + 60), key, now);
        assert!(cache.get("token-a", &set, now).is_none());
        assert_eq!(
            cache.get("token-b", &set, now).unwrap().object_id(),
            principal(2, 0).object_id()
        );
    }

    #[test]
    fn entries_end_at_exp_and_skew_accepted_tokens_are_not_cached() {
        let (set, key) = crate::token::keys::tests::set_with_one_key();
        let cache = VerifiedTokens::new(1 << 20);
        cache.insert("t", principal(1, 1_060), key.clone(), 1_000);
        assert!(cache.get("t", &set, 1_059).is_some());
        assert!(cache.get("t", &set, 1_060).is_none());
        cache.insert("late", principal(1, 990), key, 1_000);
        assert!(cache.get("late", &set, 1_000).is_none());
    }

    #[test]
    fn entries_die_with_their_key() {
        let (set, key) = crate::token::keys::tests::set_with_one_key();
        let (other_set, _) = crate::token::keys::tests::set_with_one_key();
        let cache = VerifiedTokens::new(1 << 20);
        cache.insert("t", principal(1, 2_000), key, 1_000);
        assert!(
            cache.get("t", &other_set, 1_000).is_none(),
            "same kid, another key"
        );
        assert!(cache.get("t", &set, 1_000).is_none(), "evicted for good");
    }
}
