//! The governor's audit trail: one event per authorization, the right fields, nothing
//! lost, and never a token.

use crate::common;

use std::sync::Arc;

use entra_governor::testing::TestIdp;
use entra_governor::{
    AuditLog, AuditOutcome, AuthorizeError, Governor, JsonLinesSink, MemorySink, Policy,
    RequestContext,
};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

fn policy() -> Policy {
    crate::common::example_policy()
}

fn governor(idp: &TestIdp, audit: AuditLog) -> Governor {
    common::builder(idp)
        .policy(policy())
        .audit(audit)
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_authorization_yields_exactly_one_event_with_its_facts() {
    let idp = TestIdp::start().await;
    let sink = MemorySink::new();
    let g = governor(&idp, AuditLog::builder(sink.clone()).build());
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let p = g.verify(&token).await.unwrap();
    let ctx = RequestContext::with_correlation_id("req-1");

    g.authorize_with(&token, "training.submit", "models/exp-1", &ctx)
        .await
        .unwrap();
    g.authorize_with(&token, "models.deploy", "models/prod-1", &ctx)
        .await
        .unwrap();
    let expired = idp.token().expires_in(-3600).sign();
    assert!(matches!(
        g.authorize_with(&expired, "models.read", "models/prod-1", &ctx)
            .await,
        Err(AuthorizeError::InvalidToken(_))
    ));
    g.shutdown().await;

    let events = sink.events();
    assert_eq!(events.len(), 3);
    let allow = &events[0];
    assert_eq!(allow.outcome, AuditOutcome::Allow);
    assert_eq!(allow.reason, "allow");
    assert_eq!(allow.tenant_id.as_ref(), Some(p.tenant()));
    assert_eq!(allow.object_id.as_ref(), Some(p.object_id()));
    assert_eq!(allow.token_id.as_deref(), p.token_id());
    assert_eq!(allow.client_app_id.as_deref(), p.client_app_id());
    assert_eq!(allow.roles, ["data-scientist"]);
    assert_eq!(allow.grant.as_deref(), Some("data-scientist#0"));
    assert_eq!(allow.correlation_id.as_deref(), Some("req-1"));
    assert_eq!(
        allow.policy_version.as_deref(),
        Some(g.policy_version().as_str())
    );
    assert_eq!(allow.display_name, None, "display names are opt-in");
    let deny = &events[1];
    assert_eq!(deny.outcome, AuditOutcome::Deny);
    assert_eq!(deny.reason, "outside_scopes");
    assert!(deny.roles.is_empty());
    let invalid = &events[2];
    assert_eq!(invalid.outcome, AuditOutcome::InvalidToken);
    assert_eq!(invalid.reason, "expired");
    assert_eq!(invalid.tenant_id, None);
}

#[tokio::test]
async fn display_names_only_when_the_operator_opts_in() {
    let idp = TestIdp::start().await;
    let sink = MemorySink::new();
    let g = common::builder(&idp)
        .policy(policy())
        .audit(AuditLog::builder(sink.clone()).build())
        .audit_display_names(true)
        .build()
        .unwrap();
    let token = idp
        .token()
        .claim("name", serde_json::json!("Ada Lovelace"))
        .sign();
    g.authorize(&token, "models.read", "models/prod-1")
        .await
        .unwrap();
    g.shutdown().await;
    assert_eq!(
        sink.events()[0].display_name.as_deref(),
        Some("Ada Lovelace")
    );
}

#[tokio::test]
async fn ten_thousand_concurrent_authorizations_deliver_ten_thousand_events() {
    let idp = TestIdp::start().await;
    let path = std::env::temp_dir().join(format!("eg-audit-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let g = governor(
        &idp,
        AuditLog::builder(JsonLinesSink::file(&path).unwrap())
            .capacity(512)
            .build(),
    );
    // RSA signing is slow in debug builds: ten callers' tokens, a thousand requests each.
    let tokens: Vec<Arc<String>> = (0..10)
        .map(|_| {
            Arc::new(
                idp.token()
                    .scopes("Training.Manage")
                    .groups([DATA_SCIENTISTS])
                    .sign(),
            )
        })
        .collect();
    let tasks: Vec<_> = (0..10_000)
        .map(|i| {
            let (g, t) = (g.clone(), tokens[i % 10].clone());
            tokio::spawn(async move {
                let ctx = RequestContext::with_correlation_id(format!("req-{i}"));
                g.authorize_with(&t, "training.submit", "models/exp-1", &ctx)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_allowed());
    }
    g.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10_000);
    let mut ids = std::collections::HashSet::new();
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        ids.insert(v["correlation_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 10_000);
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        assert!(
            !text.contains(signature) && !text.contains(payload),
            "token text in the audit file"
        );
    }
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn strict_mode_refuses_while_the_trail_is_down_and_loses_nothing() {
    let idp = TestIdp::start().await;
    let sink = MemorySink::new();
    let log = AuditLog::builder(sink.clone()).strict(true).build();
    let g = governor(&idp, log.clone());
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    sink.set_failing(true);
    // The first event fails in the background; wait until the log knows.
    let mut refused = None;
    for _ in 0..200 {
        match g.authorize(&token, "training.submit", "models/exp-1").await {
            Err(e) => {
                refused = Some(e);
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    assert_eq!(refused, Some(AuthorizeError::AuditUnavailable));
    sink.set_failing(false);
    log.flush().await;
    assert!(
        g.authorize(&token, "training.submit", "models/exp-1")
            .await
            .is_ok()
    );
    g.shutdown().await;
    assert_eq!(sink.len() as u64, log.recorded());
    assert_eq!(log.dropped(), 0);
}

/// Captures every tracing event (target, level and all fields) as text.
mod capture {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Clone, Default)]
    pub struct Capture(pub Arc<Mutex<String>>);

    struct Fields<'a>(&'a mut String);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut text = self.0.lock().unwrap();
            span.record(&mut Fields(&mut text));
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            values.record(&mut Fields(&mut self.0.lock().unwrap()));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut text = self.0.lock().unwrap();
            let _ = write!(
                text,
                "\n{} {}",
                event.metadata().level(),
                event.metadata().target()
            );
            event.record(&mut Fields(&mut text));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[tokio::test]
async fn no_token_or_secret_reaches_a_log_line() {
    use entra_governor::TracingSink;
    use entra_governor::testing::{GraphMode, Mode};

    let captured = capture::Capture::default();
    let _guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(captured.clone()));

    let idp = TestIdp::start().await;
    let secret = idp.graph_client_secret();
    let resolver = crate::common::graph_resolver(&idp)
        .max_retries(0)
        .build()
        .unwrap();
    let log = AuditLog::builder(TracingSink::new()).build();
    let g = common::builder(&idp)
        .policy(policy())
        .audit(log)
        .group_resolver(resolver)
        .dangerous_fast_key_refresh()
        .key_refresh_interval(Some(std::time::Duration::from_millis(30)))
        .build()
        .unwrap();
    let good = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let expired = idp.token().expires_in(-3600).sign();
    let forged = idp.token().sign_with_foreign_key().sign();
    let overage = idp.token().scopes("Models.Manage").overage().sign();
    g.authorize(&good, "training.submit", "models/exp-1")
        .await
        .unwrap();
    let _ = g.authorize(&expired, "models.read", "models/prod-1").await;
    let _ = g.authorize(&forged, "models.read", "models/prod-1").await;
    idp.set_graph_mode(GraphMode::Status(500));
    g.authorize(&overage, "datasets.write", "datasets/curated/x")
        .await
        .unwrap();
    idp.set_mode(Mode::Status(500)); // periodic key refreshes now fail and warn
    for _ in 0..400 {
        if captured.0.lock().unwrap().contains("refresh failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    g.shutdown().await;

    let text = captured.0.lock().unwrap().clone();
    assert!(
        text.contains("entra_governor::audit"),
        "audit events were logged: {text}"
    );
    assert!(
        text.contains("group membership unavailable"),
        "the Graph failure was logged"
    );
    assert!(
        text.contains("refresh failed"),
        "the key refresh failure was logged"
    );
    for token in [&good, &expired, &forged, &overage] {
        for part in token.split('.') {
            assert!(!text.contains(part), "a token segment reached a log line");
        }
    }
    assert!(
        !text.contains(&secret),
        "the Graph client secret reached a log line"
    );
    for graph_token in idp.issued_graph_tokens() {
        assert!(
            !text.contains(&graph_token),
            "a Graph token reached a log line"
        );
    }
}

/// A sink that announces each write, then waits until the test opens it: the test decides
/// when the trail makes progress.
struct Stalled {
    inner: MemorySink,
    entered: tokio::sync::mpsc::UnboundedSender<usize>,
    open: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl entra_governor::AuditSink for Stalled {
    async fn write(
        &self,
        batch: &[entra_governor::AuditEvent],
    ) -> Result<(), entra_governor::AuditSinkError> {
        let _ = self.entered.send(batch.len());
        let _permit = self.open.acquire().await.expect("never closed");
        self.inner.write(batch).await
    }
}

/// Fails the test if `what` does not finish within a generous bound: a failure detector,
/// not a performance assertion.
async fn finishes<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 10 s"))
}

#[tokio::test]
async fn a_flood_of_invalid_tokens_against_a_stalled_sink_never_holds_up_decisions() {
    const SIDE: usize = 8;
    const FLOOD: usize = 50;
    let idp = TestIdp::start().await;
    let written = MemorySink::new();
    let (entered, mut entries) = tokio::sync::mpsc::unbounded_channel();
    let open = Arc::new(tokio::sync::Semaphore::new(0));
    let sink = Stalled {
        inner: written.clone(),
        entered,
        open: Arc::clone(&open),
    };
    let log = AuditLog::builder(sink)
        .capacity(4)
        .unauthenticated_capacity(SIDE)
        .build();
    let g = governor(&idp, log.clone());
    g.prefetch_keys().await.unwrap();
    let authorize = |token: String, action: &'static str, resource: &'static str, id| {
        let g = g.clone();
        async move {
            let ctx = RequestContext::with_correlation_id(id);
            g.authorize_with(&token, action, resource, &ctx).await
        }
    };
    let garbage = || "a.b.c".to_owned();

    // The sink takes a first refusal and stalls on it.
    let refused = authorize(garbage(), "models.read", "models/m", "first");
    assert!(matches!(
        finishes("the first refusal", refused).await,
        Err(AuthorizeError::InvalidToken(_))
    ));
    assert_eq!(
        finishes("the sink's first write", entries.recv()).await,
        Some(1)
    );

    for i in 0..FLOOD {
        let refused = authorize(garbage(), "models.read", "models/m", "flood");
        let outcome = finishes(&format!("invalid token {i} of the flood"), refused).await;
        assert!(matches!(outcome, Err(AuthorizeError::InvalidToken(_))));
    }
    let token = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let allow = authorize(token.clone(), "training.submit", "models/exp-1", "allow");
    assert!(
        finishes("the allowed decision", allow)
            .await
            .unwrap()
            .is_allowed()
    );
    let deny = authorize(token, "models.deploy", "models/prod-1", "deny");
    assert!(
        !finishes("the denied decision", deny)
            .await
            .unwrap()
            .is_allowed()
    );
    // Both decisions returned while the refusals before them are still stuck.
    assert_eq!(written.len(), 0);
    assert_eq!(log.dropped_unauthenticated(), (FLOOD - SIDE) as u64);
    assert_eq!(log.dropped(), (FLOOD - SIDE) as u64);

    open.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    finishes("flushing the trail", log.flush()).await;
    let events = written.events();
    let with_id = |id: &str| {
        events
            .iter()
            .filter(|e| e.correlation_id.as_deref() == Some(id))
            .collect::<Vec<_>>()
    };
    assert_eq!(with_id("allow").len(), 1);
    assert_eq!(with_id("allow")[0].outcome, AuditOutcome::Allow);
    assert_eq!(with_id("deny").len(), 1);
    assert_eq!(with_id("deny")[0].outcome, AuditOutcome::Deny);
    assert_eq!(with_id("first").len(), 1);
    assert_eq!(with_id("flood").len(), SIDE);
    let summaries: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == AuditOutcome::Dropped)
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].dropped_events, Some((FLOOD - SIDE) as u64));
    assert_eq!(summaries[0].reason, "unauthenticated_refusals_dropped");
    assert_eq!(events.len(), 1 + SIDE + 2 + 1);
    assert_eq!(log.recorded(), (1 + FLOOD + 2) as u64);
    assert_eq!(log.written(), (1 + SIDE + 2) as u64);
    assert_eq!(log.pending(), 0);
}

/// An event as JSON without the two fields that differ between two requests for the
/// same decision: when it was made and how long it took.
fn without_time(event: &entra_governor::AuditEvent) -> serde_json::Value {
    let mut value = serde_json::to_value(event).unwrap();
    let fields = value.as_object_mut().unwrap();
    assert!(fields.remove("time").is_some() && fields.remove("latency_us").is_some());
    value
}

/// The audit worker builds the events of the adapters' decisions (a caller shared in an
/// `Arc`) from what the request path queued; `authorize_principal` builds them before it
/// returns. Both must write the same event for the same decision: every field, the v2
/// inputs (groups filtered by the live and the shadow policy), display names, the
/// correlation id, and strict mode's rewrite of an allow while the trail is down.
#[tokio::test]
async fn the_worker_builds_exactly_the_event_the_request_path_would() {
    let idp = TestIdp::start().await;
    let sink = MemorySink::new();
    let mut shadow = policy().document().clone();
    shadow.roles.remove("auditor");
    shadow
        .bindings
        .retain(|b| !b.roles.iter().any(|r| r == "auditor"));
    let g = common::builder(&idp)
        .policy(policy())
        .shadow_policy(Policy::from_document(shadow).unwrap())
        .audit_display_names(true)
        .audit(AuditLog::builder(sink.clone()).build())
        .build()
        .unwrap();
    let auditors = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b";
    let unbound = "00000000-0000-4000-8000-000000000001";
    let token = idp
        .token()
        .scopes("Training.Manage Inference.Invoke")
        .groups([DATA_SCIENTISTS, auditors, unbound])
        .claim("name", serde_json::json!("Ada Lovelace"))
        .sign();
    let caller = Arc::new(g.verify(&token).await.unwrap());
    let context = RequestContext::with_correlation_id("req-7").with_trace_parent(
        entra_governor::audit::TraceParent::parse(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap(),
    );
    let requests = [
        ("training.submit", "models/exp-1"),   // allow, data-scientist
        ("training.read", "models/prod-1"),    // allow, auditor (not in the shadow)
        ("models.deploy", "models/prod-1"),    // deny: outside the scopes
        ("datasets.read", "datasets/pii/x"),   // deny: no role grants it
        ("training.submit", "models/../prod"), // deny: invalid resource
        ("no.such.action", "models/exp-1"),    // deny: unknown action
    ];
    for (action, resource) in requests {
        let lazy = g
            .authorize_shared(&caller, action, resource, &context)
            .await
            .unwrap();
        let eager = g
            .authorize_principal(&caller, action, resource, &context)
            .await
            .unwrap();
        let by_token = g
            .authorize_with(&token, action, resource, &context)
            .await
            .unwrap();
        assert_eq!((&lazy, &lazy), (&eager, &by_token), "{action} {resource}");
    }
    g.shutdown().await;

    let events = sink.events();
    assert_eq!(events.len(), 3 * requests.len());
    for (i, triple) in events.chunks(3).enumerate() {
        let (action, resource) = requests[i];
        let shared = without_time(&triple[0]);
        assert_eq!(shared, without_time(&triple[1]), "{action} {resource}");
        assert_eq!(shared, without_time(&triple[2]), "{action} {resource}");
        assert_eq!(triple[0].trace_parent(), context.trace_parent.as_ref());
        assert_eq!(triple[1].trace_parent(), context.trace_parent.as_ref());
    }
    // What the events hold, once: the facts a worker-built event must not lose.
    let allow = &events[0];
    assert_eq!(
        (allow.outcome, allow.reason.as_str(), allow.grant.as_deref()),
        (AuditOutcome::Allow, "allow", Some("data-scientist#0"))
    );
    assert_eq!(allow.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(allow.correlation_id.as_deref(), Some("req-7"));
    let inputs = allow.inputs.as_ref().unwrap();
    let recorded: Vec<&str> = inputs.groups.ids.iter().map(|g| g.as_str()).collect();
    assert_eq!(recorded, [DATA_SCIENTISTS, auditors], "bound groups only");
    assert_eq!(
        inputs.groups.shadow_policy.as_deref(),
        Some(g.shadow_report().policy_version.unwrap().as_str())
    );
    let auditor = &events[3];
    assert_eq!(auditor.grant.as_deref(), Some("auditor#1"));
    assert_eq!(
        auditor.shadow.as_ref().map(|s| s.reason.as_str()),
        Some("no_role_grants"),
        "the shadow decided the worker-built event again"
    );
    let reasons: Vec<&str> = events
        .iter()
        .step_by(3)
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        [
            "allow",
            "allow",
            "outside_scopes",
            "no_role_grants",
            "invalid_resource",
            "unknown_action"
        ]
    );
}
