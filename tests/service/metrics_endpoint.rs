//! `GET /metrics`: the Prometheus text format, scraped before and after a scripted set of
//! requests, every counter moved by exactly what those requests did, and no label value
//! taken from a request.

use std::collections::BTreeMap;
use std::time::Duration;

use entra_governor::Policy;

use crate::contract::{Case, Expect, forward_auth};
use crate::harness::{self, Service};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
/// A group the example policy binds no role to.
const OTHER_GROUP: &str = "11111111-1111-4111-8111-111111111111";

/// One scrape: each sample line's `name{labels}` and its value.
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// Parses the text format: `# HELP`/`# TYPE` lines skipped, `name{labels} value`.
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "one sample a series: {line}"
            );
        }
        Scrape(samples)
    }

    /// A series' value; 0 for one not yet registered (a counter never incremented).
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// The sum over every series of a metric (`name` or `name{…}`).
    fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| *series == name || series.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum()
    }
}

async fn scrape(service: &Service) -> (String, Scrape) {
    let response = reqwest::get(format!("{}/metrics", service.http))
        .await
        .expect("the service answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let text = response.text().await.unwrap();
    let parsed = Scrape::parse(&text);
    (text, parsed)
}

fn ask(path: &str, authorization: String) -> Case {
    Case {
        name: "metrics",
        method: "POST",
        path: path.into(),
        authorization: vec![authorization],
        expect: Expect::Allow,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_the_requests_made_and_label_none_of_their_values() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("metrics");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let allowed = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let no_roles = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([OTHER_GROUP])
        .sign();
    let infer = "/v1/models/exp-42/infer";

    let (_, before) = scrape(&service).await;
    for _ in 0..3 {
        let answer = forward_auth(&service.http, &ask(infer, format!("Bearer {allowed}"))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    for _ in 0..2 {
        let answer = forward_auth(&service.http, &ask(infer, format!("Bearer {no_roles}"))).await;
        assert_eq!(answer.status, 403, "{}", answer.body);
    }
    let answer = forward_auth(&service.http, &ask(infer, "Bearer not-a-token".into())).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let (text, after) = scrape(&service).await;

    let moved = |series: &str| after.get(series) - before.get(series);
    let decisions = "entra_governor_decisions_total";
    assert_eq!(
        moved(&format!(r#"{decisions}{{outcome="allow",reason="allow"}}"#)),
        3.0,
        "{text}"
    );
    assert_eq!(
        moved(&format!(
            r#"{decisions}{{outcome="deny",reason="no_role_grants"}}"#
        )),
        2.0,
        "{text}"
    );
    assert_eq!(
        moved(&format!(
            r#"{decisions}{{outcome="deny",reason="malformed_token"}}"#
        )),
        1.0,
        "{text}"
    );
    assert_eq!(after.sum(decisions) - before.sum(decisions), 6.0, "{text}");
    // Five authorize calls (the malformed token is refused before any).
    assert_eq!(
        moved("entra_governor_decision_duration_seconds_count"),
        5.0,
        "{text}"
    );
    assert_eq!(
        moved(r#"entra_governor_decision_duration_seconds_bucket{le="+Inf"}"#),
        5.0,
        "{text}"
    );
    // Each token's first sight misses (the malformed one too: the cache is asked first);
    // the four repeats hit.
    let lookups = "entra_governor_token_cache_lookups_total";
    assert_eq!(moved(&format!(r#"{lookups}{{result="miss"}}"#)), 3.0);
    assert_eq!(moved(&format!(r#"{lookups}{{result="hit"}}"#)), 3.0);
    assert_eq!(after.get("entra_governor_token_cache_entries"), 2.0);
    // The keys were fetched once at start-up, never since.
    let fetches = r#"entra_governor_jwks_fetches_total{result="ok"}"#;
    assert_eq!(before.get(fetches), 1.0, "{text}");
    assert_eq!(moved(fetches), 0.0);
    assert_eq!(
        after.get(r#"entra_governor_jwks_fetches_total{result="error"}"#),
        0.0
    );
    assert!(after.0.contains_key("entra_governor_jwks_age_seconds"));
    assert_eq!(after.get("entra_governor_revocations"), 0.0);
    assert_eq!(after.get("entra_governor_audit_dropped_total"), 0.0);
    assert_eq!(after.get("entra_governor_audit_sink_failures_total"), 0.0);
    assert!(after.0.contains_key("entra_governor_audit_queue_depth"));
    // No Graph configured: no Graph series.
    assert_eq!(after.sum("entra_governor_graph_calls_total"), 0.0);

    let live = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    let version = Policy::from_toml_str(&live)
        .unwrap()
        .version_hash()
        .to_owned();
    let info = |v: &str| format!(r#"entra_governor_policy_info{{version="{v}"}}"#);
    assert_eq!(after.get(&info(&version)), 1.0, "{text}");
    assert_eq!(after.sum("entra_governor_policy_info"), 1.0, "{text}");

    // Nothing from a request in any label: no token, caller, tenant, path or resource.
    for forbidden in [
        allowed.as_str(),
        no_roles.as_str(),
        "not-a-token",
        idp.tenant_id().as_str(),
        "exp-42",
        "inference.invoke",
    ] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }

    // A reload: counted once, and the old version's series goes to 0.
    let edited = format!("{live}\n# an edit that changes the hash\n");
    let new_version = Policy::from_toml_str(&edited)
        .unwrap()
        .version_hash()
        .to_owned();
    std::fs::write(dir.join("policy.toml"), &edited).unwrap();
    let reloads = r#"entra_governor_policy_reloads_total{result="ok"}"#;
    let mut reloaded = None;
    for _ in 0..100 {
        let (_, now) = scrape(&service).await;
        if now.get(reloads) >= 1.0 {
            reloaded = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reloaded = reloaded.expect("the policy reloads within 10 s");
    assert_eq!(reloaded.get(reloads), 1.0);
    assert_eq!(
        reloaded.get(r#"entra_governor_policy_reloads_total{result="error"}"#),
        0.0
    );
    assert_eq!(reloaded.get(&info(&new_version)), 1.0);
    assert_eq!(reloaded.get(&info(&version)), 0.0);
    assert_eq!(reloaded.sum("entra_governor_policy_info"), 1.0);
}
