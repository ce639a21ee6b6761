//! A failing identity provider and a failing Microsoft Graph, against the local look-alike:
//! faults of the JWKS endpoint alone, unusable keys that reuse a real modulus, rotation and
//! unknown-`kid` floods under load, Graph storms under load. Complements `tests/verify/keys.rs`
//! (discovery faults, cache, single flight) and `tests/decide/graph.rs` (the resolver alone).
//! Every assertion is on an outcome or a request count, never on elapsed time.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_governor::http::Refusal;
use entra_governor::testing::{GraphMode, Mode, TestIdp};
use entra_governor::{Cloud, GroupId, ObjectId, Reason, TokenError};
use serde_json::{Value, json};

use common::{builder, setup};

/// A fault of the JWKS endpoint and the reason it must produce, given the idp's host.
type Case = (Mode, Box<dyn Fn(&str) -> String>);

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn host(idp: &TestIdp) -> String {
    idp.authority().trim_start_matches("http://").to_owned()
}

#[track_caller]
fn keys_unavailable(err: TokenError) -> String {
    let refusal = Refusal::from_token_error(&err, &Cloud::global());
    assert_eq!(
        (refusal.status, refusal.retry_after),
        (503, Some(5)),
        "{err:?}"
    );
    assert_eq!(refusal.www_authenticate, None);
    match err {
        TokenError::KeysUnavailable { reason } => reason,
        other => panic!("expected KeysUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn jwks_faults_while_discovery_is_fine() {
    let cases: Vec<Case> = vec![
        (
            Mode::Status(500),
            Box::new(|h| format!("{h} answered HTTP 500")),
        ),
        (
            Mode::Status(404),
            Box::new(|h| format!("{h} answered HTTP 404")),
        ),
        (
            Mode::Garbage,
            Box::new(|h| format!("{h}: the JWKS is not valid JSON")),
        ),
        (
            Mode::HugeBody(600 * 1024),
            Box::new(|h| format!("{h} answered more than 524288 bytes")),
        ),
        (
            Mode::HugeBody(2),
            Box::new(|h| format!("{h}: the JWKS is not valid JSON")),
        ),
        (
            Mode::Slow(Duration::from_secs(5)),
            Box::new(|h| format!("request to {h} failed: timed out")),
        ),
        (
            Mode::RedirectTo("http://127.0.0.2:9/keys".into()),
            Box::new(|h| format!("{h} answered with a redirect, which is not followed")),
        ),
    ];
    for (mode, expected) in cases {
        let idp = TestIdp::start().await;
        let g = builder(&idp)
            .http_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        idp.set_jwks_mode(Some(mode.clone()));
        let reason = keys_unavailable(g.verify(&idp.token().sign()).await.unwrap_err());
        assert_eq!(reason, expected(&host(&idp)), "{mode:?}");
        assert_eq!(idp.discovery_requests(), 1, "{mode:?}");
        assert_eq!(idp.jwks_requests(), 1, "{mode:?}");
    }
    // A JWKS that holds no usable key.
    let idp = TestIdp::start().await;
    let g = builder(&idp).build().unwrap();
    idp.remove_key(&idp.signing_kid());
    idp.publish_raw_jwk(json!({"kty":"RSA","use":"enc","kid":"e","n":"AQAB","e":"AQAB"}));
    let reason = keys_unavailable(g.verify(&idp.token().sign()).await.unwrap_err());
    assert_eq!(
        reason,
        format!("{}: the JWKS holds no usable RS256 signing key", host(&idp))
    );
    // Down: the transport error names the host and nothing else.
    let idp = TestIdp::start().await;
    let g = builder(&idp).build().unwrap();
    idp.set_jwks_mode(Some(Mode::Down));
    let reason = keys_unavailable(g.verify(&idp.token().sign()).await.unwrap_err());
    assert!(
        reason.starts_with(&format!("request to {} failed: ", host(&idp))),
        "{reason}"
    );
}

#[tokio::test]
async fn jwks_down_at_start_then_back_accepts_nothing_meanwhile() {
    let (idp, g) = setup().await;
    idp.set_jwks_mode(Some(Mode::Down));
    let valid = idp.token().sign();
    for token in [
        valid.clone(),
        idp.token().sign_with_foreign_key().sign(),
        idp.token().kid("anything").sign(),
    ] {
        for _ in 0..10 {
            keys_unavailable(g.verify(&token).await.unwrap_err());
        }
    }
    // The bootstrap backoff (1 s, doubling) bounds the fetches: not one per request.
    assert!(idp.jwks_requests() <= 2, "{}", idp.jwks_requests());
    assert_eq!(
        idp.discovery_requests(),
        1,
        "discovery is kept once it succeeded"
    );
    idp.set_jwks_mode(None);
    // The next fetch is due once the backoff (1 s, or 2 s after a second failure) ends.
    let mut verified = g.verify(&valid).await;
    for _ in 0..100 {
        if verified.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        verified = g.verify(&valid).await;
    }
    let p = verified.unwrap();
    assert_eq!(p.tenant(), &idp.tenant_id());
    assert_eq!(g.key_ids(), vec![idp.signing_kid()]);
}

#[tokio::test]
async fn jwks_faults_after_a_good_set_keep_the_last_known_good() {
    let (idp, g) = setup().await;
    let old_kid = idp.signing_kid();
    g.verify(&idp.token().sign()).await.unwrap();
    for mode in [
        Mode::Status(503),
        Mode::Garbage,
        Mode::HugeBody(600 * 1024),
        Mode::Down,
    ] {
        let (idp, g) = setup().await;
        g.verify(&idp.token().sign()).await.unwrap();
        let old = idp.signing_kid();
        idp.set_jwks_mode(Some(mode.clone()));
        let new_kid = idp.rotate();
        // The new key cannot be fetched: unknown, never accepted, never a 503.
        let err = g.verify(&idp.token().sign()).await.unwrap_err();
        assert_eq!(err, TokenError::UnknownKey { kid: new_kid }, "{mode:?}");
        // Tokens of the old key keep verifying.
        g.verify(&idp.token().kid(old.as_str()).sign())
            .await
            .unwrap();
        assert_eq!(g.key_ids(), vec![old], "{mode:?}");
        assert_eq!(idp.jwks_requests(), 2, "{mode:?}");
    }
    assert_eq!(g.key_ids(), vec![old_kid]);
}

#[tokio::test]
async fn unusable_keys_are_ignored_even_with_a_real_modulus() {
    let idp = TestIdp::start().await;
    let g = builder(&idp).build().unwrap();
    // A key the idp holds but does not publish as such: each variant below carries its
    // real modulus, so a verifier that used the entry would accept the token.
    let held = idp.add_key();
    idp.remove_key(&held);
    let jwk = idp.jwk(&held, &idp.issuer()).unwrap();
    let variant = |kid: &str, edits: &[(&str, Value)], removes: &[&str]| {
        let mut v = jwk.clone();
        v["kid"] = json!(kid);
        for (k, val) in edits {
            v[*k] = val.clone();
        }
        for k in removes {
            v.as_object_mut().unwrap().remove(*k);
        }
        v
    };
    let n = jwk["n"].as_str().unwrap().to_owned();
    let short_n = b64(&URL_SAFE_NO_PAD.decode(&n).unwrap()[..128]);
    let variants = [
        variant("enc", &[("use", json!("enc"))], &[]),
        variant("hs256", &[("alg", json!("HS256"))], &[]),
        variant("ps256", &[("alg", json!("PS256"))], &[]),
        variant("ec", &[("kty", json!("EC"))], &[]),
        variant("oct", &[("kty", json!("oct")), ("k", json!(n))], &[]),
        variant("e1", &[("e", json!("AQ"))], &[]),
        variant("e-even", &[("e", json!("AAI"))], &[]),
        variant("e-huge", &[("e", json!(b64([1u8; 9])))], &[]),
        variant("short", &[("n", json!(short_n))], &[]),
        variant("no-n", &[], &["n"]),
        variant("n-number", &[("n", json!(65537))], &[]),
        variant("", &[], &[]),
    ];
    for v in &variants {
        idp.publish_raw_jwk(v.clone());
    }
    idp.publish_raw_jwk(variant("control", &[], &[]));
    g.verify(&idp.token().sign()).await.unwrap();
    let mut kids = g.key_ids();
    kids.sort();
    let mut expected = vec!["control".to_owned(), idp.signing_kid()];
    expected.sort();
    assert_eq!(kids, expected);

    let payload = idp.token().claims().to_string();
    let signed = |kid: &str| {
        let header = json!({"typ":"JWT","alg":"RS256","kid":kid}).to_string();
        let input = format!("{}.{}", b64(header), b64(&payload));
        let sig = idp.sign_raw(&held, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig))
    };
    g.verify(&signed("control")).await.unwrap();
    for v in &variants {
        let kid = v["kid"].as_str().unwrap();
        if kid.is_empty() {
            continue;
        }
        assert_eq!(
            g.verify(&signed(kid)).await.unwrap_err(),
            TokenError::UnknownKey { kid: kid.into() }
        );
    }
    assert_eq!(idp.jwks_requests(), 2, "the initial fetch and one refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load() {
    let (idp, g) = setup().await;
    let old_kid = idp.signing_kid();
    let old = Arc::new(idp.token().sign());
    g.verify(&old).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (g, t) = (g.clone(), old.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..5 {
                out.push(("old", g.verify(&t).await));
                tokio::task::yield_now().await;
            }
            out
        }));
    }
    let new_kid = idp.rotate();
    let new = Arc::new(idp.token().sign());
    for _ in 0..100 {
        let (g, t) = (g.clone(), new.clone());
        tasks.push(tokio::spawn(
            async move { vec![("new", g.verify(&t).await)] },
        ));
    }
    let (mut ok_old, mut unknown_old, mut ok_new) = (0, 0, 0);
    for task in tasks {
        for (which, result) in task.await.unwrap() {
            match (which, result) {
                ("old", Ok(_)) => ok_old += 1,
                ("old", Err(TokenError::UnknownKey { kid })) if kid == old_kid => {
                    unknown_old += 1;
                }
                ("new", Ok(_)) => ok_new += 1,
                (which, other) => panic!("{which}: {other:?}"),
            }
        }
    }
    assert_eq!(ok_old + unknown_old, 500);
    assert_eq!(ok_new, 100);
    assert_eq!(idp.jwks_requests(), 2, "exactly one refetch");
    assert_eq!(idp.discovery_requests(), 1);
    assert_eq!(g.key_ids(), vec![new_kid]);
}

