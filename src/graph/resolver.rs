//! [`GraphGroupResolver`]: group membership through Microsoft Graph, with a Graph token per
//! tenant, a membership cache per `(tid, oid)`, single flight, retries, a time budget, and
//! failures (and 429s) remembered per principal and per tenant.
//!
//! This file holds the resolver with its caches and single flight; its concerns live in
//! child modules: `builder` (the settings), `membership` (the REST calls and paging),
//! `app_token` (the client-credentials token and its cache) and `retry` (retries,
//! `Retry-After` clamps, 429 holds). They are children of `resolver` rather than siblings
//! under `graph/` (as the architecture map draws them) so that they share the resolver's
//! private state without widening its visibility.

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

mod app_token;
mod builder;
mod membership;
mod retry;

use app_token::GraphToken;
pub use builder::GraphGroupResolverBuilder;
use membership::unusable;
use retry::{Held, clean_code, deadline_in, graph_error_code};

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
const MANAGED_IDENTITY: &str = "the managed identity endpoint";
const GRAPH: &str = "Microsoft Graph";

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
    /// The managed identity endpoint's own client (no proxy), for managed identities.
    identity_client: Option<reqwest::Client>,
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
    /// Answers and 429 holds shared with the fleet.
    #[cfg(feature = "redis")]
    share: Option<crate::fleet::GraphShare>,
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

impl GraphGroupResolver {
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

    /// HTTP requests sent to the token endpoint, or to the managed identity endpoint
    /// (every attempt).
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
                .map_err(|e| {
                    crate::observe::graph_cache_lookup(false);
                    (*e).clone()
                })?;
            if membership.knows(wanted) {
                let hit = !fetched_here.load(Ordering::SeqCst);
                if hit {
                    self.cache_hits.fetch_add(1, Ordering::SeqCst);
                }
                crate::observe::graph_cache_lookup(hit);
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
        crate::observe::graph_cache_lookup(false);
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
        let result = tokio::time::timeout_at(deadline, self.fetch_shared(principal, ask, deadline))
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
}

impl Inner {
    /// [`fetch`](Self::fetch) through the fleet: another replica's answer, or this
    /// replica's call shared with the others.
    #[cfg(feature = "redis")]
    async fn fetch_shared(
        &self,
        principal: &Principal,
        ask: &[GroupId],
        deadline: Instant,
    ) -> Result<Membership, GroupResolutionError> {
        use crate::fleet::Lookup;
        let Some(share) = &self.share else {
            return self.fetch(principal, ask, deadline).await;
        };
        if let Some(left) = share.held(principal.tenant()).await {
            self.hold_tenant(principal.tenant(), None, left).await;
            return Err(retry::throttled_for(left));
        }
        let lock = match share
            .find_or_lock(principal.id(), ask, self.time_budget, deadline)
            .await
        {
            Lookup::Found(found) => {
                self.cache_hits.fetch_add(1, Ordering::SeqCst);
                return Ok(Membership {
                    asked: ask.iter().cloned().collect(),
                    members: found.members,
                    valid_until: valid_for(found.valid_for.min(self.answer_life(principal))),
                });
            }
            Lookup::Ask(lock) => Some(lock),
            Lookup::Alone => None,
        };
        let result = self.fetch(principal, ask, deadline).await;
        match (lock, &result) {
            (Some(lock), Ok(membership)) => {
                let life = membership
                    .valid_until
                    .saturating_duration_since(std::time::Instant::now());
                share
                    .put(lock, principal.id(), ask, &membership.members, life)
                    .await;
            }
            (Some(lock), Err(_)) => share.release(lock).await,
            (None, _) => {}
        }
        result
    }

    /// Without the fleet: [`fetch`](Self::fetch).
    #[cfg(not(feature = "redis"))]
    async fn fetch_shared(
        &self,
        principal: &Principal,
        ask: &[GroupId],
        deadline: Instant,
    ) -> Result<Membership, GroupResolutionError> {
        self.fetch(principal, ask, deadline).await
    }
}

impl Inner {
    /// How long an answer about `principal` may be used from now: the configured TTL,
    /// never past the caller's token.
    fn answer_life(&self, principal: &Principal) -> Duration {
        let token_life = Duration::from_secs(principal.expires_at.saturating_sub(unix_now()));
        self.cache_ttl.min(token_life)
    }
}

/// The end of a life of `life` from now (now itself, i.e. already over, if that is past
/// the clock's range): never a panic, never longer than asked.
fn valid_for(life: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(life).unwrap_or(now)
}

#[cfg(test)]
mod tests;
