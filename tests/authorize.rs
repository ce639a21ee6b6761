//! `Governor::authorize()` end to end: a real token from the local Entra look-alike,
//! verified, then decided against `examples/policy.toml`.

mod common;

use entra_governor::testing::TestIdp;
use entra_governor::{AuthorizeError, ClientAuth, Governor, Policy, Reason, TokenError};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn example_policy() -> Policy {
    Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml")).unwrap()
}

async fn setup() -> (TestIdp, Governor) {
    let idp = TestIdp::start().await;
    let g = common::builder(&idp)
        .policy(example_policy())
        .build()
        .unwrap();
    (idp, g)
}

#[tokio::test]
async fn a_data_scientist_may_train_research_models_within_scope() {
    let (idp, g) = setup().await;
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let d = g
        .authorize(&token, "training.submit", "models/exp-42")
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");
    assert_eq!(d.matched[0].binding, "group:data-scientists");
    assert_eq!(d.matched[0].role, "data-scientist");
    let d = g
        .authorize(&token, "training.submit", "models/prod-chat")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::NoRoleGrants);
}

#[tokio::test]
async fn the_scope_ceiling_caps_a_delegated_call() {
    let (idp, g) = setup().await;
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([ML_ENGINEERS])
        .sign();
    let d = g
        .authorize(&token, "training.submit", "models/exp-1")
        .await
        .unwrap();
    assert_eq!(
        d.reason,
        Reason::OutsideScopes {
            scopes: vec!["Inference.Invoke".into()]
        }
    );
    assert!(
        g.authorize(&token, "inference.invoke", "models/exp-1")
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn app_permissions_govern_app_only_callers() {
    let (idp, g) = setup().await;
    let pipeline = idp
        .token()
        .app_only()
        .roles(["Training.Pipeline"])
        .client_auth(ClientAuth::Certificate)
        .sign();
    let d = g
        .authorize(&pipeline, "training.submit", "models/staging-7")
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");
    // The pipeline's role requires certificate client authentication: a secret will not do.
    let with_secret = idp
        .token()
        .app_only()
        .roles(["Training.Pipeline"])
        .client_auth(ClientAuth::Secret)
        .sign();
    let d = g
        .authorize(&with_secret, "training.submit", "models/staging-7")
        .await
        .unwrap();
    assert_eq!(d.reason.code(), "requirement_not_met", "{d}");
    assert_eq!(d.denied_by(), Some("role:training-pipeline"));
    // The same value as a user's app role confers nothing: user roles and app
    // permissions are distinct.
    let user = idp
        .token()
        .scopes("Training.Manage")
        .roles(["Training.Pipeline"])
        .groups(Vec::<String>::new())
        .sign();
    let d = g
        .authorize(&user, "training.submit", "models/staging-7")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::NoRoleGrants);
}

#[tokio::test]
async fn invalid_tokens_are_errors_not_denials() {
    let (idp, g) = setup().await;
    let expired = idp.token().expires_in(-3600).groups([ML_ENGINEERS]).sign();
    let err = g
        .authorize(&expired, "models.read", "models/prod-1")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AuthorizeError::InvalidToken(TokenError::Expired { .. })
    ));
}

#[tokio::test]
async fn without_a_policy_everything_is_denied() {
    let idp = TestIdp::start().await;
    let g = common::builder(&idp).build().unwrap();
    let token = idp.token().groups([ML_ENGINEERS]).sign();
    let d = g
        .authorize(&token, "models.read", "models/prod-1")
        .await
        .unwrap();
    assert!(!d.is_allowed());
    assert!(d.matched.is_empty());
}

