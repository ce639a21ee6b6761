//! Throughput of `authorize()` on 1 and on 2 threads sharing one governor.
//!
//! Run: `cargo bench --bench throughput`.
//!
//! - `throughput/authorize_known/{1,2}-thread(s)`: tokens seen before, 10,000 distinct live
//!   tokens in play, verified-token cache on (default capacity, which holds them all);
//! - `throughput/authorize_fresh/{1,2}-thread(s)`: cache off
//!   (`.verified_token_cache(None)`), so every call pays the whole verification
//!   (envelope, key lookup, RSA signature, claims, Entra rules) and the decision.
//!
//! Criterion reports each as calls per second (`thrpt`); the target is 2 threads ≥ 1.8 × 1
//! thread for both. One sample of `iters` calls: the threads are spawned and each given
//! its share (`iters / threads`, the remainder to the first ones) *before* the clock
//! starts; they wait on a barrier with the timing thread, which reads the clock when the
//! barrier opens and again once every thread has finished its share and been joined. So
//! the timed region is the calls plus one barrier wake-up and the joins, tens of
//! microseconds against samples of many milliseconds. Calls complete without waiting
//! (known keys), so each thread polls them directly: no async runtime in the measurement.
//!
//! Tokens are Entra-shaped: v2, delegated, 20 groups, 2,183 bytes.

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use entra_governor::Governor;
use entra_governor::testing::TestIdp;

use common::{KNOWN_TOKENS, governor, ready, token};

/// Runs `iters` calls of `call(thread, i)` split over `threads` threads and returns the
/// wall time from the barrier to the last join (see the module docs).
fn run(threads: usize, iters: u64, call: &(impl Fn(usize, u64) + Sync)) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for thread in 0..threads {
            let share =
                iters / threads as u64 + u64::from((thread as u64) < iters % threads as u64);
            let start = &start;
            s.spawn(move || {
                start.wait();
                for i in 0..share {
                    call(thread, i);
                }
            });
        }
        start.wait();
        let began = Instant::now();
        // The scope joins every thread before returning.
        began
    })
    .elapsed()
}

fn label(threads: usize) -> String {
    if threads == 1 {
        "1-thread".to_owned()
    } else {
        format!("{threads}-threads")
    }
}

fn authorize(governor: &Governor, token: &str) {
    let decision = ready(governor.authorize(black_box(token), "training.submit", "models/exp-1"))
        .expect("a valid token");
    assert!(decision.is_allowed());
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let idp = rt.block_on(TestIdp::start());
    let fresh = governor(&idp, false);
    let known = governor(&idp, true);
    let tokens: Vec<String> = (0..KNOWN_TOKENS).map(|n| token(&idp, n)).collect();
    // Keys are fetched, and every token verified and cached once, outside the measurements.
    for t in &tokens {
        for g in [&fresh, &known] {
            let decision = rt.block_on(g.authorize(t, "training.submit", "models/exp-1"));
            assert!(decision.expect("a valid token").is_allowed());
        }
    }
    assert_eq!(known.cached_tokens(), KNOWN_TOKENS as u64);

    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Elements(1));
    for (name, governor) in [("authorize_known", &known), ("authorize_fresh", &fresh)] {
        for threads in [1, 2] {
            // Each thread walks all tokens from its own starting point.
            let call = |thread: usize, i: u64| {
                let n = (thread * KNOWN_TOKENS / threads + i as usize) % KNOWN_TOKENS;
                authorize(governor, &tokens[n]);
            };
            g.bench_function(BenchmarkId::new(name, label(threads)), |b| {
                b.iter_custom(|iters| run(threads, iters, &call))
            });
        }
    }
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
