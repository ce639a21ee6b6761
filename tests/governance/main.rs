//! Governance over a real trail: personas authorized by a governor against the Entra
//! look-alike leave a v2 audit trail; replay, the shadow policy and the access review
//! read it.

#[path = "../common/mod.rs"]
mod common;

mod replay;
mod resolved;
mod review;
mod shadow;

use std::path::PathBuf;

use entra_governor::audit::AuditGroups;
use entra_governor::testing::TestIdp;
use entra_governor::{AuditLog, Governor, GovernorBuilder, JsonLinesSink, ObjectId, Policy};

pub const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
pub const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
/// A group no policy of the example binds (a candidate's new group).
pub const NEW_GROUP: &str = "0a0b0c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
pub const PARTNER_HOME: &str = "11111111-2222-4333-8444-555555555555";

pub const DS: &str = "00000000-0000-4000-8000-0000000000d5";
pub const ENG: &str = "00000000-0000-4000-8000-0000000000e9";
pub const AUDITOR: &str = "00000000-0000-4000-8000-0000000000a7";
pub const GUEST: &str = "00000000-0000-4000-8000-000000000096";

pub fn example_policy() -> Policy {
    crate::common::example_policy()
}

/// The example policy without the `auditor` role and the bindings conferring it.
pub fn without_auditor() -> Policy {
    let mut doc = example_policy().document().clone();
    doc.roles.remove("auditor");
    doc.bindings
        .retain(|b| !b.roles.iter().any(|r| r == "auditor"));
    Policy::from_document(doc).unwrap()
}

/// A temporary trail file, removed on drop.
pub struct Trail(pub PathBuf);

impl Trail {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "entra-governor-governance-{tag}-{}-{nanos}.jsonl",
            std::process::id()
        )))
    }

    pub fn log(&self) -> AuditLog {
        AuditLog::builder(JsonLinesSink::file(&self.0).unwrap()).build()
    }
}

impl Drop for Trail {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What each persona asks, and what the example policy answers: (persona, action,
/// resource, outcome, reason).
pub const REQUESTS: &[(&str, &str, &str, &str, &str)] = &[
    (DS, "training.submit", "models/exp-1", "allow", "allow"),
    (DS, "training.submit", "models/exp-2", "allow", "allow"),
    (
        DS,
        "datasets.read",
        "datasets/public/weather",
        "allow",
        "allow",
    ),
    (
        DS,
        "models.deploy",
        "models/prod-1",
        "deny",
        "outside_scopes",
    ),
    (DS, "audit.read", "audit/2026", "deny", "no_role_grants"),
    (ENG, "training.submit", "models/staging-3", "allow", "allow"),
    (
        ENG,
        "datasets.read",
        "datasets/pii/patients",
        "deny",
        "step_up_not_possible",
    ),
    (AUDITOR, "audit.read", "audit/2026-11", "allow", "allow"),
    (AUDITOR, "training.read", "models/exp-1", "allow", "allow"),
    (GUEST, "training.submit", "models/exp-9", "allow", "allow"),
    (
        GUEST,
        "datasets.read",
        "datasets/pii/patients",
        "deny",
        "denied_by_rule",
    ),
];

/// The token of `persona`.
pub fn token(idp: &TestIdp, persona: &str) -> String {
    let t = idp.token().oid(ObjectId::parse(persona).unwrap());
    match persona {
        DS => t
            .scopes("Training.Manage Audit.Read")
            .groups([DATA_SCIENTISTS, NEW_GROUP]),
        ENG => t
            .scopes("Training.Manage Models.Manage")
            .groups([ML_ENGINEERS]),
        AUDITOR => t
            .scopes("Audit.Read")
            .roles(["Platform.Auditor"])
            .groups(Vec::<&str>::new()),
        GUEST => t
            .scopes("Training.Manage")
            .groups([EXTERNAL_RESEARCHERS])
            .guest(entra_governor::TenantId::parse(PARTNER_HOME).unwrap()),
        _ => unreachable!("unknown persona"),
    }
    .sign()
}

/// A governor for the example policy with `audit`, recording groups as `groups`.
pub fn builder(idp: &TestIdp, audit: AuditLog, groups: AuditGroups) -> GovernorBuilder {
    common::builder(idp)
        .policy(example_policy())
        .audit(audit)
        .audit_groups(groups)
}

/// Sends every request of [`REQUESTS`], checks each answer, and stops the governor.
pub async fn drive(idp: &TestIdp, governor: &Governor) {
    for &(persona, action, resource, outcome, reason) in REQUESTS {
        let decision = governor
            .authorize(&token(idp, persona), action, resource)
            .await
            .unwrap();
        let got = if decision.is_allowed() {
            "allow"
        } else {
            "deny"
        };
        assert_eq!(
            (got, decision.reason.code()),
            (outcome, reason),
            "{persona} {action} {resource}: {}",
            decision.explain()
        );
    }
    governor.shutdown().await;
}

/// A trail of [`REQUESTS`] under the example policy.
pub async fn recorded_trail(tag: &str, groups: AuditGroups) -> Trail {
    let idp = common::example_idp().await;
    let trail = Trail::new(tag);
    let governor = builder(&idp, trail.log(), groups).build().unwrap();
    drive(&idp, &governor).await;
    trail
}

/// The trail's events.
pub fn events(trail: &Trail) -> Vec<entra_governor::AuditEvent> {
    std::fs::read_to_string(&trail.0)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
