//! Decisions: scopes, bindings, kinds and guests, deny rules, groups, separation of duties,
//! permissions listings.

use super::*;

#[test]
fn scope_ceiling_intersects_roles() {
    let p = load(BASE).compiled();
    let inference_only = user()
        .scopes(["Inference.Invoke"])
        .groups(groups(&[G1]))
        .build();
    let d = p.decide(&inference_only, "training.submit", "models/exp-1");
    assert_eq!(
        d.reason,
        Reason::OutsideScopes {
            scopes: vec!["Inference.Invoke".into()]
        }
    );
    let training = user()
        .scopes(["Inference.Invoke", "Training.Manage"])
        .groups(groups(&[G1]))
        .build();
    let d = p.decide(&training, "training.submit", "models/exp-1");
    assert!(d.is_allowed(), "{}", d.explain());
    assert_eq!(d.matched[0].binding, format!("group:{G1}"));
    assert_eq!(d.matched[0].role, "trainer");
    assert_eq!(d.matched[0].grant, "trainer#0");
    // Included role's grant, reported with the bound role.
    let d = p.decide(&training, "models.read", "models/prod-1");
    assert_eq!(d.matched[0].grant, "reader#0");
    assert_eq!(d.matched[0].role, "trainer");
    // Scopes allow it, roles do not.
    let d = p.decide(&training, "training.submit", "models/prod-1");
    assert_eq!(d.reason, Reason::NoRoleGrants);
}

#[test]
fn scopes_and_roles_compare_byte_exact() {
    let p = load(BASE).compiled();
    for scp in [
        "training.manage",
        "NotTraining.Manage",
        "Training.Manage ",
        "Training.Managed",
    ] {
        let u = user().scopes([scp]).groups(groups(&[G1])).build();
        assert_eq!(
            p.decide(&u, "training.submit", "models/exp-1")
                .reason
                .code(),
            "outside_scopes",
            "{scp:?}"
        );
    }
    let p = load(
        r#"version = 1
[roles.admin]
grants = [{ actions = ["*"], resources = ["models/**"] }]
[[bindings]]
app_role = "Admin"
roles = ["admin"]
[scopes]
"Admin" = ["*"]
"#,
    )
    .compiled();
    for role in ["NotAdmin", "admin", "Admin ", "ADMIN", "Admın"] {
        let u = user().scopes(["Admin"]).roles([role]).build();
        assert_eq!(
            p.decide(&u, "models.read", "models/x").reason,
            Reason::NoRoleGrants,
            "{role}"
        );
    }
    let u = user().scopes(["Admin"]).roles(["Admin"]).build();
    assert!(p.decide(&u, "models.read", "models/x").is_allowed());
    let p2 = load(BASE).compiled();
    let u = user().scopes(["Training.Manage"]).build();
    assert_eq!(
        p2.decide(&u, "Training.Submit", "models/exp-1").reason,
        Reason::UnknownAction
    );
}

#[test]
fn app_roles_and_app_permissions_are_distinct() {
    let p = load(
        r#"version = 1
[roles.r]
grants = [{ actions = ["models.read"], resources = ["models/**"] }]
[[bindings]]
app_role = "Models.Reader"
roles = ["r"]
[[bindings]]
app_permission = "Models.Pipeline"
roles = ["r"]
[[bindings]]
app_role = "Both"
app_permission = "Both"
roles = ["r"]
[scopes]
"Models.Read" = ["models.read"]
"#,
    )
    .compiled();
    let u = |roles: &[&str]| user().scopes(["Models.Read"]).roles(roles.to_vec()).build();
    let app = |roles: &[&str]| {
        user()
            .kind(PrincipalKind::Application)
            .roles(roles.to_vec())
            .build()
    };
    let ok = |p2: &Principal| p.decide(p2, "models.read", "models/x").is_allowed();
    assert!(ok(&u(&["Models.Reader"])));
    assert!(
        !ok(&app(&["Models.Reader"])),
        "an app role is not an app permission"
    );
    assert!(ok(&app(&["Models.Pipeline"])));
    assert!(
        !ok(&u(&["Models.Pipeline"])),
        "an app permission is not an app role"
    );
    assert!(ok(&u(&["Both"])));
    assert!(ok(&app(&["Both"])));
    let d = p.decide(&app(&["Both"]), "models.read", "models/x");
    assert_eq!(d.matched[0].binding, "app_role:Both|app_permission:Both");
}

