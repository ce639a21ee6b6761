//! [`GraphGroupResolver`]: group membership through Microsoft Graph, with a Graph token per
//! tenant, a membership cache per `(tid, oid)`, single flight, retries, a time budget, and
//! failures (and 429s) remembered per principal and per tenant.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::credentials::ClientCredential;
use super::{GroupResolutionError, GroupResolver};
use crate::clock::unix_now;
use crate::cloud::{Cloud, check_base_url};
use crate::error::ConfigError;
use crate::fetch::DEFAULT_HTTP_TIMEOUT;
use crate::fetch::{Answer, FetchError, Fetcher};
use crate::ids::{GroupId, PrincipalId, TenantId, is_guid};
use crate::principal::{Principal, PrincipalKind};

/// Default bound on cached memberships: 10 000 principals.
pub const DEFAULT_GRAPH_CACHE_CAPACITY: u64 = 10_000;
/// Default longest life of a cached membership: 1 hour (never beyond the caller's token).
pub const DEFAULT_GRAPH_CACHE_TTL: Duration = Duration::from_secs(3600);
/// Default total time one `resolve` may take, retries and waits included: 5 s.
pub const DEFAULT_GRAPH_TIME_BUDGET: Duration = Duration::from_secs(5);
/// Default time a failed lookup is remembered, per principal and (for failures of Graph or
/// the token endpoint as a whole) per tenant: 5 s, the `Retry-After` of the 503 a
/// decision becomes.
pub const DEFAULT_GRAPH_FAILURE_TTL: Duration = Duration::from_secs(5);
/// Default number of retries after a 429, a 5xx or a transport failure: 3.
pub const DEFAULT_GRAPH_MAX_RETRIES: u32 = 3;
/// Longest `Retry-After` taken from Microsoft Graph or the token endpoint: 5 minutes.
/// A longer (or absurd, up to `u64::MAX`) value counts as 5 minutes.
pub const MAX_GRAPH_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Largest Microsoft Graph or token endpoint answer read: 1 MiB.
pub const MAX_GRAPH_RESPONSE_BYTES: usize = 1024 * 1024;

/// `checkMemberGroups` accepts at most 20 group ids per call.
const CHECK_MEMBER_GROUPS_BATCH: usize = 20;
/// Tenants whose Graph tokens are kept at once; also the bound on tenants held back.
const TOKEN_CACHE_CAPACITY: u64 = 1_000;
/// Longest configurable `failure_ttl`.
const MAX_FAILURE_TTL: Duration = Duration::from_secs(60);
/// Longest life taken from a token endpoint's `expires_in` (Entra issues about 1 h).
const MAX_GRAPH_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A Graph token is replaced this long before it expires (at most half its life).
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// `getMemberObjects` pages followed at most (100 ids per page: 100 000 objects).
const MAX_PAGES: usize = 1_000;
/// First retry delay; doubled per retry, capped, jittered down to half.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// How often a caller replaces a cached entry that asked about other groups before it
/// stops using the cache for this call.
const CACHE_ROUNDS: usize = 3;

const TOKEN_ENDPOINT: &str = "the token endpoint";
const GRAPH: &str = "Microsoft Graph";

/// Configuration for a [`GraphGroupResolver`]; start it with [`GraphGroupResolver::builder`].
///
/// `Debug` never shows the credential.
#[derive(Clone)]
pub struct GraphGroupResolverBuilder {
    cloud: Cloud,
    tenant: TenantId,
    client_id: String,
    credential: ClientCredential,
    http_client: Option<reqwest::Client>,
    cache_capacity: u64,
    cache_ttl: Duration,
    failure_ttl: Duration,
    time_budget: Duration,
    max_retries: u32,
    use_get_member_objects: bool,
    allow_http_loopback: bool,
}

