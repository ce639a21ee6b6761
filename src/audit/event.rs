//! [`AuditEvent`]: the record of one authorization decision.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::TokenError;
use crate::ids::{ObjectId, TenantId};
use crate::principal::{Principal, PrincipalKind};

use super::inputs::DecisionInputs;

/// The action of an event recorded before any authorization question was asked: a
/// request refused for its `Authorization` header or its token by an adapter's
/// authenticate step, and the [`Dropped`](AuditOutcome::Dropped) summaries of such
/// refusals.
pub const AUTHENTICATE_ACTION: &str = "authenticate";

/// How an authorization call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditOutcome {
    /// The request was allowed.
    Allow,
    /// The request was refused by the policy.
    Deny,
    /// The request needs a stronger authentication first (a claims challenge).
    StepUp,
    /// The bearer token was not accepted; no principal was established.
    InvalidToken,
    /// The request was refused because a dependency was unavailable: signing keys,
    /// Microsoft Graph, or (in strict mode) the audit trail itself.
    Unavailable,
    /// Not a request: a summary written by the audit log itself, saying that
    /// [`dropped_events`](AuditEvent::dropped_events) refusals before authentication were
    /// not recorded because their queue was full (see [the module docs](super)).
    Dropped,
}

impl AuditOutcome {
    /// The stable snake_case code written to the audit trail (`"step_up"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::StepUp => "step_up",
            Self::InvalidToken => "invalid_token",
            Self::Unavailable => "unavailable",
            Self::Dropped => "dropped",
        }
    }
}

impl AuditOutcome {
    /// The outcome that records `decision`: an allow, a step-up, membership
    /// unavailable, or a deny.
    pub fn of(decision: &crate::decision::Decision) -> Self {
        use crate::decision::Reason;
        match decision.reason {
            Reason::Allow => Self::Allow,
            Reason::GroupMembershipUnavailable => Self::Unavailable,
            Reason::StepUpRequired { .. } => Self::StepUp,
            _ => Self::Deny,
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record of one authorization decision, as written by every [`AuditSink`].
///
/// The field names are the JSON Lines schema documented in [the module docs](super); see
/// the table there for each field's type and meaning. No field can hold a bearer token,
/// a signature or a secret: identities are ids, and the token appears only as its `uti`.
///
/// Build one with [`AuditEvent::new`] or [`AuditEvent::from_principal`] and the `with_*`
/// setters; the struct is `#[non_exhaustive]` so that fields can be added without a
/// breaking change (readers must ignore fields they do not know).
///
/// [`AuditSink`]: super::AuditSink
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// Version of this schema; [`AuditEvent::SCHEMA_VERSION`] for events built by this crate.
    pub schema_version: u32,
    /// When the decision was made: RFC 3339, UTC, millisecond precision
    /// (`2026-11-23T22:15:01.123Z`).
    pub time: String,
    /// How the call ended.
    pub outcome: AuditOutcome,
    /// Stable snake_case reason code (`no_role_grants`, `expired`, …).
    pub reason: String,
    /// One line of human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The caller's tenant (`tid`); absent when no token was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// The caller's object id in that tenant (`oid`); absent when no token was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<ObjectId>,
    /// `user` or `application`; absent when no token was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_kind: Option<PrincipalKind>,
    /// Whether the caller is a guest (B2B) account; absent when no token was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<bool>,
    /// The calling client application (`azp` / `appid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_app_id: Option<String>,
    /// The caller's display name; only when the operator opted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The action requested (`Training.Submit`, `Inference.Invoke`, …).
    pub action: String,
    /// The resource it was requested on (`models/exp-1`, …).
    pub resource: String,
    /// The policy roles the decision was evaluated with.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The grant that allowed the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The rule that refused the request (a deny rule, a separation-of-duty rule, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    /// When a claim-value binding with a `tenants` qualifier allowed the request: the
    /// qualifying tenant whose administrators assigned the app role, app permission or
    /// directory role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_tenant: Option<TenantId>,
    /// For a step-up: the claims request the client must satisfy, as Entra reads it
    /// (`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`); the requirement
    /// that asked for it is in `denied_by`. Never an HTTP header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_request: Option<String>,
    /// The token's unique id (`uti`): joins to Entra's sign-in logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The request or correlation id the caller supplied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Version (hash) of the policy that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// How long the decision took, in microseconds.
    #[serde(default)]
    pub latency_us: u64,
    /// Only in a [`Dropped`](AuditOutcome::Dropped) summary: how many events it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_events: Option<u64>,
    /// Schema v2: the labels of the bindings that conferred the roles of an allow
    /// (`group:<id>`, a binding's `name`, …), in policy order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<String>,
    /// Schema v2: every token fact the decision read besides the caller's ids, so that it
    /// can be decided again (replay, shadow policies, access reviews). Absent from events
    /// without a verified caller, and from v1 events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<DecisionInputs>,
    /// Schema v2: when a shadow policy is set and decided differently, what it decided.
    /// Never enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowOutcome>,
    /// Not written: the instance of the governor whose shadow policy decides this event
    /// again (a governor sharing the audit log without a shadow leaves it `None`).
    #[serde(skip)]
    pub(crate) shadow_of: Option<u64>,
    /// Not written to JSON Lines: the caller's W3C trace context, when the request
    /// carried a valid `traceparent`; the OTLP sink (feature `otel`) links records to it.
    #[serde(skip)]
    pub(crate) trace_parent: Option<super::TraceParent>,
}

/// What a shadow (candidate) policy decided for an event, when it differs from the
/// enforced decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShadowOutcome {
    /// The shadow policy's version (hash).
    pub policy_version: String,
    /// What the shadow policy would have done.
    pub outcome: AuditOutcome,
    /// Its reason code.
    pub reason: String,
    /// The grant that would have allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The rule that would have refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    /// The shadow could not know all of the caller's group membership (a membership
    /// resolved for the live policy's groups only): decided with the groups known.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inexact: bool,
}

impl AuditEvent {
    /// The schema version written by this crate.
    /// Version 2 adds `inputs`, `bindings` and `shadow`; version 1 events read as events
    /// without them.
    pub const SCHEMA_VERSION: u32 = 2;

