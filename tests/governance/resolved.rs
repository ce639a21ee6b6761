//! Group overage resolved through Microsoft Graph, end to end: the governor asks the
//! look-alike's Graph, the trail records what it answered (or that it failed), and replay
//! decides again from the trail alone, never asking Graph.

use entra_governor::audit::AuditGroups;
use entra_governor::audit::inputs::{GroupsClaim, GroupsResolution};
use entra_governor::governance::replay::{Replay, decide_again, replay_file};
use entra_governor::graph::GraphGroupResolver;
use entra_governor::testing::{GraphMode, TestIdp};
use entra_governor::{AuditEvent, AuditOutcome, GroupId, ObjectId, Policy, Reason};

use crate::*;

fn resolver(idp: &TestIdp) -> GraphGroupResolver {
    crate::common::graph_resolver(idp)
        .max_retries(0)
        .build()
        .unwrap()
}

/// A user in 250 groups, ML engineers among them: their tokens carry an overage marker.
fn senior_engineer(idp: &TestIdp, n: u32) -> ObjectId {
    let oid = ObjectId::parse(&format!("5e410000-0000-4000-8000-{n:012x}")).unwrap();
    let mut groups: Vec<GroupId> = (0..249)
        .map(|i| GroupId::parse(&format!("77770000-0000-4000-8000-{i:012x}")).unwrap())
        .collect();
    groups.push(ML_ENGINEERS.parse().unwrap());
    idp.set_memberships(&oid, groups);
    oid
}

fn overage_token(idp: &TestIdp, oid: &ObjectId) -> String {
    idp.token()
        .oid(oid.clone())
        .scopes("Models.Manage")
        .overage()
        .sign()
}

/// The example policy without the ML engineers' group binding.
fn without_ml_engineers() -> Policy {
    let mut doc = example_policy().document().clone();
    let before = doc.bindings.len();
    doc.bindings
        .retain(|b| b.group.as_deref() != Some(ML_ENGINEERS));
    assert_eq!(doc.bindings.len(), before - 1);
    Policy::from_document(doc).unwrap()
}

fn ids(event: &AuditEvent) -> Vec<&str> {
    let groups = &event.inputs.as_ref().unwrap().groups;
    groups.ids.iter().map(|g| g.as_str()).collect()
}

/// `(decisions, changed, allow_to_deny, deny_to_allow, other, inexact, not_replayable)`.
fn totals(report: &entra_governor::governance::replay::ReplayReport) -> [u64; 7] {
    let t = &report.totals;
    [
        t.decisions,
        t.changed,
        t.allow_to_deny,
        t.deny_to_allow,
        t.other,
        t.inexact,
        t.not_replayable,
    ]
}

#[tokio::test]
async fn graph_resolved_membership_is_recorded_and_replays_exactly() {
    for mode in [AuditGroups::Bound, AuditGroups::All] {
        let idp = common::example_idp().await;
        let trail = Trail::new("graph-resolved");
        let governor = builder(&idp, trail.log(), mode)
            .group_resolver(resolver(&idp))
            .build()
            .unwrap();
        let token = overage_token(&idp, &senior_engineer(&idp, 1));
        // Only the ML engineers' binding grants it.
        let d = governor
            .authorize(&token, "datasets.write", "datasets/curated/x")
            .await
            .unwrap();
        assert!(d.is_allowed(), "{mode:?}: {d}");
        assert_eq!(d.matched[0].binding, "group:ml-engineers");
        // The release managers' binding would (through a step-up): Graph says no.
        let refused = governor
            .authorize(&token, "models.deploy", "models/prod-1")
            .await
            .unwrap();
        assert_eq!(refused.reason, Reason::NoRoleGrants, "{mode:?}: {refused}");
        assert_eq!(idp.check_member_groups_requests(), 1, "{mode:?}: cached");
        governor.shutdown().await;

        let text = std::fs::read_to_string(&trail.0).unwrap();
        let events = events(&trail);
        assert_eq!(events.len(), 2, "{mode:?}: {text}");
        for event in &events {
            let groups = &event.inputs.as_ref().unwrap().groups;
            assert_eq!(groups.claim, GroupsClaim::Overage, "{mode:?}");
            assert_eq!(groups.resolution, Some(GroupsResolution::Resolved));
            assert_eq!(groups.recorded, mode);
            // Graph was asked about the policy's groups only: whatever the mode, its
            // answer is the one group.
            assert_eq!(ids(event), [ML_ENGINEERS], "{mode:?}");
        }
        assert!(
            text.contains(&format!(
                r#""groups":{{"claim":"overage","resolution":"resolved","ids":["{ML_ENGINEERS}"]"#
            )),
            "{mode:?}: {text}"
        );
        assert_eq!(
            (events[0].outcome, events[0].grant.as_deref()),
            (AuditOutcome::Allow, Some("ml-engineer#2"))
        );
        assert_eq!(events[0].bindings, ["group:ml-engineers"]);

        let live = example_policy();
        for (event, decided) in events.iter().zip([&d, &refused]) {
            let again = decide_again(&live.compiled(), event, |_| false).unwrap();
            assert!(again.exact, "{mode:?}");
            assert_eq!(again.decision.reason, decided.reason, "{mode:?}");
            assert_eq!(again.decision.matched, decided.matched, "{mode:?}");
        }
        let graph_calls = idp.check_member_groups_requests();
        let report = replay_file(&live, &trail.0).unwrap();
        assert_eq!(totals(&report), [2, 0, 0, 0, 0, 0, 0], "{mode:?}");
        assert_eq!(
            idp.check_member_groups_requests(),
            graph_calls,
            "replay never asks Graph"
        );

        // Without the ML engineers' binding the allow goes. The refusal stays, but the
        // trail alone cannot say that the caller is in none of the policy's other groups
        // (Graph was asked about them; the trail does not say which it was asked), and
        // the release managers' binding could make it a step-up: inexact.
        let candidate = without_ml_engineers();
        let report = replay_file(&candidate, &trail.0).unwrap();
        assert_eq!(totals(&report), [2, 1, 1, 0, 0, 1, 0], "{mode:?}");
        let change = &report.changes[0];
        assert_eq!(
            (change.change.as_str(), change.cause.as_str(), change.count),
            ("allow_to_deny", "grant:ml-engineer#2", 1)
        );
        assert_eq!(change.bindings, ["group:ml-engineers"]);
        assert_eq!(change.examples[0].candidate, "deny: no_role_grants");
        // Naming the recording policy says which groups Graph was asked about.
        let mut replay = Replay::new(&candidate).baseline(&live);
        replay
            .read_trail(std::io::BufReader::new(
                std::fs::File::open(&trail.0).unwrap(),
            ))
            .unwrap();
        assert_eq!(totals(&replay.finish()), [2, 1, 1, 0, 0, 0, 0], "{mode:?}");
    }
}

