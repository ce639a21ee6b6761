//! Revocation before expiry (ENTRA.md §5, CAE style), over loopback HTTP.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use entra_governor::http::Refusal;
use entra_governor::testing::TestIdp;
use entra_governor::{Policy, TokenError};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A revocation instant as the governor keeps it: whole seconds, rounded up (token times
/// have no fraction, so a token of the same second is refused too).
fn kept(at: SystemTime) -> u64 {
    let d = at.duration_since(UNIX_EPOCH).unwrap();
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[tokio::test]
async fn revoked_callers_are_refused_until_they_get_a_fresh_token() {
    let (idp, g) = common::setup().await;
    let old = idp.token().issued_at(-60).sign();
    let p = g.verify(&old).await.unwrap();
    let other = g.verify(&idp.token().issued_at(-60).sign()).await.unwrap();

    let at = SystemTime::now();
    g.revoke(p.id(), at).unwrap();
    let err = g.verify(&old).await.unwrap_err();
    let before = kept(at);
    assert_eq!(
        err,
        TokenError::Revoked {
            // Kept to the second (rounded up), as revocations are.
            revoked_before: UNIX_EPOCH + Duration::from_secs(before),
            can_handle_claims_challenge: false
        }
    );
    assert_eq!(
        Refusal::from_token_error(&err, g.cloud())
            .www_authenticate
            .as_deref(),
        Some("Bearer error=\"invalid_token\", error_description=\"token revoked\"")
    );
    // Others are unaffected; a token issued after the revocation passes.
    assert!(
        g.verify(
            &idp.token()
                .oid(other.object_id().clone())
                .issued_at(-60)
                .sign()
        )
        .await
        .is_ok()
    );
    let fresh = idp.token().oid(p.object_id().clone()).issued_at(1).sign();
    assert!(g.verify(&fresh).await.is_ok());
    // A policy reload does not forget revocations.
    g.reload_policy(Policy::from_toml_str("version = 1").unwrap())
        .unwrap();
    assert!(matches!(
        g.verify(&old).await,
        Err(TokenError::Revoked { .. })
    ));
    assert_eq!(g.revocation_count(), 1);
}

#[tokio::test]
async fn cae_capable_clients_get_the_nbf_claims_challenge() {
    let (idp, g) = common::setup().await;
    let token = idp
        .token()
        .issued_at(-60)
        .client_capabilities(["cp1"])
        .sign();
    let p = g.verify(&token).await.unwrap();
    let at = SystemTime::now();
    g.revoke(p.id(), at).unwrap();
    let before = kept(at);
    let err = g.verify(&token).await.unwrap_err();
    let claims = format!(r#"{{"access_token":{{"nbf":{{"essential":true,"value":"{before}"}}}}}}"#);
    let expected = format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", error=\"insufficient_claims\", claims=\"{}\"",
        idp.authority(),
        base64::engine::general_purpose::STANDARD.encode(&claims)
    );
    assert_eq!(
        err,
        TokenError::Revoked {
            // Kept to the second (rounded up), as revocations are.
            revoked_before: UNIX_EPOCH + Duration::from_secs(before),
            can_handle_claims_challenge: true
        }
    );
    let refusal = Refusal::from_token_error(&err, g.cloud());
    assert_eq!(refusal.www_authenticate, Some(expected));
    assert_eq!(refusal.status, 401);
}

#[tokio::test]
async fn tenant_revocation_covers_every_caller_of_the_tenant() {
    let (idp, g) = common::setup().await;
    let a = idp.token().issued_at(-60).sign();
    let b = idp.token().issued_at(-60).app_only().roles(["X"]).sign();
    g.revoke_tenant(&idp.tenant_id(), SystemTime::now())
        .unwrap();
    assert!(matches!(
        g.verify(&a).await,
        Err(TokenError::Revoked { .. })
    ));
    assert!(matches!(
        g.verify(&b).await,
        Err(TokenError::Revoked { .. })
    ));
}

#[tokio::test]
async fn tokens_without_iat_cannot_prove_they_are_newer() {
    let (idp, g) = common::setup().await;
    let token = idp.token().without("iat").sign();
    let p = g.verify(&token).await.unwrap();
    g.revoke(p.id(), SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    assert!(matches!(
        g.verify(&token).await,
        Err(TokenError::Revoked { .. })
    ));
}

#[tokio::test]
async fn revocations_survive_a_restart_through_their_file() {
    let idp = TestIdp::start().await;
    let file =
        std::env::temp_dir().join(format!("eg-revoked-{}-{}.json", std::process::id(), now()));
    let token = idp.token().issued_at(-60).sign();
    {
        let g = common::builder(&idp)
            .revocations_file(&file)
            .build()
            .unwrap();
        let p = g.verify(&token).await.unwrap();
        g.revoke(p.id(), SystemTime::now()).unwrap();
    }
    let restarted = common::builder(&idp)
        .revocations_file(&file)
        .build()
        .unwrap();
    assert_eq!(restarted.revocation_count(), 1);
    assert!(matches!(
        restarted.verify(&token).await,
        Err(TokenError::Revoked { .. })
    ));
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn a_full_list_refuses_new_revocations_instead_of_losing_them() {
    let idp = TestIdp::start().await;
    let g = common::builder(&idp).max_revocations(1).build().unwrap();
    let a = g.verify(&idp.token().sign()).await.unwrap();
    let b = g.verify(&idp.token().sign()).await.unwrap();
    g.revoke(a.id(), SystemTime::now()).unwrap();
    let err = g.revoke(b.id(), SystemTime::now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the revocation list is full (1 live entries); raise the limit"
    );
    assert_eq!(g.revocation_count(), 1);
}
