use std::time::Duration;

use super::*;
use crate::graph::GroupResolver;
use crate::ids::GroupId;
use crate::principal::Principal;

fn keys(loaded: usize) -> KeysHealth {
    KeysHealth {
        loaded,
        last_refresh_age: None,
        last_failure_age: None,
        refresh_failing: false,
    }
}

fn audit(strict: bool, closed: bool, consecutive_failures: u64) -> AuditHealth {
    AuditHealth {
        healthy: !closed && consecutive_failures == 0,
        strict,
        closed,
        queue_depth: 0,
        dropped: 0,
        sink_failures: consecutive_failures,
        consecutive_failures,
    }
}

fn fleet(current: bool) -> FleetHealth {
    FleetHealth {
        current,
        view_age: None,
        strict_bound: Some(Duration::from_secs(5)),
        connected: current,
        policy_converged: true,
    }
}

/// Keys held, the audit log, the fleet view, and the causes expected.
type Case = (
    usize,
    Option<AuditHealth>,
    Option<FleetHealth>,
    &'static [NotReady],
);

#[test]
fn the_ready_rule_denies_by_default_and_names_every_cause() {
    use NotReady::*;
    let cases: &[Case] = &[
        (1, None, None, &[]),
        (0, None, None, &[NoSigningKeys]),
        // Outside strict mode a failing sink is reported, not a cause.
        (1, Some(audit(false, false, 3)), None, &[]),
        (1, Some(audit(true, false, 0)), None, &[]),
        (1, Some(audit(true, false, 1)), None, &[AuditSinkFailing]),
        (1, Some(audit(false, true, 0)), None, &[AuditClosed]),
        (1, Some(audit(true, true, 2)), None, &[AuditClosed]),
        (1, None, Some(fleet(true)), &[]),
        (1, None, Some(fleet(false)), &[FleetViewStale]),
        (
            0,
            Some(audit(true, false, 1)),
            Some(fleet(false)),
            &[NoSigningKeys, AuditSinkFailing, FleetViewStale],
        ),
    ];
    for (loaded, audit, fleet, expected) in cases {
        assert_eq!(
            not_ready(&keys(*loaded), audit.as_ref(), fleet.as_ref()),
            *expected,
            "keys {loaded}, audit {audit:?}, fleet {fleet:?}"
        );
    }
}

#[test]
fn graph_calls_remember_the_last_result_and_the_credential() {
    let calls = GraphCalls::default();
    assert_eq!(
        calls.report(),
        GraphHealth {
            last_result: None,
            last_call_age: None,
            credential: CredentialState::Unknown,
        }
    );
    let refused = GroupResolutionError::Unauthorized {
        service: "the token endpoint",
        status: 401,
        code: "invalid_client".into(),
    };
    let steps: [(Result<Vec<GroupId>, _>, GraphResult, CredentialState); 5] = [
        (
            Err(GroupResolutionError::Throttled {
                retry_after_secs: 3,
            }),
            GraphResult::Throttled,
            CredentialState::Unknown,
        ),
        (Ok(vec![]), GraphResult::Ok, CredentialState::Accepted),
        (
            Err(GroupResolutionError::Unavailable { reason: "x".into() }),
            GraphResult::Unavailable,
            CredentialState::Accepted,
        ),
        (
            Err(refused),
            GraphResult::Unauthorized,
            CredentialState::Refused,
        ),
        (
            Err(GroupResolutionError::BudgetExceeded {
                budget: Duration::from_secs(5),
            }),
            GraphResult::BudgetExceeded,
            CredentialState::Refused,
        ),
    ];
    for (result, kind, credential) in steps {
        calls.note(&result);
        let report = calls.report();
        assert_eq!(
            (report.last_result, report.credential),
            (Some(kind), credential)
        );
        assert!(report.last_call_age.is_some());
    }
}

#[test]
fn a_fresh_governor_is_not_ready_and_its_report_serialises_without_network() {
    let governor = crate::Governor::builder()
        .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
        .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
        .build()
        .unwrap();
    let health = governor.health();
    assert_eq!(
        (health.ready, health.not_ready.clone()),
        (false, vec![NotReady::NoSigningKeys])
    );
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "ready": false,
            "not_ready": ["no_signing_keys"],
            "keys": {
                "loaded": 0,
                "last_refresh_age_ms": null,
                "last_failure_age_ms": null,
                "refresh_failing": false,
            },
            "policy": {
                "loaded": false,
                "version": governor.policy_version(),
                "shadow_version": null,
            },
            "token_cache": { "entries": 0, "bytes": 0 },
            "revocations": 0,
            "graph": null,
            "audit": null,
            "fleet": null,
        })
    );
}

#[cfg(feature = "testing")]
mod with_idp {
    use super::*;
    use crate::audit::{AuditLog, MemorySink};
    use crate::testing::{Mode, TestIdp};
    use crate::{Cloud, Governor, GovernorBuilder, Policy};

    fn policy() -> Policy {
        Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml")).unwrap()
    }

    fn builder(idp: &TestIdp) -> GovernorBuilder {
        Governor::builder()
            .cloud(Cloud::custom(idp.authority()))
            .tenant(idp.tenant_id().as_str())
            .client_id(idp.client_id())
            .dangerous_allow_http_loopback()
            .key_refresh_interval(None)
            .http_timeout(Duration::from_secs(2))
            .policy(policy())
    }