#[tokio::test]
async fn a_graph_failure_is_recorded_as_unavailable_and_replays_so() {
    let idp = common::example_idp().await;
    let trail = Trail::new("graph-failed");
    let governor = builder(&idp, trail.log(), AuditGroups::Bound)
        .group_resolver(resolver(&idp))
        .build()
        .unwrap();
    let resolved = overage_token(&idp, &senior_engineer(&idp, 2));
    let d = governor
        .authorize(&resolved, "datasets.write", "datasets/curated/x")
        .await
        .unwrap();
    assert!(d.is_allowed(), "{d}");

    // Graph fails; another ML engineer, whose membership nobody has cached, is refused
    // as "unavailable" (retry later), never as "member of nothing".
    idp.set_graph_mode(GraphMode::Status(500));
    let unlucky = overage_token(&idp, &senior_engineer(&idp, 3));
    let d = governor
        .authorize(&unlucky, "datasets.write", "datasets/curated/x")
        .await
        .unwrap();
    assert_eq!(d.reason, Reason::GroupMembershipUnavailable, "{d}");
    governor.shutdown().await;
    idp.set_graph_mode(GraphMode::Normal);

    let text = std::fs::read_to_string(&trail.0).unwrap();
    let events = events(&trail);
    assert_eq!(events.len(), 2, "{text}");
    let (ok, failed) = (&events[0], &events[1]);
    assert_eq!(
        ok.inputs.as_ref().unwrap().groups.resolution,
        Some(GroupsResolution::Resolved)
    );
    assert_eq!(ids(ok), [ML_ENGINEERS]);
    let groups = &failed.inputs.as_ref().unwrap().groups;
    assert_eq!(
        (groups.claim, groups.resolution),
        (GroupsClaim::Overage, Some(GroupsResolution::Unavailable))
    );
    assert!(groups.ids.is_empty(), "nothing is known, nothing recorded");
    assert!(
        text.contains(
            r#""groups":{"claim":"overage","resolution":"unavailable","recorded":"bound"}"#
        ),
        "{text}"
    );
    assert_eq!(
        (failed.outcome, failed.reason.as_str()),
        (AuditOutcome::Unavailable, "group_membership_unavailable")
    );

    // Graph answers again, but replay reads the trail: still unavailable.
    let live = example_policy();
    let again = decide_again(&live.compiled(), failed, |_| false).unwrap();
    assert!(again.exact);
    assert_eq!(again.decision.reason, Reason::GroupMembershipUnavailable);
    assert_eq!(again.decision.reason.code(), "group_membership_unavailable");
    let report = replay_file(&live, &trail.0).unwrap();
    assert_eq!(totals(&report), [2, 0, 0, 0, 0, 0, 0]);
}
