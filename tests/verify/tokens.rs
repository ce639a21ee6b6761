//! One test per validation rule, over real loopback HTTP against the local Entra
//! look-alike: each asserts the exact error variant.

use crate::common;

use entra_governor::http::Refusal;
use entra_governor::testing::TestIdp;
use entra_governor::{ClientAuth, PrincipalKind, TenantId, TokenError, TokenGroups, TokenVersion};
use serde_json::json;

use common::{builder, setup};

async fn reject(idp: &TestIdp, token: &str) -> TokenError {
    let g = builder(idp).build().unwrap();
    g.verify(token).await.expect_err("token must be rejected")
}

#[tokio::test]
async fn valid_v2_user_token_yields_a_principal() {
    let (idp, g) = setup().await;
    let token = idp
        .token()
        .scopes("Inference.Invoke Training.Manage")
        .roles(["Platform.Auditor"])
        .groups(["0b1f2e3d-0000-4000-8000-000000000001"])
        .acrs(["c1"])
        .client_capabilities(["CP1"])
        .sign();
    let p = g.verify(&token).await.unwrap();
    assert_eq!(p.tenant(), &idp.tenant_id());
    assert_eq!(p.kind(), PrincipalKind::User);
    assert_eq!(p.version(), TokenVersion::V2);
    assert_eq!(p.scopes(), ["Inference.Invoke", "Training.Manage"]);
    assert_eq!(p.roles(), ["Platform.Auditor"]);
    assert_eq!(
        p.groups(),
        &TokenGroups::Listed(vec![
            "0b1f2e3d-0000-4000-8000-000000000001".parse().unwrap()
        ])
    );
    assert_eq!(p.auth_contexts(), ["c1"]);
    assert!(p.can_handle_claims_challenge());
    assert_eq!(p.client_app_id(), Some(idp.client_app_id().as_str()));
    assert_eq!(p.client_auth(), ClientAuth::Public);
    assert!(!p.is_guest());
    assert!(p.token_id().is_some());
}

#[tokio::test]
async fn valid_v1_user_token_yields_a_principal() {
    let (idp, g) = setup().await;
    let p = g.verify(&idp.token().v1().sign()).await.unwrap();
    assert_eq!(p.version(), TokenVersion::V1);
    assert_eq!(p.client_app_id(), Some(idp.client_app_id().as_str()));
    assert_eq!(p.auth_methods(), ["pwd"]);
    assert_eq!(p.kind(), PrincipalKind::User);
}

#[tokio::test]
async fn app_only_tokens_are_applications() {
    let (idp, g) = setup().await;
    let p = g
        .verify(&idp.token().app_only().roles(["Training.Pipeline"]).sign())
        .await
        .unwrap();
    assert!(p.is_app_only());
    assert_eq!(p.roles(), ["Training.Pipeline"]);
    assert!(p.scopes().is_empty());
    // Without idtyp, no scp and oid == sub still means app-only.
    let p = g
        .verify(&idp.token().app_only().roles(["X"]).without("idtyp").sign())
        .await
        .unwrap();
    assert!(p.is_app_only());
}

#[tokio::test]
async fn api_uri_and_array_audiences_are_accepted() {
    let (idp, g) = setup().await;
    let api = format!("api://{}", idp.client_id());
    assert!(g.verify(&idp.token().audience(&api).sign()).await.is_ok());
    let arr = idp
        .token()
        .audiences(vec!["other".into(), idp.client_id()])
        .sign();
    assert!(g.verify(&arr).await.is_ok());
}

#[tokio::test]
async fn rule_size_cap() {
    let (idp, g) = setup().await;
    let token = idp.token().claim("pad", json!("x".repeat(40_000))).sign();
    assert_eq!(
        g.verify(&token).await.unwrap_err(),
        TokenError::TooLarge {
            size: token.len(),
            max: 32 * 1024
        }
    );
}