impl GraphGroupResolverBuilder {
    /// Use this HTTP client (share one across your service). Redirects are refused
    /// whatever the client's policy.
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
        if let Some(reason) = self.credential.problem() {
            return Err(ConfigError::InvalidCredential { reason });
        }
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
                .map_err(|e| ConfigError::HttpClient(e.to_string()))?,
        };
        let inner = Inner {
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

/// A [`GroupResolver`] backed by Microsoft Graph. See the [module docs](super).
///
/// Cheap to clone (an `Arc` inside); share one per service. `Debug` never shows the
/// credential or a Graph token.
#[derive(Clone)]
pub struct GraphGroupResolver {
    inner: Arc<Inner>,
}

struct Inner {
    authority: String,
    graph_base: String,
    /// The API's own tenant, for `prefetch_token`; resolving requests tokens from each
    /// principal's tenant.
    home_tenant: TenantId,
    client_id: String,
    credential: ClientCredential,
    fetcher: Fetcher,
    memberships: Cache<PrincipalId, Arc<Membership>>,
    tokens: Cache<TenantId, Arc<GraphToken>>,
    /// Recent failures per principal (bounded like `memberships`).
    failures: Cache<PrincipalId, Arc<Held>>,
    /// Tenants held back: throttled, or Graph or their token endpoint failing as a whole.
    tenant_holds: Cache<TenantId, Arc<Held>>,
    cache_ttl: Duration,
    failure_ttl: Duration,
    time_budget: Duration,
    max_retries: u32,
    use_get_member_objects: bool,
    graph_calls: AtomicU64,
    token_requests: AtomicU64,
    cache_hits: AtomicU64,
}

impl fmt::Debug for GraphGroupResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("GraphGroupResolver")
            .field("authority", &inner.authority)
            .field("graph_base", &inner.graph_base)
            .field("tenant", &inner.home_tenant)
            .field("client_id", &inner.client_id)
            .field("credential", &inner.credential)
            .field("cache_ttl", &inner.cache_ttl)
            .field("failure_ttl", &inner.failure_ttl)
            .field("time_budget", &inner.time_budget)
            .field("max_retries", &inner.max_retries)
            .field("use_get_member_objects", &inner.use_get_member_objects)
            .finish_non_exhaustive()
    }
}

/// What is known about one principal: the groups asked about, and those it is a member of.
struct Membership {
    asked: HashSet<GroupId>,
    members: HashSet<GroupId>,
    valid_until: std::time::Instant,
}

impl Membership {
    fn knows(&self, wanted: &[GroupId]) -> bool {
        wanted.iter().all(|g| self.asked.contains(g))
    }

    fn members_among(&self, wanted: &[GroupId]) -> Vec<GroupId> {
        wanted
            .iter()
            .filter(|g| self.members.contains(*g))
            .cloned()
            .collect()
    }
}

/// A Microsoft Graph access token for one tenant. `Debug` is redacted.
struct GraphToken {
    access_token: String,
    valid_until: std::time::Instant,
}

impl fmt::Debug for GraphToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GraphToken(<redacted>)")
    }
}

/// A remembered failure: what lookups are answered until `until`, without a call.
struct Held {
    /// The error to answer; `None` for a 429, answered as `Throttled` for the time left.
    error: Option<GroupResolutionError>,
    until: std::time::Instant,
}

impl Held {
    /// The error for a lookup at `now`, or `None` once the hold is over.
    fn answer(&self, now: std::time::Instant) -> Option<GroupResolutionError> {
        let left = self.until.saturating_duration_since(now);
        if left.is_zero() {
            return None;
        }
        Some(self.error.clone().unwrap_or_else(|| {
            // Whole seconds, rounded up: never "retry after 0 s" while still held.
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            GroupResolutionError::Throttled {
                retry_after_secs: secs,
            }
        }))
    }
}

/// Cached values that carry their own end of life.
trait ValidUntil {
    fn valid_until(&self) -> std::time::Instant;
}

impl ValidUntil for Membership {
    fn valid_until(&self) -> std::time::Instant {
        self.valid_until
    }
}

impl ValidUntil for Held {
    fn valid_until(&self) -> std::time::Instant {
        self.until
    }
}

impl ValidUntil for GraphToken {
    fn valid_until(&self) -> std::time::Instant {
        self.valid_until
    }
}

/// Per-entry expiry: each entry lives until its own `valid_until`.
struct UntilValid;

impl<K, V: ValidUntil> Expiry<K, Arc<V>> for UntilValid {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Arc<V>,
        created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.valid_until().saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Arc<V>,
        updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.valid_until().saturating_duration_since(updated_at))
    }
}

