//! The verified-token cache: the same bearer token is presented again and again for its
//! 60–90 minutes of life, so its verified claims are kept and the RSA check is skipped on
//! a repeat — without weakening anything:
//!
//! - an entry is found by a fast seeded hash of the token's length and last bytes (the
//!   end of its signature, which differs between any two valid tokens) but served only
//!   when the **whole token** compares equal, so a different token can never hit another
//!   token's entry. Only verified tokens are ever inserted: tokens crafted to share a
//!   valid token's tail land on its entry, compare unequal, miss, and fail verification;
//!   they can neither read nor evict it;
//! - an entry never outlives its token's `exp` (the clock skew is granted only at first
//!   verification: after `exp` a token is verified in full again);
//! - an entry is served only while the key that verified it is still the published key
//!   for its `kid`: a key dropped from the JWKS (or replaced) evicts its tokens, while a
//!   refresh that publishes the same key again keeps them;
//! - verified *claims* are cached, not decisions: revocations and policy reloads apply to
//!   every request, cached or not;
//! - memory is bounded: entries are weighed by the bytes they hold (token text, the
//!   principal with its lists and strings, the entry) and the cache holds at most
//!   [`DEFAULT_TOKEN_CACHE_BYTES`](super::config::DEFAULT_TOKEN_CACHE_BYTES) by default; when full,
//!   a CLOCK hand evicts entries not read since it last passed. An expired entry is
//!   dropped when it is next looked up or evicted, and counts against the bound until then.
//!
//! Why not a general-purpose cache (moka, used elsewhere in the crate): its reads record
//! access order and frequency in shared structures, several cache misses per hit on a
//! large working set, and that bookkeeping, not the lookup, dominated a cached
//! `authorize()`. Here a hit is an atomic load of a slot, the comparison, and claims that
//! are already parsed.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwapOption;

use crate::fast_hash::FastBuildHasher;
use crate::principal::Principal;
use crate::token::keys::{KeySet, SigningKey};

/// What an entry is charged beyond its token text and its principal's
/// [`heap_bytes`](Principal::heap_bytes): the entry itself and its `Arc`.
pub(crate) const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + 16;

/// The table has a slot per this many bytes of budget: an Entra token's entry weighs about
/// 4 KiB, so most ways stay free and tokens rarely compete for one.
const BYTES_PER_SLOT: u64 = 1024;
const MIN_SLOTS: usize = 64;
/// Slots a token may live in (one set; their tags share a cache line).
const WAYS: usize = 4;

/// Evicting for room inspects at most this many slots before giving up on the insert.
const EVICTION_SCAN: usize = 256;

/// One way of a set: the hash of the token it last held (`0`: never used), a hint that
/// spares reading entries of other tokens (the full comparison decides), and the entry.
/// Two inserts racing for one slot may leave one's tag over the other's entry: that
/// entry then misses until it is replaced or evicted.
#[derive(Default)]
struct Slot {
    tag: AtomicU64,
    entry: ArcSwapOption<Entry>,
}

/// A set's ways in one cache line: a lookup misses the cache here at most once.
#[derive(Default)]
#[repr(align(64))]
struct Set([Slot; WAYS]);

struct Entry {
    token: Box<str>,
    principal: Arc<Principal>,
    key: Arc<SigningKey>,
    /// What the entry counts against the byte budget.
    weight: u64,
    /// Read since the eviction hand last passed (second chance).
    referenced: AtomicBool,
}

/// How tokens are turned into slot numbers.
enum KeyHash {
    /// A seeded fast hash (random per process).
    Seeded(FastBuildHasher),
    /// Every token gets the same slot pair: tests prove lookups compare whole tokens.
    #[cfg(test)]
    Constant,
}

/// Bytes of the token's end that are hashed: past any JWS header and claims, inside the
/// signature (342 characters for RS256).
const HASHED_TAIL: usize = 32;

impl KeyHash {
    fn of(&self, token: &str) -> u64 {
        match self {
            Self::Seeded(h) => {
                let bytes = token.as_bytes();
                let tail = &bytes[bytes.len().saturating_sub(HASHED_TAIL)..];
                h.hash_one((bytes.len(), tail))
            }
            #[cfg(test)]
            Self::Constant => 7,
        }
    }
}