#[test]
fn guests_and_kinds_are_admitted_only_on_purpose() {
    let p = load(
        r#"version = 1
[roles.r]
grants = [{ actions = ["models.read"], resources = ["models/**"] }]
[[bindings]]
tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
roles = ["r"]
[[bindings]]
group = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
roles = ["r"]
guests = true
kinds = ["user", "application"]
[scopes]
"Models.Read" = ["models.read"]
"#,
    )
    .compiled();
    let home = TenantId::parse(OTHER_T).unwrap();
    let member = user().scopes(["Models.Read"]).build();
    let guest = user()
        .scopes(["Models.Read"])
        .guest_from(home.clone())
        .build();
    let app = user().kind(PrincipalKind::Application).build();
    assert!(p.decide(&member, "models.read", "models/x").is_allowed());
    assert_eq!(
        p.decide(&guest, "models.read", "models/x").reason,
        Reason::NoRoleGrants
    );
    assert_eq!(
        p.decide(&app, "models.read", "models/x").reason,
        Reason::NoRoleGrants
    );
    let guest_in_g2 = user()
        .scopes(["Models.Read"])
        .guest_from(home)
        .groups(groups(&[G2]))
        .build();
    assert!(
        p.decide(&guest_in_g2, "models.read", "models/x")
            .is_allowed()
    );
    let app_in_g2 = user()
        .kind(PrincipalKind::Application)
        .groups(groups(&[G2]))
        .build();
    assert!(p.decide(&app_in_g2, "models.read", "models/x").is_allowed());
}

#[test]
fn principal_bindings_need_tenant_and_object() {
    let p = load(&format!(
        r#"version = 1
[roles.r]
grants = [{{ actions = ["models.read"], resources = ["models/**"] }}]
[[bindings]]
principal = {{ tenant = "{OTHER_T}", object = "{OID}" }}
roles = ["r"]
"#
    ))
    .compiled();
    let same_oid_other_tenant = user().kind(PrincipalKind::Application).build();
    assert_eq!(
        p.decide(&same_oid_other_tenant, "models.read", "models/x")
            .reason,
        Reason::NoRoleGrants
    );
    let right = Principal::builder(
        TenantId::parse(OTHER_T).unwrap(),
        ObjectId::parse(OID).unwrap(),
    )
    .kind(PrincipalKind::Application)
    .build();
    assert!(p.decide(&right, "models.read", "models/x").is_allowed());
}

#[test]
fn deny_rules_override_and_except_actions_restrict() {
    let p = load(&format!(
        r#"version = 1
[roles.all]
grants = [{{ actions = ["*"], resources = ["**"] }}]
[[bindings]]
tenant = "{T}"
roles = ["all"]
guests = true
[[bindings]]
tenant = "{OTHER_T}"
roles = ["all"]
[scopes]
"All" = ["*"]
[[deny]]
name = "no-guests-on-pii"
when = {{ guest = true }}
actions = ["*"]
resources = ["datasets/pii/**"]
[[deny]]
name = "prod-models-are-not-deleted"
actions = ["models.delete"]
resources = ["models/prod-*"]
[[deny]]
name = "partner-inference-only"
when = {{ tenant = "{OTHER_T}" }}
actions = ["*"]
except_actions = ["inference.*"]
resources = ["**"]
"#
    ))
    .compiled();
    let member = user().scopes(["All"]).build();
    let guest = user()
        .scopes(["All"])
        .guest_from(TenantId::parse(OTHER_T).unwrap())
        .build();
    let partner = Principal::builder(
        TenantId::parse(OTHER_T).unwrap(),
        ObjectId::parse(OID).unwrap(),
    )
    .scopes(["All"])
    .build();
    assert!(
        p.decide(&member, "datasets.read", "datasets/pii/x")
            .is_allowed()
    );
    let d = p.decide(&guest, "datasets.read", "datasets/pii/x");
    assert_eq!(d.denied_by(), Some("no-guests-on-pii"));
    assert_eq!(
        d.explain(),
        "denied: datasets.read on datasets/pii/x by rule no-guests-on-pii"
    );
    assert!(
        p.decide(&guest, "datasets.read", "datasets/public/x")
            .is_allowed()
    );
    assert_eq!(
        p.decide(&member, "models.delete", "models/prod-chat")
            .denied_by(),
        Some("prod-models-are-not-deleted")
    );
    assert!(
        p.decide(&member, "models.delete", "models/exp-1")
            .is_allowed()
    );
    assert!(
        p.decide(&partner, "inference.invoke", "endpoints/x")
            .is_allowed()
    );
    assert_eq!(
        p.decide(&partner, "models.read", "models/x").denied_by(),
        Some("partner-inference-only")
    );
}

