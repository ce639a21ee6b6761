//! The token path: `authorize()` of a fresh and of a known token, each beside its anchors
//! measured in the same run, every token bench cycling through many distinct tokens.
//!
//! Run: `cargo bench --bench authorize` (`--features metrics` adds the recorder bench).
//!
//! # Tokens
//!
//! Entra-shaped access tokens ([`common::token`]): v2, delegated, 20 groups, a display
//! name, 2,183 bytes each, RS256 under the TestIdp's 2048-bit key. 100,000 distinct ones
//! are signed once (`MANY_TOKENS`), on every core; the 10k set is their first 10,000
//! (`KNOWN_TOKENS`). Each token differs from every other in its `oid`, `sub`, `uti`,
//! groups and so its signature.
//!
//! Why so many: presenting one token again and again measures a token whose bytes, parsed
//! claims and signature all sit in L1/L2 and whose every branch is predicted, and lets
//! any per-token memo answer. Here two presentations of one token are 100,000 calls
//! apart (10,000 for the 10k set), so no memo short of one holding the whole set can
//! help. 100,000 tokens are about 220 MB of text (and their 256-byte signatures 26 MB):
//! far past any L2 (2 MiB a core on the machine measured) and past the L3 of most
//! servers. Some parts report more L3 than that (the 2-core VM measured reports
//! 480 MiB, shared with its host), so there the fresh-token benches may find part of the
//! set in L3; `authorize_known/100k-tokens` touches about 640 MB (the tokens and their
//! 420 MB of cache entries), past that too. 10,000 tokens (22 MB, 42 MB cached) is the
//! working set the cache's default budget is meant for.
//!
//! Every bench walks its set in one fixed pseudo-random order (`Cycle`: the same
//! permutation for every bench over the same set), not in allocation order, which a
//! hardware prefetcher could follow.
//!
//! Setup (before the first measurement, also under `-- --test`): signing the 100,000
//! tokens takes about 40 s on two cores (printed as `setup:`), verifying the
//! 110,000 known ones into the caches about 3 s more.
//!
//! # Benches (group `token`)
//!
//! - `raw_rs256/aws-lc-rs`: the floor any verifier pays for a token it has not seen: RSA
//!   PKCS#1 SHA-256 verify, with a key parsed once, of each of the 100,000 tokens'
//!   own signing input (`header.payload`, a slice of the token) and its own signature,
//!   split and base64url-decoded outside the measurement;
//! - `raw_rs256/jsonwebtoken-decode-typed`: the peer, `jsonwebtoken::decode` of the same
//!   100,000 tokens in the same order into a typed struct of the token's claims
//!   (`EntraV2Claims`: aud, iss, iat, nbf, exp, tid, oid, sub, uti, ver, azp, azpacr,
//!   name, preferred_username, scp, `groups: Vec<String>`; all required), with its
//!   `DecodingKey` built once and a `Validation` like the governor's: RS256 only, audience,
//!   issuer, `exp` and `nbf` with 300 s of leeway (the governor's default clock skew),
//!   `exp`/`nbf`/`aud`/`iss`/`sub` required; then `ver == "2.0"` and `tid` checked. It
//!   splits, base64url-decodes and parses each token (header, claims, signature) and
//!   verifies with the key's raw components, as `jsonwebtoken` does on every call. It does
//!   less than the governor (no lifetime bound, no GUID parsing, no principal, no
//!   decision);
//! - `authorize_fresh`: `authorize()` of the same 100,000 tokens in the same order, the
//!   verified-token cache off (`governor(&idp, false)`), so every call pays the whole path
//!   (envelope, key lookup, signature, claims, Entra rules, decision) exactly as a
//!   never-seen token does;
//! - `authorize_known/10k-tokens`: `authorize()` of tokens seen before, 10,000 distinct
//!   live tokens in play, all held by the verified-token cache at its default budget;
//! - `authorize_known/10k-tokens/as-received`: the same calls, each token copied into a
//!   fresh buffer just before its batch of eight calls, outside the measurement
//!   (`as_received`): a server has just read the token off the socket and parsed the
//!   header, so the presented bytes are in L1/L2, while the cache's own entries, the
//!   cached copy of the token compared against it among them, stay wherever 10,000
//!   entries put them. Without this a bench also measures fetching the presented token
//!   from DRAM (2.2 KB), which `authorize` cannot avoid in a bench and a server does
//!   not pay;
//! - `authorize_known/100k-tokens`: the same with all 100,000 in play, the cache's budget
//!   raised to 1 GiB so that it holds them all (about 430 MB weighed; the default 64 MiB
//!   holds about 16,000): a working set past L3, where a hit costs cache misses;
//! - `authorize_known/10k-tokens+recorder` (feature `metrics`): `authorize_known/10k-tokens`
//!   with a recorder installed (the Prometheus recorder of the service, never rendered:
//!   every key built, looked up and updated), against `authorize_known` whose metric
//!   calls find none;
//! - `sha256_moka/10k-tokens` and `sha256_moka/100k-tokens`: SHA-256 of the token plus a
//!   moka lookup, the common way to cache verified tokens, over the same two sets, and
//!   `sha256_moka/10k-tokens/as-received` beside `authorize_known/10k-tokens/as-received`;
//!
//! and, not token-path (each on the 10k set or its first token):
//!
//! - `authorize_known+audit` and `authorize_known+audit+shadow`: `authorize_known/10k-tokens`
//!   with an audit log (a sink that discards, `OnFull::Drop` so the measured thread
//!   never waits), without and with a shadow policy: the request path's cost of recording
//!   v2 inputs, and of a shadow policy, which the audit worker decides off that path;
//! - `shadow/decide_again`: the worker's cost per event, deciding a recorded event again
//!   under the shadow policy;
//! - `batch/filter_allowed/1000` and `batch/1000_single_decisions`: the batch question
//!   over 1,000 resources against 1,000 `authorize_principal` calls, same caller;
//! - `openai/check/1kib-chat-body`: the OpenAI-compatible routes' body step
//!   (`ModelRoute::check`: content type, one parse with unique keys, the model's
//!   resource, the decision) on a 1 KiB chat completion body, beside its two parts
//!   measured alone: `openai/authorize_principal` (the decision) and
//!   `openai/serde_json_value/1kib-chat-body` (parsing the same body into a
//!   `serde_json::Value`, what any handler reading the body pays).

