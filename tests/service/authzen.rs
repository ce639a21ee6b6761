//! AuthZEN Authorization API 1.0 specifics: PEP authentication, the batch endpoint and
//! its three semantics, the subject check, the metadata.

use serde_json::{Value, json};

use crate::harness::{self, PEP_SECRET, Service};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

async fn post(service: &Service, path: &str, secret: Option<&str>, body: &Value) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", service.http))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn evaluation(token: &str, action: &str, kind: &str, id: &str) -> Value {
    json!({
        "subject": { "type": "user", "id": "", "properties": { "token": token } },
        "action": { "name": action },
        "resource": { "type": kind, "id": id },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authzen_refuses_unauthenticated_peps_and_serves_batches_by_their_semantic() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("authzen");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let token = idp
        .token()
        .scopes("Inference.Invoke Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let one = evaluation(&token, "inference.invoke", "models", "exp-42");

    // PEP authentication: none, or the wrong secret, is 401 on both endpoints.
    for path in ["/access/v1/evaluation", "/access/v1/evaluations"] {
        assert_eq!(post(&service, path, None, &one).await.0, 401, "{path}");
        assert_eq!(
            post(
                &service,
                path,
                Some("not-the-secret-but-long-enough-0123456789"),
                &one
            )
            .await
            .0,
            401
        );
        assert_eq!(
            post(&service, path, Some(&token), &one).await.0,
            401,
            "a caller's token is not a PEP's"
        );
    }
    let (status, body) = post(&service, "/access/v1/evaluation", Some(PEP_SECRET), &one).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["decision"], true, "{answer}");

    // A malformed request is 400, not a deny.
    let (status, _) = post(
        &service,
        "/access/v1/evaluation",
        Some(PEP_SECRET),
        &json!({"subject": 1}),
    )
    .await;
    assert_eq!(status, 400);

    // subject.id, when given, must be the token's caller.
    let principal = format!(
        "{}/{}",
        idp.tenant_id(),
        "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    );
    let named = idp
        .token()
        .oid(entra_governor::ObjectId::parse("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0").unwrap())
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let mut mine = evaluation(&named, "inference.invoke", "models", "exp-42");
    mine["subject"]["id"] = json!(principal);
    let answer: Value = serde_json::from_str(
        &post(&service, "/access/v1/evaluation", Some(PEP_SECRET), &mine)
            .await
            .1,
    )
    .unwrap();
    assert_eq!(answer["decision"], true, "{answer}");
    mine["subject"]["id"] = json!("someone-else");
    let answer: Value = serde_json::from_str(
        &post(&service, "/access/v1/evaluation", Some(PEP_SECRET), &mine)
            .await
            .1,
    )
    .unwrap();
    assert_eq!(
        (
            answer["decision"].clone(),
            answer["context"]["reason"].clone()
        ),
        (json!(false), json!("subject_mismatch"))
    );

    // Batches: top-level subject and action are defaults; each entry names its resource.
    let batch = |semantic: &str| {
        json!({
            "subject": { "type": "user", "id": "", "properties": { "token": token } },
            "action": { "name": "inference.invoke" },
            "evaluations": [
                { "resource": { "type": "models", "id": "exp-1" } },
                { "resource": { "type": "models", "id": "staging-1" } },
                { "resource": { "type": "models", "id": "exp-2" } },
                { "action": { "name": "datasets.read" }, "resource": { "type": "datasets", "id": "public/wiki" } },
            ],
            "options": { "evaluations_semantic": semantic },
        })
    };
    let decisions = |body: &str| -> Vec<bool> {
        let v: Value = serde_json::from_str(body).unwrap();
        v["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect()
    };
    for (semantic, expected) in [
        ("execute_all", vec![true, false, true, true]),
        ("deny_on_first_deny", vec![true, false]),
        ("permit_on_first_permit", vec![true]),
    ] {
        let (status, body) = post(
            &service,
            "/access/v1/evaluations",
            Some(PEP_SECRET),
            &batch(semantic),
        )
        .await;
        assert_eq!(status, 200, "{semantic}: {body}");
        assert_eq!(decisions(&body), expected, "{semantic}");
    }
    // One subject for every entry: answered as the governor's batch question, entry
    // for entry the same answers as one evaluation each, context included.
    let (_, body) = post(
        &service,
        "/access/v1/evaluations",
        Some(PEP_SECRET),
        &batch("execute_all"),
    )
    .await;
    let batched: Value = serde_json::from_str(&body).unwrap();
    for (i, (action, kind, id)) in [
        ("inference.invoke", "models", "exp-1"),
        ("inference.invoke", "models", "staging-1"),
        ("inference.invoke", "models", "exp-2"),
        ("datasets.read", "datasets", "public/wiki"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, one) = post(
            &service,
            "/access/v1/evaluation",
            Some(PEP_SECRET),
            &evaluation(&token, action, kind, id),
        )
        .await;
        let one: Value = serde_json::from_str(&one).unwrap();
        assert_eq!(batched["evaluations"][i], one, "entry {i}");
    }
    // A shared subject whose token is refused, or whose id is not the token's caller:
    // every entry gets that refusal.
    let shared = |token: &str, id: &str| {
        let mut b = batch("execute_all");
        b["subject"] = json!({ "type": "user", "id": id, "properties": { "token": token } });
        b
    };
    for (body, reason) in [
        (shared("not-a-token", ""), "invalid_token"),
        (shared(&token, "someone-else"), "subject_mismatch"),
    ] {
        let (status, text) =
            post(&service, "/access/v1/evaluations", Some(PEP_SECRET), &body).await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let reasons: Vec<(&Value, &Value)> = v["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (&e["decision"], &e["context"]["reason"]))
            .collect();
        assert_eq!(reasons, vec![(&json!(false), &json!(reason)); 4], "{text}");
    }
    // The shared subject's token was verified once for the whole batch: one refusal in
    // the trail, where one evaluation per entry would have written four. (A marker
    // decision before and after shows the trail has caught up: it is written in order.)
    let refused = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["action"] == "authenticate" && e["outcome"] == "invalid_token")
            .count()
    };
    let settled = |marker: &'static str| {
        let (service, dir, token) = (&service, &dir, &token);
        async move {
            let ask = evaluation(token, "inference.invoke", "models", marker);
            post(service, "/access/v1/evaluation", Some(PEP_SECRET), &ask).await;
            let resource = format!("models/{marker}");
            for _ in 0..100 {
                let events = harness::audit_events(dir);
                if events.iter().any(|e| e["resource"] == resource.as_str()) {
                    return events;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("{resource} never reached the trail");
        }
    };
    let before = refused(&settled("exp-marker-1").await);
    let body = shared("not-a-token", "");
    post(&service, "/access/v1/evaluations", Some(PEP_SECRET), &body).await;
    let events = settled("exp-marker-2").await;
    assert_eq!(refused(&events), before + 1, "{events:#?}");
    let (status, _) = post(
        &service,
        "/access/v1/evaluations",
        Some(PEP_SECRET),
        &batch("first_come"),
    )
    .await;
    assert_eq!(status, 400, "an unknown semantic is a bad request");

    // The metadata names the endpoints at the listener's address.
    let metadata: Value = harness::get_json(format!(
        "{}/.well-known/authzen-configuration",
        service.http
    ))
    .await;
    assert_eq!(metadata["policy_decision_point"], json!(service.http));
    assert_eq!(
        metadata["access_evaluation_endpoint"],
        json!(format!("{}/access/v1/evaluation", service.http))
    );
    assert_eq!(
        metadata["access_evaluations_endpoint"],
        json!(format!("{}/access/v1/evaluations", service.http))
    );
}

#[tokio::test]
async fn a_short_pep_secret_is_refused_at_start() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("short-pep");
    let config = harness::write_config(&dir, &idp, "");
    let out = std::process::Command::new(harness::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env(harness::PEP_ENV, "short")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("authzen.pep_token_env: EG_TEST_PEP_TOKEN holds fewer than 32 bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains("short\n"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authzen_request_errors_are_400_and_a_mismatched_subject_is_audited() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("authzen-errors");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let oid = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    let token = idp
        .token()
        .oid(entra_governor::ObjectId::parse(oid).unwrap())
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let whole = evaluation(&token, "inference.invoke", "models", "exp-42");

    // Each missing part is a 400 on /evaluation, and so is a type that is not one segment.
    for part in ["subject", "action", "resource"] {
        let mut body = whole.clone();
        body.as_object_mut().unwrap().remove(part);
        let (status, text) = post(&service, "/access/v1/evaluation", Some(PEP_SECRET), &body).await;
        assert_eq!(
            (status, text.as_str()),
            (400, "subject, action and resource are required"),
            "{part}"
        );
    }
    let mut body = whole.clone();
    body["resource"]["type"] = json!("models/exp-42");
    assert_eq!(
        post(&service, "/access/v1/evaluation", Some(PEP_SECRET), &body)
            .await
            .0,
        400
    );
    // A body that is not JSON: the message says where, and never quotes the request.
    let (status, text) = post(
        &service,
        "/access/v1/evaluation",
        Some(PEP_SECRET),
        &json!(token),
    )
    .await;
    assert_eq!(status, 400);
    assert!(!text.contains(&token[..20]), "{text}");

    // The Bearer scheme is case-insensitive; a refused PEP gets the challenge.
    let response = reqwest::Client::new()
        .post(format!("{}/access/v1/evaluation", service.http))
        .header("authorization", format!("bearer {PEP_SECRET}"))
        .header("content-type", "application/json")
        .body(whole.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let refused = reqwest::Client::new()
        .post(format!("{}/access/v1/evaluation", service.http))
        .body(whole.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");

    // Without evaluations the batch endpoint answers one evaluation, as one.
    let (status, text) = post(&service, "/access/v1/evaluations", Some(PEP_SECRET), &whole).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["decision"], json!(true), "{answer}");
    assert!(answer.get("evaluations").is_none(), "{answer}");

    // subject.id may be the oid alone; another id is a deny, recorded in the trail.
    let mut body = whole.clone();
    body["subject"]["id"] = json!(oid);
    let answer: Value = serde_json::from_str(
        &post(&service, "/access/v1/evaluation", Some(PEP_SECRET), &body)
            .await
            .1,
    )
    .unwrap();
    assert_eq!(answer["decision"], json!(true), "{answer}");
    body["subject"]["id"] = json!("11111111-2222-4333-8444-555555555555");
    let answer: Value = serde_json::from_str(
        &post(&service, "/access/v1/evaluation", Some(PEP_SECRET), &body)
            .await
            .1,
    )
    .unwrap();
    assert_eq!(answer["context"]["reason"], json!("subject_mismatch"));
    assert_eq!(service.terminate().code(), Some(0));
    let events = harness::audit_events(&dir);
    let mismatch = events
        .iter()
        .find(|e| e["reason"] == "subject_mismatch")
        .expect("audited");
    assert_eq!(
        (
            mismatch["object_id"].as_str(),
            mismatch["resource"].as_str()
        ),
        (Some(oid), Some("models/exp-42"))
    );
}
