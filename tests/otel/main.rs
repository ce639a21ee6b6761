//! The audit trail exported as OTLP log records (`OtlpLogSink`, feature `otel`) to a real
//! OTLP/HTTP receiver on loopback, each request decoded with the official
//! `opentelemetry-proto` types: the mapping, retries through a failing receiver without a
//! lost event, and never a token on the wire.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use entra_governor::audit::otlp::{DecisionSpans, OTLP_MAPPING_VERSION, OtlpLogSink, SPAN_NAME};
use entra_governor::testing::TestIdp;
use entra_governor::{
    AuditEvent, AuditLog, AuditOutcome, AuthorizeError, Governor, RequestContext,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

/// Held by every test: `tracing` caches a callsite's interest when it is first hit, and a
/// thread-local subscriber installed while another test's thread is registering the
/// `decide` callsite can miss it. Run one at a time, the span test always sees its spans.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One POST the receiver saw.
#[derive(Clone)]
struct Received {
    path: String,
    status: StatusCode,
    content_type: Option<String>,
    api_key: Option<String>,
    body: Bytes,
}

#[derive(Default)]
struct Receiver {
    /// How many of the first requests are answered 503.
    fail_first: usize,
    /// How many records each 200 answer says were rejected (OTLP partial success).
    reject: i64,
    /// Whether `/v1/traces` answers 503.
    fail_traces: bool,
    seen: AtomicUsize,
    requests: Mutex<Vec<Received>>,
}

impl Receiver {
    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// The records of the requests answered 200, decoded, in arrival order.
    fn accepted_records(&self) -> Vec<(ExportLogsServiceRequest, LogRecord)> {
        let mut out = Vec::new();
        for r in self
            .requests()
            .iter()
            .filter(|r| r.status == StatusCode::OK && r.path == "/v1/logs")
        {
            let request = ExportLogsServiceRequest::decode(r.body.as_ref()).expect("OTLP protobuf");
            for rl in &request.resource_logs {
                for sl in &rl.scope_logs {
                    for record in &sl.log_records {
                        out.push((request.clone(), record.clone()));
                    }
                }
            }
        }
        out
    }

    /// The spans of the `/v1/traces` requests answered 200, decoded, in arrival order.
    fn accepted_spans(&self) -> Vec<Span> {
        let mut out = Vec::new();
        for r in self
            .requests()
            .iter()
            .filter(|r| r.status == StatusCode::OK && r.path == "/v1/traces")
        {
            let request =
                ExportTraceServiceRequest::decode(r.body.as_ref()).expect("OTLP protobuf");
            for rs in &request.resource_spans {
                for ss in &rs.scope_spans {
                    assert_eq!(ss.scope.as_ref().unwrap().name, "entra_governor.audit");
                    out.extend(ss.spans.iter().cloned());
                }
            }
        }
        out
    }
}

async fn export_traces(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let status = if receiver.fail_traces {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    receiver.requests.lock().unwrap().push(Received {
        path: "/v1/traces".into(),
        status,
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        api_key: None,
        body,
    });
    (
        status,
        [("content-type", "application/x-protobuf")],
        Vec::new(),
    )
}

async fn export(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let n = receiver.seen.fetch_add(1, Ordering::SeqCst);
    let status = if n < receiver.fail_first {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    receiver.requests.lock().unwrap().push(Received {
        path: "/v1/logs".into(),
        status,
        content_type: header("content-type"),
        api_key: header("x-api-key"),
        body,
    });
    let partial_success = (receiver.reject > 0).then(|| ExportLogsPartialSuccess {
        rejected_log_records: receiver.reject,
        error_message: "attribute too long (do not log me)".into(),
    });
    let answer = ExportLogsServiceResponse { partial_success }.encode_to_vec();
    (status, [("content-type", "application/x-protobuf")], answer)
}

/// Serves `POST /v1/logs` on a loopback port; returns the receiver and its base URL.
async fn start_receiver(fail_first: usize) -> (Arc<Receiver>, String) {
    start_receiver_with(Receiver {
        fail_first,
        ..Receiver::default()
    })
    .await
}

async fn start_receiver_with(receiver: Receiver) -> (Arc<Receiver>, String) {
    let receiver = Arc::new(receiver);
    let app = Router::new()
        .route("/v1/logs", post(export))
        .route("/v1/traces", post(export_traces))
        .with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, format!("http://{addr}"))
}

fn attrs(record: &LogRecord) -> HashMap<String, Value> {
    record
        .attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_owned())
}

fn strings(values: &[&str]) -> Value {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};
    Value::ArrayValue(ArrayValue {
        values: values
            .iter()
            .map(|v| AnyValue { value: Some(s(v)) })
            .collect(),
    })
}

