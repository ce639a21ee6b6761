//! `Governor::authorize()` end to end: a real token from the local Entra look-alike,
//! verified, then decided against `examples/policy.toml`.

use crate::common;

use entra_governor::testing::TestIdp;
use entra_governor::{AuthorizeError, ClientAuth, Governor, Policy, Reason, TokenError};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn example_policy() -> Policy {
    crate::common::example_policy()
}

async fn setup() -> (TestIdp, Governor) {
    let idp = common::example_idp().await;
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
    // The app permission binding trusts the home tenant's consent, and says so.
    assert_eq!(
        d.matched[0].tenant.as_ref().map(|t| t.as_str()),
        Some(common::EXAMPLE_HOME_TENANT)
    );
    assert!(
        d.explain().ends_with(&format!(
            "trusted for tenant {})",
            common::EXAMPLE_HOME_TENANT
        )),
        "{d}"
    );
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

    let dir = crate::common::TempDir::new("reload");
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
    g.reload_policy(Policy::from_toml_str(&deny_training).unwrap())
        .unwrap();
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

/// Three unqualified claim-value bindings, one qualified one, one group binding.
fn policy_with_unqualified_claims(home: &str) -> Policy {
    Policy::from_toml_str(&format!(
        r#"version = 1
[roles.r]
grants = [{{ actions = ["models.read"], resources = ["models/**"] }}]
[[bindings]]
app_role = "Reader"
roles = ["r"]
[[bindings]]
group = "{DATA_SCIENTISTS}"
roles = ["r"]
[[bindings]]
name = "pipeline"
app_permission = "Models.Read"
roles = ["r"]
[[bindings]]
app_role = "Writer"
tenants = ["{home}"]
roles = ["r"]
[[bindings]]
directory_role = "62e90394-69f5-4237-9190-012177145e10"
roles = ["r"]
[scopes]
"All" = ["*"]
"#
    ))
    .unwrap()
}

#[tokio::test]
async fn multi_tenant_governors_refuse_unqualified_claim_bindings_naming_each() {
    let idp = TestIdp::start().await;
    let home = idp.tenant_id();
    let partner = idp.add_tenant();
    let policy = policy_with_unqualified_claims(home.as_str());
    let expected = "the governor accepts more than one tenant, so every app_role, app_permission \
                    and directory_role binding must say which tenants' administrators it trusts \
                    (tenants = [\"<tenant id>\"]); unqualified: bindings[0] (app_role:Reader), \
                    bindings[2] (pipeline), bindings[4] \
                    (directory_role:62e90394-69f5-4237-9190-012177145e10)";
    for builder in [
        common::builder(&idp).tenants([home.as_str(), partner.as_str()]),
        common::builder(&idp).dangerous_accept_any_tenant(),
    ] {
        let err = builder.policy(policy.clone()).build().unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    // One tenant, by `tenant` or by an allow-list of one: unqualified means that tenant.
    for builder in [
        common::builder(&idp),
        common::builder(&idp).tenants([home.as_str()]),
    ] {
        let g = builder.policy(policy.clone()).build().unwrap();
        assert_eq!(
            g.tenant_scope(),
            entra_governor::policy::TenantScope::Single
        );
    }
}

#[tokio::test]
async fn reloading_an_unqualified_policy_into_a_multi_tenant_governor_keeps_the_old_one() {
    let idp = TestIdp::start().await;
    let home = idp.tenant_id();
    let partner = idp.add_tenant();
    let g = common::builder(&idp)
        .tenants([home.as_str(), partner.as_str()])
        .policy(http_free_policy(home.as_str()))
        .build()
        .unwrap();
    let before = g.policy_version();
    let err = g
        .reload_policy(policy_with_unqualified_claims(home.as_str()))
        .unwrap_err();
    assert!(
        matches!(&err, entra_governor::ConfigError::UnqualifiedClaimBindings { bindings } if bindings.len() == 3),
        "{err}"
    );
    assert_eq!(g.policy_version(), before);
    // From a file: the same refusal, as a ReloadError, and the old policy keeps serving.
    let dir = crate::common::TempDir::new("reload");
    let path = dir.join("policy.toml");
    let text =
        serde_json::to_string(policy_with_unqualified_claims(home.as_str()).document()).unwrap();
    std::fs::write(dir.join("policy.json"), text).unwrap();
    let err = g
        .reload_policy_from_path(dir.join("policy.json"))
        .unwrap_err();
    assert!(
        matches!(err, entra_governor::ReloadError::Config(_)),
        "{err}"
    );
    assert_eq!(g.policy_version(), before);
    std::fs::write(&path, "version = 1\n[[bindings]]\napp_role = 1").unwrap();
    assert!(matches!(
        g.reload_policy_from_path(&path).unwrap_err(),
        entra_governor::ReloadError::Policy(_)
    ));
    assert_eq!(g.policy_version(), before);
}

/// A qualified policy a multi-tenant governor accepts.
fn http_free_policy(home: &str) -> Policy {
    Policy::from_toml_str(&format!(
        "version = 1\n[roles.r]\ngrants = [{{ actions = [\"models.read\"], resources = [\"models/**\"] }}]\n\
         [[bindings]]\napp_role = \"Reader\"\ntenants = [\"{home}\"]\nroles = [\"r\"]\n\
         [scopes]\n\"All\" = [\"*\"]\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn a_registration_that_emits_groups_makes_a_missing_claim_no_groups() {
    let idp = common::example_idp().await;
    let token = idp.token().scopes("Inference.Invoke").sign(); // no `groups` claim
    // Unknown membership: a group binding could grant it, nobody resolves it: 403.
    let g = common::builder(&idp)
        .policy(example_policy())
        .build()
        .unwrap();
    let d = g
        .authorize(&token, "inference.invoke", "endpoints/chat-prod")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::GroupMembershipUnknown { overage: false });
    let refusal = entra_governor::http::Refusal::from_decision(&d, g.cloud()).unwrap();
    assert_eq!((refusal.status, refusal.retry_after), (403, None));
    // The registration emits groups: no claim means no groups, an ordinary deny.
    let g = common::builder(&idp)
        .policy(example_policy())
        .groups_claim_emitted(true)
        .build()
        .unwrap();
    let d = g
        .authorize(&token, "inference.invoke", "endpoints/chat-prod")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::NoRoleGrants);
    // An overage marker is still unknown membership.
    let overage = idp.token().scopes("Inference.Invoke").overage().sign();
    let d = g
        .authorize(&overage, "inference.invoke", "endpoints/chat-prod")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::GroupMembershipUnknown { overage: true });
}

#[tokio::test]
async fn with_acct_emitted_a_user_token_without_it_is_of_unknown_guest_status() {
    let idp = common::example_idp().await;
    let g = common::builder(&idp)
        .policy(example_policy())
        .acct_claim_emitted(true)
        .build()
        .unwrap();
    let researcher = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
    let without = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS, researcher])
        .without("acct")
        .sign();
    let p = g.verify(&without).await.unwrap();
    assert_eq!(p.guest_status(), entra_governor::GuestStatus::Unknown);
    // Fail closed: the member-only data-scientist binding does not admit it; the guest
    // binding does, and the guest-only PII rule applies.
    let d = g
        .authorize(&without, "training.submit", "models/exp-1")
        .await
        .unwrap();
    assert_eq!(d.matched[0].binding, "group:external-researchers", "{d}");
    let d = g
        .authorize(&without, "datasets.read", "datasets/curated/x")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::NoRoleGrants, "{d}");
    let d = g
        .authorize(&without, "datasets.read", "datasets/pii/x")
        .await
        .unwrap();
    assert_eq!(d.denied_by(), Some("no-guests-on-pii"));
    // `acct = 0` says member.
    let member = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .claim("acct", serde_json::json!(0))
        .sign();
    assert_eq!(
        g.verify(&member).await.unwrap().guest_status(),
        entra_governor::GuestStatus::Member
    );
    let d = g
        .authorize(&member, "datasets.read", "datasets/curated/x")
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");
    // Without the setting, the same token is a member (the documented default).
    let lenient = common::builder(&idp)
        .policy(example_policy())
        .build()
        .unwrap();
    assert_eq!(
        lenient.verify(&without).await.unwrap().guest_status(),
        entra_governor::GuestStatus::Member
    );
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
        .groups(entra_governor::TokenGroups::Listed(vec![
            entra_governor::GroupId::parse(DATA_SCIENTISTS).unwrap(),
        ]))
        .expires_at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp))
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
        }) => assert_eq!(
            (*expired_at, *skew_secs),
            (
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp),
                300
            )
        ),
        other => panic!("expected an expiry refusal, got {other:?}"),
    }
    assert_eq!(
        entra_governor::http::Refusal::from_authorize_error(&err, g.cloud()).status,
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
    // The instant rounded up to the whole second (token times have no fraction).
    let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap();
    let before = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
    assert_eq!(
        err,
        AuthorizeError::InvalidToken(TokenError::Revoked {
            revoked_before: std::time::UNIX_EPOCH + std::time::Duration::from_secs(before),
            can_handle_claims_challenge: false
        })
    );
    let refusal = entra_governor::http::Refusal::from_authorize_error(&err, g.cloud());
    assert_eq!(
        (refusal.status, refusal.www_authenticate.as_deref()),
        (
            401,
            Some("Bearer error=\"invalid_token\", error_description=\"token revoked\"")
        )
    );
}
