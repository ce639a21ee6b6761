//! Small, seeded hashing for hot lookup tables: the policy's GUID and claim tables and the
//! verified-token cache.
//!
//! Keys are short strings (GUIDs, scope names, app role values). SipHash would spend more
//! time per decision than the rest of the evaluation, so the tables use a multiply-mix
//! hash keyed by a per-policy random seed: keys come from Entra and from the policy
//! author, and the seed keeps collision sets unpredictable anyway. The verified-token cache
//! hashes each token's length and signature tail the same way and compares the full token
//! on every hit, so a collision can only cost a miss.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// A random 64-bit seed from the standard library's per-process randomness.
pub(crate) fn random_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

/// Builds [`FastHasher`]s sharing one random seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastBuildHasher {
    seed: u64,
}

impl FastBuildHasher {
    pub(crate) fn new() -> Self {
        Self {
            seed: random_seed(),
        }
    }
}

impl Default for FastBuildHasher {
    /// A fresh random seed.
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for FastBuildHasher {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { state: self.seed }
    }
}

/// A folded-multiply hasher for short keys.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastHasher {
    state: u64,
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.state = mix(self.state ^ w, K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.state = mix(self.state ^ u64::from_le_bytes(buf), K ^ rest.len() as u64);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.state = mix(self.state ^ u64::from(i), K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        mix(self.state, K.rotate_left(17))
    }
}

/// An open-addressing table from GUID strings (group ids) to small integers, built for
/// the hottest loop of a decision: up to 200 token groups, each looked up once.
///
/// Most token groups are not in the policy, so lookups start with a one-bit-per-hash
/// filter small enough to stay in the L1 cache (16 KiB for a few thousand keys): a miss
/// then costs one hash and one bit test. Past the filter, a slot holds a 64-bit tag
/// (never 0; 0 marks an empty slot), the full key as machine words and the value, so a
/// hit costs one more memory access and five word compares.
#[derive(Debug)]
pub(crate) struct GuidTable {
    seeds: [u64; 2],
    shift: u32,
    filter: Box<[u64]>,
    filter_mask: u64,
    slots: Box<[Slot]>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    tag: u64,
    key: Words,
    value: u32,
}

/// A 36-byte GUID string as four 8-byte words and one 4-byte word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Words([u64; 4], u32);

#[inline(always)]
fn word(key: &[u8; 36], at: usize) -> u64 {
    u64::from_le_bytes(key[at..at + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn words(key: &[u8; 36]) -> Words {
    Words(
        [word(key, 0), word(key, 8), word(key, 16), word(key, 24)],
        u32::from_le_bytes(key[32..].try_into().expect("4 bytes")),
    )
}

impl GuidTable {
    /// Builds a table from distinct lower-case GUID keys.
    pub(crate) fn new(entries: &[(&str, u32)]) -> Self {
        let bits = (entries.len().max(4) * 2)
            .next_power_of_two()
            .trailing_zeros();
        let cap = 1usize << bits;
        let filter_bits = (entries.len() * 32).next_power_of_two().max(64);
        let mut t = Self {
            seeds: [random_seed(), random_seed()],
            shift: 64 - bits,
            filter: vec![0; filter_bits / 64].into(),
            filter_mask: filter_bits as u64 - 1,
            slots: vec![Slot::default(); cap].into(),
        };
        for (key, value) in entries {
            let key: &[u8; 36] = key.as_bytes().try_into().expect("a GUID is 36 bytes");
            let tag = t.tag(key);
            let mut i = (tag >> t.shift) as usize;
            while t.slots[i].tag != 0 {
                i = (i + 1) & (cap - 1);
            }
            t.slots[i] = Slot {
                tag,
                key: words(key),
                value: *value,
            };
            let f = (tag >> 1) & t.filter_mask;
            t.filter[(f / 64) as usize] |= 1 << (f % 64);
        }
        t
    }

    /// Hashes the first and last eight characters: for GUIDs, the two random ends.
    #[inline(always)]
    fn tag(&self, key: &[u8; 36]) -> u64 {
        mix(word(key, 0) ^ self.seeds[0], word(key, 28) ^ self.seeds[1]) | 1
    }

    /// Looks a key up; keys that are not 36 bytes long are never present.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<u32> {
        self.get_guid(key.as_bytes().try_into().ok()?)
    }

    /// Looks up a GUID's 36 bytes.
    #[inline(always)]
    pub(crate) fn get_guid(&self, key: &[u8; 36]) -> Option<u32> {
        let tag = self.tag(key);
        let f = (tag >> 1) & self.filter_mask;
        if self.filter[(f / 64) as usize] & (1 << (f % 64)) == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = (tag >> self.shift) as usize;
        loop {
            let slot = &self.slots[i];
            if slot.tag == 0 {
                return None;
            }
            if slot.tag == tag && slot.key == words(key) {
                return Some(slot.value);
            }
            i = (i + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_table_finds_exactly_its_keys() {
        let keys: Vec<String> = (0..1000)
            .map(|i| format!("{i:08x}-0000-4000-8000-{:012x}", i * 7919))
            .collect();
        let entries: Vec<(&str, u32)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i as u32))
            .collect();
        let t = GuidTable::new(&entries);
        for (k, v) in &entries {
            assert_eq!(t.get(k), Some(*v));
        }
        // Same ends, different middle: must not be confused.
        assert_eq!(t.get("00000001-1111-4000-8000-000000001eef"), None);
        assert_eq!(t.get("00000001"), None);
        assert_eq!(GuidTable::new(&[]).get(&keys[0]), None);
    }
}
