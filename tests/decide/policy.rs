//! Policy engine: table-driven decisions against `examples/policy.toml`, and property
//! tests against a straightforward reference evaluator.

use crate::seeded;

use std::collections::{BTreeMap, BTreeSet};

use entra_governor::decision::Reason;
use entra_governor::policy::model::{
    BindingDef, DenyDef, GrantDef, KindDef, PrincipalRef, RoleDef, SeparationOfDutiesDef, WhenDef,
};
use entra_governor::policy::{
    BUILTIN_ACTIONS, MembershipSource, OnGroupOverage, Policy, PolicyDocument,
};
use entra_governor::{
    ClientAuth, GroupId, GuestStatus, ObjectId, Principal, PrincipalKind, TenantId, TokenGroups,
};
use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::strategy::ValueTree;

// ------------------------------------------------------------ the example policy

/// The home tenant the example policy's claim-value bindings trust.
const HOME: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
const PARTNER: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const UNIVERSITY: &str = "aa11bb22-cc33-4d44-8e55-ff6677889900";
const OID: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";
const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const RELEASE_MANAGERS: &str = "2b7e4f1a-9c3d-4e8b-a5f6-1d0c9b8a7e6f";
const APPLICATION_USERS: &str = "c4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70";
const AUDITORS: &str = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b";
const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
const PLATFORM_ADMINS: &str = "7c2d9e4f-1a3b-4c5d-9e6f-a0b1c2d3e4f5";
const PIPELINE_APP: &str = "11112222-3333-4444-8555-666677778888";

fn example() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
    Policy::from_path(path).unwrap_or_else(|e| panic!("{e}"))
}

fn listed(ids: &[&str]) -> TokenGroups {
    TokenGroups::Listed(ids.iter().map(|g| GroupId::parse(g).unwrap()).collect())
}

fn in_tenant(tenant: &str) -> entra_governor::PrincipalBuilder {
    Principal::builder(
        TenantId::parse(tenant).unwrap(),
        ObjectId::parse(OID).unwrap(),
    )
}

fn caller(name: &str) -> Principal {
    let user = || in_tenant(HOME);
    let app = || in_tenant(HOME).kind(PrincipalKind::Application);
    match name {
        "scientist" => user()
            .scopes(["Inference.Invoke", "Training.Manage"])
            .groups(listed(&[DATA_SCIENTISTS]))
            .build(),
        "scientist-via-chat-app" => user()
            .scopes(["Inference.Invoke"])
            .groups(listed(&[DATA_SCIENTISTS]))
            .build(),
        "engineer" => user()
            .scopes(["Training.Manage", "Models.Manage"])
            .groups(listed(&[ML_ENGINEERS, APPLICATION_USERS]))
            .build(),
        "release-manager" => user()
            .scopes(["Models.Manage"])
            .groups(listed(&[RELEASE_MANAGERS]))
            .build(),
        // The same release manager after MFA: v2 tokens prove it with mfa_auth_context c2.
        "release-manager-mfa" => user()
            .scopes(["Models.Manage"])
            .groups(listed(&[RELEASE_MANAGERS]))
            .auth_contexts(["c2"])
            .build(),
        // An ML engineer signed in with the PII auth context c1.
        "engineer-c1" => user()
            .scopes(["Training.Manage", "Models.Manage"])
            .groups(listed(&[ML_ENGINEERS, APPLICATION_USERS]))
            .auth_contexts(["c1"])
            .build(),
        // An ML engineer without c1, through a client that handles claims challenges.
        "engineer-cp1" => user()
            .scopes(["Training.Manage", "Models.Manage"])
            .groups(listed(&[ML_ENGINEERS, APPLICATION_USERS]))
            .client_capabilities(["cp1"])
            .build(),
        "chat-user" => user()
            .scopes(["Inference.Invoke"])
            .groups(listed(&[APPLICATION_USERS]))
            .build(),
        "auditor-by-app-role" => user()
            .scopes(["Audit.Read"])
            .roles(["Platform.Auditor"])
            .build(),
        "auditor-by-group" => user()
            .scopes(["Audit.Read"])
            .groups(listed(&[AUDITORS]))
            .build(),
        "guest-researcher" => user()
            .scopes(["Training.Manage"])
            .guest_from(TenantId::parse(UNIVERSITY).unwrap())
            .groups(listed(&[EXTERNAL_RESEARCHERS, ML_ENGINEERS]))
            .build(),
        "scientist-overage" => user()
            .scopes(["Inference.Invoke", "Training.Manage"])
            .groups(TokenGroups::Overage)
            .build(),
        "pipeline" => app()
            .roles(["Training.Pipeline"])
            .client_app(PIPELINE_APP, ClientAuth::Certificate)
            .build(),
        "pipeline-with-secret" => app()
            .roles(["Training.Pipeline"])
            .client_app(PIPELINE_APP, ClientAuth::Secret)
            .build(),
        "inference-service" => app().roles(["Inference.Client"]).build(),
        "app-claiming-app-role" => app().roles(["Platform.Auditor"]).build(),
        "user-claiming-permission" => user()
            .scopes(["Training.Manage"])
            .roles(["Training.Pipeline"])
            .build(),
        "platform-admin" => user()
            .scopes(["Platform.Admin"])
            .groups(listed(&[PLATFORM_ADMINS]))
            .build(),
        "platform-admin-mfa" => user()
            .scopes(["Platform.Admin"])
            .groups(listed(&[PLATFORM_ADMINS]))
            .auth_contexts(["c2"])
            .build(),
        // A data scientist whose client obtained the admin scope: the scope is a ceiling,
        // not a grant.
        "scientist-with-admin-scope" => user()
            .scopes(["Platform.Admin"])
            .groups(listed(&[DATA_SCIENTISTS]))
            .build(),
        "partner-user" => in_tenant(PARTNER)
            .scopes(["Inference.Invoke", "Models.Manage"])
            .build(),
        other => panic!("no caller {other}"),
    }
}