/// Verified tokens in a four-way set-associative table of atomically swapped slots, each
/// token with two candidate sets, compared in full on every hit.
///
/// Readers never lock and write no state shared by other tokens: a lookup reads the set's
/// tags, does an `arc-swap` load of the slot whose tag matches (its bookkeeping is per
/// thread), the comparison, at most one flag set per entry between two passes of the
/// eviction hand, and one reference-count increment of the principal it returns.
/// Writers swap whole entries in and out.
pub(crate) struct VerifiedTokens {
    sets: Box<[Set]>,
    hasher: KeyHash,
    max_bytes: u64,
    /// Weighed bytes held (reserved before an insert, released when an entry leaves).
    bytes: AtomicU64,
    entries: AtomicU64,
    /// The eviction hand (CLOCK): the next slot to consider when room is needed.
    hand: AtomicUsize,
}

impl VerifiedTokens {
    /// A cache holding at most `max_bytes` of tokens and claims.
    pub(crate) fn new(max_bytes: u64) -> Self {
        Self::with_hasher(max_bytes, KeyHash::Seeded(FastBuildHasher::new()))
    }

    fn with_hasher(max_bytes: u64, hasher: KeyHash) -> Self {
        let wanted = usize::try_from(max_bytes / BYTES_PER_SLOT).unwrap_or(usize::MAX);
        let slots = wanted.clamp(MIN_SLOTS, 1 << 24).next_power_of_two();
        Self {
            sets: (0..slots / WAYS).map(|_| Set::default()).collect(),
            hasher,
            max_bytes,
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            hand: AtomicUsize::new(0),
        }
    }

    fn slot_count(&self) -> usize {
        self.sets.len() * WAYS
    }

    fn slot(&self, i: usize) -> &Slot {
        &self.sets[i / WAYS].0[i % WAYS]
    }

    /// The token's tag (never `0`) and the first slot of each of its two sets.
    fn locate(&self, token: &str) -> (u64, [usize; 2]) {
        let hash = self.hasher.of(token);
        let mask = (self.slot_count() - 1) & !(WAYS - 1);
        let first = hash as usize & mask;
        // The second choice comes from the other half of the hash: tokens crowding one
        // set spread over different second sets.
        let second = (hash >> 32) as usize & mask;
        (hash | 1, [first, second])
    }

    /// The slots a token may live in: the ways of its two sets.
    fn candidates(sets: [usize; 2]) -> impl Iterator<Item = usize> {
        let [a, b] = sets;
        (a..a + WAYS).chain((b..b + WAYS).filter(move |_| b != a))
    }

    /// The cached principal for exactly this token, if its entry is still valid under
    /// the current key set at `now` (seconds since the epoch).
    pub(crate) fn get(&self, token: &str, keys: &KeySet, now: u64) -> Option<Arc<Principal>> {
        let (tag, sets) = self.locate(token);
        for i in Self::candidates(sets) {
            let slot = self.slot(i);
            if slot.tag.load(Ordering::Relaxed) != tag {
                continue;
            }
            let guard = slot.entry.load();
            let Some(entry) = guard.as_ref() else {
                continue;
            };
            entry.principal.touch();
            if *entry.token != *token {
                continue;
            }
            let key_current = keys
                .get(&entry.key.kid)
                .is_some_and(|k| Arc::ptr_eq(k, &entry.key));
            if now >= entry.principal.expires_at || !key_current {
                self.remove(i, entry);
                return None;
            }
            if !entry.referenced.load(Ordering::Relaxed) {
                entry.referenced.store(true, Ordering::Relaxed);
            }
            return Some(entry.principal.clone());
        }
        None
    }

