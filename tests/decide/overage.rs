//! Group overage end to end: an overage token from the look-alike, membership resolved
//! through its Microsoft Graph, decided against `examples/policy.toml`.

use crate::common;

use std::sync::Arc;

use entra_governor::graph::GraphGroupResolver;
use entra_governor::http::Refusal;
use entra_governor::testing::{GraphMode, TestIdp};
use entra_governor::{Governor, GroupId, ObjectId, Policy, Reason};

const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";

fn policy() -> Policy {
    crate::common::example_policy()
}

fn resolver(idp: &TestIdp) -> GraphGroupResolver {
    crate::common::graph_resolver(idp)
        .max_retries(1)
        .build()
        .unwrap()
}

fn governor(idp: &TestIdp) -> Governor {
    common::builder(idp)
        .policy(policy())
        .group_resolver(resolver(idp))
        .build()
        .unwrap()
}

/// 300 groups, ML engineers among them.
fn senior_engineer(idp: &TestIdp) -> ObjectId {
    let oid = ObjectId::parse(&format!(
        "5e410000-0000-4000-8000-{:012x}",
        std::process::id()
    ))
    .unwrap();
    let mut groups: Vec<GroupId> = (0..299)
        .map(|i| GroupId::parse(&format!("77770000-0000-4000-8000-{i:012x}")).unwrap())
        .collect();
    groups.push(ML_ENGINEERS.parse().unwrap());
    idp.set_memberships(&oid, groups);
    oid
}

#[tokio::test]
async fn a_300_group_user_is_resolved_through_graph_once_per_ttl() {
    let idp = TestIdp::start().await;
    let g = governor(&idp);
    let oid = senior_engineer(&idp);
    let token = idp
        .token()
        .oid(oid)
        .scopes("Models.Manage")
        .overage()
        .sign();
    let d = g
        .authorize(&token, "datasets.write", "datasets/curated/x")
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");
    assert_eq!(d.matched[0].binding, "group:ml-engineers");
    // The policy binds six groups: one checkMemberGroups call (batches of 20).
    assert_eq!(idp.check_member_groups_requests(), 1);
    assert_eq!(idp.get_member_objects_requests(), 0);
    for _ in 0..5 {
        assert!(
            g.authorize(&token, "datasets.write", "datasets/curated/x")
                .await
                .unwrap()
                .is_allowed()
        );
    }
    assert_eq!(
        idp.check_member_groups_requests(),
        1,
        "cached per (tid, oid)"
    );
    assert_eq!(idp.graph_token_requests(), 1);
}

#[tokio::test]
async fn fifty_concurrent_requests_of_one_overage_user_make_one_graph_call() {
    let idp = TestIdp::start().await;
    let g = governor(&idp);
    let oid = senior_engineer(&idp);
    let token = Arc::new(
        idp.token()
            .oid(oid)
            .scopes("Models.Manage")
            .overage()
            .sign(),
    );
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (g, t) = (g.clone(), token.clone());
            tokio::spawn(async move {
                g.authorize(&t, "datasets.write", "datasets/curated/x")
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_allowed());
    }
    assert_eq!(idp.check_member_groups_requests(), 1);
}

#[tokio::test]
async fn graph_429_then_success_is_resolved() {
    let idp = TestIdp::start().await;
    let g = governor(&idp);
    let oid = senior_engineer(&idp);
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 1,
        times: 1,
    });
    let token = idp
        .token()
        .oid(oid)
        .scopes("Models.Manage")
        .overage()
        .sign();
    assert!(
        g.authorize(&token, "datasets.write", "datasets/curated/x")
            .await
            .unwrap()
            .is_allowed()
    );
    assert_eq!(idp.check_member_groups_requests(), 2);
}

#[tokio::test]
async fn graph_down_gives_the_distinct_reason_and_503() {
    let idp = TestIdp::start().await;
    let g = governor(&idp);
    let oid = senior_engineer(&idp);
    idp.set_graph_mode(GraphMode::Status(500));
    let token = idp
        .token()
        .oid(oid)
        .scopes("Models.Manage")
        .overage()
        .sign();
    let d = g
        .authorize(&token, "datasets.write", "datasets/curated/x")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::GroupMembershipUnavailable);
    let refusal = Refusal::from_decision(&d, g.cloud()).unwrap();
    assert_eq!((refusal.status, refusal.retry_after), (503, Some(5)));
    // Without a resolver, an overage token is never "member of nothing" either; nothing
    // will ever resolve it, so it is a 403 naming the fix, not a 503 to retry.
    let plain = common::builder(&idp).policy(policy()).build().unwrap();
    let d = plain
        .authorize(&token, "datasets.write", "datasets/curated/x")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::GroupMembershipUnknown { overage: true });
    let refusal = Refusal::from_decision(&d, plain.cloud()).unwrap();
    assert_eq!((refusal.status, refusal.retry_after), (403, None));
}

