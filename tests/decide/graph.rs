//! Group overage resolution through Microsoft Graph, over real loopback HTTP against the
//! TestIdp's Graph look-alike.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use entra_governor::graph::{
    ClientCredential, GraphGroupResolver, GraphGroupResolverBuilder, GroupResolutionError,
    GroupResolver, MAX_GRAPH_RETRY_AFTER,
};
use entra_governor::testing::{GraphMode, GraphTokenMode, TestIdp};
use entra_governor::{GroupId, ObjectId, Principal, PrincipalKind, TenantId, TokenGroups};

fn resolver_for(idp: &TestIdp, credential: ClientCredential) -> GraphGroupResolverBuilder {
    crate::common::graph_resolver_with(idp, credential)
}

fn graph_resolver(idp: &TestIdp) -> GraphGroupResolverBuilder {
    resolver_for(idp, ClientCredential::secret(idp.graph_client_secret()))
}

/// Group `i`: distinct, valid group ids.
fn group(i: usize) -> GroupId {
    GroupId::parse(&format!("9a0b0c0d-0000-4000-8000-{i:012x}")).unwrap()
}

fn groups(range: std::ops::Range<usize>) -> Vec<GroupId> {
    range.map(group).collect()
}

fn new_oid() -> ObjectId {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    ObjectId::parse(&format!("0bec7000-0000-4000-8000-{n:012x}")).unwrap()
}

/// An overage principal of `tenant`, its token valid for `lifetime` seconds.
fn principal(tenant: TenantId, kind: PrincipalKind, lifetime: u64) -> Principal {
    Principal::builder(tenant, new_oid())
        .kind(kind)
        .groups(TokenGroups::Overage)
        .expires_at(SystemTime::now() + std::time::Duration::from_secs(lifetime))
        .build()
}

fn user(idp: &TestIdp) -> Principal {
    principal(idp.tenant_id(), PrincipalKind::User, 3600)
}

/// The Graph paths that name this principal's object.
fn paths_of(idp: &TestIdp, p: &Principal) -> Vec<String> {
    idp.graph_paths()
        .into_iter()
        .filter(|path| path.contains(p.object_id().as_str()))
        .collect()
}

#[tokio::test]
async fn an_overage_user_is_asked_only_about_the_candidates_20_at_a_time_then_cached() {
    let (idp, governor) = common::setup().await;
    let resolver = graph_resolver(&idp).build().unwrap();

    // A real overage token, verified: the groups are not in it.
    let token = idp.token().overage().sign();
    let user = governor.verify(&token).await.unwrap();
    assert_eq!(user.groups(), &TokenGroups::Overage);
    let memberships = groups(0..300);
    idp.set_memberships(user.object_id(), memberships);

    // 45 candidates: 30 the user is in (every tenth of the 300), 15 it is not.
    let mut candidates: Vec<GroupId> = (0..30).map(|i| group(i * 10)).collect();
    candidates.extend(groups(1000..1015));
    candidates.rotate_left(7); // members and non-members interleaved across batches
    let expected: Vec<GroupId> = candidates
        .iter()
        .filter(|g| (0..300).any(|i| group(i) == **g))
        .cloned()
        .collect();
    assert_eq!(expected.len(), 30);

    let member_of = resolver.resolve(&user, &candidates).await.unwrap();
    assert_eq!(member_of, expected);
    assert_eq!(idp.check_member_groups_requests(), 3); // 20 + 20 + 5
    assert_eq!(idp.get_member_objects_requests(), 0);
    assert_eq!(resolver.graph_calls(), 3);
    assert_eq!(
        (resolver.token_requests(), idp.graph_token_requests()),
        (1, 1)
    );
    let path = format!("/v1.0/users/{}/checkMemberGroups", user.object_id());
    assert_eq!(idp.graph_paths(), vec![path.clone(), path.clone(), path]);

    // Within the TTL: answered from the cache, duplicates ignored, no Graph call.
    let mut again = candidates.clone();
    again.push(candidates[0].clone());
    assert_eq!(resolver.resolve(&user, &again).await.unwrap(), expected);
    assert_eq!(idp.check_member_groups_requests(), 3);
    assert_eq!(resolver.graph_calls(), 3);
    assert_eq!(resolver.cache_hits(), 1);

    // A subset of what is cached is a hit too; nothing to ask is no call at all.
    assert_eq!(
        resolver.resolve(&user, &candidates[..3]).await.unwrap(),
        expected
            .iter()
            .filter(|g| candidates[..3].contains(g))
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(resolver.resolve(&user, &[]).await.unwrap(), vec![]);
    assert_eq!(resolver.graph_calls(), 3);
    assert_eq!(resolver.cache_hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resolves_of_one_principal_make_one_batch_of_calls() {
    let idp = TestIdp::start().await;
    let resolver = Arc::new(graph_resolver(&idp).build().unwrap());
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..300));
    // Slow answers keep the first lookup in flight while the others arrive.
    idp.set_graph_mode(GraphMode::Slow(Duration::from_millis(300)));
    let candidates = groups(290..315); // 25 candidates: 2 calls, 10 members

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (resolver, user, candidates) = (resolver.clone(), user.clone(), candidates.clone());
            tokio::spawn(async move { resolver.resolve(&user, &candidates).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), groups(290..300));
    }
    assert_eq!(idp.check_member_groups_requests(), 2);
    assert_eq!(resolver.graph_calls(), 2);
    assert_eq!(idp.graph_token_requests(), 1);
    assert_eq!(resolver.cache_hits(), 49);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..5));
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 1,
        times: 1,
    });
    let member_of = resolver.resolve(&user, &groups(3..8)).await.unwrap();
    assert_eq!(member_of, groups(3..5));
    assert_eq!(idp.check_member_groups_requests(), 2);
}

