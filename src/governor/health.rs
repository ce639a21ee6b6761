//! [`Health`]: what [`Governor::health`](crate::Governor::health) reports, for readiness
//! probes and dashboards. Plain data that serialises to JSON (durations in milliseconds,
//! in fields ending `_ms`), so a `/readyz` handler can answer it as it is.
//!
//! Building a report never makes a network call and never waits on a lock that a request
//! holds: it reads what the governor last learnt (the key store's last refresh, the last
//! group lookup, the audit log's counters, the fleet view).
//!
//! # When is a governor ready?
//!
//! Deny by default: [`Health::ready`] is true only when none of the [`NotReady`] causes
//! holds, and [`Health::not_ready`] lists every one that does:
//!
//! | cause | when | why it blocks |
//! |---|---|---|
//! | [`NoSigningKeys`](NotReady::NoSigningKeys) | no signing key is held (never fetched, or none usable) | every token is refused with 503 |
//! | [`AuditClosed`](NotReady::AuditClosed) | an audit log is configured and has stopped (shut down) | every decision is refused as unrecordable |
//! | [`AuditSinkFailing`](NotReady::AuditSinkFailing) | the audit log is in strict mode and its sink's last call failed | strict mode refuses every request while the trail fails |
//! | [`FleetViewStale`](NotReady::FleetViewStale) | fleet mode with a strict bound, and the revocation view is older than the bound (or was never current) | strict fleet mode refuses every token with 503 |
//!
//! What does not block readiness, because requests are still decided correctly: a failing
//! key refresh while keys are held (the last good set keeps verifying, as Microsoft
//! advises), an audit sink failing outside strict mode (events wait in the queue and are
//! retried), dropped audit events, and a failing Microsoft Graph (only callers whose
//! groups need a lookup are affected, and they are denied with 503, never allowed). Those
//! are reported for alerting.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use entra_governor::Governor;
//! use entra_governor::health::NotReady;
//!
//! let governor = Governor::builder()
//!     .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!     .build()?;
//! // Nothing fetched yet (`build` never touches the network): not ready.
//! let health = governor.health();
//! assert!(!health.ready);
//! assert_eq!(health.not_ready, [NotReady::NoSigningKeys]);
//! assert_eq!(health.keys.loaded, 0);
//! let json = serde_json::to_value(&health)?;
//! assert_eq!(json["not_ready"][0], "no_signing_keys");
//! # Ok(()) }
//! ```

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Governor;
use crate::fleet::FleetMode;
use crate::graph::GroupResolutionError;

/// A snapshot of what a governor knows about its own state. See the [module docs](self)
/// for the readiness rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// True when the governor can decide requests: [`not_ready`](Self::not_ready) is empty.
    pub ready: bool,
    /// Every reason the governor is not ready, in a fixed order; empty when it is.
    pub not_ready: Vec<NotReady>,
    /// The signing keys.
    pub keys: KeysHealth,
    /// The live policy (and the shadow policy, if any).
    pub policy: PolicyHealth,
    /// The verified-token cache.
    pub token_cache: TokenCacheHealth,
    /// Revocation entries held.
    pub revocations: usize,
    /// Group lookups, when a group resolver is configured.
    pub graph: Option<GraphHealth>,
    /// The audit trail, when an audit log is configured.
    pub audit: Option<AuditHealth>,
    /// The shared fleet view, in fleet mode.
    pub fleet: Option<FleetHealth>,
}

/// Why a governor is not ready (see the [module docs](self)). Serialises in `snake_case`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotReady {
    /// No signing key is held: every token would be refused.
    NoSigningKeys,
    /// The audit log has stopped taking events.
    AuditClosed,
    /// Strict audit mode and the sink's last call failed.
    AuditSinkFailing,
    /// Strict fleet mode and the revocation view is older than its bound.
    FleetViewStale,
}

/// The signing keys as the key store last learnt them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeysHealth {
    /// How many usable signing keys are held.
    pub loaded: usize,
    /// The time since a refresh last fetched a usable key set (the age of the held set's
    /// confirmation); `None` when none ever did.
    #[serde(rename = "last_refresh_age_ms", serialize_with = "millis_opt")]
    pub last_refresh_age: Option<Duration>,
    /// The time since a refresh last failed; `None` when none has.
    #[serde(rename = "last_failure_age_ms", serialize_with = "millis_opt")]
    pub last_failure_age: Option<Duration>,
    /// True when the most recent refresh failed (the held keys, if any, keep serving).
    pub refresh_failing: bool,
}

