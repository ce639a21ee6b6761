//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! every metric's name, its description ([`describe`]) and one small function per event,
//! so that call sites elsewhere are one line each. Without the feature the functions are
//! empty and no metric call compiles in.
//!
//! The crate installs no recorder: the application installs the exporter it wants (the
//! decision service installs `metrics-exporter-prometheus` and serves `GET /metrics`).
//! Labels come only from fixed sets (outcomes, [`Reason::code`](crate::Reason::code),
//! [`TokenError::code`](crate::TokenError::code), [`GraphResult`]),
//! never from a token, a caller, a tenant, a resource or an action, so the number of
//! series does not grow with traffic.
//!
//! The request path's metrics (allowed decisions, token cache lookups, the decision
//! latency) are registered once, when the governor is built, and updated through their
//! handles, as `metrics` advises for hot paths: **install the recorder before building
//! the governor**. Every other metric is looked up in the recorder when it happens.
//!
//! Gauges (and the audit counters the audit log already keeps) are set at scrape time by
//! [`Governor::record_gauges`](crate::Governor::record_gauges), from
//! [`Governor::health`](crate::Governor::health): call it just before rendering.
//!
//! ```
//! # #[cfg(feature = "metrics")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use entra_governor::{Governor, observe};
//!
//! // Install your recorder (an exporter) first; then:
//! observe::describe();
//! let governor = Governor::builder()
//!     .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!     .build()?;
//! // Before each scrape:
//! governor.record_gauges();
//! assert_eq!(observe::DECISIONS_TOTAL, "entra_governor_decisions_total");
//! # Ok(()) }
//! # #[cfg(not(feature = "metrics"))]
//! # fn main() {}
//! ```

#[cfg(feature = "metrics")]
use std::sync::Mutex;
use std::time::Instant;

use crate::decision::Decision;
use crate::error::AuthorizeError;
use crate::health::GraphResult;

/// Counter: decisions, by `outcome` (`allow`, `deny`) and `reason` (a
/// [`Reason::code`](crate::Reason::code), a [`TokenError::code`](crate::TokenError::code)
/// for a refused token, or `audit_unavailable`).
pub const DECISIONS_TOTAL: &str = "entra_governor_decisions_total";
/// Histogram: the whole `authorize` call (verification, decision, recording), seconds.
pub const DECISION_DURATION_SECONDS: &str = "entra_governor_decision_duration_seconds";
/// Counter: verified-token cache lookups, by `result` (`hit`, `miss`).
pub const TOKEN_CACHE_LOOKUPS_TOTAL: &str = "entra_governor_token_cache_lookups_total";
/// Gauge: verified tokens cached.
pub const TOKEN_CACHE_ENTRIES: &str = "entra_governor_token_cache_entries";
/// Gauge: bytes the verified-token cache's entries are charged (token, principal, entry).
pub const TOKEN_CACHE_BYTES: &str = "entra_governor_token_cache_bytes";
/// Counter: entries the verified-token cache evicted to make room: by its byte budget
/// (the CLOCK hand) or for a slot of the table (both of a token's sets full). Entries
/// dropped because their token expired or their key left the JWKS are not counted.
pub const TOKEN_CACHE_EVICTIONS_TOTAL: &str = "entra_governor_token_cache_evictions_total";
/// Histogram: the full verification of a token the cache did not hold (envelope, key,
/// signature, claims, Entra rules), seconds.
pub const TOKEN_VERIFICATION_DURATION_SECONDS: &str =
    "entra_governor_token_verification_duration_seconds";
