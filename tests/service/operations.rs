//! Running the service: configuration errors at start, the policy file hot-reloaded
//! under load, readiness, and a graceful stop that flushes the audit trail.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use entra_governor::Policy;
use serde_json::Value;

use crate::contract::{Case, Expect, forward_auth};
use crate::harness::{self, Service};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const FREEZE: &str = r#"
[[deny]]
name = "freeze-exp-42"
actions = ["inference.invoke"]
resources = ["models/exp-42"]
"#;

fn infer(token: &str) -> Case {
    Case {
        name: "infer",
        method: "POST",
        path: "/v1/models/exp-42/infer".into(),
        authorization: vec![format!("Bearer {token}")],
        expect: Expect::Allow,
    }
}

#[tokio::test]
async fn a_configuration_with_an_unknown_key_is_refused_with_the_key_path() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("unknown-key");
    let config = harness::write_config(&dir, &idp, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[upstream]", "[upstream]\nremove_authorisation = true");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(harness::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("upstream.remove_authorisation: unknown field `remove_authorisation`"),
        "{stderr}"
    );
    // A route whose resource names a placeholder the path lacks.
    let config = harness::write_config(
        &dir,
        &idp,
        "[[routes]]\nmethod = \"GET\"\npath = \"/v1/x/{id}\"\naction = \"a.read\"\nresource = \"x/{name}\"\n",
    );
    let out = Command::new(harness::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: routes[2]: resource template \"x/{name}\" uses {name}"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_reloads_under_load_and_no_request_sees_a_half_loaded_policy() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("reload");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let live = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    let frozen = format!("{live}{FREEZE}");
    let live_version = Policy::from_toml_str(&live)
        .unwrap()
        .version_hash()
        .to_owned();
    let frozen_version = Policy::from_toml_str(&frozen)
        .unwrap()
        .version_hash()
        .to_owned();
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();

    // Four clients ask without pause while the file flips between the two policies.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (base, case, stop) = (service.http.clone(), infer(&token), stop.clone());
        load.push(tokio::spawn(async move {
            let mut statuses = [0u32; 2];
            while !stop.load(Ordering::Relaxed) {
                match forward_auth(&base, &case).await.status {
                    200 => statuses[0] += 1,
                    403 => statuses[1] += 1,
                    other => panic!("a request saw {other} during a reload"),
                }
            }
            statuses
        }));
    }
    for round in 0..3 {
        for (text, version) in [(&frozen, &frozen_version), (&live, &live_version)] {
            std::fs::write(dir.join("policy.toml"), text).unwrap();
            wait_for_version(&service, version).await;
            let answer = forward_auth(&service.http, &infer(&token)).await;
            let expected = if version == &live_version { 200 } else { 403 };
            assert_eq!(answer.status, expected, "round {round}: policy {version}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = [0u32; 2];
    for task in load {
        let s = task.await.unwrap();
        total = [total[0] + s[0], total[1] + s[1]];
    }
    assert!(
        total[0] > 0 && total[1] > 0,
        "the load saw both policies: {total:?}"
    );
    let ready: Value = harness::get_json(format!("{}/readyz", service.http)).await;
    assert_eq!(ready["policy_reloads"]["ok"], 6, "{ready}");
    assert_eq!(service.terminate().code(), Some(0));

    // Every decision names one of the two whole policies, and agrees with it.
    let events = harness::audit_events(&dir);
    let decisions: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "inference.invoke")
        .collect();
    assert!(
        decisions.len() as u32 >= total[0] + total[1],
        "every decision was recorded"
    );
    for e in decisions {
        let version = e["policy_version"].as_str().unwrap();
        let expected = if version == live_version {
            "allow"
        } else {
            assert_eq!(
                version, frozen_version,
                "a decision under a third policy: {e}"
            );
            "deny"
        };
        assert_eq!(e["outcome"], expected, "{e}");
    }
}

/// Waits until `/readyz` reports `version` live.
async fn wait_for_version(service: &Service, version: &str) {
    for _ in 0..800 {
        let ready: Value = harness::get_json(format!("{}/readyz", service.http)).await;
        if ready["policy_version"] == version {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("policy {version} never went live: {}", service.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_file_keeps_the_live_policy_and_is_counted_and_logged() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("bad-policy");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let before: Value = harness::get_json(format!("{}/readyz", service.http)).await;
    std::fs::write(dir.join("policy.toml"), "version = 1\n[roles.broken\n").unwrap();
    let mut refused = false;
    for _ in 0..800 {
        let ready: Value = harness::get_json(format!("{}/readyz", service.http)).await;
        if ready["policy_reloads"]["failed"] == 1 {
            assert_eq!(
                ready["policy_version"], before["policy_version"],
                "the live policy stayed"
            );
            assert_eq!(ready["ready"], true);
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        refused,
        "the bad file was never tried: {}",
        service.log_text()
    );
    assert_eq!(
        forward_auth(&service.http, &infer(&token)).await.status,
        200,
        "the old policy still decides"
    );
    service
        .wait_for_log("policy file refused; the live policy stays")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_and_a_graceful_stop_flushes_the_audit_trail() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("health");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let health = reqwest::get(format!("{}/healthz", service.http))
        .await
        .unwrap();
    assert_eq!(
        (
            health.status().as_u16(),
            health.text().await.unwrap().as_str()
        ),
        (200, "ok")
    );
    let ready = reqwest::get(format!("{}/readyz", service.http))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert_eq!(
        (ready["ready"].clone(), ready["keys"].clone()),
        (Value::Bool(true), Value::from(1))
    );
    // The start-up line says what was configured, and no secret.
    let logs = service.log_text();
    assert!(
        logs.contains("routes=2") && logs.contains("authzen_peps=\"bearer secret\""),
        "{logs}"
    );
    assert!(
        !logs.contains(harness::PEP_SECRET),
        "the PEP secret reached the logs"
    );

    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let mut case = infer(&token);
    case.name = "just before the stop";
    assert_eq!(forward_auth(&service.http, &case).await.status, 200);
    assert_eq!(service.terminate().code(), Some(0));
    let events = harness::audit_events(&dir);
    assert!(
        events
            .iter()
            .any(|e| e["correlation_id"] == "just-before-the-stop"),
        "the last decision was flushed before the process exited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_reads_only_the_configured_gateways_headers() {
    let idp = crate::example_idp().await;
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let ask = |base: String, pairs: Vec<(&'static str, &'static str)>| {
        let token = token.clone();
        async move {
            let mut request = reqwest::Client::new()
                .get(format!("{base}/forward-auth"))
                .bearer_auth(token);
            for (name, value) in pairs {
                request = request.header(name, value);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    // Traefik: X-Forwarded-* names the request; a client's X-Original-* is ignored.
    let dir = harness::temp_dir("traefik");
    let service = Service::start(&harness::write_config(
        &dir,
        &idp,
        "[forward_auth]\nheaders = \"traefik\"\n",
    ));
    let traefik =
        |uri: &'static str| vec![("x-forwarded-method", "POST"), ("x-forwarded-uri", uri)];
    assert_eq!(
        ask(service.http.clone(), traefik("/v1/models/exp-42/infer")).await,
        200
    );
    let mut spoof = traefik("/v1/models/staging-1/infer");
    spoof.extend([
        ("x-original-method", "POST"),
        ("x-original-uri", "/v1/models/exp-42/infer"),
    ]);
    assert_eq!(
        ask(service.http.clone(), spoof).await,
        403,
        "the client's X-Original-URI was read"
    );
    drop(service);
    // nginx (default): X-Forwarded-* alone is a misconfigured gateway, never a decision.
    let dir = harness::temp_dir("nginx-style");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    assert_eq!(
        ask(service.http.clone(), traefik("/v1/models/exp-42/infer")).await,
        500
    );
    let twice = vec![
        ("x-original-method", "POST"),
        ("x-original-uri", "/v1/models/exp-42/infer"),
        ("x-original-uri", "/v1/models/exp-43/infer"),
    ];
    assert_eq!(
        ask(service.http.clone(), twice).await,
        500,
        "a repeated header is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_header_value_that_cannot_be_sent_refuses_the_request() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("header-value");
    let config = harness::write_config(&dir, &idp, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "\"x-entra-grant\" = \"grant\"",
        "\"x-entra-grant\" = \"grant\", \"x-entra-client\" = \"client_app_id\"",
    );
    std::fs::write(&config, text).unwrap();
    let service = Service::start(&config);
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .claim("azp", serde_json::json!("caf\u{e9}-app"))
        .sign();
    let answer = forward_auth(&service.http, &infer(&token)).await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert!(answer.body.contains("server_error"), "{answer:?}");
}

const PLATFORM_ADMINS: &str = "7c2d9e4f-1a3b-4c5d-9e6f-a0b1c2d3e4f5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_routes_revoke_a_caller_for_every_transport_and_report_the_fleet() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("admin");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let admin = idp
        .token()
        .scopes("Platform.Admin")
        .groups([PLATFORM_ADMINS])
        .acrs(["c2"])
        .sign();
    let victim = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .issued_at(-1);
    let claims = victim.claims();
    let body = serde_json::json!({ "tenant_id": claims["tid"], "object_id": claims["oid"] });
    let victim = victim.sign();
    assert_eq!(
        forward_auth(&service.http, &infer(&victim)).await.status,
        200
    );

    let revoke = |token: String| {
        let (url, body) = (
            format!("{}/v1/admin/revocations", service.http),
            body.to_string(),
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Behind the policy like any request: the victim may not revoke, the admin may.
    assert_eq!(revoke(victim.clone()).await, 403);
    assert_eq!(revoke(admin.clone()).await, 204);
    let refused = forward_auth(&service.http, &infer(&victim)).await;
    assert_eq!(
        refused.status, 401,
        "the revoked caller is refused: {refused:?}"
    );

    let fleet = reqwest::Client::new()
        .get(format!("{}/v1/admin/fleet", service.http))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(fleet.status(), 200);
    let fleet: Value = serde_json::from_str(&fleet.text().await.unwrap()).unwrap();
    assert_eq!(fleet["mode"], "standalone", "{fleet}");
    let anonymous = reqwest::get(format!("{}/v1/admin/fleet", service.http))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_until_the_keys_load_then_200_without_any_request() {
    let idp = crate::example_idp().await;
    idp.set_mode(entra_governor::testing::Mode::Down);
    let dir = harness::temp_dir("ready-after-keys");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let answer = reqwest::get(format!("{}/readyz", service.http))
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let down: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(
        (&down["ready"], &down["keys"], &down["fleet_current"]),
        (&Value::Bool(false), &Value::from(0), &Value::Bool(true)),
        "{down}"
    );
    let health = &down["health"];
    assert_eq!(health["ready"], false, "{down}");
    assert_eq!(health["not_ready"], serde_json::json!(["no_signing_keys"]));
    assert_eq!(health["keys"]["loaded"], 0);
    assert_eq!(health["keys"]["refresh_failing"], true);
    assert_eq!(health["keys"]["last_refresh_age_ms"], Value::Null);
    assert_eq!(health["policy"]["loaded"], true);
    assert_eq!(health["policy"]["version"], down["policy_version"]);
    assert_eq!(health["audit"]["strict"], false);
    assert_eq!(health["fleet"], Value::Null);

    // Entra comes back: the service fetches the keys on its own (no request carries a
    // token), and becomes ready.
    idp.set_mode(entra_governor::testing::Mode::Normal);
    let mut ready = None;
    for _ in 0..400 {
        let answer = reqwest::get(format!("{}/readyz", service.http))
            .await
            .unwrap();
        if answer.status() == 200 {
            ready = Some(answer.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ready: Value = serde_json::from_str(
        &ready.unwrap_or_else(|| panic!("never ready: {}", service.log_text())),
    )
    .unwrap();
    assert_eq!(
        (&ready["ready"], &ready["keys"]),
        (&Value::Bool(true), &Value::from(1))
    );
    let health = &ready["health"];
    assert_eq!(health["not_ready"], serde_json::json!([]));
    assert_eq!(health["keys"]["loaded"], 1);
    assert_eq!(health["keys"]["refresh_failing"], false);
    assert!(health["keys"]["last_refresh_age_ms"].is_u64(), "{ready}");
    assert_eq!(health["audit"]["healthy"], true);
    service.wait_for_log("signing keys loaded").await;
    assert_eq!(service.terminate().code(), Some(0));
}