/// (caller, action, resource, expected reason code, rule or grant).
const TABLE: &[(&str, &str, &str, &str, &str)] = &[
    // Data scientists: research training, inference, public and curated data.
    (
        "scientist",
        "training.submit",
        "models/exp-42",
        "allow",
        "data-scientist#0",
    ),
    (
        "scientist",
        "inference.invoke",
        "endpoints/chat-prod",
        "allow",
        "inference-user#0",
    ),
    (
        "scientist",
        "datasets.read",
        "datasets/curated/claims/2025",
        "allow",
        "data-scientist#3",
    ),
    (
        "scientist",
        "datasets.read",
        "datasets/pii/claims-2025",
        "no_role_grants",
        "",
    ),
    (
        "scientist",
        "training.submit",
        "models/prod-chat",
        "no_role_grants",
        "",
    ),
    (
        "scientist",
        "models.deploy",
        "models/staging-7",
        "outside_scopes",
        "",
    ),
    // The same person through an app that only obtained Inference.Invoke.
    (
        "scientist-via-chat-app",
        "inference.invoke",
        "models/exp-42",
        "allow",
        "data-scientist#2",
    ),
    (
        "scientist-via-chat-app",
        "training.submit",
        "models/exp-42",
        "outside_scopes",
        "",
    ),
    (
        "scientist-via-chat-app",
        "datasets.write",
        "datasets/pii/x",
        "outside_scopes",
        "",
    ),
    // ML engineers: release candidates, curated writes, PII reads, scaling.
    (
        "engineer",
        "training.submit",
        "models/staging-3",
        "allow",
        "ml-engineer#0",
    ),
    (
        "engineer",
        "training.submit",
        "models/exp-1",
        "allow",
        "data-scientist#0",
    ),
    (
        "engineer",
        "datasets.write",
        "datasets/curated/x",
        "allow",
        "ml-engineer#2",
    ),
    // Personal data needs auth context c1 (requirements:pii-needs-c1).
    (
        "engineer",
        "datasets.read",
        "datasets/pii/claims-2025",
        "step_up_not_possible",
        "requirements:pii-needs-c1",
    ),
    (
        "engineer-cp1",
        "datasets.read",
        "datasets/pii/claims-2025",
        "step_up_required",
        "requirements:pii-needs-c1",
    ),
    (
        "engineer-c1",
        "datasets.read",
        "datasets/pii/claims-2025",
        "allow",
        "ml-engineer#3",
    ),
    (
        "engineer",
        "datasets.write",
        "datasets/pii/claims-2025",
        "no_role_grants",
        "",
    ),
    (
        "engineer",
        "endpoints.scale",
        "endpoints/chat-prod",
        "allow",
        "ml-engineer#4",
    ),
    (
        "engineer",
        "models.delete",
        "models/staging-3",
        "allow",
        "ml-engineer#1",
    ),
    (
        "engineer",
        "models.delete",
        "models/prod-chat",
        "denied_by_rule",
        "prod-models-are-not-deleted",
    ),
    (
        "engineer",
        "models.deploy",
        "models/prod-chat",
        "no_role_grants",
        "",
    ),
    (
        "engineer",
        "inference.invoke",
        "endpoints/chat-prod",
        "outside_scopes",
        "",
    ),
    // Release managers promote, after MFA; nobody deletes production.
    (
        "release-manager",
        "models.deploy",
        "models/prod-chat",
        "step_up_not_possible",
        "grant:release-manager#2",
    ),
    (
        "release-manager-mfa",
        "models.deploy",
        "models/prod-chat",
        "allow",
        "release-manager#2",
    ),
    (
        "release-manager",
        "models.read",
        "models/prod-chat",
        "allow",
        "release-manager#0",
    ),
    (
        "release-manager",
        "models.delete",
        "models/prod-chat",
        "denied_by_rule",
        "prod-models-are-not-deleted",
    ),
    (
        "release-manager",
        "training.submit",
        "models/prod-chat",
        "outside_scopes",
        "",
    ),
    // Application users: the chat endpoints only.
    (
        "chat-user",
        "inference.invoke",
        "endpoints/chat-prod",
        "allow",
        "inference-user#0",
    ),
    (
        "chat-user",
        "inference.invoke",
        "endpoints/partner-x",
        "no_role_grants",
        "",
    ),
    (
        "chat-user",
        "models.read",
        "models/exp-1",
        "no_role_grants",
        "",
    ),
    // Auditors, by app role or by group.
    (
        "auditor-by-app-role",
        "audit.read",
        "audit/2025/06",
        "allow",
        "auditor#0",
    ),
    (
        "auditor-by-group",
        "training.read",
        "models/prod-chat",
        "allow",
        "auditor#1",
    ),
    (
        "auditor-by-app-role",
        "training.cancel",
        "models/prod-chat",
        "outside_scopes",
        "",
    ),
    // Guests: admitted by one binding only, and never near PII.
    (
        "guest-researcher",
        "training.submit",
        "models/exp-1",
        "allow",
        "external-researcher#0",
    ),
    (
        "guest-researcher",
        "training.submit",
        "models/staging-1",
        "no_role_grants",
        "",
    ),
    (
        "guest-researcher",
        "datasets.read",
        "datasets/pii/x",
        "denied_by_rule",
        "no-guests-on-pii",
    ),
    // Group overage nobody resolves: distinct from "no role grants it".
    (
        "scientist-overage",
        "training.submit",
        "models/exp-42",
        "group_membership_unknown",
        "",
    ),
    (
        "scientist-overage",
        "training.submit",
        "models/elsewhere",
        "no_role_grants",
        "",
    ),
    // App-only: governed by app permissions.
    (
        "pipeline",
        "training.submit",
        "models/prod-chat",
        "allow",
        "training-pipeline#0",
    ),
    (
        "pipeline",
        "models.register",
        "models/staging-2",
        "allow",
        "training-pipeline#1",
    ),
    (
        "pipeline-with-secret",
        "training.submit",
        "models/prod-chat",
        "requirement_not_met",
        "role:training-pipeline",
    ),
    (
        "pipeline",
        "models.deploy",
        "models/prod-chat",
        "no_role_grants",
        "",
    ),
    (
        "pipeline",
        "datasets.read",
        "datasets/pii/x",
        "denied_by_rule",
        "apps-never-touch-pii",
    ),
    (
        "inference-service",
        "inference.batch",
        "models/prod-chat",
        "allow",
        "inference-client#0",
    ),
    (
        "inference-service",
        "training.submit",
        "models/exp-1",
        "no_role_grants",
        "",
    ),
    // A user app role is not an app permission, and the other way round.
    (
        "app-claiming-app-role",
        "audit.read",
        "audit/x",
        "no_role_grants",
        "",
    ),
    (
        "user-claiming-permission",
        "training.submit",
        "models/prod-chat",
        "no_role_grants",
        "",
    ),
    // The partner tenant: its endpoint, and inference only.
    (
        "partner-user",
        "inference.invoke",
        "endpoints/partner-contoso",
        "allow",
        "partner-inference#0",
    ),
    (
        "partner-user",
        "models.read",
        "models/prod-chat",
        "denied_by_rule",
        "partner-tenant-inference-only",
    ),
    // Platform admins revoke callers and read the fleet's state, after MFA; nobody else.
    (
        "platform-admin-mfa",
        "admin.revoke",
        "admin/revocations",
        "allow",
        "platform-admin#0",
    ),
    (
        "platform-admin-mfa",
        "admin.read",
        "admin/fleet",
        "allow",
        "platform-admin#0",
    ),
    (
        "platform-admin",
        "admin.revoke",
        "admin/revocations",
        "step_up_not_possible",
        "grant:platform-admin#0",
    ),
    (
        "platform-admin-mfa",
        "models.deploy",
        "models/staging-7",
        "outside_scopes",
        "",
    ),
    (
        "scientist-with-admin-scope",
        "admin.revoke",
        "admin/revocations",
        "no_role_grants",
        "",
    ),
    (
        "scientist",
        "admin.read",
        "admin/fleet",
        "outside_scopes",
        "",
    ),
    (
        "engineer",
        "admin.revoke",
        "admin/revocations",
        "outside_scopes",
        "",
    ),
    (
        "auditor-by-app-role",
        "admin.read",
        "admin/fleet",
        "outside_scopes",
        "",
    ),
    // Malformed requests.
    (
        "scientist",
        "training.launch",
        "models/exp-1",
        "unknown_action",
        "",
    ),
    (
        "scientist",
        "Training.Submit",
        "models/exp-1",
        "unknown_action",
        "",
    ),
    (
        "scientist",
        "training.submit",
        "models/../models/prod-chat",
        "invalid_resource",
        "",
    ),
    (
        "scientist",
        "training.submit",
        "/models/exp-1",
        "invalid_resource",
        "",
    ),
];