    /// Remembers a token verified under `key`, until its `exp`. Returns how many entries
    /// were evicted to make room for it (by the byte budget, or from its slot).
    pub(crate) fn insert(
        &self,
        token: &str,
        principal: Arc<Principal>,
        key: Arc<SigningKey>,
        now: u64,
    ) -> u64 {
        if principal.expires_at <= now {
            return 0; // accepted only thanks to the skew: never cached
        }
        let (tag, sets) = self.locate(token);
        if self.holds(token, tag, sets) {
            return 0; // verified twice by concurrent requests: one entry is enough
        }
        let weight = (token.len() + ENTRY_OVERHEAD + principal.heap_bytes()) as u64;
        let mut evicted = 0;
        if !self.reserve(weight, &mut evicted) {
            // No room could be made: the token is simply verified again next time.
            return evicted;
        }
        let entry = Arc::new(Entry {
            token: token.into(),
            principal,
            key,
            weight,
            referenced: AtomicBool::new(false),
        });
        let slot = self.victim(sets, now);
        self.entries.fetch_add(1, Ordering::Relaxed);
        let slot = self.slot(slot);
        if let Some(old) = slot.entry.swap(Some(entry)) {
            // Both of the token's sets were full: the victim makes room for it.
            self.release(&old);
            evicted += 1;
        }
        slot.tag.store(tag, Ordering::Relaxed);
        evicted
    }

    /// Whether one of the token's slots already holds it.
    fn holds(&self, token: &str, tag: u64, sets: [usize; 2]) -> bool {
        Self::candidates(sets).any(|i| {
            let slot = self.slot(i);
            slot.tag.load(Ordering::Relaxed) == tag
                && slot
                    .entry
                    .load()
                    .as_ref()
                    .is_some_and(|e| *e.token == *token)
        })
    }

    /// Of a token's slots, the one to fill: empty, else expired, else not read since the
    /// hand passed, else the first (two-choice placement: a set overflows only when both
    /// of a token's sets are full).
    fn victim(&self, sets: [usize; 2], now: u64) -> usize {
        let score = |i: usize| match &*self.slot(i).entry.load() {
            None => 0,
            Some(e) if e.principal.expires_at <= now => 1,
            Some(e) if !e.referenced.load(Ordering::Relaxed) => 2,
            Some(_) => 3,
        };
        Self::candidates(sets)
            .min_by_key(|i| score(*i))
            .unwrap_or(sets[0])
    }

    /// Counts `weight` against the budget, evicting (CLOCK, second chance) until it fits;
    /// adds the entries it evicted to `evicted`.
    fn reserve(&self, weight: u64, evicted: &mut u64) -> bool {
        if weight > self.max_bytes {
            return false;
        }
        let held = self.bytes.fetch_add(weight, Ordering::AcqRel) + weight;
        if held <= self.max_bytes {
            return true;
        }
        for _ in 0..EVICTION_SCAN {
            let i = self.hand.fetch_add(1, Ordering::Relaxed) & (self.slot_count() - 1);
            let guard = self.slot(i).entry.load();
            let Some(entry) = guard.as_ref() else {
                continue;
            };
            if entry.referenced.swap(false, Ordering::Relaxed) {
                continue; // read lately: a second chance
            }
            if self.remove(i, entry) {
                *evicted += 1;
            }
            if self.bytes.load(Ordering::Acquire) <= self.max_bytes {
                return true;
            }
        }
        self.bytes.fetch_sub(weight, Ordering::AcqRel);
        false
    }

    /// Empties slot `i` if it still holds `entry`; true when it did.
    fn remove(&self, i: usize, entry: &Arc<Entry>) -> bool {
        let slot = self.slot(i);
        let previous = slot.entry.compare_and_swap(entry, None);
        if let Some(old) = &*previous
            && Arc::ptr_eq(old, entry)
        {
            // The tag stays: it is only a hint, and clearing it here could hide an entry
            // a concurrent insert has just put in this slot.
            self.release(old);
            return true;
        }
        false
    }

    fn release(&self, old: &Entry) {
        self.bytes.fetch_sub(old.weight, Ordering::AcqRel);
        self.entries.fetch_sub(1, Ordering::Relaxed);
    }

    /// Entries currently held (for tests and metrics).
    pub(crate) fn entry_count(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Weighed bytes currently held (for tests and metrics).
    pub(crate) fn weighed_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
impl VerifiedTokens {
    /// A cache whose hash sends every token to the same two sets: proves that lookups
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
            .expires_at(crate::clock::from_unix_secs(exp))
            .build(),
        )
    }

