//! Replay: the live policy reproduces its own trail; a candidate's changes are counted
//! exactly, by cause; what the trail cannot know is counted, never guessed.

use std::io::Write as _;

use entra_governor::audit::AuditGroups;
use entra_governor::governance::replay::{Replay, decide_again, replay_file};
use entra_governor::policy::model::BindingDef;
use entra_governor::{AuditOutcome, Policy};

use crate::*;

#[tokio::test]
async fn the_live_policy_replayed_over_its_own_trail_reproduces_every_decision() {
    let trail = recorded_trail("self", AuditGroups::Bound).await;
    let policy = example_policy();
    let events = events(&trail);
    assert_eq!(events.len(), REQUESTS.len());
    for (event, &(_, action, resource, outcome, reason)) in events.iter().zip(REQUESTS) {
        assert_eq!(event.schema_version, 2);
        assert_eq!(
            (event.action.as_str(), event.resource.as_str()),
            (action, resource)
        );
        assert!(event.inputs.is_some(), "v2 events carry their inputs");
        let again = decide_again(&policy.compiled(), event, |_| false).expect("replayable");
        assert!(again.exact, "{action} {resource}");
        let d = again.decision;
        assert_eq!(AuditOutcome::of(&d), event.outcome, "{action} {resource}");
        assert_eq!(d.reason.code(), event.reason);
        assert_eq!(reason, event.reason);
        assert_eq!(outcome == "allow", d.is_allowed());
        assert_eq!(
            d.matched.first().map(|m| m.grant.as_str()),
            event.grant.as_deref()
        );
        assert_eq!(d.denied_by(), event.denied_by.as_deref());
    }
    let report = replay_file(&policy, &trail.0).unwrap();
    let t = &report.totals;
    assert_eq!(
        (
            t.decisions,
            t.changed,
            t.inexact,
            t.not_replayable,
            t.skipped
        ),
        (REQUESTS.len() as u64, 0, 0, 0, 0)
    );
    assert!(report.changes.is_empty());
}

#[tokio::test]
async fn removing_a_role_turns_exactly_its_allows_into_denies() {
    let trail = recorded_trail("remove-role", AuditGroups::Bound).await;
    let report = replay_file(&without_auditor(), &trail.0).unwrap();
    let t = &report.totals;
    assert_eq!(t.decisions, 11);
    assert_eq!(
        (t.changed, t.allow_to_deny, t.deny_to_allow, t.other),
        (2, 2, 0, 0)
    );
    assert_eq!((t.inexact, t.not_replayable), (0, 0));
    assert_eq!(report.changes.len(), 2, "{:?}", report.changes);
    let causes: Vec<(&str, &str, u64, u64)> = report
        .changes
        .iter()
        .map(|c| (c.change.as_str(), c.cause.as_str(), c.count, c.callers))
        .collect();
    assert_eq!(
        causes,
        [
            ("allow_to_deny", "grant:auditor#0", 1, 1),
            ("allow_to_deny", "grant:auditor#1", 1, 1)
        ]
    );
    let example = &report.changes[0].examples[0];
    assert_eq!(example.resource, "audit/2026-11");
    assert_eq!(example.recorded, "allow by auditor#0");
    assert_eq!(example.candidate, "deny: no_role_grants");
    assert!(example.caller.ends_with(AUDITOR), "{}", example.caller);
}

/// The example policy plus a binding of [`NEW_GROUP`] to `auditor`.
fn binding_a_new_group() -> Policy {
    let mut doc = example_policy().document().clone();
    let mut binding = BindingDef::default();
    binding.group = Some(NEW_GROUP.to_owned());
    binding.roles = vec!["auditor".to_owned()];
    doc.bindings.push(binding);
    Policy::from_document(doc).unwrap()
}

#[tokio::test]
async fn groups_the_trail_did_not_record_make_exactly_the_affected_decisions_inexact() {
    // Only the policy's groups are recorded: the data scientist's NEW_GROUP is not, and
    // under the candidate it would let them read the audit trail.
    let trail = recorded_trail("inexact", AuditGroups::Bound).await;
    let event = &events(&trail)[4];
    assert_eq!(event.resource, "audit/2026");
    let ids = &event.inputs.as_ref().unwrap().groups.ids;
    assert_eq!(
        ids.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        [DATA_SCIENTISTS]
    );

    let candidate = binding_a_new_group();
    let t = replay_file(&candidate, &trail.0).unwrap().totals;
    assert_eq!((t.decisions, t.inexact, t.changed), (11, 1, 0));

    // Passing the recording policy does not help: the group is new to both.
    let mut replay = Replay::new(&candidate).baseline(&example_policy());
    replay
        .read_trail(std::io::BufReader::new(
            std::fs::File::open(&trail.0).unwrap(),
        ))
        .unwrap();
    assert_eq!(replay.finish().totals.inexact, 1);

    // A trail with every group replays exactly, and the change shows.
    let all = recorded_trail("all-groups", AuditGroups::All).await;
    let report = replay_file(&candidate, &all.0).unwrap();
    let t = &report.totals;
    assert_eq!((t.inexact, t.changed, t.deny_to_allow), (0, 1, 1));
    assert_eq!(report.changes[0].cause, "grant:auditor#0");
}

#[tokio::test]
async fn v1_events_and_foreign_lines_are_counted_not_guessed() {
    let trail = recorded_trail("v1", AuditGroups::Bound).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&trail.0)
        .unwrap();
    let v1 = serde_json::json!({
        "schema_version": 1, "time": "2026-11-02T10:00:00.000Z", "outcome": "allow",
        "reason": "allow", "tenant_id": common::EXAMPLE_HOME_TENANT, "object_id": DS,
        "principal_kind": "user", "guest": false, "action": "training.submit",
        "resource": "models/exp-1", "roles": ["data-scientist"],
        "grant": "data-scientist#0", "policy_version": "0123", "latency_us": 3
    });
    writeln!(file, "{v1}").unwrap();
    writeln!(file, "not json at all").unwrap();
    writeln!(file).unwrap();
    drop(file);
    let t = replay_file(&without_auditor(), &trail.0).unwrap().totals;
    assert_eq!(
        (
            t.decisions,
            t.not_replayable,
            t.unreadable_lines,
            t.allow_to_deny
        ),
        (12, 1, 1, 2)
    );
}

#[tokio::test]
async fn each_change_names_whom_it_affects_and_through_which_bindings() {
    let trail = recorded_trail("whom", AuditGroups::Bound).await;
    let report = replay_file(&without_auditor(), &trail.0).unwrap();
    let auditor = format!("{}/{AUDITOR}", common::EXAMPLE_HOME_TENANT);
    for change in &report.changes {
        assert_eq!(change.caller_ids, [auditor.as_str()]);
        assert_eq!(change.bindings, ["app_role:Platform.Auditor"]);
    }
}
