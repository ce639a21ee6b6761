//! [`OtlpLogSink`]: the audit trail exported as OpenTelemetry log records over OTLP/HTTP
//! (protobuf, `POST /v1/logs`), to an OpenTelemetry Collector or any OTLP backend.
//!
//! ```no_run
//! use entra_governor::audit::AuditLog;
//! use entra_governor::audit::otlp::OtlpLogSink;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = OtlpLogSink::builder("https://otel-collector.internal:4318")
//!     .service_name("ml-platform-gateway")
//!     .header("x-api-key", std::env::var("OTLP_API_KEY")?) // never shown by `Debug`
//!     .build()?;
//! let log = AuditLog::builder(sink).build(); // lossless by default (`OnFull::Wait`)
//! // … Governor::builder().audit(log.clone()) …
//! log.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Delivery: as lossless as the other sinks
//!
//! Each batch the [`AuditLog`](super::AuditLog) worker hands over becomes one
//! `ExportLogsServiceRequest`, POSTed once. [`write`](AuditSink::write) returns `Ok` only
//! when the endpoint answered `2xx`; any other status, a timeout or a connection error is
//! an [`AuditSinkError`], so the pipeline keeps the batch and retries the *same* events
//! with backoff, marks the trail unhealthy meanwhile, and (in strict mode) refuses
//! requests. Delivery is at least once: a collector that stored a batch but whose answer
//! was lost sees it again. Error texts carry the status code or the kind of transport
//! failure only: no URL, header, response body or event content.
//!
//! A `2xx` answer with an OTLP *partial success* (`rejected_log_records > 0`) means the
//! receiver refused those records for good; the OTLP specification forbids retrying
//! them, so the sink counts them in [`OtlpLogSink::rejected_records`] and reports them
//! with `tracing::warn!` on [`AUDIT_HEALTH_TARGET`](super::AUDIT_HEALTH_TARGET) (counts and
//! the receiver's message length, never its text).
//!
//! # Security
//!
//! The endpoint must be `https`, except for a loopback host (`localhost`, `127.0.0.0/8`,
//! `::1`) or through [`dangerous_allow_plain_http`](OtlpLogSinkBuilder::dangerous_allow_plain_http);
//! it may not carry credentials, a query or a fragment. Extra headers (an API key, an
//! `authorization` header) are marked sensitive and never appear in `Debug` output or in
//! errors. No [`AuditEvent`] field holds a bearer token, a signature or a secret, and this
//! module adds nothing besides the event's own fields.
//!
//! # Field mapping (version 1, [`OTLP_MAPPING_VERSION`])
//!
//! One log record per event. Every record carries `entra_governor.otlp.mapping_version`
//! (this mapping's version, bumped whenever a name or type changes; new attributes may be
//! added within a version) and `entra_governor.audit.schema_version` (the event's JSON
//! Lines schema version, see [the audit module](super)). Optional event fields absent from
//! the event are absent from the record.
//!
//! | log record field / attribute | type | from the event |
//! |---|---|---|
//! | `time_unix_nano` | fixed64 | `time` (millisecond precision; 0 if the event's time does not parse) |
//! | `observed_time_unix_nano` | fixed64 | when the sink exported the record |
//! | `severity_number` / `severity_text` | enum / string | `allow` → 9 `INFO`; `deny`, `step_up`, `invalid_token` → 13 `WARN`; `unavailable`, `dropped` → 17 `ERROR` |
//! | `body` | string | `explanation`, else `action` |
//! | `trace_id` / `span_id` / `flags` | bytes / bytes / fixed32 | the request's W3C `traceparent` (trace id, the caller's span id, trace flags), when it carried a valid one ([`RequestContext::trace_parent`](crate::RequestContext::trace_parent)); empty otherwise. When the event's decision span is exported ([decision spans](#decision-spans)), that span's trace id, span id and flags instead |
//! | `event_name` | string | `entra_governor.audit.decision` |
//! | `entra_governor.otlp.mapping_version` | int | [`OTLP_MAPPING_VERSION`] |
//! | `entra_governor.audit.schema_version` | int | `schema_version` |
//! | `entra_governor.outcome` | string | `outcome` |
//! | `entra_governor.reason` | string | `reason` |
//! | `entra_governor.action` | string | `action` |
//! | `entra_governor.resource` | string | `resource` |
//! | `entra_governor.roles` | string array | `roles` (may be empty) |
//! | `entra.tenant_id` | string | `tenant_id` (`tid`) |
//! | `enduser.id` | string | `object_id` (`oid`): the caller's stable id in its tenant |
//! | `entra_governor.principal_kind` | string | `principal_kind` (`user`, `application`) |
//! | `entra_governor.guest` | bool | `guest` |
//! | `entra.client_app_id` | string | `client_app_id` (`azp` / `appid`) |
//! | `entra_governor.display_name` | string | `display_name` (operator opt-in) |
//! | `entra_governor.grant` | string | `grant` |
//! | `entra_governor.denied_by` | string | `denied_by` |
//! | `entra_governor.trusted_tenant` | string | `trusted_tenant` |
//! | `entra_governor.claims_request` | string | `claims_request` |
//! | `entra.token_id` | string | `token_id` (`uti`, joins to Entra sign-in logs) |
//! | `correlation_id` | string | `correlation_id` |
//! | `entra_governor.policy_version` | string | `policy_version` |
//! | `entra_governor.latency_us` | int | `latency_us` |
//! | `entra_governor.dropped_events` | int | `dropped_events` |
//! | `entra_governor.bindings` | string array | `bindings` (absent when empty) |
//! | `entra_governor.inputs.<path>` | by JSON type | each member of `inputs`, flattened with `.` (`entra_governor.inputs.scopes`, `entra_governor.inputs.groups.claim`, …) |
//! | `entra_governor.shadow.<member>` | by JSON type | each member of `shadow` (`entra_governor.shadow.outcome`, …) |
//!
//! Flattened members keep their JSON names and types: strings, booleans and integers as
//! such, arrays as arrays. The resource carries `service.name` (default
//! [`DEFAULT_SERVICE_NAME`], set with
//! [`service_name`](OtlpLogSinkBuilder::service_name)) and any
//! [`resource_attribute`](OtlpLogSinkBuilder::resource_attribute); the instrumentation
//! scope is [`SCOPE_NAME`] with the crate's version.
//!
//! # Decision spans
//!
//! With [`decision_spans`](OtlpLogSinkBuilder::decision_spans), each decision is also
//! exported as an OpenTelemetry span (`POST /v1/traces` beside `/v1/logs`, or
//! [`traces_endpoint`](OtlpLogSinkBuilder::traces_endpoint)), in the caller's trace:
//!
//! | span field | from the event |
//! |---|---|
//! | `trace_id` | the request's `traceparent` trace id; for a root span ([`DecisionSpans::ParentBased`], a request without one) derived from the event |
//! | `parent_span_id` | the caller's span id from `traceparent`; empty for a root span |
//! | `span_id` | derived from the event and its place in the batch (stable across retries of the batch) |
//! | `flags` | the `traceparent` flags (`01`, sampled); `01` for a root span |
//! | `name` / `kind` | [`SPAN_NAME`] (`entra_governor.decide`) / `SPAN_KIND_INTERNAL` |
//! | `end_time_unix_nano` / `start_time_unix_nano` | `time` (millisecond precision) / `time` − `latency_us` |
//! | `status` | `STATUS_CODE_ERROR` with the reason code for `unavailable`; unset otherwise (a refusal is a correct answer, not an error) |
//! | `attributes` | exactly the log record's attributes (table above) |
//!
//! Sampling is parent-based: a `traceparent` whose sampled flag is off gets no span;
//! [`DecisionSpans::SampledParents`] exports spans only for requests that carried a
//! sampled `traceparent`, [`DecisionSpans::ParentBased`] also for those without one (as
//! roots). Records of dropped events get no span. The log record of an event with a span
//! carries that span's ids, so a backend shows the record inside the decision span,
//! itself inside the caller's request span.
//!
//! Spans are telemetry, the log records are the trail: spans are POSTed once, after the
//! batch's log records were accepted; a failed span export is counted
//! ([`OtlpLogSink::failed_spans`]) and reported with `tracing::warn!` on
//! [`AUDIT_HEALTH_TARGET`](super::AUDIT_HEALTH_TARGET), never retried and never held
//! against the audit trail's health. Spans carry no token, signature or header, like the
//! records.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::event::AuditEvent;
use super::sink::{AuditSink, AuditSinkError};
use mapping::{log_record, string_kv, unix_nanos};
use spans::SpanIdentity;
pub use spans::{DecisionSpans, SPAN_NAME};

