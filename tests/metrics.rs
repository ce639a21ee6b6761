//! Metric cardinality (feature `metrics`): a real governor and the local Entra
//! look-alike, 10,000 distinct callers asking about 10,000 distinct resources, and a
//! recorder that keeps every series it is given. The set of series after 100 requests is
//! the set after 10,000: no label takes a value from a request.
#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;

use entra_governor::{Governor, ObjectId, Policy};
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
    let policy =
        Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml")).unwrap();
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