#[tokio::test]
async fn guests_are_denied_by_default_and_admitted_where_bound() {
    let idp = TestIdp::start().await;
    let g = governor(&idp);
    let home = idp.add_tenant();
    let guest_engineer = idp
        .token()
        .scopes("Models.Manage")
        .guest(home.clone())
        .groups([ML_ENGINEERS])
        .sign();
    let d = g
        .authorize(&guest_engineer, "datasets.write", "datasets/curated/x")
        .await
        .unwrap();
    assert_eq!(
        d.reason,
        Reason::NoRoleGrants,
        "the ml-engineers binding does not admit guests"
    );
    let researcher = idp
        .token()
        .scopes("Training.Manage")
        .guest(home)
        .groups([EXTERNAL_RESEARCHERS])
        .sign();
    let d = g
        .authorize(&researcher, "training.submit", "models/exp-1")
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");
}

#[tokio::test]
async fn app_tokens_do_not_satisfy_user_bindings_and_vice_versa() {
    let idp = common::example_idp().await;
    let g = governor(&idp);
    // Platform.Auditor is bound as a user app role: an app permission of that name is not it.
    let app = idp.token().app_only().roles(["Platform.Auditor"]).sign();
    let d = g.authorize(&app, "audit.read", "audit/2026").await.unwrap();
    assert_eq!(d.reason, Reason::NoRoleGrants);
    let user = idp
        .token()
        .scopes("Audit.Read")
        .roles(["Platform.Auditor"])
        .groups(Vec::<String>::new())
        .sign();
    assert!(
        g.authorize(&user, "audit.read", "audit/2026")
            .await
            .unwrap()
            .is_allowed()
    );
    // Inference.Client is bound as an app permission: a user app role of that name is not it.
    let user = idp
        .token()
        .scopes("Inference.Invoke")
        .roles(["Inference.Client"])
        .groups(Vec::<String>::new())
        .sign();
    let d = g
        .authorize(&user, "inference.invoke", "endpoints/chat-prod")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::NoRoleGrants);
    let app = idp.token().app_only().roles(["Inference.Client"]).sign();
    assert!(
        g.authorize(&app, "inference.invoke", "endpoints/chat-prod")
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn group_less_users_cost_no_graph_call_when_the_registration_emits_groups() {
    let idp = TestIdp::start().await;
    let no_groups_claim = |i: u32| {
        let oid = ObjectId::parse(&format!("6a000000-0000-4000-8000-{i:012x}")).unwrap();
        idp.set_memberships(&oid, Vec::new()); // Graph knows them: in no group
        idp.token().oid(oid).scopes("Inference.Invoke").sign()
    };
    // Without the setting, a missing claim is unknown membership: one Graph call per user.
    let asks = governor(&idp);
    for i in 0..3 {
        let d = asks
            .authorize(
                &no_groups_claim(i),
                "inference.invoke",
                "endpoints/chat-prod",
            )
            .await
            .unwrap();
        assert_eq!(d.reason, Reason::NoRoleGrants, "{d}");
    }
    assert_eq!(idp.check_member_groups_requests(), 3);
    // With it, a missing claim is "no groups": decided at once, Graph never asked.
    let emits = common::builder(&idp)
        .policy(policy())
        .group_resolver(resolver(&idp))
        .groups_claim_emitted(true)
        .build()
        .unwrap();
    for i in 10..13 {
        let d = emits
            .authorize(
                &no_groups_claim(i),
                "inference.invoke",
                "endpoints/chat-prod",
            )
            .await
            .unwrap();
        assert_eq!(d.reason, Reason::NoRoleGrants, "{d}");
    }
    assert_eq!(idp.check_member_groups_requests(), 3);
    // An overage marker still resolves through Graph.
    let overage = idp.token().scopes("Inference.Invoke").overage().sign();
    emits
        .authorize(&overage, "inference.invoke", "endpoints/chat-prod")
        .await
        .unwrap();
    assert_eq!(idp.check_member_groups_requests(), 4);
}