mod common;

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use entra_governor::Governor;
use entra_governor::testing::TestIdp;

use common::{KNOWN_TOKENS, MANY_TOKENS, builder, example_policy, governor, ready};
use entra_governor::audit::{AuditEvent, AuditSink, AuditSinkError, MemorySink, OnFull};
use entra_governor::governance::replay::decide_again;
use entra_governor::{AuditLog, Policy};

/// The verified-token cache budget of `authorize_known/100k-tokens`: 100,000 entries
/// weigh about 430 MB (token text, verified claims, entry), so 1 GiB holds them all with
/// room to spare in its set-associative table.
const MANY_TOKENS_CACHE_BYTES: u64 = 1 << 30;

/// A sink that keeps nothing.
struct Discard;

#[async_trait::async_trait]
impl AuditSink for Discard {
    async fn write(&self, _batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        Ok(())
    }
}

/// The example policy without the `auditor` role: a shadow candidate.
fn candidate() -> Policy {
    let mut doc = example_policy().document().clone();
    doc.roles.remove("auditor");
    doc.bindings
        .retain(|b| !b.roles.iter().any(|r| r == "auditor"));
    Policy::from_document(doc).expect("candidate")
}

/// A governor with an audit log on `audit_rt` and, when `shadow`, a shadow policy.
fn audited(
    idp: &TestIdp,
    audit_rt: &tokio::runtime::Runtime,
    shadow: bool,
) -> (Governor, AuditLog) {
    let log = AuditLog::builder(Discard)
        .on_full(OnFull::Drop)
        .runtime(audit_rt.handle().clone())
        .build();
    let b = builder(idp).audit(log.clone());
    let b = if shadow {
        b.shadow_policy(candidate())
    } else {
        b
    };
    (b.build().expect("governor"), log)
}