#[tokio::test]
async fn a_429_storm_ends_in_throttled_with_bounded_calls() {
    let idp = TestIdp::start().await;
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..5));

    // Retry-After beyond the budget: no waiting at all.
    let resolver = graph_resolver(&idp)
        .time_budget(Duration::from_secs(2))
        .build()
        .unwrap();
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 30,
        times: 1000,
    });
    let error = resolver.resolve(&user, &groups(0..3)).await.unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Throttled {
            retry_after_secs: 30
        }
    );
    assert_eq!(error.decision_reason(), "group membership unavailable");
    assert_eq!(idp.check_member_groups_requests(), 1);

    // Short Retry-After: waited out, but at most `max_retries` times.
    idp.reset_counters();
    let resolver = patient_resolver(&idp, 2);
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 1,
        times: 1000,
    });
    let error = resolver.resolve(&user, &groups(0..3)).await.unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Throttled {
            retry_after_secs: 1
        }
    );
    assert_eq!(idp.check_member_groups_requests(), 3);
}

#[tokio::test]
async fn a_huge_retry_after_from_graph_or_the_token_endpoint_is_clamped_not_a_panic() {
    assert_eq!(MAX_GRAPH_RETRY_AFTER, Duration::from_secs(300));
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..5));
    let throttled = GroupResolutionError::Throttled {
        retry_after_secs: 300,
    };

    // Graph: `Retry-After: 18446744073709551615` ends as throttled for 5 minutes.
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: u64::MAX,
        times: 1,
    });
    assert_eq!(
        resolver.resolve(&user, &groups(0..3)).await.unwrap_err(),
        throttled
    );
    assert_eq!(idp.check_member_groups_requests(), 1);

    // The token endpoint of another tenant: the same.
    let other = principal(idp.add_tenant(), PrincipalKind::User, 3600);
    idp.set_memberships(other.object_id(), groups(0..5));
    idp.set_graph_token_mode(GraphTokenMode::TooManyRequests {
        retry_after_secs: u64::MAX,
        times: 1,
    });
    assert_eq!(
        resolver.resolve(&other, &groups(0..3)).await.unwrap_err(),
        throttled
    );
    assert_eq!(idp.graph_token_requests(), 2);
    assert_eq!(idp.check_member_groups_requests(), 1);
}