/// Counter: signing-key (discovery and JWKS) fetches, by `result` (`ok`, `error`).
pub const JWKS_FETCHES_TOTAL: &str = "entra_governor_jwks_fetches_total";
/// Gauge: seconds since the signing keys were last fetched successfully.
pub const JWKS_AGE_SECONDS: &str = "entra_governor_jwks_age_seconds";
/// Counter: group lookups, by `result` (a [`GraphResult`], in `snake_case`).
pub const GRAPH_CALLS_TOTAL: &str = "entra_governor_graph_calls_total";
/// Counter: HTTP 429 answers from Microsoft Graph or its token endpoint.
pub const GRAPH_THROTTLED_TOTAL: &str = "entra_governor_graph_throttled_total";
/// Histogram: one group lookup as a decision waited for it (the resolver's cache, Graph,
/// its retries and `Retry-After` waits), seconds.
pub const GRAPH_LOOKUP_DURATION_SECONDS: &str = "entra_governor_graph_lookup_duration_seconds";
/// Counter: waits for a `Retry-After` Microsoft Graph (or its token endpoint) asked for.
pub const GRAPH_RETRY_AFTER_WAITS_TOTAL: &str = "entra_governor_graph_retry_after_waits_total";
/// Counter: seconds spent waiting for `Retry-After`s.
pub const GRAPH_RETRY_AFTER_SECONDS_TOTAL: &str = "entra_governor_graph_retry_after_seconds_total";
/// Counter: membership cache lookups of the Graph resolver, by `result` (`hit`, `miss`);
/// the hit ratio is `hit / (hit + miss)`.
pub const GRAPH_CACHE_LOOKUPS_TOTAL: &str = "entra_governor_graph_cache_lookups_total";
/// Gauge: revocation entries held.
pub const REVOCATIONS: &str = "entra_governor_revocations";
/// Gauge (fleet mode): seconds since this replica's view of the fleet was last confirmed
/// current (the fleet's lag as this replica sees it).
pub const FLEET_VIEW_AGE_SECONDS: &str = "entra_governor_fleet_view_age_seconds";
/// Gauge (fleet mode): 1 while connected to the fleet's Redis, 0 otherwise.
pub const FLEET_CONNECTED: &str = "entra_governor_fleet_connected";
/// Gauge: audit events recorded but neither written nor dropped yet.
pub const AUDIT_QUEUE_DEPTH: &str = "entra_governor_audit_queue_depth";
/// Counter: audit events lost since the audit log started.
pub const AUDIT_DROPPED_TOTAL: &str = "entra_governor_audit_dropped_total";
/// Counter: failed audit sink calls since the audit log started.
pub const AUDIT_SINK_FAILURES_TOTAL: &str = "entra_governor_audit_sink_failures_total";
/// Counter: policy file reloads, by `result` (`ok`, `error`).
pub const POLICY_RELOADS_TOTAL: &str = "entra_governor_policy_reloads_total";
/// Gauge: 1 for the live policy's `version` (its hash); a replaced version's series is
/// set to 0.
pub const POLICY_INFO: &str = "entra_governor_policy_info";

/// Bucket bounds for [`DECISION_DURATION_SECONDS`], in seconds: from a cached token's
/// microseconds to a Graph lookup's seconds.
pub const DECISION_DURATION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Bucket bounds for [`TOKEN_VERIFICATION_DURATION_SECONDS`], in seconds: an RSA check
/// takes tens of microseconds; a token signed by a key not held yet waits for the key
/// refresh (an HTTP round trip, up to the HTTP timeout).
pub const TOKEN_VERIFICATION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every histogram with its bucket bounds, for exporters that take buckets per metric
/// (`PrometheusBuilder::set_buckets_for_metric` for each pair).
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (DECISION_DURATION_SECONDS, DECISION_DURATION_BUCKETS),
    (
        TOKEN_VERIFICATION_DURATION_SECONDS,
        TOKEN_VERIFICATION_BUCKETS,
    ),
    (GRAPH_LOOKUP_DURATION_SECONDS, GRAPH_LOOKUP_BUCKETS),
];

