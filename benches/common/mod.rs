//! What the token benches share: Entra-shaped tokens, a governor on the example policy,
//! and a poll for calls that never wait.
#![allow(dead_code)] // each bench uses its own part

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use entra_governor::testing::TestIdp;
use entra_governor::{Cloud, Governor, Policy};

/// The example policy's data-scientist group: its members may submit training on
/// `models/exp-*` and invoke those models.
pub const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

/// Distinct live tokens in play for the `authorize_known` benches.
pub const KNOWN_TOKENS: usize = 10_000;

/// Distinct live tokens of the large working set (`authorize`'s fresh-token benches and
/// `authorize_known/100k-tokens`): about 220 MB of token text, past L2 and most L3 caches.
pub const MANY_TOKENS: usize = 100_000;

/// Polls a future that completes without waiting (cache hits, known keys): no executor in
/// the measurement.
///
/// # Panics
/// When the future waits (the measured call did I/O).
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the measured call waited on I/O"),
    }
}

/// Token number `n`: Entra-shaped (v2, delegated, 20 groups of which one is
/// [`DATA_SCIENTISTS`], a display name; about 2.2 KB), distinct for every `n`.
pub fn token(idp: &TestIdp, n: usize) -> String {
    let mut groups: Vec<String> = (0..19)
        .map(|i| format!("{:08x}-0000-4000-8000-{:012x}", n, i))
        .collect();
    groups.push(DATA_SCIENTISTS.to_owned());
    idp.token()
        .scopes("Training.Manage Inference.Invoke")
        .groups(groups)
        .claim("name", serde_json::json!("Ada Lovelace"))
        .sign()
}

/// Tokens `0..count` ([`token`]), in order, signed on every available core (RSA signing
/// dominates: on two cores 100,000 tokens take about 40 s). A [`TestIdp`] is shared by
/// reference: its token builder locks the key ring only to clone the signing key.
pub fn tokens(idp: &TestIdp, count: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, count.max(1));
    let chunk = count.div_ceil(threads);
    std::thread::scope(|s| {
        let signers: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * chunk..((t + 1) * chunk).min(count);
                s.spawn(move || range.map(|n| token(idp, n)).collect::<Vec<_>>())
            })
            .collect();
        signers
            .into_iter()
            .flat_map(|signer| signer.join().expect("signing thread"))
            .collect()
    })
}

/// The example policy.
pub fn example_policy() -> Policy {
    Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml"))
        .expect("example policy")
}

/// A governor for `idp` on `examples/policy.toml`, no periodic key refresh, the
/// verified-token cache on (default capacity) or off.
pub fn governor(idp: &TestIdp, cache: bool) -> Governor {
    let b = builder(idp);
    let b = if cache {
        b
    } else {
        b.verified_token_cache(None)
    };
    b.build().expect("governor")
}

/// The builder behind [`governor`], cache on.
pub fn builder(idp: &TestIdp) -> entra_governor::GovernorBuilder {
    let policy = example_policy();
    Governor::builder()
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback()
        .key_refresh_interval(None)
        .policy(policy)
}