#[tokio::test]
async fn a_huge_expires_in_is_clamped_not_a_panic() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let users: Vec<Principal> = (0..2).map(|_| user(&idp)).collect();
    for u in &users {
        idp.set_memberships(u.object_id(), groups(0..5));
    }
    idp.set_graph_token_mode(GraphTokenMode::ExpiresIn(u64::MAX));
    for u in &users {
        assert_eq!(
            resolver.resolve(u, &groups(3..8)).await.unwrap(),
            groups(3..5)
        );
    }
    // The token was kept (for at most 24 h) and used for both users.
    assert_eq!(
        (
            idp.graph_token_requests(),
            idp.check_member_groups_requests()
        ),
        (1, 2)
    );
}

fn patient_resolver(idp: &TestIdp, retries: u32) -> GraphGroupResolver {
    graph_resolver(idp)
        .max_retries(retries)
        .time_budget(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn server_errors_are_retried_max_retries_times_then_unavailable() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).max_retries(3).build().unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..5));
    idp.set_graph_mode(GraphMode::Status(500));

    let error = resolver.resolve(&user, &groups(0..3)).await.unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unavailable {
            reason: "Microsoft Graph answered HTTP 500 (4 attempts)".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "group membership unavailable: Microsoft Graph answered HTTP 500 (4 attempts)"
    );
    assert_eq!(idp.check_member_groups_requests(), 4);
    assert_eq!(resolver.graph_calls(), 4);
}

#[tokio::test]
async fn graph_refusals_and_unknown_objects_are_typed_errors() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let user = user(&idp);

    // No such object in the directory.
    let error = resolver.resolve(&user, &groups(0..1)).await.unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::NotFound {
            kind: "user",
            tenant: idp.tenant_id(),
            object: user.object_id().clone(),
        }
    );

    // The application permissions were not granted: 403, not retried. (Another user: the
    // first one's NotFound is remembered for a while.)
    let user = self::user(&idp);
    idp.set_memberships(user.object_id(), groups(0..5));
    idp.set_graph_mode(GraphMode::Status(403));
    let error = resolver.resolve(&user, &groups(0..1)).await.unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unauthorized {
            service: "Microsoft Graph",
            status: 403,
            code: "generalException".into(),
        }
    );
    assert_eq!(idp.check_member_groups_requests(), 2);
}

#[tokio::test]
async fn graph_down_is_unavailable() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).max_retries(1).build().unwrap();
    let (warm, cold) = (user(&idp), user(&idp));
    idp.set_memberships(warm.object_id(), groups(0..5));
    idp.set_memberships(cold.object_id(), groups(0..5));
    resolver.resolve(&warm, &groups(0..1)).await.unwrap();

    idp.shutdown().await;
    // With a cached Graph token (Graph itself is down) …
    let error = resolver.resolve(&cold, &groups(0..1)).await.unwrap_err();
    assert!(
        matches!(&error, GroupResolutionError::Unavailable { reason }
            if reason.contains("could not connect") && reason.ends_with("(2 attempts)")),
        "{error:?}"
    );
    // … and without one (the token endpoint is down too).
    let fresh = graph_resolver(&idp).max_retries(0).build().unwrap();
    let error = fresh.resolve(&cold, &groups(0..1)).await.unwrap_err();
    assert!(
        matches!(&error, GroupResolutionError::Unavailable { reason } if reason.contains("could not connect")),
        "{error:?}"
    );
    assert_eq!(error.decision_reason(), "group membership unavailable");
    // The cached answer of the warm principal is still served.
    assert_eq!(
        resolver.resolve(&warm, &groups(0..1)).await.unwrap(),
        groups(0..1)
    );
}

#[tokio::test]
async fn app_only_callers_are_resolved_as_service_principals() {
    let (idp, governor) = common::setup().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let token = idp
        .token()
        .app_only()
        .roles(["Model.Train"])
        .overage()
        .sign();
    let app = governor.verify(&token).await.unwrap();
    assert_eq!(app.kind(), PrincipalKind::Application);
    idp.set_memberships(app.object_id(), groups(0..3));

    assert_eq!(
        resolver.resolve(&app, &groups(2..4)).await.unwrap(),
        groups(2..3)
    );
    assert_eq!(
        idp.graph_paths(),
        vec![format!(
            "/v1.0/servicePrincipals/{}/checkMemberGroups",
            app.object_id()
        )]
    );
}

