//! Small, seeded hashing for the policy's lookup tables.
//!
//! Keys are short strings (GUIDs, scope names, app role values). SipHash would spend more
//! time per decision than the rest of the evaluation, so the tables use a multiply-mix
//! hash keyed by a per-policy random seed: keys come from Entra and from the policy
//! author, and the seed keeps collision sets unpredictable anyway.

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
/// Slots keep a 64-bit tag (never 0; 0 marks an empty slot) next to the value, and the
/// full key in a parallel array, so a miss usually costs one hash and one load.
#[derive(Debug)]
pub(crate) struct GuidTable {
    seed: u64,
    shift: u32,
    tags: Box<[u64]>,
    values: Box<[u32]>,
    keys: Box<[[u8; 36]]>,
}

impl GuidTable {
    /// Builds a table from distinct lower-case GUID keys.
    pub(crate) fn new(entries: &[(&str, u32)]) -> Self {
        let bits = (entries.len().max(4) * 4)
            .next_power_of_two()
            .trailing_zeros();
        let cap = 1usize << bits;
        let mut t = Self {
            seed: random_seed(),
            shift: 64 - bits,
            tags: vec![0; cap].into(),
            values: vec![0; cap].into(),
            keys: vec![[0; 36]; cap].into(),
        };
        for (key, value) in entries {
            let key: [u8; 36] = key.as_bytes().try_into().expect("a GUID is 36 bytes");
            let tag = t.tag(&key);
            let mut i = (tag >> t.shift) as usize;
            while t.tags[i] != 0 {
                i = (i + 1) & (cap - 1);
            }
            t.tags[i] = tag;
            t.values[i] = *value;
            t.keys[i] = key;
        }
        t
    }

    /// Hashes the first and last eight characters: for GUIDs, the two random ends.
    #[inline]
    fn tag(&self, key: &[u8; 36]) -> u64 {
        let a = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(key[28..].try_into().expect("8 bytes"));
        mix(mix(a ^ self.seed, K) ^ b, K) | 1
    }

    /// Looks a key up; keys that are not 36 bytes long are never present.
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<u32> {
        let key: &[u8; 36] = key.as_bytes().try_into().ok()?;
        let tag = self.tag(key);
        let mask = self.tags.len() - 1;
        let mut i = (tag >> self.shift) as usize;
        loop {
            let t = self.tags[i];
            if t == 0 {
                return None;
            }
            if t == tag && self.keys[i] == *key {
                return Some(self.values[i]);
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
