//! Lints of over-broad, unused and conflicting entries.

use super::*;

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
