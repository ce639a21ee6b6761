//! The `decide` span: one `tracing` span per authorization call, carrying the fields of
//! its audit event (never the token), so that a `tracing` subscriber (an OpenTelemetry
//! bridge among them) sees each decision as a span in the request's trace.

use super::AuditEvent;
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

/// Records `event`'s fields on the current span when it is a `decide` span.
pub(crate) fn record_decided(event: &AuditEvent) {
    let span = tracing::Span::current();
    let ours = span
        .metadata()
        .is_some_and(|m| m.name() == DECIDE_SPAN && m.target() == DECIDE_SPAN_TARGET);
    if !ours {
        return;
    }
    span.record("outcome", event.outcome.as_str());
    span.record("reason", event.reason.as_str());
    span.record("latency_us", event.latency_us);
    if let Some(v) = &event.policy_version {
        span.record("policy_version", v.as_str());
    }
    if let Some(t) = &event.tenant_id {
        span.record("entra.tenant_id", t.as_str());
    }
    if let Some(o) = &event.object_id {
        span.record("enduser.id", o.as_str());
    }
    if let Some(u) = &event.token_id {
        span.record("entra.token_id", u.as_str());
    }
}
