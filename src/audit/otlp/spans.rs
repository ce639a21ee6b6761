//! Decision spans: each decision of a batch as an OpenTelemetry span in the caller's
//! trace (`POST /v1/traces`), beside its log record.
//!
//! A span's identity is derived from its event (SHA-256 of the event's JSON and its place
//! in the batch), not drawn at random: the pipeline retries the *same* batch, so a retried
//! export carries the same span ids and a backend that stored the first attempt sees
//! duplicates it can recognise, never two different spans for one decision.

use aws_lc_rs::digest::{SHA256, digest};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span::SpanKind, status::StatusCode};

use super::mapping::{attributes, unix_nanos};
use crate::audit::event::{AuditEvent, AuditOutcome, parse_rfc3339_millis};

/// The name of every exported decision span.
pub const SPAN_NAME: &str = "entra_governor.decide";

/// Which decisions [`OtlpLogSink`](super::OtlpLogSink) also exports as spans, following
/// OpenTelemetry's parent-based sampling: a decision whose request carried a
/// `traceparent` is exported only when that caller sampled its trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecisionSpans {
    /// No spans: log records only (the default).
    #[default]
    Off,
    /// A span for each decision whose request carried a sampled `traceparent`, as a child
    /// of the caller's span; decisions of untraced requests get none.
    SampledParents,
    /// As [`SampledParents`](Self::SampledParents), and a root span (a trace of its own)
    /// for each decision of a request without a `traceparent`.
    ParentBased,
}

/// The identity of one decision span: where it sits in which trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanIdentity {
    /// The caller's trace id, or a derived one for a root span.
    pub(crate) trace_id: [u8; 16],
    /// The decision span's own id.
    pub(crate) span_id: [u8; 8],
    /// The caller's span id; `None` for a root span.
    pub(crate) parent_span_id: Option<[u8; 8]>,
    /// The W3C trace flags (sampled).
    pub(crate) flags: u32,
}

/// The identity of the span of `event`, the `index`-th of its batch, under `mode`; `None`
/// when it gets no span (spans off, an unsampled caller, an untraced request under
/// [`DecisionSpans::SampledParents`], a record of dropped events, an unreadable time).
pub(crate) fn identity(
    event: &AuditEvent,
    index: usize,
    mode: DecisionSpans,
) -> Option<SpanIdentity> {
    if mode == DecisionSpans::Off
        || event.outcome == AuditOutcome::Dropped
        || parse_rfc3339_millis(&event.time).is_none()
    {
        return None;
    }
    let parent = match (&event.trace_parent, mode) {
        (Some(tp), _) if !tp.sampled() => return None,
        (Some(tp), _) => Some(tp),
        (None, DecisionSpans::ParentBased) => None,
        (None, _) => return None,
    };
    let mut input = serde_json::to_vec(event).ok()?;
    input.extend_from_slice(&(index as u64).to_le_bytes());
    if let Some(tp) = parent {
        input.extend_from_slice(&tp.trace_id());
        input.extend_from_slice(&tp.parent_id());
    }
    let hash = digest(&SHA256, &input);
    let hash = hash.as_ref();
    let mut span_id: [u8; 8] = hash[..8].try_into().ok()?;
    if span_id == [0; 8] {
        span_id[7] = 1; // an all-zero id is invalid in W3C Trace Context
    }
    Some(match parent {
        Some(tp) => SpanIdentity {
            trace_id: tp.trace_id(),
            span_id,
            parent_span_id: Some(tp.parent_id()),
            flags: u32::from(tp.flags()),
        },
        None => {
            let mut trace_id: [u8; 16] = hash[8..24].try_into().ok()?;
            if trace_id == [0; 16] {
                trace_id[15] = 1;
            }
            SpanIdentity {
                trace_id,
                span_id,
                parent_span_id: None,
                flags: 1,
            }
        }
    })
}