#[tokio::test]
async fn rule_three_segments_without_padding() {
    let idp = TestIdp::start().await;
    let token = idp.token().sign();
    let two = token.rsplit_once('.').unwrap().0.to_owned();
    assert!(matches!(
        reject(&idp, &two).await,
        TokenError::Malformed { .. }
    ));
    assert!(matches!(
        reject(&idp, &format!("{token}.x")).await,
        TokenError::Malformed { .. }
    ));
    let (h, rest) = token.split_once('.').unwrap();
    assert!(matches!(
        reject(&idp, &format!("{h}=.{rest}")).await,
        TokenError::Malformed { .. }
    ));
}

#[tokio::test]
async fn rule_header_is_json() {
    let idp = TestIdp::start().await;
    let token = idp.token().raw_header("not json").sign();
    assert!(matches!(
        reject(&idp, &token).await,
        TokenError::InvalidHeader { .. }
    ));
}

#[tokio::test]
async fn rule_alg_must_be_rs256() {
    let idp = TestIdp::start().await;
    for alg in ["none", "HS256", "RS512", "PS256", "rs256"] {
        let token = idp.token().header("alg", json!(alg)).sign();
        assert_eq!(
            reject(&idp, &token).await,
            TokenError::UnsupportedAlgorithm { found: alg.into() }
        );
    }
}

#[tokio::test]
async fn rule_kid_is_required() {
    let idp = TestIdp::start().await;
    let token = idp.token().without_header("kid").sign();
    assert_eq!(
        reject(&idp, &token).await,
        TokenError::MissingKeyId { reason: "absent" }
    );
}

#[tokio::test]
async fn rule_crit_is_refused() {
    let idp = TestIdp::start().await;
    let token = idp.token().header("crit", json!(["exp"])).sign();
    assert_eq!(
        reject(&idp, &token).await,
        TokenError::ForbiddenHeader { name: "crit" }
    );
}

#[tokio::test]
async fn rule_unknown_kid() {
    let idp = TestIdp::start().await;
    let token = idp.token().kid("no-such-key").sign();
    assert_eq!(
        reject(&idp, &token).await,
        TokenError::UnknownKey {
            kid: "no-such-key".into()
        }
    );
}

#[tokio::test]
async fn rule_signature() {
    let idp = TestIdp::start().await;
    let token = idp.token().sign_with_foreign_key().sign();
    assert_eq!(reject(&idp, &token).await, TokenError::InvalidSignature);
}

#[tokio::test]
async fn rule_exp_with_skew() {
    let (idp, g) = setup().await;
    assert!(g.verify(&idp.token().expires_in(-200).sign()).await.is_ok());
    let err = g
        .verify(&idp.token().expires_in(-400).sign())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TokenError::Expired { skew_secs: 300, .. }),
        "{err:?}"
    );
    let err = g
        .verify(&idp.token().without("exp").sign())
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::MissingClaim { claim: "exp" });
}

#[tokio::test]
async fn rule_nbf_and_iat_in_the_future() {
    let (idp, g) = setup().await;
    let err = g
        .verify(&idp.token().not_before(400).sign())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NotYetValid { .. }), "{err:?}");
    let err = g
        .verify(&idp.token().issued_at(400).sign())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::IssuedInFuture { .. }), "{err:?}");
    assert!(g.verify(&idp.token().not_before(200).sign()).await.is_ok());
}

#[tokio::test]
async fn rule_time_claims_must_be_numbers() {
    let (idp, g) = setup().await;
    for claim in ["exp", "nbf", "iat"] {
        let err = g
            .verify(&idp.token().claim(claim, json!("9999999999")).sign())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            TokenError::InvalidClaimType {
                claim: match claim {
                    "exp" => "exp",
                    "nbf" => "nbf",
                    _ => "iat",
                },
                expected: "integer NumericDate"
            }
        );
    }
}

