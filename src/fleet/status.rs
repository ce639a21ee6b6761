//! What [`Governor::fleet_status`](crate::Governor::fleet_status) reports: this replica's
//! view of the fleet, how old that view is, and every live replica's policy version.
//! Plain data, available whether or not the `redis` feature is on.

use std::time::Duration;

use serde::Serialize;

/// How a governor shares its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FleetMode {
    /// One process: revocations, Graph answers and the policy are this process's own.
    Standalone,
    /// Fleet mode: shared with every replica through Redis (feature `redis`).
    Redis,
}

/// A snapshot of this replica's view of the fleet. Serialises to the JSON that the
/// example servers answer on `GET /v1/admin/fleet`; durations are in milliseconds.
///
/// Reading it never waits on Redis: it describes what the replica last learnt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FleetStatus {
    /// Standalone or fleet mode.
    pub mode: FleetMode,
    /// This replica's id (in standalone mode, `standalone`).
    pub replica_id: String,
    /// The version hash of the policy this replica decides under now.
    pub policy_version: String,
    /// Whether the last exchange with Redis succeeded (always `false` standalone).
    pub connected: bool,
    /// How old the local revocation view is: the time since this replica last knew it
    /// held every revocation of the fleet. `None` until the first catch-up (and always
    /// standalone, where there is nothing to catch up with).
    #[serde(rename = "view_age_ms", serialize_with = "millis_opt")]
    pub view_age: Option<Duration>,
    /// The bound past which strict mode refuses requests with 503, if strict mode is on.
    #[serde(rename = "strict_bound_ms", serialize_with = "millis_opt")]
    pub strict_bound: Option<Duration>,
    /// The version of the policy last published to the fleet, as this replica last read
    /// it (verified), if any.
    pub fleet_policy_version: Option<String>,
    /// Why the last published policy was not applied here, if it was not (it failed
    /// the fleet key, did not parse, or failed validation); the good policy keeps serving.
    pub fleet_policy_rejected: Option<String>,
    /// Revocations made here that Redis has not acknowledged yet (enforced locally).
    pub pending_revocations: usize,
    /// Entries read from Redis and ignored because they did not verify or did not parse.
    pub rejected_entries: u64,
    /// Every replica that checked in recently, this one included, sorted by id.
    pub replicas: Vec<ReplicaStatus>,
    /// How old the list of replicas is (the time since it was last read from Redis).
    #[serde(rename = "replicas_age_ms", serialize_with = "millis_opt")]
    pub replicas_age: Option<Duration>,
}

/// One replica as it last checked in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// The replica's id.
    pub replica_id: String,
    /// The version hash of the policy it decides under.
    pub policy_version: String,
    /// The time since it last checked in, as of when the list was read.
    #[serde(rename = "checked_in_ms_ago", serialize_with = "millis")]
    pub checked_in_ago: Duration,
    /// How old its revocation view was when it checked in (`None`: not caught up yet).
    #[serde(rename = "view_age_ms", serialize_with = "millis_opt")]
    pub view_age: Option<Duration>,
}

impl FleetStatus {
    /// The status of a governor that shares nothing.
    pub(crate) fn standalone(policy_version: String) -> Self {
        Self {
            mode: FleetMode::Standalone,
            replica_id: "standalone".into(),
            policy_version: policy_version.clone(),
            connected: false,
            view_age: None,
            strict_bound: None,
            fleet_policy_version: None,
            fleet_policy_rejected: None,
            pending_revocations: 0,
            rejected_entries: 0,
            replicas: vec![ReplicaStatus {
                replica_id: "standalone".into(),
                policy_version,
                checked_in_ago: Duration::ZERO,
                view_age: None,
            }],
            replicas_age: None,
        }
    }

    /// Whether every live replica decides under the same policy version.
    pub fn policy_converged(&self) -> bool {
        self.replicas
            .iter()
            .all(|r| r.policy_version == self.policy_version)
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}