#[test]
fn example_policy_decides_the_table() {
    let policy = example();
    let compiled = policy.compiled();
    let mut failures = Vec::new();
    for (who, action, resource, code, detail) in TABLE {
        let d = compiled.decide(&caller(who), action, resource);
        let got_detail = match &d.reason {
            Reason::Allow => d.matched[0].grant.clone(),
            _ => d.denied_by().unwrap_or_default().to_owned(),
        };
        if d.reason.code() != *code || got_detail != *detail {
            failures.push(format!(
                "{who} {action} {resource}: expected {code} {detail}, got {}",
                d.explain()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn example_policy_is_lint_clean_and_documents_its_groups() {
    let policy = example();
    assert!(policy.lint().is_clean(), "{}", policy.lint());
    let compiled = policy.compiled();
    let groups: Vec<&str> = compiled
        .bound_group_ids()
        .iter()
        .map(|g| g.as_str())
        .collect();
    assert_eq!(groups.len(), 7);
    assert!(groups.windows(2).all(|w| w[0] < w[1]), "sorted");
}

#[test]
fn example_decision_serializes_for_audit() {
    let compiled = example().compiled();
    let d = compiled.decide(&caller("engineer"), "training.submit", "models/staging-3");
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        serde_json::json!({
            "effect": "allow",
            "action": "training.submit",
            "resource": "models/staging-3",
            "reason": {"code": "allow"},
            "matched": [{
                "binding": "group:ml-engineers",
                "role": "ml-engineer",
                "grant": "ml-engineer#0"
            }]
        })
    );
    assert_eq!(
        d.explain(),
        "allowed: training.submit on models/staging-3 by grant ml-engineer#0 \
         (role ml-engineer via group:ml-engineers)"
    );
    let d = compiled.decide(
        &caller("scientist-via-chat-app"),
        "datasets.write",
        "datasets/pii/x",
    );
    assert_eq!(
        d.explain(),
        "denied: datasets.write on datasets/pii/x is outside scope Inference.Invoke"
    );
}

#[test]
fn example_overage_is_resolved_through_bound_groups() {
    let compiled = example().compiled();
    let who = caller("scientist-overage");
    assert!(compiled.needs_group_resolution(&who));
    // A resolver asks Graph about the bound groups only, and passes back the hits.
    let resolved: Vec<GroupId> = compiled
        .bound_group_ids()
        .iter()
        .filter(|g| g.as_str() == DATA_SCIENTISTS)
        .cloned()
        .collect();
    let d = compiled.decide_with(
        &who,
        MembershipSource::Resolved(&resolved),
        "training.submit",
        "models/exp-42",
    );
    assert!(d.is_allowed(), "{}", d.explain());
}

// ------------------------------------------------------------- property tests

const GROUPS: &[&str] = &[
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000002",
    "00000000-0000-4000-8000-000000000003",
];
const TENANTS: &[&str] = &[HOME, PARTNER];
const OBJECTS: &[&str] = &[OID, "11111111-2222-4333-8444-555555555555"];
const WIDS: &[&str] = &["62e90394-69f5-4237-9190-012177145e10"];
const CLAIMS: &[&str] = &["A", "B"];
const SCOPES: &[&str] = &["S1", "S2", "S3"];
const ROLES: &[&str] = &["r0", "r1", "r2", "r3"];
const SPECS: &[&str] = &[
    "training.submit",
    "training.read",
    "training.*",
    "models.read",
    "models.deploy",
    "models.*",
    "inference.invoke",
    "datasets.read",
    "*",
];
const PATTERNS: &[&str] = &[
    "models/**",
    "models/*",
    "models/prod-*",
    "models/exp-*",
    "datasets/pii/**",
    "datasets/*",
    "**",
    "models/prod-a",
    "*/prod-*",
    "**/x",
    "m*/*-a",
];
const ACTIONS: &[&str] = &[
    "training.submit",
    "training.read",
    "models.read",
    "models.deploy",
    "inference.invoke",
    "datasets.read",
    "robots.fly",
];
const RESOURCES: &[&str] = &[
    "models/prod-a",
    "models/exp-1",
    "models/x",
    "datasets/pii/x",
    "datasets/public",
    "datasets/pii/a/b",
    "models/prod-a/x",
    "models-old/x",
    "datasets/pii-archive/x",
    "x",
    "models",
    "",
    "/models/x",
    "models//x",
    "models/../x",
    "models/*",
];

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn kind_def() -> impl Strategy<Value = KindDef> {
    prop_oneof![Just(KindDef::User), Just(KindDef::Application)]
}

fn grant() -> impl Strategy<Value = GrantDef> {
    (
        subsequence(SPECS.to_vec(), 1..=2),
        subsequence(PATTERNS.to_vec(), 1..=2),
    )
        .prop_map(|(a, r)| GrantDef::new(a, r))
}

fn roles() -> impl Strategy<Value = BTreeMap<String, RoleDef>> {
    let role = |i: usize| {
        (
            subsequence(ROLES[i + 1..].to_vec(), 0..=ROLES.len() - i - 1),
            prop::collection::vec(grant(), 0..=2),
        )
            .prop_map(|(include, grants)| {
                let mut r = RoleDef::default();
                r.include = strs(&include);
                r.grants = grants;
                r
            })
    };
    (role(0), role(1), role(2), role(3)).prop_map(|(a, b, c, d)| {
        ROLES
            .iter()
            .map(|s| s.to_string())
            .zip([a, b, c, d])
            .collect()
    })
}

fn binding() -> impl Strategy<Value = BindingDef> {
    let subject = prop_oneof![
        (0..GROUPS.len()).prop_map(|i| ("group", i, 0)),
        (0..CLAIMS.len()).prop_map(|i| ("app_role", i, 0)),
        (0..CLAIMS.len()).prop_map(|i| ("app_permission", i, 0)),
        (0..CLAIMS.len()).prop_map(|i| ("both", i, 0)),
        Just(("directory_role", 0, 0)),
        (0..TENANTS.len()).prop_map(|i| ("tenant", i, 0)),
        (0..TENANTS.len(), 0..OBJECTS.len()).prop_map(|(t, o)| ("principal", t, o)),
    ];
    let kinds = prop_oneof![
        Just(None),
        Just(Some(vec![KindDef::User])),
        Just(Some(vec![KindDef::Application])),
        Just(Some(vec![KindDef::User, KindDef::Application])),
    ];
    (
        subject,
        subsequence(ROLES.to_vec(), 1..=2),
        any::<bool>(),
        kinds,
        prop::option::of(subsequence(TENANTS.to_vec(), 1..=2)),
    )
        .prop_map(|((kind, i, j), roles, guests, kinds, qualifier)| {
            let mut b = BindingDef::default();
            b.roles = strs(&roles);
            b.guests = guests;
            match kind {
                "group" => b.group = Some(GROUPS[i].into()),
                "app_role" => b.app_role = Some(CLAIMS[i].into()),
                "app_permission" => b.app_permission = Some(CLAIMS[i].into()),
                "both" => {
                    b.app_role = Some(CLAIMS[i].into());
                    b.app_permission = Some(CLAIMS[i].into());
                }
                "directory_role" => b.directory_role = Some(WIDS[i].into()),
                "tenant" => b.tenant = Some(TENANTS[i].into()),
                _ => b.principal = Some(PrincipalRef::new(TENANTS[i], OBJECTS[j])),
            }
            if b.app_role.is_none() && b.app_permission.is_none() {
                b.kinds = kinds;
            }
            // Claim values are trusted only from the tenants a binding names.
            if b.app_role.is_some() || b.app_permission.is_some() || b.directory_role.is_some() {
                b.tenants = qualifier.map(|ts| strs(&ts));
            }
            b
        })
}

fn deny_rule(name: String) -> impl Strategy<Value = DenyDef> {
    let when = prop::option::of((
        prop::option::of(any::<bool>()),
        prop::option::of(kind_def()),
        prop::option::of(0..TENANTS.len()),
        prop::option::of(0..TENANTS.len()),
        prop::option::of(subsequence(TENANTS.to_vec(), 1..=2)),
    ));
    (
        when,
        subsequence(SPECS.to_vec(), 1..=2),
        subsequence(vec!["training.*", "inference.invoke"], 0..=1),
        subsequence(PATTERNS.to_vec(), 1..=2),
    )
        .prop_map(move |(when, actions, except, resources)| {
            let mut d = DenyDef::default();
            d.name = name.clone();
            d.when = when.map(|(guest, kind, tenant, not_in, tenant_in)| {
                let mut w = WhenDef::default();
                w.guest = guest;
                w.kind = kind;
                w.tenant = tenant.map(|t| TENANTS[t].to_owned());
                w.tenant_not_in = not_in.map(|t| vec![TENANTS[t].to_owned()]);
                w.tenant_in = tenant_in.map(|ts| strs(&ts));
                w
            });
            d.actions = strs(&actions);
            d.except_actions = strs(&except);
            d.resources = strs(&resources);
            d
        })
}

fn sod_rule() -> impl Strategy<Value = SeparationOfDutiesDef> {
    (
        prop::sample::select(vec!["training.submit", "training.*"]),
        prop::sample::select(vec!["models.deploy", "models.*"]),
        subsequence(PATTERNS.to_vec(), 1..=2),
    )
        .prop_map(|(a, b, resources)| {
            let mut s = SeparationOfDutiesDef::default();
            s.name = "sod".into();
            s.actions = vec![a.into(), b.into()];
            s.resources = strs(&resources);
            s
        })
}

fn document() -> impl Strategy<Value = PolicyDocument> {
    (
        roles(),
        prop::collection::vec(binding(), 0..=5),
        prop::collection::vec(prop::option::of(subsequence(SPECS.to_vec(), 0..=3)), 3),
        prop::collection::vec(deny_rule("d".into()), 0..=2),
        prop::option::of(sod_rule()),
        any::<bool>(),
    )
        .prop_map(|(roles, bindings, scopes, deny, sod, lenient)| {
            let mut doc = PolicyDocument::new();
            doc.roles = roles;
            doc.bindings = bindings;
            for (name, ceiling) in SCOPES.iter().zip(scopes) {
                if let Some(c) = ceiling {
                    doc.scopes.insert(name.to_string(), strs(&c));
                }
            }
            doc.deny = deny
                .into_iter()
                .enumerate()
                .map(|(i, mut d)| {
                    d.name = format!("d{i}");
                    d
                })
                .collect();
            doc.separation_of_duties = sod.into_iter().collect();
            if lenient {
                doc.on_group_overage = OnGroupOverage::EvaluateWithoutGroups;
            }
            doc
        })
}

#[derive(Clone, Debug)]
enum View {
    FromToken,
    Resolved(Vec<GroupId>),
    Unavailable,
}

fn principal() -> impl Strategy<Value = (Principal, View)> {
    let groups = prop_oneof![
        subsequence(GROUPS.to_vec(), 0..=GROUPS.len()).prop_map(|g| listed(&g)),
        Just(TokenGroups::Overage),
        Just(TokenGroups::NotEmitted),
    ];
    let view = prop_oneof![
        3 => Just(View::FromToken),
        1 => subsequence(GROUPS.to_vec(), 0..=GROUPS.len()).prop_map(|g| View::Resolved(
            g.iter().map(|g| GroupId::parse(g).unwrap()).collect()
        )),
        1 => Just(View::Unavailable),
    ];
    (
        any::<bool>(),
        0..3u8,
        0..TENANTS.len(),
        0..OBJECTS.len(),
        subsequence(SCOPES.to_vec(), 0..=2),
        subsequence(CLAIMS.to_vec(), 0..=2),
        groups,
        subsequence(WIDS.to_vec(), 0..=1),
        view,
    )
        .prop_map(|(app, guest, t, o, scopes, claims, groups, wids, view)| {
            let mut b = Principal::builder(
                TenantId::parse(TENANTS[t]).unwrap(),
                ObjectId::parse(OBJECTS[o]).unwrap(),
            )
            .roles(claims)
            .groups(groups)
            .directory_roles(wids);
            if app {
                b = b.kind(PrincipalKind::Application);
            } else {
                b = b.scopes(scopes);
            }
            match guest {
                0 => {}
                1 => b = b.guest_from(TenantId::parse(UNIVERSITY).unwrap()),
                _ => b = b.guest_unknown(),
            }
            (b.build(), view)
        })
}

// ------------------------------------------------------- the reference evaluator
//
// Written for obviousness, not speed: strings, recursion and linear scans over the
// document, straight from the documented semantics.

fn ref_valid_resource(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 1024
        && !r.starts_with('/')
        && r.split('/').count() <= 32
        && r.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.contains('*')
                && !s.chars().any(|c| c.is_control())
        })
}

fn ref_seg_match(p: &str, s: &str) -> bool {
    match p.chars().next() {
        None => s.is_empty(),
        Some('*') => (0..=s.len())
            .filter(|i| s.is_char_boundary(*i))
            .any(|i| ref_seg_match(&p[1..], &s[i..])),
        Some(c) => s.starts_with(c) && ref_seg_match(&p[c.len_utf8()..], &s[c.len_utf8()..]),
    }
}

fn ref_path_match(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len()).any(|i| ref_path_match(rest, &s[i..])),
        Some((seg, rest)) => {
            !s.is_empty() && ref_seg_match(seg, s[0]) && ref_path_match(rest, &s[1..])
        }
    }
}

