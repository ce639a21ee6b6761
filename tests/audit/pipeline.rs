//! The audit trail with real components: events, the JSON Lines, tracing and memory sinks,
//! and the `AuditLog` pipeline under concurrency, backpressure, drops, failures, strict
//! mode, shutdown and drop. No assertion depends on timing: tests wait on counters,
//! `flush()`, and the memory sink's notifications.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use entra_governor::audit::{
    AUDIT_HEALTH_TARGET, AUDIT_TARGET, AUDIT_UNAVAILABLE_REASON, AuditError, AuditEvent, AuditLog,
    AuditOutcome, AuditSink, AuditSinkError, JsonLinesSink, MemorySink, OnFull, TracingSink,
};
use entra_governor::{ClientAuth, ObjectId, Principal, PrincipalKind, TenantId};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const HOME: &str = "9b7c3a1e-0000-4000-8000-0000000000aa";
const OID: &str = "0f5e3b8a-8c1d-4c53-9a6b-2d6c6c0c9e11";
const APP: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

/// Generous bound for waits that normally end in milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(
        AuditOutcome::Allow,
        "Inference.Invoke",
        format!("models/m{i}"),
    )
    .with_time(UNIX_EPOCH + Duration::from_secs(1_795_472_101))
    .with_reason("role_grant")
    .with_correlation_id(format!("req-{i}"))
}

fn fast_retry(builder: entra_governor::AuditLogBuilder) -> entra_governor::AuditLogBuilder {
    builder.retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// Polls `condition` until it holds; fails the test after [`PATIENCE`].
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// A sink that announces each write attempt, then waits for a permit before passing the
/// batch to a memory sink: tests decide exactly when the sink makes progress.
struct Gated {
    inner: MemorySink,
    attempts: mpsc::UnboundedSender<usize>,
    permits: Arc<Semaphore>,
}

struct Gate {
    attempts: mpsc::UnboundedReceiver<usize>,
    permits: Arc<Semaphore>,
}

impl Gate {
    /// Waits for the next write attempt and returns its batch size.
    async fn next_attempt(&mut self) -> usize {
        tokio::time::timeout(PATIENCE, self.attempts.recv())
            .await
            .expect("a write attempt")
            .expect("sink alive")
    }
    fn allow(&self, n: usize) {
        self.permits.add_permits(n);
    }
    fn open(&self) {
        self.permits.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

fn gated(inner: MemorySink) -> (Gated, Gate) {
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(0));
    (
        Gated {
            inner,
            attempts: tx,
            permits: Arc::clone(&permits),
        },
        Gate {
            attempts: rx,
            permits,
        },
    )
}

#[async_trait]
impl AuditSink for Gated {
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        let _ = self.attempts.send(batch.len());
        self.permits.acquire().await.expect("open").forget();
        self.inner.write(batch).await
    }
    async fn flush(&self) -> Result<(), AuditSinkError> {
        self.inner.flush().await
    }
}

/// A unique file in the temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "entra-governor-{tag}-{}-{nanos}.jsonl",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn principal() -> Principal {
    Principal::builder(TENANT.parse().unwrap(), OID.parse().unwrap())
        .kind(PrincipalKind::User)
        .client_app(APP, ClientAuth::Certificate)
        .guest_from(HOME.parse().unwrap())
        .token_id("AbCdEf0123456789xyzABC")
        .roles(["Trainer"])
        .build()
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

#[test]
fn a_filled_event_serializes_to_exactly_the_documented_fields() {
    let e = AuditEvent::from_principal(
        &principal(),
        AuditOutcome::Deny,
        "Training.Submit",
        "models/exp-1",
    )
    .with_time(UNIX_EPOCH + Duration::from_millis(1_795_472_101_123))
    .with_reason("denied_by_rule")
    .with_explanation("rule no-friday-training covers Training.Submit on models/*")
    .with_display_name("Ada Lovelace")
    .with_roles(["Trainer", "Inference.User"])
    .with_grant("trainers-train")
    .with_denied_by("no-friday-training")
    .with_correlation_id("req-42")
    .with_policy_version("3f1c9a")
    .with_latency(Duration::from_micros(35));

    let value = serde_json::to_value(&e).unwrap();
    assert_eq!(
        value,
        json!({
            "schema_version": 2,
            "time": "2026-11-23T22:15:01.123Z",
            "outcome": "deny",
            "reason": "denied_by_rule",
            "explanation": "rule no-friday-training covers Training.Submit on models/*",
            "tenant_id": TENANT,
            "object_id": OID,
            "principal_kind": "user",
            "guest": true,
            "client_app_id": APP,
            "display_name": "Ada Lovelace",
            "action": "Training.Submit",
            "resource": "models/exp-1",
            "roles": ["Trainer", "Inference.User"],
            "grant": "trainers-train",
            "denied_by": "no-friday-training",
            "token_id": "AbCdEf0123456789xyzABC",
            "correlation_id": "req-42",
            "policy_version": "3f1c9a",
            "latency_us": 35
        })
    );
    let line = serde_json::to_string(&e).unwrap();
    assert!(!line.contains('\n'));
    assert_eq!(serde_json::from_str::<AuditEvent>(&line).unwrap(), e);
}

#[test]
fn a_bare_event_has_only_the_always_present_fields() {
    let e = AuditEvent::new(AuditOutcome::InvalidToken, "Inference.Invoke", "models/m");
    let value = serde_json::to_value(&e).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "schema_version",
        "time",
        "outcome",
        "reason",
        "action",
        "resource",
        "roles",
        "latency_us",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected);
    assert_eq!(value["reason"], "invalid_token");
    assert_eq!(value["roles"], json!([]));
    let time = value["time"].as_str().unwrap();
    assert_eq!(time.len(), "2026-11-23T22:15:01.123Z".len());
    assert!(time.ends_with('Z'));
    assert_eq!(serde_json::from_value::<AuditEvent>(value).unwrap(), e);
}