/// `{"value": [...]}`, with an optional `@odata.nextLink`.
#[derive(Deserialize)]
struct ValuePage {
    value: Vec<String>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// The token endpoint's success answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
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
        }
    }

    /// Requests a Graph token for the API's own tenant now (unless one is cached): a
    /// start-up or readiness check that the credential works, within the time budget.
    ///
    /// # Errors
    /// [`GroupResolutionError::Unauthorized`] when the token endpoint refuses the
    /// credential (e.g. `invalid_client`), or another variant when it cannot be reached.
    pub async fn prefetch_token(&self) -> Result<(), GroupResolutionError> {
        let budget = self.inner.time_budget;
        let deadline = deadline_in(budget);
        let tenant = &self.inner.home_tenant;
        tokio::time::timeout_at(deadline, self.inner.graph_token(tenant, deadline))
            .await
            .unwrap_or(Err(GroupResolutionError::BudgetExceeded { budget }))
            .map(drop)
    }

    /// HTTP requests sent to Microsoft Graph (every attempt and page).
    pub fn graph_calls(&self) -> u64 {
        self.inner.graph_calls.load(Ordering::SeqCst)
    }

    /// HTTP requests sent to the token endpoint (every attempt).
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Resolves answered without a Graph call of their own: from the cache, or by joining
    /// a lookup of the same principal already in flight.
    pub fn cache_hits(&self) -> u64 {
        self.inner.cache_hits.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl GroupResolver for GraphGroupResolver {
    async fn resolve(
        &self,
        principal: &Principal,
        candidates: &[GroupId],
    ) -> Result<Vec<GroupId>, GroupResolutionError> {
        let mut seen = HashSet::new();
        let wanted: Vec<GroupId> = candidates
            .iter()
            .filter(|g| seen.insert(*g))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let budget = self.inner.time_budget;
        let deadline = deadline_in(budget);
        tokio::time::timeout_at(deadline, self.inner.lookup(principal, &wanted, deadline))
            .await
            .unwrap_or(Err(GroupResolutionError::BudgetExceeded { budget }))
    }
}

impl Inner {
    /// Answers from the cache, or asks Graph once for every caller of the same principal.
    async fn lookup(
        &self,
        principal: &Principal,
        wanted: &[GroupId],
        deadline: Instant,
    ) -> Result<Vec<GroupId>, GroupResolutionError> {
        let key = principal.id().clone();
        let mut ask = wanted.to_vec();
        for _ in 0..CACHE_ROUNDS {
            let fetched_here = AtomicBool::new(false);
            let membership = self
                .memberships
                .try_get_with(key.clone(), async {
                    fetched_here.store(true, Ordering::SeqCst);
                    self.fetch_guarded(principal, &ask, deadline)
                        .await
                        .map(Arc::new)
                })
                .await
                .map_err(|e| (*e).clone())?;
            if membership.knows(wanted) {
                if !fetched_here.load(Ordering::SeqCst) {
                    self.cache_hits.fetch_add(1, Ordering::SeqCst);
                }
                return Ok(membership.members_among(wanted));
            }
            // The cached answer is about other groups (the policy changed, or callers want
            // different groups): replace it, unless someone already did, by one that knows
            // both.
            let mut union: HashSet<&GroupId> = membership.asked.iter().collect();
            union.extend(wanted);
            ask = union.into_iter().cloned().collect();
            let stale = membership.clone();
            self.memberships
                .entry(key.clone())
                .and_compute_with(|current| async move {
                    match current {
                        Some(entry) if Arc::ptr_eq(entry.value(), &stale) => Op::Remove,
                        _ => Op::Nop,
                    }
                })
                .await;
        }
        // Still racing with callers that want other groups: answer this call uncached.
        let membership = self.fetch_guarded(principal, wanted, deadline).await?;
        Ok(membership.members_among(wanted))
    }

    /// [`fetch`](Self::fetch), unless the principal or its tenant is held back; a failure
    /// is remembered for the principal (a 429 already holds back its tenant). Runs inside
    /// the single flight, so callers that arrive after a failure find it remembered.
    async fn fetch_guarded(
        &self,
        principal: &Principal,
        ask: &[GroupId],
        deadline: Instant,
    ) -> Result<Membership, GroupResolutionError> {
        if let Some(error) = self.held_back(principal).await {
            return Err(error);
        }
        let budget = self.time_budget;
        let result = tokio::time::timeout_at(deadline, self.fetch(principal, ask, deadline))
            .await
            .unwrap_or(Err(GroupResolutionError::BudgetExceeded { budget }));
        if let Err(error) = &result
            && !matches!(error, GroupResolutionError::Throttled { .. })
        {
            let held = Held {
                error: Some(error.clone()),
                until: valid_for(self.failure_ttl),
            };
            self.failures
                .insert(principal.id().clone(), Arc::new(held))
                .await;
        }
        result
    }

    /// The error a lookup of `principal` gets without a call, while its tenant or the
    /// principal itself is held back.
    async fn held_back(&self, principal: &Principal) -> Option<GroupResolutionError> {
        if let Some(error) = self
            .tenant_holds
            .get(principal.tenant())
            .await
            .and_then(|h| h.answer(std::time::Instant::now()))
        {
            return Some(error);
        }
        self.failures
            .get(principal.id())
            .await
            .and_then(|h| h.answer(std::time::Instant::now()))
    }

    /// Holds back every lookup of `tenant` for `time`: with `error`, or (`None`) as
    /// throttled for the time left.
    async fn hold_tenant(
        &self,
        tenant: &TenantId,
        error: Option<GroupResolutionError>,
        time: Duration,
    ) {
        let held = Arc::new(Held {
            error,
            until: valid_for(time),
        });
        // A shorter hold never cuts a longer one (a 429's) short.
        self.tenant_holds
            .entry(tenant.clone())
            .and_compute_with(|current| async move {
                match current {
                    Some(entry) if entry.value().until >= held.until => Op::Nop,
                    _ => Op::Put(held),
                }
            })
            .await;
    }

    /// Asks Graph which of `ask` the principal is a member of.
    async fn fetch(
        &self,
        principal: &Principal,
        ask: &[GroupId],
        deadline: Instant,
    ) -> Result<Membership, GroupResolutionError> {
        // Fixed before asking: the answer must not outlive the caller's token, nor the
        // configured TTL counted from when the question was asked.
        let token_life = Duration::from_secs(principal.expires_at().saturating_sub(unix_now()));
        let valid_until = valid_for(self.cache_ttl.min(token_life));
        let members = if self.use_get_member_objects {
            let all = self.get_member_objects(principal, deadline).await?;
            ask.iter().filter(|g| all.contains(*g)).cloned().collect()
        } else {
            let mut members = HashSet::new();
            for batch in ask.chunks(CHECK_MEMBER_GROUPS_BATCH) {
                members.extend(self.check_member_groups(principal, batch, deadline).await?);
            }
            members
        };
        Ok(Membership {
            asked: ask.iter().cloned().collect(),
            members,
            valid_until,
        })
    }

    /// `/v1.0/users/{oid}` or `/v1.0/servicePrincipals/{oid}`.
    fn object_url(&self, principal: &Principal) -> String {
        let collection = match principal.kind() {
            PrincipalKind::User => "users",
            PrincipalKind::Application => "servicePrincipals",
        };
        format!(
            "{}/v1.0/{collection}/{}",
            self.graph_base,
            principal.object_id()
        )
    }

    fn graph_url(&self, raw: &str) -> Result<Url, GroupResolutionError> {
        Url::parse(raw).map_err(|_| GroupResolutionError::Unavailable {
            reason: "the Microsoft Graph URL is not valid".into(),
        })
    }

    /// `checkMemberGroups` for at most 20 groups: the subset the principal is in.
    async fn check_member_groups(
        &self,
        principal: &Principal,
        batch: &[GroupId],
        deadline: Instant,
    ) -> Result<Vec<GroupId>, GroupResolutionError> {
        let url = self.graph_url(&format!("{}/checkMemberGroups", self.object_url(principal)))?;
        let ids: Vec<&str> = batch.iter().map(GroupId::as_str).collect();
        let body = json!({ "groupIds": ids }).to_string();
        let page = self.graph_post(principal, &url, &body, deadline).await?;
        if page.next_link.is_some() {
            return Err(unusable(&url));
        }
        // Only groups that were asked about count, whatever else an answer holds.
        Ok(batch
            .iter()
            .filter(|g| {
                page.value
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(g.as_str()))
            })
            .cloned()
            .collect())
    }

    /// `getMemberObjects` (security groups only), every page.
    async fn get_member_objects(
        &self,
        principal: &Principal,
        deadline: Instant,
    ) -> Result<HashSet<GroupId>, GroupResolutionError> {
        let first = self.graph_url(&format!("{}/getMemberObjects", self.object_url(principal)))?;
        let origin = first.origin();
        let body = json!({ "securityEnabledOnly": true }).to_string();
        let mut all = HashSet::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let page = self.graph_post(principal, &url, &body, deadline).await?;
            // Directory roles and administrative units come back too: keep GUIDs, the
            // caller intersects with its groups.
            all.extend(page.value.iter().filter_map(|v| GroupId::parse(v).ok()));
            let Some(next) = page.next_link else {
                return Ok(all);
            };
            url = Url::parse(&next)
                .ok()
                .filter(|next| next.origin() == origin)
                .ok_or_else(|| GroupResolutionError::Unavailable {
                    reason: "Microsoft Graph sent a next page link to another host".into(),
                })?;
        }
        Err(GroupResolutionError::Unavailable {
            reason: format!("Microsoft Graph sent more than {MAX_PAGES} pages"),
        })
    }

    /// POSTs a JSON body to Graph with the tenant's token, retrying per the policy; a 401
    /// gets one more try with a fresh token.
    async fn graph_post(
        &self,
        principal: &Principal,
        url: &Url,
        body: &str,
        deadline: Instant,
    ) -> Result<ValuePage, GroupResolutionError> {
        let tenant = principal.tenant();
        let mut fresh_token = false;
        loop {
            let token = self.graph_token(tenant, deadline).await?;
            let answer = self
                .send(
                    tenant,
                    GRAPH,
                    &self.graph_calls,
                    || {
                        Ok(self
                            .fetcher
                            .client
                            .post(url.clone())
                            .bearer_auth(&token.access_token)
                            .header(CONTENT_TYPE, "application/json")
                            .header(ACCEPT, "application/json")
                            .body(body.to_owned()))
                    },
                    url,
                    deadline,
                )
                .await?;
            match answer.status {
                200..=299 => {
                    return serde_json::from_slice(&answer.body).map_err(|_| unusable(url));
                }
                401 if !fresh_token => {
                    // Revoked or rolled: forget this token (unless already replaced).
                    fresh_token = true;
                    self.forget_token(tenant, &token).await;
                }
                401 | 403 => {
                    // Graph refuses the application, whoever is asked about.
                    let error = GroupResolutionError::Unauthorized {
                        service: GRAPH,
                        status: answer.status,
                        code: graph_error_code(&answer.body),
                    };
                    self.hold_tenant(tenant, Some(error.clone()), self.failure_ttl)
                        .await;
                    return Err(error);
                }
                404 => return Err(not_found(principal)),
                status => {
                    return Err(GroupResolutionError::Unavailable {
                        reason: format!(
                            "Microsoft Graph answered HTTP {status} ({})",
                            graph_error_code(&answer.body)
                        ),
                    });
                }
            }
        }
    }

    /// The tenant's Graph token: cached, or requested once for all concurrent callers.
    async fn graph_token(
        &self,
        tenant: &TenantId,
        deadline: Instant,
    ) -> Result<Arc<GraphToken>, GroupResolutionError> {
        let result = self
            .tokens
            .try_get_with(tenant.clone(), self.request_token(tenant, deadline))
            .await
            .map_err(|e| (*e).clone());
        // Without a token no lookup of the tenant can succeed: hold them all back. (A 429
        // is held for its Retry-After by `send`; a spent budget is this caller's.)
        if let Err(
            error @ (GroupResolutionError::Unauthorized { .. }
            | GroupResolutionError::Unavailable { .. }),
        ) = &result
        {
            self.hold_tenant(tenant, Some(error.clone()), self.failure_ttl)
                .await;
        }
        result
    }

    async fn forget_token(&self, tenant: &TenantId, token: &Arc<GraphToken>) {
        let refused = token.clone();
        self.tokens
            .entry(tenant.clone())
            .and_compute_with(|current| async move {
                match current {
                    Some(entry) if Arc::ptr_eq(entry.value(), &refused) => Op::Remove,
                    _ => Op::Nop,
                }
            })
            .await;
    }

    /// Client credentials at `{authority}/{tenant}/oauth2/v2.0/token` for
    /// `{graph_base}/.default`.
    async fn request_token(
        &self,
        tenant: &TenantId,
        deadline: Instant,
    ) -> Result<Arc<GraphToken>, GroupResolutionError> {
        let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", self.authority);
        let url = Url::parse(&endpoint).map_err(|_| GroupResolutionError::Unavailable {
            reason: "the token endpoint URL is not valid".into(),
        })?;
        let scope = format!("{}/.default", self.graph_base);
        let answer = self
            .send(
                tenant,
                TOKEN_ENDPOINT,
                &self.token_requests,
                || {
                    // Built per attempt: a certificate assertion gets a fresh `jti`.
                    let form = self
                        .credential
                        .token_request_form(&self.client_id, &endpoint, &scope)
                        .map_err(|reason| GroupResolutionError::Unavailable {
                            reason: reason.into(),
                        })?;
                    Ok(self
                        .fetcher
                        .client
                        .post(url.clone())
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .header(ACCEPT, "application/json")
                        .body(form))
                },
                &url,
                deadline,
            )
            .await?;
        match answer.status {
            200 => {
                let token: TokenAnswer =
                    serde_json::from_slice(&answer.body).map_err(|_| unusable(&url))?;
                if token.access_token.is_empty() {
                    return Err(unusable(&url));
                }
                // A hostile `expires_in` (up to u64::MAX) must neither overflow nor pin a
                // token for ever.
                let life = Duration::from_secs(token.expires_in).min(MAX_GRAPH_TOKEN_LIFETIME);
                let keep = life.saturating_sub(TOKEN_REFRESH_MARGIN.min(life / 2));
                Ok(Arc::new(GraphToken {
                    access_token: token.access_token,
                    valid_until: valid_for(keep),
                }))
            }
            400 | 401 | 403 => Err(GroupResolutionError::Unauthorized {
                service: TOKEN_ENDPOINT,
                status: answer.status,
                code: entra_error_code(&answer.body),
            }),
            status => Err(GroupResolutionError::Unavailable {
                reason: format!(
                    "the token endpoint answered HTTP {status} ({})",
                    entra_error_code(&answer.body)
                ),
            }),
        }
    }

    /// Sends a request (made afresh per attempt) and returns the first answer that is
    /// neither a 429 nor a 5xx. 429s wait for `Retry-After`, 5xx and transport failures
    /// back off; both stop after `max_retries` retries or when the wait would not fit in
    /// the budget. A 429 holds back the tenant for its wait at once; a 5xx or transport
    /// failure that ends the retries holds it back for `failure_ttl`.
    async fn send(
        &self,
        tenant: &TenantId,
        service: &'static str,
        counter: &AtomicU64,
        make: impl Fn() -> Result<reqwest::RequestBuilder, GroupResolutionError>,
        url: &Url,
        deadline: Instant,
    ) -> Result<Answer, GroupResolutionError> {
        let mut retries = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(GroupResolutionError::BudgetExceeded {
                    budget: self.time_budget,
                });
            }
            let request = make()?;
            counter.fetch_add(1, Ordering::SeqCst);
            let timeout = remaining.min(self.fetcher.timeout);
            let attempts = || match retries {
                0 => "1 attempt".to_owned(),
                n => format!("{} attempts", n + 1),
            };
            let (wait, failure) = match self.fetcher.exchange(request, url, timeout).await {
                Ok(answer)
                    if answer.status == 429 || matches!(answer.status, 500 | 502 | 503 | 504) =>
                {
                    let wait = answer.retry_after.map_or_else(
                        || backoff(retries),
                        |secs| Duration::from_secs(secs).min(MAX_GRAPH_RETRY_AFTER),
                    );
                    let failure = if answer.status == 429 {
                        // Every lookup of the tenant waits for it, not only this one.
                        self.hold_tenant(tenant, None, wait).await;
                        GroupResolutionError::Throttled {
                            retry_after_secs: wait.as_secs(),
                        }
                    } else {
                        GroupResolutionError::Unavailable {
                            reason: format!(
                                "{service} answered HTTP {} ({})",
                                answer.status,
                                attempts()
                            ),
                        }
                    };
                    (wait, failure)
                }
                Ok(answer) => return Ok(answer),
                Err(FetchError::Transport { .. }) if Instant::now() >= deadline => {
                    // The request was cut off because the budget ran out.
                    return Err(GroupResolutionError::BudgetExceeded {
                        budget: self.time_budget,
                    });
                }
                Err(error @ FetchError::Transport { .. }) => {
                    let failure = GroupResolutionError::Unavailable {
                        reason: format!("{error} ({})", attempts()),
                    };
                    (backoff(retries), failure)
                }
                Err(error) => {
                    return Err(GroupResolutionError::Unavailable {
                        reason: error.to_string(),
                    });
                }
            };
            if retries >= self.max_retries
                || wait > deadline.saturating_duration_since(Instant::now())
            {
                if !matches!(failure, GroupResolutionError::Throttled { .. }) {
                    // The service is failing for everyone in the tenant, not this one.
                    self.hold_tenant(tenant, Some(failure.clone()), self.failure_ttl)
                        .await;
                }
                return Err(failure);
            }
            tracing::debug!(
                service,
                retry = retries + 1,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "group resolution: retrying"
            );
            retries += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