fn ref_matches(pattern: &str, resource: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = resource.split('/').collect();
    ref_path_match(&p, &s)
}

fn ref_seg_intersect(a: &str, b: &str) -> bool {
    let (ac, bc) = (a.chars().next(), b.chars().next());
    fn skip(s: &str) -> &str {
        &s[s.chars().next().map_or(0, char::len_utf8)..]
    }
    match (ac, bc) {
        (None, None) => true,
        (Some('*'), _) if ref_seg_intersect(skip(a), b) => true,
        (_, Some('*')) if ref_seg_intersect(a, skip(b)) => true,
        (Some('*'), Some(c)) if c != '*' => ref_seg_intersect(a, skip(b)),
        (Some(c), Some('*')) if c != '*' => ref_seg_intersect(skip(a), b),
        (Some(x), Some(y)) if x != '*' && y != '*' => x == y && ref_seg_intersect(skip(a), skip(b)),
        _ => false,
    }
}

fn ref_path_intersect(a: &[&str], b: &[&str]) -> bool {
    let (a0, b0) = (a.first().copied(), b.first().copied());
    if a0.is_none() && b0.is_none() {
        return true;
    }
    if a0 == Some("**") && ref_path_intersect(&a[1..], b) {
        return true;
    }
    if b0 == Some("**") && ref_path_intersect(a, &b[1..]) {
        return true;
    }
    match (a0, b0) {
        (Some("**"), Some(y)) if y != "**" => ref_path_intersect(a, &b[1..]),
        (Some(x), Some("**")) if x != "**" => ref_path_intersect(&a[1..], b),
        (Some(x), Some(y)) if x != "**" && y != "**" => {
            ref_seg_intersect(x, y) && ref_path_intersect(&a[1..], &b[1..])
        }
        _ => false,
    }
}