/// A distinct, unpublished, random-looking `kid` for each `i`: derived from `i`
/// (splitmix64), so every run sends the same kids.
fn unknown_kid(i: usize) -> String {
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{i}-{}", b64((z ^ (z >> 31)).to_le_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_makes_one_fetch_and_valid_tokens_keep_verifying() {
    let (idp, g) = setup().await;
    let valid = Arc::new(idp.token().sign());
    g.verify(&valid).await.unwrap();
    // Unknown kids need no valid signature: the key lookup comes first.
    let template = idp.token().sign();
    let (_, rest) = template.split_once('.').unwrap();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let kid = unknown_kid(i);
        let header = json!({"typ":"JWT","alg":"RS256","kid":kid}).to_string();
        let token = format!("{}.{rest}", b64(header));
        let gc = g.clone();
        tasks.push(tokio::spawn(async move {
            let err = gc.verify(&token).await.unwrap_err();
            assert_eq!(err, TokenError::UnknownKey { kid });
            false
        }));
        if i % 10 == 0 {
            let (g, t) = (g.clone(), valid.clone());
            tasks.push(tokio::spawn(async move {
                g.verify(&t).await.unwrap();
                true
            }));
        }
    }
    let mut valid_ok = 0;
    for task in tasks {
        valid_ok += usize::from(task.await.unwrap());
    }
    assert_eq!(valid_ok, 100);
    assert_eq!(idp.jwks_requests(), 2, "one refresh per cooldown");
    assert_eq!(idp.discovery_requests(), 1);
    g.verify(&valid).await.unwrap();
}

