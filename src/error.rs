//! The crate's error types.
//!
//! Every variant says what was expected and what was found, so an operator can fix a
//! configuration or trace a rejected call, but no variant ever holds the token, its
//! signature or a secret. Values copied from a token (an issuer, an audience, a key id)
//! are attacker-controlled: they are shortened to 128 characters and their control and
//! non-ASCII characters escaped (`\u{..}`) first.

use std::fmt;
use std::time::SystemTime;

/// Why a bearer token was not accepted. Every variant is "401 material" (RFC 6750
/// `invalid_token`) except [`TokenError::KeysUnavailable`], which means the identity
/// provider could not be reached, and [`TokenError::RevocationViewStale`] (fleet strict
/// mode without a current view of the revocations): both map to 503. The variants are data: the status and
/// `WWW-Authenticate` value are built by the HTTP edge (`http::Refusal`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is larger than the configured cap; nothing was decoded.
    #[error("token is {size} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Size of the presented token in bytes.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Not a compact JWS: three base64url segments without padding.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What was wrong with its shape.
        reason: &'static str,
    },
    /// The JOSE header is not a JSON object of the expected shape.
    #[error("invalid token header: {reason}")]
    InvalidHeader {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The header names an algorithm other than RS256 (the only one Entra uses).
    #[error("unsupported algorithm {found:?}: only RS256 is accepted")]
    UnsupportedAlgorithm {
        /// The `alg` value seen (shortened).
        found: String,
    },
    /// The header has no usable `kid`.
    #[error("token header has no usable key id (kid): {reason}")]
    MissingKeyId {
        /// Missing, empty, not a string, too long, or non-printable.
        reason: &'static str,
    },
    /// The header carries a member this validator refuses (`crit`, `jwk`, `jku`, `x5u`,
    /// `x5c`, …): Entra never sends them, and keys are never taken from a token.
    #[error("token header member {name:?} is not accepted")]
    ForbiddenHeader {
        /// The header member's name.
        name: &'static str,
    },
    /// No signing key with this id is published by the identity provider.
    #[error("no signing key with id {kid:?} is published by the identity provider")]
    UnknownKey {
        /// The key id from the header (shortened).
        kid: String,
    },
    /// Signing keys could not be obtained from the identity provider (and none are cached).
    /// This is a service problem (503), never a reason to accept.
    #[error("signing keys are unavailable: {reason}")]
    KeysUnavailable {
        /// What went wrong fetching them.
        reason: String,
    },
    /// The signature does not verify under the key named by `kid`.
    #[error("signature verification failed")]
    InvalidSignature,
    /// The payload is not a JSON object of claims.
    #[error("invalid token payload: {reason}")]
    InvalidPayload {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A claim has the wrong JSON type (e.g. a string `exp`, a string `roles`).
    #[error("claim {claim:?} has the wrong type: expected {expected}")]
    InvalidClaimType {
        /// The claim's name.
        claim: &'static str,
        /// The JSON type required.
        expected: &'static str,
    },
    /// A claim appears twice, possibly in another letter case (`tid` and `TID`).
    #[error("claim {claim:?} appears more than once (in some letter case)")]
    DuplicateClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A required claim is absent.
    #[error("required claim {claim:?} is missing")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// The token has expired (with the clock skew allowed).
    #[error(
        "token expired at {} (now {}, skew {skew_secs} s)",
        secs(.expired_at),
        secs(.now)
    )]
    Expired {
        /// `exp`.
        expired_at: SystemTime,
        /// The current time.
        now: SystemTime,
        /// The skew allowed.
        skew_secs: u64,
    },
    /// The token is not valid yet (`nbf` in the future beyond the skew).
    #[error("token not valid before {} (now {})", secs(.not_before), secs(.now))]
    NotYetValid {
        /// `nbf`.
        not_before: SystemTime,
        /// The current time.
        now: SystemTime,
    },
    /// The token claims to be issued in the future beyond the skew.
    #[error(
        "token issued at {}, in the future (now {})",
        secs(.issued_at),
        secs(.now)
    )]
    IssuedInFuture {
        /// `iat`.
        issued_at: SystemTime,
        /// The current time.
        now: SystemTime,
    },
    /// `ver` is neither "1.0" nor "2.0".
    #[error("unsupported token version {found:?}")]
    UnsupportedVersion {
        /// The `ver` value seen (shortened).
        found: String,
    },
    /// The token version is not among the accepted ones.
    #[error("token version {found} is not accepted (accepted: {accepted})")]
    VersionNotAccepted {
        /// The version seen.
        found: &'static str,
        /// The versions accepted.
        accepted: &'static str,
    },
    /// `iss` is not byte-for-byte the issuer expected for this tenant and version.
    #[error("issuer mismatch: expected {expected:?}, found {found:?}")]
    IssuerMismatch {
        /// The issuer required.
        expected: String,
        /// The issuer seen (shortened).
        found: String,
    },
    /// `tid` is not a GUID.
    #[error("tenant id (tid) {found:?} is not a GUID")]
    InvalidTenantId {
        /// The value seen (shortened).
        found: String,
    },
    /// The token's tenant is not one this API accepts.
    #[error("tenant {tenant} is not allowed")]
    TenantNotAllowed {
        /// The token's tenant id.
        tenant: String,
    },
    /// The signing key is bound to another issuer than the token's (shared multi-tenant
    /// key sets must not let one tenant's key vouch for another).
    #[error("signing key {kid:?} is bound to issuer {key_issuer:?}, not to {token_issuer:?}")]
    KeyIssuerMismatch {
        /// The key id.
        kid: String,
        /// The issuer the key is published for.
        key_issuer: String,
        /// The token's issuer.
        token_issuer: String,
    },
    /// The token was issued for Microsoft Graph, not this API.
    #[error("token is for Microsoft Graph, not for this API")]
    GraphToken,
    /// `aud` is not one of this API's audiences.
    #[error("audience mismatch: expected one of {expected:?}, found {found:?}")]
    AudienceMismatch {
        /// The audiences accepted.
        expected: Vec<String>,
        /// The audiences seen (shortened).
        found: Vec<String>,
    },
    /// The token lacks the claim naming the calling client application (`azp` in v2,
    /// `appid` in v1) that every Entra access token carries: it is an ID token (or
    /// another token that is not an access token) and proves nothing to an API.
    #[error("not an access token: no {missing:?} claim (ID tokens are not accepted)")]
    NotAnAccessToken {
        /// The claim that is missing or empty: `"azp"` or `"appid"`.
        missing: &'static str,
    },
    /// The calling client application is not on the allow-list.
    #[error("client application {found:?} is not allowed")]
    ClientAppNotAllowed {
        /// `azp` / `appid` (shortened).
        found: String,
    },
    /// A claim holds a value that contradicts the rest of the token.
    #[error("claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Neither `scp` nor `roles`: Entra issues such app-only tokens to any application
    /// that asks, so they prove nothing about authorization.
    #[error("token has neither scopes (scp) nor roles")]
    NoScopesOrRoles,
    /// The caller's tokens issued before `revoked_before` were revoked
    /// ([`Governor::revoke`](crate::Governor::revoke)).
    #[error(
        "token issued before {}, when the caller's access was revoked",
        secs(.revoked_before)
    )]
    Revoked {
        /// Tokens issued before this instant (seconds since the epoch) are refused.
        revoked_before: SystemTime,
        /// True when the client handles claims challenges (`xms_cc` has `cp1`): it can be
        /// asked (the CAE `insufficient_claims` challenge) for a token issued after
        /// `revoked_before`. The HTTP edge (`http::Refusal`) builds that challenge.
        can_handle_claims_challenge: bool,
    },
    /// Fleet strict mode: this replica's view of the fleet's revocations is older than
    /// the configured bound (Redis unreachable), so it cannot tell whether the caller was
    /// revoked elsewhere. A service problem (503), never a reason to accept.
    #[error("the revocation view is {age_secs} s old, beyond the strict bound of {bound_secs} s")]
    RevocationViewStale {
        /// How old the view is, in whole seconds.
        age_secs: u64,
        /// The configured bound, in whole seconds.
        bound_secs: u64,
    },
}