/// The order every token bench presents its tokens in: a fixed pseudo-random permutation
/// of `0..n` (the same seed for every bench, so benches over the same set see the same
/// sequence), walked round and round. Not `0, 1, 2, ...`: tokens were allocated in that
/// order, and a sequential walk would let the hardware prefetcher fetch the next token.
#[derive(Clone)]
struct Cycle {
    order: Vec<u32>,
    at: usize,
}

impl Cycle {
    fn new(n: usize) -> Self {
        let mut order: Vec<u32> = (0..u32::try_from(n).expect("fewer than 2^32")).collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15; // xorshift64, fixed seed
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        Self { order, at: 0 }
    }

    /// The index of the token to present next.
    fn step(&mut self) -> usize {
        let i = self.order[self.at] as usize;
        self.at += 1;
        if self.at == self.order.len() {
            self.at = 0;
        }
        i
    }
}

/// Presentations per timed batch in the `as-received` benches: eight 2.2 KB tokens fit
/// in L1 and L2 together.
const RECEIVED_BATCH: u64 = 8;

/// Times `call` on the tokens of `set` in `cycle`'s order, each presented as a server
/// holds it right after reading the request: copied, outside the measurement, into a
/// fresh buffer (so in L1/L2) just before its batch of [`RECEIVED_BATCH`] calls, while
/// everything the callee keeps stays where its working set puts it.
fn as_received<O>(
    b: &mut criterion::Bencher<'_>,
    set: &[String],
    cycle: &mut Cycle,
    mut call: impl FnMut(&str) -> O,
) {
    b.iter_custom(|iters| {
        let mut total = std::time::Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(RECEIVED_BATCH);
            let batch: Vec<String> = (0..n).map(|_| set[cycle.step()].clone()).collect();
            let started = Instant::now();
            for t in &batch {
                black_box(call(black_box(t)));
            }
            total += started.elapsed();
            left -= n;
        }
        total
    })
}

/// The claims of the bench's Entra v2 delegated access tokens, typed: what a peer
/// decodes with `jsonwebtoken::decode` (every field required, `groups` a list).
#[derive(serde::Deserialize)]
#[expect(
    dead_code,
    reason = "decoded as a peer would; only `ver` and `tid` are checked"
)]
struct EntraV2Claims {
    aud: String,
    iss: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    tid: String,
    oid: String,
    sub: String,
    uti: String,
    ver: String,
    azp: String,
    azpacr: String,
    name: String,
    preferred_username: String,
    scp: String,
    groups: Vec<String>,
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let idp = rt.block_on(TestIdp::start());
    let started = Instant::now();
    let many = common::tokens(&idp, MANY_TOKENS);
    eprintln!(
        "setup: {MANY_TOKENS} tokens signed in {:.1} s on {} threads",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    );
    let (shortest, longest) = many.iter().fold((usize::MAX, 0), |(lo, hi), t| {
        (lo.min(t.len()), hi.max(t.len()))
    });
    eprintln!("token size: {shortest}..={longest} bytes");
    assert_eq!(
        many.iter().collect::<HashSet<_>>().len(),
        MANY_TOKENS,
        "every token distinct"
    );
    // The 10k set is the first 10,000 of the 100k set.
    let tokens = &many[..KNOWN_TOKENS];

    let fresh = governor(&idp, false);
    let known = governor(&idp, true);
    // A budget that holds all 100,000 (the default, 64 MiB, holds about 16,000).
    let known_many = builder(&idp)
        .verified_token_cache(Some(MANY_TOKENS_CACHE_BYTES))
        .build()
        .expect("governor");
    // Keys are fetched, and every known token verified and cached, outside the
    // measurements.
    let allowed =
        |g: &Governor, t: &str| rt.block_on(g.authorize(t, "training.submit", "models/exp-1"));
    assert!(allowed(&fresh, &many[0]).expect("valid").is_allowed());
    let started = Instant::now();
    for t in tokens {
        assert!(allowed(&known, t).expect("valid").is_allowed());
    }
    for t in &many {
        assert!(allowed(&known_many, t).expect("valid").is_allowed());
    }
    eprintln!(
        "setup: {} tokens verified into the caches in {:.1} s",
        KNOWN_TOKENS + MANY_TOKENS,
        started.elapsed().as_secs_f64()
    );
    for (g, n) in [(&known, KNOWN_TOKENS), (&known_many, MANY_TOKENS)] {
        assert_eq!(g.cached_tokens(), n as u64, "every token cached");
        eprintln!(
            "verified-token cache: {n} tokens weigh {} MB",
            g.cached_token_bytes() / 1_000_000
        );
    }

