//! The shadow policy: decided beside the live one, never enforced; differences on the
//! trail and in the counters.

use entra_governor::audit::AuditGroups;
use entra_governor::{AuditOutcome, ConfigError, MemorySink};

use crate::*;

#[tokio::test]
async fn the_shadow_decides_every_event_and_records_only_its_differences() {
    let idp = common::example_idp().await;
    let sink = MemorySink::new();
    let log = entra_governor::AuditLog::builder(sink.clone()).build();
    let governor = builder(&idp, log, AuditGroups::Bound)
        .shadow_policy(without_auditor())
        .build()
        .unwrap();
    // `drive` checks every live answer: the shadow changes none of them.
    drive(&idp, &governor).await;

    let events = sink.events();
    assert_eq!(events.len(), REQUESTS.len());
    let shadowed: Vec<(&str, &str, &str)> = events
        .iter()
        .filter_map(|e| {
            let s = e.shadow.as_ref()?;
            assert_eq!(s.policy_version, without_auditor().version_hash());
            assert_eq!(s.outcome, AuditOutcome::Deny);
            assert_eq!(e.outcome, AuditOutcome::Allow, "the live decision stays");
            Some((
                e.resource.as_str(),
                s.reason.as_str(),
                e.grant.as_deref().unwrap(),
            ))
        })
        .collect();
    assert_eq!(
        shadowed,
        [
            ("audit/2026-11", "no_role_grants", "auditor#0"),
            ("models/exp-1", "no_role_grants", "auditor#1")
        ]
    );
    let report = governor.shadow_report();
    assert_eq!(
        report.policy_version.as_deref(),
        Some(without_auditor().version_hash())
    );
    assert_eq!(
        (
            report.decisions,
            report.changed,
            report.allow_to_deny,
            report.deny_to_allow
        ),
        (11, 2, 2, 0)
    );
    let causes: Vec<(&str, u64)> = report
        .by_cause
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(causes, [("grant:auditor#0", 1), ("grant:auditor#1", 1)]);

    governor.reload_shadow_policy(None).unwrap();
    assert_eq!(governor.shadow_report().policy_version, None);
    assert_eq!(governor.shadow_report().decisions, 0);
}

#[tokio::test]
async fn a_shadow_set_at_run_time_records_the_groups_it_binds() {
    let idp = common::example_idp().await;
    let sink = MemorySink::new();
    let log = entra_governor::AuditLog::builder(sink.clone()).build();
    let governor = builder(&idp, log, AuditGroups::Bound).build().unwrap();
    let mut doc = example_policy().document().clone();
    let mut binding = entra_governor::policy::model::BindingDef::default();
    binding.group = Some(NEW_GROUP.to_owned());
    binding.roles = vec!["auditor".to_owned()];
    doc.bindings.push(binding);
    let candidate = entra_governor::Policy::from_document(doc).unwrap();
    governor
        .reload_shadow_policy(Some(candidate.clone()))
        .unwrap();
    drive(&idp, &governor).await;

    // The data scientist's audit read: denied live, allowed by the shadow, which saw
    // NEW_GROUP because the event recorded the groups both policies bind.
    let events = sink.events();
    let e = &events[4];
    assert_eq!(
        (e.outcome, e.reason.as_str()),
        (AuditOutcome::Deny, "no_role_grants")
    );
    let s = e.shadow.as_ref().expect("the shadow allows");
    assert_eq!(
        (s.outcome, s.grant.as_deref()),
        (AuditOutcome::Allow, Some("auditor#0"))
    );
    let groups = &e.inputs.as_ref().unwrap().groups;
    let ids: Vec<&str> = groups.ids.iter().map(|g| g.as_str()).collect();
    assert_eq!(ids, [DATA_SCIENTISTS, NEW_GROUP]);
    assert_eq!(
        groups.shadow_policy.as_deref(),
        Some(candidate.version_hash())
    );
    let report = governor.shadow_report();
    assert_eq!((report.changed, report.deny_to_allow), (1, 1));
}

#[tokio::test]
async fn a_shadow_needs_its_own_audit_log() {
    let idp = common::example_idp().await;
    let without_audit = common::builder(&idp)
        .policy(example_policy())
        .shadow_policy(without_auditor())
        .build();
    assert_eq!(without_audit.err(), Some(ConfigError::ShadowWithoutAudit));

    let log = entra_governor::AuditLog::builder(MemorySink::new()).build();
    let first = builder(&idp, log.clone(), AuditGroups::Bound)
        .shadow_policy(without_auditor())
        .build();
    assert!(first.is_ok());
    let second = builder(&idp, log, AuditGroups::Bound)
        .shadow_policy(without_auditor())
        .build();
    assert_eq!(second.err(), Some(ConfigError::AuditLogShadowTaken));
}
