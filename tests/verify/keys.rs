//! Key path: discovery, JWKS caching, rotation, single flight, outages, over real
//! loopback HTTP against the local Entra look-alike.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use entra_governor::TokenError;
use entra_governor::http::Refusal;
use entra_governor::testing::{Mode, TestIdp};
use serde_json::json;

use common::{builder, setup};

#[tokio::test]
async fn keys_are_fetched_once_and_cached() {
    let (idp, g) = setup().await;
    for _ in 0..5 {
        g.verify(&idp.token().sign()).await.unwrap();
    }
    assert_eq!(idp.discovery_requests(), 1);
    assert_eq!(idp.jwks_requests(), 1);
    assert_eq!(g.key_ids(), vec![idp.signing_kid()]);
}

#[tokio::test]
async fn rotation_causes_exactly_one_refetch() {
    let (idp, g) = setup().await;
    let before = idp.token().sign();
    g.verify(&before).await.unwrap();
    let new_kid = idp.rotate();
    let after = idp.token().sign();
    g.verify(&after).await.unwrap();
    g.verify(&idp.token().sign()).await.unwrap();
    assert_eq!(idp.jwks_requests(), 2, "one initial fetch and one refetch");
    assert_eq!(idp.discovery_requests(), 1);
    assert_eq!(g.key_ids(), vec![new_kid]);
    // The old key was unpublished: its tokens are now unknown (and, within the
    // cooldown, cause no further fetch).
    let err = g.verify(&before).await.unwrap_err();
    assert!(matches!(err, TokenError::UnknownKey { .. }), "{err:?}");
    assert_eq!(idp.jwks_requests(), 2);
}