fn ref_intersects(p: &str, q: &str) -> bool {
    let a: Vec<&str> = p.split('/').collect();
    let b: Vec<&str> = q.split('/').collect();
    ref_path_intersect(&a, &b)
}

fn ref_expand(specs: &[String]) -> BTreeSet<&'static str> {
    BUILTIN_ACTIONS
        .iter()
        .copied()
        .filter(|a| {
            specs.iter().any(|s| {
                s == "*"
                    || s == a
                    || s.strip_suffix(".*")
                        .is_some_and(|f| a.split('.').next() == Some(f))
            })
        })
        .collect()
}

fn ref_admits(b: &BindingDef, p: &Principal) -> bool {
    if p.is_guest() && !b.guests {
        return false;
    }
    let kinds = match (&b.kinds, &b.principal) {
        (Some(k), _) => k.clone(),
        (None, Some(_)) => vec![KindDef::User, KindDef::Application],
        (None, None) if b.app_role.is_some() || b.app_permission.is_some() => {
            return true; // the claim tables decide the kind
        }
        (None, None) => vec![KindDef::User],
    };
    kinds.iter().any(|k| match k {
        KindDef::User => p.kind() == PrincipalKind::User,
        KindDef::Application => p.kind() == PrincipalKind::Application,
    })
}