#[tokio::test]
async fn rule_version_selects_issuer_form() {
    let (idp, g) = setup().await;
    let err = g
        .verify(&idp.token().claim("ver", json!("3.0")).sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::UnsupportedVersion {
            found: "3.0".into()
        }
    );
    // A v1 token carrying the v2 issuer form is rejected.
    let v2_iss = format!("{}/{}/v2.0", idp.authority(), idp.tenant_id());
    let err = g
        .verify(&idp.token().v1().claim("iss", json!(v2_iss)).sign())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::IssuerMismatch { .. }), "{err:?}");
    let only_v2 = builder(&idp)
        .accept_token_versions(&[TokenVersion::V2])
        .build()
        .unwrap();
    let err = only_v2.verify(&idp.token().v1().sign()).await.unwrap_err();
    assert_eq!(
        err,
        TokenError::VersionNotAccepted {
            found: "1.0",
            accepted: "2.0"
        }
    );
}

#[tokio::test]
async fn rule_issuer_is_byte_exact() {
    let (idp, g) = setup().await;
    let good = format!("{}/{}/v2.0", idp.authority(), idp.tenant_id());
    for bad in [
        format!("{good}/"),
        good.to_uppercase(),
        format!("{good}x"),
        good.replace("/v2.0", ""),
    ] {
        let err = g
            .verify(&idp.token().claim("iss", json!(bad)).sign())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            TokenError::IssuerMismatch {
                expected: good.clone(),
                found: bad.clone()
            }
        );
    }
    let err = g
        .verify(&idp.token().without("iss").sign())
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::MissingClaim { claim: "iss" });
}

#[tokio::test]
async fn rule_tid_is_a_guid_of_an_allowed_tenant() {
    let (idp, g) = setup().await;
    let err = g
        .verify(&idp.token().claim("tid", json!("not-a-guid")).sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::InvalidTenantId {
            found: "not-a-guid".into()
        }
    );
    // A consistent token (iss and tid agree) from another tenant of the same idp.
    let other = idp.add_tenant();
    let err = g
        .verify(&idp.token().tenant(other.clone()).sign())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::IssuerMismatch { .. }), "{err:?}");
    // iss names our tenant, tid another one.
    let ours = format!("{}/{}/v2.0", idp.authority(), idp.tenant_id());
    let err = g
        .verify(
            &idp.token()
                .tenant(other.clone())
                .claim("iss", json!(ours))
                .sign(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::TenantNotAllowed {
            tenant: other.to_string()
        }
    );
}

#[tokio::test]
async fn rule_tid_appears_once_in_any_case() {
    let (idp, g) = setup().await;
    let t = idp.tenant_id();
    let err = g
        .verify(&idp.token().claim("TID", json!(t.as_str())).sign())
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::DuplicateClaim { claim: "tid" });
    let mut claims = idp.token().claims();
    let body = serde_json::to_string(&claims).unwrap();
    let dup = format!("{},\"tid\":\"{}\"}}", &body[..body.len() - 1], t);
    claims["x"] = json!(1);
    let err = g
        .verify(&idp.token().raw_payload(dup.into_bytes()).sign())
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::DuplicateClaim { claim: "tid" });
}