/// The policy decisions are made under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PolicyHealth {
    /// True when the policy binds roles to someone. False while the built-in deny-all
    /// policy decides (a governor built without a policy) or one without bindings: every
    /// request is then denied. Reported, not a readiness cause (denying is safe).
    pub loaded: bool,
    /// The live policy's version hash.
    pub version: String,
    /// The shadow policy's version hash, if one is set.
    pub shadow_version: Option<String>,
}

/// The verified-token cache's size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenCacheHealth {
    /// Cached verified tokens (0 without a cache).
    pub entries: u64,
    /// Bytes counted against the cache's budget.
    pub bytes: u64,
}

/// Group lookups as this governor last saw them: the result of the last call to the
/// resolver, never a new call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GraphHealth {
    /// The result of the last group lookup; `None` before the first.
    pub last_result: Option<GraphResult>,
    /// The time since the last group lookup ended.
    #[serde(rename = "last_call_age_ms", serialize_with = "millis_opt")]
    pub last_call_age: Option<Duration>,
    /// Whether the application's credential works, as far as the lookups so far tell.
    pub credential: CredentialState,
}

/// How a group lookup ended: the kind of [`GroupResolutionError`], without its details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GraphResult {
    /// The membership was resolved.
    Ok,
    /// [`GroupResolutionError::Unavailable`].
    Unavailable,
    /// [`GroupResolutionError::Throttled`].
    Throttled,
    /// [`GroupResolutionError::BudgetExceeded`].
    BudgetExceeded,
    /// [`GroupResolutionError::Unauthorized`].
    Unauthorized,
    /// [`GroupResolutionError::NotFound`].
    NotFound,
    /// Another error of a custom resolver.
    Other,
}

impl GraphResult {
    /// The result kind of a lookup's outcome.
    fn of(result: &Result<Vec<crate::ids::GroupId>, GroupResolutionError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(GroupResolutionError::Unavailable { .. }) => Self::Unavailable,
            Err(GroupResolutionError::Throttled { .. }) => Self::Throttled,
            Err(GroupResolutionError::BudgetExceeded { .. }) => Self::BudgetExceeded,
            Err(GroupResolutionError::Unauthorized { .. }) => Self::Unauthorized,
            Err(GroupResolutionError::NotFound { .. }) => Self::NotFound,
            #[allow(unreachable_patterns)]
            Err(_) => Self::Other,
        }
    }
}

/// Whether the application's credential works, as far as known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredentialState {
    /// No lookup has told yet (none made, or only ones that failed before an answer).
    #[default]
    Unknown,
    /// The last lookup that reached Microsoft Graph was answered (a membership, or "no
    /// such principal"): the credential and the Graph permissions work.
    Accepted,
    /// The last lookup that reached an answer was refused: the token endpoint refused the
    /// credential, or Microsoft Graph refused its token (permissions not granted).
    Refused,
}

/// The audit trail's state and counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditHealth {
    /// True while the log runs and the sink's last call succeeded.
    pub healthy: bool,
    /// Strict mode: requests are refused while the sink fails.
    pub strict: bool,
    /// The log has stopped taking events.
    pub closed: bool,
    /// Events recorded but neither written nor dropped yet.
    pub queue_depth: u64,
    /// Events lost since the log started.
    pub dropped: u64,
    /// Failed sink calls since the log started.
    pub sink_failures: u64,
    /// Failed sink calls since the last success.
    pub consecutive_failures: u64,
}

/// This replica's view of the fleet, in fleet mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FleetHealth {
    /// False when strict mode is on and the revocation view is older than the bound (or
    /// never caught up); always true outside strict mode.
    pub current: bool,
    /// How old the revocation view is (its lag behind the fleet); `None` until the first
    /// catch-up.
    #[serde(rename = "view_age_ms", serialize_with = "millis_opt")]
    pub view_age: Option<Duration>,
    /// The strict mode's bound, if strict mode is on.
    #[serde(rename = "strict_bound_ms", serialize_with = "millis_opt")]
    pub strict_bound: Option<Duration>,
    /// Whether the last exchange with Redis succeeded.
    pub connected: bool,
    /// Whether every live replica decides under this replica's policy version.
    pub policy_converged: bool,
}

/// What the governor saw of its group lookups: written after each lookup (already the
/// slow path, behind a network call), read by [`Governor::health`].
#[derive(Debug, Default)]
pub(crate) struct GraphCalls {
    last: Mutex<GraphCallsState>,
}

