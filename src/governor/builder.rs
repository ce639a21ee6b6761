//! [`GovernorBuilder`]: configuration with secure defaults, checked once by `build()`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{Governor, Inner};
use crate::audit::{AuditGroups, AuditLog};
use crate::cloud::Cloud;
use crate::error::ConfigError;
use crate::graph::GroupResolver;
use crate::policy::Policy;
use crate::principal::TokenVersion;
use crate::revocation::{DEFAULT_MAX_REVOCATIONS, Revocations};
use crate::token::config::{TenantChoice, VerifierSettings};

/// Configuration for a [`Governor`]. Every default is the secure choice; settings that
/// weaken security are named `dangerous_*`.
///
/// `build()` does not touch the network: keys are fetched on first use (or by
/// [`Governor::prefetch_keys`]). When Entra is unreachable the governor starts anyway and
/// answers [`TokenError::KeysUnavailable`](crate::TokenError::KeysUnavailable) (HTTP 503) for every token until keys arrive;
/// it never accepts a token it could not check.
#[derive(Clone)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct GovernorBuilder {
    /// The token stage's settings: the token setters below write them, `build()` hands
    /// them to the token stage.
    token: VerifierSettings,
    policy: Option<Policy>,
    #[cfg(feature = "redis")]
    fleet: Option<crate::fleet::Fleet>,
    revocations_file: Option<std::path::PathBuf>,
    max_revocations: usize,
    audit: Option<AuditLog>,
    audit_display_names: bool,
    audit_groups: AuditGroups,
    shadow: Option<Policy>,
    groups: Option<Arc<dyn GroupResolver>>,
}