#[tokio::test]
async fn get_member_objects_when_configured_follows_every_page() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp)
        .use_get_member_objects(true)
        .build()
        .unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..250));

    let candidates = vec![group(5), group(150), group(777), group(249)];
    assert_eq!(
        resolver.resolve(&user, &candidates).await.unwrap(),
        vec![group(5), group(150), group(249)]
    );
    assert_eq!(idp.get_member_objects_requests(), 3);
    assert_eq!(idp.check_member_groups_requests(), 0);
    let base = format!("/v1.0/users/{}/getMemberObjects", user.object_id());
    assert_eq!(
        idp.graph_paths(),
        vec![
            base.clone(),
            format!("{base}?$skiptoken=100"),
            format!("{base}?$skiptoken=200")
        ]
    );
    // Cached like checkMemberGroups answers.
    resolver.resolve(&user, &candidates).await.unwrap();
    assert_eq!(idp.get_member_objects_requests(), 3);
}

#[tokio::test]
async fn graph_tokens_are_cached_per_tenant() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let other_tenant = idp.add_tenant();
    let (a, b) = (user(&idp), user(&idp));
    let foreign = principal(other_tenant, PrincipalKind::User, 3600);
    for p in [&a, &b, &foreign] {
        idp.set_memberships(p.object_id(), groups(0..2));
    }

    resolver.resolve(&a, &groups(0..1)).await.unwrap();
    resolver.resolve(&b, &groups(0..1)).await.unwrap();
    assert_eq!(
        (resolver.token_requests(), idp.graph_token_requests()),
        (1, 1)
    );
    // A principal of another tenant needs a token of its own tenant.
    resolver.resolve(&foreign, &groups(0..1)).await.unwrap();
    assert_eq!(idp.graph_token_requests(), 2);
    assert_eq!(idp.check_member_groups_requests(), 3);
}

#[tokio::test]
async fn a_graph_token_is_replaced_shortly_before_it_expires_or_when_refused() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let users: Vec<Principal> = (0..3).map(|_| user(&idp)).collect();
    for u in &users {
        idp.set_memberships(u.object_id(), groups(0..2));
    }

    // A 2 s token is kept for half its life.
    idp.set_graph_token_lifetime(Duration::from_secs(2));
    resolver.resolve(&users[0], &groups(0..1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    resolver.resolve(&users[1], &groups(0..1)).await.unwrap();
    assert_eq!(idp.graph_token_requests(), 2);

    // A token Graph refuses (401) is replaced once, and the call repeated.
    idp.set_graph_token_lifetime(Duration::from_secs(3599));
    idp.revoke_graph_tokens();
    resolver.resolve(&users[2], &groups(0..1)).await.unwrap();
    assert_eq!(idp.graph_token_requests(), 3);
    assert_eq!(paths_of(&idp, &users[2]).len(), 2);
}

#[tokio::test]
async fn prefetch_token_checks_the_credential_at_start_up() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    resolver.prefetch_token().await.unwrap();
    resolver.prefetch_token().await.unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..2));
    resolver.resolve(&user, &groups(0..1)).await.unwrap();
    assert_eq!(idp.graph_token_requests(), 1);

    let wrong = resolver_for(&idp, ClientCredential::secret("not-the-secret"))
        .build()
        .unwrap();
    assert!(matches!(
        wrong.prefetch_token().await,
        Err(GroupResolutionError::Unauthorized { status: 401, .. })
    ));
}

#[tokio::test]
async fn a_wrong_secret_is_unauthorized_and_never_shown() {
    let idp = TestIdp::start().await;
    let wrong = "Wr0ng~secret-value-that-must-not-leak_0123";
    let resolver = resolver_for(&idp, ClientCredential::secret(wrong))
        .build()
        .unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..2));

    let error = resolver.resolve(&user, &groups(0..1)).await.unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unauthorized {
            service: "the token endpoint",
            status: 401,
            code: "invalid_client (AADSTS7000215)".into(),
        }
    );
    assert_eq!(idp.graph_token_requests(), 1); // a refusal is not retried
    assert_eq!(idp.check_member_groups_requests(), 0);
    let shown = format!("{error} {error:?} {resolver:?} {resolver:#?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!shown.contains(&idp.graph_client_secret()), "{shown}");
}

