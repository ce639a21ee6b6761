//! Redis paused (SIGSTOP) and killed mid-run: decisions continue on every replica from
//! local state, and revocations made meanwhile reach every replica when Redis returns.

use std::time::Duration;

use crate::common::redis::Reply;
use crate::replica::{
    Caller, DATA_SCIENTISTS, Fleet, NAMESPACE, Replica, SERIAL, admin_token, caller, get, revoke,
    wait_for,
};

fn scientist(fleet: &Fleet) -> Caller {
    caller(
        fleet
            .idp
            .token()
            .scopes("Inference.Invoke")
            .groups([DATA_SCIENTISTS]),
    )
}

/// How long a replica may take to reconnect and catch up after Redis returns.
const RECOVERY: Duration = Duration::from_secs(20);

async fn refused_everywhere(fleet: &Fleet, who: &Caller, what: &str) {
    for r in &fleet.replicas {
        wait_for(
            RECOVERY,
            &format!("{what}: refused by {}", r.id),
            || async { get(&r.base, "/v1/me", &who.token).await.0 == 401 },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_paused_decisions_continue_and_revocations_arrive_after_resume() {
    let _serial = SERIAL.lock().await;
    let mut fleet = Fleet::start("pause").await;
    let admin = admin_token(&fleet.idp);
    let (known, victim) = (scientist(&fleet), scientist(&fleet));
    for r in &fleet.replicas {
        assert_eq!(get(&r.base, "/v1/me", &known.token).await.0, 200);
        assert_eq!(get(&r.base, "/v1/me", &victim.token).await.0, 200);
    }

    fleet.redis.pause();
    // Decisions continue: a known token, a token never seen before, the admin routes.
    let fresh = scientist(&fleet);
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, "/v1/me", &known.token).await.0,
            200,
            "{}",
            r.id
        );
        assert_eq!(
            get(&r.base, "/v1/me", &fresh.token).await.0,
            200,
            "{}",
            r.id
        );
    }
    // A revocation made meanwhile is enforced at once where it was made ...
    let (r0, others) = fleet.replicas.split_first().unwrap();
    assert_eq!(
        revoke(&r0.base, &admin, &victim.tenant, &victim.object).await,
        204
    );
    assert_eq!(get(&r0.base, "/v1/me", &victim.token).await.0, 401);
    let status = crate::replica::fleet_status(&r0.base, &admin).await;
    assert_eq!(status["pending_revocations"], 1, "{status}");
    // ... and nowhere else while Redis is away (nothing else carries it).
    for r in others {
        assert_eq!(
            get(&r.base, "/v1/me", &victim.token).await.0,
            200,
            "{}",
            r.id
        );
    }

    fleet.redis.resume();
    refused_everywhere(&fleet, &victim, "revoked while Redis was paused").await;
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, "/v1/me", &known.token).await.0,
            200,
            "{}",
            r.id
        );
    }
    wait_for(RECOVERY, "the pending revocation acknowledged", || async {
        crate::replica::fleet_status(&r0.base, &admin).await["pending_revocations"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_emptied_redis_lifts_no_revocation_and_loses_none_made_meanwhile() {
    let _serial = SERIAL.lock().await;
    let mut fleet = Fleet::start("kill").await;
    let admin = admin_token(&fleet.idp);
    let (before, during, known) = (scientist(&fleet), scientist(&fleet), scientist(&fleet));
    for r in &fleet.replicas {
        assert_eq!(get(&r.base, "/v1/me", &during.token).await.0, 200);
        assert_eq!(get(&r.base, "/v1/me", &known.token).await.0, 200);
    }
    assert_eq!(
        revoke(
            &fleet.replicas[0].base,
            &admin,
            &before.tenant,
            &before.object
        )
        .await,
        204
    );
    refused_everywhere(&fleet, &before, "revoked before the outage").await;
    // A key of the test's own: its absence later shows the new server starts empty, which
    // DBSIZE cannot (the replicas write their revocations as soon as they reconnect).
    assert_eq!(
        fleet.redis.command(&["SET", "test:before-the-outage", "1"]),
        Ok(Reply::Status("OK".into()))
    );

    fleet.redis.kill();
    // Decisions continue; a revocation made during the outage is enforced where made.
    let r1 = &fleet.replicas[1];
    assert_eq!(
        revoke(&r1.base, &admin, &during.tenant, &during.object).await,
        204
    );
    assert_eq!(get(&r1.base, "/v1/me", &during.token).await.0, 401);
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, "/v1/me", &known.token).await.0,
            200,
            "{}",
            r.id
        );
        assert_eq!(
            get(&r.base, "/v1/me", &before.token).await.0,
            401,
            "{}",
            r.id
        );
    }

    // A new, empty Redis on the same port: nothing lifts the earlier revocation, and the
    // one made during the outage reaches every replica.
    crate::replica::restart_with_user(&mut fleet.redis);
    assert_eq!(
        fleet.redis.command(&["EXISTS", "test:before-the-outage"]),
        Ok(Reply::Integer(0))
    );
    // The replacement is configured as the old one was: the replicas' ACL user.
    crate::replica::least_privilege_url(&fleet.redis);
    refused_everywhere(&fleet, &during, "revoked during the outage").await;
    for r in &fleet.replicas {
        assert_eq!(
            get(&r.base, "/v1/me", &before.token).await.0,
            401,
            "{}",
            r.id
        );
        assert_eq!(
            get(&r.base, "/v1/me", &known.token).await.0,
            200,
            "{}",
            r.id
        );
    }
    // The replicas wrote back what the new Redis had lost: both revocations.
    let key = format!("{NAMESPACE}:revocations");
    wait_for(RECOVERY, "both revocations written back", || async {
        let fields = fleet
            .redis
            .command(&["HKEYS", &key])
            .unwrap_or(Reply::Array(None));
        let fields: Vec<String> = fields.items().iter().filter_map(Reply::text).collect();
        [&before, &during]
            .iter()
            .all(|c| fields.contains(&format!("p:{}:{}", c.tenant, c.object)))
    })
    .await;
    fleet.wait_until_current().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_replica_refuses_with_503_while_its_view_is_stale_and_recovers() {
    let _serial = SERIAL.lock().await;
    let idp = crate::common::example_idp().await;
    let mut redis = crate::common::redis::RedisServer::start();
    let dir = crate::replica::temp_dir("strict");
    let strict = Replica::start_with(
        "actix_platform",
        "strict",
        &dir,
        &idp,
        &redis,
        "strict_max_staleness_secs = 2",
    );
    let lenient = Replica::start("ai_platform", "lenient", &dir, &idp, &redis);
    let admin = admin_token(&idp);
    let known = caller(
        idp.token()
            .scopes("Inference.Invoke")
            .groups([DATA_SCIENTISTS]),
    );
    for r in [&strict, &lenient] {
        wait_for(RECOVERY, &format!("{} answers", r.id), || async {
            get(&r.base, "/v1/me", &known.token).await.0 == 200
        })
        .await;
    }
    let status = crate::replica::fleet_status(&strict.base, &admin).await;
    assert_eq!(status["strict_bound_ms"], 2000, "{status}");

    redis.pause();
    wait_for(RECOVERY, "the strict replica refuses", || async {
        get(&strict.base, "/v1/me", &known.token).await.0 == 503
    })
    .await;
    let (status, retry_after) = get(&strict.base, "/v1/me", &known.token).await;
    assert_eq!(status, 503);
    assert!(retry_after.is_some(), "503 without Retry-After");
    // The lenient replica keeps deciding from its local view.
    assert_eq!(get(&lenient.base, "/v1/me", &known.token).await.0, 200);

    redis.resume();
    wait_for(RECOVERY, "the strict replica answers again", || async {
        get(&strict.base, "/v1/me", &known.token).await.0 == 200
    })
    .await;
    drop((strict, lenient));
}
