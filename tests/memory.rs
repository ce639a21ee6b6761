//! Memory: 100,000 distinct tokens through a governor whose verified-token cache is capped
//! at 8 MiB must not grow the process past a bound derived from that capacity.
//!
//! Every token is Entra-shaped (2,183 bytes), valid, distinct, and authorized once, so each
//! one is verified in full and offered to the cache. The test asserts:
//!
//! - the bytes the cache counts ([`Governor::cached_token_bytes`]) ≤ the capacity (and
//!   ≥ half of it: in use);
//! - the heap the entries really hold ≤ 17/16 × the capacity: the weigher counts an
//!   entry's token, principal and lists as allocated (see [`REAL_PER_WEIGHED`]);
//! - resident memory grows by at most 5/4 × the capacity from the first token to the last;
//! - and by at most 1/8 of the capacity over the last 90,000 tokens, once the cache is full.
//!
//! Its own test binary, with a single test, so that no other test allocates while resident
//! memory (`VmRSS` in `/proc/self/status`, Linux only) is read. A counting global allocator
//! also reports the live heap, which is exact where `VmRSS` is page-grained and keeps what
//! the allocator has not returned to the kernel.
//!
//! Signing 100,000 RSA-2048 tokens is most of its cost: two threads sign while the test
//! thread authorizes: 35 s in a debug build on a 2-core machine, about 60 s while
//! another build runs on it.

#![cfg(target_os = "linux")]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_governor::Governor;
use entra_governor::testing::TestIdp;

/// Counts the bytes currently allocated on the heap, then defers to the system allocator.
struct Counting;

static LIVE_HEAP: AtomicUsize = AtomicUsize::new(0);
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `System.realloc`'s.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_HEAP.fetch_add(new_size, Ordering::Relaxed);
            LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: u64 = 1 << 20;
/// The configured capacity of the verified-token cache.
const CAPACITY: u64 = 8 * MIB;
/// Distinct tokens pushed through, each authorized once.
const TOKENS: usize = 100_000;
/// Tokens pushed before the second reading: the cache is full after about 2,600.
const WARM_UP: usize = 10_000;
/// Tokens per batch sent by a signing thread: at most five batches exist outside the cache
/// at once (two being signed, two queued, one being authorized), about 0.5 MiB.
const BATCH: usize = 50;
/// The heap an entry really holds, per byte the weigher charges for it (numerator,
/// denominator): at most 17/16. Measured: 4,192 bytes in 12 blocks per entry for these
/// 2,183-byte tokens, equal to their weight (the token text, the verified `Principal`
/// with its 20 groups, and the entry): the margin is for the allocator rounding sizes.
const REAL_PER_WEIGHED: (u64, u64) = (17, 16);
/// Resident growth allowed from the first token to the last: 5/4 of the capacity. The
/// entries' heap (above), the allocator's chunk headers (12 blocks of 8 to 16 bytes per
/// entry, under 1/20 of the capacity), the slot table (16 bytes per KiB of capacity) and
/// the batches in flight. Measured: +8.8 to +9.1 MiB for 8 MiB.
const RESIDENT_BOUND: u64 = CAPACITY * 5 / 4;
/// Resident growth allowed while the last 90,000 tokens go through the full cache: an
/// eighth of its capacity, for the allocator's page granularity. A cache that kept even
/// one in a hundred of those tokens would grow by 4 MiB.
const STEADY_BOUND: u64 = CAPACITY / 8;

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

/// An Entra-shaped token, as the benches make them (v2, delegated, 20 groups, a name;
/// 2,183 bytes), numbered `n` so every token is distinct.
///
/// Signed with [`TestIdp::sign_raw`]: `TokenBuilder::sign` encodes with jsonwebtoken,
/// which parses the private key again on every call (2.5 ms a token in a debug build
/// against 0.34 ms here, i.e. 250 s against 34 s for 100,000 tokens). The header and
/// claims are the builder's own.
fn entra_token(idp: &TestIdp, kid: &str, n: usize) -> String {
    let mut groups: Vec<String> = (0..19)
        .map(|i| format!("{n:08x}-0000-4000-8000-{i:012x}"))
        .collect();
    groups.push(DATA_SCIENTISTS.to_owned());
    let builder = idp
        .token()
        .scopes("Training.Manage Inference.Invoke")
        .groups(groups)
        .claim("name", serde_json::json!("Ada Lovelace"));
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(builder.header_json().to_string()),
        URL_SAFE_NO_PAD.encode(builder.claims().to_string())
    );
    let signature = idp
        .sign_raw(kid, input.as_bytes())
        .expect("the signing key");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Resident memory of this process, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .expect("a VmRSS line in kB");
    kib * 1024
}