#[tokio::test]
async fn neither_the_secret_nor_a_graph_token_appears_in_debug_or_errors() {
    let idp = TestIdp::start().await;
    let secret = idp.graph_client_secret();
    let resolver = graph_resolver(&idp).build().unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..2));
    resolver.resolve(&user, &groups(0..1)).await.unwrap();
    idp.set_graph_mode(GraphMode::Status(503));
    let error = resolver.resolve(&user, &groups(5..6)).await.unwrap_err();

    let issued = idp.issued_graph_tokens();
    assert_eq!(issued.len(), 1);
    let shown = format!("{resolver:?} {resolver:#?} {error} {error:?}");
    assert!(!shown.contains(&secret), "{shown}");
    assert!(!shown.contains(&issued[0]), "{shown}");
}

#[tokio::test]
async fn a_certificate_credential_signs_in_with_a_client_assertion() {
    let idp = TestIdp::start().await;
    let (key, certificate) = idp.graph_client_certificate();
    let credential = ClientCredential::certificate(&key, &certificate).unwrap();
    let resolver = resolver_for(&idp, credential).build().unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..2));
    assert_eq!(
        resolver.resolve(&user, &groups(1..3)).await.unwrap(),
        groups(1..2)
    );
    assert_eq!(idp.graph_token_requests(), 1);

    // The same key under another certificate is not registered.
    let credential = ClientCredential::certificate(&key, b"another certificate").unwrap();
    let stranger = resolver_for(&idp, credential).build().unwrap();
    let error = stranger.resolve(&user, &groups(1..3)).await.unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unauthorized {
            service: "the token endpoint",
            status: 401,
            code: "invalid_client (AADSTS700027)".into(),
        }
    );
    let shown = format!("{stranger:?}");
    assert!(shown.contains("x5t#S256"), "{shown}");
}

#[tokio::test]
async fn a_cached_membership_never_outlives_the_callers_token_nor_the_ttl() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let short = principal(idp.tenant_id(), PrincipalKind::User, 1);
    let long = user(&idp);
    for p in [&short, &long] {
        idp.set_memberships(p.object_id(), groups(0..2));
    }
    let short_ttl = graph_resolver(&idp)
        .cache_ttl(Duration::from_secs(1))
        .build()
        .unwrap();

    resolver.resolve(&short, &groups(0..1)).await.unwrap();
    resolver.resolve(&long, &groups(0..1)).await.unwrap();
    short_ttl.resolve(&long, &groups(0..1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    resolver.resolve(&short, &groups(0..1)).await.unwrap();
    resolver.resolve(&long, &groups(0..1)).await.unwrap();
    short_ttl.resolve(&long, &groups(0..1)).await.unwrap();

    // The short-lived token's entry expired with it; the long one's did not, except in
    // the resolver configured with a 1 s TTL.
    assert_eq!(paths_of(&idp, &short).len(), 2);
    assert_eq!(paths_of(&idp, &long).len(), 3);
    assert_eq!(resolver.cache_hits(), 1);
    assert_eq!(short_ttl.cache_hits(), 0);
}

#[tokio::test]
async fn a_new_set_of_candidates_replaces_the_cached_answer() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp).build().unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..10));

    assert_eq!(
        resolver
            .resolve(&user, &[group(1), group(50)])
            .await
            .unwrap(),
        vec![group(1)]
    );
    // The policy now binds another group: asked together with the known ones, once.
    assert_eq!(
        resolver.resolve(&user, &[group(2)]).await.unwrap(),
        vec![group(2)]
    );
    assert_eq!(idp.check_member_groups_requests(), 2);
    assert_eq!(
        resolver
            .resolve(&user, &[group(50), group(2), group(1)])
            .await
            .unwrap(),
        vec![group(2), group(1)]
    );
    assert_eq!(idp.check_member_groups_requests(), 2);
    assert_eq!(resolver.cache_hits(), 1);
}

