//! Shared Graph memberships: N replicas resolving one overage caller cost the fleet one
//! Graph call, and a 429 seen by one replica holds back every replica.

use entra_governor::testing::GraphMode;
use entra_governor::{GroupId, ObjectId};

use crate::replica::{Caller, DATA_SCIENTISTS, Fleet, SERIAL, caller, get};

/// A data scientist in more than 200 groups: the token carries an overage marker, Graph
/// knows the membership.
pub fn overage_scientist(fleet: &Fleet) -> Caller {
    let c = caller(
        fleet
            .idp
            .token()
            .scopes("Inference.Invoke Training.Manage")
            .overage(),
    );
    fleet.idp.set_memberships(
        &ObjectId::parse(&c.object).unwrap(),
        vec![GroupId::parse(DATA_SCIENTISTS).unwrap()],
    );
    c
}

/// Decided by the data-scientist role only: the overage must be resolved.
pub const CURATED: &str = "/v1/datasets/curated/chat-v2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_resolving_one_overage_caller_make_one_graph_call() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start("graph-once").await;
    assert_eq!(fleet.idp.check_member_groups_requests(), 0);

    // One after another.
    let first = overage_scientist(&fleet);
    for r in &fleet.replicas {
        assert_eq!(get(&r.base, CURATED, &first.token).await.0, 200, "{}", r.id);
    }
    assert_eq!(fleet.idp.check_member_groups_requests(), 1);
    // ... and again: every replica answers from what it holds.
    for r in &fleet.replicas {
        assert_eq!(get(&r.base, CURATED, &first.token).await.0, 200, "{}", r.id);
    }
    assert_eq!(fleet.idp.check_member_groups_requests(), 1);

    // All at once, several requests per replica.
    let second = overage_scientist(&fleet);
    let requests = fleet
        .replicas
        .iter()
        .flat_map(|r| std::iter::repeat_n(r, 4))
        .map(|r| {
            let (base, token) = (r.base.clone(), second.token.clone());
            tokio::spawn(async move { get(&base, CURATED, &token).await.0 })
        })
        .collect::<Vec<_>>();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(fleet.idp.check_member_groups_requests(), 2);

    // The membership is the real one: what only ML engineers may do stays refused.
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, "/v1/datasets/pii/patients", &second.token)
                .await
                .0,
            403,
            "{}",
            r.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_429_seen_by_one_replica_holds_back_every_replica() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start("graph-429").await;
    // One throttled answer, then Graph answers normally again: a replica that called it
    // after the 429 would get its answer (and a 200).
    fleet.idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 30,
        times: 1,
    });
    let (r0, others) = fleet.replicas.split_first().unwrap();
    let throttled = overage_scientist(&fleet);
    let (status, retry_after) = get(&r0.base, CURATED, &throttled.token).await;
    assert_eq!(
        status, 503,
        "the 429's Retry-After exceeds the decision's time budget"
    );
    assert!(retry_after.is_some(), "503 without Retry-After");
    assert_eq!(fleet.idp.check_member_groups_requests(), 1);

    // Another caller of the same tenant, on the other replicas: held back, no call.
    let held = overage_scientist(&fleet);
    for r in others {
        let (status, retry_after) = get(&r.base, CURATED, &held.token).await;
        assert_eq!(status, 503, "{} was not held back", r.id);
        let secs: u64 = retry_after
            .unwrap_or_else(|| panic!("{}: 503 without Retry-After", r.id))
            .parse()
            .unwrap();
        assert!((1..=30).contains(&secs), "{}: Retry-After {secs}", r.id);
    }
    assert_eq!(
        fleet.idp.check_member_groups_requests(),
        1,
        "a held-back replica called Graph"
    );
    // Callers that need no Graph call are not held back.
    let listed = caller(
        fleet
            .idp
            .token()
            .scopes("Inference.Invoke Training.Manage")
            .groups([DATA_SCIENTISTS]),
    );
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, CURATED, &listed.token).await.0,
            200,
            "{}",
            r.id
        );
    }
}