// --- Microsoft Graph under load -------------------------------------------------------------

const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn overage_governor(idp: &TestIdp, budget: Duration) -> entra_governor::Governor {
    let resolver = crate::common::graph_resolver(idp)
        .max_retries(1)
        .time_budget(budget)
        // Long enough that the whole storm falls inside it on any machine.
        .failure_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    let policy = crate::common::example_policy();
    builder(idp)
        .policy(policy)
        .group_resolver(resolver)
        .build()
        .unwrap()
}

#[tokio::test]
async fn graph_storms_under_load_make_one_flight_and_are_remembered_as_503s() {
    // (mode, calls one failed resolution makes)
    let cases = [
        (
            GraphMode::TooManyRequests {
                retry_after_secs: 30,
                times: 100_000,
            },
            1,
        ),
        (GraphMode::Status(500), 2),
        (GraphMode::Status(503), 2),
        (GraphMode::Slow(Duration::from_secs(5)), 1),
    ];
    for (mode, per_flight) in cases {
        let idp = TestIdp::start().await;
        let g = overage_governor(&idp, Duration::from_millis(500));
        let oid = ObjectId::parse("5e410000-0000-4000-8000-00000000f00d").unwrap();
        idp.set_memberships(&oid, vec![GroupId::parse(ML_ENGINEERS).unwrap()]);
        let token = Arc::new(
            idp.token()
                .oid(oid)
                .scopes("Models.Manage")
                .overage()
                .sign(),
        );
        g.verify(&token).await.unwrap();
        idp.set_graph_mode(mode.clone());
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (g, t) = (g.clone(), token.clone());
                tokio::spawn(async move {
                    g.authorize(&t, "datasets.write", "datasets/curated/x")
                        .await
                })
            })
            .collect();
        let unavailable = |d: &entra_governor::Decision| {
            assert_eq!(d.reason, Reason::GroupMembershipUnavailable, "{mode:?}");
            let refusal = Refusal::from_decision(d, &Cloud::global()).unwrap();
            assert_eq!(
                (refusal.status, refusal.retry_after, refusal.body.error),
                (503, Some(5), "temporarily_unavailable"),
                "{mode:?}"
            );
        };
        for task in tasks {
            unavailable(&task.await.unwrap().unwrap());
        }
        // Concurrent callers share one resolution (single flight), and callers that
        // arrive after it failed find the failure remembered: one flight in all.
        assert_eq!(idp.check_member_groups_requests(), per_flight, "{mode:?}");
        // Graph back, but within the failure window (or the 429's Retry-After): still a
        // transient 503, without a call.
        idp.set_graph_mode(GraphMode::Normal);
        let d = g
            .authorize(&token, "datasets.write", "datasets/curated/x")
            .await
            .unwrap();
        unavailable(&d);
        assert_eq!(idp.check_member_groups_requests(), per_flight, "{mode:?}");
    }
}