#[tokio::test]
async fn a_slow_graph_is_cut_off_by_the_time_budget() {
    let idp = TestIdp::start().await;
    let budget = Duration::from_millis(500);
    let resolver = graph_resolver(&idp).time_budget(budget).build().unwrap();
    let user = user(&idp);
    idp.set_memberships(user.object_id(), groups(0..2));
    idp.set_graph_mode(GraphMode::Slow(Duration::from_secs(3)));
    let error = resolver.resolve(&user, &groups(0..1)).await.unwrap_err();
    assert_eq!(error, GroupResolutionError::BudgetExceeded { budget });
    assert_eq!(idp.check_member_groups_requests(), 1);
}

// --- Remembered failures and throttling ------------------------------------------------------

/// A resolver that never retries and remembers failures for 60 s: long enough that every
/// "within the window" step of a test falls inside it on any machine.
fn remembering_resolver(idp: &TestIdp) -> GraphGroupResolver {
    graph_resolver(idp)
        .max_retries(0)
        .time_budget(Duration::from_secs(1))
        .failure_ttl(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_lookup_is_remembered_for_its_principal_one_graph_call_in_all() {
    let idp = TestIdp::start().await;
    let resolver = Arc::new(remembering_resolver(&idp));
    let (unknown, known) = (user(&idp), user(&idp));
    idp.set_memberships(known.object_id(), groups(0..5));
    let not_found = GroupResolutionError::NotFound {
        kind: "user",
        tenant: idp.tenant_id(),
        object: unknown.object_id().clone(),
    };

    // 20 concurrent lookups, then 10 sequential ones: one Graph call, the same error.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (resolver, unknown) = (resolver.clone(), unknown.clone());
            tokio::spawn(async move { resolver.resolve(&unknown, &groups(0..3)).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err(), not_found);
    }
    for _ in 0..10 {
        assert_eq!(
            resolver.resolve(&unknown, &groups(5..9)).await.unwrap_err(),
            not_found
        );
    }
    assert_eq!(paths_of(&idp, &unknown).len(), 1);

    // Known to Graph by now, but still within the window: remembered, no call.
    idp.set_memberships(unknown.object_id(), groups(0..5));
    assert_eq!(
        resolver.resolve(&unknown, &groups(0..3)).await.unwrap_err(),
        not_found
    );
    assert_eq!(paths_of(&idp, &unknown).len(), 1);

    // A failure about one principal does not hold back the others of its tenant.
    assert_eq!(
        resolver.resolve(&known, &groups(3..8)).await.unwrap(),
        groups(3..5)
    );
    assert_eq!(idp.check_member_groups_requests(), 2);
}

#[tokio::test]
async fn graph_or_its_token_endpoint_failing_holds_back_the_tenant_and_only_it() {
    let idp = TestIdp::start().await;
    let resolver = remembering_resolver(&idp);
    let users: Vec<Principal> = (0..4).map(|_| user(&idp)).collect();
    let elsewhere = principal(idp.add_tenant(), PrincipalKind::User, 3600);
    for u in users.iter().chain([&elsewhere]) {
        idp.set_memberships(u.object_id(), groups(0..5));
    }
    let down = GroupResolutionError::Unavailable {
        reason: "Microsoft Graph answered HTTP 500 (1 attempt)".into(),
    };

    // Graph fails for the first user: every user of the tenant gets that error, no call.
    idp.set_graph_mode(GraphMode::Status(500));
    for u in &users {
        assert_eq!(resolver.resolve(u, &groups(0..3)).await.unwrap_err(), down);
    }
    assert_eq!(idp.check_member_groups_requests(), 1);

    // Another tenant is not held back.
    idp.set_graph_mode(GraphMode::Normal);
    assert_eq!(
        resolver.resolve(&elsewhere, &groups(0..3)).await.unwrap(),
        groups(0..3)
    );
    assert_eq!(idp.check_member_groups_requests(), 2);

    // The token endpoint of a third tenant fails: its users make no further requests.
    let tenant = idp.add_tenant();
    let third: Vec<Principal> = (0..3)
        .map(|_| principal(tenant.clone(), PrincipalKind::User, 3600))
        .collect();
    idp.set_graph_token_mode(GraphTokenMode::Status(503));
    let token_down = GroupResolutionError::Unavailable {
        reason: "the token endpoint answered HTTP 503 (1 attempt)".into(),
    };
    let before = idp.graph_token_requests();
    for u in &third {
        assert_eq!(
            resolver.resolve(u, &groups(0..3)).await.unwrap_err(),
            token_down
        );
    }
    assert_eq!(idp.graph_token_requests(), before + 1);
}

#[tokio::test]
async fn remembered_failures_end_after_the_failure_ttl() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp)
        .max_retries(0)
        .failure_ttl(Duration::from_millis(300))
        .build()
        .unwrap();
    let (first, second) = (user(&idp), user(&idp));
    for u in [&first, &second] {
        idp.set_memberships(u.object_id(), groups(0..5));
    }
    idp.set_graph_mode(GraphMode::Status(500));
    resolver.resolve(&first, &groups(0..3)).await.unwrap_err();
    idp.set_graph_mode(GraphMode::Normal);

    tokio::time::sleep(Duration::from_millis(400)).await;
    for u in [&first, &second] {
        assert_eq!(
            resolver.resolve(u, &groups(0..3)).await.unwrap(),
            groups(0..3)
        );
    }
    assert_eq!(idp.check_member_groups_requests(), 3);
}

