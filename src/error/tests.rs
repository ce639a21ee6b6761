use super::*;

#[test]
fn excerpt_bounds_and_escapes() {
    assert_eq!(excerpt("abc"), "abc");
    assert_eq!(excerpt("a\nb"), "a\\u{a}b");
    let long = "x".repeat(500);
    assert_eq!(excerpt(&long).chars().count(), 129);
}

#[test]
fn an_id_token_is_named_as_such() {
    let id_token = TokenError::NotAnAccessToken { missing: "azp" };
    assert_eq!(
        id_token.to_string(),
        "not an access token: no \"azp\" claim (ID tokens are not accepted)"
    );
    assert_eq!(id_token.code(), "not_an_access_token");
    assert_eq!(id_token.short_description(), "not an access token");
}

/// Every `TokenError` variant, one sample each, with its exact `Display` text: the
/// messages operators read in logs are part of the contract. Adding a variant fails to
/// compile here (the match below) until it gets a row.
#[test]
fn every_token_error_display_is_pinned() {
    let rows: Vec<(TokenError, &str)> = vec![
        (
            TokenError::TooLarge {
                size: 40_000,
                max: 32_768,
            },
            "token is 40000 bytes, more than the 32768-byte limit",
        ),
        (
            TokenError::Malformed {
                reason: "not three segments",
            },
            "malformed token: not three segments",
        ),
        (
            TokenError::InvalidHeader { reason: "not JSON" },
            "invalid token header: not JSON",
        ),
        (
            TokenError::UnsupportedAlgorithm {
                found: "HS256".into(),
            },
            "unsupported algorithm \"HS256\": only RS256 is accepted",
        ),
        (
            TokenError::MissingKeyId { reason: "empty" },
            "token header has no usable key id (kid): empty",
        ),
        (
            TokenError::ForbiddenHeader { name: "jku" },
            "token header member \"jku\" is not accepted",
        ),
        (
            TokenError::UnknownKey { kid: "k1".into() },
            "no signing key with id \"k1\" is published by the identity provider",
        ),
        (
            TokenError::KeysUnavailable {
                reason: "JWKS answered 500".into(),
            },
            "signing keys are unavailable: JWKS answered 500",
        ),
        (
            TokenError::InvalidSignature,
            "signature verification failed",
        ),
        (
            TokenError::InvalidPayload { reason: "not JSON" },
            "invalid token payload: not JSON",
        ),
        (
            TokenError::InvalidClaimType {
                claim: "exp",
                expected: "an integer",
            },
            "claim \"exp\" has the wrong type: expected an integer",
        ),
        (
            TokenError::DuplicateClaim { claim: "aud" },
            "claim \"aud\" appears more than once (in some letter case)",
        ),
        (
            TokenError::MissingClaim { claim: "exp" },
            "required claim \"exp\" is missing",
        ),
        (
            TokenError::Expired {
                expired_at: crate::clock::from_unix_secs(100),
                now: crate::clock::from_unix_secs(500),
                skew_secs: 300,
            },
            "token expired at 100 (now 500, skew 300 s)",
        ),
        (
            TokenError::NotYetValid {
                not_before: crate::clock::from_unix_secs(900),
                now: crate::clock::from_unix_secs(500),
            },
            "token not valid before 900 (now 500)",
        ),
        (
            TokenError::IssuedInFuture {
                issued_at: crate::clock::from_unix_secs(900),
                now: crate::clock::from_unix_secs(500),
            },
            "token issued at 900, in the future (now 500)",
        ),
        (
            TokenError::UnsupportedVersion {
                found: "3.0".into(),
            },
            "unsupported token version \"3.0\"",
        ),
        (
            TokenError::VersionNotAccepted {
                found: "1.0",
                accepted: "2.0",
            },
            "token version 1.0 is not accepted (accepted: 2.0)",
        ),
        (
            TokenError::IssuerMismatch {
                expected: "https://a/".into(),
                found: "https://b/".into(),
            },
            "issuer mismatch: expected \"https://a/\", found \"https://b/\"",
        ),
        (
            TokenError::InvalidTenantId { found: "x".into() },
            "tenant id (tid) \"x\" is not a GUID",
        ),
        (
            TokenError::TenantNotAllowed {
                tenant: "t1".into(),
            },
            "tenant t1 is not allowed",
        ),
        (
            TokenError::KeyIssuerMismatch {
                kid: "k".into(),
                key_issuer: "a".into(),
                token_issuer: "b".into(),
            },
            "signing key \"k\" is bound to issuer \"a\", not to \"b\"",
        ),
        (
            TokenError::GraphToken,
            "token is for Microsoft Graph, not for this API",
        ),
        (
            TokenError::AudienceMismatch {
                expected: vec!["api://a".into()],
                found: vec!["api://b".into()],
            },
            "audience mismatch: expected one of [\"api://a\"], found [\"api://b\"]",
        ),
        (
            TokenError::NotAnAccessToken { missing: "azp" },
            "not an access token: no \"azp\" claim (ID tokens are not accepted)",
        ),
        (
            TokenError::ClientAppNotAllowed { found: "c".into() },
            "client application \"c\" is not allowed",
        ),
        (
            TokenError::InvalidClaim {
                claim: "tid",
                reason: "not a GUID",
            },
            "claim \"tid\" is invalid: not a GUID",
        ),
        (
            TokenError::NoScopesOrRoles,
            "token has neither scopes (scp) nor roles",
        ),
        (
            TokenError::Revoked {
                revoked_before: crate::clock::from_unix_secs(1_000),
                can_handle_claims_challenge: false,
            },
            "token issued before 1000, when the caller's access was revoked",
        ),
        (
            TokenError::RevocationViewStale {
                age_secs: 12,
                bound_secs: 10,
            },
            "the revocation view is 12 s old, beyond the strict bound of 10 s",
        ),
    ];
    for (error, text) in &rows {
        // Exhaustive on purpose: a new variant needs a row above.
        match error {
            TokenError::TooLarge { .. }
            | TokenError::Malformed { .. }
            | TokenError::InvalidHeader { .. }
            | TokenError::UnsupportedAlgorithm { .. }
            | TokenError::MissingKeyId { .. }
            | TokenError::ForbiddenHeader { .. }
            | TokenError::UnknownKey { .. }
            | TokenError::KeysUnavailable { .. }
            | TokenError::InvalidSignature
            | TokenError::InvalidPayload { .. }
            | TokenError::InvalidClaimType { .. }
            | TokenError::DuplicateClaim { .. }
            | TokenError::MissingClaim { .. }
            | TokenError::Expired { .. }
            | TokenError::NotYetValid { .. }
            | TokenError::IssuedInFuture { .. }
            | TokenError::UnsupportedVersion { .. }
            | TokenError::VersionNotAccepted { .. }
            | TokenError::IssuerMismatch { .. }
            | TokenError::InvalidTenantId { .. }
            | TokenError::TenantNotAllowed { .. }
            | TokenError::KeyIssuerMismatch { .. }
            | TokenError::GraphToken
            | TokenError::RevocationViewStale { .. }
            | TokenError::AudienceMismatch { .. }
            | TokenError::NotAnAccessToken { .. }
            | TokenError::ClientAppNotAllowed { .. }
            | TokenError::InvalidClaim { .. }
            | TokenError::NoScopesOrRoles
            | TokenError::Revoked { .. } => {}
        }
        assert_eq!(error.to_string(), *text, "{error:?}");
    }
    let codes: std::collections::HashSet<&str> = rows.iter().map(|(e, _)| e.code()).collect();
    assert_eq!(codes.len(), rows.len(), "one row per variant");
}