    #[test]
    fn a_different_token_never_hits_another_tokens_entry() {
        let (set, key) = crate::token::keys::tests::set_with_one_key();
        let cache = VerifiedTokens::colliding(1 << 20);
        let now = 1_000;
        let id = |p: Option<Arc<Principal>>| p.map(|p| p.object_id().clone());
        assert_eq!(
            cache.insert("token-a", principal(1, now + 60), key.clone(), now),
            0
        );
        assert!(cache.get("token-b", &set, now).is_none());
        assert_eq!(
            id(cache.get("token-a", &set, now)),
            id(Some(principal(1, 0)))
        );
        // Every token lands in the same two sets: each is still found only by itself,
        // and once they are full a newcomer replaces one of them.
        let tokens: Vec<String> = (2..=11).map(|n| format!("token-{n}")).collect();
        let mut evicted = 0;
        for (n, token) in (2..).zip(&tokens) {
            let held = cache.entry_count();
            let out = cache.insert(token, principal(n, now + 60), key.clone(), now);
            // A slot is given up only once all eight are taken (the budget is ample).
            assert_eq!(out, u64::from(held == 2 * WAYS as u64), "{token}");
            evicted += out;
            assert_eq!(id(cache.get(token, &set, now)), id(Some(principal(n, 0))));
        }
        // Eleven tokens went in, eight are held: three made room by replacing one.
        assert_eq!((evicted, cache.entry_count()), (3, 8));
        for (n, token) in (1..).zip(std::iter::once(&"token-a".to_owned()).chain(&tokens)) {
            let got = id(cache.get(token, &set, now));
            assert!(got.is_none() || got == id(Some(principal(n, 0))), "{token}");
        }
        // Both of the tokens' sets (the constant hash's two halves differ) are full.
        assert_eq!(cache.entry_count(), 2 * WAYS as u64);
        assert!(cache.get("token-", &set, now).is_none());
        assert!(cache.get("token-77", &set, now).is_none());
    }

    #[test]
    fn a_token_verified_twice_is_held_once() {
        let (set, key) = crate::token::keys::tests::set_with_one_key();
        let cache = VerifiedTokens::new(1 << 20);
        cache.insert("t", principal(1, 2_000), key.clone(), 1_000);
        let weighed = cache.weighed_bytes();
        cache.insert("t", principal(1, 2_000), key, 1_000);
        assert_eq!((cache.entry_count(), cache.weighed_bytes()), (1, weighed));
        assert!(cache.get("t", &set, 1_000).is_some());
    }

    #[test]
    fn memory_stays_within_the_budget_and_recent_entries_survive() {
        let (set, key) = crate::token::keys::tests::set_with_one_key();
        let token = |n: u32| format!("{n:0>2000}");
        let weight = (2000 + ENTRY_OVERHEAD + principal(1, 0).heap_bytes()) as u64;
        let budget = 20 * weight;
        let cache = VerifiedTokens::new(budget);
        let now = 1_000;
        let mut evicted = 0;
        for n in 0..500 {
            evicted += cache.insert(&token(n), principal(1, now + 60), key.clone(), now);
            // Every entry that left was evicted to make room, and counted.
            assert_eq!(evicted + cache.entry_count(), u64::from(n) + 1, "after {n}");
            assert!(cache.weighed_bytes() <= budget, "after {n}");
            // The newest token is always kept (room is made for it).
            assert!(cache.get(&token(n), &set, now).is_some(), "token {n}");
        }
        assert_eq!(cache.weighed_bytes(), cache.entry_count() * weight);
        assert!(cache.entry_count() >= 10, "{}", cache.entry_count());
        // An entry larger than the whole budget is never held.
        cache.insert(
            &"x".repeat(budget as usize),
            principal(1, now + 60),
            key,
            now,
        );
        assert!(cache.get(&"x".repeat(budget as usize), &set, now).is_none());
        assert!(cache.weighed_bytes() <= budget);
    }

    #[test]
    fn entries_end_at_exp_and_skew_accepted_tokens_are_not_cached() {
        let (set, key) = crate::token::keys::tests::set_with_one_key();
        let cache = VerifiedTokens::new(1 << 20);
        cache.insert("t", principal(1, 1_060), key.clone(), 1_000);
        assert!(cache.get("t", &set, 1_059).is_some());
        assert!(cache.get("t", &set, 1_060).is_none());
        let held = cache.entry_count();
        cache.insert("late", principal(1, 990), key, 1_000);
        assert!(cache.get("late", &set, 1_000).is_none());
        assert_eq!(
            cache.entry_count(),
            held,
            "a skew-accepted token was stored"
        );
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
