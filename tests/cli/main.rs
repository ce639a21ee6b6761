//! The governance subcommands of the `entra-governor` binary, run as processes: `lint`,
//! `test` and `explain`, in text and JSON, with their exit statuses. Inputs are the
//! example policy and its cases (examples/) and the files in tests/cli/data/.

use std::process::{Command, Output};

use serde_json::Value;

/// Runs the binary from the crate root.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_entra-governor"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

/// The one JSON document on standard output.
fn document(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

const POLICY: &str = "examples/policy.toml";
const CASES: &str = "examples/policy.cases.toml";
const AT: &str = "2026-12-01T12:00:00Z";

// ------------------------------------------------------------------------- lint

#[test]
fn lint_accepts_the_example_policy() {
    let out = run(&["lint", POLICY]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "examples/policy.toml: 0 errors, 0 warnings\n");
}

#[test]
fn lint_reports_a_policy_that_does_not_load_with_its_key_path() {
    let out = run(&["lint", "tests/cli/data/broken.policy.toml"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stdout(&out),
        "error: tests/cli/data/broken.policy.toml: roles.ml-engineer.include[0]: unknown role \
         \"data-scientst\"\ntests/cli/data/broken.policy.toml: 1 error, 0 warnings\n"
    );
    let out = run(&[
        "lint",
        "tests/cli/data/broken.policy.toml",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 1);
    let doc = document(&out);
    assert_eq!(doc["format"], "entra-governor.lint/1");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["policy_version"], Value::Null);
    assert_eq!(doc["error"]["key_path"], "roles.ml-engineer.include[0]");
    assert_eq!(doc["warnings"], serde_json::json!([]));
}

#[test]
fn lint_warnings_fail_only_with_deny_warnings() {
    let args = ["lint", POLICY, "--tenants", "multiple", "--format", "json"];
    let out = run(&args);
    assert_eq!(code(&out), 0);
    let doc = document(&out);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["tenants"], "multiple");
    assert_eq!(doc["warnings"][0]["code"], "guests_across_tenants");
    assert_eq!(doc["warnings"][0]["key_path"], "bindings[6]");
    assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(1));
    let out = run(&[&args[..], &["--deny-warnings"]].concat());
    assert_eq!(code(&out), 1);
    assert_eq!(document(&out)["ok"], false);
    let text = run(&["lint", POLICY, "--tenants", "multiple"]);
    assert!(
        stdout(&text)
            .starts_with("warning: bindings[6]: binding group:external-researchers admits guests"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn lint_of_a_missing_file_is_an_error_without_a_document() {
    let out = run(&["lint", "tests/cli/data/absent.toml", "--format", "json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("tests/cli/data/absent.toml: cannot read policy"),
        "{}",
        stderr(&out)
    );
}

// ------------------------------------------------------------------------- test

#[test]
fn the_example_cases_hold() {
    let out = run(&["test", POLICY, CASES, "--at", AT]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("ok   data scientists train research models\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\n14 cases, 14 passed, 0 failed\n"),
        "{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");

    let out = run(&["test", POLICY, CASES, "--at", AT, "--format", "json"]);
    assert_eq!(code(&out), 0);
    let doc = document(&out);
    assert_eq!(doc["format"], "entra-governor.test/1");
    assert_eq!(doc["policy"], POLICY);
    assert_eq!(doc["cases_file"], CASES);
    assert_eq!(doc["at"], AT);
    assert_eq!(
        (&doc["cases"], &doc["passed"], &doc["failed"]),
        (&14.into(), &14.into(), &0.into())
    );
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 14);
    let step_up = results
        .iter()
        .find(|r| r["name"] == "deploying to production steps up to MFA (auth context c2)")
        .expect("the step-up case");
    assert_eq!(
        step_up["actual"],
        "step_up, reason step_up_required, denied_by grant:release-manager#2"
    );
    assert_eq!(step_up["decision"]["reason"]["auth_context"], "c2");
}

#[test]
fn a_failing_case_shows_expectation_decision_and_explanation() {
    let out = run(&["test", POLICY, "tests/cli/data/failing.cases.toml"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stdout(&out),
        "ok   engineers read curated data\n\
         FAIL guest engineers read personal data\n\
         \x20      expected: allow\n\
         \x20      actual:   deny, reason denied_by_rule, denied_by no-guests-on-pii\n\
         \x20      why:      denied: datasets.read on datasets/pii/customers by rule no-guests-on-pii\n\
         2 cases, 1 passed, 1 failed\n"
    );
    let out = run(&[
        "test",
        POLICY,
        "tests/cli/data/failing.cases.toml",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 1);
    let doc = document(&out);
    assert_eq!((&doc["passed"], &doc["failed"]), (&1.into(), &1.into()));
    let failed = &doc["results"][1];
    assert_eq!(failed["name"], "guest engineers read personal data");
    assert_eq!(failed["passed"], false);
    assert_eq!(failed["expected"], "allow");
    assert_eq!(failed["decision"]["reason"]["rule"], "no-guests-on-pii");
}

#[test]
fn a_case_file_that_does_not_load_names_the_key() {
    let out = run(&[
        "test",
        POLICY,
        "tests/cli/data/broken.cases.toml",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: tests/cli/data/broken.cases.toml: case[0].caller.tenant (case \"a tenant \
         that is not a GUID\"): malformed tenant id: expected a GUID \
         (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)\n"
    );
}

// ---------------------------------------------------------------------- explain

#[test]
fn explain_prints_the_explanation_and_the_roles() {
    let out = run(&[
        "explain",
        POLICY,
        "--caller",
        "tests/cli/data/scientist.json",
        "--action",
        "training.submit",
        "--resource",
        "models/exp-42",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "allowed: training.submit on models/exp-42 by grant data-scientist#0 (role \
         data-scientist via group:data-scientists)\n\
         roles: data-scientist (via group:data-scientists), inference-user (included by \
         data-scientist)\n"
    );
}

#[test]
fn explain_json_for_a_token_s_claims() {
    let out = run(&[
        "explain",
        POLICY,
        "--caller",
        "tests/cli/data/pipeline.claims.json",
        "--action",
        "datasets.read",
        "--resource",
        "datasets/pii/customers",
        "--at",
        AT,
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = document(&out);
    assert_eq!(doc["format"], "entra-governor.explain/1");
    assert_eq!(doc["at"], AT);
    assert_eq!(
        doc["explanation"],
        "denied: datasets.read on datasets/pii/customers by rule apps-never-touch-pii"
    );
    assert_eq!(doc["decision"]["effect"], "deny");
    assert_eq!(doc["decision"]["reason"]["code"], "denied_by_rule");
    assert_eq!(doc["caller"]["kind"], "application");
    assert_eq!(doc["caller"]["roles"][0]["role"], "training-pipeline");
    assert_eq!(
        doc["caller"]["roles"][0]["bindings"][0],
        "app_permission:Training.Pipeline"
    );
    // The JSON document's first member names its schema.
    assert!(stdout(&out).starts_with("{\n  \"format\": \"entra-governor.explain/1\","));
}

#[test]
fn explain_refuses_a_caller_that_does_not_load() {
    let out = run(&[
        "explain",
        POLICY,
        "--caller",
        "tests/cli/data/broken.caller.json",
        "--action",
        "training.submit",
        "--resource",
        "models/exp-42",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: tests/cli/data/broken.caller.json: groups[1]: malformed group id: expected a \
         GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)\n"
    );
}
