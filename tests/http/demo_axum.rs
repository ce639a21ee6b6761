//! `cargo run --example ai_platform --features axum` prints `curl` commands with the
//! status each gets: this starts that demo (the example's own `app` and demo set-up) on a
//! loopback port and sends every printed command.

#[allow(dead_code)] // only `app` and the platform module are used here
#[path = "../../examples/ai_platform.rs"]
mod ai_platform;
use crate::example_demo;

use ai_platform::platform::{self, TRIES};
use example_demo::Sent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_printed_command_gets_the_printed_status() {
    let listener = platform::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let demo = platform::demo(listener).await.unwrap();
    let idp = demo.idp.expect("the demo's look-alike");
    let base = format!("http://{}", demo.listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::from_std(demo.listener).unwrap();
    let app = ai_platform::app(demo.governor, demo.audit);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tokens = platform::persona_tokens(&idp);
    let sent = TRIES
        .iter()
        .map(|t| Sent {
            what: t.what,
            method: t.method,
            path: t.path,
            body: t.body,
            token: t.persona.map(|var| {
                let (_, token) = tokens
                    .iter()
                    .find(|(p, _)| p.var == var)
                    .expect("a persona");
                token.clone()
            }),
            status: t.status,
        })
        .collect();
    example_demo::check_every_printed_command(&base, sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_routes_revoke_and_report_and_refuse_everyone_else() {
    let listener = platform::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let demo = platform::demo(listener).await.unwrap();
    let idp = demo.idp.expect("the demo's look-alike");
    let base = format!("http://{}", demo.listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::from_std(demo.listener).unwrap();
    let app = ai_platform::app(demo.governor, demo.audit);
    tokio::spawn(async move { axum::serve(listener, app).await });
    crate::admin::check_admin_routes(&base, &idp).await;
}

/// The governance loop over the demo's own trail: every printed command is sent, then the
/// trail is replayed (the live policy reproduces it; a candidate without the `auditor`
/// role refuses exactly the auditor's allows) and reviewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_trail_replays_exactly_and_its_review_keeps_every_allow() {
    use entra_governor::governance::replay::replay_file;
    use entra_governor::governance::review::{ReviewOptions, review_file};

    let listener = platform::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let demo = platform::demo(listener).await.unwrap();
    let idp = demo.idp.expect("the demo's look-alike");
    let governor = demo.governor.clone();
    let trail = demo.audit.path().to_owned();
    let base = format!("http://{}", demo.listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::from_std(demo.listener).unwrap();
    let app = ai_platform::app(demo.governor, demo.audit);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tokens = platform::persona_tokens(&idp);
    let sent = TRIES
        .iter()
        .map(|t| Sent {
            what: t.what,
            method: t.method,
            path: t.path,
            body: t.body,
            token: t.persona.map(|var| {
                let (_, token) = tokens
                    .iter()
                    .find(|(p, _)| p.var == var)
                    .expect("a persona");
                token.clone()
            }),
            status: t.status,
        })
        .collect();
    example_demo::check_every_printed_command(&base, sent).await;
    governor.shutdown().await;

    let events: Vec<entra_governor::AuditEvent> = std::fs::read_to_string(&trail)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions = events.iter().filter(|e| e.inputs.is_some()).count() as u64;
    let auditor_allows = events
        .iter()
        .filter(|e| {
            e.grant
                .as_deref()
                .is_some_and(|g| g.starts_with("auditor#"))
        })
        .count() as u64;
    assert!(
        decisions >= 10 && auditor_allows >= 1,
        "{decisions} {auditor_allows}"
    );

    let live = entra_governor::Policy::from_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/policy.toml"
    ))
    .unwrap();
    let same = replay_file(&live, &trail).unwrap().totals;
    assert_eq!(
        (same.decisions, same.changed, same.inexact),
        (decisions, 0, 0)
    );

    let mut doc = live.document().clone();
    doc.roles.remove("auditor");
    doc.bindings
        .retain(|b| !b.roles.iter().any(|r| r == "auditor"));
    let candidate = entra_governor::Policy::from_document(doc).unwrap();
    let report = replay_file(&candidate, &trail).unwrap();
    let t = &report.totals;
    assert_eq!(
        (t.decisions, t.changed, t.allow_to_deny, t.deny_to_allow),
        (decisions, auditor_allows, auditor_allows, 0)
    );
    assert!(
        report
            .changes
            .iter()
            .all(|c| c.cause.starts_with("grant:auditor#")),
        "{:?}",
        report.changes
    );

    let review = review_file(&live, &trail, ReviewOptions::default()).unwrap();
    assert!(!review.unused.grants.is_empty());
    for unused in &review.unused.grants {
        assert!(
            !events
                .iter()
                .any(|e| e.grant.as_deref() == Some(unused.grant.as_str())),
            "{} allowed something",
            unused.grant
        );
    }
    assert!(
        review.suggestion.loads,
        "{:?}",
        review.suggestion.load_error
    );
    let kept = review.suggestion.replay.as_ref().unwrap();
    assert_eq!((kept.decisions, kept.allow_to_deny), (decisions, 0));
    let _ = std::fs::remove_file(&trail);
}