#[derive(Debug, Default)]
struct GraphCallsState {
    last: Option<(Instant, GraphResult)>,
    credential: CredentialState,
}

impl GraphCalls {
    /// Notes how a lookup ended.
    pub(crate) fn note(&self, result: &Result<Vec<crate::ids::GroupId>, GroupResolutionError>) {
        let kind = GraphResult::of(result);
        crate::observe::graph_call(kind);
        let mut state = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.last = Some((Instant::now(), kind));
        match kind {
            GraphResult::Ok | GraphResult::NotFound => state.credential = CredentialState::Accepted,
            GraphResult::Unauthorized => state.credential = CredentialState::Refused,
            _ => {}
        }
    }

    fn report(&self) -> GraphHealth {
        let state = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        GraphHealth {
            last_result: state.last.map(|(_, kind)| kind),
            last_call_age: state.last.map(|(at, _)| at.elapsed()),
            credential: state.credential,
        }
    }
}

impl Governor {
    /// What this governor knows about its own state, and whether it is ready to decide
    /// (see [`health`](crate::health) for the rule). Never makes a network call: it reads
    /// what the key store, the group lookups, the audit log and the fleet view last
    /// learnt. Serialise it for a `/readyz` answer.
    pub fn health(&self) -> Health {
        let inner = &self.inner;
        let times = inner.verifier.key_refresh_times();
        let keys = KeysHealth {
            loaded: inner.verifier.keys.snapshot().len(),
            last_refresh_age: times.last_success.map(|t| t.elapsed()),
            last_failure_age: times.last_failure.map(|t| t.elapsed()),
            refresh_failing: match (times.last_failure, times.last_success) {
                (Some(failed), Some(worked)) => failed > worked,
                (failed, _) => failed.is_some(),
            },
        };
        let policy = inner.policy.load();
        let policy = PolicyHealth {
            loaded: policy.binding_labels().next().is_some(),
            version: policy.version_hash().to_owned(),
            shadow_version: inner.shadow.report().policy_version,
        };
        let audit = inner.audit.as_ref().map(|log| AuditHealth {
            healthy: log.is_healthy(),
            strict: log.is_strict(),
            closed: log.is_closed(),
            queue_depth: log.pending(),
            dropped: log.dropped(),
            sink_failures: log.sink_failures(),
            consecutive_failures: log.consecutive_failures(),
        });
        let status = self.fleet_status();
        let fleet = (status.mode == FleetMode::Redis).then(|| FleetHealth {
            current: status
                .strict_bound
                .is_none_or(|bound| status.view_age.is_some_and(|age| age <= bound)),
            view_age: status.view_age,
            strict_bound: status.strict_bound,
            connected: status.connected,
            policy_converged: status.policy_converged(),
        });
        let not_ready = not_ready(&keys, audit.as_ref(), fleet.as_ref());
        Health {
            ready: not_ready.is_empty(),
            not_ready,
            keys,
            policy,
            token_cache: TokenCacheHealth {
                entries: inner.verifier.cached_tokens(),
                bytes: inner.verifier.cached_token_bytes(),
            },
            revocations: inner.revocations.len(),
            graph: inner.groups.as_ref().map(|_| inner.graph_calls.report()),
            audit,
            fleet,
        }
    }

    /// Sets the scrape-time metrics (feature `metrics`: the gauges, and the audit log's
    /// counters) from [`health`](Self::health), for the installed recorder: call it just
    /// before rendering a scrape. See [`observe`](crate::observe).
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn record_gauges(&self) {
        crate::observe::gauges(&self.health());
    }
}

/// The readiness rule of the [module docs](self): every cause that holds, in order.
fn not_ready(
    keys: &KeysHealth,
    audit: Option<&AuditHealth>,
    fleet: Option<&FleetHealth>,
) -> Vec<NotReady> {
    let mut causes = Vec::new();
    if keys.loaded == 0 {
        causes.push(NotReady::NoSigningKeys);
    }
    if let Some(audit) = audit {
        if audit.closed {
            causes.push(NotReady::AuditClosed);
        } else if audit.strict && audit.consecutive_failures > 0 {
            causes.push(NotReady::AuditSinkFailing);
        }
    }
    if fleet.is_some_and(|fleet| !fleet.current) {
        causes.push(NotReady::FleetViewStale);
    }
    causes
}

fn millis_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;