/// The decision span of `event`: it ends when the event was recorded (millisecond
/// precision) and lasted the decision's latency; the attributes are its log record's.
pub(crate) fn span(event: &AuditEvent, id: &SpanIdentity) -> Span {
    let end = parse_rfc3339_millis(&event.time).map_or(0, unix_nanos);
    let start = end.saturating_sub(event.latency_us.saturating_mul(1_000));
    let status = match event.outcome {
        // A refusal is a correct answer, not an error; being unable to decide is one.
        AuditOutcome::Unavailable => Status {
            code: StatusCode::Error as i32,
            message: event.reason.as_str().to_owned(),
        },
        _ => Status::default(),
    };
    let attributes: Vec<KeyValue> = attributes(event);
    Span {
        trace_id: id.trace_id.to_vec(),
        span_id: id.span_id.to_vec(),
        parent_span_id: id.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags: id.flags,
        name: SPAN_NAME.to_owned(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: Some(status),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::audit::TraceParent;

    fn event(trace_parent: Option<&str>) -> AuditEvent {
        let mut e = AuditEvent::new(AuditOutcome::Allow, "inference.invoke", "models/m")
            .with_time(UNIX_EPOCH + Duration::from_millis(1_796_119_200_123))
            .with_latency(Duration::from_micros(42));
        e.trace_parent = trace_parent.map(|t| TraceParent::parse(t.as_bytes()).unwrap());
        e
    }

    const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

    #[test]
    fn sampling_follows_the_parent() {
        use DecisionSpans::*;
        let (traced, unsampled, untraced) =
            (event(Some(SAMPLED)), event(Some(UNSAMPLED)), event(None));
        for mode in [SampledParents, ParentBased] {
            assert!(identity(&traced, 0, mode).is_some(), "{mode:?}");
            assert!(identity(&unsampled, 0, mode).is_none(), "{mode:?}");
        }
        assert!(identity(&untraced, 0, SampledParents).is_none());
        let root = identity(&untraced, 0, ParentBased).unwrap();
        assert_eq!((root.parent_span_id, root.flags), (None, 1));
        assert!(identity(&traced, 0, Off).is_none());
        let mut dropped = event(Some(SAMPLED));
        dropped.outcome = AuditOutcome::Dropped;
        assert!(identity(&dropped, 0, ParentBased).is_none());
    }

    #[test]
    fn a_child_span_sits_under_the_callers_span_with_a_stable_id() {
        let e = event(Some(SAMPLED));
        let id = identity(&e, 3, DecisionSpans::SampledParents).unwrap();
        let tp = e.trace_parent.as_ref().unwrap();
        assert_eq!(id.trace_id, tp.trace_id());
        assert_eq!(id.parent_span_id, Some(tp.parent_id()));
        assert_ne!(id.span_id, tp.parent_id());
        // The same event at the same place: the same id (a retry); elsewhere: another.
        assert_eq!(identity(&e, 3, DecisionSpans::ParentBased), Some(id));
        assert_ne!(
            identity(&e, 4, DecisionSpans::ParentBased).unwrap().span_id,
            id.span_id
        );
        let s = span(&e, &id);
        assert_eq!(s.end_time_unix_nano, 1_796_119_200_123_000_000);
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 42_000);
        assert_eq!(s.name, SPAN_NAME);
        assert_eq!(s.status.unwrap().code, StatusCode::Unset as i32);
    }

    #[test]
    fn only_an_undecidable_request_is_an_error() {
        let mut e = event(None).with_reason("keys_unavailable");
        e.outcome = AuditOutcome::Unavailable;
        let id = identity(&e, 0, DecisionSpans::ParentBased).unwrap();
        let status = span(&e, &id).status.unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "keys_unavailable");
        e.outcome = AuditOutcome::Deny;
        assert_eq!(span(&e, &id).status.unwrap().code, StatusCode::Unset as i32);
    }
}