mod mapping;
mod spans;

/// The version of the field mapping documented in [the module docs](self); written on
/// every record as `entra_governor.otlp.mapping_version`.
pub const OTLP_MAPPING_VERSION: i64 = 1;

/// The default `service.name` resource attribute.
pub const DEFAULT_SERVICE_NAME: &str = "entra-governor";

/// The instrumentation scope name of the exported records.
pub const SCOPE_NAME: &str = "entra_governor.audit";

/// The `event_name` of every exported record.
pub const EVENT_NAME: &str = "entra_governor.audit.decision";

/// The default time limit of one export request.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The path appended to an endpoint given without one (`https://collector:4318`).
const LOGS_PATH: &str = "/v1/logs";

/// The traces path beside [`LOGS_PATH`], where decision spans go.
const TRACES_PATH: &str = "/v1/traces";

/// The largest response body read for a partial-success answer; larger ones are ignored.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why an [`OtlpLogSinkBuilder`] could not build a sink. Texts never hold a header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpConfigError {
    /// The endpoint is not a usable URL.
    #[error("invalid OTLP endpoint: {reason}")]
    InvalidEndpoint {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A plain `http` endpoint on a host that is not loopback, without
    /// [`dangerous_allow_plain_http`](OtlpLogSinkBuilder::dangerous_allow_plain_http).
    #[error(
        "plain http OTLP endpoint on {host}: use https, or dangerous_allow_plain_http() on a trusted network"
    )]
    PlainHttp {
        /// The endpoint's host.
        host: String,
    },
    /// A header name or value is not valid in HTTP (the value is not shown).
    #[error("invalid OTLP export header {name:?}")]
    InvalidHeader {
        /// The header's name, as given (shortened to 64 characters).
        name: String,
    },
    /// The HTTP client could not be built.
    #[error("the OTLP HTTP client could not be built: {0}")]
    Client(String),
}