#[tokio::test]
async fn a_429_holds_back_every_lookup_of_its_tenant_for_its_retry_after() {
    let idp = TestIdp::start().await;
    let resolver = remembering_resolver(&idp);
    let (a, b) = (user(&idp), user(&idp));
    let elsewhere = principal(idp.add_tenant(), PrincipalKind::User, 3600);
    for u in [&a, &b, &elsewhere] {
        idp.set_memberships(u.object_id(), groups(0..5));
    }

    // User A gets a 429 whose Retry-After (60 s) does not fit in the 1 s budget.
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 60,
        times: 1,
    });
    assert_eq!(
        resolver.resolve(&a, &groups(0..3)).await.unwrap_err(),
        GroupResolutionError::Throttled {
            retry_after_secs: 60
        }
    );
    assert_eq!(idp.check_member_groups_requests(), 1);

    // User B of the same tenant: throttled for the time left, without a call (Graph
    // itself would answer by now).
    let tokens = idp.graph_token_requests();
    for _ in 0..5 {
        match resolver.resolve(&b, &groups(0..3)).await.unwrap_err() {
            GroupResolutionError::Throttled { retry_after_secs } => {
                assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
            }
            other => panic!("expected Throttled, got {other:?}"),
        }
    }
    assert_eq!(idp.check_member_groups_requests(), 1);
    assert_eq!(idp.graph_token_requests(), tokens);

    // Another tenant is not held back.
    assert_eq!(
        resolver.resolve(&elsewhere, &groups(0..3)).await.unwrap(),
        groups(0..3)
    );
    assert_eq!(idp.check_member_groups_requests(), 2);

    // A 429 of the token endpoint holds back its tenant the same way.
    let tenant = idp.add_tenant();
    let (c, d) = (
        principal(tenant.clone(), PrincipalKind::User, 3600),
        principal(tenant, PrincipalKind::User, 3600),
    );
    idp.set_graph_token_mode(GraphTokenMode::TooManyRequests {
        retry_after_secs: 60,
        times: 1,
    });
    let tokens = idp.graph_token_requests();
    for u in [&c, &d] {
        assert!(matches!(
            resolver.resolve(u, &groups(0..3)).await.unwrap_err(),
            GroupResolutionError::Throttled { .. }
        ));
    }
    assert_eq!(idp.graph_token_requests(), tokens + 1);
}

#[tokio::test]
async fn after_a_429s_retry_after_passes_lookups_of_the_tenant_resume() {
    let idp = TestIdp::start().await;
    let resolver = graph_resolver(&idp)
        .time_budget(Duration::from_millis(500))
        .build()
        .unwrap();
    let (a, b) = (user(&idp), user(&idp));
    for u in [&a, &b] {
        idp.set_memberships(u.object_id(), groups(0..5));
    }
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 1,
        times: 1,
    });
    resolver.resolve(&a, &groups(0..3)).await.unwrap_err();

    tokio::time::sleep(Duration::from_millis(1100)).await;
    for u in [&a, &b] {
        assert_eq!(
            resolver.resolve(u, &groups(0..3)).await.unwrap(),
            groups(0..3)
        );
    }
    assert_eq!(idp.check_member_groups_requests(), 3);
}
