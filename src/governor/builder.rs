//! [`GovernorBuilder`]: configuration with secure defaults, checked once by `build()`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use reqwest::Url;

use super::{Governor, Inner};
use crate::audit::AuditLog;
use crate::cloud::{Cloud, check_base_url};
use crate::error::ConfigError;
use crate::graph::GroupResolver;
use crate::ids::{TenantId, is_guid};
use crate::policy::Policy;
use crate::principal::TokenVersion;
use crate::revocation::{DEFAULT_MAX_REVOCATIONS, Revocations};
use crate::token::Verifier;
use crate::token::cache::VerifiedTokens;
use crate::fetch::Fetcher;
use crate::token::keys::{ExpectedIssuer, KeySourceConfig, KeyStore};
use crate::token::validate::{Rules, TenantRule};

/// Default cap on a presented token: 32 KiB.
///
/// Entra caps the `groups` claim at 200 entries (overage past that), so its largest
/// realistic access tokens are about 10 KB; 32 KiB leaves three times that room, stays
/// under common proxy header limits, and bounds the work an unauthenticated caller can
/// cause. (Microsoft.IdentityModel's 250 KB is sized for SAML and ID tokens too.)
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 32 * 1024;
/// Default clock skew: 300 s, as Microsoft.IdentityModel.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Default minimum time between two unknown-`kid` key refreshes: 5 minutes.
pub const DEFAULT_KEY_REFRESH_COOLDOWN: Duration = Duration::from_secs(300);
/// Default periodic key refresh: every 12 hours (plus up to 10% jitter).
pub const DEFAULT_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(12 * 3600);
/// Bounds of [`GovernorBuilder::key_refresh_cooldown`]: 1 s to 1 hour.
///
/// The minimum is Microsoft's configuration manager's (`MinimumRefreshInterval`): below it,
/// a flood of unknown `kid`s becomes a flood of JWKS fetches. The maximum bounds an outage:
/// after an emergency key roll, tokens signed with the new key are refused until the next
/// unknown-`kid` refresh, so a cooldown of hours would refuse every fresh token for hours.
pub const KEY_REFRESH_COOLDOWN_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);
/// Bounds of [`GovernorBuilder::key_refresh_interval`]: 5 minutes to 24 hours.
///
/// The minimum is Microsoft's configuration manager's (`MinimumAutomaticRefreshInterval`).
/// The maximum bounds how long a key that Entra has withdrawn (a compromised key removed
/// in an emergency roll) stays trusted when no unknown `kid` triggers a refresh: twice
/// Microsoft's 12-hour default, and short enough that nothing overflows.
pub const KEY_REFRESH_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(300)..=Duration::from_secs(24 * 3600);
/// The lower bounds that [`GovernorBuilder::dangerous_fast_key_refresh`] allows instead
/// (tests only): cooldown 1 ms, periodic refresh 10 ms.
const FAST_KEY_REFRESH_MINIMUMS: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_millis(10));
/// Default deadline for one identity-provider request: 10 s.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default memory bound of the verified-token cache: 64 MiB (about 16,000 Entra tokens
/// of 2.2 KB with 20 groups: 4.2 KB each with their verified claims).
pub const DEFAULT_TOKEN_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest discovery or JWKS document accepted: 512 KiB (Entra's are a few KB).
pub const MAX_METADATA_BYTES: usize = 512 * 1024;

#[derive(Clone, Debug)]
enum TenantChoice {
    Single(String),
    List(Vec<String>),
    Any,
}

/// Configuration for a [`Governor`]. Every default is the secure choice; settings that
/// weaken security are named `dangerous_*`.
///
/// `build()` does not touch the network: keys are fetched on first use (or by
/// [`Governor::prefetch_keys`]). When Entra is unreachable the governor starts anyway and
/// answers [`TokenError::KeysUnavailable`](crate::TokenError::KeysUnavailable) (HTTP 503) for every token until keys arrive;
/// it never accepts a token it could not check.
#[derive(Clone)]
pub struct GovernorBuilder {
    cloud: Cloud,
    tenant: Option<TenantChoice>,
    client_id: Option<String>,
    app_id_uris: Vec<String>,
    accept_v1: bool,
    accept_v2: bool,
    allowed_client_apps: Option<Vec<String>>,
    clock_skew: Duration,
    max_token_bytes: usize,
    custom_signing_keys: bool,
    http_client: Option<reqwest::Client>,
    http_timeout: Duration,
    key_refresh_cooldown: Duration,
    key_refresh_interval: Option<Duration>,
    fast_key_refresh: bool,
    allow_http_loopback: bool,
    acl_mode: bool,
    groups_claim_emitted: bool,
    acct_claim_emitted: bool,
    policy: Option<Policy>,
    revocations_file: Option<std::path::PathBuf>,
    max_revocations: usize,
    audit: Option<AuditLog>,
    audit_display_names: bool,
    groups: Option<Arc<dyn GroupResolver>>,
    token_cache_bytes: Option<u64>,
}

impl std::fmt::Debug for GovernorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernorBuilder")
            .field("cloud", &self.cloud)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("app_id_uris", &self.app_id_uris)
            .field("policy", &self.policy.as_ref().map(Policy::version_hash))
            .field("group_resolver", &self.groups.is_some())
            .field("audit", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for GovernorBuilder {
    fn default() -> Self {
        Self {
            cloud: Cloud::global(),
            tenant: None,
            client_id: None,
            app_id_uris: Vec::new(),
            accept_v1: true,
            accept_v2: true,
            allowed_client_apps: None,
            clock_skew: DEFAULT_CLOCK_SKEW,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            custom_signing_keys: false,
            http_client: None,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            key_refresh_cooldown: DEFAULT_KEY_REFRESH_COOLDOWN,
            key_refresh_interval: Some(DEFAULT_KEY_REFRESH_INTERVAL),
            fast_key_refresh: false,
            allow_http_loopback: false,
            acl_mode: false,
            groups_claim_emitted: false,
            acct_claim_emitted: false,
            policy: None,
            revocations_file: None,
            max_revocations: DEFAULT_MAX_REVOCATIONS,
            audit: None,
            audit_display_names: false,
            groups: None,
            token_cache_bytes: Some(DEFAULT_TOKEN_CACHE_BYTES),
        }
    }
}

impl GovernorBuilder {
    /// The Entra cloud (default: global).
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// Accept tokens of one tenant, by GUID or verified domain name
    /// (`contoso.onmicrosoft.com`); a domain's tenant id is learnt from discovery.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(TenantChoice::Single(tenant.into()));
        self
    }

    /// Accept tokens of any of these tenants (GUIDs): a multi-tenant API with an
    /// allow-list. Keys come from the `organizations` endpoint and are bound per tenant.
    pub fn tenants<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tenants: I) -> Self {
        self.tenant = Some(TenantChoice::List(
            tenants.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Accept a correctly signed token from **any** Entra tenant (not personal accounts).
    ///
    /// Dangerous: anyone can create a tenant and obtain tokens for a multi-tenant app
    /// (BingBang, 2023). Only for APIs whose policy does the tenant checks itself.
    pub fn dangerous_accept_any_tenant(mut self) -> Self {
        self.tenant = Some(TenantChoice::Any);
        self
    }

    /// The API's application (client) id, a GUID. Required. Accepted audiences default to
    /// `{client_id}` and `api://{client_id}`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// An extra accepted audience: an App ID URI such as `https://contoso.com/ai-api`.
    pub fn app_id_uri(mut self, uri: impl Into<String>) -> Self {
        self.app_id_uris.push(uri.into());
        self
    }

    /// Which token versions are accepted (default: both).
    pub fn accept_token_versions(mut self, versions: &[TokenVersion]) -> Self {
        self.accept_v1 = versions.contains(&TokenVersion::V1);
        self.accept_v2 = versions.contains(&TokenVersion::V2);
        self
    }

    /// Accept only calls made through these client applications (`azp` / `appid`).
    pub fn allowed_client_apps<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        apps: I,
    ) -> Self {
        self.allowed_client_apps = Some(apps.into_iter().map(Into::into).collect());
        self
    }

    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 300 s, at most 600 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Largest token accepted, in bytes (default [`DEFAULT_MAX_TOKEN_BYTES`]; 1 KiB to
    /// 256 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// The app registration uses custom signing keys (claims mapping): fetch its keys with
    /// `?appid={client_id}`.
    pub fn custom_signing_keys(mut self) -> Self {
        self.custom_signing_keys = true;
        self
    }

    /// Use this HTTP client for discovery and keys (share one across your service).
    /// Redirects are refused whatever the client's policy.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Deadline for one identity-provider request (default 10 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Minimum time between two key refreshes caused by unknown `kid`s (default 5 min;
    /// 1 s to 1 h, see [`KEY_REFRESH_COOLDOWN_RANGE`]).
    pub fn key_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.key_refresh_cooldown = cooldown;
        self
    }

    /// Periodic key refresh interval, or `None` to refresh only on unknown `kid`s
    /// (default 12 h, plus up to 10% jitter; 5 min to 24 h, see
    /// [`KEY_REFRESH_INTERVAL_RANGE`]).
    pub fn key_refresh_interval(mut self, interval: Option<Duration>) -> Self {
        self.key_refresh_interval = interval;
        self
    }

    /// For tests against a local identity provider only (feature `testing`): lowers the
    /// minimum [`key_refresh_cooldown`](Self::key_refresh_cooldown) to 1 ms and the minimum
    /// [`key_refresh_interval`](Self::key_refresh_interval) to 10 ms, so rotation tests run
    /// in milliseconds. The maximums stay. Dangerous against Entra: unknown-`kid` floods
    /// turn into JWKS request floods.
    #[cfg(feature = "testing")]
    pub fn dangerous_fast_key_refresh(mut self) -> Self {
        self.fast_key_refresh = true;
        self
    }

    /// Allow a plain `http://` authority when its host is a loopback address (tests and
    /// local demos against a look-alike identity provider). Dangerous anywhere else.
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// Accept tokens that carry neither `scp` nor `roles` (ACL mode). Dangerous: Entra
    /// issues such app-only tokens to any application in the tenant that asks.
    pub fn dangerous_accept_tokens_without_scopes_or_roles(mut self) -> Self {
        self.acl_mode = true;
        self
    }

    /// Say that the app registration emits group claims (`groupMembershipClaims` set to
    /// `SecurityGroup` or `All`, covering every group the policy binds). Entra omits a
    /// claim that has no value, so a token without `groups` and without an overage marker
    /// then means "member of no groups", decided as such: no Microsoft Graph call per
    /// group-less user and no refusal for unknown membership. Separation-of-duty rules
    /// then see exactly the token's groups, as for any listed membership.
    ///
    /// Leave it off (the default) when the registration emits no groups, or only groups
    /// assigned to the application (`ApplicationGroup`) while the policy binds others: a
    /// missing claim is then unknown membership, which a group resolver resolves and
    /// which, without one, is refused (HTTP 403,
    /// [`Reason::GroupMembershipUnknown`](crate::Reason::GroupMembershipUnknown)).
    pub fn groups_claim_emitted(mut self, emitted: bool) -> Self {
        self.groups_claim_emitted = emitted;
        self
    }

    /// Say that the app registration emits the `acct` optional claim (0 member, 1 guest).
    /// Legacy internal guests carry no `idp` and are recognisable only by `acct = 1`; with
    /// this setting a user token without `acct` is of unknown guest status and fails
    /// closed: bindings treat it as a guest (only `guests = true` ones admit it) and every
    /// deny rule with a `guest` condition, `true` or `false`, applies to it
    /// ([`Principal::guest_status`](crate::Principal::guest_status)). Off by default: a user
    /// is then a guest when `acct = 1` or its `idp` is another tenant or provider.
    pub fn acct_claim_emitted(mut self, emitted: bool) -> Self {
        self.acct_claim_emitted = emitted;
        self
    }

    /// Keep revocations in this JSON file: loaded by `build()` (a missing file is an
    /// empty list) and rewritten atomically on every change.
    pub fn revocations_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.revocations_file = Some(path.into());
        self
    }

    /// Bound on live revocation entries (default 100,000).
    pub fn max_revocations(mut self, max: usize) -> Self {
        self.max_revocations = max;
        self
    }

    /// Record every authorization (allow, deny, invalid token, unavailable) to this audit
    /// log. See [`AuditLog`] for the lossless, dropping and strict modes.
    pub fn audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// Include the caller's display name in audit events (off by default: names are
    /// personal data and mutable; ids identify the caller).
    pub fn audit_display_names(mut self, include: bool) -> Self {
        self.audit_display_names = include;
        self
    }

    /// Resolve group membership of overage tokens (more than 200 groups) with this
    /// resolver, e.g. a [`GraphGroupResolver`](crate::GraphGroupResolver). Without one,
    /// such callers are denied with reason `group_membership_unavailable` whenever a group
    /// binding could change the answer.
    pub fn group_resolver(mut self, resolver: impl GroupResolver + 'static) -> Self {
        self.groups = Some(Arc::new(resolver));
        self
    }

    /// Memory bound of the verified-token cache, or `None` to verify every request in
    /// full (default [`DEFAULT_TOKEN_CACHE_BYTES`]). See the `token` module for what the
    /// cache guarantees.
    pub fn verified_token_cache(mut self, max_bytes: Option<u64>) -> Self {
        self.token_cache_bytes = max_bytes;
        self
    }

    /// The authorization policy. Without one, every request is denied.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Checks the configuration and builds the governor. No network access happens here.
    ///
    /// # Errors
    /// A [`ConfigError`] for every inconsistent or insecure setting.
    pub fn build(self) -> Result<Governor, ConfigError> {
        let client_id = self.checked_client_id()?;
        let authority = self.checked_authority()?;
        if !self.accept_v1 && !self.accept_v2 {
            return Err(ConfigError::NoTokenVersion);
        }
        if self.clock_skew > Duration::from_secs(600) {
            return Err(ConfigError::OutOfRange {
                setting: "clock_skew",
                reason: "at most 600 s",
            });
        }
        if !(1024..=256 * 1024).contains(&self.max_token_bytes) {
            return Err(ConfigError::OutOfRange {
                setting: "max_token_bytes",
                reason: "1 KiB to 256 KiB",
            });
        }
        if self.http_timeout.is_zero() || self.http_timeout > Duration::from_secs(120) {
            return Err(ConfigError::OutOfRange {
                setting: "http_timeout",
                reason: "above zero, at most 120 s",
            });
        }
        self.check_key_refresh()?;
        let (tenant_rule, segment, expected_issuer) = self.tenant_setup()?;
        let tenant_scope = tenant_rule.scope();
        let audiences = self.audiences(&client_id)?;
        let allowed_client_apps = self.checked_client_apps()?;
        let mut discovery = format!("{authority}/{segment}/v2.0/.well-known/openid-configuration");
        if self.custom_signing_keys {
            discovery.push_str(&format!("?appid={client_id}"));
        }
        let discovery_url = Url::parse(&discovery).map_err(|_| ConfigError::InvalidAuthority {
            found: authority.clone(),
            reason: "not a URL",
        })?;
        let client = match self.http_client.clone() {
            Some(c) => c,
            None => Fetcher::default_client(self.http_timeout)
                .map_err(|e| ConfigError::HttpClient(e.to_string()))?,
        };
        let fetcher = Fetcher {
            client,
            timeout: self.http_timeout,
            max_body: MAX_METADATA_BYTES,
        };
        let mut key_origins = vec![discovery_url.origin().ascii_serialization()];
        key_origins.extend(
            self.cloud
                .extra_key_hosts
                .iter()
                .map(|h| format!("https://{h}")),
        );
        let keys = KeyStore::new(
            KeySourceConfig {
                discovery_url,
                expected_issuer,
                key_origins,
                cooldown: self.key_refresh_cooldown,
                refresh_interval: self.key_refresh_interval,
            },
            fetcher,
        );
        let rules = Rules {
            cloud: self.cloud,
            tenants: tenant_rule,
            audiences,
            accept_v1: self.accept_v1,
            accept_v2: self.accept_v2,
            allowed_client_apps,
            skew_secs: self.clock_skew.as_secs(),
            acl_mode: self.acl_mode,
            groups_claim_emitted: self.groups_claim_emitted,
            acct_claim_emitted: self.acct_claim_emitted,
        };
        let policy = match self.policy {
            Some(p) => p,
            None => Policy::from_toml_str("version = 1").map_err(|_| ConfigError::DenyAllPolicy)?,
        };
        super::check_tenant_trust(tenant_scope, &policy.compiled())?;
        let revocations = Revocations::open(self.revocations_file.clone(), self.max_revocations)
            .map_err(|e| ConfigError::Revocations(e.to_string()))?;
        Ok(Governor {
            inner: Arc::new(Inner {
                instance: super::next_instance(),
                revocations,
                audit: self.audit,
                audit_display_names: self.audit_display_names,
                groups: self.groups,
                verifier: Verifier {
                    rules,
                    max_token_bytes: self.max_token_bytes,
                    keys,
                    verified: self.token_cache_bytes.map(VerifiedTokens::new),
                },
                policy: ArcSwap::new(policy.compiled()),
            }),
        })
    }

    fn check_key_refresh(&self) -> Result<(), ConfigError> {
        let (cooldown, interval) = (&KEY_REFRESH_COOLDOWN_RANGE, &KEY_REFRESH_INTERVAL_RANGE);
        let (min_cooldown, min_interval, cooldown_reason, interval_reason) =
            if self.fast_key_refresh {
                let (c, i) = FAST_KEY_REFRESH_MINIMUMS;
                (c, i, "1 ms to 1 h", "10 ms to 24 h")
            } else {
                (
                    *cooldown.start(),
                    *interval.start(),
                    "1 s to 1 h",
                    "5 min to 24 h",
                )
            };
        if !(min_cooldown..=*cooldown.end()).contains(&self.key_refresh_cooldown) {
            return Err(ConfigError::OutOfRange {
                setting: "key_refresh_cooldown",
                reason: cooldown_reason,
            });
        }
        if self
            .key_refresh_interval
            .is_some_and(|i| !(min_interval..=*interval.end()).contains(&i))
        {
            return Err(ConfigError::OutOfRange {
                setting: "key_refresh_interval",
                reason: interval_reason,
            });
        }
        Ok(())
    }

    fn checked_client_id(&self) -> Result<String, ConfigError> {
        let id = self
            .client_id
            .as_deref()
            .ok_or(ConfigError::MissingClientId)?;
        if !is_guid(id) {
            return Err(ConfigError::InvalidClientId { found: id.into() });
        }
        Ok(id.to_ascii_lowercase())
    }

    fn checked_authority(&self) -> Result<String, ConfigError> {
        let raw = self.cloud.authority();
        check_base_url(raw, self.allow_http_loopback).map_err(|reason| {
            ConfigError::InvalidAuthority {
                found: raw.to_owned(),
                reason,
            }
        })?;
        Ok(raw.trim_end_matches('/').to_owned())
    }

    fn tenant_setup(&self) -> Result<(TenantRule, String, ExpectedIssuer), ConfigError> {
        let template = ExpectedIssuer::Exact(self.cloud.v2_issuer("{tenantid}"));
        match self.tenant.as_ref().ok_or(ConfigError::MissingTenant)? {
            TenantChoice::Single(t) if is_guid(t) => {
                let t = t.to_ascii_lowercase();
                Ok((
                    TenantRule::Single,
                    t.clone(),
                    ExpectedIssuer::Exact(self.cloud.v2_issuer(&t)),
                ))
            }
            TenantChoice::Single(t) => {
                check_domain(t)?;
                let issuer = self.cloud.v2_issuer("{}");
                let (prefix, suffix) = issuer.split_once("{}").unwrap_or((&issuer, ""));
                Ok((
                    TenantRule::Single,
                    t.to_ascii_lowercase(),
                    ExpectedIssuer::AnyGuid {
                        prefix: prefix.into(),
                        suffix: suffix.into(),
                    },
                ))
            }
            TenantChoice::List(list) => {
                if list.is_empty() {
                    return Err(ConfigError::EmptyTenantList);
                }
                let set = list
                    .iter()
                    .map(|t| {
                        TenantId::parse(t)
                            .map_err(|_| ConfigError::InvalidTenant { found: t.clone() })
                    })
                    .collect::<Result<HashSet<_>, _>>()?;
                Ok((TenantRule::AllowList(set), "organizations".into(), template))
            }
            TenantChoice::Any => Ok((TenantRule::Any, "organizations".into(), template)),
        }
    }

    fn audiences(&self, client_id: &str) -> Result<Vec<String>, ConfigError> {
        let mut audiences = vec![client_id.to_owned(), format!("api://{client_id}")];
        for uri in &self.app_id_uris {
            if uri.is_empty() || uri.chars().any(char::is_control) {
                return Err(ConfigError::InvalidAudience { found: uri.clone() });
            }
            if !audiences.contains(uri) {
                audiences.push(uri.clone());
            }
        }
        Ok(audiences)
    }

    fn checked_client_apps(&self) -> Result<Option<HashSet<String>>, ConfigError> {
        self.allowed_client_apps
            .as_ref()
            .map(|apps| {
                apps.iter()
                    .map(|a| {
                        if is_guid(a) {
                            Ok(a.to_ascii_lowercase())
                        } else {
                            Err(ConfigError::InvalidClientApp { found: a.clone() })
                        }
                    })
                    .collect()
            })
            .transpose()
    }
}

fn check_domain(t: &str) -> Result<(), ConfigError> {
    let lower = t.to_ascii_lowercase();
    if ["common", "organizations", "consumers"].contains(&lower.as_str()) {
        return Err(ConfigError::MultiTenantAlias { found: t.into() });
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if t.len() > 253 || !t.contains('.') || !t.split('.').all(valid_label) {
        return Err(ConfigError::InvalidTenant { found: t.into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const C: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

    fn base() -> GovernorBuilder {
        Governor::builder().tenant(T).client_id(C)
    }

    #[test]
    fn secure_defaults_build() {
        assert!(base().build().is_ok());
        assert!(
            Governor::builder()
                .tenant("contoso.onmicrosoft.com")
                .client_id(C)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn inconsistent_configurations_are_refused() {
        let cases: Vec<(GovernorBuilder, ConfigError)> = vec![
            (Governor::builder().tenant(T), ConfigError::MissingClientId),
            (Governor::builder().client_id(C), ConfigError::MissingTenant),
            (
                base().client_id("api://x"),
                ConfigError::InvalidClientId {
                    found: "api://x".into(),
                },
            ),
            (
                base().tenant("common"),
                ConfigError::MultiTenantAlias {
                    found: "common".into(),
                },
            ),
            (
                base().tenant("not a tenant"),
                ConfigError::InvalidTenant {
                    found: "not a tenant".into(),
                },
            ),
            (
                base().tenants(Vec::<String>::new()),
                ConfigError::EmptyTenantList,
            ),
            (
                base().tenants(["contoso.com"]),
                ConfigError::InvalidTenant {
                    found: "contoso.com".into(),
                },
            ),
            (
                base().accept_token_versions(&[]),
                ConfigError::NoTokenVersion,
            ),
            (
                base().max_token_bytes(10),
                ConfigError::OutOfRange {
                    setting: "max_token_bytes",
                    reason: "1 KiB to 256 KiB",
                },
            ),
            (
                base().clock_skew(Duration::from_secs(3600)),
                ConfigError::OutOfRange {
                    setting: "clock_skew",
                    reason: "at most 600 s",
                },
            ),
            (
                base().allowed_client_apps(["x"]),
                ConfigError::InvalidClientApp { found: "x".into() },
            ),
            (
                base().app_id_uri(""),
                ConfigError::InvalidAudience { found: "".into() },
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(builder.build().unwrap_err(), expected);
        }
    }

    #[test]
    fn key_refresh_timings_are_bounded_at_both_ends() {
        let cooldown = |reason| ConfigError::OutOfRange {
            setting: "key_refresh_cooldown",
            reason,
        };
        let interval = |reason| ConfigError::OutOfRange {
            setting: "key_refresh_interval",
            reason,
        };
        let (secs, ms) = (Duration::from_secs, Duration::from_millis);
        for ok in [secs(1), secs(300), secs(3600)] {
            assert!(base().key_refresh_cooldown(ok).build().is_ok(), "{ok:?}");
        }
        for bad in [Duration::ZERO, ms(999), secs(3601), Duration::MAX] {
            let err = base().key_refresh_cooldown(bad).build().unwrap_err();
            assert_eq!(err, cooldown("1 s to 1 h"), "{bad:?}");
        }
        for ok in [
            None,
            Some(secs(300)),
            Some(secs(12 * 3600)),
            Some(secs(86_400)),
        ] {
            assert!(base().key_refresh_interval(ok).build().is_ok(), "{ok:?}");
        }
        for bad in [
            Duration::ZERO,
            ms(10),
            secs(299),
            secs(86_401),
            Duration::MAX,
        ] {
            let err = base().key_refresh_interval(Some(bad)).build().unwrap_err();
            assert_eq!(err, interval("5 min to 24 h"), "{bad:?}");
        }
    }

    #[test]
    #[cfg(feature = "testing")]
    fn fast_key_refresh_lowers_only_the_minimums() {
        let (secs, ms) = (Duration::from_secs, Duration::from_millis);
        let fast = || base().dangerous_fast_key_refresh();
        assert!(
            fast()
                .key_refresh_cooldown(ms(1))
                .key_refresh_interval(Some(ms(10)))
                .build()
                .is_ok()
        );
        let cases = [
            (
                fast().key_refresh_cooldown(Duration::ZERO),
                "key_refresh_cooldown",
                "1 ms to 1 h",
            ),
            (
                fast().key_refresh_cooldown(secs(3601)),
                "key_refresh_cooldown",
                "1 ms to 1 h",
            ),
            (
                fast().key_refresh_interval(Some(ms(9))),
                "key_refresh_interval",
                "10 ms to 24 h",
            ),
            (
                fast().key_refresh_interval(Some(Duration::MAX)),
                "key_refresh_interval",
                "10 ms to 24 h",
            ),
        ];
        for (builder, setting, reason) in cases {
            assert_eq!(
                builder.build().unwrap_err(),
                ConfigError::OutOfRange { setting, reason }
            );
        }
    }

    #[test]
    fn plain_http_needs_the_dangerous_switch_and_loopback() {
        let http = |a: &str| base().cloud(Cloud::custom(a));
        assert!(matches!(
            http("http://127.0.0.1:8080").build(),
            Err(ConfigError::InvalidAuthority { .. })
        ));
        assert!(
            http("http://127.0.0.1:8080")
                .dangerous_allow_http_loopback()
                .build()
                .is_ok()
        );
        assert!(
            http("http://[::1]:8080")
                .dangerous_allow_http_loopback()
                .build()
                .is_ok()
        );
        assert!(
            http("http://localhost:8080")
                .dangerous_allow_http_loopback()
                .build()
                .is_ok()
        );
        assert!(matches!(
            http("http://10.0.0.1:8080")
                .dangerous_allow_http_loopback()
                .build(),
            Err(ConfigError::InvalidAuthority {
                reason: "plain http is allowed only for loopback hosts",
                ..
            })
        ));
        assert!(matches!(
            http("ftp://x").build(),
            Err(ConfigError::InvalidAuthority {
                reason: "scheme must be https",
                ..
            })
        ));
    }

    #[test]
    fn default_audiences_are_client_id_and_api_uri() {
        let a = base()
            .app_id_uri("https://contoso.com/ai")
            .audiences(C)
            .unwrap();
        assert_eq!(
            a,
            vec![
                C.to_owned(),
                format!("api://{C}"),
                "https://contoso.com/ai".to_owned()
            ]
        );
    }
}