/// Why one export failed; the pipeline logs it and retries the batch. Texts never hold a
/// URL, a header, a response body or event content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpExportError {
    /// The endpoint answered with a status other than `2xx`.
    #[error("OTLP export refused: HTTP status {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The request failed before an answer (connection, TLS, timeout).
    #[error("OTLP export failed: {kind}")]
    Transport {
        /// What kind of failure (`timeout`, `connect`, `request`, …).
        kind: &'static str,
    },
}

/// An [`AuditSink`] exporting each batch as OTLP log records over OTLP/HTTP protobuf;
/// see [the module docs](self) for the mapping and the delivery guarantees.
pub struct OtlpLogSink {
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    resource: Resource,
    scope: InstrumentationScope,
    rejected: AtomicU64,
    exported: AtomicU64,
    spans: Option<SpanExport>,
}

/// Where and which decision spans go.
struct SpanExport {
    endpoint: Url,
    mode: DecisionSpans,
    exported: AtomicU64,
    failed: AtomicU64,
}

/// Configures an [`OtlpLogSink`]; see [`OtlpLogSink::builder`].
#[must_use]
pub struct OtlpLogSinkBuilder {
    endpoint: String,
    service_name: String,
    resource_attributes: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    allow_plain_http: bool,
    spans: DecisionSpans,
    traces_endpoint: Option<String>,
}

impl OtlpLogSink {
    /// Starts configuring a sink exporting to `endpoint`: the full logs URL
    /// (`https://collector:4318/v1/logs`), or a base URL without a path, to which
    /// `/v1/logs` is appended (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
    pub fn builder(endpoint: impl Into<String>) -> OtlpLogSinkBuilder {
        OtlpLogSinkBuilder {
            endpoint: endpoint.into(),
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            resource_attributes: Vec::new(),
            headers: Vec::new(),
            timeout: DEFAULT_EXPORT_TIMEOUT,
            allow_plain_http: false,
            spans: DecisionSpans::Off,
            traces_endpoint: None,
        }
    }

