//! [`GraphGroupResolverBuilder`]: the resolver's settings, checked once by `build()`.

use super::*;

/// Configuration for a [`GraphGroupResolver`]; start it with [`GraphGroupResolver::builder`].
///
/// `Debug` never shows the credential.
#[derive(Clone)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct GraphGroupResolverBuilder {
    pub(super) cloud: Cloud,
    pub(super) tenant: TenantId,
    pub(super) client_id: String,
    pub(super) credential: ClientCredential,
    pub(super) http_client: Option<reqwest::Client>,
    pub(super) cache_capacity: u64,
    pub(super) cache_ttl: Duration,
    pub(super) failure_ttl: Duration,
    pub(super) time_budget: Duration,
    pub(super) max_retries: u32,
    pub(super) use_get_member_objects: bool,
    pub(super) allow_http_loopback: bool,
    #[cfg(feature = "redis")]
    pub(super) share: Option<crate::fleet::GraphShare>,
}

impl GraphGroupResolverBuilder {
    /// Use this HTTP client (share one across your service). Redirects are refused
    /// whatever the client's policy. A managed identity's endpoint is asked through a
    /// client of its own, without proxies.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// How many principals' memberships are cached at most (default
    /// [`DEFAULT_GRAPH_CACHE_CAPACITY`]).
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Longest life of a cached membership (default [`DEFAULT_GRAPH_CACHE_TTL`]; above
    /// zero, at most 24 h). An entry never outlives the token it was resolved for.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long a failed lookup is remembered (default [`DEFAULT_GRAPH_FAILURE_TTL`];
    /// above zero, at most 60 s): the principal's next lookups, and every lookup of its
    /// tenant when Graph or the token endpoint failed as a whole, get the same error
    /// without a call. A 429 holds back its tenant for its `Retry-After` instead.
    pub fn failure_ttl(mut self, ttl: Duration) -> Self {
        self.failure_ttl = ttl;
        self
    }

    /// Total time one `resolve` may take, token request, retries and waits included
    /// (default [`DEFAULT_GRAPH_TIME_BUDGET`]; above zero, at most 120 s).
    pub fn time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = budget;
        self
    }

    /// Retries after a 429, a 5xx or a transport failure, per request (default
    /// [`DEFAULT_GRAPH_MAX_RETRIES`]; at most 10). The time budget bounds them too.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Ask `getMemberObjects` (every security group, paged) instead of
    /// `checkMemberGroups` (only the candidates, 20 per call). Default `false`: fewer
    /// calls and less data for policies that bind up to a few dozen groups.
    pub fn use_get_member_objects(mut self, enabled: bool) -> Self {
        self.use_get_member_objects = enabled;
        self
    }

