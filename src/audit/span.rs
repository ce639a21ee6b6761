//! The `decide` span: one `tracing` span per authorization call, carrying the fields of
//! its audit event (never the token), so that a `tracing` subscriber (an OpenTelemetry
//! bridge among them) sees each decision as a span in the request's trace.

use super::decided::DecidedEvent;
use super::{AuditEvent, AuditOutcome};
use crate::RequestContext;

/// The `tracing` target of the `decide` span.
pub const DECIDE_SPAN_TARGET: &str = "entra_governor::decide";

/// The name of the span [`Governor::authorize_with`](crate::Governor::authorize_with) and
/// [`Governor::authorize_principal`](crate::Governor::authorize_principal) run in.
///
/// Its fields: `action`, `resource`, `correlation_id`, `trace_id` and `parent_span_id`
/// (the request's W3C `traceparent`) when the request had them, and, once the audit
/// event is recorded (only with an audit log), `outcome`, `reason`, `policy_version`,
/// `entra.tenant_id`, `enduser.id` (the caller's object id), `entra.token_id` (`uti`) and
/// `latency_us`. Never a token, a signature or a header.
pub const DECIDE_SPAN: &str = "decide";

/// A new `decide` span for one authorization call.
pub(crate) fn decide_span(action: &str, resource: &str, context: &RequestContext) -> tracing::Span {
    use tracing::field::Empty;
    let span = tracing::info_span!(
        target: DECIDE_SPAN_TARGET,
        DECIDE_SPAN,
        action,
        resource,
        correlation_id = context.correlation_id.as_deref(),
        trace_id = Empty,
        parent_span_id = Empty,
        outcome = Empty,
        reason = Empty,
        policy_version = Empty,
        entra.tenant_id = Empty,
        enduser.id = Empty,
        entra.token_id = Empty,
        latency_us = Empty,
    );
    if let Some(tp) = &context.trace_parent
        && !span.is_disabled()
    {
        span.record("trace_id", tp.trace_id_hex().as_str());
        span.record("parent_span_id", tp.parent_id_hex().as_str());
    }
    span
}

/// The fields of a decision's audit event that the `decide` span carries.
pub(crate) struct DecidedFields<'a> {
    outcome: &'static str,
    reason: &'a str,
    latency_us: u64,
    policy_version: Option<&'a str>,
    tenant_id: Option<&'a str>,
    object_id: Option<&'a str>,
    token_id: Option<&'a str>,
}

impl<'a> DecidedFields<'a> {
    /// The fields of a built event.
    pub(crate) fn of_event(event: &'a AuditEvent) -> Self {
        Self {
            outcome: event.outcome.as_str(),
            reason: &event.reason,
            latency_us: event.latency_us,
            policy_version: event.policy_version.as_deref(),
            tenant_id: event.tenant_id.as_ref().map(|t| t.as_str()),
            object_id: event.object_id.as_ref().map(|o| o.as_str()),
            token_id: event.token_id.as_deref(),
        }
    }

    /// The fields the event of a queued decision will have.
    pub(crate) fn of_decided(decided: &'a DecidedEvent) -> Self {
        let principal = &decided.principal;
        let (outcome, reason) = if decided.refused {
            (AuditOutcome::Unavailable, super::AUDIT_UNAVAILABLE_REASON)
        } else {
            let decision = &decided.decision;
            (AuditOutcome::of(decision), decision.reason.code())
        };
        Self {
            outcome: outcome.as_str(),
            reason,
            latency_us: super::event::whole_micros(decided.latency),
            policy_version: Some(decided.policy.version_hash()),
            tenant_id: Some(principal.tenant().as_str()),
            object_id: Some(principal.object_id().as_str()),
            token_id: principal.token_id(),
        }
    }
}

/// Records a decision's fields (made by `fields`, only when needed) on the current span
/// when it is a `decide` span.
pub(crate) fn record_decided<'a>(fields: impl FnOnce() -> DecidedFields<'a>) {
    let span = tracing::Span::current();
    let ours = span
        .metadata()
        .is_some_and(|m| m.name() == DECIDE_SPAN && m.target() == DECIDE_SPAN_TARGET);
    if !ours {
        return;
    }
    let fields = fields();
    span.record("outcome", fields.outcome);
    span.record("reason", fields.reason);
    span.record("latency_us", fields.latency_us);
    let optional = [
        ("policy_version", fields.policy_version),
        ("entra.tenant_id", fields.tenant_id),
        ("enduser.id", fields.object_id),
        ("entra.token_id", fields.token_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            span.record(name, value);
        }
    }
}