/// Bytes allocated on the heap now.
fn heap() -> u64 {
    LIVE_HEAP.load(Ordering::SeqCst) as u64
}

/// Heap blocks allocated now.
fn blocks() -> usize {
    LIVE_BLOCKS.load(Ordering::SeqCst)
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
}

#[test]
fn distinct_tokens_stay_within_the_cache_capacity() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let idp = rt.block_on(TestIdp::start());
    let kid = idp.signing_kid();
    let policy = crate::common::example_policy();
    let governor: Governor = common::builder(&idp)
        .policy(policy)
        .verified_token_cache(Some(CAPACITY))
        .build()
        .expect("governor");
    rt.block_on(governor.prefetch_keys()).expect("keys");

    let (rss_start, heap_start, blocks_start) = (resident(), heap(), blocks());
    // Two threads sign (the costly part), this one authorizes.
    let (send, batches) = mpsc::sync_channel::<Vec<String>>(2);
    let signers: Vec<_> = (0..2)
        .map(|first| {
            let (idp, kid, send) = (idp.clone(), kid.clone(), send.clone());
            std::thread::spawn(move || {
                for start in (first * BATCH..TOKENS).step_by(2 * BATCH) {
                    let batch = (start..start + BATCH)
                        .map(|n| entra_token(&idp, &kid, n))
                        .collect();
                    if send.send(batch).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(send);

    let mut pushed = 0;
    let mut token_bytes = 0;
    let mut warm = None;
    for batch in batches {
        rt.block_on(async {
            for token in &batch {
                let decision = governor
                    .authorize(token, "training.submit", "models/exp-1")
                    .await
                    .expect("a valid token");
                assert!(decision.is_allowed(), "{decision:?}");
            }
        });
        token_bytes = batch[0].len();
        pushed += batch.len();
        drop(batch);
        if pushed == WARM_UP {
            warm = Some(resident());
        }
    }
    for signer in signers {
        signer.join().expect("signer");
    }
    // The readings, once every token has gone through.
    let cached = governor.cached_tokens();
    let (rss_end, heap_end, blocks_end) = (resident(), heap(), blocks());
    let rss_warm = warm.expect("the warm-up was reached");
    let heap_held = heap_end.saturating_sub(heap_start);
    eprintln!(
        "{pushed} distinct tokens of {token_bytes} bytes in {:.1?}, {cached} cached at the end\n\
         resident: {} at the start, +{} after {WARM_UP} tokens, +{} at the end \
         (+{} after the warm-up)\n\
         live heap: +{} at the end: {} bytes and {} blocks per cached entry",
        started.elapsed(),
        mib(rss_start),
        mib(rss_warm.saturating_sub(rss_start)),
        mib(rss_end.saturating_sub(rss_start)),
        mib(rss_end.saturating_sub(rss_warm)),
        mib(heap_held),
        heap_held / cached.max(1),
        blocks_end.saturating_sub(blocks_start) as u64 / cached.max(1),
    );

    assert_eq!(pushed, TOKENS);
    // What the cache counts: never more than its capacity, and in use.
    let weighed = governor.cached_token_bytes();
    assert!(
        weighed <= CAPACITY,
        "{cached} entries weighed {weighed} bytes exceed {CAPACITY}"
    );
    assert!(
        weighed >= CAPACITY / 2,
        "{cached} entries weighed {weighed} bytes: the cache is not in use"
    );
    // What it really holds: the entries' heap, then the process's resident memory.
    assert!(
        heap_held <= CAPACITY * REAL_PER_WEIGHED.0 / REAL_PER_WEIGHED.1,
        "the cache's entries hold {} of heap for a capacity of {}",
        mib(heap_held),
        mib(CAPACITY)
    );
    assert!(
        rss_end.saturating_sub(rss_start) <= RESIDENT_BOUND,
        "resident memory grew by {} for a capacity of {}",
        mib(rss_end.saturating_sub(rss_start)),
        mib(CAPACITY)
    );
    assert!(
        rss_end.saturating_sub(rss_warm) <= STEADY_BOUND,
        "resident memory grew by {} while {} more distinct tokens went through a full cache",
        mib(rss_end.saturating_sub(rss_warm)),
        TOKENS - WARM_UP
    );
}