#[tokio::test]
async fn allow_list_admits_listed_tenants_only() {
    let idp = TestIdp::start().await;
    let second = idp.add_tenant();
    let third = idp.add_tenant();
    let g = builder(&idp)
        .tenants([idp.tenant_id().to_string(), second.to_string()])
        .build()
        .unwrap();
    assert!(g.verify(&idp.token().sign()).await.is_ok());
    assert!(
        g.verify(&idp.token().tenant(second).v1().sign())
            .await
            .is_ok()
    );
    let err = g
        .verify(&idp.token().tenant(third.clone()).sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::TenantNotAllowed {
            tenant: third.to_string()
        }
    );
    // The issuer must carry exactly the token's tid.
    let iss = format!("{}/{}/v2.0", idp.authority(), idp.tenant_id());
    let err = g
        .verify(&idp.token().tenant(third).claim("iss", json!(iss)).sign())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::IssuerMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn any_tenant_mode_still_refuses_personal_accounts() {
    let idp = TestIdp::start().await;
    let g = builder(&idp).dangerous_accept_any_tenant().build().unwrap();
    let stranger = idp.add_tenant();
    assert!(g.verify(&idp.token().tenant(stranger).sign()).await.is_ok());
    let msa = TenantId::parse(entra_governor::ids::PERSONAL_ACCOUNTS_TENANT).unwrap();
    let err = g
        .verify(&idp.token().tenant(msa.clone()).sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::TenantNotAllowed {
            tenant: msa.to_string()
        }
    );
}

#[tokio::test]
async fn rule_audience() {
    let (idp, g) = setup().await;
    let err = g
        .verify(&idp.token().audience("api://someone-else").sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::AudienceMismatch {
            expected: vec![idp.client_id(), format!("api://{}", idp.client_id())],
            found: vec!["api://someone-else".into()],
        }
    );
    let err = g
        .verify(&idp.token().without("aud").sign())
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::MissingClaim { claim: "aud" });
    let graph = idp
        .token()
        .audience("00000003-0000-0000-c000-000000000000")
        .sign();
    assert_eq!(g.verify(&graph).await.unwrap_err(), TokenError::GraphToken);
}

#[tokio::test]
async fn rule_scopes_or_roles_required() {
    let (idp, g) = setup().await;
    let bare = idp.token().app_only().sign();
    assert_eq!(
        g.verify(&bare).await.unwrap_err(),
        TokenError::NoScopesOrRoles
    );
    let acl = builder(&idp)
        .dangerous_accept_tokens_without_scopes_or_roles()
        .build()
        .unwrap();
    assert!(acl.verify(&bare).await.unwrap().is_app_only());
}