fn body(record: &LogRecord) -> Value {
    record.body.clone().unwrap().value.unwrap()
}

fn governor(idp: &TestIdp, audit: AuditLog) -> Governor {
    common::builder(idp)
        .policy(crate::common::example_policy())
        .audit(audit)
        .build()
        .unwrap()
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[tokio::test]
async fn decisions_arrive_as_otlp_log_records_with_the_documented_mapping() {
    let _serial = SERIAL.lock().await;
    let idp = TestIdp::start().await;
    let (receiver, base) = start_receiver(0).await;
    let sink = OtlpLogSink::builder(base)
        .service_name("otel-test")
        .header("x-api-key", "collector-key-1")
        .build()
        .unwrap();
    let log = AuditLog::builder(sink).build();
    let g = governor(&idp, log.clone());
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let expired = idp.token().expires_in(-3600).sign();
    let p = g.verify(&token).await.unwrap();
    let ctx = RequestContext::with_correlation_id("req-1");
    // The allow comes with the caller's trace context, as an HTTP edge parses it.
    let traced = entra_governor::http::request_context_with_trace(
        Some(b"req-1"),
        Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    assert!(traced.trace_parent.is_some());
    let malformed = entra_governor::http::request_context_with_trace(
        Some(b"req-1"),
        Some(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
    );
    assert!(
        malformed.trace_parent.is_none(),
        "upper-case hex is not W3C"
    );

    let before = unix_nanos(SystemTime::now()) / 1_000_000 * 1_000_000;
    g.authorize_with(&token, "training.submit", "models/exp-1", &traced)
        .await
        .unwrap();
    g.authorize_with(&token, "models.deploy", "models/prod-1", &malformed)
        .await
        .unwrap();
    assert!(matches!(
        g.authorize_with(&expired, "models.read", "models/prod-1", &ctx)
            .await,
        Err(AuthorizeError::InvalidToken(_))
    ));
    g.shutdown().await;
    let after = unix_nanos(SystemTime::now());
    assert_eq!((log.recorded(), log.written(), log.dropped()), (3, 3, 0));

    // The wire: OTLP/HTTP protobuf, with the configured header.
    let requests = receiver.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.content_type.as_deref(), Some("application/x-protobuf"));
        assert_eq!(r.api_key.as_deref(), Some("collector-key-1"));
    }

    let records = receiver.accepted_records();
    assert_eq!(records.len(), 3);
    let (request, _) = &records[0];
    let resource = request.resource_logs[0].resource.as_ref().unwrap();
    assert_eq!(resource.attributes.len(), 1);
    assert_eq!(resource.attributes[0].key, "service.name");
    assert_eq!(
        resource.attributes[0].value.clone().unwrap().value,
        Some(s("otel-test"))
    );
    let scope = request.resource_logs[0].scope_logs[0]
        .scope
        .as_ref()
        .unwrap();
    assert_eq!(scope.name, "entra_governor.audit");
    assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));

    let by_outcome = |outcome: &str| {
        let found: Vec<&LogRecord> = records
            .iter()
            .map(|(_, r)| r)
            .filter(|r| attrs(r).get("entra_governor.outcome") == Some(&s(outcome)))
            .collect();
        assert_eq!(found.len(), 1, "one {outcome} record");
        found[0]
    };
    for (_, r) in &records {
        assert!(
            (before..=after).contains(&r.time_unix_nano),
            "{} not in {before}..={after}",
            r.time_unix_nano
        );
        assert_eq!(r.time_unix_nano % 1_000_000, 0, "millisecond precision");
        assert!(r.observed_time_unix_nano >= r.time_unix_nano);
        assert_eq!(r.event_name, "entra_governor.audit.decision");
        let a = attrs(r);
        assert_eq!(
            a["entra_governor.otlp.mapping_version"],
            Value::IntValue(OTLP_MAPPING_VERSION)
        );
        assert_eq!(a["entra_governor.audit.schema_version"], Value::IntValue(2));
        assert_eq!(a["correlation_id"], s("req-1"));
    }

    let allow = by_outcome("allow");
    assert_eq!(
        allow.trace_id,
        [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36
        ]
    );
    assert_eq!(
        allow.span_id,
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    );
    assert_eq!(allow.flags, 1, "sampled");
    for outcome in ["deny", "invalid_token"] {
        let r = by_outcome(outcome);
        assert!(r.trace_id.is_empty() && r.span_id.is_empty() && r.flags == 0);
    }
    assert_eq!(
        (allow.severity_number, allow.severity_text.as_str()),
        (9, "INFO")
    );
    let a = attrs(allow);
    assert_eq!(a["entra_governor.reason"], s("allow"));
    assert_eq!(a["entra_governor.action"], s("training.submit"));
    assert_eq!(a["entra_governor.resource"], s("models/exp-1"));
    assert_eq!(a["entra.tenant_id"], s(p.tenant().as_str()));
    assert_eq!(a["enduser.id"], s(p.object_id().as_str()));
    assert_eq!(a["entra.token_id"], s(p.token_id().unwrap()));
    assert_eq!(a["entra.client_app_id"], s(p.client_app_id().unwrap()));
    assert_eq!(a["entra_governor.principal_kind"], s("user"));
    assert_eq!(a["entra_governor.guest"], Value::BoolValue(false));
    assert_eq!(a["entra_governor.roles"], strings(&["data-scientist"]));
    assert_eq!(a["entra_governor.grant"], s("data-scientist#0"));
    assert_eq!(
        a["entra_governor.policy_version"],
        s(g.policy_version().as_str())
    );
    assert_eq!(
        a["entra_governor.inputs.scopes"],
        strings(&["Training.Manage"])
    );
    assert_eq!(a["entra_governor.inputs.groups.claim"], s("listed"));
    assert_eq!(a["entra_governor.inputs.groups.recorded"], s("bound"));
    assert!(matches!(a["entra_governor.latency_us"], Value::IntValue(_)));
    assert!(!a.contains_key("entra_governor.display_name"));
    assert!(!a.contains_key("entra_governor.denied_by"));
    assert!(matches!(body(allow), Value::StringValue(text) if !text.is_empty()));

    let deny = by_outcome("deny");
    assert_eq!(
        (deny.severity_number, deny.severity_text.as_str()),
        (13, "WARN")
    );
    let a = attrs(deny);
    assert_eq!(a["entra_governor.reason"], s("outside_scopes"));
    assert_eq!(a["entra_governor.action"], s("models.deploy"));
    assert_eq!(a["entra_governor.roles"], strings(&[]));
    assert_eq!(a["enduser.id"], s(p.object_id().as_str()));
    assert!(!a.contains_key("entra_governor.grant"));

    let invalid = by_outcome("invalid_token");
    assert_eq!(
        (invalid.severity_number, invalid.severity_text.as_str()),
        (13, "WARN")
    );
    let a = attrs(invalid);
    assert_eq!(a["entra_governor.reason"], s("expired"));
    assert_eq!(a["entra_governor.action"], s("models.read"));
    for absent in ["enduser.id", "entra.tenant_id", "entra.token_id"] {
        assert!(!a.contains_key(absent), "{absent} on an invalid token");
    }
    assert!(!a.keys().any(|k| k.starts_with("entra_governor.inputs.")));

    // No token, and no part of one, ever crosses the wire.
    for t in [&token, &expired] {
        let signature = t.rsplit('.').next().unwrap();
        assert!(signature.len() > 20);
        for r in &requests {
            for needle in [t.as_str(), signature] {
                assert!(
                    !r.body.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "token material in an export"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_failing_receiver_loses_no_event() {
    let _serial = SERIAL.lock().await;
    let (receiver, base) = start_receiver(2).await;
    let sink = OtlpLogSink::builder(format!("{base}/v1/logs"))
        .build()
        .unwrap();
    let log = AuditLog::builder(sink)
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build();
    let at = UNIX_EPOCH + Duration::from_millis(1_796_119_200_123);
    for i in 0..5 {
        let event = AuditEvent::new(AuditOutcome::Deny, "Training.Submit", format!("models/{i}"))
            .with_time(at + Duration::from_millis(i))
            .with_reason("no_role_grants")
            .with_explanation(format!("refused {i}"));
        log.record(event).await.unwrap();
    }
    log.shutdown().await;

    let statuses: Vec<u16> = receiver
        .requests()
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(&statuses[..2], [503, 503]);
    assert!(statuses[2..].iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(log.sink_failures(), 2);
    assert_eq!((log.recorded(), log.written(), log.dropped()), (5, 5, 0));

    // Every event exactly once among the accepted exports, in order, with its time.
    let records = receiver.accepted_records();
    let resources: Vec<Value> = records
        .iter()
        .map(|(_, r)| attrs(r)["entra_governor.resource"].clone())
        .collect();
    let expected: Vec<Value> = (0..5).map(|i| s(&format!("models/{i}"))).collect();
    assert_eq!(resources, expected);
    for (i, (_, r)) in records.iter().enumerate() {
        assert_eq!(
            r.time_unix_nano,
            1_796_119_200_123_000_000 + i as u64 * 1_000_000
        );
        assert_eq!(body(r), s(&format!("refused {i}")));
        assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "WARN"));
    }
    // The retries carried the same events as the failed exports: each failed export's
    // records are those of the next export (the same batch, retried).
    let requests = receiver.requests();
    let resources_of = |r: &Received| -> Vec<Value> {
        ExportLogsServiceRequest::decode(r.body.as_ref())
            .unwrap()
            .resource_logs[0]
            .scope_logs[0]
            .log_records
            .iter()
            .map(|record| attrs(record)["entra_governor.resource"].clone())
            .collect()
    };
    let failed = resources_of(&requests[0]);
    assert!(!failed.is_empty());
    assert_eq!(
        resources_of(&requests[1]),
        failed,
        "the same batch, retried"
    );
    assert_eq!(
        resources_of(&requests[2]),
        failed,
        "the same batch, retried"
    );
}

/// A `tracing` subscriber that keeps every span's fields (as text), with a span stack for
/// `Span::current()`; the test runtime is single-threaded.
#[derive(Default)]
struct SpanCapture {
    spans: Mutex<Vec<(&'static tracing::Metadata<'static>, HashMap<String, String>)>>,
    stack: Mutex<Vec<tracing::span::Id>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for SpanCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push((attrs.metadata(), fields));
        tracing::span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        let (_, fields) = &mut spans[span.into_u64() as usize - 1];
        values.record(&mut Fields(fields));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, span: &tracing::span::Id) {
        self.stack.lock().unwrap().push(span.clone());
    }
    fn exit(&self, _: &tracing::span::Id) {
        self.stack.lock().unwrap().pop();
    }
    fn current_span(&self) -> tracing_core::span::Current {
        let Some(id) = self.stack.lock().unwrap().last().cloned() else {
            return tracing_core::span::Current::none();
        };
        let metadata = self.spans.lock().unwrap()[id.into_u64() as usize - 1].0;
        tracing_core::span::Current::new(id, metadata)
    }
}

impl SpanCapture {
    /// The fields of every `decide` span, in creation order.
    fn decide_spans(&self) -> Vec<HashMap<String, String>> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| {
                m.name() == entra_governor::audit::DECIDE_SPAN
                    && m.target() == entra_governor::audit::DECIDE_SPAN_TARGET
            })
            .map(|(_, f)| f.clone())
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_decision_runs_in_a_decide_span_with_its_audit_fields_and_no_token() {
    let _serial = SERIAL.lock().await;
    let capture = Arc::new(SpanCapture::default());
    let _guard = tracing::subscriber::set_default(Arc::clone(&capture));
    let idp = TestIdp::start().await;
    let (_receiver, base) = start_receiver(0).await;
    let log = AuditLog::builder(OtlpLogSink::builder(base).build().unwrap()).build();
    let g = governor(&idp, log);
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let p = g.verify(&token).await.unwrap();
    let traced = entra_governor::http::request_context_with_trace(
        Some(b"req-7"),
        Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    g.authorize_with(&token, "training.submit", "models/exp-1", &traced)
        .await
        .unwrap();
    let _ = g
        .authorize_with("not.a.token", "models.read", "models/prod-1", &traced)
        .await;
    g.shutdown().await;

    let spans = capture.decide_spans();
    assert_eq!(spans.len(), 2);
    let allow = &spans[0];
    let field = |f: &HashMap<String, String>, k: &str| f.get(k).cloned();
    assert_eq!(field(allow, "action").as_deref(), Some("training.submit"));
    assert_eq!(field(allow, "resource").as_deref(), Some("models/exp-1"));
    assert_eq!(field(allow, "outcome").as_deref(), Some("allow"));
    assert_eq!(field(allow, "reason").as_deref(), Some("allow"));
    assert_eq!(field(allow, "correlation_id").as_deref(), Some("req-7"));
    assert_eq!(
        field(allow, "trace_id").as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(
        field(allow, "parent_span_id").as_deref(),
        Some("00f067aa0ba902b7")
    );
    assert_eq!(
        field(allow, "enduser.id").as_deref(),
        Some(p.object_id().as_str())
    );
    assert_eq!(
        field(allow, "entra.tenant_id").as_deref(),
        Some(p.tenant().as_str())
    );
    assert_eq!(field(allow, "policy_version"), Some(g.policy_version()));
    assert!(field(allow, "latency_us").is_some());
    let invalid = &spans[1];
    assert_eq!(field(invalid, "outcome").as_deref(), Some("invalid_token"));
    assert_eq!(field(invalid, "enduser.id"), None);

    // No span field anywhere holds the token or its signature.
    let signature = token.rsplit('.').next().unwrap();
    for (_, fields) in capture.spans.lock().unwrap().iter() {
        for value in fields.values() {
            assert!(!value.contains(signature) && !value.contains("not.a.token"));
        }
    }
}

#[tokio::test]
async fn a_partial_success_is_counted_and_not_retried() {
    let _serial = SERIAL.lock().await;
    let (receiver, base) = start_receiver_with(Receiver {
        reject: 1,
        ..Receiver::default()
    })
    .await;
    let sink = Arc::new(OtlpLogSink::builder(base).build().unwrap());
    let log = AuditLog::builder(Arc::clone(&sink)).max_batch(2).build();
    for i in 0..2 {
        let event = AuditEvent::new(AuditOutcome::Allow, "Inference.Invoke", format!("m/{i}"));
        log.record(event).await.unwrap();
    }
    log.shutdown().await;
    let posts = receiver.requests().len() as u64;
    assert!((1..=2).contains(&posts), "{posts} exports");
    assert_eq!(sink.rejected_records(), posts, "one rejected per export");
    assert_eq!(sink.exported_records(), 2 - posts);
    assert_eq!((log.written(), log.sink_failures()), (2, 0), "not retried");
}

/// The W3C `traceparent` of a caller that sampled (`-01`) or did not (`-00`) its trace.
const SAMPLED: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED: &[u8] = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A sink exporting decision spans under `mode` to the receiver at `base`, and the
/// governor writing to it.
async fn spans_setup(
    idp: &TestIdp,
    base: &str,
    mode: DecisionSpans,
) -> (Governor, AuditLog, Arc<OtlpLogSink>) {
    let sink = Arc::new(
        OtlpLogSink::builder(base)
            .decision_spans(mode)
            .build()
            .unwrap(),
    );
    let log = AuditLog::builder(Arc::clone(&sink)).build();
    (governor(idp, log.clone()), log, sink)
}

#[tokio::test]
async fn decisions_become_spans_in_the_callers_trace_beside_their_records() {
    let _serial = SERIAL.lock().await;
    let idp = TestIdp::start().await;
    let (receiver, base) = start_receiver(0).await;
    let (g, log, sink) = spans_setup(&idp, &base, DecisionSpans::SampledParents).await;
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let ctx =
        |tp: Option<&[u8]>| entra_governor::http::request_context_with_trace(Some(b"req-9"), tp);
    g.authorize_with(
        &token,
        "training.submit",
        "models/exp-1",
        &ctx(Some(SAMPLED)),
    )
    .await
    .unwrap();
    g.authorize_with(
        &token,
        "models.deploy",
        "models/prod-1",
        &ctx(Some(UNSAMPLED)),
    )
    .await
    .unwrap();
    g.authorize_with(&token, "models.deploy", "models/prod-2", &ctx(None))
        .await
        .unwrap();
    g.shutdown().await;
    assert_eq!((log.written(), log.sink_failures()), (3, 0));

    // Only the sampled caller's decision is a span: in its trace, under its span.
    let spans = receiver.accepted_spans();
    assert_eq!(spans.len(), 1, "one sampled decision");
    assert_eq!((sink.exported_spans(), sink.failed_spans()), (1, 0));
    let span = &spans[0];
    assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(span.span_id.len(), 8);
    assert_ne!(hex(&span.span_id), "00f067aa0ba902b7");
    assert_eq!(span.flags, 1);
    assert_eq!(span.name, SPAN_NAME);
    assert_eq!(span.kind, 1, "SPAN_KIND_INTERNAL");
    assert_eq!(span.status.as_ref().unwrap().code, 0, "unset for an allow");
    let records = receiver.accepted_records();
    let record = |resource: &str| {
        records
            .iter()
            .map(|(_, r)| r)
            .find(|r| attrs(r)["entra_governor.resource"] == s(resource))
            .unwrap_or_else(|| panic!("a record for {resource}"))
    };
    let allow = record("models/exp-1");
    let a = attrs(allow);
    let span_attrs: HashMap<String, Value> = span
        .attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect();
    assert_eq!(span_attrs, a, "the span carries the record's attributes");
    let Value::IntValue(latency_us) = a["entra_governor.latency_us"] else {
        panic!("latency")
    };
    assert_eq!(span.end_time_unix_nano, allow.time_unix_nano);
    assert_eq!(
        span.end_time_unix_nano - span.start_time_unix_nano,
        latency_us as u64 * 1_000
    );
    // The record sits inside the decision span; the unsampled one under its caller's.
    assert_eq!(
        (&allow.trace_id, &allow.span_id),
        (&span.trace_id, &span.span_id)
    );
    let unsampled = record("models/prod-1");
    assert_eq!(hex(&unsampled.trace_id), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(hex(&unsampled.span_id), "b7ad6b7169203331");
    assert!(record("models/prod-2").span_id.is_empty());

    // No token, and no part of one, on either path.
    let signature = token.rsplit('.').next().unwrap();
    for r in receiver.requests() {
        assert!(
            !r.body
                .windows(signature.len())
                .any(|w| w == signature.as_bytes())
        );
    }
}

#[tokio::test]
async fn parent_based_spans_make_untraced_decisions_roots() {
    let _serial = SERIAL.lock().await;
    let idp = TestIdp::start().await;
    let (receiver, base) = start_receiver(0).await;
    let (g, _log, _sink) = spans_setup(&idp, &base, DecisionSpans::ParentBased).await;
    let token = idp.token().scopes("Training.Manage").sign();
    let untraced = RequestContext::with_correlation_id("req-10");
    g.authorize_with(&token, "models.deploy", "models/prod-2", &untraced)
        .await
        .unwrap();
    g.shutdown().await;
    let spans = receiver.accepted_spans();
    assert_eq!(spans.len(), 1);
    let root = &spans[0];
    assert!(root.parent_span_id.is_empty(), "a root span");
    assert_eq!((root.trace_id.len(), root.span_id.len()), (16, 8));
    assert!(root.trace_id.iter().any(|&b| b != 0));
    let records = receiver.accepted_records();
    let (_, record) = &records[0];
    assert_eq!(
        (&record.trace_id, &record.span_id),
        (&root.trace_id, &root.span_id)
    );
    assert_eq!(attrs(record)["entra_governor.outcome"], s("deny"));
}

#[tokio::test]
async fn a_failing_traces_endpoint_never_holds_back_the_trail() {
    let _serial = SERIAL.lock().await;
    let idp = TestIdp::start().await;
    let (receiver, base) = start_receiver_with(Receiver {
        fail_traces: true,
        ..Receiver::default()
    })
    .await;
    let (g, log, sink) = spans_setup(&idp, &base, DecisionSpans::ParentBased).await;
    let token = idp.token().scopes("Training.Manage").sign();
    for i in 0..3 {
        let ctx = RequestContext::with_correlation_id(format!("req-{i}"));
        g.authorize_with(&token, "models.deploy", "models/prod-1", &ctx)
            .await
            .unwrap();
    }
    log.flush().await;
    assert!(
        log.is_healthy() && g.health().audit.is_some_and(|a| a.healthy),
        "spans do not make the trail unhealthy"
    );
    g.shutdown().await;
    // Every record written once, no sink failure; the spans counted as failed.
    assert_eq!(
        (log.recorded(), log.written(), log.sink_failures()),
        (3, 3, 0)
    );
    assert_eq!(receiver.accepted_records().len(), 3);
    assert_eq!((sink.exported_spans(), sink.failed_spans()), (0, 3));
    let traces = receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/traces")
        .count() as u64;
    assert!(traces >= 1, "the spans were tried");
}
