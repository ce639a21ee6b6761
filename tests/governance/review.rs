//! The access review: unused grants found, wide grants narrowed, per-caller evidence,
//! and a suggested policy that loads and keeps every allow.

use entra_governor::Policy;
use entra_governor::audit::AuditGroups;
use entra_governor::governance::review::{ReviewOptions, review_file};
use entra_governor::governance::trail::TrailWindow;

use crate::*;

#[tokio::test]
async fn the_review_finds_unused_and_wide_grants_and_a_policy_that_keeps_every_allow() {
    let trail = recorded_trail("review", AuditGroups::Bound).await;
    let policy = example_policy();
    let report = review_file(&policy, &trail.0, ReviewOptions::default()).unwrap();
    let t = &report.totals;
    assert_eq!(
        (t.decisions, t.allows, t.refusals, t.callers),
        (11, 7, 4, 4)
    );

    // Used grants, by uses.
    let used: Vec<(&str, u64, u64)> = report
        .grants
        .iter()
        .map(|g| (g.grant.as_str(), g.uses, g.callers))
        .collect();
    assert_eq!(
        used,
        [
            ("data-scientist#0", 2, 1),
            ("auditor#0", 1, 1),
            ("auditor#1", 1, 1),
            ("data-scientist#3", 1, 1),
            ("external-researcher#0", 1, 1),
            ("ml-engineer#0", 1, 1),
        ]
    );
    let unused: Vec<&str> = report
        .unused
        .grants
        .iter()
        .map(|g| g.grant.as_str())
        .collect();
    for grant in [
        "ml-engineer#2",
        "platform-admin#0",
        "training-pipeline#0",
        "inference-user#0",
    ] {
        assert!(unused.contains(&grant), "{grant} is unused: {unused:?}");
    }
    assert!(!unused.contains(&"auditor#0"));
    assert!(
        report
            .unused
            .bindings
            .contains(&"group:platform-admins".to_owned())
    );
    assert!(
        !report
            .unused
            .bindings
            .contains(&"group:data-scientists".to_owned())
    );
    assert!(report.unused.roles.contains(&"platform-admin".to_owned()));
    assert!(!report.unused.roles.contains(&"data-scientist".to_owned()));

    // `audit/**` reached only `audit/2026-11`; `models/**` only `models/exp-1`.
    let wide: Vec<(&str, Vec<&str>)> = report
        .wide_grants
        .iter()
        .map(|w| {
            (
                w.grant.as_str(),
                w.suggested.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert!(
        wide.contains(&("auditor#0", vec!["audit/2026-11"])),
        "{wide:?}"
    );
    assert!(
        wide.contains(&("auditor#1", vec!["models/exp-1"])),
        "{wide:?}"
    );
    assert!(
        wide.contains(&("data-scientist#3", vec!["datasets/public/weather"])),
        "the curated pattern reached nothing: {wide:?}"
    );

    // Per-caller evidence: the data scientist holds data-scientist (used twice... and
    // once more for datasets) and, through include, inference-user (never used).
    let ds = report.callers.iter().find(|c| c.object_id == DS).unwrap();
    assert!(ds.roles_complete);
    assert_eq!((ds.decisions, ds.allows, ds.refusals), (5, 3, 2));
    let roles: Vec<(&str, u64, bool)> = ds
        .roles
        .iter()
        .map(|r| (r.role.as_str(), r.uses, r.last_used.is_some()))
        .collect();
    assert_eq!(
        roles,
        [("data-scientist", 3, true), ("inference-user", 0, false)]
    );
    let held = ds
        .roles
        .iter()
        .find(|r| r.role == "data-scientist")
        .unwrap();
    assert_eq!(held.bindings, ["group:data-scientists"]);

    // The suggestion loads, and replayed over the same trail keeps every allow.
    let s = &report.suggestion;
    assert!(s.loads, "{:?}", s.load_error);
    let suggested = Policy::from_toml_str(&s.policy_toml).unwrap();
    assert!(suggested.document().roles.contains_key("auditor"));
    assert!(!suggested.document().roles.contains_key("platform-admin"));
    let replay = s
        .replay
        .as_ref()
        .expect("review_file replays the suggestion");
    assert_eq!(
        (
            replay.decisions,
            replay.allow_to_deny,
            replay.deny_to_allow,
            replay.inexact
        ),
        (11, 0, 0, 0)
    );
    assert!(s.diff.contains("-resources = [\"audit/**\"]") || s.diff.contains("\"audit/**\""));
    assert!(
        s.diff
            .lines()
            .any(|l| l.starts_with('+') && l.contains("audit/2026-11")),
        "{}",
        s.diff
    );
    assert!(
        s.changes
            .contains(&"remove grant platform-admin#0 (never used)".to_owned())
    );
}

#[tokio::test]
async fn a_window_reads_only_its_events() {
    let trail = recorded_trail("window", AuditGroups::Bound).await;
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let options = ReviewOptions::default().window(TrailWindow::since(later));
    let report = review_file(&example_policy(), &trail.0, options).unwrap();
    assert_eq!((report.totals.decisions, report.totals.skipped), (0, 11));
    assert!(report.grants.is_empty());
    assert!(report.window.since.is_some());
}

/// Trainers and deployers of production models, and a separation-of-duty rule between
/// them: the deployer grant is never used (whoever holds both is refused), yet removing
/// it would let those callers train.
const SOD_POLICY: &str = r#"
version = 1
[roles.trainer]
grants = [{ actions = ["training.submit"], resources = ["models/**"] }]
[roles.deployer]
grants = [{ actions = ["models.deploy"], resources = ["models/prod-*"] }]
[[bindings]]
group = "aaaaaaaa-0000-4000-8000-000000000001"
roles = ["trainer"]
[[bindings]]
group = "aaaaaaaa-0000-4000-8000-000000000002"
roles = ["deployer"]
[scopes]
"Training.Manage" = ["training.*", "models.*"]
[[separation_of_duties]]
name = "train-or-deploy-prod"
actions = ["training.submit", "models.deploy"]
resources = ["models/prod-*"]
"#;

#[tokio::test]
async fn the_suggestion_keeps_the_sides_of_a_separation_of_duty_rule() {
    let idp = common::example_idp().await;
    let policy = Policy::from_toml_str(SOD_POLICY).unwrap();
    let trail = Trail::new("sod");
    let governor = common::builder(&idp)
        .policy(policy.clone())
        .audit(trail.log())
        .build()
        .unwrap();
    let token = |oid: &str, groups: &[&str]| {
        idp.token()
            .oid(entra_governor::ObjectId::parse(oid).unwrap())
            .scopes("Training.Manage")
            .groups(groups.to_vec())
            .sign()
    };
    let trainer = token(DS, &["aaaaaaaa-0000-4000-8000-000000000001"]);
    let both = token(
        ENG,
        &[
            "aaaaaaaa-0000-4000-8000-000000000001",
            "aaaaaaaa-0000-4000-8000-000000000002",
        ],
    );
    let allowed = governor
        .authorize(&trainer, "training.submit", "models/prod-1")
        .await
        .unwrap();
    assert!(allowed.is_allowed());
    let refused = governor
        .authorize(&both, "training.submit", "models/prod-1")
        .await
        .unwrap();
    assert_eq!(refused.reason.code(), "separation_of_duties");
    governor.shutdown().await;

    let report = review_file(&policy, &trail.0, ReviewOptions::default()).unwrap();
    assert!(
        report.unused.grants.iter().any(|g| g.grant == "deployer#0"),
        "unused, and reported"
    );
    let s = &report.suggestion;
    assert!(
        !s.changes.iter().any(|c| c.contains("deployer")),
        "{:?}",
        s.changes
    );
    let suggested = Policy::from_toml_str(&s.policy_toml).unwrap();
    assert!(suggested.document().roles.contains_key("deployer"));
    let replay = s.replay.as_ref().unwrap();
    assert_eq!(
        (replay.allow_to_deny, replay.deny_to_allow),
        (0, 0),
        "{:?}",
        s.changes
    );
    assert!(replay.keeps_every_allow());
}