#[test]
fn when_conditions_all_have_to_hold() {
    let p = load(&format!(
        r#"version = 1
[roles.all]
grants = [{{ actions = ["*"], resources = ["**"] }}]
[[bindings]]
tenant = "{T}"
roles = ["all"]
[scopes]
"All" = ["*"]
[[deny]]
name = "contradiction"
when = {{ tenant = "{T}", tenant_in = ["{OTHER_T}"] }}
actions = ["*"]
resources = ["**"]
[[deny]]
name = "members-of-t-no-delete"
when = {{ tenant_in = ["{T}", "{OTHER_T}"], guest = false, kind = "user" }}
actions = ["models.delete"]
resources = ["**"]
"#
    ))
    .compiled();
    let member = user().scopes(["All"]).build();
    assert!(p.decide(&member, "models.read", "models/x").is_allowed());
    assert_eq!(
        p.decide(&member, "models.delete", "models/x").denied_by(),
        Some("members-of-t-no-delete")
    );
}

#[test]
fn invalid_input_is_a_deny_never_a_panic() {
    let p = load(BASE).compiled();
    let u = user()
        .scopes(["Training.Manage"])
        .groups(groups(&[G1]))
        .build();
    for (resource, problem) in [
        ("", PathProblem::Empty),
        ("/models/exp-1", PathProblem::LeadingSlash),
        ("models/exp-1/", PathProblem::EmptySegment),
        ("models/../models/exp-1", PathProblem::DotSegment),
        ("models/exp-*", PathProblem::Wildcard),
        ("models/exp-1\u{202e}", PathProblem::ForbiddenCharacter),
        ("models/exp-1\u{fe0f}", PathProblem::ForbiddenCharacter),
        ("models\\exp-1", PathProblem::Backslash),
        ("models\u{ff0f}exp-1", PathProblem::SeparatorLookalike),
    ] {
        assert_eq!(
            p.decide(&u, "training.submit", resource).reason,
            Reason::InvalidResource { problem },
            "{resource:?}"
        );
    }
    assert_eq!(
        p.decide(&u, "training", "models/exp-1").reason,
        Reason::UnknownAction
    );
    assert_eq!(p.decide(&u, "", "").reason, Reason::UnknownAction);
    let huge = "m/".repeat(100_000);
    assert_eq!(
        p.decide(&u, "training.submit", &huge).reason,
        Reason::InvalidResource {
            problem: PathProblem::TooLong
        }
    );
}