#[tokio::test]
async fn a_hundred_concurrent_new_kid_requests_make_one_fetch() {
    let (idp, g) = setup().await;
    g.verify(&idp.token().sign()).await.unwrap();
    idp.rotate();
    let token = Arc::new(idp.token().sign());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (g, t) = (g.clone(), token.clone());
            tokio::spawn(async move { g.verify(&t).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(idp.jwks_requests(), 2);
}

#[tokio::test]
async fn unknown_kids_refresh_at_most_once_per_cooldown() {
    let idp = TestIdp::start().await;
    let g = builder(&idp)
        .dangerous_fast_key_refresh()
        .key_refresh_cooldown(Duration::from_secs(2))
        .build()
        .unwrap();
    // Signed beforehand: the 20 verifications must all fall inside one cooldown, and
    // signing is slow in a debug build on a busy machine.
    let unknown: Vec<String> = (0..20)
        .map(|i| idp.token().kid(format!("random-{i}")).sign())
        .collect();
    let after_cooldown = idp.token().kid("after-cooldown").sign();
    g.verify(&idp.token().sign()).await.unwrap();
    for token in &unknown {
        let err = g.verify(token).await.unwrap_err();
        assert!(matches!(err, TokenError::UnknownKey { .. }));
    }
    assert_eq!(idp.jwks_requests(), 2, "initial fetch plus one refresh");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let _ = g.verify(&after_cooldown).await;
    assert_eq!(idp.jwks_requests(), 3);
}

#[tokio::test]
async fn many_tasks_verify_concurrently() {
    let (idp, g) = setup().await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let g = g.clone();
            let token = idp.token().claim("n", json!(i)).sign();
            tokio::spawn(async move { g.verify(&token).await.map(|p| p.object_id().clone()) })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        t.await.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 200);
    assert_eq!(idp.jwks_requests(), 1);
}

#[tokio::test]
async fn last_known_good_keys_survive_an_outage() {
    let idp = TestIdp::start().await;
    let g = builder(&idp)
        .dangerous_fast_key_refresh()
        .key_refresh_interval(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    g.verify(&idp.token().sign()).await.unwrap();
    for mode in [Mode::Status(500), Mode::Garbage, Mode::Down] {
        idp.set_mode(mode);
        let before = idp.jwks_requests() + idp.discovery_requests();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            idp.jwks_requests() + idp.discovery_requests() > before,
            "refresh was attempted"
        );
        g.verify(&idp.token().sign()).await.unwrap();
    }
    // A JWKS with no usable key never replaces a good set.
    idp.set_mode(Mode::Normal);
    let kid = idp.signing_kid();
    idp.remove_key(&kid);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(g.key_ids().len(), 1);
    assert_eq!(g.key_ids(), vec![kid]);
}

#[tokio::test]
async fn periodic_refresh_stops_when_the_governor_is_dropped() {
    let idp = TestIdp::start().await;
    let g = builder(&idp)
        .dangerous_fast_key_refresh()
        .key_refresh_interval(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    g.verify(&idp.token().sign()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(idp.jwks_requests() > 2, "periodic refresh is running");
    drop(g);
    // A refresh already under way when the governor was dropped may still land.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_drop = idp.jwks_requests();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(idp.jwks_requests(), after_drop);
}

#[tokio::test]
async fn idp_down_at_start_then_back() {
    let (idp, g) = setup().await;
    idp.set_mode(Mode::Down);
    let token = idp.token().sign();
    let err = g.verify(&token).await.unwrap_err();
    assert!(matches!(err, TokenError::KeysUnavailable { .. }), "{err:?}");
    assert_eq!(Refusal::from_token_error(&err, g.cloud()).status, 503);
    assert!(g.prefetch_keys().await.is_err());
    idp.set_mode(Mode::Normal);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(g.verify(&token).await.unwrap().tenant(), &idp.tenant_id());
}

async fn unavailable_with(mode: Mode) -> String {
    let (idp, g) = setup().await;
    idp.set_mode(mode);
    match g.verify(&idp.token().sign()).await.unwrap_err() {
        TokenError::KeysUnavailable { reason } => reason,
        other => panic!("expected KeysUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_faults_make_keys_unavailable() {
    assert!(
        unavailable_with(Mode::Status(500))
            .await
            .contains("HTTP 500")
    );
    assert!(
        unavailable_with(Mode::Garbage)
            .await
            .contains("not the expected JSON")
    );
    assert!(
        unavailable_with(Mode::HugeBody(600 * 1024))
            .await
            .contains("more than 524288 bytes")
    );
    assert!(
        unavailable_with(Mode::RedirectTo("http://127.0.0.2:9/".into()))
            .await
            .contains("redirect")
    );
    assert!(unavailable_with(Mode::WrongIssuer).await.contains("issuer"));
    assert!(
        unavailable_with(Mode::ForeignJwksUri)
            .await
            .contains("outside the authority")
    );
}

#[tokio::test]
async fn a_hanging_idp_times_out() {
    let idp = TestIdp::start().await;
    let g = builder(&idp)
        .http_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    idp.set_mode(Mode::Slow(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let err = g.verify(&idp.token().sign()).await.unwrap_err();
    assert!(
        matches!(err, TokenError::KeysUnavailable { ref reason } if reason.contains("timed out")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn unusable_published_keys_are_ignored() {
    let (idp, g) = setup().await;
    idp.publish_raw_jwk(json!({"kty":"RSA","use":"enc","kid":"enc-key","n":"AQAB","e":"AQAB"}));
    idp.publish_raw_jwk(
        json!({"kty":"EC","use":"sig","kid":"ec-key","crv":"P-256","x":"AA","y":"AA"}),
    );
    idp.publish_raw_jwk(json!({"kty":"RSA","use":"sig","kid":"tiny","n":"AQAB","e":"AQAB"}));
    g.verify(&idp.token().sign()).await.unwrap();
    assert_eq!(g.key_ids(), vec![idp.signing_kid()]);
}

#[tokio::test]
async fn custom_signing_keys_use_the_appid_query() {
    let idp = TestIdp::start().await;
    let g = builder(&idp).custom_signing_keys().build().unwrap();
    g.verify(&idp.token().sign()).await.unwrap();
    assert_eq!(idp.appid_requests(), 1);
    assert_eq!(idp.jwks_requests(), 1);
}

#[tokio::test]
async fn a_slow_periodic_refresh_cannot_bring_back_a_rolled_key() {
    let idp = TestIdp::start().await;
    // JWKS request 1 is the first fetch, 2 the first periodic refresh, 3 the unknown-kid
    // refresh after the roll, 4 the next periodic refresh.
    let mut periodic = idp.hold_jwks_request(2);
    let mut next_periodic = idp.hold_jwks_request(4);
    let g = builder(&idp)
        .dangerous_fast_key_refresh()
        .key_refresh_interval(Some(Duration::from_millis(10)))
        // Far beyond the test: the held answer must arrive, not time out.
        .http_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let old_kid = idp.signing_kid();
    let before = idp.token().sign();
    g.verify(&before).await.unwrap();
    // The periodic refresh has read the key set that still holds the old key.
    periodic.arrived().await;
    // An emergency roll: the old key is withdrawn, and a token under the new key makes
    // the governor fetch the new set on demand.
    let new_kid = idp.rotate();
    g.verify(&idp.token().sign()).await.unwrap();
    assert_eq!(g.key_ids(), vec![new_kid.clone()]);
    let unknown = TokenError::UnknownKey {
        kid: old_kid.clone(),
    };
    assert_eq!(g.verify(&before).await.unwrap_err(), unknown);
    // The slow periodic answer arrives late; request 4 arriving means the refresher's
    // loop has finished with it.
    periodic.release();
    next_periodic.arrived().await;
    assert_eq!(g.key_ids(), vec![new_kid]);
    assert_eq!(g.verify(&before).await.unwrap_err(), unknown);
    assert_eq!(idp.jwks_requests(), 4);
}
