//! The verified-token cache through the governor: repeats are served from it, but never
//! past `exp`, never after their key is gone, and never around a revocation or a policy
//! reload.

use crate::common;

use std::time::{Duration, SystemTime};

use entra_governor::testing::TestIdp;
use entra_governor::{Policy, Reason, TokenError};

#[tokio::test]
async fn repeats_are_cached_and_distinct_tokens_keep_their_own_claims() {
    let (idp, g) = common::setup().await;
    let a = idp.token().scopes("A").sign();
    let b = idp.token().scopes("B").sign();
    for _ in 0..3 {
        assert_eq!(g.verify(&a).await.unwrap().scopes(), ["A"]);
        assert_eq!(g.verify(&b).await.unwrap().scopes(), ["B"]);
    }
    assert_eq!(g.cached_tokens(), 2);
    let off = common::builder(&idp)
        .verified_token_cache(None)
        .build()
        .unwrap();
    off.verify(&a).await.unwrap();
    assert_eq!(off.cached_tokens(), 0);
}

#[tokio::test]
async fn an_expired_token_is_never_served_from_the_cache() {
    let idp = TestIdp::start().await;
    let g = common::builder(&idp)
        .clock_skew(Duration::ZERO)
        .build()
        .unwrap();
    let token = idp.token().expires_in(2).sign();
    g.verify(&token).await.unwrap();
    assert_eq!(g.cached_tokens(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(matches!(
        g.verify(&token).await,
        Err(TokenError::Expired { .. })
    ));
}

#[tokio::test]
async fn tokens_of_a_removed_key_are_dropped() {
    let (idp, g) = common::setup().await;
    let old = idp.token().sign();
    g.verify(&old).await.unwrap();
    idp.rotate();
    g.verify(&idp.token().sign()).await.unwrap(); // refetch: the old key is gone
    assert!(matches!(
        g.verify(&old).await,
        Err(TokenError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn revocation_and_policy_reload_apply_to_cached_tokens() {
    let (idp, g) = common::setup().await;
    let token = idp
        .token()
        .issued_at(-60)
        .scopes("Inference.Invoke")
        .groups(Vec::<String>::new())
        .sign();
    let p = g.verify(&token).await.unwrap();
    let open = Policy::from_toml_str(
        "version = 1\n[roles.r]\ngrants = [{ actions = [\"inference.invoke\"], resources = [\"models/**\"] }]\n\
         [[bindings]]\ntenant = \"TENANT\"\nroles = [\"r\"]\n[scopes]\n\"Inference.Invoke\" = [\"inference.*\"]\n"
            .replace("TENANT", idp.tenant_id().as_str())
            .as_str(),
    )
    .unwrap();
    g.reload_policy(open).unwrap();
    assert!(
        g.authorize(&token, "inference.invoke", "models/m")
            .await
            .unwrap()
            .is_allowed()
    );
    g.reload_policy(Policy::from_toml_str("version = 1").unwrap())
        .unwrap();
    let d = g
        .authorize(&token, "inference.invoke", "models/m")
        .await
        .unwrap();
    assert_ne!(
        d.reason,
        Reason::Allow,
        "the cached token meets the new policy"
    );
    g.revoke(p.id(), SystemTime::now()).unwrap();
    assert!(matches!(
        g.verify(&token).await,
        Err(TokenError::Revoked { .. })
    ));
}