/// Bucket bounds for [`GRAPH_LOOKUP_DURATION_SECONDS`], in seconds: from a cached answer
/// to a throttled lookup's wait.
pub const GRAPH_LOOKUP_BUCKETS: &[f64] = &[
    0.000_01, 0.000_1, 0.001, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Describes every metric (type, unit and help text) to the installed recorder: call it
/// once, after installing the recorder.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(DECISIONS_TOTAL, "Decisions, by outcome and reason code.");
    describe_histogram!(
        DECISION_DURATION_SECONDS,
        Unit::Seconds,
        "The whole authorize call: verification, decision and recording."
    );
    describe_counter!(
        TOKEN_CACHE_LOOKUPS_TOTAL,
        "Verified-token cache lookups, by result (hit, miss)."
    );
    describe_gauge!(TOKEN_CACHE_ENTRIES, "Verified tokens cached.");
    describe_gauge!(
        TOKEN_CACHE_BYTES,
        Unit::Bytes,
        "Bytes the verified-token cache's entries are charged."
    );
    describe_counter!(
        TOKEN_CACHE_EVICTIONS_TOTAL,
        "Verified-token cache entries evicted to make room."
    );
    describe_histogram!(
        TOKEN_VERIFICATION_DURATION_SECONDS,
        Unit::Seconds,
        "The full verification of a token the cache did not hold."
    );
    describe_counter!(
        JWKS_FETCHES_TOTAL,
        "Signing-key fetches, by result (ok, error)."
    );
    describe_gauge!(
        JWKS_AGE_SECONDS,
        Unit::Seconds,
        "Seconds since the signing keys were last fetched successfully."
    );
    describe_counter!(GRAPH_CALLS_TOTAL, "Group lookups, by result.");
    describe_counter!(
        GRAPH_THROTTLED_TOTAL,
        "HTTP 429 answers from Microsoft Graph or its token endpoint."
    );
    describe_histogram!(
        GRAPH_LOOKUP_DURATION_SECONDS,
        Unit::Seconds,
        "One group lookup as a decision waited for it."
    );
    describe_counter!(
        GRAPH_RETRY_AFTER_WAITS_TOTAL,
        "Waits for a Retry-After from Microsoft Graph or its token endpoint."
    );
    describe_counter!(
        GRAPH_RETRY_AFTER_SECONDS_TOTAL,
        Unit::Seconds,
        "Seconds spent waiting for Retry-After."
    );
    describe_counter!(
        GRAPH_CACHE_LOOKUPS_TOTAL,
        "Graph resolver membership cache lookups, by result (hit, miss); hit ratio = hit / (hit + miss)."
    );
    describe_gauge!(REVOCATIONS, "Revocation entries held.");
    describe_gauge!(
        FLEET_VIEW_AGE_SECONDS,
        Unit::Seconds,
        "Fleet mode: seconds since this replica's view of the fleet was confirmed current."
    );
    describe_gauge!(
        FLEET_CONNECTED,
        "Fleet mode: 1 while connected to the fleet's Redis."
    );
    describe_gauge!(
        AUDIT_QUEUE_DEPTH,
        "Audit events recorded but neither written nor dropped yet."
    );
    describe_counter!(
        AUDIT_DROPPED_TOTAL,
        "Audit events lost since the audit log started."
    );
    describe_counter!(
        AUDIT_SINK_FAILURES_TOTAL,
        "Failed audit sink calls since the audit log started."
    );
    describe_counter!(
        POLICY_RELOADS_TOTAL,
        "Policy file reloads, by result (ok, error)."
    );
    describe_gauge!(POLICY_INFO, "1 for the live policy's version hash.");
}

/// The request path's metric handles, registered once (with the recorder installed when
/// the governor is built) so that a request touches no registry.
#[derive(Clone)]
pub(crate) struct Hot {
    #[cfg(feature = "metrics")]
    allowed: metrics::Counter,
    #[cfg(feature = "metrics")]
    cache_hit: metrics::Counter,
    #[cfg(feature = "metrics")]
    cache_miss: metrics::Counter,
    #[cfg(feature = "metrics")]
    duration: metrics::Histogram,
    #[cfg(feature = "metrics")]
    verification: metrics::Histogram,
    #[cfg(feature = "metrics")]
    evicted: metrics::Counter,
}