    /// Starts an event for `action` on `resource`, timestamped now. The reason code
    /// defaults to the outcome's own code until [`with_reason`](Self::with_reason) sets it.
    pub fn new(
        outcome: AuditOutcome,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self::at(SystemTime::now(), outcome, action.into(), resource.into())
    }

    /// [`new`](Self::new), timestamped `time`.
    pub(crate) fn at(
        time: SystemTime,
        outcome: AuditOutcome,
        action: String,
        resource: String,
    ) -> Self {
        Self {
            schema_version: Self::SCHEMA_VERSION,
            time: rfc3339_millis(time),
            outcome,
            reason: outcome.as_str().to_owned(),
            explanation: None,
            tenant_id: None,
            object_id: None,
            principal_kind: None,
            guest: None,
            client_app_id: None,
            display_name: None,
            action,
            resource,
            roles: Vec::new(),
            grant: None,
            denied_by: None,
            trusted_tenant: None,
            claims_request: None,
            token_id: None,
            correlation_id: None,
            policy_version: None,
            latency_us: 0,
            dropped_events: None,
            bindings: Vec::new(),
            inputs: None,
            shadow: None,
            shadow_of: None,
            trace_parent: None,
        }
    }

    /// The record of a rejected token for `action` on `resource`: outcome
    /// [`Unavailable`](AuditOutcome::Unavailable) when signing keys could not be obtained,
    /// [`InvalidToken`](AuditOutcome::InvalidToken) otherwise, with the error's code and
    /// text (which never hold the token).
    pub(crate) fn for_token_error(
        error: &TokenError,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        let outcome = match error {
            TokenError::KeysUnavailable { .. } | TokenError::RevocationViewStale { .. } => {
                AuditOutcome::Unavailable
            }
            _ => AuditOutcome::InvalidToken,
        };
        Self::new(outcome, action, resource)
            .with_reason(error.code())
            .with_explanation(error.to_string())
    }

    /// Starts an event for a verified caller: [`new`](Self::new) plus
    /// [`with_principal`](Self::with_principal).
    pub fn from_principal(
        principal: &Principal,
        outcome: AuditOutcome,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self::new(outcome, action, resource).with_principal(principal)
    }

    /// Copies the caller's immutable facts: `tid`, `oid`, kind, guest flag, client app and
    /// token id (`uti`). Display claims are not copied; see
    /// [`with_display_name_of`](Self::with_display_name_of).
    pub fn with_principal(mut self, principal: &Principal) -> Self {
        self.tenant_id = Some(principal.tenant().clone());
        self.object_id = Some(principal.object_id().clone());
        self.principal_kind = Some(principal.kind());
        self.guest = Some(principal.is_guest());
        self.client_app_id = principal.client_app_id().map(str::to_owned);
        self.token_id = principal.token_id().map(str::to_owned);
        self
    }