    /// Refuses every lookup as the token endpoint refusing the credential.
    /// A resolver whose credential is refused; counts its calls.
    #[derive(Clone, Default)]
    struct Refusing(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    #[async_trait::async_trait]
    impl GroupResolver for Refusing {
        async fn resolve(
            &self,
            _principal: &Principal,
            _candidates: &[GroupId],
        ) -> Result<Vec<GroupId>, GroupResolutionError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(GroupResolutionError::Unauthorized {
                service: "the token endpoint",
                status: 401,
                code: "invalid_client".into(),
            })
        }
    }

    #[tokio::test]
    async fn keys_make_it_ready_and_a_failed_refresh_is_reported_not_blocking() {
        let idp = TestIdp::start().await;
        idp.set_mode(Mode::Down);
        let governor = builder(&idp).build().unwrap();
        assert!(governor.prefetch_keys().await.is_err());
        let down = governor.health();
        assert_eq!(down.not_ready, [NotReady::NoSigningKeys]);
        assert!(down.keys.refresh_failing && down.keys.last_failure_age.is_some());
        assert_eq!(down.keys.last_refresh_age, None);
        assert!(down.policy.loaded);
        let requests = idp.jwks_requests() + idp.discovery_requests();

        idp.set_mode(Mode::Normal);
        // Reading the report never fetches: still not ready, no request sent.
        assert!(!governor.health().ready);
        assert_eq!(idp.jwks_requests() + idp.discovery_requests(), requests);
        // After the bootstrap backoff (1 s), a prefetch loads the keys.
        let mut loaded = Err(crate::TokenError::InvalidSignature);
        for _ in 0..100 {
            loaded = governor.prefetch_keys().await;
            if loaded.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(loaded.unwrap(), 1);
        let up = governor.health();
        assert_eq!((up.ready, up.not_ready.clone()), (true, vec![]));
        assert_eq!(up.keys.loaded, 1);
        assert!(up.keys.last_refresh_age.is_some() && !up.keys.refresh_failing);

        // A token signed by an unknown key forces a refresh; the idp is down again.
        idp.set_mode(Mode::Down);
        let kid = idp.add_key();
        idp.use_key(&kid);
        let token = idp.token().scopes("Inference.Invoke").sign();
        assert!(governor.verify(&token).await.is_err());
        let failing = governor.health();
        assert!(failing.keys.refresh_failing, "{failing:?}");
        assert_eq!(
            (failing.ready, failing.keys.loaded),
            (true, 1),
            "the last good keys keep serving"
        );
        assert!(failing.graph.is_none(), "no resolver configured");
    }

    #[tokio::test]
    async fn a_strict_audit_log_whose_sink_fails_makes_it_not_ready() {
        let idp = TestIdp::start().await;
        let sink = MemorySink::new();
        sink.set_failing(true);
        let log = AuditLog::builder(sink.clone()).strict(true).build();
        let governor = builder(&idp).audit(log).build().unwrap();
        governor.prefetch_keys().await.unwrap();
        assert!(governor.health().ready);
        let token = idp.token().scopes("Inference.Invoke").sign();
        let _ = governor
            .authorize(&token, "inference.invoke", "models/exp-42")
            .await;
        let mut health = governor.health();
        for _ in 0..500 {
            if health.audit.as_ref().is_some_and(|a| a.sink_failures > 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            health = governor.health();
        }
        assert_eq!(health.not_ready, [NotReady::AuditSinkFailing], "{health:?}");
        let audit = health.audit.unwrap();
        assert!(audit.strict && !audit.healthy && !audit.closed);
        assert!(audit.consecutive_failures > 0);

        sink.set_failing(false);
        for _ in 0..500 {
            if governor.health().ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(governor.health().not_ready, []);
        governor.shutdown().await;
        assert_eq!(governor.health().not_ready, [NotReady::AuditClosed]);
    }

    #[tokio::test]
    async fn the_last_group_lookup_is_reported_without_a_new_one() {
        let idp = TestIdp::start().await;
        let resolver = Refusing::default();
        let calls = || resolver.0.load(std::sync::atomic::Ordering::SeqCst);
        let governor = builder(&idp)
            .group_resolver(resolver.clone())
            .build()
            .unwrap();
        governor.prefetch_keys().await.unwrap();
        let before = governor.health().graph.unwrap();
        assert_eq!(calls(), 0, "health() asks no resolver");
        assert_eq!(
            (before.last_result, before.credential),
            (None, CredentialState::Unknown)
        );
        let token = idp.token().scopes("Models.Manage").overage().sign();
        let decision = governor
            .authorize(&token, "datasets.write", "datasets/curated/x")
            .await
            .unwrap();
        assert!(!decision.is_allowed());
        assert_eq!(calls(), 1);
        let after = governor.health();
        assert_eq!(
            calls(),
            1,
            "the report is the last lookup's, not a new lookup"
        );
        let graph = after.graph.unwrap();
        assert_eq!(
            (graph.last_result, graph.credential),
            (Some(GraphResult::Unauthorized), CredentialState::Refused)
        );
        assert!(after.ready, "a failing Graph does not block readiness");
    }
}
