//! Tenant trust: tenant-qualified claim bindings, their checks and lints, unknown guest
//! status.

use super::*;

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

#[test]
#[allow(deprecated)]
fn the_old_membership_names_still_work() {
    let listed: crate::principal::Groups = TokenGroups::NotEmitted;
    assert_eq!(listed, TokenGroups::NotEmitted);
    let source: MembershipView<'_> = MembershipView::FromToken;
    assert_eq!(source, MembershipSource::FromToken);
    assert_eq!(GroupMembership::Evaluated, MembershipKnowledge::Evaluated);
}
