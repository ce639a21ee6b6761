use super::*;

const HOME: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
const OID: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";
const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn example() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
    Policy::from_path(path).unwrap_or_else(|e| panic!("{e}"))
}

/// A case file of one case: `case` holds the case's own keys (after `[[case]]`),
/// `caller` those of its `[case.caller]` table (tenant and object are added).
fn one(case: &str, caller: &str) -> String {
    format!(
        "version = 1\n[[case]]\n{case}\n[case.caller]\ntenant = \"{HOME}\"\nobject = \"{OID}\"\n{caller}\n"
    )
}

fn error(text: &str) -> CaseFileError {
    CaseFile::from_toml_str(text).unwrap_err()
}

const SCIENTIST: &str =
    "groups = [\"5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d\"]\nscopes = [\"Training.Manage\"]";
const TRAIN: &str = "name = \"train\"\naction = \"training.submit\"\nresource = \"models/exp-1\"";

#[test]
fn a_passing_and_a_failing_case() {
    let text = format!(
        "version = 1\n\
         [[case]]\n{TRAIN}\nexpect = \"allow\"\ngrant = \"data-scientist#0\"\n\
         [case.caller]\ntenant = \"{HOME}\"\nobject = \"{OID}\"\n{SCIENTIST}\n\
         [[case]]\nname = \"scientists read personal data\"\naction = \"datasets.read\"\n\
         resource = \"datasets/pii/customers\"\nexpect = \"allow\"\n\
         [case.caller]\ntenant = \"{HOME}\"\nobject = \"{OID}\"\n{SCIENTIST}\n"
    );
    let cases = CaseFile::from_toml_str(&text).unwrap();
    let report = run_cases(&example(), &cases);
    assert_eq!((report.cases, report.passed, report.failed), (2, 1, 1));
    assert!(!report.all_passed());
    assert!(report.results[0].passed);
    assert_eq!(report.results[0].expected, "allow, grant data-scientist#0");
    assert_eq!(report.results[0].actual, "allow, grant data-scientist#0");
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "scientists read personal data");
    assert_eq!(failed[0].expected, "allow");
    assert_eq!(failed[0].actual, "deny, reason no_role_grants");
    assert_eq!(
        failed[0].explanation,
        "denied: datasets.read on datasets/pii/customers: no role grants it"
    );
    assert_eq!(report.policy_version, example().version_hash());
}

#[test]
fn reason_grant_and_denied_by_must_all_hold() {
    let policy = example();
    let run = |case: &str, caller: &str| {
        let cases = CaseFile::from_toml_str(&one(case, caller)).unwrap();
        run_cases(&policy, &cases).results.remove(0)
    };
    // The right outcome with the wrong grant is a failure.
    let wrong_grant = run(
        &format!("{TRAIN}\nexpect = \"allow\"\ngrant = \"ml-engineer#0\""),
        SCIENTIST,
    );
    assert!(!wrong_grant.passed);
    assert_eq!(wrong_grant.actual, "allow, grant data-scientist#0");
    // A guest engineer on personal data: denied by the guest rule.
    let guest =
        format!("groups = [\"{ML_ENGINEERS}\"]\nscopes = [\"Training.Manage\"]\nguest = true");
    let pii = "name = \"pii\"\naction = \"datasets.read\"\nresource = \"datasets/pii/x\"";
    let by_rule = run(
        &format!(
            "{pii}\nexpect = \"deny\"\nreason = \"denied_by_rule\"\ndenied_by = \"no-guests-on-pii\""
        ),
        &guest,
    );
    assert!(by_rule.passed, "{by_rule:?}");
    assert_eq!(
        by_rule.actual,
        "deny, reason denied_by_rule, denied_by no-guests-on-pii"
    );
    let other_rule = run(
        &format!("{pii}\nexpect = \"deny\"\ndenied_by = \"apps-never-touch-pii\""),
        &guest,
    );
    assert!(!other_rule.passed);
    let other_reason = run(
        &format!("{pii}\nexpect = \"deny\"\nreason = \"outside_scopes\""),
        &guest,
    );
    assert!(!other_reason.passed);
}

#[test]
fn step_up_is_not_deny() {
    let policy = example();
    // A member engineer without the PII auth context, through a client that can step up.
    let engineer = format!(
        "groups = [\"{ML_ENGINEERS}\"]\nscopes = [\"Training.Manage\"]\nxms_cc = [\"cp1\"]"
    );
    let pii = "name = \"pii\"\naction = \"datasets.read\"\nresource = \"datasets/pii/x\"";
    let run = |expect: &str| {
        let cases = CaseFile::from_toml_str(&one(&format!("{pii}\n{expect}"), &engineer)).unwrap();
        run_cases(&policy, &cases).results.remove(0)
    };
    let step_up = run("expect = \"step_up\"\ndenied_by = \"requirements:pii-needs-c1\"");
    assert!(step_up.passed, "{step_up:?}");
    assert_eq!(
        step_up.actual,
        "step_up, reason step_up_required, denied_by requirements:pii-needs-c1"
    );
    assert!(!run("expect = \"deny\"").passed);
}