/// The deadline `budget` from now (now itself if that is past the clock's range).
fn deadline_in(budget: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(budget).unwrap_or(now)
}

/// The end of a life of `life` from now (now itself, i.e. already over, if that is past
/// the clock's range): never a panic, never longer than asked.
fn valid_for(life: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(life).unwrap_or(now)
}

fn not_found(principal: &Principal) -> GroupResolutionError {
    GroupResolutionError::NotFound {
        kind: match principal.kind() {
            PrincipalKind::User => "user",
            PrincipalKind::Application => "service principal",
        },
        tenant: principal.tenant().clone(),
        object: principal.object_id().clone(),
    }
}

/// An answer that is not what Graph or the token endpoint should have sent.
fn unusable(url: &Url) -> GroupResolutionError {
    GroupResolutionError::Unavailable {
        reason: format!(
            "{} answered a document that is not the expected JSON",
            crate::fetch::host_of(url)
        ),
    }
}

/// `BACKOFF_BASE * 2^retries`, capped at `BACKOFF_CAP`, jittered down to half.
fn backoff(retries: u32) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << retries.min(16))
        .min(BACKOFF_CAP);
    let mut byte = [0u8; 1];
    // Without randomness the wait is simply not jittered.
    let jitter = match aws_lc_rs::rand::fill(&mut byte) {
        Ok(()) => u32::from(byte[0]),
        Err(_) => 255,
    };
    full / 2 + full / 2 * jitter / 255
}