impl TokenError {
    /// A stable snake_case code for audit trails and metrics (`"expired"`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token_too_large",
            Self::Malformed { .. } => "malformed_token",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Self::MissingKeyId { .. } => "missing_key_id",
            Self::ForbiddenHeader { .. } => "forbidden_header",
            Self::UnknownKey { .. } => "unknown_key",
            Self::KeysUnavailable { .. } => "keys_unavailable",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::InvalidClaimType { .. } => "invalid_claim_type",
            Self::DuplicateClaim { .. } => "duplicate_claim",
            Self::MissingClaim { .. } => "missing_claim",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssuedInFuture { .. } => "issued_in_future",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::VersionNotAccepted { .. } => "version_not_accepted",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::InvalidTenantId { .. } => "invalid_tenant_id",
            Self::TenantNotAllowed { .. } => "tenant_not_allowed",
            Self::KeyIssuerMismatch { .. } => "key_issuer_mismatch",
            Self::GraphToken => "graph_token",
            Self::AudienceMismatch { .. } => "audience_mismatch",
            Self::NotAnAccessToken { .. } => "not_an_access_token",
            Self::ClientAppNotAllowed { .. } => "client_app_not_allowed",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::NoScopesOrRoles => "no_scopes_or_roles",
            Self::Revoked { .. } => "revoked",
            Self::RevocationViewStale { .. } => "revocation_view_stale",
        }
    }

    /// A fixed, token-free phrase describing the failure (used in `error_description`).
    pub fn short_description(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token too large",
            Self::Malformed { .. } | Self::InvalidHeader { .. } | Self::InvalidPayload { .. } => {
                "malformed token"
            }
            Self::UnsupportedAlgorithm { .. } => "unsupported algorithm",
            Self::MissingKeyId { .. } | Self::UnknownKey { .. } => "unknown signing key",
            Self::ForbiddenHeader { .. } => "forbidden header",
            Self::KeysUnavailable { .. } => "signing keys unavailable",
            Self::InvalidSignature => "invalid signature",
            Self::InvalidClaimType { .. }
            | Self::DuplicateClaim { .. }
            | Self::MissingClaim { .. }
            | Self::InvalidClaim { .. } => "invalid claims",
            Self::Expired { .. } => "token expired",
            Self::NotYetValid { .. } | Self::IssuedInFuture { .. } => "token not yet valid",
            Self::UnsupportedVersion { .. } | Self::VersionNotAccepted { .. } => {
                "token version not accepted"
            }
            Self::IssuerMismatch { .. } | Self::KeyIssuerMismatch { .. } => "invalid issuer",
            Self::InvalidTenantId { .. } | Self::TenantNotAllowed { .. } => "tenant not allowed",
            Self::GraphToken | Self::AudienceMismatch { .. } => "invalid audience",
            Self::NotAnAccessToken { .. } => "not an access token",
            Self::ClientAppNotAllowed { .. } => "client application not allowed",
            Self::NoScopesOrRoles => "no scopes or roles",
            Self::Revoked { .. } => "token revoked",
            Self::RevocationViewStale { .. } => "revocation state unavailable",
        }
    }
}