    /// Sets the timestamp (by default, when the event was created).
    pub fn with_time(mut self, time: SystemTime) -> Self {
        self.time = rfc3339_millis(time);
        self
    }

    /// Sets the stable snake_case reason code.
    pub fn with_reason(mut self, code: impl Into<String>) -> Self {
        self.reason = code.into();
        self
    }

    /// Sets the one-line human-readable explanation.
    pub fn with_explanation(mut self, text: impl Into<String>) -> Self {
        self.explanation = Some(text.into());
        self
    }

    /// Sets the calling client application id.
    pub fn with_client_app_id(mut self, app_id: impl Into<String>) -> Self {
        self.client_app_id = Some(app_id.into());
        self
    }

    /// Sets the caller's display name. Call only when the operator opted in: names are
    /// personal data, mutable, and never used for decisions.
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the display name from the principal's display claims (`name`, else
    /// `preferred_username`, else `upn`, else `unique_name`; never `email`). Call only
    /// when the operator opted in.
    pub fn with_display_name_of(mut self, principal: &Principal) -> Self {
        let d = principal.display();
        self.display_name = [&d.name, &d.preferred_username, &d.upn, &d.unique_name]
            .into_iter()
            .find_map(|c| c.clone());
        self
    }

    /// Sets the policy roles the decision was evaluated with.
    pub fn with_roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the grant that allowed the request.
    pub fn with_grant(mut self, grant: impl Into<String>) -> Self {
        self.grant = Some(grant.into());
        self
    }

    /// Sets the rule that refused the request.
    pub fn with_denied_by(mut self, rule: impl Into<String>) -> Self {
        self.denied_by = Some(rule.into());
        self
    }

    /// Sets the tenant qualifier of the claim-value binding that allowed the request.
    pub fn with_trusted_tenant(mut self, tenant: TenantId) -> Self {
        self.trusted_tenant = Some(tenant);
        self
    }

    /// Sets the claims request of a step-up.
    pub fn with_claims_request(mut self, claims: impl Into<String>) -> Self {
        self.claims_request = Some(claims.into());
        self
    }

    /// Sets the token id (`uti`).
    pub fn with_token_id(mut self, uti: impl Into<String>) -> Self {
        self.token_id = Some(uti.into());
        self
    }

    /// Sets the request or correlation id supplied by the caller.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the version (hash) of the policy that decided.
    pub fn with_policy_version(mut self, version: impl Into<String>) -> Self {
        self.policy_version = Some(version.into());
        self
    }

    /// Sets the labels of the bindings behind an allow (schema v2).
    pub fn with_bindings<I: IntoIterator<Item = S>, S: Into<String>>(mut self, b: I) -> Self {
        self.bindings = b.into_iter().map(Into::into).collect();
        self
    }

    /// Sets what the decision read (schema v2).
    pub fn with_inputs(mut self, inputs: DecisionInputs) -> Self {
        self.inputs = Some(inputs);
        self
    }

    /// Whether this event records a policy decision about a verified caller (allow,
    /// deny, step-up, or membership unavailable), rather than a refused token, a
    /// revoked caller or a summary: the events replay and reviews read.
    pub fn is_decision(&self) -> bool {
        self.inputs.is_some() && self.reason != super::AUDIT_UNAVAILABLE_REASON
    }

    /// Sets the caller's W3C trace context (not part of the JSON Lines schema): exported
    /// records join that trace.
    pub fn with_trace_parent(mut self, trace_parent: super::TraceParent) -> Self {
        self.trace_parent = Some(trace_parent);
        self
    }

    /// The caller's W3C trace context, when the request carried one.
    pub fn trace_parent(&self) -> Option<&super::TraceParent> {
        self.trace_parent.as_ref()
    }

    /// Sets the decision latency (stored in whole microseconds, saturating).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency_us = whole_micros(latency);
        self
    }
}