#[test]
fn at_sets_the_time_max_auth_age_reads() {
    let policy = Policy::from_toml_str(&format!(
        "version = 1\n\
         [roles.r]\ngrants = [{{ actions = [\"models.deploy\"], resources = [\"models/*\"], \
         requires = {{ max_auth_age = \"1h\", auth_context = \"c3\" }} }}]\n\
         [[bindings]]\ngroup = \"{DATA_SCIENTISTS}\"\nroles = [\"r\"]\n\
         [scopes]\n\"Models.Manage\" = [\"models.*\"]\n"
    ))
    .unwrap();
    let caller = format!(
        "groups = [\"{DATA_SCIENTISTS}\"]\nscopes = [\"Models.Manage\"]\nacrs = [\"c3\"]\n\
         xms_cc = [\"cp1\"]\nauth_time = 2026-12-01T10:00:00Z"
    );
    let request = "name = \"deploy\"\naction = \"models.deploy\"\nresource = \"models/x\"";
    let run = |at: &str, expect: &str| {
        let case = format!("{request}\nexpect = \"{expect}\"\nat = \"{at}\"");
        let cases = CaseFile::from_toml_str(&one(&case, &caller)).unwrap();
        let result = run_cases(&policy, &cases).results.remove(0);
        assert!(result.passed, "{at}: {result:?}");
    };
    run("2026-12-01T10:59:00Z", "allow");
    run("2026-12-01T11:01:00Z", "step_up");
    // Without `at`, the run's time.
    let cases =
        CaseFile::from_toml_str(&one(&format!("{request}\nexpect = \"allow\""), &caller)).unwrap();
    let late = Timestamp::from_unix_secs(1_796_126_400).unwrap(); // 2026-12-01T12:00:00Z
    assert_eq!(run_cases_at(&policy, &cases, late).failed, 1);
}

#[test]
fn claims_cases_use_the_files_token_settings() {
    let claims = format!(
        "claims = {{ ver = \"2.0\", tid = \"{HOME}\", oid = \"{OID}\", sub = \"s\", \
         azp = \"75dbe77f-10a3-4e59-85fd-8c127544f17c\", scp = \"Training.Manage\" }}"
    );
    let text = |settings: &str, expect: &str| {
        format!(
            "version = 1\n{settings}\n[[case]]\n{TRAIN}\nexpect = \"deny\"\nreason = \"{expect}\"\n{claims}\n"
        )
    };
    let policy = example();
    // No groups claim: membership unknown, unless the registration emits groups.
    let unknown = CaseFile::from_toml_str(&text("", "group_membership_unknown")).unwrap();
    assert!(run_cases(&policy, &unknown).all_passed());
    let none =
        CaseFile::from_toml_str(&text("groups_claim_emitted = true", "no_role_grants")).unwrap();
    assert!(none.claims_settings().groups_claim_emitted);
    assert!(run_cases(&policy, &none).all_passed());
}

#[test]
fn a_caller_that_cannot_be_built_fails_its_case() {
    let text = format!(
        "version = 1\n[[case]]\n{TRAIN}\nexpect = \"allow\"\n\
         claims = '{{\"ver\": \"2.0\", \"tid\": \"{HOME}\", \"oid\": \"{OID}\", \"azp\": \"a\"}}'\n"
    );
    let report = run_cases(&example(), &CaseFile::from_toml_str(&text).unwrap());
    let result = &report.results[0];
    assert_eq!((report.failed, result.passed), (1, false));
    assert_eq!(result.actual, "no decision");
    assert_eq!(
        result.explanation,
        "the caller is invalid: claims: required claim \"sub\" is missing"
    );
    assert_eq!(result.decision, None);
    let spec = one(
        &format!("{TRAIN}\nexpect = \"allow\""),
        "kind = \"application\"\nscopes = [\"x\"]",
    );
    let report = run_cases(&example(), &CaseFile::from_toml_str(&spec).unwrap());
    assert_eq!(
        report.results[0].explanation,
        "the caller is invalid: scopes: an app-only token carries no delegated scopes"
    );
}