impl std::fmt::Debug for GovernorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernorBuilder")
            .field("cloud", &self.token.cloud)
            .field("tenant", &self.token.tenant)
            .field("client_id", &self.token.client_id)
            .field("app_id_uris", &self.token.app_id_uris)
            .field("policy", &self.policy.as_ref().map(Policy::version_hash))
            .field("group_resolver", &self.groups.is_some())
            .field("audit", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for GovernorBuilder {
    fn default() -> Self {
        Self {
            token: VerifierSettings::default(),
            policy: None,
            #[cfg(feature = "redis")]
            fleet: None,
            revocations_file: None,
            max_revocations: DEFAULT_MAX_REVOCATIONS,
            audit: None,
            audit_display_names: false,
            audit_groups: AuditGroups::Bound,
            shadow: None,
            groups: None,
        }
    }
}

impl GovernorBuilder {
    /// The Entra cloud (default: global).
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.token.cloud = cloud;
        self
    }

    /// Accept tokens of one tenant, by GUID or verified domain name
    /// (`contoso.onmicrosoft.com`); a domain's tenant id is learnt from discovery.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.token.tenant = Some(TenantChoice::Single(tenant.into()));
        self
    }

    /// Accept tokens of any of these tenants (GUIDs): a multi-tenant API with an
    /// allow-list. Keys come from the `organizations` endpoint and are bound per tenant.
    pub fn tenants<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tenants: I) -> Self {
        self.token.tenant = Some(TenantChoice::List(
            tenants.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Accept a correctly signed token from **any** Entra tenant (not personal accounts).
    ///
    /// Dangerous: anyone can create a tenant and obtain tokens for a multi-tenant app
    /// (BingBang, 2023). Only for APIs whose policy does the tenant checks itself.
    pub fn dangerous_accept_any_tenant(mut self) -> Self {
        self.token.tenant = Some(TenantChoice::Any);
        self
    }

    /// The API's application (client) id, a GUID. Required. Accepted audiences default to
    /// `{client_id}` and `api://{client_id}`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.token.client_id = Some(client_id.into());
        self
    }

    /// An extra accepted audience: an App ID URI such as `https://contoso.com/ai-api`.
    pub fn app_id_uri(mut self, uri: impl Into<String>) -> Self {
        self.token.app_id_uris.push(uri.into());
        self
    }

    /// Which token versions are accepted (default: both).
    pub fn accept_token_versions(mut self, versions: &[TokenVersion]) -> Self {
        self.token.accept_v1 = versions.contains(&TokenVersion::V1);
        self.token.accept_v2 = versions.contains(&TokenVersion::V2);
        self
    }

    /// Accept only calls made through these client applications (`azp` / `appid`).
    pub fn allowed_client_apps<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        apps: I,
    ) -> Self {
        self.token.allowed_client_apps = Some(apps.into_iter().map(Into::into).collect());
        self
    }

    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 300 s, at most 600 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.token.clock_skew = skew;
        self
    }

    /// Largest token accepted, in bytes (default
    /// [`DEFAULT_MAX_TOKEN_BYTES`](crate::limits::DEFAULT_MAX_TOKEN_BYTES); 1 KiB to 256 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.token.max_token_bytes = max;
        self
    }

    /// The app registration uses custom signing keys (claims mapping): fetch its keys with
    /// `?appid={client_id}`.
    pub fn custom_signing_keys(mut self) -> Self {
        self.token.custom_signing_keys = true;
        self
    }

    /// Use this HTTP client for discovery and keys (share one across your service).
    /// Redirects are refused whatever the client's policy.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.token.http_client = Some(client);
        self
    }

    /// Deadline for one identity-provider request (default 10 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.token.http_timeout = timeout;
        self
    }

    /// Minimum time between two key refreshes caused by unknown `kid`s (default 5 min;
    /// 1 s to 1 h, see [`KEY_REFRESH_COOLDOWN_RANGE`](crate::limits::KEY_REFRESH_COOLDOWN_RANGE)).
    pub fn key_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.token.key_refresh_cooldown = cooldown;
        self
    }

    /// Periodic key refresh interval, or `None` to refresh only on unknown `kid`s
    /// (default 12 h, plus up to 10% jitter; 5 min to 24 h, see
    /// [`KEY_REFRESH_INTERVAL_RANGE`](crate::limits::KEY_REFRESH_INTERVAL_RANGE)).
    pub fn key_refresh_interval(mut self, interval: Option<Duration>) -> Self {
        self.token.key_refresh_interval = interval;
        self
    }

    /// For tests against a local identity provider only (feature `testing`): lowers the
    /// minimum [`key_refresh_cooldown`](Self::key_refresh_cooldown) to 1 ms and the minimum
    /// [`key_refresh_interval`](Self::key_refresh_interval) to 10 ms, so rotation tests run
    /// in milliseconds. The maximums stay. Dangerous against Entra: unknown-`kid` floods
    /// turn into JWKS request floods.
    #[cfg(feature = "testing")]
    pub fn dangerous_fast_key_refresh(mut self) -> Self {
        self.token.fast_key_refresh = true;
        self
    }

    /// Allow a plain `http://` authority when its host is a loopback address (tests and
    /// local demos against a look-alike identity provider). Dangerous anywhere else.
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.token.allow_http_loopback = true;
        self
    }

    /// Accept tokens that carry neither `scp` nor `roles` (ACL mode). Dangerous: Entra
    /// issues such app-only tokens to any application in the tenant that asks.
    pub fn dangerous_accept_tokens_without_scopes_or_roles(mut self) -> Self {
        self.token.acl_mode = true;
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
        self.token.groups_claim_emitted = emitted;
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
        self.token.acct_claim_emitted = emitted;
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
    /// full (default [`DEFAULT_TOKEN_CACHE_BYTES`](crate::limits::DEFAULT_TOKEN_CACHE_BYTES)). See
    /// the `token` module for what the cache guarantees.
    pub fn verified_token_cache(mut self, max_bytes: Option<u64>) -> Self {
        self.token.token_cache_bytes = max_bytes;
        self
    }

    /// Fleet mode (feature `redis`): share revocations and the policy with every replica
    /// through Redis; see [`fleet`](crate::fleet) for the guarantees. `build()` must then
    /// run inside a tokio runtime: it starts the fleet's background tasks (they stop
    /// when the governor is dropped). One governor per [`Fleet`](crate::fleet::Fleet).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn fleet(mut self, fleet: crate::fleet::Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Which of the caller's groups decision events record (schema v2): only those the
    /// policy (and the shadow policy) binds, the default and the least data, or all of
    /// them, so that any candidate policy replays exactly. See
    /// [`audit::inputs`](crate::audit::inputs#groups-the-least-data-choice).
    pub fn audit_groups(mut self, groups: AuditGroups) -> Self {
        self.audit_groups = groups;
        self
    }

    /// A shadow policy: decided beside the live policy on every decision, never
    /// enforced; differences go to the audit trail and to
    /// [`Governor::shadow_report`]. Needs an [`audit`](Self::audit) log. See
    /// [`governance::shadow`](crate::governance::shadow).
    pub fn shadow_policy(mut self, policy: Policy) -> Self {
        self.shadow = Some(policy);
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
        let verifier = self.token.build()?;
        let policy = match self.policy {
            Some(p) => p,
            None => Policy::from_toml_str("version = 1").map_err(|_| ConfigError::DenyAllPolicy)?,
        };
        super::check_policy_for(&verifier, &policy.compiled())?;
        let revocations = Revocations::open(self.revocations_file.clone(), self.max_revocations)
            .map_err(ConfigError::Revocations)?;
        let revocations = Arc::new(revocations);
        let policy = Arc::new(ArcSwap::new(policy.compiled()));
        let instance = super::next_instance();
        let shadow = Arc::new(crate::governance::shadow::Shadow::default());
        if let Some(candidate) = &self.shadow {
            let audit = self.audit.as_ref().ok_or(ConfigError::ShadowWithoutAudit)?;
            super::check_policy_for(&verifier, &candidate.compiled())?;
            super::attach_shadow(audit, &shadow, instance)?;
            shadow.set(Some(candidate.compiled()));
        }
        #[cfg(feature = "redis")]
        let fleet = match self.fleet {
            Some(fleet) => Some(attach(&fleet, &verifier, &revocations, &policy)?),
            None => None,
        };
        Ok(Governor {
            inner: Arc::new(Inner {
                instance,
                revocations,
                audit: self.audit,
                audit_display_names: self.audit_display_names,
                audit_groups: self.audit_groups,
                shadow,
                shadow_attached: std::sync::atomic::AtomicBool::new(self.shadow.is_some()),
                groups: self.groups,
                graph_calls: super::health::GraphCalls::default(),
                verifier,
                policy,
                #[cfg(feature = "redis")]
                fleet,
            }),
        })
    }
}

/// Starts `fleet`'s tasks for a governor with these revocations and policy; a published
/// policy is accepted as [`Governor::reload_policy`] would accept it.
#[cfg(feature = "redis")]
fn attach(
    fleet: &crate::fleet::Fleet,
    verifier: &crate::token::Verifier,
    revocations: &Arc<Revocations>,
    policy: &Arc<ArcSwap<crate::policy::CompiledPolicy>>,
) -> Result<crate::fleet::Attached, ConfigError> {
    let scope = super::tenant_scope_of(verifier);
    let accept_policy: crate::fleet::AcceptPolicy = Box::new(move |source: &str| {
        let compiled = Policy::from_toml_str(source)
            .map_err(|e| e.to_string())?
            .compiled();
        super::check_tenant_trust(scope, &compiled).map_err(|e| e.to_string())?;
        Ok(compiled)
    });
    fleet.shared.attach(crate::fleet::Attachment {
        revocations: Arc::clone(revocations),
        policy: Arc::clone(policy),
        accept_policy,
    })
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
}