#[test]
fn group_overage_denies_distinctly_and_resolution_decides() {
    let p = load(BASE).compiled();
    let overage = user()
        .scopes(["Training.Manage"])
        .groups(TokenGroups::Overage)
        .build();
    assert!(p.needs_group_resolution(&overage));
    // Nobody resolves the token's groups: a configuration matter (403), not an outage.
    let d = p.decide(&overage, "training.submit", "models/exp-1");
    assert_eq!(d.reason, Reason::GroupMembershipUnknown { overage: true });
    assert!(
        d.explain()
            .ends_with("configure a group resolver (Microsoft Graph)")
    );
    // A request no group binding could grant is an ordinary "no role grants it".
    let d = p.decide(&overage, "training.submit", "models/prod-1");
    assert_eq!(d.reason, Reason::NoRoleGrants);
    // Not emitted is not "no groups" either.
    let silent = user()
        .scopes(["Training.Manage"])
        .groups(TokenGroups::NotEmitted)
        .build();
    let d = p.decide(&silent, "training.submit", "models/exp-1");
    assert_eq!(d.reason, Reason::GroupMembershipUnknown { overage: false });
    assert!(
        d.explain().contains("set groups_claim_emitted"),
        "{}",
        d.explain()
    );
    // A resolver that failed is transient: 503 material.
    assert_eq!(
        p.decide_with(
            &silent,
            MembershipSource::Unavailable,
            "training.submit",
            "models/exp-1"
        )
        .reason,
        Reason::GroupMembershipUnavailable
    );
    assert_eq!(p.bound_group_ids(), &[GroupId::parse(G1).unwrap()]);
    let resolved = [GroupId::parse(G1).unwrap()];
    let d = p.decide_with(
        &overage,
        MembershipSource::Resolved(&resolved),
        "training.submit",
        "models/exp-1",
    );
    assert!(d.is_allowed());
    let d = p.decide_with(
        &user()
            .scopes(["Training.Manage"])
            .groups(groups(&[G1]))
            .build(),
        MembershipSource::Unavailable,
        "training.submit",
        "models/exp-1",
    );
    assert_eq!(d.reason, Reason::GroupMembershipUnavailable);
    // Applications are not admitted by the group binding: their overage does not matter.
    let app = user()
        .kind(PrincipalKind::Application)
        .groups(TokenGroups::Overage)
        .build();
    assert!(!p.needs_group_resolution(&app));
    assert_eq!(
        p.decide(&app, "training.submit", "models/exp-1").reason,
        Reason::NoRoleGrants
    );

    let lenient = load(&BASE.replace(
        "version = 1",
        "version = 1\non_group_overage = \"evaluate_without_groups\"",
    ))
    .compiled();
    assert_eq!(
        lenient.on_group_overage(),
        OnGroupOverage::EvaluateWithoutGroups
    );
    assert_eq!(
        lenient
            .decide(&overage, "training.submit", "models/exp-1")
            .reason,
        Reason::NoRoleGrants
    );
}

const SOD: &str = r#"
version = 1
[roles.trainer]
grants = [{ actions = ["training.submit"], resources = ["models/**"] }]
[roles.deployer]
grants = [{ actions = ["models.deploy"], resources = ["models/prod-*"] }]
[roles.reader]
grants = [{ actions = ["models.read"], resources = ["models/**"] }]
[[bindings]]
group = "0b1f2e3d-4c5b-4a69-8877-665544332211"
roles = ["trainer"]
[[bindings]]
group = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
roles = ["deployer"]
[[bindings]]
app_role = "Reader"
roles = ["reader"]
[scopes]
"All" = ["*"]
[[separation_of_duties]]
name = "train-or-deploy-prod"
actions = ["training.submit", "models.deploy"]
resources = ["models/prod-*"]
"#;

