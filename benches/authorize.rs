//! The token path: `authorize()` of a fresh and of a known token, each beside its anchors
//! measured in the same run.
//!
//! Run: `cargo bench --bench authorize`.
//!
//! - `raw_rs256/aws-lc-rs`: RSA PKCS#1 SHA-256 verify of the token with a pre-parsed key,
//!   the floor any verifier pays for a token it has not seen;
//! - `raw_rs256/jsonwebtoken-decode`: what peers do (re-parses key and claims each call);
//! - `authorize_fresh`: `authorize()` with the verified-token cache off, so every call pays
//!   the whole path (envelope, key lookup, signature, claims, Entra rules, decision) exactly
//!   as a never-seen token does;
//! - `authorize_known`: `authorize()` of tokens seen before, 10,000 distinct live tokens in
//!   play, cache on;
//! - `authorize_known/10k-tokens+recorder` (feature `metrics`): the same with a recorder
//!   installed (the Prometheus recorder of the service, never rendered: every key built,
//!   looked up and updated), against `authorize_known` whose metric calls find none;
//! - `sha256_moka`: SHA-256 of the token plus a moka lookup, the common way to cache;
//! - `authorize_known+audit` and `authorize_known+audit+shadow`: the same with an audit
//!   log (a sink that discards, `OnFull::Drop` so the measured thread never waits), without
//!   and with a shadow policy: the request path's cost of recording v2 inputs, and of a
//!   shadow policy, which the audit worker decides off that path;
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
//!
//! Tokens are Entra-shaped: v2, delegated, 20 groups, 2,183 bytes.

mod common;

use std::hint::black_box;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use entra_governor::Governor;
use entra_governor::testing::TestIdp;

use common::{KNOWN_TOKENS, builder, example_policy, governor, ready, token};
use entra_governor::audit::{AuditEvent, AuditSink, AuditSinkError, MemorySink, OnFull};
use entra_governor::governance::replay::decide_again;
use entra_governor::{AuditLog, Policy};

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

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let idp = rt.block_on(TestIdp::start());
    let sample = token(&idp, 0);
    let fresh = governor(&idp, false);
    let known = governor(&idp, true);
    // Keys are fetched once, outside the measurements.
    let allowed =
        |g: &Governor, t: &str| rt.block_on(g.authorize(t, "training.submit", "models/exp-1"));
    assert!(allowed(&fresh, &sample).expect("valid").is_allowed());
    let tokens: Vec<String> = (0..KNOWN_TOKENS).map(|n| token(&idp, n)).collect();
    for t in &tokens {
        assert!(allowed(&known, t).expect("valid").is_allowed());
    }
    assert_eq!(
        known.cached_tokens(),
        KNOWN_TOKENS as u64,
        "every token cached"
    );
    eprintln!("token size: {} bytes", sample.len());

    let jwk = idp.jwk(&idp.signing_kid(), "").expect("published key");
    let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let (n, e) = (component("n"), component("e"));
    let parsed: ParsedPublicKey = RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    let (input, signature) = sample.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();

    let mut g = c.benchmark_group("token");
    g.bench_function("raw_rs256/aws-lc-rs", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(input.as_bytes()), black_box(&signature))
                .unwrap()
        })
    });
    let key = jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[idp.client_id()]);
    validation.set_issuer(&[format!("{}/{}/v2.0", idp.authority(), idp.tenant_id())]);
    g.bench_function("raw_rs256/jsonwebtoken-decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&sample), &key, &validation)
                .unwrap()
        })
    });
    g.bench_function("authorize_fresh", |b| {
        b.iter(|| {
            ready(fresh.authorize(black_box(&sample), "training.submit", "models/exp-1")).unwrap()
        })
    });
    let mut i = 0;
    g.bench_function("authorize_known/10k-tokens", |b| {
        b.iter(|| {
            i = (i + 1) % KNOWN_TOKENS;
            ready(known.authorize(black_box(&tokens[i]), "training.submit", "models/exp-1"))
                .unwrap()
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
            for t in &tokens {
                assert!(allowed(&recorded, t).expect("valid").is_allowed());
            }
            recorded
        });
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
        g.bench_function("authorize_known/10k-tokens+recorder", |b| {
            let _local = metrics::set_default_local_recorder(&recorder);
            b.iter(|| {
                i = (i + 1) % KNOWN_TOKENS;
                let token = black_box(&tokens[i]);
                ready(recorded.authorize(token, "training.submit", "models/exp-1")).unwrap()
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
    let moka: moka::sync::Cache<[u8; 32], u64> = moka::sync::Cache::new(100_000);
    for t in &tokens {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
        moka.insert(d.as_ref().try_into().unwrap(), 1);
    }
    let mut j = 0;
    g.bench_function("sha256_moka/10k-tokens", |b| {
        b.iter(|| {
            j = (j + 1) % KNOWN_TOKENS;
            let d = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                black_box(&tokens[j]).as_bytes(),
            );
            let key: [u8; 32] = d.as_ref().try_into().unwrap();
            moka.get(&key).unwrap()
        })
    });
    shadow_benches(&mut g, &rt, &idp, &tokens);
    batch_benches(&mut g, &rt, &known, &tokens[0]);
    openai_benches(&mut g, &rt, &known, &tokens[0]);
    g.finish();
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
    let caller = rt.block_on(governor.verify(token)).expect("valid");
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
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % KNOWN_TOKENS;
                ready(governor.authorize(black_box(&tokens[i]), "training.submit", "models/exp-1"))
                    .unwrap()
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
