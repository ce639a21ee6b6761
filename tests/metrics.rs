//! Metric cardinality (feature `metrics`): a real governor and the local Entra
//! look-alike, 10,000 distinct callers asking about 10,000 distinct resources, and a
//! recorder that keeps every series it is given. The set of series after 100 requests is
//! the set after 10,000: no label takes a value from a request.
#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;

use entra_governor::{Governor, ObjectId};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
/// A group the example policy binds no role to.
const OTHER_GROUP: &str = "11111111-1111-4111-8111-111111111111";
const CALLERS: u32 = 10_000;

/// Every series the recorder holds (its kind, name and labels), with a counter's value.
fn series(snapshotter: &metrics_util::debugging::Snapshotter) -> BTreeMap<String, Option<u64>> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
                .collect();
            let count = match value {
                DebugValue::Counter(n) => Some(n),
                _ => None,
            };
            (
                format!("{kind:?} {}{{{}}}", key.name(), labels.join(",")),
                count,
            )
        })
        .collect()
}

/// Caller `n`'s request: an allow, a deny, a cache hit and a refused token in turn.
async fn ask(idp: &entra_governor::testing::TestIdp, governor: &Governor, n: u32) {
    let oid = ObjectId::parse(&format!("{n:08x}-0000-4000-8000-{n:012x}")).unwrap();
    let token = idp.token().oid(oid).scopes("Inference.Invoke");
    let token = match n % 4 {
        1 => token.groups([OTHER_GROUP]).sign(),
        _ => token.groups([DATA_SCIENTISTS]).sign(),
    };
    let resource = format!("models/exp-{n}");
    match n % 4 {
        0 | 1 => {
            let d = governor
                .authorize(&token, "inference.invoke", &resource)
                .await;
            // Callers 0, 4, 8, … hold the role; 1, 5, 9, … do not.
            assert_eq!(d.unwrap().is_allowed(), n % 4 != 1);
        }
        2 => {
            for _ in 0..2 {
                let d = governor
                    .authorize(&token, "inference.invoke", &resource)
                    .await;
                assert!(d.unwrap().is_allowed());
            }
        }
        _ => {
            let tampered = format!("{token}A");
            let refused = governor.authorize(&tampered, "inference.invoke", &resource);
            assert!(refused.await.is_err());
        }
    }
}

#[tokio::test]
async fn the_number_of_series_does_not_grow_with_callers_or_resources() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // A current-thread runtime: every call below runs on this thread, under this recorder.
    let _local = metrics::set_default_local_recorder(&recorder);
    entra_governor::observe::describe();
    let idp = common::example_idp().await;
    let policy = crate::common::example_policy();
    let governor = common::builder(&idp).policy(policy).build().unwrap();

    for n in 0..100 {
        ask(&idp, &governor, n).await;
    }
    governor.record_gauges();
    let early = series(&snapshotter);
    for n in 100..CALLERS {
        ask(&idp, &governor, n).await;
    }
    governor.record_gauges();
    let late = series(&snapshotter);

    let names = |m: &BTreeMap<String, Option<u64>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&early), names(&late), "{late:#?}");
    // The series registered when the governor was built were also updated by requests.
    for counted in [
        r#"Counter entra_governor_decisions_total{outcome="allow",reason="allow"}"#,
        r#"Counter entra_governor_token_cache_lookups_total{result="hit"}"#,
        r#"Counter entra_governor_token_cache_lookups_total{result="miss"}"#,
    ] {
        assert!(late[counted] > Some(0), "{counted}: {late:#?}");
    }
    // The four kinds of request each left their series, and nothing from a request did.
    for expected in [
        r#"Counter entra_governor_decisions_total{outcome="allow",reason="allow"}"#,
        r#"Counter entra_governor_decisions_total{outcome="deny",reason="no_role_grants"}"#,
        r#"Counter entra_governor_decisions_total{outcome="deny",reason="invalid_signature"}"#,
        r#"Counter entra_governor_token_cache_lookups_total{result="hit"}"#,
        r#"Counter entra_governor_token_cache_lookups_total{result="miss"}"#,
        r#"Counter entra_governor_jwks_fetches_total{result="ok"}"#,
        "Histogram entra_governor_decision_duration_seconds{}",
        "Gauge entra_governor_token_cache_entries{}",
        "Gauge entra_governor_revocations{}",
    ] {
        assert!(late.contains_key(expected), "{expected}: {late:#?}");
    }
    let text = format!("{late:?}");
    for forbidden in [
        "exp-",
        "0000-4000-8000",
        idp.tenant_id().as_str(),
        "inference",
    ] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
}

/// Running totals over the debugging recorder's snapshots, which hand out what changed
/// since the last one (counters and histogram samples) and reset it.
struct Tally {
    snapshotter: metrics_util::debugging::Snapshotter,
    totals: BTreeMap<String, f64>,
}

impl Tally {
    fn new(snapshotter: metrics_util::debugging::Snapshotter) -> Self {
        Self {
            snapshotter,
            totals: BTreeMap::new(),
        }
    }