    /// Allow plain `http://` authority and Graph base URLs when their host is a loopback
    /// address (tests against a look-alike). Dangerous anywhere else.
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// Share answers with the fleet (feature `redis`): a membership one replica asked
    /// Graph about is read by every other from Redis for its lifetime, sealed with the
    /// fleet key, and a 429 seen by one replica holds back every replica's calls to that
    /// tenant. Concurrent lookups of one principal across the fleet make one Graph call.
    /// Redis is asked at most 250 ms per step; when it does not answer, the resolver asks
    /// Graph itself. See [`fleet`](crate::fleet).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn fleet(mut self, fleet: &crate::fleet::Fleet) -> Self {
        self.share = Some(fleet.graph_share());
        self
    }

    /// Checks the configuration and builds the resolver. No network access happens here.
    ///
    /// # Errors
    /// A [`ConfigError`] for an invalid client id, authority, Graph base, credential or
    /// out-of-range setting.
    pub fn build(self) -> Result<GraphGroupResolver, ConfigError> {
        if !is_guid(&self.client_id) {
            return Err(ConfigError::InvalidClientId {
                found: self.client_id.clone(),
            });
        }
        let authority = self.cloud.authority();
        check_base_url(authority, self.allow_http_loopback).map_err(|reason| {
            ConfigError::InvalidAuthority {
                found: authority.to_owned(),
                reason,
            }
        })?;
        let graph_base = self.cloud.graph_base();
        check_base_url(graph_base, self.allow_http_loopback).map_err(|reason| {
            ConfigError::InvalidGraphBase {
                found: graph_base.to_owned(),
                reason,
            }
        })?;
        self.credential
            .check(authority, &self.tenant, self.allow_http_loopback)?;
        if self.cache_ttl.is_zero() || self.cache_ttl > Duration::from_secs(24 * 3600) {
            return Err(ConfigError::OutOfRange {
                setting: "cache_ttl",
                reason: "above zero, at most 24 h",
            });
        }
        if self.failure_ttl.is_zero() || self.failure_ttl > MAX_FAILURE_TTL {
            return Err(ConfigError::OutOfRange {
                setting: "failure_ttl",
                reason: "above zero, at most 60 s",
            });
        }
        if self.time_budget.is_zero() || self.time_budget > Duration::from_secs(120) {
            return Err(ConfigError::OutOfRange {
                setting: "time_budget",
                reason: "above zero, at most 120 s",
            });
        }
        if self.max_retries > 10 {
            return Err(ConfigError::OutOfRange {
                setting: "max_retries",
                reason: "at most 10",
            });
        }
        let client = match self.http_client {
            Some(client) => client,
            None => Fetcher::default_client(DEFAULT_HTTP_TIMEOUT)
                .map_err(|e| ConfigError::HttpClient(crate::error::Cause::new(e)))?,
        };
        // The managed identity endpoint is on the host: never through a proxy (which would
        // see the token; IMDS refuses proxied requests anyway), whatever the injected
        // client's settings.
        let identity_client = match self.credential.as_managed_identity() {
            Some(_) => Some(
                reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(DEFAULT_HTTP_TIMEOUT)
                    .build()
                    .map_err(|e| ConfigError::HttpClient(crate::error::Cause::new(e)))?,
            ),
            None => None,
        };
        let inner = Inner {
            identity_client,
            authority: authority.trim_end_matches('/').to_owned(),
            graph_base: graph_base.trim_end_matches('/').to_owned(),
            home_tenant: self.tenant,
            client_id: self.client_id.to_ascii_lowercase(),
            credential: self.credential,
            fetcher: Fetcher {
                client,
                timeout: DEFAULT_HTTP_TIMEOUT,
                max_body: MAX_GRAPH_RESPONSE_BYTES,
            },
            memberships: Cache::builder()
                .max_capacity(self.cache_capacity)
                .expire_after(UntilValid)
                .build(),
            tokens: Cache::builder()
                .max_capacity(TOKEN_CACHE_CAPACITY)
                .expire_after(UntilValid)
                .build(),
            failures: Cache::builder()
                .max_capacity(self.cache_capacity)
                .expire_after(UntilValid)
                .build(),
            tenant_holds: Cache::builder()
                .max_capacity(TOKEN_CACHE_CAPACITY)
                .expire_after(UntilValid)
                .build(),
            cache_ttl: self.cache_ttl,
            failure_ttl: self.failure_ttl,
            time_budget: self.time_budget,
            max_retries: self.max_retries,
            use_get_member_objects: self.use_get_member_objects,
            graph_calls: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            #[cfg(feature = "redis")]
            share: self.share,
        };
        Ok(GraphGroupResolver {
            inner: Arc::new(inner),
        })
    }
}

impl fmt::Debug for GraphGroupResolverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphGroupResolverBuilder")
            .field("authority", &self.cloud.authority())
            .field("graph_base", &self.cloud.graph_base())
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("cache_capacity", &self.cache_capacity)
            .field("cache_ttl", &self.cache_ttl)
            .field("failure_ttl", &self.failure_ttl)
            .field("time_budget", &self.time_budget)
            .field("max_retries", &self.max_retries)
            .field("use_get_member_objects", &self.use_get_member_objects)
            .field("allow_http_loopback", &self.allow_http_loopback)
            .finish_non_exhaustive()
    }
}

impl GraphGroupResolver {
    /// Starts a configuration: the cloud (whose authority and Graph base are used), the
    /// API's own tenant, the API's application (client) id, and its credential. Defaults:
    /// `checkMemberGroups`, 10 000 cached principals for at most 1 h, failures remembered
    /// for 5 s, 5 s per resolve, 3 retries, https only.
    pub fn builder(
        cloud: &Cloud,
        tenant: TenantId,
        client_id: impl Into<String>,
        credential: ClientCredential,
    ) -> GraphGroupResolverBuilder {
        GraphGroupResolverBuilder {
            cloud: cloud.clone(),
            tenant,
            client_id: client_id.into(),
            credential,
            http_client: None,
            cache_capacity: DEFAULT_GRAPH_CACHE_CAPACITY,
            cache_ttl: DEFAULT_GRAPH_CACHE_TTL,
            failure_ttl: DEFAULT_GRAPH_FAILURE_TTL,
            time_budget: DEFAULT_GRAPH_TIME_BUDGET,
            max_retries: DEFAULT_GRAPH_MAX_RETRIES,
            use_get_member_objects: false,
            allow_http_loopback: false,
            #[cfg(feature = "redis")]
            share: None,
        }
    }
}
