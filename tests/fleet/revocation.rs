//! Shared revocations: a revocation made through one replica's admin route is enforced
//! by every replica within 1 s of its 204.

use std::time::{Duration, Instant};

use crate::replica::{DATA_SCIENTISTS, Fleet, SERIAL, admin_token, caller, get, revoke, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_replica_is_enforced_by_every_replica_within_a_second() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start("revoke").await;
    let admin = admin_token(&fleet.idp);
    let victim = caller(
        fleet
            .idp
            .token()
            .scopes("Inference.Invoke")
            .groups([DATA_SCIENTISTS]),
    );
    let bystander = caller(
        fleet
            .idp
            .token()
            .scopes("Inference.Invoke")
            .groups([DATA_SCIENTISTS]),
    );
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, "/v1/me", &victim.token).await.0,
            200,
            "{}",
            r.id
        );
    }
    // Through each replica in turn, a new victim each time: every replica sees every
    // other replica's revocations.
    for (i, through) in fleet.replicas.iter().enumerate() {
        let victim = if i == 0 {
            victim.clone()
        } else {
            caller(
                fleet
                    .idp
                    .token()
                    .scopes("Inference.Invoke")
                    .groups([DATA_SCIENTISTS]),
            )
        };
        for r in &fleet.replicas {
            assert_eq!(
                get(&r.base, "/v1/me", &victim.token).await.0,
                200,
                "{}",
                r.id
            );
        }
        assert_eq!(
            revoke(&through.base, &admin, &victim.tenant, &victim.object).await,
            204
        );
        let revoked_at = Instant::now();
        for r in &fleet.replicas {
            wait_for(
                Duration::from_secs(10),
                &format!("revoked through {}, refused by {}", through.id, r.id),
                || async { get(&r.base, "/v1/me", &victim.token).await.0 == 401 },
            )
            .await;
            let elapsed = revoked_at.elapsed();
            assert!(
                elapsed < crate::replica::STREAMED,
                "revoked through {}, refused by {} only after {elapsed:?}",
                through.id,
                r.id
            );
        }
    }
    // Nobody else is refused.
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, "/v1/me", &bystander.token).await.0,
            200,
            "{}",
            r.id
        );
    }
    // Every replica lists the same three replicas and nothing pending.
    for r in &fleet.replicas {
        let status = crate::replica::fleet_status(&r.base, &admin).await;
        assert_eq!(status["mode"], "redis", "{status}");
        assert_eq!(status["replica_id"], r.id.as_str(), "{status}");
        assert_eq!(status["pending_revocations"], 0, "{status}");
        let ids: Vec<&str> = status["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["replica_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["r0-axum", "r1-actix", "r2-axum"], "{status}");
    }
}
