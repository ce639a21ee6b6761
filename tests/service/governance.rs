//! The governance loop end to end, as an operator runs it from the README: personas
//! through the running service leave a v2 trail; `entra-governor replay` tries a
//! candidate that removes a role, `review` finds the unused grants and suggests a policy
//! that `lint` accepts and that keeps every allow, and `test` fails on a wrong case.

use std::path::Path;
use std::process::{Command, Output};

use entra_governor::ObjectId;
use entra_governor::testing::TestIdp;

use crate::harness::{Service, audit_events, binary, temp_dir, write_config};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const APPLICATION_USERS: &str = "c4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70";
const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
const PARTNER_HOME: &str = "11111111-2222-4333-8444-555555555555";
const DS: &str = "00000000-0000-4000-8000-0000000000d5";
const GUEST: &str = "00000000-0000-4000-8000-000000000096";
const APP_USER: &str = "00000000-0000-4000-8000-0000000000a1";

/// (persona, method, path, expected status).
const REQUESTS: &[(&str, &str, &str, u16)] = &[
    (DS, "POST", "/v1/models/exp-1/infer", 200),
    (DS, "POST", "/v1/models/exp-2/infer", 200),
    (DS, "GET", "/v1/datasets/public/wiki", 200),
    (DS, "GET", "/v1/datasets/pii/patients", 403),
    (GUEST, "GET", "/v1/datasets/public/papers", 200),
    (GUEST, "GET", "/v1/datasets/public/theses", 200),
    (GUEST, "POST", "/v1/models/exp-3/infer", 403),
    (APP_USER, "POST", "/v1/models/prod-chat/infer", 200),
];

fn token(idp: &TestIdp, persona: &str) -> String {
    let t = idp.token().oid(ObjectId::parse(persona).unwrap());
    match persona {
        DS => t
            .scopes("Inference.Invoke Training.Manage")
            .groups([DATA_SCIENTISTS]),
        GUEST => t
            .scopes("Training.Manage")
            .groups([EXTERNAL_RESEARCHERS])
            .guest(entra_governor::TenantId::parse(PARTNER_HOME).unwrap()),
        _ => t.scopes("Inference.Invoke").groups([APPLICATION_USERS]),
    }
    .sign()
}