#[test]
fn display_name_is_absent_unless_set() {
    let e = AuditEvent::from_principal(&principal(), AuditOutcome::Allow, "a", "r");
    let value = serde_json::to_value(&e).unwrap();
    assert!(value.get("display_name").is_none());
    assert_eq!(value["guest"], true);
    assert_eq!(value["token_id"], "AbCdEf0123456789xyzABC");
    // The principal's token roles are not the policy roles: the governor sets those.
    assert_eq!(value["roles"], json!([]));
}

#[test]
fn unknown_fields_from_later_schema_versions_are_ignored() {
    let line = r#"{"schema_version":2,"time":"2026-11-23T22:15:01.123Z","outcome":"allow","reason":"r","action":"a","resource":"x","roles":[],"latency_us":1,"new_field":{"x":1}}"#;
    let e: AuditEvent = serde_json::from_str(line).unwrap();
    assert_eq!(e.schema_version, 2);
    assert_eq!(e.outcome, AuditOutcome::Allow);
}

#[tokio::test]
async fn no_sink_output_contains_the_token() {
    let (idp, governor) = common::setup().await;
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .claim("name", json!("Ada Lovelace"))
        .sign();
    let principal = governor.verify(&token).await.unwrap();
    let e = AuditEvent::from_principal(&principal, AuditOutcome::Allow, "Inference.Invoke", "m")
        .with_display_name_of(&principal);
    assert_eq!(e.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(e.token_id.as_deref(), principal.token_id());

    let buf = SharedBuf::default();
    let sink = JsonLinesSink::writer(buf.clone());
    sink.write(std::slice::from_ref(&e)).await.unwrap();
    let capture = Capture::default();
    {
        let _guard = tracing::subscriber::set_default(capture.clone());
        TracingSink.write(std::slice::from_ref(&e)).await.unwrap();
    }
    let json_out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let trace_out = format!("{:?}", capture.events());
    for (i, segment) in token.split('.').enumerate() {
        assert!(!json_out.contains(segment), "JSON holds token segment {i}");
        assert!(
            !trace_out.contains(segment),
            "tracing holds token segment {i}"
        );
    }
    idp.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Sinks
// ---------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Fields = BTreeMap<String, String>;

/// A minimal `tracing` subscriber recording every event's target, level and fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(String, tracing::Level, Fields)>>>);

impl Capture {
    fn events(&self) -> Vec<(String, tracing::Level, Fields)> {
        self.0.lock().unwrap().clone()
    }
}

struct Visitor<'a>(&'a mut Fields);

impl tracing::field::Visit for Visitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.to_string());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.to_string());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), fields));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn tracing_sink_emits_one_info_event_with_the_schema_fields() {
    let e = AuditEvent::from_principal(&principal(), AuditOutcome::StepUp, "Training.Submit", "m")
        .with_time(UNIX_EPOCH)
        .with_reason("auth_context_required")
        .with_roles(["Trainer", "Reviewer"])
        .with_claims_request(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#)
        .with_correlation_id("req-7")
        .with_latency(Duration::from_micros(12));
    let capture = Capture::default();
    {
        let _guard = tracing::subscriber::set_default(capture.clone());
        TracingSink::new()
            .write(&[e.clone(), e.clone()])
            .await
            .unwrap();
    }
    let events = capture.events();
    assert_eq!(events.len(), 2);
    let (target, level, fields) = &events[0];
    assert_eq!(target, AUDIT_TARGET);
    assert_eq!(*level, tracing::Level::INFO);
    let expected: Fields = [
        ("message", "authorization audit event"),
        ("schema_version", "2"),
        ("time", "1970-01-01T00:00:00.000Z"),
        ("outcome", "step_up"),
        ("reason", "auth_context_required"),
        ("tenant_id", TENANT),
        ("object_id", OID),
        ("principal_kind", "user"),
        ("guest", "true"),
        ("client_app_id", APP),
        ("action", "Training.Submit"),
        ("resource", "m"),
        ("roles", "Trainer,Reviewer"),
        (
            "claims_request",
            r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#,
        ),
        ("token_id", "AbCdEf0123456789xyzABC"),
        ("correlation_id", "req-7"),
        ("latency_us", "12"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(fields, &expected);
}

#[tokio::test]
async fn json_lines_file_appends_one_event_per_line() {
    let file = TempFile::new("append");
    let sink = JsonLinesSink::file(&file.0).unwrap();
    sink.write(&[event(1), event(2)]).await.unwrap();
    sink.flush().await.unwrap();
    drop(sink);
    // Reopening appends; a torn last line (a crash mid-write) is ended first.
    std::fs::write(&file.0, {
        let mut s = std::fs::read(&file.0).unwrap();
        s.extend_from_slice(b"{\"schema_vers");
        s
    })
    .unwrap();
    let sink = JsonLinesSink::file(&file.0).unwrap();
    sink.write(&[event(3)]).await.unwrap();
    sink.flush().await.unwrap();
    let text = std::fs::read_to_string(&file.0).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(text.ends_with('\n'));
    let parsed: Vec<Option<AuditEvent>> =
        lines.iter().map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(
        parsed,
        [Some(event(1)), Some(event(2)), None, Some(event(3))]
    );
}

// ---------------------------------------------------------------------------------------
// Pipeline
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_records_reach_the_json_lines_file_exactly_once() {
    const TASKS: usize = 100;
    const PER_TASK: usize = 100;
    let file = TempFile::new("concurrent");
    let log = AuditLog::builder(JsonLinesSink::file(&file.0).unwrap())
        .capacity(512)
        .build();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    log.record(event(t * PER_TASK + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    log.shutdown().await;

    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(
        (log.recorded(), log.written(), log.dropped(), log.pending()),
        (total, total, 0, 0)
    );
    assert_eq!(log.sink_failures(), 0);
    let text = std::fs::read_to_string(&file.0).unwrap();
    let mut ids = HashSet::new();
    let mut lines = 0;
    for line in text.lines() {
        let e: AuditEvent = serde_json::from_str(line).expect("every line is one event");
        assert!(ids.insert(e.correlation_id.expect("correlation id")));
        lines += 1;
    }
    assert_eq!(lines, TASKS * PER_TASK);
    let expected: HashSet<String> = (0..TASKS * PER_TASK).map(|i| format!("req-{i}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_sink_failing_three_times_is_retried_and_loses_nothing() {
    let memory = MemorySink::failing(3);
    let (sink, mut gate) = gated(memory.clone());
    let log = fast_retry(AuditLog::builder(sink)).build();
    for i in 0..5 {
        log.record(event(i)).await.unwrap();
    }
    assert!(log.is_healthy());

    gate.next_attempt().await;
    gate.allow(1); // attempt 1 fails
    gate.next_attempt().await; // the worker is retrying: the failure is on record
    assert!(!log.is_healthy());
    assert_eq!(log.sink_failures(), 1);
    gate.allow(2); // attempts 2 and 3 fail
    gate.next_attempt().await;
    assert!(!log.is_healthy());
    assert_eq!(log.sink_failures(), 3);

    gate.open(); // attempt 4 succeeds
    log.flush().await;
    assert!(log.is_healthy());
    assert_eq!(log.sink_failures(), 3);
    assert_eq!(memory.len() as u64, log.recorded());
    assert_eq!((log.recorded(), log.written(), log.dropped()), (5, 5, 0));
    let ids: Vec<_> = memory
        .events()
        .into_iter()
        .map(|e| e.correlation_id.unwrap())
        .collect();
    assert_eq!(ids, ["req-0", "req-1", "req-2", "req-3", "req-4"]);
}

#[tokio::test]
async fn sink_failures_are_reported_without_event_contents() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let memory = MemorySink::failing(2);
    let log = fast_retry(AuditLog::builder(memory.clone())).build();
    log.record(
        event(0)
            .with_correlation_id("corr-do-not-log")
            .with_display_name("Name Do Not Log"),
    )
    .await
    .unwrap();
    log.flush().await;
    assert_eq!(memory.len(), 1);

    let reports: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|(target, ..)| target == AUDIT_HEALTH_TARGET)
        .collect();
    let summary: Vec<_> = reports
        .iter()
        .map(|(_, level, f)| {
            (
                *level,
                f.get("operation").cloned(),
                f.get("events").cloned(),
                f.get("consecutive_failures").or(f.get("failures")).cloned(),
            )
        })
        .collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        summary,
        [
            (tracing::Level::WARN, s("write"), s("1"), s("1")),
            (tracing::Level::WARN, s("write"), s("1"), s("2")),
            (tracing::Level::INFO, None, None, s("2")),
        ]
    );
    assert_eq!(
        reports[0].2["error"],
        "audit sink failed: memory sink: injected failure"
    );
    let all = format!("{:?}", capture.events());
    assert!(!all.contains("do-not-log") && !all.contains("Do Not Log"));
    assert!(!all.contains("models/m0"));
}

#[tokio::test]
async fn wait_mode_with_capacity_one_and_a_slow_sink_applies_backpressure() {
    struct Slow(MemorySink);
    #[async_trait]
    impl AuditSink for Slow {
        async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.0.write(batch).await
        }
    }
    const TASKS: usize = 8;
    const PER_TASK: usize = 25;
    let memory = MemorySink::new();
    let log = AuditLog::builder(Slow(memory.clone()))
        .capacity(1)
        .on_full(OnFull::Wait)
        .build();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    log.record(event(t * 1000 + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    log.flush().await;
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(
        (log.recorded(), log.written(), log.dropped()),
        (total, total, 0)
    );
    let events = memory.events();
    assert_eq!(events.len() as u64, total);
    // One producer's events arrive in the order it recorded them.
    let mut per_task = vec![Vec::new(); TASKS];
    for e in &events {
        let n: usize = e.correlation_id.as_deref().unwrap()[4..].parse().unwrap();
        per_task[n / 1000].push(n % 1000);
    }
    for seen in per_task {
        assert_eq!(seen, (0..PER_TASK).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn drop_mode_with_capacity_one_and_a_blocked_sink_counts_every_drop() {
    let memory = MemorySink::new();
    let (sink, mut gate) = gated(memory.clone());
    let log = AuditLog::builder(sink)
        .capacity(1)
        .on_full(OnFull::Drop)
        .build();
    log.record(event(0)).await.unwrap();
    assert_eq!(gate.next_attempt().await, 1); // the worker holds event 0, blocked
    for i in 1..=100 {
        // Never waits, never fails: the first fills the queue, the rest are dropped.
        log.record(event(i)).await.unwrap();
    }
    assert_eq!(log.recorded(), 101);
    assert_eq!(log.dropped(), 99);

    gate.open();
    log.flush().await;
    assert_eq!(log.written(), memory.len() as u64);
    assert_eq!(log.dropped(), log.recorded() - log.written());
    assert_eq!((log.recorded(), log.written(), log.dropped()), (101, 2, 99));
    let ids: Vec<_> = memory
        .events()
        .into_iter()
        .map(|e| e.correlation_id.unwrap())
        .collect();
    assert_eq!(ids, ["req-0", "req-1"]);
}

#[tokio::test]
async fn a_record_cancelled_while_waiting_for_room_is_counted_as_dropped() {
    use std::future::Future;
    use std::task::{Context, Waker};

    let memory = MemorySink::new();
    let (sink, mut gate) = gated(memory.clone());
    let log = AuditLog::builder(sink).capacity(1).build();
    log.record(event(0)).await.unwrap();
    gate.next_attempt().await; // the worker holds event 0, blocked
    log.record(event(1)).await.unwrap(); // fills the queue

    let mut waiting = Box::pin(log.record(event(2)));
    let pending = waiting
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending();
    assert!(pending, "the queue is full: record waits");
    drop(waiting); // the request was cancelled
    assert_eq!(log.dropped(), 1);

    gate.open();
    log.flush().await;
    assert_eq!(
        (log.recorded(), log.written(), log.dropped(), log.pending()),
        (3, 2, 1, 0)
    );
}

#[tokio::test]
async fn strict_mode_refuses_while_the_sink_fails_and_accepts_after_recovery() {
    let memory = MemorySink::new();
    let log = fast_retry(AuditLog::builder(memory.clone()))
        .strict(true)
        .build();
    assert!(log.is_strict());
    log.record(event(1)).await.unwrap();
    log.flush().await;

    memory.set_failing(true);
    log.record(event(2)).await.unwrap(); // the failure is not known yet
    eventually("the sink failure is noticed", || !log.is_healthy()).await;

    let refused = log.record(event(3)).await.unwrap_err();
    assert!(
        matches!(refused, AuditError::SinkUnhealthy { consecutive_failures } if consecutive_failures >= 1)
    );
    let deny = AuditEvent::new(AuditOutcome::Deny, "Training.Submit", "models/x")
        .with_reason("no_role_grants")
        .with_correlation_id("req-4");
    assert!(matches!(
        log.record(deny).await,
        Err(AuditError::SinkUnhealthy { .. })
    ));

    memory.set_failing(false);
    log.flush().await; // returns once the queued events are written: the sink recovered
    assert!(log.is_healthy());
    log.record(event(5)).await.unwrap();
    log.flush().await;

    assert_eq!((log.recorded(), log.written(), log.dropped()), (5, 5, 0));
    assert!(log.sink_failures() >= 1);
    let events = memory.events();
    let summary: Vec<(&str, AuditOutcome, &str)> = events
        .iter()
        .map(|e| {
            (
                e.correlation_id.as_deref().unwrap(),
                e.outcome,
                e.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("req-1", AuditOutcome::Allow, "role_grant"),
            ("req-2", AuditOutcome::Allow, "role_grant"),
            ("req-3", AuditOutcome::Unavailable, AUDIT_UNAVAILABLE_REASON),
            ("req-4", AuditOutcome::Deny, "no_role_grants"),
            ("req-5", AuditOutcome::Allow, "role_grant"),
        ]
    );
    assert_eq!(
        events[2].explanation.as_deref(),
        Some(
            "would have been allowed (role_grant); refused because the audit trail is unavailable (strict mode)"
        )
    );
}

#[tokio::test]
async fn strict_drop_mode_refuses_when_the_queue_is_full() {
    let memory = MemorySink::new();
    let (sink, mut gate) = gated(memory.clone());
    let log = AuditLog::builder(sink)
        .capacity(1)
        .on_full(OnFull::Drop)
        .strict(true)
        .build();
    log.record(event(0)).await.unwrap();
    gate.next_attempt().await;
    log.record(event(1)).await.unwrap();
    assert_eq!(
        log.record(event(2)).await,
        Err(AuditError::QueueFull { capacity: 1 })
    );
    gate.open();
    log.flush().await;
    assert_eq!((log.recorded(), log.written(), log.dropped()), (3, 2, 1));
}

#[tokio::test]
async fn dropping_the_last_handle_still_delivers_queued_events() {
    let memory = MemorySink::new();
    let (sink, mut gate) = gated(memory.clone());
    let log = AuditLog::builder(sink).build();
    let clone = log.clone();
    for i in 0..50 {
        log.record(event(i)).await.unwrap();
    }
    gate.next_attempt().await; // the worker is blocked with part of the queue
    drop(log);
    drop(clone);
    gate.open();
    tokio::time::timeout(PATIENCE, memory.wait_for_flushes(1))
        .await
        .expect("the worker drains and flushes after the last handle is dropped");
    assert_eq!(memory.len(), 50);
}

#[tokio::test]
async fn shutdown_flushes_then_closes_every_clone() {
    let memory = MemorySink::new();
    let log = AuditLog::builder(memory.clone()).build();
    let clone = log.clone();
    for i in 0..20 {
        log.record(event(i)).await.unwrap();
    }
    log.shutdown().await;
    assert_eq!(memory.len(), 20);
    assert!(memory.flushes() >= 1);
    assert!(!clone.is_healthy());

    assert_eq!(clone.record(event(20)).await, Err(AuditError::Closed));
    clone.flush().await; // returns at once: nothing is pending
    log.shutdown().await; // idempotent
    assert_eq!(
        (log.recorded(), log.written(), log.dropped(), log.pending()),
        (21, 20, 1, 0)
    );
}

#[tokio::test]
async fn a_panicking_sink_is_a_failure_to_retry_not_a_dead_worker() {
    struct PanicsOnce(AtomicBool, MemorySink);
    #[async_trait]
    impl AuditSink for PanicsOnce {
        async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
            if !self.0.swap(true, Ordering::SeqCst) {
                panic!("sink bug");
            }
            self.1.write(batch).await
        }
    }
    let memory = MemorySink::new();
    let log = fast_retry(AuditLog::builder(PanicsOnce(
        AtomicBool::new(false),
        memory.clone(),
    )))
    .build();
    for i in 0..3 {
        log.record(event(i)).await.unwrap();
    }
    log.flush().await;
    assert_eq!(memory.len(), 3);
    assert_eq!(log.sink_failures(), 1);
    assert!(log.is_healthy());
}

#[tokio::test]
async fn a_failing_flush_is_retried_too() {
    struct FlushFailsTwice(AtomicU64, MemorySink);
    #[async_trait]
    impl AuditSink for FlushFailsTwice {
        async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
            self.1.write(batch).await
        }
        async fn flush(&self) -> Result<(), AuditSinkError> {
            if self.0.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(AuditSinkError::other("fsync failed"));
            }
            self.1.flush().await
        }
    }
    let memory = MemorySink::new();
    let log = fast_retry(AuditLog::builder(FlushFailsTwice(
        AtomicU64::new(0),
        memory.clone(),
    )))
    .build();
    log.record(event(0)).await.unwrap();
    log.flush().await;
    assert_eq!(memory.flushes(), 1);
    assert_eq!(log.sink_failures(), 2);
    assert!(log.is_healthy());
}

#[test]
fn handles_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<AuditLog>();
    send_sync::<AuditEvent>();
    send_sync::<AuditError>();
    send_sync::<JsonLinesSink>();
    send_sync::<MemorySink>();
    send_sync::<TracingSink>();
    send_sync::<Arc<dyn AuditSink>>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = rt.block_on(async { AuditLog::builder(MemorySink::new()).build() });
    send(&log.record(event(0)));
    send(&log.flush());
    send(&log.shutdown());
}

#[test]
fn ids_in_events_are_the_typed_newtypes() {
    let e = AuditEvent::from_principal(&principal(), AuditOutcome::Allow, "a", "r");
    assert_eq!(e.tenant_id, Some(TenantId::parse(TENANT).unwrap()));
    assert_eq!(e.object_id, Some(ObjectId::parse(OID).unwrap()));
    assert_eq!(e.principal_kind, Some(PrincipalKind::User));
    assert_eq!(e.client_app_id.as_deref(), Some(APP));
}
