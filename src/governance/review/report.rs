//! The access review's findings, as data: the `entra-governor review --format json`
//! document ([`REVIEW_FORMAT`]), which the text, CSV and HTML renderings show.

use serde::Serialize;

use crate::governance::replay::ReplayTotals;

/// The version of the [`ReviewReport`] JSON document (`format`).
pub const REVIEW_FORMAT: &str = "entra-governor.review/1";

/// An access review of one policy over one window of its audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReviewReport {
    /// [`REVIEW_FORMAT`].
    pub format: &'static str,
    /// The reviewed policy's version (hash).
    pub policy_version: String,
    /// The window read: RFC 3339 bounds, absent when open.
    pub window: ReviewWindow,
    /// What was read.
    pub totals: ReviewTotals,
    /// Roles, grants and bindings no allow in the window used.
    pub unused: Unused,
    /// Every grant that allowed something: how often, by how many callers, on what.
    pub grants: Vec<GrantUsage>,
    /// Used grants whose patterns are wider than the resources reached.
    pub wide_grants: Vec<WideGrant>,
    /// Per caller: the roles held and when each was last used.
    pub callers: Vec<CallerEvidence>,
    /// Decisions per day (UTC), for the usage chart.
    pub daily: Vec<DailyUsage>,
    /// A narrower policy that keeps every allow of the window.
    pub suggestion: Suggestion,
}

/// The window of the trail a review read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReviewWindow {
    /// The first instant included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The first instant excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The first decision read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event: Option<String>,
    /// The last decision read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

/// Counts of what a review read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReviewTotals {
    /// Policy decisions in the window.
    pub decisions: u64,
    /// Of those, allows.
    pub allows: u64,
    /// Of those, refusals (deny, step-up, unavailable).
    pub refusals: u64,
    /// Distinct callers (`tid/oid`).
    pub callers: u64,
    /// Decisions decided under another policy version than the reviewed one.
    pub other_policy_versions: u64,
    /// Decisions without v2 inputs (v1 events): their callers' held roles are unknown.
    pub without_inputs: u64,
    /// Allows decided under another policy version that the reviewed policy would not
    /// give, or cannot decide again (v1): credited to no grant, role or binding.
    pub uncredited_allows: u64,
    /// Lines that are not audit events.
    pub unreadable_lines: u64,
    /// Events outside the window or not decisions.
    pub skipped: u64,
}

/// What no allow in the window used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Unused {
    /// Roles: neither conferred on an allow nor the home of a grant that allowed.
    pub roles: Vec<String>,
    /// Grants (`<role>#<i>`) that allowed nothing.
    pub grants: Vec<UnusedGrant>,
    /// Bindings (labels) that conferred no role of an allow.
    pub bindings: Vec<String>,
}

/// A grant that allowed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UnusedGrant {
    /// `<role>#<i>`.
    pub grant: String,
    /// Its actions.
    pub actions: Vec<String>,
    /// Its resource patterns.
    pub resources: Vec<String>,
}

/// How a grant was used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GrantUsage {
    /// `<role>#<i>`.
    pub grant: String,
    /// Allows it decided.
    pub uses: u64,
    /// Distinct callers it allowed.
    pub callers: u64,
    /// The last allow.
    pub last_used: String,
    /// Distinct resources reached (a lower bound when `reached_truncated`).
    pub resources_reached: u64,
    /// More distinct resources than a review keeps were reached: no narrowing is
    /// suggested for this grant.
    pub reached_truncated: bool,
    /// The first resources reached, sorted (at most 20).
    pub reached_sample: Vec<String>,
}

/// A used grant whose resource patterns are wider than what was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WideGrant {
    /// `<role>#<i>`.
    pub grant: String,
    /// Its patterns.
    pub patterns: Vec<String>,
    /// The narrower patterns that cover every resource reached.
    pub suggested: Vec<String>,
    /// Distinct resources reached.
    pub resources_reached: u64,
    /// The first resources reached, sorted (at most 20).
    pub reached_sample: Vec<String>,
}

/// One caller's evidence for an access reviewer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CallerEvidence {
    /// The caller's tenant (`tid`).
    pub tenant_id: String,
    /// The caller's object id (`oid`).
    pub object_id: String,
    /// `user` or `application`.
    pub kind: String,
    /// Whether a guest (B2B) account.
    pub guest: bool,
    /// The first decision about the caller in the window.
    pub first_seen: String,
    /// The last.
    pub last_seen: String,
    /// Decisions about the caller.
    pub decisions: u64,
    /// Of those, allows.
    pub allows: u64,
    /// Of those, refusals.
    pub refusals: u64,
    /// Whether `roles` lists every role held: the last decision had v2 inputs that
    /// recorded every group the reviewed policy reads (all groups, or those of the
    /// reviewed policy itself) with membership known. Otherwise roles held through
    /// groups the trail did not record may be missing.
    pub roles_complete: bool,
    /// The roles held under the reviewed policy (as of the caller's last decision), and
    /// roles used in the window.
    pub roles: Vec<HeldRole>,
}

/// A role a caller holds, with its use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HeldRole {
    /// The role.
    pub role: String,
    /// The bindings that confer it.
    pub bindings: Vec<String>,
    /// Held roles that include it (it is held through them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_by: Vec<String>,
    /// Allows it took part in.
    pub uses: u64,
    /// The last of them; absent when never used in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

/// Decisions on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DailyUsage {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Allows.
    pub allows: u64,
    /// Refusals.
    pub refusals: u64,
}

/// The suggested narrower policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Suggestion {
    /// What it changes, one line each (`remove grant data-reader#1`, `narrow …`).
    pub changes: Vec<String>,
    /// The suggested policy, as TOML.
    pub policy_toml: String,
    /// A unified diff from the reviewed policy (both as normalised TOML) to it.
    pub diff: String,
    /// Whether it loads (`entra-governor lint` passes).
    pub loads: bool,
    /// Why it does not load, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
    /// Its lint warnings.
    pub lint_warnings: Vec<String>,
    /// It replayed over the same window: `allow_to_deny` is 0 when every allow is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayTotals>,
}