impl Hot {
    /// Registers the handles with the recorder installed now.
    pub(crate) fn register() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            allowed: metrics::counter!(DECISIONS_TOTAL, "outcome" => "allow", "reason" => "allow"),
            #[cfg(feature = "metrics")]
            cache_hit: metrics::counter!(TOKEN_CACHE_LOOKUPS_TOTAL, "result" => "hit"),
            #[cfg(feature = "metrics")]
            cache_miss: metrics::counter!(TOKEN_CACHE_LOOKUPS_TOTAL, "result" => "miss"),
            #[cfg(feature = "metrics")]
            duration: metrics::histogram!(DECISION_DURATION_SECONDS),
            #[cfg(feature = "metrics")]
            verification: metrics::histogram!(TOKEN_VERIFICATION_DURATION_SECONDS),
            #[cfg(feature = "metrics")]
            evicted: metrics::counter!(TOKEN_CACHE_EVICTIONS_TOTAL),
        }
    }
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot").finish_non_exhaustive()
    }
}

/// An `authorize` call ended: its decision (or refusal) and its duration.
#[inline]
pub(crate) fn authorized(hot: &Hot, result: &Result<Decision, AuthorizeError>, started: Instant) {
    #[cfg(feature = "metrics")]
    {
        match result {
            Ok(decision) => decided(hot, decision),
            Err(AuthorizeError::InvalidToken(error)) => token_refused(error.code()),
            Err(AuthorizeError::AuditUnavailable) => deny("audit_unavailable"),
        }
        hot.duration.record(started.elapsed().as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (hot, result, started);
}

/// A decision was made (and is counted by its outcome and reason).
#[inline]
pub(crate) fn decided(hot: &Hot, decision: &Decision) {
    #[cfg(feature = "metrics")]
    {
        // An allow is always `Reason::Allow` (`Decision::allow`): its series is registered.
        if decision.is_allowed() {
            hot.allowed.increment(1);
        } else {
            deny(decision.reason.code());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (hot, decision);
}

/// A request was refused before any decision: its token (or `Authorization` header) was
/// rejected, with this fixed error code.
#[inline]
pub(crate) fn token_refused(code: &'static str) {
    #[cfg(feature = "metrics")]
    deny(code);
    #[cfg(not(feature = "metrics"))]
    let _ = code;
}

#[cfg(feature = "metrics")]
fn deny(reason: &'static str) {
    metrics::counter!(DECISIONS_TOTAL, "outcome" => "deny", "reason" => reason).increment(1);
}

/// A verified-token cache lookup hit or missed.
#[inline]
pub(crate) fn token_cache_lookup(hot: &Hot, hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        hot.cache_hit.increment(1);
    } else {
        hot.cache_miss.increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (hot, hit);
}

/// When something measured started: an [`Instant`] with the feature, nothing (and no
/// clock read) without it.
#[derive(Clone, Copy)]
pub(crate) struct Stopwatch {
    #[cfg(feature = "metrics")]
    started: Instant,
}

impl Stopwatch {
    /// Starts measuring now (reads the clock only with the feature).
    #[inline]
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: Instant::now(),
        }
    }
}

/// A token the cache did not hold was verified in full (or refused), from `started`.
#[inline]
pub(crate) fn token_verified(hot: &Hot, started: Stopwatch) {
    #[cfg(feature = "metrics")]
    hot.verification
        .record(started.started.elapsed().as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = (hot, started);
}

/// The verified-token cache evicted `n` entries to make room for a newly verified token.
#[inline]
pub(crate) fn token_cache_evicted(hot: &Hot, n: u64) {
    #[cfg(feature = "metrics")]
    if n > 0 {
        hot.evicted.increment(n);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (hot, n);
}

/// A group lookup a decision waited for ended, from `started` (answered from the
/// resolver's cache or not: the histogram is the Graph part of decisions' latency).
pub(crate) fn graph_lookup_took(started: Stopwatch) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(GRAPH_LOOKUP_DURATION_SECONDS)
        .record(started.started.elapsed().as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = started;
}

/// The Graph resolver answered from its membership cache (`hit`) or had to ask.
#[cfg(feature = "graph")]
pub(crate) fn graph_cache_lookup(hit: bool) {
    #[cfg(feature = "metrics")]
    {
        let result = if hit { "hit" } else { "miss" };
        metrics::counter!(GRAPH_CACHE_LOOKUPS_TOTAL, "result" => result).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = hit;
}

/// The Graph resolver is about to wait `wait` because a `Retry-After` asked for it.
#[cfg(feature = "graph")]
pub(crate) fn graph_retry_after_wait(wait: std::time::Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(GRAPH_RETRY_AFTER_WAITS_TOTAL).increment(1);
        metrics::counter!(GRAPH_RETRY_AFTER_SECONDS_TOTAL).increment(wait.as_secs());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = wait;
}

/// A signing-key fetch ended; a success makes the held keys' age 0.
pub(crate) fn jwks_fetched(ok: bool) {
    #[cfg(feature = "metrics")]
    {
        let result = if ok { "ok" } else { "error" };
        metrics::counter!(JWKS_FETCHES_TOTAL, "result" => result).increment(1);
        if ok {
            metrics::gauge!(JWKS_AGE_SECONDS).set(0.0);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = ok;
}

/// A group lookup ended.
pub(crate) fn graph_call(result: GraphResult) {
    #[cfg(feature = "metrics")]
    {
        let result = match result {
            GraphResult::Ok => "ok",
            GraphResult::Unavailable => "unavailable",
            GraphResult::Throttled => "throttled",
            GraphResult::BudgetExceeded => "budget_exceeded",
            GraphResult::Unauthorized => "unauthorized",
            GraphResult::NotFound => "not_found",
            GraphResult::Other => "other",
        };
        metrics::counter!(GRAPH_CALLS_TOTAL, "result" => result).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// Microsoft Graph (or its token endpoint) answered 429.
#[cfg(feature = "graph")]
pub(crate) fn graph_throttled() {
    #[cfg(feature = "metrics")]
    metrics::counter!(GRAPH_THROTTLED_TOTAL).increment(1);
}

/// A policy file reload was applied (`ok`) or refused. Public for applications that read
/// policy files themselves, as the decision service does.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn policy_reloaded(ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(POLICY_RELOADS_TOTAL, "result" => result).increment(1);
}

/// The policy version last reported in [`POLICY_INFO`], whose series goes to 0 when the
/// version changes.
#[cfg(feature = "metrics")]
static POLICY_VERSION: Mutex<Option<String>> = Mutex::new(None);

/// Sets every scrape-time gauge from a health report.
#[cfg(feature = "metrics")]
pub(crate) fn gauges(health: &crate::health::Health) {
    use metrics::{counter, gauge};
    #[allow(clippy::cast_precision_loss)]
    gauge!(TOKEN_CACHE_ENTRIES).set(health.token_cache.entries as f64);
    #[allow(clippy::cast_precision_loss)]
    gauge!(TOKEN_CACHE_BYTES).set(health.token_cache.bytes as f64);
    if let Some(age) = health.keys.last_refresh_age {
        gauge!(JWKS_AGE_SECONDS).set(age.as_secs_f64());
    }
    #[allow(clippy::cast_precision_loss)]
    gauge!(REVOCATIONS).set(health.revocations as f64);
    if let Some(fleet) = &health.fleet {
        if let Some(age) = fleet.view_age {
            gauge!(FLEET_VIEW_AGE_SECONDS).set(age.as_secs_f64());
        }
        gauge!(FLEET_CONNECTED).set(if fleet.connected { 1.0 } else { 0.0 });
    }
    if let Some(audit) = &health.audit {
        #[allow(clippy::cast_precision_loss)]
        gauge!(AUDIT_QUEUE_DEPTH).set(audit.queue_depth as f64);
        counter!(AUDIT_DROPPED_TOTAL).absolute(audit.dropped);
        counter!(AUDIT_SINK_FAILURES_TOTAL).absolute(audit.sink_failures);
    }
    let mut last = POLICY_VERSION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.as_deref() != Some(health.policy.version.as_str()) {
        if let Some(old) = last.take() {
            gauge!(POLICY_INFO, "version" => old).set(0.0);
        }
        *last = Some(health.policy.version.clone());
    }
    gauge!(POLICY_INFO, "version" => health.policy.version.clone()).set(1.0);
}