/// A printable error code: letters, digits, `_`, `.`, `-`, at most 64 of them.
fn clean_code(code: &str) -> Option<String> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then(|| code.to_owned())
}

/// Entra's OAuth error: `error` plus the first AADSTS code, e.g.
/// `invalid_client (AADSTS7000215)`. Never the description.
fn entra_error_code(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return "unknown".into();
    };
    let error = value
        .get("error")
        .and_then(Value::as_str)
        .and_then(clean_code);
    let aadsts = value
        .get("error_codes")
        .and_then(Value::as_array)
        .and_then(|codes| codes.first())
        .and_then(Value::as_u64);
    match (error, aadsts) {
        (Some(error), Some(n)) => format!("{error} (AADSTS{n})"),
        (Some(error), None) => error,
        (None, Some(n)) => format!("AADSTS{n}"),
        (None, None) => "unknown".into(),
    }
}

/// Graph's error: `error.code`, e.g. `Authorization_RequestDenied`. Never the message.
fn graph_error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(|v| v.pointer("/error/code"))
        .and_then(Value::as_str)
        .and_then(clean_code)
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CLIENT: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    const SECRET: &str = "Xy7Q~super.secret-value_1234567890abcdef";

    fn builder(cloud: &Cloud) -> GraphGroupResolverBuilder {
        GraphGroupResolver::builder(
            cloud,
            TenantId::parse(TENANT).unwrap(),
            CLIENT,
            ClientCredential::secret(SECRET),
        )
    }

    #[test]
    fn resolver_is_send_sync_and_a_trait_object() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<GraphGroupResolver>();
        let resolver = builder(&Cloud::global()).build().unwrap();
        let _: Arc<dyn GroupResolver> = Arc::new(resolver);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let b = builder(&Cloud::us_government());
        let shown = format!("{b:?} {b:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        let resolver = b.build().unwrap();
        let shown = format!("{resolver:?} {resolver:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("https://graph.microsoft.us"), "{shown}");
        let token = GraphToken {
            access_token: "eyJ0eXAiOiJKV1Qi.secret.token".into(),
            valid_until: std::time::Instant::now(),
        };
        assert_eq!(format!("{token:?}"), "GraphToken(<redacted>)");
    }

    #[test]
    fn graph_base_follows_the_cloud() {
        for (cloud, graph) in [
            (Cloud::global(), "https://graph.microsoft.com"),
            (Cloud::us_government(), "https://graph.microsoft.us"),
            (Cloud::china(), "https://microsoftgraph.chinacloudapi.cn"),
        ] {
            let resolver = builder(&cloud).build().unwrap();
            assert_eq!(resolver.inner.graph_base, graph);
            assert_eq!(resolver.inner.authority, cloud.authority());
        }
    }

    #[test]
    fn inconsistent_configurations_are_refused() {
        let cloud = Cloud::global();
        let cases: Vec<(GraphGroupResolverBuilder, ConfigError)> = vec![
            (
                GraphGroupResolver::builder(
                    &cloud,
                    TenantId::parse(TENANT).unwrap(),
                    "api://x",
                    ClientCredential::secret(SECRET),
                ),
                ConfigError::InvalidClientId {
                    found: "api://x".into(),
                },
            ),
            (
                GraphGroupResolver::builder(
                    &cloud,
                    TenantId::parse(TENANT).unwrap(),
                    CLIENT,
                    ClientCredential::secret(""),
                ),
                ConfigError::InvalidCredential {
                    reason: "the client secret is empty",
                },
            ),
            (
                builder(&cloud).cache_ttl(Duration::ZERO),
                ConfigError::OutOfRange {
                    setting: "cache_ttl",
                    reason: "above zero, at most 24 h",
                },
            ),
            (
                builder(&cloud).failure_ttl(Duration::ZERO),
                ConfigError::OutOfRange {
                    setting: "failure_ttl",
                    reason: "above zero, at most 60 s",
                },
            ),
            (
                builder(&cloud).failure_ttl(Duration::from_secs(61)),
                ConfigError::OutOfRange {
                    setting: "failure_ttl",
                    reason: "above zero, at most 60 s",
                },
            ),
            (
                builder(&cloud).time_budget(Duration::from_secs(600)),
                ConfigError::OutOfRange {
                    setting: "time_budget",
                    reason: "above zero, at most 120 s",
                },
            ),
            (
                builder(&cloud).max_retries(11),
                ConfigError::OutOfRange {
                    setting: "max_retries",
                    reason: "at most 10",
                },
            ),
            (
                builder(&Cloud::custom("http://127.0.0.1:9")),
                ConfigError::InvalidAuthority {
                    found: "http://127.0.0.1:9".into(),
                    reason: "plain http: use https, or dangerous_allow_http_loopback() for a loopback test server",
                },
            ),
            (
                builder(&Cloud::custom("http://10.0.0.1:9")).dangerous_allow_http_loopback(),
                ConfigError::InvalidAuthority {
                    found: "http://10.0.0.1:9".into(),
                    reason: "plain http is allowed only for loopback hosts",
                },
            ),
            (
                builder(&Cloud::global().with_graph_base("http://graph.example")),
                ConfigError::InvalidGraphBase {
                    found: "http://graph.example".into(),
                    reason: "plain http: use https, or dangerous_allow_http_loopback() for a loopback test server",
                },
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(builder.build().unwrap_err(), expected);
        }
        assert!(
            builder(&Cloud::custom("http://127.0.0.1:9"))
                .dangerous_allow_http_loopback()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn error_codes_are_extracted_without_descriptions() {
        let entra = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
        assert_eq!(entra_error_code(entra), "invalid_client (AADSTS7000215)");
        assert_eq!(entra_error_code(b"<html>"), "unknown");
        assert_eq!(
            entra_error_code(br#"{"error":"bad code\n with spaces"}"#),
            "unknown"
        );
        let graph = br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#;
        assert_eq!(graph_error_code(graph), "Authorization_RequestDenied");
        assert_eq!(graph_error_code(b"{}"), "unknown");
    }

    #[test]
    fn a_throttled_hold_answers_the_time_left_rounded_up_then_nothing() {
        let now = std::time::Instant::now();
        let held = Held {
            error: None,
            until: now + Duration::from_millis(1500),
        };
        assert_eq!(
            held.answer(now),
            Some(GroupResolutionError::Throttled {
                retry_after_secs: 2
            })
        );
        let failed = GroupResolutionError::Unavailable { reason: "x".into() };
        let held = Held {
            error: Some(failed.clone()),
            until: now + Duration::from_secs(60),
        };
        assert_eq!(held.answer(now), Some(failed));
        assert_eq!(held.answer(now + Duration::from_secs(60)), None);
        let over = Held {
            error: None,
            until: now,
        };
        assert_eq!(over.answer(now), None);
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_down_to_half() {
        // 100 ms doubling per retry, capped at 2 s; each wait in [full / 2, full].
        let ms = Duration::from_millis;
        let expected = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for retries in 0..20u32 {
            let full = ms(expected[(retries as usize).min(expected.len() - 1)]);
            let wait = backoff(retries);
            assert!(wait >= full / 2 && wait <= full, "{retries}: {wait:?}");
        }
    }
}
