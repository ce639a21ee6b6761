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

#[tokio::test]
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

    let replay = cli(
        &[
            "replay",
            "--trail",
            "decisions.jsonl",
            "--policy",
            "candidate.toml",
            "--format",
            "json",
        ],
        &dir,
    );
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
    assert_eq!(report["changes"][0]["cause"], "grant:external-researcher#1");
    assert_eq!(report["changes"][0]["count"], 2);
    assert_eq!(report["changes"][0]["callers"], 1);

    // The text form says the same to a person.
    let text = cli(
        &[
            "replay",
            "--trail",
            "decisions.jsonl",
            "--policy",
            "candidate.toml",
        ],
        &dir,
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("allow_to_deny              2"), "{text}");
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
    let review = json_of(&review);
    assert_eq!(review["format"], "entra-governor.review/1");
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

    std::fs::remove_dir_all(&dir).unwrap();
}