#[tokio::test]
async fn reload_swaps_the_policy_and_refuses_an_invalid_one() {
    let (idp, g) = setup().await;
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let before = g.policy_version();
    assert!(
        g.authorize(&token, "training.submit", "models/exp-1")
            .await
            .unwrap()
            .is_allowed()
    );

    let dir = std::env::temp_dir().join(format!("eg-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "version = 1\n[roles.x]\ninclude = [\"missing\"]\n").unwrap();
    let err = g.reload_policy_from_path(&bad).unwrap_err();
    assert!(err.to_string().contains("bad.toml"), "{err}");
    assert_eq!(g.policy_version(), before, "the old policy keeps serving");
    assert!(
        g.authorize(&token, "training.submit", "models/exp-1")
            .await
            .unwrap()
            .is_allowed()
    );

    let deny_training = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/policy.toml"
    ))
    .unwrap()
        + "\n[[deny]]\nname = \"training-freeze\"\nactions = [\"training.*\"]\nresources = [\"**\"]\n";
    g.reload_policy(Policy::from_toml_str(&deny_training).unwrap());
    assert_ne!(g.policy_version(), before);
    let d = g
        .authorize(&token, "training.submit", "models/exp-1")
        .await
        .unwrap();
    assert_eq!(
        d.reason,
        Reason::DeniedByRule {
            rule: "training-freeze".into()
        }
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn permissions_list_the_effective_grants() {
    let (idp, g) = setup().await;
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let p = g.verify(&token).await.unwrap();
    let perms = g.permissions(&p);
    assert_eq!(perms.policy_version, g.policy_version());
    assert!(perms.roles.iter().any(|r| r.role == "data-scientist"));
    assert!(
        perms
            .grants
            .iter()
            .any(|gr| gr.actions.iter().any(|a| a == "inference.invoke"))
    );
    assert!(perms.grants.iter().all(|gr| {
        gr.actions
            .iter()
            .all(|a| a.starts_with("inference.") || a == "models.read")
    }));
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A data scientist (allowed `inference.invoke` on `models/exp-42`) whose token expires
/// at `exp`.
fn scientist_expiring_at(idp: &TestIdp, exp: u64) -> entra_governor::Principal {
    let oid = entra_governor::ObjectId::parse("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0").unwrap();
    entra_governor::Principal::builder(idp.tenant_id().clone(), oid)
        .scopes(["Inference.Invoke"])
        .groups(entra_governor::Groups::Listed(vec![
            entra_governor::GroupId::parse(DATA_SCIENTISTS).unwrap(),
        ]))
        .expires_at(exp)
        .build()
}

#[tokio::test]
async fn authorize_principal_refuses_a_principal_whose_token_expired_since() {
    let (idp, g) = setup().await;
    let ctx = entra_governor::RequestContext::default();
    // Within the 300 s clock skew, as verify() allows: still decided.
    let recent = scientist_expiring_at(&idp, unix_now() - 10);
    let d = g
        .authorize_principal(&recent, "inference.invoke", "models/exp-42", &ctx)
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");
    let exp = unix_now() - 3600;
    let expired = scientist_expiring_at(&idp, exp);
    let err = g
        .authorize_principal(&expired, "inference.invoke", "models/exp-42", &ctx)
        .await
        .unwrap_err();
    match &err {
        AuthorizeError::InvalidToken(TokenError::Expired {
            expired_at,
            skew_secs,
            ..
        }) => assert_eq!((*expired_at, *skew_secs), (exp, 300)),
        other => panic!("expected an expiry refusal, got {other:?}"),
    }
    assert_eq!(
        entra_governor::http::Refusal::from_authorize_error(&err).status,
        401
    );
}

#[tokio::test]
async fn authorize_principal_refuses_a_principal_revoked_since() {
    let (idp, g) = setup().await;
    let ctx = entra_governor::RequestContext::default();
    let token = idp
        .token()
        .issued_at(-60)
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let caller = g.verify(&token).await.unwrap();
    let d = g
        .authorize_principal(&caller, "inference.invoke", "models/exp-42", &ctx)
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");
    let at = std::time::SystemTime::now();
    g.revoke(caller.id(), at).unwrap();
    let err = g
        .authorize_principal(&caller, "inference.invoke", "models/exp-42", &ctx)
        .await
        .unwrap_err();
    let before = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(
        err,
        AuthorizeError::InvalidToken(TokenError::Revoked {
            revoked_before: before,
            challenge: None
        })
    );
    let refusal = entra_governor::http::Refusal::from_authorize_error(&err);
    assert_eq!(
        (refusal.status, refusal.www_authenticate.as_deref()),
        (
            401,
            Some("Bearer error=\"invalid_token\", error_description=\"token revoked\"")
        )
    );
}