/// Some(true/false) when the binding's subject matches; None when it is a group binding
/// and the groups are unknown.
fn ref_subject(b: &BindingDef, p: &Principal, groups: Option<&[GroupId]>) -> Option<bool> {
    let user = p.kind() == PrincipalKind::User;
    let has = |v: &Option<String>| v.as_ref().is_some_and(|v| p.roles().contains(v));
    let trusted = b
        .tenants
        .as_ref()
        .is_none_or(|ts| ts.iter().any(|t| p.tenant().as_str() == t));
    Some(if let Some(g) = &b.group {
        return groups.map(|gs| gs.iter().any(|x| x.as_str() == g.to_lowercase()));
    } else if b.app_role.is_some() || b.app_permission.is_some() {
        trusted && ((user && has(&b.app_role)) || (!user && has(&b.app_permission)))
    } else if let Some(w) = &b.directory_role {
        trusted && p.directory_roles().iter().any(|x| *x == w.to_lowercase())
    } else if let Some(t) = &b.tenant {
        p.tenant().as_str() == t.to_lowercase()
    } else {
        let r = b.principal.as_ref().unwrap();
        p.tenant().as_str() == r.tenant && p.object_id().as_str() == r.object
    })
}

fn ref_closure(doc: &PolicyDocument, roles: &[String], out: &mut BTreeSet<String>) {
    for r in roles {
        if out.insert(r.clone()) {
            ref_closure(doc, &doc.roles[r].include, out);
        }
    }
}

