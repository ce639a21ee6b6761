//! Unit tests of loading, validation, evaluation and lints.

use super::*;
use crate::decision::Reason;
use crate::ids::{GroupId, ObjectId, TenantId};
use crate::principal::{Groups, Principal, PrincipalKind};

const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_T: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const OID: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";
const G1: &str = "0b1f2e3d-4c5b-4a69-8877-665544332211";
const G2: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

fn user() -> crate::principal::PrincipalBuilder {
    Principal::builder(TenantId::parse(T).unwrap(), ObjectId::parse(OID).unwrap())
}

fn groups(ids: &[&str]) -> Groups {
    Groups::Listed(ids.iter().map(|g| GroupId::parse(g).unwrap()).collect())
}

fn load(src: &str) -> Policy {
    Policy::from_toml_str(src).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(src: &str) -> String {
    Policy::from_toml_str(src).unwrap_err().to_string()
}

const BASE: &str = r#"
version = 1
[roles.reader]
grants = [{ actions = ["models.read"], resources = ["models/**"] }]
[roles.trainer]
include = ["reader"]
grants = [{ actions = ["training.*"], resources = ["models/exp-*"] }]
[[bindings]]
group = "0b1f2e3d-4c5b-4a69-8877-665544332211"
roles = ["trainer"]
[scopes]
"Training.Manage" = ["training.*", "models.read"]
"Inference.Invoke" = ["inference.*"]
"#;

// ------------------------------------------------------------------ load errors

#[test]
fn load_errors_name_the_key_path() {
    let cases: &[(&str, &str)] = &[
        (
            "version = 2",
            "policy: version: unsupported policy version 2 (expected 1)",
        ),
        (
            "version = 1\n[roles.a]\ninclude = [\"b\"]",
            "policy: roles.a.include[0]: unknown role \"b\"",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"training.fly\"], resources = [\"models/x\"] }]",
            "policy: roles.a.grants[0].actions[0]: unknown action \"training.fly\"",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"robots.*\"], resources = [\"models/x\"] }]",
            "policy: roles.a.grants[0].actions[0]: no known action matches \"robots.*\"",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"training\"], resources = [\"models/x\"] }]",
            "policy: roles.a.grants[0].actions[0]: malformed action \"training\": an action is family.verb",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"models.read\"], resources = [\"models/a**\"] }]",
            "policy: roles.a.grants[0].resources[0]: bad resource pattern \"models/a**\": '**' must be a whole segment",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"models.read\"], resources = [\"/models\"] }]",
            "policy: roles.a.grants[0].resources[0]: bad resource pattern \"/models\": leading '/'",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"models.read\"], resources = [] }]",
            "policy: roles.a.grants[0].resources: resources must not be empty",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\ngroup = \"not-a-guid\"\nroles = [\"a\"]",
            "policy: bindings[0].group: malformed group id \"not-a-guid\": expected a GUID",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\nprincipal = { tenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\", object = \"x\" }\nroles = [\"a\"]",
            "policy: bindings[0].principal.object: malformed object id \"x\": expected a GUID",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\nroles = [\"a\"]",
            "policy: bindings[0]: a binding needs one subject: group, app_role, app_permission, directory_role, tenant or principal",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\ngroup = \"0b1f2e3d-4c5b-4a69-8877-665544332211\"\ntenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\nroles = [\"a\"]",
            "policy: bindings[0]: a binding has exactly one subject, found group and tenant",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\napp_role = \"X\"\nkinds = [\"application\"]\nroles = [\"a\"]",
            "policy: bindings[0].kinds: `kinds` cannot be combined with `app_role`, which fixes the kind",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\napp_role = \"X\"\nroles = [\"a\", \"a\"]",
            "policy: bindings[0].roles[1]: duplicate role \"a\"",
        ),
        (
            "version = 1\n[roles.a]\ninclude = [\"b\"]\n[roles.b]\ninclude = [\"c\"]\n[roles.c]\ninclude = [\"a\"]",
            "policy: roles.a.include: roles include each other: a -> b -> c -> a",
        ),
        (
            "version = 1\n[actions]\ncustom = [\"models.read\"]",
            "policy: actions.custom[0]: duplicate action \"models.read\"",
        ),
        (
            "version = 1\n[roles.\"adm\u{0456}n\"]",
            "policy: roles.\"admіn\": identifier \"adm\\u{456}n\" mixes Latin and Cyrillic letters",
        ),
        (
            "version = 1\n[roles.\"admin\u{202e}\"]",
            "policy: roles.\"admin\\u{202e}\": identifier \"admin\\u{202e}\" contains the bidirectional control character U+202E",
        ),
        (
            "version = 1\n[scopes]\n\"Inference Invoke\" = [\"inference.*\"]",
            "policy: scopes.\"Inference Invoke\": identifier \"Inference Invoke\" contains white space",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\napp_role = \"Platform.Adm\u{200b}in\"\nroles = [\"a\"]",
            "policy: bindings[0].app_role: identifier \"Platform.Adm\\u{200b}in\" contains the invisible character U+200B",
        ),
        (
            "version = 1\n[[deny]]\nname = \"x\"\nactions = [\"*\"]\nresources = [\"**\"]\n[[deny]]\nname = \"x\"\nactions = [\"*\"]\nresources = [\"**\"]",
            "policy: deny[1].name: duplicate rule name \"x\"",
        ),
        (
            "version = 1\n[[deny]]\nname = \"x\"\nactions = [\"inference.*\"]\nexcept_actions = [\"inference.*\"]\nresources = [\"**\"]",
            "policy: deny[0].except_actions: actions minus except_actions must not be empty",
        ),
        (
            "version = 1\n[[deny]]\nname = \"x\"\nwhen = { tenant_in = [\"nope\"] }\nactions = [\"*\"]\nresources = [\"**\"]",
            "policy: deny[0].when.tenant_in[0]: malformed tenant id \"nope\": expected a GUID",
        ),
        (
            "version = 1\n[[separation_of_duties]]\nname = \"s\"\nactions = [\"training.submit\"]\nresources = [\"**\"]",
            "policy: separation_of_duties[0].actions: separation of duties needs exactly two disjoint action specs, found 1",
        ),
        (
            "version = 1\n[[separation_of_duties]]\nname = \"s\"\nactions = [\"training.*\", \"training.submit\"]\nresources = [\"**\"]",
            "policy: separation_of_duties[0].actions: the two action specs of a separation-of-duty rule overlap",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(load_err(src), *expected, "{src}");
    }
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = Policy::from_toml_str(
        "version = 1\n[[bindings]]\nemail = \"ceo@contoso.com\"\nroles = []\n",
    )
    .unwrap_err();
    assert!(
        matches!(e.kind(), PolicyErrorKind::Syntax { line: Some(3), .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("policy:3:1: unknown field `email`"),
        "{e}"
    );
    for field in ["upn", "name = 1", "display_name"] {
        let src = format!("version = 1\n[[bindings]]\n{field} = \"x\"\nroles = []\n");
        let src = src.replace("= 1 = \"x\"", "= 1");
        let error = Policy::from_toml_str(&src).unwrap_err();
        // Refused as an unknown field, before any subject or role is looked at.
        assert!(
            matches!(error.kind(), PolicyErrorKind::Syntax { .. }),
            "{field}: {error}"
        );
    }
    assert_eq!(
        load_err("roles = 1"),
        "policy:1:9: invalid type: integer `1`, expected a table"
    );
    assert!(load_err("[roles.a]\n").contains("missing field `version`"));
}

#[test]
fn json_is_the_same_shape_and_rejects_duplicate_keys() {
    let json = r#"{"version":1,
      "roles":{"reader":{"grants":[{"actions":["models.read"],"resources":["models/**"]}]}},
      "bindings":[{"app_permission":"Models.Read","roles":["reader"]}]}"#;
    let p = Policy::from_json_str(json).unwrap();
    let app = user()
        .kind(PrincipalKind::Application)
        .roles(["Models.Read"])
        .build();
    assert!(
        p.compiled()
            .decide(&app, "models.read", "models/x")
            .is_allowed()
    );

    let dup =
        r#"{"version":1,"roles":{"a":{},"a":{"grants":[{"actions":["*"],"resources":["**"]}]}}}"#;
    let e = Policy::from_json_str(dup).unwrap_err();
    assert_eq!(e.to_string(), "policy:1:83: duplicate key `a`");
}

#[test]
fn from_path_names_the_file() {
    let dir = std::env::temp_dir().join(format!("entra-governor-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "version = 1\n[roles.a]\ninclude = [\"zz\"]\n").unwrap();
    let e = Policy::from_path(&file).unwrap_err();
    assert_eq!(e.origin(), Some(file.display().to_string().as_str()));
    assert_eq!(e.key_path(), "roles.a.include[0]");
    assert!(
        e.to_string()
            .ends_with("bad.toml: roles.a.include[0]: unknown role \"zz\"")
    );
    let missing = Policy::from_path(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(
        missing.kind(),
        PolicyErrorKind::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
    let json = dir.join("p.json");
    std::fs::write(&json, r#"{"version": 1}"#).unwrap();
    assert!(Policy::from_path(&json).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_hash_is_sha256_of_the_source() {
    let p = load("version = 1\n");
    // printf 'version = 1\n' | sha256sum
    assert_eq!(
        p.version_hash(),
        "dbab12665d98aef021ba64953c61b0ed8a908cfb56a1c01e2fcb4b052b71a2a1"
    );
    assert_eq!(load("version = 1\n").version_hash(), p.version_hash());
    assert_ne!(load("version = 1\n\n").version_hash(), p.version_hash());
    let by_doc = Policy::from_document(PolicyDocument::new()).unwrap();
    assert_eq!(by_doc.version_hash().len(), 64);
}

#[test]
fn compiled_policy_is_send_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<CompiledPolicy>();
    assert_send_sync::<Policy>();
    assert_send_sync::<crate::decision::Decision>();
    let p = load(BASE).compiled();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = std::sync::Arc::clone(&p);
            std::thread::spawn(move || {
                let u = user()
                    .scopes(["Training.Manage"])
                    .groups(groups(&[G1]))
                    .build();
                p.decide(&u, "training.submit", "models/exp-1").is_allowed()
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

// ------------------------------------------------------------------- decisions

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
        .groups(Groups::Overage)
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
        .groups(Groups::NotEmitted)
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
            MembershipView::Unavailable,
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
        MembershipView::Resolved(&resolved),
        "training.submit",
        "models/exp-1",
    );
    assert!(d.is_allowed());
    let d = p.decide_with(
        &user()
            .scopes(["Training.Manage"])
            .groups(groups(&[G1]))
            .build(),
        MembershipView::Unavailable,
        "training.submit",
        "models/exp-1",
    );
    assert_eq!(d.reason, Reason::GroupMembershipUnavailable);
    // Applications are not admitted by the group binding: their overage does not matter.
    let app = user()
        .kind(PrincipalKind::Application)
        .groups(Groups::Overage)
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
        .groups(Groups::Overage)
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
            MembershipView::Unavailable,
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
    assert_eq!(perms.groups, GroupMembership::Evaluated);
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
    let overage = user().groups(Groups::Overage).build();
    assert_eq!(p.permissions(&overage).groups, GroupMembership::Unavailable);
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
    let u = user().scopes(["S"]).groups(Groups::Listed(ids)).build();
    let d = p.decide(&u, "models.read", "models/x");
    // More than the on-stack hit buffer holds: the allow path recollects.
    assert_eq!(d.matched.len(), 300);
    assert_eq!(
        d.matched[299].binding,
        "group:0000012b-0000-4000-8000-000000000000"
    );
}

// ------------------------------------------------------------------------- lints

#[test]
fn lints_flag_over_broad_and_unused_entries() {
    let p = load(&format!(
        r#"version = 1
[roles.god]
grants = [{{ actions = ["*"], resources = ["**"] }}]
[roles.wild]
grants = [{{ actions = ["training.*"], resources = ["*/exp-*"] }}]
[roles.lonely]
grants = [{{ actions = ["models.read"], resources = ["models/x"] }}]
[roles.shadowed]
grants = [{{ actions = ["models.delete"], resources = ["models/prod-chat*"] }}]
[[bindings]]
principal = {{ tenant = "{T}", object = "{OID}" }}
roles = ["god", "wild", "shadowed"]
[scopes]
"Everything" = ["*"]
"Nothing" = []
[[deny]]
name = "prod-models-are-not-deleted"
actions = ["models.delete"]
resources = ["models/prod-*"]
"#
    ));
    let report = p.lint();
    let codes: Vec<(&str, &str)> = report
        .warnings
        .iter()
        .map(|w| (w.code.as_str(), w.key_path.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            ("all_actions_on_all_resources", "roles.god.grants[0]"),
            ("shadowed_grant", "roles.shadowed.grants[0]"),
            (
                "wildcard_action_on_unbounded_resource",
                "roles.wild.grants[0]"
            ),
            ("unused_role", "roles.lonely"),
            ("single_principal_binding", "bindings[0]"),
            ("scope_without_ceiling", "scopes.Everything"),
            ("empty_scope_ceiling", "scopes.Nothing"),
        ]
    );
    assert_eq!(
        report.warnings[1].to_string(),
        "roles.shadowed.grants[0]: grant shadowed#0 is entirely denied by rule \
         prod-models-are-not-deleted, for everyone [shadowed_grant]"
    );
    let none = load(
        "version = 1\n[roles.r]\n[[bindings]]\ngroup = \"0b1f2e3d-4c5b-4a69-8877-665544332211\"\nroles = [\"r\"]\n",
    );
    let codes: Vec<_> = none.lint().warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, [LintCode::NoScopeCeilings]);
}

// ------------------------------------------------- Conditional Access requirements

#[test]
fn requirement_errors_name_the_key_path() {
    let role = |requires: &str| {
        format!(
            "version = 1\n[roles.a]\nrequires = {requires}\ngrants = [{{ actions = [\"models.read\"], resources = [\"models/**\"] }}]"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            "version = 1\nmfa_auth_context = \"mfa\"".into(),
            "policy: mfa_auth_context: malformed authentication context \"mfa\": expected c1 to c99",
        ),
        (
            role("{ auth_context = \"c0\" }"),
            "policy: roles.a.requires.auth_context: malformed authentication context \"c0\": expected c1 to c99",
        ),
        (
            role("{ auth_context = \"C1\" }"),
            "policy: roles.a.requires.auth_context: malformed authentication context \"C1\": expected c1 to c99",
        ),
        (
            role("{ max_auth_age = \"4\" }"),
            "policy: roles.a.requires.max_auth_age: malformed duration \"4\": expected a positive number with s, m, h or d (\"30m\", \"4h\", \"1d\"), at most 30d",
        ),
        (
            role("{ max_auth_age = \"0m\" }"),
            "policy: roles.a.requires.max_auth_age: malformed duration \"0m\": expected a positive number with s, m, h or d (\"30m\", \"4h\", \"1d\"), at most 30d",
        ),
        (
            role("{ max_auth_age = \"31d\" }"),
            "policy: roles.a.requires.max_auth_age: malformed duration \"31d\": expected a positive number with s, m, h or d (\"30m\", \"4h\", \"1d\"), at most 30d",
        ),
        (
            role("{ client_auth = \"public\" }"),
            "policy: roles.a.requires.client_auth: unknown client_auth \"public\": expected \"secret\" or \"certificate\"",
        ),
        (
            role("{ client_apps = [] }"),
            "policy: roles.a.requires.client_apps: client_apps must not be empty",
        ),
        (
            role("{ client_apps = [\"my-app\"] }"),
            "policy: roles.a.requires.client_apps[0]: malformed client app id \"my-app\": expected a GUID",
        ),
        (
            role("{ client_apps = [\"0B1F2E3D-4C5B-4A69-8877-665544332211\", \"0b1f2e3d-4c5b-4a69-8877-665544332211\"] }"),
            "policy: roles.a.requires.client_apps[1]: duplicate client app id \"0b1f2e3d-4c5b-4a69-8877-665544332211\"",
        ),
        (
            role("{}"),
            "policy: roles.a.requires: requires must not be empty",
        ),
        (
            role("{ mfa = false }"),
            "policy: roles.a.requires: requires must not be empty",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"models.read\"], resources = [\"models/**\"] }, { actions = [\"models.read\"], resources = [\"x\"], requires = { auth_context = \"c100\" } }]".into(),
            "policy: roles.a.grants[1].requires.auth_context: malformed authentication context \"c100\": expected c1 to c99",
        ),
        (
            "version = 1\n[[requirements]]\nname = \"r\"\nactions = [\"training.*\"]\nresources = [\"datasets/pii/**\"]\nrequires = { max_auth_age = \"4 h\" }".into(),
            "policy: requirements[0].requires.max_auth_age: malformed duration \"4 h\": expected a positive number with s, m, h or d (\"30m\", \"4h\", \"1d\"), at most 30d",
        ),
        (
            "version = 1\n[[requirements]]\nname = \"r\"\nactions = []\nresources = [\"**\"]\nrequires = { mfa = true }".into(),
            "policy: requirements[0].actions: actions must not be empty",
        ),
        (
            "version = 1\n[[requirements]]\nname = \"r\"\nactions = [\"training.fly\"]\nresources = [\"**\"]\nrequires = { mfa = true }".into(),
            "policy: requirements[0].actions[0]: unknown action \"training.fly\"",
        ),
        (
            "version = 1\n[[deny]]\nname = \"r\"\nactions = [\"*\"]\nresources = [\"x\"]\n[[requirements]]\nname = \"r\"\nactions = [\"*\"]\nresources = [\"**\"]\nrequires = { mfa = true }".into(),
            "policy: requirements[0].name: duplicate rule name \"r\"",
        ),
    ];
    for (src, expected) in &cases {
        assert_eq!(load_err(src), *expected, "{src}");
    }
    // Unknown keys in a requires block are syntax errors, like everywhere else.
    let e = load_err(&role("{ mfa = true, amr = \"mfa\" }"));
    assert!(e.contains("unknown field `amr`"), "{e}");
    // MFA without an mfa_auth_context loads: v1 amr can satisfy it.
    load(&role("{ mfa = true }"));
    let p = load(&role(
        "{ client_apps = [\"0B1F2E3D-4C5B-4A69-8877-665544332211\"], max_auth_age = \"30d\" }",
    ));
    assert!(p.compiled().has_requirements());
    assert!(!load(BASE).compiled().has_requirements());
}

const STEP_UP: &str = r#"
version = 1
mfa_auth_context = "c2"
[roles.a]
grants = [
  { actions = ["training.submit"], resources = ["models/**"], requires = { max_auth_age = "1h", auth_context = "c5" } },
  { actions = ["models.deploy"], resources = ["models/**"], requires = { mfa = true, client_auth = "secret" } },
]
[[bindings]]
app_role = "A"
roles = ["a"]
[scopes]
"S" = ["*"]
"#;

#[test]
fn auth_age_steps_up_through_the_blocks_own_context() {
    let policy = load(STEP_UP).compiled();
    let t0 = 1_700_000_000;
    let p = user()
        .scopes(["S"])
        .roles(["A"])
        .auth_contexts(["c5"])
        .auth_time(t0)
        .client_capabilities(["cp1"])
        .build();
    let at = |now| {
        policy.decide_at(
            &p,
            MembershipView::FromToken,
            "training.submit",
            "models/x",
            now,
        )
    };
    assert!(at(t0 + 3600).is_allowed());
    // An auth_time in the future (clock skew) counts as fresh.
    assert!(at(t0 - 60).is_allowed());
    match &at(t0 + 3601).reason {
        Reason::StepUpRequired {
            requirement,
            auth_context,
            claims,
        } => {
            assert_eq!(requirement, "grant:a#0");
            assert_eq!(
                auth_context, "c5",
                "the block's own context, not mfa_auth_context"
            );
            assert_eq!(
                claims,
                r#"{"access_token":{"acrs":{"essential":true,"value":"c5"}}}"#
            );
        }
        other => panic!("{other:?}"),
    }
    // The decision carries the claims request, never a header: the HTTP edge builds the
    // challenge for the governor's cloud (tested in `http::refusal`).
    let json = serde_json::to_string(&at(t0 + 3601)).unwrap();
    assert!(!json.contains("www_authenticate"), "{json}");
}

#[test]
fn a_failure_no_step_up_can_fix_wins_over_a_step_up() {
    let policy = load(STEP_UP).compiled();
    // A public client without MFA: a step-up would give MFA, never a client secret.
    let p = user()
        .scopes(["S"])
        .roles(["A"])
        .client_capabilities(["cp1"])
        .client_app(G1, crate::principal::ClientAuth::Public)
        .build();
    let d = policy.decide(&p, "models.deploy", "models/x");
    assert_eq!(d.reason.code(), "requirement_not_met", "{d}");
    assert_eq!(
        d.explain(),
        "denied: models.deploy on models/x: requirement grant:a#1 not met: client \
         authentication with a secret is required, the client authenticated as a public \
         client (no credential)"
    );
}

#[test]
fn mfa_without_an_mfa_context_cannot_step_up_on_v2() {
    let src = STEP_UP.replace("mfa_auth_context = \"c2\"\n", "");
    let policy = load(&src).compiled();
    let p = user()
        .scopes(["S"])
        .roles(["A"])
        .client_capabilities(["cp1"])
        .client_app(G1, crate::principal::ClientAuth::Certificate)
        .build();
    let d = policy.decide(&p, "models.deploy", "models/x");
    assert_eq!(
        d.reason,
        Reason::RequirementNotMet {
            requirement: "grant:a#1".into(),
            detail: "multi-factor authentication is required; v2 tokens carry no amr and the \
                     policy sets no mfa_auth_context, so the client cannot step up"
                .into(),
        }
    );
    // v1 amr still satisfies it.
    let p = user()
        .scopes(["S"])
        .roles(["A"])
        .auth_methods(["pwd", "mfa"])
        .client_app(G1, crate::principal::ClientAuth::Certificate)
        .build();
    assert!(policy.decide(&p, "models.deploy", "models/x").is_allowed());
    // And max_auth_age without any context cannot step up either.
    let src = src.replace(", auth_context = \"c5\"", "");
    let policy = load(&src).compiled();
    let p = user()
        .scopes(["S"])
        .roles(["A"])
        .client_capabilities(["cp1"])
        .build();
    let d = policy.decide(&p, "training.submit", "models/x");
    assert_eq!(d.reason.code(), "requirement_not_met", "{d}");
}

#[test]
fn app_only_callers_never_step_up() {
    let src = STEP_UP.replace("app_role = \"A\"", "app_permission = \"A\"");
    let policy = load(&src).compiled();
    let p = user()
        .kind(PrincipalKind::Application)
        .roles(["A"])
        .client_capabilities(["cp1"])
        .auth_time(0)
        .build();
    let d = policy.decide(&p, "training.submit", "models/x");
    assert_eq!(d.reason.code(), "requirement_not_met", "{d}");
}

#[test]
fn requirement_documents_round_trip_through_json() {
    let p = load(STEP_UP);
    let json = serde_json::to_string(p.document()).unwrap();
    let again = Policy::from_json_str(&json).unwrap();
    assert_eq!(again.document(), p.document());
}

const QUALIFIED: &str = r#"
version = 1
[roles.r]
grants = [{ actions = ["models.read"], resources = ["models/**"] }]
[[bindings]]
app_role = "Reader"
tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
roles = ["r"]
[[bindings]]
app_permission = "Reader"
tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
roles = ["r"]
[[bindings]]
name = "global-admins"
directory_role = "62e90394-69f5-4237-9190-012177145e10"
tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47", "aa11bb22-cc33-4d44-8e55-ff6677889900"]
roles = ["r"]
[scopes]
"All" = ["*"]
"#;

#[test]
fn claim_value_bindings_trust_only_the_tenants_they_name() {
    let p = load(QUALIFIED).compiled();
    assert!(p.unqualified_claim_bindings().is_empty());
    let in_tenant = |t: &str| {
        Principal::builder(TenantId::parse(t).unwrap(), ObjectId::parse(OID).unwrap())
            .scopes(["All"])
    };
    let home = T;
    let partner = OTHER_T;
    type With = fn(crate::principal::PrincipalBuilder) -> crate::principal::PrincipalBuilder;
    let cases: [(&str, With); 3] = [
        ("app role", |b| b.roles(["Reader"])),
        ("app permission", |b| {
            b.kind(PrincipalKind::Application).roles(["Reader"])
        }),
        ("directory role", |b| {
            b.directory_roles(["62e90394-69f5-4237-9190-012177145e10"])
        }),
    ];
    for (what, with) in cases {
        let d = p.decide(&with(in_tenant(home)).build(), "models.read", "models/x");
        assert!(d.is_allowed(), "{what}: {d}");
        assert_eq!(d.matched[0].tenant.as_ref().map(|t| t.as_str()), Some(home));
        let d = p.decide(&with(in_tenant(partner)).build(), "models.read", "models/x");
        assert_eq!(
            d.reason,
            Reason::NoRoleGrants,
            "{what} from a partner tenant"
        );
        // Listings agree with decisions.
        let listed = p.permissions(&with(in_tenant(partner)).build());
        assert!(listed.roles.is_empty(), "{what}: {listed:?}");
    }
    // A list of several tenants trusts each of them.
    let university = "aa11bb22-cc33-4d44-8e55-ff6677889900";
    let admin = in_tenant(university)
        .directory_roles(["62e90394-69f5-4237-9190-012177145e10"])
        .build();
    let d = p.decide(&admin, "models.read", "models/x");
    assert_eq!(d.matched[0].binding, "global-admins");
    assert_eq!(
        d.matched[0].tenant.as_ref().map(|t| t.as_str()),
        Some(university)
    );
}

#[test]
fn tenant_qualifiers_are_checked_when_loading() {
    let binding = |extra: &str| {
        format!(
            "version = 1\n[roles.r]\ngrants = [{{ actions = [\"models.read\"], resources = [\"models/**\"] }}]\n\
             [[bindings]]\n{extra}\nroles = [\"r\"]\n"
        )
    };
    let cases = [
        (
            format!("group = \"{G1}\"\ntenants = [\"{T}\"]"),
            "bindings[0].tenants: `tenants` qualifies app_role, app_permission and directory_role \
             bindings; a `group` binding names an object id, unique across tenants",
        ),
        (
            format!("tenant = \"{T}\"\ntenants = [\"{T}\"]"),
            "bindings[0].tenants: `tenants` qualifies app_role, app_permission and directory_role \
             bindings; a `tenant` binding names an object id, unique across tenants",
        ),
        (
            "app_role = \"R\"\ntenants = []".to_owned(),
            "bindings[0].tenants: tenant list must not be empty",
        ),
        (
            "app_role = \"R\"\ntenants = [\"contoso.com\"]".to_owned(),
            "bindings[0].tenants[0]: malformed tenant id \"contoso.com\": expected a GUID",
        ),
        (
            format!(
                "app_role = \"R\"\ntenants = [\"{T}\", \"{}\"]",
                T.to_uppercase()
            ),
            "bindings[0].tenants[1]: duplicate tenant",
        ),
    ];
    for (extra, expected) in cases {
        let message = load_err(&binding(&extra));
        let message = message.strip_prefix("policy: ").unwrap_or(&message);
        assert!(message.starts_with(expected), "{extra}\n{message}");
    }
}

#[test]
fn lints_report_tenant_trust() {
    let src = format!(
        "version = 1\n[roles.r]\ngrants = [{{ actions = [\"models.read\"], resources = [\"models/**\"] }}]\n\
         [[bindings]]\napp_role = \"Reader\"\nroles = [\"r\"]\n\
         [[bindings]]\ndirectory_role = \"62e90394-69f5-4237-9190-012177145e10\"\nroles = [\"r\"]\n\
         [[bindings]]\napp_role = \"Writer\"\ntenants = [\"{T}\"]\nroles = [\"r\"]\n\
         [[bindings]]\ngroup = \"{G1}\"\nguests = true\nroles = [\"r\"]\n\
         [scopes]\n\"All\" = [\"models.read\"]\n"
    );
    let p = load(&src);
    let codes = |r: &LintReport| -> Vec<(LintCode, String)> {
        r.warnings
            .iter()
            .filter(|w| {
                matches!(
                    w.code,
                    LintCode::ClaimBindingWithoutTenants | LintCode::GuestsAcrossTenants
                )
            })
            .map(|w| (w.code, w.key_path.clone()))
            .collect()
    };
    let unqualified = vec![
        (
            LintCode::ClaimBindingWithoutTenants,
            "bindings[0]".to_owned(),
        ),
        (
            LintCode::ClaimBindingWithoutTenants,
            "bindings[1]".to_owned(),
        ),
    ];
    assert_eq!(codes(&p.lint()), unqualified);
    assert_eq!(codes(&p.lint_for(TenantScope::Single)), vec![]);
    let mut multi = unqualified.clone();
    multi.push((LintCode::GuestsAcrossTenants, "bindings[3]".to_owned()));
    assert_eq!(codes(&p.lint_for(TenantScope::Multiple)), multi);
    let labels: Vec<String> = p
        .compiled()
        .unqualified_claim_bindings()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        labels,
        [
            "bindings[0] (app_role:Reader)",
            "bindings[1] (directory_role:62e90394-69f5-4237-9190-012177145e10)"
        ]
    );
}

#[test]
fn an_unknown_guest_status_fails_closed() {
    let p = load(&format!(
        r#"version = 1
[roles.r]
grants = [{{ actions = ["models.read", "models.deploy"], resources = ["models/**"] }}]
[roles.g]
grants = [{{ actions = ["models.read"], resources = ["models/public-*"] }}]
[[bindings]]
group = "{G1}"
roles = ["r"]
[[bindings]]
group = "{G2}"
guests = true
roles = ["g"]
[[deny]]
name = "members-never-deploy-on-fridays"
when = {{ guest = false }}
actions = ["models.deploy"]
resources = ["models/**"]
[[deny]]
name = "no-guests-on-secrets"
when = {{ guest = true }}
actions = ["*"]
resources = ["models/secret-*"]
[scopes]
"All" = ["*"]
"#
    ))
    .compiled();
    let unknown = user()
        .scopes(["All"])
        .groups(groups(&[G1, G2]))
        .guest_unknown()
        .build();
    assert_eq!(
        unknown.guest_status(),
        crate::principal::GuestStatus::Unknown
    );
    // Bindings treat it as a guest: only the `guests = true` binding admits it.
    assert_eq!(
        p.decide(&unknown, "models.read", "models/x").reason,
        Reason::NoRoleGrants
    );
    assert!(
        p.decide(&unknown, "models.read", "models/public-1")
            .is_allowed()
    );
    // Deny rules with either guest condition apply.
    assert_eq!(
        p.decide(&unknown, "models.read", "models/secret-1").reason,
        Reason::DeniedByRule {
            rule: "no-guests-on-secrets".into()
        }
    );
    assert_eq!(
        p.decide(&unknown, "models.deploy", "models/public-1")
            .reason,
        Reason::DeniedByRule {
            rule: "members-never-deploy-on-fridays".into()
        }
    );
    // A known member reaches the member binding.
    let member = user().scopes(["All"]).groups(groups(&[G1])).build();
    assert!(p.decide(&member, "models.read", "models/x").is_allowed());
}
