//! The batch question (`Governor::filter_allowed`, `authorize_each`): the same answers as
//! one decision per resource, the caller checked once, one audit event per item.

use entra_governor::{AuditLog, AuditOutcome, Governor, MemorySink, Policy, RequestContext};

use crate::common;

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

const MODELS: [&str; 6] = [
    "models/exp-42",
    "models/gpt-4o",
    "models/prod-chat",
    "models/staging-7",
    "models/exp-43",
    "models/bad//name",
];

fn example_policy() -> Policy {
    crate::common::example_policy()
}

async fn setup() -> (entra_governor::testing::TestIdp, Governor, MemorySink) {
    let idp = common::example_idp().await;
    let sink = MemorySink::new();
    let g = common::builder(&idp)
        .policy(example_policy())
        .audit(AuditLog::builder(sink.clone()).build())
        .build()
        .unwrap();
    (idp, g, sink)
}

#[tokio::test]
async fn filter_allowed_keeps_exactly_what_single_decisions_allow_and_records_each() {
    let (idp, g, sink) = setup().await;
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let caller = g.verify(&token).await.unwrap();
    let ctx = RequestContext::with_correlation_id("listing-1");
    let allowed = g
        .filter_allowed(&caller, "inference.invoke", &MODELS, &ctx)
        .await
        .unwrap();
    assert_eq!(
        allowed,
        [&"models/exp-42", &"models/prod-chat", &"models/exp-43"]
    );
    let each = g
        .authorize_each(&caller, "inference.invoke", &MODELS, &ctx)
        .await
        .unwrap();
    for (resource, decision) in MODELS.iter().zip(&each) {
        let single = g
            .authorize_principal(&caller, "inference.invoke", resource, &ctx)
            .await
            .unwrap();
        assert_eq!(decision.reason, single.reason, "{resource}");
        assert_eq!(decision.resource, *resource);
    }
    g.shutdown().await;
    let events = sink.events();
    // Two batches of six and six single decisions: one event per item.
    assert_eq!(events.len(), 18);
    let listing: Vec<_> = events[..6]
        .iter()
        .map(|e| (e.resource.as_str(), e.outcome))
        .collect();
    assert_eq!(
        listing,
        [
            ("models/exp-42", AuditOutcome::Allow),
            ("models/gpt-4o", AuditOutcome::Deny),
            ("models/prod-chat", AuditOutcome::Allow),
            ("models/staging-7", AuditOutcome::Deny),
            ("models/exp-43", AuditOutcome::Allow),
            ("models/bad//name", AuditOutcome::Deny),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.correlation_id.as_deref() == Some("listing-1") && e.is_decision())
    );
}

#[tokio::test]
async fn a_caller_revoked_since_gets_one_refusal_for_the_whole_batch() {
    let (idp, g, sink) = setup().await;
    let token = idp
        .token()
        .issued_at(-60)
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let caller = g.verify(&token).await.unwrap();
    g.revoke(caller.id(), std::time::SystemTime::now()).unwrap();
    let err = g
        .filter_allowed(&caller, "inference.invoke", &MODELS, &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            entra_governor::AuthorizeError::InvalidToken(
                entra_governor::TokenError::Revoked { .. }
            )
        ),
        "{err:?}"
    );
    g.shutdown().await;
    let events = sink.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].outcome, AuditOutcome::InvalidToken);
}

#[tokio::test]
async fn an_empty_batch_is_an_empty_answer() {
    let (idp, g, _sink) = setup().await;
    let token = idp.token().scopes("Inference.Invoke").sign();
    let caller = g.verify(&token).await.unwrap();
    let none: [&str; 0] = [];
    let allowed = g
        .filter_allowed(&caller, "inference.invoke", &none, &Default::default())
        .await
        .unwrap();
    assert!(allowed.is_empty());
}