    let mut g = c.benchmark_group("token");
    fresh_benches(&mut g, &idp, &fresh, &many);
    let mut cycle = Cycle::new(KNOWN_TOKENS);
    g.bench_function("authorize_known/10k-tokens", |b| {
        b.iter(|| {
            let t = black_box(&tokens[cycle.step()]);
            ready(known.authorize(t, "training.submit", "models/exp-1")).unwrap()
        })
    });
    let mut cycle = Cycle::new(KNOWN_TOKENS);
    g.bench_function("authorize_known/10k-tokens/as-received", |b| {
        as_received(b, tokens, &mut cycle, |t| {
            ready(known.authorize(t, "training.submit", "models/exp-1")).unwrap()
        })
    });
    let mut cycle = Cycle::new(MANY_TOKENS);
    g.bench_function("authorize_known/100k-tokens", |b| {
        b.iter(|| {
            let t = black_box(&many[cycle.step()]);
            ready(known_many.authorize(t, "training.submit", "models/exp-1")).unwrap()
        })
    });
    #[cfg(feature = "metrics")]
    {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(
                    entra_governor::observe::DECISION_DURATION_SECONDS.to_owned(),
                ),
                entra_governor::observe::DECISION_DURATION_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        // Built and warmed under the recorder: its request-path handles are the recorder's.
        let recorded = metrics::with_local_recorder(&recorder, || {
            let recorded = governor(&idp, true);
            for t in tokens {
                assert!(allowed(&recorded, t).expect("valid").is_allowed());
            }
            recorded
        });
        assert_eq!(recorded.cached_tokens(), KNOWN_TOKENS as u64);
        // The recorder's upkeep, as the service runs it (there every 5 s and at each
        // scrape; here every 100 ms, the same work in smaller drains): histogram samples
        // drained into buckets, so memory stays bounded as it does in production.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let upkeep = {
            let (handle, stop) = (handle.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    handle.run_upkeep();
                }
            })
        };
        let mut cycle = Cycle::new(KNOWN_TOKENS);
        g.bench_function("authorize_known/10k-tokens+recorder", |b| {
            let _local = metrics::set_default_local_recorder(&recorder);
            b.iter(|| {
                let t = black_box(&tokens[cycle.step()]);
                ready(recorded.authorize(t, "training.submit", "models/exp-1")).unwrap()
            })
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        upkeep.join().unwrap();
        let allows = r#"entra_governor_decisions_total{outcome="allow",reason="allow"}"#;
        let text = handle.render();
        let line = text.lines().find(|l| l.starts_with(allows));
        eprintln!(
            "authorize_known/10k-tokens+recorder: {}",
            line.expect("recorded")
        );
    }
    for (name, set) in [
        ("sha256_moka/10k-tokens", tokens),
        ("sha256_moka/100k-tokens", &many[..]),
    ] {
        let moka: moka::sync::Cache<[u8; 32], u64> = moka::sync::Cache::new(set.len() as u64);
        for t in set {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
            moka.insert(d.as_ref().try_into().unwrap(), 1);
        }
        moka.run_pending_tasks();
        assert_eq!(moka.entry_count(), set.len() as u64, "every digest cached");
        let lookup = |t: &str| {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
            let key: [u8; 32] = d.as_ref().try_into().unwrap();
            moka.get(&key).unwrap()
        };
        let mut cycle = Cycle::new(set.len());
        g.bench_function(name, |b| b.iter(|| lookup(black_box(&set[cycle.step()]))));
        if set.len() == KNOWN_TOKENS {
            let mut cycle = Cycle::new(set.len());
            g.bench_function(format!("{name}/as-received"), |b| {
                as_received(b, set, &mut cycle, lookup)
            });
        }
    }
    drop(known_many);
    shadow_benches(&mut g, &rt, &idp, tokens);
    batch_benches(&mut g, &rt, &known, &tokens[0]);
    openai_benches(&mut g, &rt, &known, &tokens[0]);
    g.finish();
}