/// Every `ConfigError` variant, one sample each, with its exact `Display` text, and the
/// cause kept as `source()` where there is one.
#[test]
fn every_config_error_display_is_pinned() {
    use std::error::Error as _;
    let unqualified = crate::policy::UnqualifiedBinding {
        key_path: "bindings[3]".into(),
        label: "app_role:Trainer".into(),
    };
    let rows: Vec<(ConfigError, &str)> = vec![
        (
            ConfigError::MissingClientId,
            "no client id: call .client_id(\"<the API's application (client) id>\")",
        ),
        (
            ConfigError::InvalidClientId { found: "x".into() },
            "client id \"x\" is not a GUID",
        ),
        (
            ConfigError::MissingTenant,
            "no tenant: call .tenant(..), .tenants([..]) or, knowingly, .dangerous_accept_any_tenant()",
        ),
        (
            ConfigError::InvalidTenant { found: "x".into() },
            "tenant \"x\" is neither a GUID nor a verified domain name",
        ),
        (
            ConfigError::MultiTenantAlias {
                found: "common".into(),
            },
            "\"common\" is not a tenant: list tenant ids with .tenants([..]) or call .dangerous_accept_any_tenant()",
        ),
        (
            ConfigError::EmptyTenantList,
            "the tenant allow-list is empty",
        ),
        (
            ConfigError::InvalidAuthority {
                found: "http://x".into(),
                reason: "not https",
            },
            "authority \"http://x\" is invalid: not https",
        ),
        (
            ConfigError::InvalidAudience {
                found: String::new(),
            },
            "audience \"\" is invalid",
        ),
        (
            ConfigError::NoTokenVersion,
            "no token version accepted: accept v1, v2 or both",
        ),
        (
            ConfigError::OutOfRange {
                setting: "clock_skew",
                reason: "at most 10 minutes",
            },
            "clock_skew is out of range: at most 10 minutes",
        ),
        (
            ConfigError::InvalidClientApp { found: "x".into() },
            "allowed client application \"x\" is not a GUID",
        ),
        (
            ConfigError::DenyAllPolicy,
            "the built-in deny-all policy did not compile",
        ),
        (
            ConfigError::ShadowWithoutAudit,
            "a shadow policy needs an audit log (GovernorBuilder::audit)",
        ),
        (
            ConfigError::AuditLogShadowTaken,
            "the audit log already evaluates another governor's shadow policy",
        ),
        (
            ConfigError::Revocations(crate::revocation::RevocationError::Full { max: 3 }),
            "the revocation file could not be loaded",
        ),
        (
            ConfigError::HttpClient(Cause::new(std::io::Error::other("no TLS roots"))),
            "could not build the HTTP client",
        ),
        (
            ConfigError::InvalidGraphBase {
                found: "x".into(),
                reason: "not https",
            },
            "Microsoft Graph base URL \"x\" is invalid: not https",
        ),
        (
            ConfigError::InvalidCredential {
                reason: "empty secret",
            },
            "client credential is invalid: empty secret",
        ),
        (
            ConfigError::UnqualifiedClaimBindings {
                bindings: vec![unqualified],
            },
            "the governor accepts more than one tenant, so every app_role, app_permission and directory_role binding must say which tenants' administrators it trusts (tenants = [\"<tenant id>\"]); unqualified: bindings[3] (app_role:Trainer)",
        ),
        (
            ConfigError::InvalidFleetKey {
                reason: "shorter than 32 bytes",
            },
            "fleet key is invalid: shorter than 32 bytes",
        ),
        (
            ConfigError::InvalidRedisUrl {
                shown: "redis://redis.internal:6379".into(),
                reason: "no host",
            },
            "Redis URL redis://redis.internal:6379 is invalid: no host",
        ),
        (
            ConfigError::FleetNeedsRuntime,
            "fleet mode needs a tokio runtime: call build() inside one",
        ),
        (
            ConfigError::FleetInUse,
            "this fleet handle is already attached to a governor",
        ),
    ];
    for (error, text) in &rows {
        // Exhaustive on purpose: a new variant needs a row above.
        let source = match error {
            ConfigError::Revocations(_) => {
                Some("the revocation list is full (3 live entries); raise the limit")
            }
            ConfigError::HttpClient(_) => Some("no TLS roots"),
            ConfigError::MissingClientId
            | ConfigError::InvalidClientId { .. }
            | ConfigError::MissingTenant
            | ConfigError::InvalidTenant { .. }
            | ConfigError::MultiTenantAlias { .. }
            | ConfigError::EmptyTenantList
            | ConfigError::InvalidAuthority { .. }
            | ConfigError::InvalidAudience { .. }
            | ConfigError::NoTokenVersion
            | ConfigError::OutOfRange { .. }
            | ConfigError::InvalidClientApp { .. }
            | ConfigError::DenyAllPolicy
            | ConfigError::ShadowWithoutAudit
            | ConfigError::AuditLogShadowTaken
            | ConfigError::InvalidGraphBase { .. }
            | ConfigError::InvalidCredential { .. }
            | ConfigError::UnqualifiedClaimBindings { .. }
            | ConfigError::InvalidFleetKey { .. }
            | ConfigError::InvalidRedisUrl { .. }
            | ConfigError::FleetNeedsRuntime
            | ConfigError::FleetInUse => None,
        };
        assert_eq!(error.to_string(), *text, "{error:?}");
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            source,
            "{error:?}"
        );
    }
}

#[test]
fn a_cause_equals_only_its_clones() {
    let a = ConfigError::HttpClient(Cause::new(std::io::Error::other("x")));
    let b = ConfigError::HttpClient(Cause::new(std::io::Error::other("x")));
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
}