#[tokio::test]
async fn rule_client_app_allow_list() {
    let idp = TestIdp::start().await;
    let other_app = "11111111-2222-4333-8444-555555555555";
    let g = builder(&idp)
        .allowed_client_apps([other_app])
        .build()
        .unwrap();
    let err = g.verify(&idp.token().sign()).await.unwrap_err();
    assert_eq!(
        err,
        TokenError::ClientAppNotAllowed {
            found: idp.client_app_id()
        }
    );
    assert!(
        g.verify(&idp.token().client_app(other_app).sign())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn wrong_json_types_are_never_coerced() {
    let (idp, g) = setup().await;
    let err = g
        .verify(&idp.token().claim("roles", json!("Admin")).sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::InvalidClaimType {
            claim: "roles",
            expected: "array of strings"
        }
    );
    let err = g
        .verify(&idp.token().claim("scp", json!(["a"])).sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::InvalidClaimType {
            claim: "scp",
            expected: "string"
        }
    );
}

#[tokio::test]
async fn guests_and_overage_are_recognised() {
    let (idp, g) = setup().await;
    let home = idp.add_tenant();
    let p = g
        .verify(&idp.token().guest(home.clone()).sign())
        .await
        .unwrap();
    assert!(p.is_guest());
    assert_eq!(p.home_tenant(), &home);
    assert_eq!(p.tenant(), &idp.tenant_id());
    let p = g.verify(&idp.token().overage().sign()).await.unwrap();
    assert_eq!(p.groups(), &TokenGroups::Overage);
    let p = g.verify(&idp.token().has_groups().sign()).await.unwrap();
    assert_eq!(p.groups(), &TokenGroups::Overage);
    let p = g.verify(&idp.token().sign()).await.unwrap();
    assert_eq!(p.groups(), &TokenGroups::NotEmitted);
}

#[tokio::test]
async fn errors_never_contain_the_token() {
    let (idp, g) = setup().await;
    // Errors that quote something from the token (kid, alg, iss) as well as one that
    // quotes nothing (expired).
    let tokens = [
        idp.token().expires_in(-4000).sign(),
        idp.token().kid("k".repeat(200)).sign(),
        idp.token().header("alg", json!("HS256".repeat(50))).sign(),
        idp.token().claim("iss", json!("x".repeat(5000))).sign(),
    ];
    for token in tokens {
        let err = g.verify(&token).await.unwrap_err();
        let signature = token.rsplit('.').next().unwrap();
        let www = Refusal::from_token_error(&err, g.cloud())
            .www_authenticate
            .unwrap_or_default();
        for text in [format!("{err}"), format!("{err:?}"), www] {
            assert!(!text.contains(signature), "{text}");
            assert!(!text.contains(token.split('.').nth(1).unwrap()), "{text}");
            assert!(text.len() < 1024, "{} bytes: {text}", text.len());
        }
    }
}

/// ENTRA.md §1: Microsoft's public sample payloads, re-signed by the look-alike posing as
/// the global cloud's issuers, with fresh lifetimes (the samples expired in 2018).
mod microsoft_samples {
    use super::*;
    use entra_governor::testing::Options;
    use entra_governor::{Cloud, Governor};

    const V1: &str = r#"{"aud":"ef1da9d4-ff77-4c3e-a005-840c3f830745","iss":"https://sts.windows.net/fa15d692-e9c7-4460-a743-29f29522229/","iat":1537233106,"nbf":1537233106,"exp":1537237006,"acr":"1","amr":["wia"],"appid":"75dbe77f-10a3-4e59-85fd-8c127544f17c","appidacr":"0","email":"AbeLi@microsoft.com","idp":"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd0122247/","name":"abeli","oid":"02223b6b-aa1d-42d4-9ec0-1b2bb9194438","scp":"user_impersonation","sub":"l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA","tid":"fa15d692-e9c7-4460-a743-29f2956fd429","unique_name":"abeli@microsoft.com","uti":"FVsGxYXI30-TuikuuUoFAA","ver":"1.0"}"#;
    const V2: &str = r#"{"aud":"6e74172b-be56-4843-9ff4-e66a39bb12e3","iss":"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0","iat":1537231048,"nbf":1537231048,"exp":1537234948,"azp":"6e74172b-be56-4843-9ff4-e66a39bb12e3","azpacr":"0","name":"Abe Lincoln","oid":"690222be-ff1a-4d56-abd1-7e4f7d38e474","preferred_username":"abeli@microsoft.com","scp":"access_as_user","sub":"HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ","tid":"72f988bf-86f1-41af-91ab-2d7cd011db47","uti":"fqiBqXLPj0eQa82S-IYFAA","ver":"2.0"}"#;

    /// The sample with `iat`/`nbf`/`exp` moved to now.
    fn refreshed(sample: &str) -> serde_json::Value {
        let mut claims: serde_json::Value = serde_json::from_str(sample).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now);
        claims["exp"] = json!(now + 3600);
        claims
    }

    async fn idp_and_governor(claims: &serde_json::Value) -> (TestIdp, Governor) {
        let tenant = TenantId::parse(claims["tid"].as_str().unwrap()).unwrap();
        let idp = TestIdp::start_with(Options::default().tenant(tenant.clone()).issuer_bases(
            "https://login.microsoftonline.com",
            "https://sts.windows.net",
        ))
        .await;
        let g = Governor::builder()
            .cloud(
                Cloud::custom(idp.authority())
                    .with_v2_issuer_base("https://login.microsoftonline.com")
                    .with_v1_issuer_base("https://sts.windows.net"),
            )
            .tenant(tenant.as_str())
            .client_id(claims["aud"].as_str().unwrap())
            .dangerous_allow_http_loopback()
            .key_refresh_interval(None)
            .build()
            .unwrap();
        (idp, g)
    }

    fn sign(idp: &TestIdp, claims: &serde_json::Value) -> String {
        idp.token()
            .raw_payload(claims.to_string().into_bytes())
            .sign()
    }

    #[tokio::test]
    async fn v1_sample_is_rejected_for_its_issuer_tenant_mismatch_and_passes_corrected() {
        let mut claims = refreshed(V1);
        let (idp, g) = idp_and_governor(&claims).await;
        let err = g.verify(&sign(&idp, &claims)).await.unwrap_err();
        assert_eq!(
            err,
            TokenError::IssuerMismatch {
                expected: "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f2956fd429/".into(),
                found: "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f29522229/".into(),
            }
        );
        claims["iss"] = json!("https://sts.windows.net/fa15d692-e9c7-4460-a743-29f2956fd429/");
        let p = g.verify(&sign(&idp, &claims)).await.unwrap();
        assert_eq!(p.version(), TokenVersion::V1);
        assert_eq!(
            p.object_id().as_str(),
            "02223b6b-aa1d-42d4-9ec0-1b2bb9194438"
        );
        assert_eq!(
            p.client_app_id(),
            Some("75dbe77f-10a3-4e59-85fd-8c127544f17c")
        );
        assert_eq!(p.auth_methods(), ["wia"]);
        // The sample's idp is Microsoft's corporate tenant: a guest in this tenant.
        assert!(p.is_guest());
        assert_eq!(
            p.home_tenant().as_str(),
            "72f988bf-86f1-41af-91ab-2d7cd0122247"
        );
        assert_eq!(p.display().email.as_deref(), Some("AbeLi@microsoft.com"));
    }

    #[tokio::test]
    async fn v2_sample_passes() {
        let claims = refreshed(V2);
        let (idp, g) = idp_and_governor(&claims).await;
        let p = g.verify(&sign(&idp, &claims)).await.unwrap();
        assert_eq!(p.version(), TokenVersion::V2);
        assert_eq!(
            p.object_id().as_str(),
            "690222be-ff1a-4d56-abd1-7e4f7d38e474"
        );
        assert_eq!(p.scopes(), ["access_as_user"]);
        assert_eq!(p.token_id(), Some("fqiBqXLPj0eQa82S-IYFAA"));
        assert!(!p.is_guest());
    }
}

#[tokio::test]
async fn a_key_bound_to_another_issuer_cannot_vouch_for_this_tenant() {
    let (idp, g) = setup().await;
    let kid = idp.add_key();
    idp.remove_key(&kid);
    let elsewhere = format!("{}/{}/v2.0", idp.authority(), idp.add_tenant());
    idp.publish_raw_jwk(idp.jwk(&kid, &elsewhere).unwrap());
    let err = g
        .verify(&idp.token().kid(kid.as_str()).sign())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::KeyIssuerMismatch {
            kid: kid.clone(),
            key_issuer: elsewhere,
            token_issuer: format!("{}/{}/v2.0", idp.authority(), idp.tenant_id()),
        }
    );
}

#[tokio::test]
async fn identity_is_tid_and_oid_never_a_display_claim() {
    let (idp, g) = setup().await;
    let oid = entra_governor::ObjectId::parse("0c1f8b6e-5a7d-4e2f-9b3a-6d4c2e1f0a9b").unwrap();
    let other = entra_governor::ObjectId::parse("7e2d9c4b-1a3f-4b5e-8c6d-0f9e8d7c6b5a").unwrap();
    let named = |oid: &entra_governor::ObjectId, who: &str| {
        idp.token()
            .oid(oid.clone())
            .claim("name", json!(who))
            .claim("preferred_username", json!(format!("{who}@contoso.com")))
            .claim("upn", json!(format!("{who}@contoso.com")))
            .claim("email", json!(format!("{who}@contoso.com")))
            .sign()
    };
    let ada = g.verify(&named(&oid, "ada")).await.unwrap();
    let renamed = g.verify(&named(&oid, "grace")).await.unwrap();
    let impostor = g.verify(&named(&other, "ada")).await.unwrap();
    // Same object, new names: the same identity. Same names, another object: another.
    assert_eq!(ada.id(), renamed.id());
    assert_ne!(ada.id(), impostor.id());
    assert_eq!(impostor.object_id(), &other);
}