fn cli(args: &[&str], dir: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs the personas through the service; the trail is `dir/decisions.jsonl`.
async fn record(dir: &Path) {
    let idp = crate::example_idp().await;
    let service = Service::start(&write_config(dir, &idp, ""));
    let client = reqwest::Client::new();
    for &(persona, method, path, status) in REQUESTS {
        let answer = client
            .get(format!("{}/forward-auth", service.http))
            .header("x-original-method", method)
            .header("x-original-uri", path)
            .header("authorization", format!("Bearer {}", token(&idp, persona)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            status,
            "{persona} {method} {path}"
        );
    }
    assert!(service.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_review_lint_and_test_close_the_loop_over_the_services_trail() {
    let dir = temp_dir("governance-loop");
    record(&dir).await;
    let events = audit_events(&dir);
    assert_eq!(events.len(), REQUESTS.len());
    assert!(
        events
            .iter()
            .all(|e| e["schema_version"] == 2 && e["inputs"].is_object())
    );

    // A candidate without the external-researcher role and its binding.
    let live = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    let mut doc: toml::Table = live.parse().unwrap();
    doc["roles"]
        .as_table_mut()
        .unwrap()
        .remove("external-researcher");
    let bindings = doc["bindings"].as_array_mut().unwrap();
    bindings
        .retain(|b| b.get("name").and_then(|n| n.as_str()) != Some("group:external-researchers"));
    std::fs::write(dir.join("candidate.toml"), toml::to_string(&doc).unwrap()).unwrap();

    // Without the recording policy, replay cannot tell that the data scientist was
    // recorded outside ml-engineers (a group no event shows), which would turn the PII
    // read into a step-up: one decision is inexact. With it as the baseline, none is.
    let replay_args = [
        "replay",
        "--trail",
        "decisions.jsonl",
        "--policy",
        "candidate.toml",
    ];
    let unsure = cli(&[&replay_args[..], &["--format", "json"]].concat(), &dir);
    assert_eq!(json_of(&unsure)["totals"]["inexact"], 1);
    let baseline = [&replay_args[..], &["--baseline", "policy.toml"]].concat();
    let replay = cli(&[&baseline[..], &["--format", "json"]].concat(), &dir);
    assert!(replay.status.success());
    let report = json_of(&replay);
    assert_eq!(report["format"], "entra-governor.replay/1");
    let totals = &report["totals"];
    for (field, value) in [
        ("decisions", 8),
        ("changed", 2),
        ("allow_to_deny", 2),
        ("deny_to_allow", 0),
        ("inexact", 0),
        ("not_replayable", 0),
    ] {
        assert_eq!(totals[field], value, "{field}: {totals}");
    }
    // Piped standard error: no progress bar, one summary line counting what was read.
    let read = totals["decisions"].as_u64().unwrap() + totals["skipped"].as_u64().unwrap();
    let summary = String::from_utf8(replay.stderr.clone()).unwrap();
    assert!(
        summary.starts_with(&format!("replay: {read} events of decisions.jsonl in "))
            && summary.ends_with(" events/s)\n")
            && summary.lines().count() == 1
            && !summary.contains('\r'),
        "{summary:?}"
    );
    assert_eq!(report["changes"][0]["cause"], "grant:external-researcher#1");
    assert_eq!(report["changes"][0]["count"], 2);
    assert_eq!(report["changes"][0]["callers"], 1);

    // The text form says the same to a person.
    let text = cli(&baseline, &dir);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!("  allow_to_deny{}2", " ".repeat(12))),
        "{text}"
    );
    assert!(
        text.contains("allow_to_deny grant:external-researcher#1: 2 decisions, 1 callers"),
        "{text}"
    );
    let gate = cli(
        &[
            "replay",
            "--trail",
            "decisions.jsonl",
            "--policy",
            "candidate.toml",
            "--fail-on-change",
        ],
        &dir,
    );
    assert_eq!(gate.status.code(), Some(1));

    // The review: unused grants, and a suggestion lint accepts that keeps every allow.
    let review = cli(
        &[
            "review",
            "--trail",
            "decisions.jsonl",
            "--policy",
            "policy.toml",
            "--format",
            "json",
            "--suggested",
            "suggested.toml",
        ],
        &dir,
    );
    assert!(
        review.status.success(),
        "{}",
        String::from_utf8_lossy(&review.stderr)
    );
    let summary = String::from_utf8(review.stderr.clone()).unwrap();
    let review = json_of(&review);
    assert_eq!(review["format"], "entra-governor.review/1");
    let read = review["totals"]["decisions"].as_u64().unwrap()
        + review["totals"]["skipped"].as_u64().unwrap();
    assert!(
        summary.starts_with(&format!("review: {read} events of decisions.jsonl in "))
            && summary.lines().count() == 1
            && !summary.contains('\r'),
        "{summary:?}"
    );
    let unused: Vec<&str> = review["unused"]["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant"].as_str().unwrap())
        .collect();
    assert!(
        unused.contains(&"platform-admin#0") && unused.contains(&"ml-engineer#4"),
        "{unused:?}"
    );
    assert!(!unused.contains(&"data-scientist#2"));
    let replayed = &review["suggestion"]["replay"];
    assert_eq!(
        (
            replayed["allow_to_deny"].as_u64(),
            replayed["decisions"].as_u64()
        ),
        (Some(0), Some(8))
    );
    let lint = cli(&["lint", "suggested.toml"], &dir);
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    // The evidence an Entra access reviewer attaches: one row per caller and role.
    let csv = cli(
        &[
            "review",
            "--trail",
            "decisions.jsonl",
            "--policy",
            "policy.toml",
            "--format",
            "csv",
        ],
        &dir,
    );
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.starts_with("tenant_id,object_id,kind,guest,role,"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.contains(GUEST) && l.contains("external-researcher")),
        "{csv}"
    );

    // A policy test that expects the guest to read curated data fails, and says why.
    std::fs::write(
        dir.join("cases.toml"),
        format!(
            r#"version = 1
[[case]]
name = "guests read public data"
action = "datasets.read"
resource = "datasets/public/papers"
expect = "allow"
[case.caller]
tenant = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d"
object = "{GUEST}"
home_tenant = "{PARTNER_HOME}"
groups = ["{EXTERNAL_RESEARCHERS}"]
scopes = ["Training.Manage"]

[[case]]
name = "guests read curated data"
action = "datasets.read"
resource = "datasets/curated/clean"
expect = "allow"
[case.caller]
tenant = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d"
object = "{GUEST}"
home_tenant = "{PARTNER_HOME}"
groups = ["{EXTERNAL_RESEARCHERS}"]
scopes = ["Training.Manage"]
"#
        ),
    )
    .unwrap();
    let tested = cli(&["test", "policy.toml", "cases.toml"], &dir);
    assert_eq!(tested.status.code(), Some(1));
    let out = String::from_utf8(tested.stdout).unwrap();
    assert!(out.contains("FAIL guests read curated data"), "{out}");
    assert!(out.contains("no_role_grants"), "{out}");
    assert!(out.contains("ok   guests read public data"), "{out}");

    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_policy_in_the_configuration_marks_what_it_would_change() {
    let dir = temp_dir("governance-shadow");
    let idp = crate::example_idp().await;
    let config = write_config(&dir, &idp, "");
    let live = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    let mut doc: toml::Table = live.parse().unwrap();
    doc["roles"]
        .as_table_mut()
        .unwrap()
        .remove("external-researcher");
    let bindings = doc["bindings"].as_array_mut().unwrap();
    bindings
        .retain(|b| b.get("name").and_then(|n| n.as_str()) != Some("group:external-researchers"));
    std::fs::write(dir.join("candidate.toml"), toml::to_string(&doc).unwrap()).unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "reload_interval_secs = 1",
        "reload_interval_secs = 1\nshadow = \"candidate.toml\"",
    );
    std::fs::write(&config, text).unwrap();

    let service = Service::start(&config);
    let ready = crate::harness::get_json(format!("{}/readyz", service.http)).await;
    let candidate = entra_governor::Policy::from_path(dir.join("candidate.toml")).unwrap();
    assert_eq!(ready["shadow_policy_version"], candidate.version_hash());
    let client = reqwest::Client::new();
    for &(persona, method, path, status) in REQUESTS {
        let answer = client
            .get(format!("{}/forward-auth", service.http))
            .header("x-original-method", method)
            .header("x-original-uri", path)
            .header("authorization", format!("Bearer {}", token(&idp, persona)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            status,
            "the shadow never decides: {path}"
        );
    }
    assert!(service.terminate().success());
    let shadowed: Vec<(String, String)> = audit_events(&dir)
        .iter()
        .filter(|e| e.get("shadow").is_some())
        .map(|e| {
            (
                e["resource"].as_str().unwrap().to_owned(),
                e["shadow"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        shadowed,
        [
            (
                "datasets/public/papers".to_owned(),
                "no_role_grants".to_owned()
            ),
            (
                "datasets/public/theses".to_owned(),
                "no_role_grants".to_owned()
            )
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