/// `duration` in whole microseconds, saturating.
pub(crate) fn whole_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Formats `time` as RFC 3339 UTC with millisecond precision (`1970-01-01T00:00:00.000Z`).
///
/// Times before 1970 are written as the epoch and times after 9999 as the last
/// millisecond of 9999, so the result always has the fixed 24-character shape.
pub(crate) fn rfc3339_millis(time: SystemTime) -> String {
    const MAX_MILLIS: u128 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .min(MAX_MILLIS) as u64;
    let (secs, ms) = (millis / 1000, millis % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    // Written digit by digit: `format!` with seven padded fields cost more than the rest
    // of building an audit event.
    let mut out = String::with_capacity(24);
    let mut digits = |value: u64, width: u32, then: char| {
        for place in (0..width).rev() {
            let digit = (value / 10u64.pow(place)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        out.push(then);
    };
    digits(year, 4, '-');
    digits(month, 2, '-');
    digits(day, 2, 'T');
    digits(rem / 3600, 2, ':');
    digits(rem % 3600 / 60, 2, ':');
    digits(rem % 60, 2, '.');
    digits(ms, 3, 'Z');
    out
}

/// Parses a UTC RFC 3339 time as the trail writes it (`2026-11-23T22:15:01.123Z`; the
/// fraction is optional and read to the millisecond, `z` and `+00:00` are accepted).
/// `None` for anything else, or a time before 1970.
pub(crate) fn parse_rfc3339_millis(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    let shape = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if shape
        .iter()
        .any(|&(i, c)| b.get(i).map(u8::to_ascii_uppercase) != Some(c))
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..len.min(3)]);
        millis = padded.parse::<u64>().ok()?;
        rest = &fraction[len..];
    }
    if !matches!(rest, "Z" | "z" | "+00:00") {
        return None;
    }
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date from 1970 on (the inverse of
/// [`civil_from_days`]).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm,
/// restricted to non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> String {
        rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis))
    }

    #[test]
    fn trail_times_parse_back_to_the_millisecond() {
        for millis in [
            0,
            1,
            999,
            86_399_999,
            951_782_400_000,
            1_764_700_000_123,
            253_402_300_799_999,
        ] {
            let text = at(millis);
            let parsed = parse_rfc3339_millis(&text).expect(&text);
            assert_eq!(parsed, UNIX_EPOCH + Duration::from_millis(millis), "{text}");
        }
        let t = |s: &str| parse_rfc3339_millis(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        assert_eq!(
            t("2026-12-01T10:00:00Z"),
            Some(Duration::from_secs(1_796_119_200))
        );
        assert_eq!(
            t("2026-12-01T10:00:00.5+00:00"),
            Some(Duration::from_millis(1_796_119_200_500))
        );
        for bad in [
            "",
            "2026-12-01",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:00:00+01:00",
            "2026-12-01T10:00:00.Z",
            "1969-12-31T23:59:59Z",
            "2026-12-01 10:00:00Z",
            "２026-12-01T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(at(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(at(1_795_558_501_123), "2026-11-24T22:15:01.123Z");
        assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(at(u64::MAX / 2), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_millis(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Against a naive day-by-day walk of the Gregorian calendar.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn outcome_codes_match_serde() {
        for o in [
            AuditOutcome::Allow,
            AuditOutcome::Deny,
            AuditOutcome::StepUp,
            AuditOutcome::InvalidToken,
            AuditOutcome::Unavailable,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
            assert_eq!(o.to_string(), o.as_str());
        }
    }

    #[test]
    fn display_name_prefers_name_and_never_uses_email() {
        let mut p = Principal::builder(
            "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap(),
            "0f5e3b8a-8c1d-4c53-9a6b-2d6c6c0c9e11".parse().unwrap(),
        )
        .build();
        let name_of = |p: &Principal| {
            AuditEvent::new(AuditOutcome::Allow, "a", "r")
                .with_display_name_of(p)
                .display_name
        };
        p.display.email = Some("ada@example.com".into());
        assert_eq!(name_of(&p), None);
        p.display.unique_name = Some("unique".into());
        assert_eq!(name_of(&p).as_deref(), Some("unique"));
        p.display.upn = Some("ada@contoso.com".into());
        assert_eq!(name_of(&p).as_deref(), Some("ada@contoso.com"));
        p.display.preferred_username = Some("ada@contoso.onmicrosoft.com".into());
        assert_eq!(name_of(&p).as_deref(), Some("ada@contoso.onmicrosoft.com"));
        p.display.name = Some("Ada Lovelace".into());
        assert_eq!(name_of(&p).as_deref(), Some("Ada Lovelace"));
    }

    #[test]
    fn latency_saturates() {
        let e = AuditEvent::new(AuditOutcome::Allow, "a", "r").with_latency(Duration::MAX);
        assert_eq!(e.latency_us, u64::MAX);
        let e = e.with_latency(Duration::from_nanos(1_999));
        assert_eq!(e.latency_us, 1);
    }
}