fn ref_when(w: &Option<WhenDef>, p: &Principal) -> bool {
    let Some(w) = w else { return true };
    // An unknown guest status meets both guest conditions (fail closed).
    w.guest
        .is_none_or(|g| g == p.is_guest() || p.guest_status() == GuestStatus::Unknown)
        && w.kind.is_none_or(|k| match k {
            KindDef::User => p.kind() == PrincipalKind::User,
            KindDef::Application => p.kind() == PrincipalKind::Application,
        })
        && w.tenant.as_ref().is_none_or(|t| p.tenant().as_str() == t)
        && w.tenant_in
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|t| p.tenant().as_str() == t))
        && w.tenant_not_in
            .as_ref()
            .is_none_or(|ts| !ts.iter().any(|t| p.tenant().as_str() == t))
}

/// The first grant (role order, then grant order) of `roles` covering the request.
fn ref_grant(
    doc: &PolicyDocument,
    roles: &BTreeSet<String>,
    action: &str,
    resource: &str,
) -> Option<String> {
    for (name, role) in &doc.roles {
        if !roles.contains(name) {
            continue;
        }
        for (i, g) in role.grants.iter().enumerate() {
            if ref_expand(&g.actions).contains(action)
                && g.resources.iter().any(|p| ref_matches(p, resource))
            {
                return Some(format!("{name}#{i}"));
            }
        }
    }
    None
}

fn ref_holds(
    doc: &PolicyDocument,
    roles: &BTreeSet<String>,
    side: &str,
    s: &SeparationOfDutiesDef,
) -> bool {
    let side = ref_expand(&[side.to_owned()]);
    roles.iter().any(|r| {
        doc.roles[r].grants.iter().any(|g| {
            ref_expand(&g.actions).iter().any(|a| side.contains(a))
                && g.resources
                    .iter()
                    .any(|p| s.resources.iter().any(|q| ref_intersects(p, q)))
        })
    })
}

/// The reference decision: reason code, plus the grant (allow) or rule (deny by rule).
fn reference(
    doc: &PolicyDocument,
    p: &Principal,
    view: &View,
    action: &str,
    resource: &str,
) -> (&'static str, String) {
    if !BUILTIN_ACTIONS.contains(&action) {
        return ("unknown_action", String::new());
    }
    if !ref_valid_resource(resource) {
        return ("invalid_resource", String::new());
    }
    for d in &doc.deny {
        let actions: BTreeSet<_> = ref_expand(&d.actions)
            .difference(&ref_expand(&d.except_actions))
            .copied()
            .collect();
        if actions.contains(action)
            && ref_when(&d.when, p)
            && d.resources.iter().any(|r| ref_matches(r, resource))
        {
            return ("denied_by_rule", d.name.clone());
        }
    }
    if p.kind() == PrincipalKind::User
        && !p.scopes().iter().any(|s| {
            doc.scopes
                .get(s)
                .is_some_and(|c| ref_expand(c).contains(action))
        })
    {
        return ("outside_scopes", String::new());
    }
    let groups: Option<Vec<GroupId>> = match view {
        View::FromToken => match p.groups() {
            TokenGroups::Listed(g) => Some(g.clone()),
            _ => None,
        },
        View::Resolved(g) => Some(g.clone()),
        View::Unavailable => None,
    };
    let mut roles = BTreeSet::new();
    let mut group_roles = BTreeSet::new();
    let mut group_binding_applies = false;
    for b in &doc.bindings {
        if !ref_admits(b, p) {
            continue;
        }
        if b.group.is_some() {
            group_binding_applies = true;
            ref_closure(doc, &b.roles, &mut group_roles);
        }
        if ref_subject(b, p, groups.as_deref()) == Some(true) {
            ref_closure(doc, &b.roles, &mut roles);
        }
    }
    let unknown =
        groups.is_none() && group_binding_applies && doc.on_group_overage == OnGroupOverage::Deny;
    // A failed lookup is transient; a token nobody resolves is a configuration matter.
    let unknown_code = match view {
        View::Unavailable => "group_membership_unavailable",
        _ => "group_membership_unknown",
    };
    let Some(grant) = ref_grant(doc, &roles, action, resource) else {
        if unknown && ref_grant(doc, &group_roles, action, resource).is_some() {
            return (unknown_code, String::new());
        }
        return ("no_role_grants", String::new());
    };
    let covering: Vec<&SeparationOfDutiesDef> = doc
        .separation_of_duties
        .iter()
        .filter(|s| {
            ref_expand(&s.actions).contains(action)
                && s.resources.iter().any(|r| ref_matches(r, resource))
        })
        .collect();
    for s in &covering {
        if ref_holds(doc, &roles, &s.actions[0], s) && ref_holds(doc, &roles, &s.actions[1], s) {
            return ("separation_of_duties", s.name.clone());
        }
    }
    if unknown {
        let possible: BTreeSet<String> = roles.union(&group_roles).cloned().collect();
        for s in &covering {
            if ref_holds(doc, &possible, &s.actions[0], s)
                && ref_holds(doc, &possible, &s.actions[1], s)
            {
                return (unknown_code, String::new());
            }
        }
    }
    ("allow", grant)
}