#[test]
fn separation_of_duties_denies_holders_of_both() {
    let p = load(SOD).compiled();
    let trainer = user().scopes(["All"]).groups(groups(&[G1])).build();
    let both = user().scopes(["All"]).groups(groups(&[G1, G2])).build();
    assert!(
        p.decide(&trainer, "training.submit", "models/prod-chat")
            .is_allowed()
    );
    let d = p.decide(&both, "training.submit", "models/prod-chat");
    assert_eq!(
        d.reason,
        Reason::SeparationOfDuties {
            rule: "train-or-deploy-prod".into()
        }
    );
    assert_eq!(
        p.decide(&both, "models.deploy", "models/prod-chat")
            .denied_by(),
        Some("train-or-deploy-prod")
    );
    // Outside the rule's resources, holding both is fine.
    assert!(
        p.decide(&both, "training.submit", "models/exp-1")
            .is_allowed()
    );
    assert_eq!(
        p.permissions(&both).separation_of_duties,
        ["train-or-deploy-prod"]
    );

    // With unknown groups, a conflict that groups could complete fails closed.
    let reader_overage = user()
        .scopes(["All"])
        .roles(["Reader"])
        .groups(TokenGroups::Overage)
        .build();
    assert!(
        p.decide(&reader_overage, "models.read", "models/prod-chat")
            .is_allowed()
    );
    assert_eq!(
        p.decide(&reader_overage, "training.submit", "models/prod-chat")
            .reason,
        Reason::GroupMembershipUnknown { overage: true }
    );
    assert_eq!(
        p.decide_with(
            &reader_overage,
            MembershipSource::Unavailable,
            "training.submit",
            "models/prod-chat"
        )
        .reason,
        Reason::GroupMembershipUnavailable
    );
    let lint = load(SOD).lint();
    let w: Vec<_> = lint
        .with_code(LintCode::SeparationOfDutiesReachable)
        .collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].key_path, "separation_of_duties[0]");
    assert_eq!(
        w[0].message,
        format!(
            "bindings group:{G1} and group:{G2} together give both sides of train-or-deploy-prod; \
             such callers are denied both"
        )
    );
}

#[test]
fn permissions_list_effective_grants() {
    let p = load(BASE).compiled();
    let u = user()
        .scopes(["Inference.Invoke", "Training.Manage"])
        .groups(groups(&[G1]))
        .build();
    let perms = p.permissions(&u);
    assert_eq!(perms.groups, MembershipKnowledge::Evaluated);
    let roles: Vec<_> = perms.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(roles, ["reader", "trainer"]);
    assert_eq!(perms.roles[0].included_by, ["trainer"]);
    assert_eq!(perms.roles[1].bindings, [format!("group:{G1}")]);
    let grants: Vec<_> = perms.grants.iter().map(|g| g.grant.as_str()).collect();
    assert_eq!(grants, ["reader#0", "trainer#0"]);
    assert_eq!(
        perms.grants[1].actions,
        ["training.submit", "training.read", "training.cancel"]
    );
    assert_eq!(perms.policy_version, p.version_hash());
    let json = serde_json::to_value(&perms).unwrap();
    assert_eq!(json["grants"][0]["resources"][0], "models/**");

    // Inference.Invoke alone: the trainer's grants are cut to nothing.
    let narrow = user()
        .scopes(["Inference.Invoke"])
        .groups(groups(&[G1]))
        .build();
    assert!(p.permissions(&narrow).grants.is_empty());
    let overage = user().groups(TokenGroups::Overage).build();
    assert_eq!(
        p.permissions(&overage).groups,
        MembershipKnowledge::Unavailable
    );
}

#[test]
fn allow_names_every_binding_that_led_to_the_grant() {
    let mut src = String::from(
        "version = 1\n[roles.r]\ngrants = [{ actions = [\"models.read\"], resources = [\"models/**\"] }]\n[scopes]\n\"S\" = [\"*\"]\n",
    );
    let mut ids = Vec::new();
    for i in 0..300 {
        let g = format!("{i:08x}-0000-4000-8000-000000000000");
        src.push_str(&format!("[[bindings]]\ngroup = \"{g}\"\nroles = [\"r\"]\n"));
        ids.push(GroupId::parse(&g).unwrap());
    }
    let p = load(&src).compiled();
    let u = user()
        .scopes(["S"])
        .groups(TokenGroups::Listed(ids))
        .build();
    let d = p.decide(&u, "models.read", "models/x");
    // More than the on-stack hit buffer holds: the allow path recollects.
    assert_eq!(d.matched.len(), 300);
    assert_eq!(
        d.matched[299].binding,
        "group:0000012b-0000-4000-8000-000000000000"
    );
}