    /// A counter's total, a histogram's sample count, or a gauge's value, by series
    /// (`name` or `name{label="value"}`).
    fn get(&mut self, wanted: &str) -> f64 {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let (_, key) = key.into_parts();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
                .collect();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            let total = self.totals.entry(name).or_default();
            match value {
                DebugValue::Counter(n) => *total += n as f64,
                DebugValue::Gauge(g) => *total = g.into_inner(),
                DebugValue::Histogram(samples) => *total += samples.len() as f64,
            }
        }
        self.totals.get(wanted).copied().unwrap_or(0.0)
    }
}

#[tokio::test]
async fn verifications_evictions_and_cache_bytes_are_counted_exactly() {
    let recorder = DebuggingRecorder::new();
    let mut tally = Tally::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);
    let idp = common::example_idp().await;
    let policy = crate::common::example_policy();
    // About three entries' worth of budget (an entry weighs about 4 KiB).
    let governor = common::builder(&idp)
        .policy(policy)
        .verified_token_cache(Some(12 * 1024))
        .build()
        .unwrap();
    const VERIFIED: &str = "entra_governor_token_verification_duration_seconds";
    let tokens: Vec<String> = (0..10)
        .map(|_| {
            idp.token()
                .scopes("Inference.Invoke")
                .groups([DATA_SCIENTISTS])
                .sign()
        })
        .collect();
    for t in &tokens {
        let d = governor
            .authorize(t, "inference.invoke", "models/exp-1")
            .await;
        assert!(d.unwrap().is_allowed());
    }
    assert_eq!(
        tally.get(VERIFIED),
        10.0,
        "one full verification per new token"
    );
    // The last token is held: a hit, no verification.
    let d = governor
        .authorize(&tokens[9], "inference.invoke", "models/exp-1")
        .await;
    assert!(d.unwrap().is_allowed());
    assert_eq!(tally.get(VERIFIED), 10.0);
    // A refused token is verified (and refused) in full too.
    let tampered = format!("{}A", tokens[0]);
    assert!(
        governor
            .authorize(&tampered, "inference.invoke", "models/exp-1")
            .await
            .is_err()
    );
    assert_eq!(tally.get(VERIFIED), 11.0);
    // Every token went in; the ones no longer held were evicted, and counted.
    let held = governor.cached_tokens();
    assert!((1..10).contains(&held), "{held} held");
    assert_eq!(
        tally.get("entra_governor_token_cache_evictions_total") + held as f64,
        10.0
    );
    governor.record_gauges();
    let bytes = governor.health().token_cache.bytes;
    assert!(bytes > 0 && bytes <= 12 * 1024, "{bytes}");
    assert_eq!(tally.get("entra_governor_token_cache_bytes"), bytes as f64);
}

#[tokio::test]
async fn graph_lookups_cache_hits_and_retry_after_waits_are_counted_exactly() {
    use entra_governor::GroupId;
    use entra_governor::testing::GraphMode;

    let recorder = DebuggingRecorder::new();
    let mut tally = Tally::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);
    let idp = common::example_idp().await;
    let resolver = crate::common::graph_resolver(&idp)
        .max_retries(1)
        .build()
        .unwrap();
    let policy = crate::common::example_policy();
    let governor = common::builder(&idp)
        .policy(policy)
        .group_resolver(resolver)
        .build()
        .unwrap();
    let member = |n: u32| {
        let oid = ObjectId::parse(&format!("0ae00000-0000-4000-8000-{n:012x}")).unwrap();
        let mut groups: Vec<GroupId> = (0..299)
            .map(|i| GroupId::parse(&format!("0ae1{n:04x}-0000-4000-8000-{i:012x}")).unwrap())
            .collect();
        groups.push(DATA_SCIENTISTS.parse().unwrap());
        idp.set_memberships(&oid, groups);
        idp.token()
            .oid(oid)
            .scopes("Inference.Invoke")
            .overage()
            .sign()
    };
    const LOOKUPS: &str = "entra_governor_graph_lookup_duration_seconds";
    const HITS: &str = r#"entra_governor_graph_cache_lookups_total{result="hit"}"#;
    const MISSES: &str = r#"entra_governor_graph_cache_lookups_total{result="miss"}"#;
    const WAITS: &str = "entra_governor_graph_retry_after_waits_total";
    let first = member(1);
    for round in 1..=2 {
        let d = governor
            .authorize(&first, "inference.invoke", "models/exp-1")
            .await;
        assert!(d.unwrap().is_allowed(), "round {round}");
    }
    // Two decisions waited for a lookup; the second was answered from the cache.
    assert_eq!(tally.get(LOOKUPS), 2.0);
    assert_eq!((tally.get(MISSES), tally.get(HITS)), (1.0, 1.0));
    assert_eq!(tally.get(WAITS), 0.0);
    // Graph throttles the next call for 1 s: the resolver waits once, as asked.
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 1,
        times: 1,
    });
    let second = member(2);
    let d = governor
        .authorize(&second, "inference.invoke", "models/exp-1")
        .await;
    assert!(d.unwrap().is_allowed());
    assert_eq!(tally.get(WAITS), 1.0);
    assert_eq!(
        tally.get("entra_governor_graph_retry_after_seconds_total"),
        1.0
    );
    assert_eq!(tally.get(LOOKUPS), 3.0);
    assert_eq!((tally.get(MISSES), tally.get(HITS)), (2.0, 1.0));
}