    /// The URL records are POSTed to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Records the endpoint accepted (answered `2xx` for and did not reject).
    pub fn exported_records(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Records the endpoint rejected for good in an OTLP partial success (not retried).
    pub fn rejected_records(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The URL decision spans are POSTed to, when they are exported
    /// ([`decision_spans`](OtlpLogSinkBuilder::decision_spans)).
    pub fn traces_endpoint(&self) -> Option<&Url> {
        self.spans.as_ref().map(|s| &s.endpoint)
    }

    /// Decision spans the traces endpoint answered `2xx` for.
    pub fn exported_spans(&self) -> u64 {
        self.spans
            .as_ref()
            .map_or(0, |s| s.exported.load(Ordering::Relaxed))
    }

    /// Decision spans whose export failed (not retried: spans are telemetry, the log
    /// records are the trail).
    pub fn failed_spans(&self) -> u64 {
        self.spans
            .as_ref()
            .map_or(0, |s| s.failed.load(Ordering::Relaxed))
    }

    /// The span identity of each event of `batch` (none when spans are off).
    fn span_identities(&self, batch: &[AuditEvent]) -> Vec<Option<SpanIdentity>> {
        let mode = self.spans.as_ref().map_or(DecisionSpans::Off, |s| s.mode);
        batch
            .iter()
            .enumerate()
            .map(|(i, e)| spans::identity(e, i, mode))
            .collect()
    }

    /// The logs export request of `batch`, as POSTed: one resource, one scope, one record
    /// per event, in order. (Not public: it would tie this crate's API to one
    /// `opentelemetry-proto` release.)
    #[cfg(test)]
    pub(crate) fn export_request(&self, batch: &[AuditEvent]) -> ExportLogsServiceRequest {
        self.logs_request(batch, &self.span_identities(batch))
    }

    fn logs_request(
        &self,
        batch: &[AuditEvent],
        ids: &[Option<SpanIdentity>],
    ) -> ExportLogsServiceRequest {
        let observed = unix_nanos(SystemTime::now());
        let log_records = batch
            .iter()
            .zip(ids)
            .map(|(e, id)| log_record(e, observed, id.as_ref()))
            .collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scope.clone()),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// The traces export request of the events of `batch` that have a span, or `None`.
    fn traces_request(
        &self,
        batch: &[AuditEvent],
        ids: &[Option<SpanIdentity>],
    ) -> Option<ExportTraceServiceRequest> {
        let spans: Vec<_> = batch
            .iter()
            .zip(ids)
            .filter_map(|(e, id)| Some(spans::span(e, id.as_ref()?)))
            .collect();
        (!spans.is_empty()).then(|| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    /// Exports the decision spans of a batch whose log records were accepted: once, and
    /// a failure is counted and reported, not retried (it must not hold back the trail).
    async fn export_spans(&self, batch: &[AuditEvent], ids: &[Option<SpanIdentity>]) {
        let (Some(export), Some(request)) = (&self.spans, self.traces_request(batch, ids)) else {
            return;
        };
        let count = request.resource_spans[0].scope_spans[0].spans.len() as u64;
        match self.post(&export.endpoint, request.encode_to_vec()).await {
            Ok(_) => {
                export.exported.fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                export.failed.fetch_add(count, Ordering::Relaxed);
                tracing::warn!(
                    target: super::AUDIT_HEALTH_TARGET,
                    spans = count,
                    %error,
                    "decision spans were not exported (not retried; the log records were)"
                );
            }
        }
    }

    async fn post(&self, url: &Url, body: Vec<u8>) -> Result<reqwest::Response, OtlpExportError> {
        let response = self
            .client
            .post(url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await
            .map_err(|e| OtlpExportError::Transport {
                kind: transport_kind(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(OtlpExportError::Status {
                status: status.as_u16(),
            });
        }
        Ok(response)
    }

    /// Reads a partial-success answer, if the body is a small protobuf message.
    async fn rejected_in(mut response: reqwest::Response) -> Option<(u64, usize)> {
        let protobuf = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-protobuf"));
        if !protobuf {
            return None;
        }
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return None;
            }
            body.extend_from_slice(&chunk);
        }
        let answer = ExportLogsServiceResponse::decode(body.as_slice()).ok()?;
        let partial = answer.partial_success?;
        let rejected = u64::try_from(partial.rejected_log_records).unwrap_or(0);
        (rejected > 0).then_some((rejected, partial.error_message.len()))
    }
}

#[async_trait]
impl AuditSink for OtlpLogSink {
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids = self.span_identities(batch);
        let body = self.logs_request(batch, &ids).encode_to_vec();
        let response = self
            .post(&self.endpoint, body)
            .await
            .map_err(AuditSinkError::other)?;
        let mut accepted = batch.len() as u64;
        if let Some((rejected, message_len)) = Self::rejected_in(response).await {
            let rejected = rejected.min(accepted);
            accepted -= rejected;
            self.rejected.fetch_add(rejected, Ordering::Relaxed);
            tracing::warn!(
                target: super::AUDIT_HEALTH_TARGET,
                rejected,
                events = batch.len(),
                message_len,
                "the OTLP endpoint rejected audit records (partial success; not retried)"
            );
        }
        self.exported.fetch_add(accepted, Ordering::Relaxed);
        self.export_spans(batch, &ids).await;
        Ok(())
    }
}

impl fmt::Debug for OtlpLogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpLogSink")
            .field("endpoint", &self.endpoint.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("exported_records", &self.exported_records())
            .field("rejected_records", &self.rejected_records())
            .field("traces_endpoint", &self.traces_endpoint().map(Url::as_str))
            .field("exported_spans", &self.exported_spans())
            .field("failed_spans", &self.failed_spans())
            .finish_non_exhaustive()
    }
}

impl OtlpLogSinkBuilder {
    /// Sets the `service.name` resource attribute (default [`DEFAULT_SERVICE_NAME`]).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Adds a string resource attribute (`deployment.environment.name`, …).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource_attributes.push((key.into(), value.into()));
        self
    }

    /// Adds a header sent with every export (an API key, `authorization`); its value is
    /// marked sensitive and never shown by `Debug` or in errors.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the time limit of one export request (default [`DEFAULT_EXPORT_TIMEOUT`]); a
    /// request that takes longer fails and is retried by the pipeline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Allows a plain `http` endpoint on any host: records, and any header given, then
    /// cross the network unencrypted. Loopback hosts need no such switch.
    pub fn dangerous_allow_plain_http(mut self) -> Self {
        self.allow_plain_http = true;
        self
    }

    /// Also exports decisions as OpenTelemetry spans (default [`DecisionSpans::Off`]); see
    /// [the module docs](self#decision-spans).
    pub fn decision_spans(mut self, spans: DecisionSpans) -> Self {
        self.spans = spans;
        self
    }

    /// Where decision spans go (the full traces URL); by default the logs endpoint's
    /// base with `/v1/traces`, which needs a logs endpoint given without a path or
    /// ending in `/v1/logs`.
    pub fn traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.traces_endpoint = Some(url.into());
        self
    }

    /// Checks the endpoint and headers and builds the sink; never touches the network.
    ///
    /// # Errors
    /// [`OtlpConfigError`] for an endpoint that is not an `https` URL (or a loopback or
    /// allowed `http` one), or carries credentials, a query or a fragment; for an invalid
    /// header; for decision spans whose traces endpoint is not given and cannot be
    /// derived; or when the HTTP client cannot be built.
    pub fn build(self) -> Result<OtlpLogSink, OtlpConfigError> {
        let endpoint = self.check_endpoint(&self.endpoint, LOGS_PATH)?;
        let spans = self.span_export(&endpoint)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let invalid = || OtlpConfigError::InvalidHeader {
                name: name.chars().take(64).collect(),
            };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        let client = crate::fetch::Fetcher::default_client(self.timeout)
            .map_err(|e| OtlpConfigError::Client(e.without_url().to_string()))?;
        let mut attributes = vec![string_kv("service.name", self.service_name)];
        attributes.extend(
            self.resource_attributes
                .into_iter()
                .map(|(k, v)| string_kv(k, v)),
        );
        Ok(OtlpLogSink {
            client,
            endpoint,
            headers,
            resource: Resource {
                attributes,
                ..Default::default()
            },
            scope: InstrumentationScope {
                name: SCOPE_NAME.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..Default::default()
            },
            rejected: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            spans,
        })
    }

    /// The traces endpoint and mode, when decision spans are on.
    fn span_export(&self, logs: &Url) -> Result<Option<SpanExport>, OtlpConfigError> {
        if self.spans == DecisionSpans::Off {
            return Ok(None);
        }
        let endpoint = match &self.traces_endpoint {
            Some(url) => self.check_endpoint(url, TRACES_PATH)?,
            None => {
                let Some(base) = logs.path().strip_suffix(LOGS_PATH) else {
                    return Err(OtlpConfigError::InvalidEndpoint {
                        reason: "decision spans need traces_endpoint() beside a logs endpoint \
                                 with a custom path",
                    });
                };
                let mut url = logs.clone();
                url.set_path(&format!("{base}{TRACES_PATH}"));
                url
            }
        };
        Ok(Some(SpanExport {
            endpoint,
            mode: self.spans,
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }))
    }

    /// Checks an endpoint URL; `default_path` is appended when it has none.
    fn check_endpoint(&self, endpoint: &str, default_path: &str) -> Result<Url, OtlpConfigError> {
        let invalid = |reason| OtlpConfigError::InvalidEndpoint { reason };
        let mut url = Url::parse(endpoint).map_err(|_| invalid("not a URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "must not carry credentials (use header() for an API key)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not carry a query or fragment"));
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_plain_http || crate::cloud::is_loopback(&url) => {}
            "http" => {
                return Err(OtlpConfigError::PlainHttp {
                    host: url.host_str().unwrap_or_default().to_owned(),
                });
            }
            _ => return Err(invalid("scheme must be https (or http)")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("has no host"));
        }
        if matches!(url.path(), "" | "/") {
            url.set_path(default_path);
        }
        Ok(url)
    }
}

impl fmt::Debug for OtlpLogSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("OtlpLogSinkBuilder")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("decision_spans", &self.spans)
            .field("traces_endpoint", &self.traces_endpoint)
            .finish()
    }
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::mapping::severity;
    use super::*;
    use crate::audit::AuditOutcome;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};

    fn attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a any_value::Value> {
        record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn endpoints_are_https_unless_loopback_or_dangerous() {
        let url = |e: &str| {
            OtlpLogSink::builder(e)
                .build()
                .map(|s| s.endpoint.to_string())
        };
        assert_eq!(
            url("https://collector:4318").unwrap(),
            "https://collector:4318/v1/logs"
        );
        assert_eq!(
            url("https://collector/custom/logs").unwrap(),
            "https://collector/custom/logs"
        );
        assert_eq!(
            url("http://127.0.0.1:4318/").unwrap(),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            url("http://[::1]:4318").unwrap(),
            "http://[::1]:4318/v1/logs"
        );
        assert_eq!(
            url("http://localhost:4318").unwrap(),
            "http://localhost:4318/v1/logs"
        );
        let err = |e: &str| OtlpLogSink::builder(e).build().unwrap_err().to_string();
        assert_eq!(
            err("http://collector:4318"),
            "plain http OTLP endpoint on collector: use https, or dangerous_allow_plain_http() on a trusted network"
        );
        assert_eq!(
            err("https://user:pw@collector"),
            "invalid OTLP endpoint: must not carry credentials (use header() for an API key)"
        );
        assert_eq!(
            err("https://collector/v1/logs?key=s3cret"),
            "invalid OTLP endpoint: must not carry a query or fragment"
        );
        assert_eq!(
            err("ftp://collector"),
            "invalid OTLP endpoint: scheme must be https (or http)"
        );
        assert_eq!(err("collector"), "invalid OTLP endpoint: not a URL");
        let plain = OtlpLogSink::builder("http://collector:4318")
            .dangerous_allow_plain_http()
            .build()
            .unwrap();
        assert_eq!(plain.endpoint().as_str(), "http://collector:4318/v1/logs");
    }

    #[test]
    fn the_traces_endpoint_sits_beside_the_logs_endpoint() {
        let traces = |logs: &str| {
            OtlpLogSink::builder(logs)
                .decision_spans(DecisionSpans::SampledParents)
                .build()
                .map(|s| s.traces_endpoint().unwrap().to_string())
        };
        assert_eq!(
            traces("https://collector:4318").unwrap(),
            "https://collector:4318/v1/traces"
        );
        assert_eq!(
            traces("https://gw/otlp/v1/logs").unwrap(),
            "https://gw/otlp/v1/traces"
        );
        assert_eq!(
            traces("https://gw/custom").unwrap_err().to_string(),
            "invalid OTLP endpoint: decision spans need traces_endpoint() beside a logs \
             endpoint with a custom path"
        );
        let sink = OtlpLogSink::builder("https://gw/custom")
            .decision_spans(DecisionSpans::ParentBased)
            .traces_endpoint("https://tempo:4318")
            .build()
            .unwrap();
        assert_eq!(
            sink.traces_endpoint().unwrap().as_str(),
            "https://tempo:4318/v1/traces"
        );
        let err = OtlpLogSink::builder("https://gw")
            .decision_spans(DecisionSpans::ParentBased)
            .traces_endpoint("http://tempo:4318")
            .build()
            .unwrap_err();
        assert!(matches!(err, OtlpConfigError::PlainHttp { .. }), "{err}");
        let off = OtlpLogSink::builder("https://gw/custom").build().unwrap();
        assert_eq!(off.traces_endpoint(), None);
    }

    #[test]
    fn header_values_never_show() {
        let builder = OtlpLogSink::builder("https://collector").header("x-api-key", "s3cr3t-v4lue");
        assert!(!format!("{builder:?}").contains("s3cr3t"));
        let sink = builder.build().unwrap();
        let debug = format!("{sink:?}");
        assert!(debug.contains("x-api-key"), "{debug}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        let err = OtlpLogSink::builder("https://collector")
            .header("x-api-key", "bad\nvalue s3cr3t")
            .build()
            .unwrap_err()
            .to_string();
        assert_eq!(err, "invalid OTLP export header \"x-api-key\"");
    }

    #[test]
    fn records_follow_the_mapping() {
        let sink = OtlpLogSink::builder("https://collector")
            .service_name("gw")
            .resource_attribute("deployment.environment.name", "prod")
            .build()
            .unwrap();
        let event = AuditEvent::new(AuditOutcome::Deny, "Training.Submit", "models/exp-1")
            .with_time(UNIX_EPOCH + Duration::from_millis(1_796_119_200_123))
            .with_reason("no_role_grants")
            .with_correlation_id("req-42")
            .with_latency(Duration::from_micros(35));
        let request = sink.export_request(std::slice::from_ref(&event));
        let rl = &request.resource_logs[0];
        let resource = rl.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
        assert_eq!(resource.attributes[1].key, "deployment.environment.name");
        let sl = &rl.scope_logs[0];
        assert_eq!(sl.scope.as_ref().unwrap().name, SCOPE_NAME);
        let r = &sl.log_records[0];
        assert_eq!(r.time_unix_nano, 1_796_119_200_123_000_000);
        assert_eq!(r.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(r.severity_text, "WARN");
        assert_eq!(
            r.body.as_ref().unwrap().value,
            Some(any_value::Value::StringValue("Training.Submit".into()))
        );
        let s = |v: &str| Some(any_value::Value::StringValue(v.into()));
        assert_eq!(attr(r, "entra_governor.outcome").cloned(), s("deny"));
        assert_eq!(
            attr(r, "entra_governor.reason").cloned(),
            s("no_role_grants")
        );
        assert_eq!(attr(r, "correlation_id").cloned(), s("req-42"));
        assert_eq!(
            attr(r, "entra_governor.latency_us").cloned(),
            Some(any_value::Value::IntValue(35))
        );
        assert_eq!(attr(r, "enduser.id"), None);
        assert_eq!(attr(r, "entra_governor.inputs.token_version"), None);
    }

    #[test]
    fn severities() {
        use AuditOutcome::*;
        let n = |o| severity(o).0;
        assert_eq!(n(Allow), SeverityNumber::Info);
        assert_eq!(n(Deny), SeverityNumber::Warn);
        assert_eq!(n(StepUp), SeverityNumber::Warn);
        assert_eq!(n(InvalidToken), SeverityNumber::Warn);
        assert_eq!(n(Unavailable), SeverityNumber::Error);
        assert_eq!(n(Dropped), SeverityNumber::Error);
    }

    #[test]
    fn unparsable_times_are_zero_not_a_panic() {
        let mut event = AuditEvent::new(AuditOutcome::Allow, "a", "r");
        event.time = "yesterday".into();
        assert_eq!(log_record(&event, 7, None).time_unix_nano, 0);
        assert_eq!(log_record(&event, 7, None).observed_time_unix_nano, 7);
    }
}