fn decide(
    policy: &Policy,
    p: &Principal,
    view: &View,
    action: &str,
    resource: &str,
) -> (&'static str, String) {
    let compiled = policy.compiled();
    let d = match view {
        View::FromToken => compiled.decide(p, action, resource),
        View::Resolved(g) => {
            compiled.decide_with(p, MembershipSource::Resolved(g), action, resource)
        }
        View::Unavailable => {
            compiled.decide_with(p, MembershipSource::Unavailable, action, resource)
        }
    };
    let detail = match &d.reason {
        Reason::Allow => {
            assert!(!d.matched.is_empty(), "an allow names its bindings");
            assert!(d.matched.iter().all(|m| m.grant == d.matched[0].grant));
            d.matched[0].grant.clone()
        }
        Reason::DeniedByRule { rule } | Reason::SeparationOfDuties { rule } => rule.clone(),
        _ => String::new(),
    };
    (d.reason.code(), detail)
}

fn allowed(policy: &Policy, p: &Principal, view: &View, action: &str, resource: &str) -> bool {
    decide(policy, p, view, action, resource).0 == "allow"
}

fn load(doc: &PolicyDocument) -> Option<Policy> {
    Policy::from_document(doc.clone()).ok()
}

/// Guards the generators: random policies and callers must reach every outcome, or the
/// properties below would hold vacuously.
#[test]
fn random_cases_reach_every_outcome() {
    let mut runner = seeded::runner(256);
    let strategy = (document(), principal());
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for _ in 0..256 {
        let (doc, (p, view)) = strategy.new_tree(&mut runner).unwrap().current();
        let Some(policy) = load(&doc) else { continue };
        for action in ACTIONS {
            for resource in RESOURCES {
                *seen
                    .entry(decide(&policy, &p, &view, action, resource).0)
                    .or_default() += 1;
            }
        }
    }
    for code in [
        "allow",
        "no_role_grants",
        "outside_scopes",
        "denied_by_rule",
        "unknown_action",
        "invalid_resource",
        "separation_of_duties",
        "group_membership_unavailable",
        "group_membership_unknown",
    ] {
        assert!(
            seen.get(code).copied().unwrap_or(0) > 0,
            "{code} never seen: {seen:?}; {}",
            seeded::describe()
        );
    }
    eprintln!("{seen:?}");
}

proptest! {
    #![proptest_config(seeded::config(256))]

    #[test]
    fn compiled_evaluator_agrees_with_the_reference(doc in document(), (p, view) in principal()) {
        let policy = load(&doc);
        prop_assume!(policy.is_some());
        let policy = policy.unwrap();
        for action in ACTIONS {
            for resource in RESOURCES {
                let got = decide(&policy, &p, &view, action, resource);
                let want = reference(&doc, &p, &view, action, resource);
                prop_assert_eq!(got, want, "{} on {:?}", action, resource);
            }
        }
    }

    #[test]
    fn adding_a_deny_rule_never_grants_more(
        doc in document(),
        extra in deny_rule("extra".into()),
        (p, view) in principal(),
    ) {
        let (Some(before), Some(after)) = (load(&doc), {
            let mut more = doc.clone();
            more.deny.push(extra);
            load(&more)
        }) else {
            return Err(TestCaseError::reject("invalid policy"));
        };
        for action in ACTIONS {
            for resource in RESOURCES {
                if allowed(&after, &p, &view, action, resource) {
                    prop_assert!(allowed(&before, &p, &view, action, resource));
                }
            }
        }
    }

    #[test]
    fn removing_a_binding_never_grants_more(
        doc in document(),
        which in any::<prop::sample::Index>(),
        (p, view) in principal(),
    ) {
        // Separation of duties is the one deliberate exception: dropping the binding
        // that completes a conflict lifts the conflict.
        let mut doc = doc;
        doc.separation_of_duties.clear();
        prop_assume!(!doc.bindings.is_empty());
        let mut fewer = doc.clone();
        fewer.bindings.remove(which.index(doc.bindings.len()));
        let (Some(before), Some(after)) = (load(&doc), load(&fewer)) else {
            return Err(TestCaseError::reject("invalid policy"));
        };
        for action in ACTIONS {
            for resource in RESOURCES {
                if allowed(&after, &p, &view, action, resource) {
                    prop_assert!(allowed(&before, &p, &view, action, resource));
                }
            }
        }
    }

    #[test]
    fn a_scope_ceiling_never_widens_access(doc in document(), (p, view) in principal()) {
        // The same policy without ceilings (every scope allows everything) allows at
        // least as much, and whatever a delegated call is allowed is inside its scopes.
        let mut open = doc.clone();
        for s in SCOPES {
            open.scopes.insert(s.to_string(), vec!["*".into()]);
        }
        let (Some(ceiled), Some(open)) = (load(&doc), load(&open)) else {
            return Err(TestCaseError::reject("invalid policy"));
        };
        for action in ACTIONS {
            for resource in RESOURCES {
                if allowed(&ceiled, &p, &view, action, resource) {
                    prop_assert!(allowed(&open, &p, &view, action, resource));
                    if p.kind() == PrincipalKind::User {
                        let inside = p.scopes().iter().any(|s| {
                            doc.scopes.get(s).is_some_and(|c| ref_expand(c).contains(action))
                        });
                        prop_assert!(inside);
                    }
                }
            }
        }
    }
}