#[test]
fn errors_name_the_key_path() {
    let bad_tenant = one(&format!("{TRAIN}\nexpect = \"allow\""), "").replace(HOME, "not-a-guid");
    let e = error(&bad_tenant);
    assert_eq!(e.key_path(), "case[0].caller.tenant");
    assert_eq!(
        e.to_string(),
        "cases: case[0].caller.tenant (case \"train\"): malformed tenant id: expected a \
         GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
    );
    assert_eq!(e.case_name(), Some("train"));
    let e = error(&one(&format!("{TRAIN}\nexpect = \"maybe\""), ""));
    assert_eq!(e.key_path(), "case[0].expect");
    let e = error(&one(
        &format!("{TRAIN}\nexpect = \"allow\"\ncolour = 1"),
        "",
    ));
    assert_eq!(e.key_path(), "case[0].colour");
    let e = error(&one(
        &format!("{TRAIN}\nexpect = \"allow\""),
        "groups = [\"x\"]",
    ));
    assert_eq!(e.key_path(), "case[0].caller.groups[0]");
    let e = error(&one(
        &format!("{TRAIN}\nexpect = \"allow\"\nat = \"noon\""),
        "",
    ));
    assert_eq!(e.key_path(), "case[0].at");
    let e = error(&one(
        "name = \"x\"\naction = \"a.b\"\nexpect = \"allow\"",
        "",
    ));
    assert_eq!(
        e.to_string(),
        "cases: case[0] (case \"x\"): missing field `resource`"
    );
}

#[test]
fn file_rules() {
    let kind = |text: &str| {
        let e = error(text);
        (e.key_path().to_owned(), e.kind().clone())
    };
    let case = one(&format!("{TRAIN}\nexpect = \"allow\""), "");
    assert_eq!(
        kind(&case.replace("version = 1", "version = 2")),
        (
            "version".into(),
            CaseFileErrorKind::UnsupportedVersion { found: 2 }
        )
    );
    assert_eq!(
        kind("version = 1\n"),
        ("case".into(), CaseFileErrorKind::NoCases)
    );
    let twice = format!("{case}{}", case.replace("version = 1\n", ""));
    let e = error(&twice);
    assert_eq!(
        e.to_string(),
        "cases: case[1].name: duplicate case name \"train\" (first at case[0])"
    );
    let unnamed = one(
        "name = \" \"\naction = \"a.b\"\nresource = \"r\"\nexpect = \"allow\"",
        "",
    );
    assert_eq!(
        kind(&unnamed),
        ("case[0].name".into(), CaseFileErrorKind::EmptyName)
    );
    assert_eq!(error(&unnamed).case_name(), None);
    let neither = format!("version = 1\n[[case]]\n{TRAIN}\nexpect = \"allow\"\n");
    assert_eq!(
        kind(&neither),
        (
            "case[0]".into(),
            CaseFileErrorKind::Caller { found: "neither" }
        )
    );
    let both = one(&format!("{TRAIN}\nexpect = \"allow\"\nclaims = '{{}}'"), "");
    assert_eq!(
        kind(&both),
        (
            "case[0]".into(),
            CaseFileErrorKind::Caller { found: "both" }
        )
    );
    let not_json =
        format!("version = 1\n[[case]]\n{TRAIN}\nexpect = \"allow\"\nclaims = 'tid=1'\n");
    assert_eq!(
        error(&not_json).to_string(),
        "cases: case[0].claims (case \"train\"): a string of claims must hold a JSON object"
    );
    let syntax = error("version = 1\n[[case]\n");
    assert!(
        matches!(
            syntax.kind(),
            CaseFileErrorKind::Syntax { line: Some(2), .. }
        ),
        "{syntax:?}"
    );
    assert!(syntax.to_string().starts_with("cases:2:"), "{syntax}");
}

#[test]
fn contradictory_expectations_are_refused() {
    let refused = |keys: &str| {
        let e = error(&one(&format!("{TRAIN}\n{keys}"), ""));
        assert_eq!(e.case_name(), Some("train"));
        (e.key_path().to_owned(), e.kind().to_string())
    };
    assert_eq!(
        refused("expect = \"deny\"\ngrant = \"r#0\""),
        ("case[0].grant".into(), "only an allow has a grant".into())
    );
    assert_eq!(
        refused("expect = \"allow\"\ndenied_by = \"rule\""),
        (
            "case[0].denied_by".into(),
            "an allow has no denied_by".into()
        )
    );
    assert_eq!(
        refused("expect = \"deny\"\nreason = \"allow\"").1,
        "reason \"allow\" contradicts expect = \"deny\""
    );
    assert_eq!(
        refused("expect = \"allow\"\nreason = \"no_role_grants\"").1,
        "reason \"no_role_grants\" contradicts expect = \"allow\""
    );
    assert_eq!(
        refused("expect = \"deny\"\nreason = \"step_up_required\"").1,
        "reason \"step_up_required\" contradicts expect = \"deny\""
    );
}

#[test]
fn the_report_serializes_every_result() {
    let cases =
        CaseFile::from_toml_str(&one(&format!("{TRAIN}\nexpect = \"allow\""), SCIENTIST)).unwrap();
    let report = serde_json::to_value(run_cases(&example(), &cases)).unwrap();
    assert_eq!(report["cases"], 1);
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["results"][0]["name"], "train");
    assert_eq!(report["results"][0]["decision"]["effect"], "allow");
    assert_eq!(report["results"][0]["decision"]["reason"]["code"], "allow");
}