/// Why [`Governor::authorize`](crate::Governor::authorize) could not reach a decision.
/// A refusal by the policy is not an error: it is a denying [`Decision`](crate::Decision).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The bearer token did not verify (401, or 503 when keys are unavailable).
    #[error("invalid token: {0}")]
    InvalidToken(#[from] TokenError),
    /// Strict audit mode: the audit trail is unavailable, so the request is refused
    /// (503) whatever the decision.
    #[error("the audit trail is unavailable; request refused (strict audit mode)")]
    AuditUnavailable,
}

/// A builder configuration that cannot work: a [`GovernorBuilder`](crate::GovernorBuilder),
/// or a `GraphGroupResolverBuilder` (feature `graph`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No client id was given: the audience check would be impossible.
    #[error("no client id: call .client_id(\"<the API's application (client) id>\")")]
    MissingClientId,
    /// The client id is not a GUID.
    #[error("client id {found:?} is not a GUID")]
    InvalidClientId {
        /// The value given.
        found: String,
    },
    /// No tenant mode was chosen.
    #[error(
        "no tenant: call .tenant(..), .tenants([..]) or, knowingly, .dangerous_accept_any_tenant()"
    )]
    MissingTenant,
    /// A tenant is neither a GUID nor a domain name.
    #[error("tenant {found:?} is neither a GUID nor a verified domain name")]
    InvalidTenant {
        /// The value given.
        found: String,
    },
    /// `common`, `organizations` or `consumers` was given as a tenant.
    #[error(
        "{found:?} is not a tenant: list tenant ids with .tenants([..]) or call .dangerous_accept_any_tenant()"
    )]
    MultiTenantAlias {
        /// The value given.
        found: String,
    },
    /// The tenant allow-list is empty.
    #[error("the tenant allow-list is empty")]
    EmptyTenantList,
    /// The authority URL cannot be used.
    #[error("authority {found:?} is invalid: {reason}")]
    InvalidAuthority {
        /// The value given.
        found: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// An audience (App ID URI) is empty or has control characters.
    #[error("audience {found:?} is invalid")]
    InvalidAudience {
        /// The value given.
        found: String,
    },
    /// No token version is accepted.
    #[error("no token version accepted: accept v1, v2 or both")]
    NoTokenVersion,
    /// A duration setting is out of range.
    #[error("{setting} is out of range: {reason}")]
    OutOfRange {
        /// The setting's name.
        setting: &'static str,
        /// The allowed range.
        reason: &'static str,
    },
    /// An allowed client app id is not a GUID.
    #[error("allowed client application {found:?} is not a GUID")]
    InvalidClientApp {
        /// The value given.
        found: String,
    },
    /// A shadow policy was set on a governor without an audit log: its differences are
    /// written to the audit trail, and decided by the log's worker.
    #[error("a shadow policy needs an audit log (GovernorBuilder::audit)")]
    ShadowWithoutAudit,
    /// The audit log already decides another governor's shadow policy: give each
    /// governor with a shadow policy its own audit log.
    #[error("the audit log already evaluates another governor's shadow policy")]
    AuditLogShadowTaken,
    /// The built-in deny-all policy could not be compiled (a bug: please report it).
    #[error("the built-in deny-all policy did not compile")]
    DenyAllPolicy,
    /// The revocation file could not be loaded (the cause is the error's `source()`).
    #[error("the revocation file could not be loaded")]
    Revocations(#[source] crate::revocation::RevocationError),
    /// The HTTP client could not be built (the cause is the error's `source()`).
    #[error("could not build the HTTP client")]
    HttpClient(#[source] Cause),
    /// The Microsoft Graph base URL cannot be used.
    #[error("Microsoft Graph base URL {found:?} is invalid: {reason}")]
    InvalidGraphBase {
        /// The value given.
        found: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A client credential cannot be used. The credential itself is never shown.
    #[error("client credential is invalid: {reason}")]
    InvalidCredential {
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The governor accepts more than one tenant and the policy has claim-value bindings
    /// (`app_role`, `app_permission`, `directory_role`) without `tenants`: each tenant's
    /// administrators set those values, so every such binding must say whose it trusts.
    #[error(
        "the governor accepts more than one tenant, so every app_role, app_permission and \
         directory_role binding must say which tenants' administrators it trusts \
         (tenants = [\"<tenant id>\"]); unqualified: {}",
        list_bindings(.bindings)
    )]
    UnqualifiedClaimBindings {
        /// Every unqualified claim-value binding, in policy order.
        bindings: Vec<crate::policy::UnqualifiedBinding>,
    },
    /// The fleet key cannot be used. The key itself is never shown.
    #[error("fleet key is invalid: {reason}")]
    InvalidFleetKey {
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The Redis URL of fleet mode cannot be used. Only its scheme, host and port are
    /// shown, never a password in it.
    #[error("Redis URL {shown} is invalid: {reason}")]
    InvalidRedisUrl {
        /// `scheme://host:port` of the value given (or `<unparsable>`).
        shown: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// Fleet mode starts background tasks: `build()` must run inside a tokio runtime.
    #[error("fleet mode needs a tokio runtime: call build() inside one")]
    FleetNeedsRuntime,
    /// This fleet handle already serves another governor (one governor per handle).
    #[error("this fleet handle is already attached to a governor")]
    FleetInUse,
}

fn list_bindings(bindings: &[crate::policy::UnqualifiedBinding]) -> String {
    let names: Vec<String> = bindings.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// Why [`Governor::reload_policy_from_path`](crate::Governor::reload_policy_from_path)
/// kept the current policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The file could not be read, parsed or validated.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The policy is valid but does not fit this governor's configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// An instant in an error message: seconds since the Unix epoch, as in the token's claims
/// and Entra's logs.
fn secs(t: &SystemTime) -> u64 {
    crate::clock::unix_secs(*t)
}

/// The underlying error of a [`ConfigError`], kept as its `source()` rather than flattened
/// into a string (the rustls `OtherError` model). Clones share the error; two causes are
/// equal only when they are clones of one.
#[derive(Debug, Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Keeps `error` as a cause.
    pub(crate) fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(error))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cause {}

/// A shortened, printable copy of an attacker-controlled string, for error messages:
/// at most 128 characters, control and non-ASCII characters escaped.
pub(crate) fn excerpt(s: &str) -> String {
    struct Escaped<'a>(&'a str);
    impl fmt::Display for Escaped<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, c) in self.0.chars().enumerate() {
                if i == 128 {
                    return f.write_str("…");
                }
                if c.is_ascii_graphic() || c == ' ' {
                    write!(f, "{c}")?;
                } else {
                    write!(f, "{}", c.escape_unicode())?;
                }
            }
            Ok(())
        }
    }
    Escaped(s).to_string()
}

#[cfg(test)]
mod tests;
