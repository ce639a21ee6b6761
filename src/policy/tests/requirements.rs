//! Conditional Access requirements and step-up.

use super::*;

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
        .auth_time(crate::clock::from_unix_secs(t0))
        .client_capabilities(["cp1"])
        .build();
    let at = |now| {
        policy.decide_at(
            &p,
            MembershipSource::FromToken,
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
        .auth_time(std::time::UNIX_EPOCH)
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
