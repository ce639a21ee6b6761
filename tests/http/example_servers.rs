//! The example servers as a user starts them: the built example binaries, run as
//! processes with a `--config` file, against the local Entra look-alike.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use entra_governor::testing::TestIdp;

use crate::common::{TempDir, example_binary};

/// A configuration for two tenants of `idp`, with the policy in `policy`.
fn multi_tenant_config(dir: &Path, idp: &TestIdp, partner: &str, policy: &str) -> PathBuf {
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[listen]
http = "127.0.0.1:0"
[policy]
path = "policy.toml"
[audit]
sink = "file"
path = "decisions.jsonl"
[entra]
authority = "{}"
dangerous_allow_http_loopback = true
tenants = ["{}", "{partner}"]
client_id = "{}"
"#,
            idp.authority(),
            idp.tenant_id(),
            idp.client_id()
        ),
    )
    .unwrap();
    config
}

/// A configuration for `idp`'s tenant on the example policy, with a decision file beside
/// it and `extra` sections.
fn example_config(dir: &Path, idp: &TestIdp, extra: &str) -> PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[listen]
http = "127.0.0.1:0"
[policy]
path = "{}/examples/policy.toml"
[audit]
sink = "file"
path = "decisions.jsonl"
{extra}[entra]
authority = "{}"
dangerous_allow_http_loopback = true
tenant = "{}"
client_id = "{}"
"#,
            env!("CARGO_MANIFEST_DIR"),
            idp.authority(),
            idp.tenant_id(),
            idp.client_id()
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn a_multi_tenant_server_refuses_to_start_with_an_unqualified_claim_binding() {
    let idp = TestIdp::start().await;
    let partner = idp.add_tenant();
    let dir = TempDir::new("example-servers-refuse");
    let policy = r#"version = 1
[roles.auditor]
grants = [{ actions = ["audit.read"], resources = ["audit/**"] }]
[[bindings]]
name = "auditors-by-app-role"
app_role = "Platform.Auditor"
roles = ["auditor"]
[scopes]
"Audit.Read" = ["audit.read"]
"#;
    let config = multi_tenant_config(&dir, &idp, partner.as_str(), policy);
    for example in ["ai_platform", "actix_platform"] {
        let out = Command::new(example_binary(example))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap_or_else(|e| panic!("{example} did not run: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{example}: {stderr}");
        assert!(
            stderr.contains("unqualified: bindings[0] (auditors-by-app-role)"),
            "{example}: {stderr}"
        );
    }
}

#[test]
fn the_quickstart_shows_the_decisions_its_comments_promise() {
    let out = Command::new(example_binary("quickstart"))
        .output()
        .expect("the quickstart runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |persona: &str, action: &str| -> String {
        stdout
            .lines()
            .find(|l| l.starts_with(persona) && l.contains(action))
            .unwrap_or_else(|| panic!("no {persona} {action} line in:\n{stdout}"))
            .to_owned()
    };
    // Claim-value bindings trust the home tenant, and say so.
    for (persona, action) in [
        ("CI pipeline (app-only)", "allowed: training.submit"),
        ("auditor (app role)", "allowed: audit.read"),
    ] {
        let l = line(persona, action);
        assert!(
            l.ends_with("trusted for tenant 8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d)"),
            "{l}"
        );
    }
    assert!(
        line("CI pipeline (secret)", "training.submit")
            .contains("requirement role:training-pipeline not met")
    );
    assert!(line("engineer, 300 groups", "datasets.write").contains("allowed"));
}

/// An example server process serving `config`; killed on drop.
pub(crate) struct Served {
    child: Child,
    /// `http://127.0.0.1:<port>`, from the server's `listening on …` line.
    pub(crate) base: String,
}

impl Served {
    /// Starts `example --config <config>` and waits for its `listening on` line.
    pub(crate) fn start(example: &str, config: &Path) -> Self {
        let mut child = Command::new(example_binary(example))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{example} did not run: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        // Drained for the process's whole life: a full pipe would block it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{example} did not start"));
        Served { child, base }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Multi-threaded: the look-alike serves the servers' key fetches while this thread waits
// for them to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_the_admin_route_survives_a_restart_with_a_revocations_file() {
    let idp = crate::common::example_idp().await;
    let dir = TempDir::new("example-servers-revocations-file");
    let config = example_config(
        &dir,
        &idp,
        "[revocations]\nfile = \"revoked/revocations.json\"\n",
    );
    std::fs::create_dir_all(dir.join("revoked")).unwrap();
    let admin = crate::admin::admin_token(&idp);
    for example in ["ai_platform", "actix_platform"] {
        let (victim, body) = crate::admin::scientist(&idp);
        let served = Served::start(example, &config);
        assert_eq!(
            crate::admin::get(&served.base, "/v1/me", &victim).await.0,
            200
        );
        let (status, _, text) = crate::admin::revoke(&served.base, &admin, &body.to_string()).await;
        assert_eq!(status, 204, "{example}: {text}");
        assert_eq!(
            crate::admin::get(&served.base, "/v1/me", &victim).await.0,
            401
        );
        // Written where the configuration said, relative to the configuration file.
        let saved = std::fs::read_to_string(dir.join("revoked/revocations.json")).unwrap();
        assert!(
            saved.contains(body["object_id"].as_str().unwrap()),
            "{example}: {saved}"
        );
        drop(served);
        let served = Served::start(example, &config);
        assert_eq!(
            crate::admin::get(&served.base, "/v1/me", &victim).await.0,
            401,
            "{example}: the revocation did not survive the restart"
        );
    }
}

/// `GET /metrics` of a running server, as `series → value` (comments left out).
async fn scrape(base: &str) -> std::collections::BTreeMap<String, f64> {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// A scrape once the audit worker has written every queued event: the queue-depth gauge
/// reads what the worker has not written yet, which right after a request depends on
/// how soon the worker ran. Waits at most ten seconds for it to reach zero.
async fn scrape_drained(base: &str) -> std::collections::BTreeMap<String, f64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = scrape(base).await;
        let depth = metrics.get("entra_governor_audit_queue_depth").copied();
        if depth.unwrap_or(0.0) == 0.0 {
            return metrics;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the audit queue still holds {depth:?} events after ten seconds"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How much each series moved between two scrapes (series absent before count from 0).
fn moved(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    after
        .iter()
        .map(|(series, v)| {
            (
                series.clone(),
                v - before.get(series).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, delta)| *delta != 0.0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_counter_of_an_example_servers_metrics_moves_by_exactly_its_requests() {
    let idp = crate::common::example_idp().await;
    let dir = TempDir::new("example-servers-metrics");
    let config = example_config(&dir, &idp, "");
    let client = reqwest::Client::new();
    for example in ["ai_platform", "actix_platform"] {
        let served = Served::start(example, &config);
        let base = served.base.as_str();
        let (scientist, _) = crate::admin::scientist(&idp);
        let expired = idp
            .token()
            .scopes("Inference.Invoke")
            .expires_in(-3600)
            .sign();
        let before = scrape_drained(base).await;
        // The script: 3 allowed inferences, 2 refused deployments (same token: 1 cache
        // miss, then 4 hits), 1 expired token (a miss, refused before any decision) and
        // 1 request without a token (no lookup at all).
        let send = |path: &str, token: Option<&str>| {
            let mut request = client
                .post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(r#"{"input": "hello"}"#);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        };
        for _ in 0..3 {
            assert_eq!(send("/v1/models/exp-1/infer", Some(&scientist)).await, 200);
        }
        for _ in 0..2 {
            assert_eq!(
                send("/v1/models/prod-1/deploy", Some(&scientist)).await,
                403
            );
        }
        assert_eq!(send("/v1/models/exp-1/infer", Some(&expired)).await, 401);
        assert_eq!(send("/v1/models/exp-1/infer", None).await, 401);
        let after = scrape_drained(base).await;
        let moved = moved(&before, &after);
        let expected: std::collections::BTreeMap<String, f64> = [
            (
                r#"entra_governor_decisions_total{outcome="allow",reason="allow"}"#,
                3.0,
            ),
            (
                r#"entra_governor_decisions_total{outcome="deny",reason="outside_scopes"}"#,
                2.0,
            ),
            (
                r#"entra_governor_decisions_total{outcome="deny",reason="expired"}"#,
                1.0,
            ),
            (
                r#"entra_governor_decisions_total{outcome="deny",reason="missing_bearer_token"}"#,
                1.0,
            ),
            (
                r#"entra_governor_token_cache_lookups_total{result="hit"}"#,
                4.0,
            ),
            (
                r#"entra_governor_token_cache_lookups_total{result="miss"}"#,
                2.0,
            ),
            ("entra_governor_decision_duration_seconds_count", 5.0),
            // Two tokens the cache did not hold: the scientist's and the expired one.
            (
                "entra_governor_token_verification_duration_seconds_count",
                2.0,
            ),
            ("entra_governor_token_cache_entries", 1.0),
        ]
        .into_iter()
        .map(|(series, n)| (series.to_owned(), n))
        .collect();
        let counted: std::collections::BTreeMap<String, f64> = moved
            .iter()
            // Timings (buckets, sums, the keys' age) and the cache's bytes are checked below.
            .filter(|(series, _)| {
                !series.contains("_duration_seconds_bucket")
                    && !series.ends_with("_duration_seconds_sum")
                    && series.as_str() != "entra_governor_jwks_age_seconds"
                    && series.as_str() != "entra_governor_token_cache_bytes"
            })
            .map(|(s, v)| (s.clone(), *v))
            .collect();
        assert_eq!(counted, expected, "{example}: every series that moved");
        // The five decisions' latencies landed in the histogram's buckets.
        let inf = r#"entra_governor_decision_duration_seconds_bucket{le="+Inf"}"#;
        assert_eq!(moved.get(inf), Some(&5.0), "{example}");
        let inf = r#"entra_governor_token_verification_duration_seconds_bucket{le="+Inf"}"#;
        assert_eq!(moved.get(inf), Some(&2.0), "{example}");
        // The one cached entry's charge: at least its token's bytes.
        let bytes = after["entra_governor_token_cache_bytes"];
        assert!(
            bytes > scientist.len() as f64,
            "{example}: {bytes} bytes cached"
        );
        // No label holds a token, a caller or a resource.
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let oid = idp.token().claims()["oid"].clone();
        for needle in [
            scientist.rsplit('.').next().unwrap(),
            "exp-1",
            "prod-1",
            oid.as_str().unwrap(),
        ] {
            assert!(!text.contains(needle), "{example}: {needle} in /metrics");
        }
    }
}
