//! The field mapping of the module docs: an [`AuditEvent`]'s attributes, and its log
//! record.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};

use super::spans::SpanIdentity;
use super::{EVENT_NAME, OTLP_MAPPING_VERSION};
use crate::audit::event::{AuditEvent, AuditOutcome, parse_rfc3339_millis};
use crate::principal::PrincipalKind;

pub(super) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The severity of an outcome: allows are routine, refusals worth a look, and
/// unavailability (or lost refusals) an operational problem.
pub(super) fn severity(outcome: AuditOutcome) -> (SeverityNumber, &'static str) {
    match outcome {
        AuditOutcome::Allow => (SeverityNumber::Info, "INFO"),
        AuditOutcome::Deny | AuditOutcome::StepUp | AuditOutcome::InvalidToken => {
            (SeverityNumber::Warn, "WARN")
        }
        AuditOutcome::Unavailable | AuditOutcome::Dropped => (SeverityNumber::Error, "ERROR"),
    }
}

pub(super) fn kv(key: impl Into<String>, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(super) fn string_kv(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

pub(super) fn int_kv(key: &str, value: u64) -> KeyValue {
    kv(
        key,
        any_value::Value::IntValue(i64::try_from(value).unwrap_or(i64::MAX)),
    )
}

pub(super) fn strings_kv(key: &str, values: &[String]) -> KeyValue {
    let values = values
        .iter()
        .map(|v| AnyValue {
            value: Some(any_value::Value::StringValue(v.clone())),
        })
        .collect();
    kv(key, any_value::Value::ArrayValue(ArrayValue { values }))
}

/// The attributes of `e`, per the mapping in the module docs; shared by its log record
/// and its decision span.
pub(super) fn attributes(e: &AuditEvent) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(24);
    attrs.push(kv(
        "entra_governor.otlp.mapping_version",
        any_value::Value::IntValue(OTLP_MAPPING_VERSION),
    ));
    attrs.push(int_kv(
        "entra_governor.audit.schema_version",
        u64::from(e.schema_version),
    ));
    attrs.push(string_kv("entra_governor.outcome", e.outcome.as_str()));
    attrs.push(string_kv("entra_governor.reason", e.reason.as_str()));
    attrs.push(string_kv("entra_governor.action", e.action.as_str()));
    attrs.push(string_kv("entra_governor.resource", e.resource.as_str()));
    attrs.push(strings_kv("entra_governor.roles", &e.roles));
    let mut opt = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            attrs.push(string_kv(key, v));
        }
    };
    opt("entra.tenant_id", e.tenant_id.as_ref().map(|t| t.as_str()));
    opt("enduser.id", e.object_id.as_ref().map(|o| o.as_str()));
    opt(
        "entra_governor.principal_kind",
        e.principal_kind.map(|k| match k {
            PrincipalKind::User => "user",
            PrincipalKind::Application => "application",
        }),
    );
    opt("entra.client_app_id", e.client_app_id.as_deref());
    opt("entra_governor.display_name", e.display_name.as_deref());
    opt("entra_governor.grant", e.grant.as_deref());
    opt("entra_governor.denied_by", e.denied_by.as_deref());
    opt(
        "entra_governor.trusted_tenant",
        e.trusted_tenant.as_ref().map(|t| t.as_str()),
    );
    opt("entra_governor.claims_request", e.claims_request.as_deref());
    opt("entra.token_id", e.token_id.as_deref());
    opt("correlation_id", e.correlation_id.as_deref());
    opt("entra_governor.policy_version", e.policy_version.as_deref());
    if let Some(guest) = e.guest {
        attrs.push(kv(
            "entra_governor.guest",
            any_value::Value::BoolValue(guest),
        ));
    }
    attrs.push(int_kv("entra_governor.latency_us", e.latency_us));
    if let Some(n) = e.dropped_events {
        attrs.push(int_kv("entra_governor.dropped_events", n));
    }
    if !e.bindings.is_empty() {
        attrs.push(strings_kv("entra_governor.bindings", &e.bindings));
    }
    if let Some(inputs) = &e.inputs
        && let Ok(value) = serde_json::to_value(inputs)
    {
        flatten("entra_governor.inputs", &value, &mut attrs);
    }
    if let Some(shadow) = &e.shadow
        && let Ok(value) = serde_json::to_value(shadow)
    {
        flatten("entra_governor.shadow", &value, &mut attrs);
    }
    attrs
}

/// One record of `e`, per the mapping in the module docs; `span` is its decision span
/// when one is exported.
pub(super) fn log_record(e: &AuditEvent, observed: u64, span: Option<&SpanIdentity>) -> LogRecord {
    let (number, text) = severity(e.outcome);
    let body = e.explanation.as_deref().unwrap_or(&e.action);
    // With its decision span exported, the record belongs to that span; otherwise to
    // the caller's span, when the request carried one.
    let (trace_id, span_id, flags) = match (span, &e.trace_parent) {
        (Some(span), _) => (span.trace_id.to_vec(), span.span_id.to_vec(), span.flags),
        (None, Some(tp)) => (
            tp.trace_id().to_vec(),
            tp.parent_id().to_vec(),
            u32::from(tp.flags()),
        ),
        (None, None) => (Vec::new(), Vec::new(), 0),
    };
    LogRecord {
        time_unix_nano: parse_rfc3339_millis(&e.time).map_or(0, unix_nanos),
        observed_time_unix_nano: observed,
        severity_number: number as i32,
        severity_text: text.to_owned(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_owned())),
        }),
        attributes: attributes(e),
        event_name: EVENT_NAME.to_owned(),
        trace_id,
        span_id,
        flags,
        ..Default::default()
    }
}

/// Adds `value` as attributes under `prefix`: objects flattened with `.`, scalars and
/// arrays as values, nulls left out.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<KeyValue>) {
    if let serde_json::Value::Object(members) = value {
        for (name, member) in members {
            flatten(&format!("{prefix}.{name}"), member, out);
        }
    } else if let Some(v) = any_value(value) {
        out.push(kv(prefix, v));
    }
}

fn any_value(value: &serde_json::Value) -> Option<any_value::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => any_value::Value::BoolValue(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64()?),
        },
        J::String(s) => any_value::Value::StringValue(s.clone()),
        J::Array(items) => any_value::Value::ArrayValue(ArrayValue {
            values: items
                .iter()
                .filter_map(any_value)
                .map(|v| AnyValue { value: Some(v) })
                .collect(),
        }),
        J::Object(members) => {
            any_value::Value::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
                values: members
                    .iter()
                    .filter_map(|(k, v)| Some(kv(k.as_str(), any_value(v)?)))
                    .collect(),
            })
        }
    })
}
