//! [`VerifierSettings`]: the token stage's settings and their defaults, checked once and
//! turned into a [`Verifier`] (its key store and verified-token cache included).
//!
//! The governor's builder only writes these settings (its token setters) and hands them
//! over; every bound a token setting must respect, and the [`ConfigError`] that reports
//! it, lives here beside the default it bounds.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Url;

use super::Verifier;
use super::cache::VerifiedTokens;
use super::keys::{ExpectedIssuer, KeySourceConfig, KeyStore};
use super::validate::{Rules, TenantRule};
use crate::cloud::{Cloud, check_base_url};
use crate::error::ConfigError;
use crate::fetch::{DEFAULT_HTTP_TIMEOUT, Fetcher};
use crate::ids::{TenantId, is_guid};

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
/// Bounds of [`GovernorBuilder::key_refresh_cooldown`](crate::GovernorBuilder::key_refresh_cooldown):
/// 1 s to 1 hour.
///
/// The minimum is Microsoft's configuration manager's (`MinimumRefreshInterval`): below it,
/// a flood of unknown `kid`s becomes a flood of JWKS fetches. The maximum bounds an outage:
/// after an emergency key roll, tokens signed with the new key are refused until the next
/// unknown-`kid` refresh, so a cooldown of hours would refuse every fresh token for hours.
pub const KEY_REFRESH_COOLDOWN_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);
/// Bounds of [`GovernorBuilder::key_refresh_interval`](crate::GovernorBuilder::key_refresh_interval):
/// 5 minutes to 24 hours.
///
/// The minimum is Microsoft's configuration manager's (`MinimumAutomaticRefreshInterval`).
/// The maximum bounds how long a key that Entra has withdrawn (a compromised key removed
/// in an emergency roll) stays trusted when no unknown `kid` triggers a refresh: twice
/// Microsoft's 12-hour default, and short enough that nothing overflows.
pub const KEY_REFRESH_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(300)..=Duration::from_secs(24 * 3600);
/// The lower bounds that `GovernorBuilder::dangerous_fast_key_refresh` allows instead
/// (tests only): cooldown 1 ms, periodic refresh 10 ms.
const FAST_KEY_REFRESH_MINIMUMS: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_millis(10));
/// Default memory bound of the verified-token cache: 64 MiB (about 16,000 Entra tokens
/// of 2.2 KB with 20 groups: 4.2 KB each with their verified claims).
pub const DEFAULT_TOKEN_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest discovery or JWKS document accepted: 512 KiB (Entra's are a few KB).
pub const MAX_METADATA_BYTES: usize = 512 * 1024;

/// Which tenants the caller asked for, before it is checked.
#[derive(Clone, Debug)]
pub(crate) enum TenantChoice {
    Single(String),
    List(Vec<String>),
    Any,
}

/// The token stage's settings, as the governor builder's setters wrote them. Every
/// default is the secure choice.
#[derive(Clone)]
pub(crate) struct VerifierSettings {
    pub(crate) cloud: Cloud,
    pub(crate) tenant: Option<TenantChoice>,
    pub(crate) client_id: Option<String>,
    pub(crate) app_id_uris: Vec<String>,
    pub(crate) accept_v1: bool,
    pub(crate) accept_v2: bool,
    pub(crate) allowed_client_apps: Option<Vec<String>>,
    pub(crate) clock_skew: Duration,
    pub(crate) max_token_bytes: usize,
    pub(crate) custom_signing_keys: bool,
    pub(crate) http_client: Option<reqwest::Client>,
    pub(crate) http_timeout: Duration,
    pub(crate) key_refresh_cooldown: Duration,
    pub(crate) key_refresh_interval: Option<Duration>,
    pub(crate) fast_key_refresh: bool,
    pub(crate) allow_http_loopback: bool,
    pub(crate) acl_mode: bool,
    pub(crate) groups_claim_emitted: bool,
    pub(crate) acct_claim_emitted: bool,
    pub(crate) token_cache_bytes: Option<u64>,
}

impl Default for VerifierSettings {
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
            token_cache_bytes: Some(DEFAULT_TOKEN_CACHE_BYTES),
        }
    }
}

impl VerifierSettings {
    /// Checks the settings and builds the verifier, its key store and its cache. No
    /// network access happens here: keys are fetched on first use.
    pub(crate) fn build(self) -> Result<Verifier, ConfigError> {
        let client_id = self.checked_client_id()?;
        let authority = self.checked_authority()?;
        self.check_bounds()?;
        let (tenant_rule, segment, expected_issuer) = self.tenant_setup()?;
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
                .map_err(|e| ConfigError::HttpClient(crate::error::Cause::new(e)))?,
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
        Ok(Verifier {
            rules,
            max_token_bytes: self.max_token_bytes,
            keys,
            verified: self.token_cache_bytes.map(VerifiedTokens::new),
            hot: crate::observe::Hot::register(),
        })
    }

    /// The token versions, clock skew, token size, HTTP deadline and key refresh timings,
    /// in this order.
    fn check_bounds(&self) -> Result<(), ConfigError> {
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
        self.check_key_refresh()
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

    const C: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

    #[test]
    fn default_audiences_are_client_id_and_api_uri() {
        let settings = VerifierSettings {
            app_id_uris: vec!["https://contoso.com/ai".into()],
            ..VerifierSettings::default()
        };
        assert_eq!(
            settings.audiences(C).unwrap(),
            vec![
                C.to_owned(),
                format!("api://{C}"),
                "https://contoso.com/ai".to_owned()
            ]
        );
    }
}