/// The fresh-token path and its two anchors, each over the same `tokens` in the same
/// order: the RSA floor, the peer, and `authorize()` with the verified-token cache off.
fn fresh_benches(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    idp: &TestIdp,
    fresh: &Governor,
    tokens: &[String],
) {
    let jwk = idp.jwk(&idp.signing_kid(), "").expect("published key");
    let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let (n, e) = (component("n"), component("e"));
    let parsed: ParsedPublicKey = RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    // Each token's signing input (a slice of the token) and its own signature, split and
    // decoded here, outside the measurement.
    let signed: Vec<(&str, Box<[u8]>)> = tokens
        .iter()
        .map(|t| {
            let (input, signature) = t.rsplit_once('.').unwrap();
            (input, URL_SAFE_NO_PAD.decode(signature).unwrap().into())
        })
        .collect();
    let mut cycle = Cycle::new(tokens.len());
    g.bench_function("raw_rs256/aws-lc-rs", |b| {
        b.iter(|| {
            let (input, signature) = &signed[cycle.step()];
            parsed
                .verify_sig(black_box(input.as_bytes()), black_box(signature))
                .unwrap()
        })
    });

    // The peer's settings, as close to the governor's as `Validation` allows: RS256 only,
    // the audience and issuer, `exp` and `nbf` with the governor's default clock skew
    // (300 s), the registered claims required; the key built once.
    let key = jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[idp.client_id()]);
    validation.set_issuer(&[format!("{}/{}/v2.0", idp.authority(), idp.tenant_id())]);
    validation.leeway = 300;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    let tenant = idp.tenant_id().as_str().to_owned();
    let decode = |token: &str| {
        let claims = jsonwebtoken::decode::<EntraV2Claims>(token, &key, &validation)
            .expect("valid")
            .claims;
        // The two Entra rules a peer adds by hand: the token version and its tenant.
        claims.ver == "2.0" && claims.tid == tenant
    };
    assert!(tokens.iter().take(100).all(|t| decode(t)), "typed decode");
    let mut cycle = Cycle::new(tokens.len());
    g.bench_function("raw_rs256/jsonwebtoken-decode-typed", |b| {
        b.iter(|| decode(black_box(&tokens[cycle.step()])))
    });

    let mut cycle = Cycle::new(tokens.len());
    g.bench_function("authorize_fresh", |b| {
        b.iter(|| {
            let t = black_box(&tokens[cycle.step()]);
            ready(fresh.authorize(t, "training.submit", "models/exp-1")).unwrap()
        })
    });
    assert_eq!(fresh.cached_tokens(), 0, "the cache is off");
}

/// The batch question over 1,000 resources (half allowed) against 1,000 single
/// decisions of the same caller, same policy, no audit log.
fn batch_benches(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    governor: &Governor,
    token: &str,
) {
    let caller = rt.block_on(governor.verify(token)).expect("valid");
    let resources: Vec<String> = (0..1_000)
        .map(|i| match i % 2 {
            0 => format!("models/exp-{i}"),
            _ => format!("models/prod-{i}"),
        })
        .collect();
    let context = entra_governor::RequestContext::default();
    let allowed = ready(governor.filter_allowed(&caller, "training.submit", &resources, &context))
        .expect("decided");
    assert_eq!(allowed.len(), 500, "half the resources allowed");
    g.bench_function("batch/filter_allowed/1000", |b| {
        b.iter(|| {
            ready(governor.filter_allowed(
                &caller,
                "training.submit",
                black_box(&resources),
                &context,
            ))
            .unwrap()
            .len()
        })
    });
    g.bench_function("batch/1000_single_decisions", |b| {
        b.iter(|| {
            let mut n = 0;
            for resource in &resources {
                let d = ready(governor.authorize_principal(
                    &caller,
                    "training.submit",
                    black_box(resource),
                    &context,
                ))
                .unwrap();
                n += usize::from(d.is_allowed());
            }
            n
        })
    });
}

