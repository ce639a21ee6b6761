//! Concurrency stress: many tasks authorize while signing keys rotate and the policy is
//! reloaded over and over. Every decision must have been made under one consistent
//! policy (the one its audit event names), no token may fail because of a rotation, key
//! refreshes stay single-flight, and the audit trail counts every call exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use entra_governor::testing::TestIdp;
use entra_governor::{AuditLog, AuditOutcome, MemorySink, Policy};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

fn open_policy() -> Policy {
    crate::common::example_policy()
}

fn frozen_policy() -> Policy {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/policy.toml"
    ))
    .unwrap()
        + "\n[[deny]]\nname = \"training-freeze\"\nactions = [\"training.*\"]\nresources = [\"**\"]\n";
    Policy::from_toml_str(&source).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decisions_stay_consistent_while_keys_rotate_and_the_policy_reloads() {
    let idp = TestIdp::start().await;
    let sink = MemorySink::new();
    let log = AuditLog::builder(sink.clone()).build();
    let (open, frozen) = (open_policy(), frozen_policy());
    let (open_v, frozen_v) = (
        open.version_hash().to_owned(),
        frozen.version_hash().to_owned(),
    );
    // Rotations here come every 100 ms or so; in production the cooldown (5 min) is
    // shorter than Entra's rotation period, and the test keeps that relation with 10 ms.
    let g = common::builder(&idp)
        .policy(open.clone())
        .audit(log.clone())
        .dangerous_fast_key_refresh()
        .key_refresh_cooldown(std::time::Duration::from_millis(10))
        .build()
        .unwrap();

    let mint = |idp: &TestIdp| {
        idp.token()
            .scopes("Training.Manage")
            .groups([DATA_SCIENTISTS])
            .sign()
    };
    let tokens = Arc::new(std::sync::RwLock::new(vec![mint(&idp), mint(&idp)]));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (g, tokens, stop, calls) = (g.clone(), tokens.clone(), stop.clone(), calls.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let token = {
                        let t = tokens.read().unwrap();
                        t[i % t.len()].clone()
                    };
                    i += 1;
                    calls.fetch_add(1, Ordering::Relaxed);
                    let d = g.authorize(&token, "training.submit", "models/exp-1").await;
                    d.expect("no token may fail because of a rotation or a reload");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    let rotations = 4;
    for round in 0..rotations {
        // Publish a new key and sign new tokens with it; the older keys stay published.
        let kid = idp.add_key();
        idp.use_key(&kid);
        let fresh = mint(&idp);
        tokens.write().unwrap().push(fresh);
        for flip in 0..5 {
            g.reload_policy(if (round + flip) % 2 == 0 {
                frozen.clone()
            } else {
                open.clone()
            })
            .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    log.flush().await;

    let total = calls.load(Ordering::Relaxed);
    let events = sink.events();
    assert!(total > 100, "the workers ran ({total} calls)");
    assert_eq!(events.len(), total, "one audit event per call, none lost");
    let (mut allowed, mut frozen_denials) = (0, 0);
    for e in &events {
        let version = e.policy_version.as_deref().unwrap();
        match e.outcome {
            AuditOutcome::Allow => {
                assert_eq!(
                    version, open_v,
                    "an allow was decided under the open policy"
                );
                allowed += 1;
            }
            AuditOutcome::Deny => {
                assert_eq!(
                    version, frozen_v,
                    "a deny was decided under the frozen policy"
                );
                assert_eq!(e.denied_by.as_deref(), Some("training-freeze"));
                frozen_denials += 1;
            }
            other => panic!("unexpected outcome {other:?}: {e:?}"),
        }
    }
    assert!(
        allowed > 0 && frozen_denials > 0,
        "both policies served ({allowed}/{frozen_denials})"
    );
    // One initial fetch plus at most one refresh per rotation (single flight).
    assert!(
        idp.jwks_requests() <= 1 + rotations,
        "{} JWKS fetches",
        idp.jwks_requests()
    );
}