/// A chat completion body of about 1 KiB: a system prompt and a few turns.
fn chat_body() -> Vec<u8> {
    let turn = |role: &str, i: usize| serde_json::json!({ "role": role, "content": format!("turn {i}: {}", "lorem ipsum dolor sit amet ".repeat(5)) });
    let messages: Vec<_> = (0..6)
        .map(|i| turn(if i % 2 == 0 { "user" } else { "assistant" }, i))
        .collect();
    serde_json::json!({
        "model": "exp-1",
        "messages": messages,
        "temperature": 0.2,
        "max_tokens": 256,
        "stream": false,
    })
    .to_string()
    .into_bytes()
}

/// The OpenAI-compatible body step beside the decision and the parse it is made of.
fn openai_benches(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    governor: &Governor,
    token: &str,
) {
    use entra_governor::ai::openai::ModelRoute;
    let caller = std::sync::Arc::new(rt.block_on(governor.verify(token)).expect("valid"));
    let route = ModelRoute::new(governor.clone())
        .with_template("models/{model}")
        .unwrap();
    let body = chat_body();
    eprintln!("chat body: {} bytes", body.len());
    let context = entra_governor::RequestContext::default();
    let check = || {
        ready(route.check(
            &caller,
            Some(b"application/json"),
            black_box(&body),
            "/v1/chat/completions",
            &context,
        ))
    };
    let (request, decision) = check().expect("allowed");
    assert_eq!(
        (request.resource(), decision.is_allowed()),
        ("models/exp-1", true)
    );
    g.bench_function("openai/check/1kib-chat-body", |b| {
        b.iter(|| check().is_ok())
    });
    g.bench_function("openai/authorize_principal", |b| {
        b.iter(|| {
            ready(governor.authorize_principal(
                &caller,
                "inference.invoke",
                black_box("models/exp-1"),
                &context,
            ))
            .unwrap()
            .is_allowed()
        })
    });
    g.bench_function("openai/serde_json_value/1kib-chat-body", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).is_ok())
    });
}

fn shadow_benches(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    idp: &TestIdp,
    tokens: &[String],
) {
    let audit_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("audit runtime");
    for (name, shadow) in [
        ("authorize_known+audit", false),
        ("authorize_known+audit+shadow", true),
    ] {
        let (governor, log) = audited(idp, &audit_rt, shadow);
        for t in tokens {
            rt.block_on(governor.authorize(t, "training.submit", "models/exp-1"))
                .expect("valid");
        }
        let mut cycle = Cycle::new(tokens.len());
        g.bench_function(name, |b| {
            b.iter(|| {
                let t = black_box(&tokens[cycle.step()]);
                ready(governor.authorize(t, "training.submit", "models/exp-1")).unwrap()
            })
        });
        eprintln!(
            "{name}: {} events recorded, {} dropped (the worker fell behind)",
            log.recorded(),
            log.dropped()
        );
        if shadow {
            let report = governor.shadow_report();
            eprintln!("{name}: the shadow decided {} events", report.decisions);
        }
    }
    // One recorded v2 event, decided again as the shadow worker does.
    let sink = MemorySink::new();
    let log = AuditLog::builder(sink.clone())
        .runtime(audit_rt.handle().clone())
        .build();
    let recorder = builder(idp).audit(log).build().expect("governor");
    rt.block_on(recorder.authorize(&tokens[0], "training.submit", "models/exp-1"))
        .expect("valid");
    rt.block_on(recorder.shutdown());
    let event = sink.events().pop().expect("one event");
    let shadow = candidate().compiled();
    g.bench_function("shadow/decide_again", |b| {
        b.iter(|| decide_again(&shadow, black_box(&event), |_| false).expect("a decision"))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
