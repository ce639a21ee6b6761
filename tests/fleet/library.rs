//! The library's fleet mode in one process: several governors (replicas) sharing one
//! real Redis, against the local Entra and Graph look-alike.

use std::time::{Duration, Instant, SystemTime};

use entra_governor::fleet::{Fleet, FleetKey, FleetMode};
use entra_governor::graph::{GraphGroupResolver, GroupResolutionError, GroupResolver};
use entra_governor::testing::{GraphMode, TestIdp};
use entra_governor::{Governor, GroupId, Principal, TokenError};

use crate::common;
use crate::common::redis::{RedisServer, Reply};
use crate::replica::STREAMED;

const KEY: &[u8; 32] = b"an example fleet key, 32 bytes!!";

fn key() -> FleetKey {
    FleetKey::from_bytes(KEY).unwrap()
}

/// The Redis URL of a user with exactly the permissions the README lists for the fleet.
fn least_privilege_url(redis: &RedisServer) -> String {
    let rules = "on >fleet-password resetkeys ~lib-test:* resetchannels -@all \
                 +ping +get +set +mset +del +hget +hset +hgetall +hdel \
                 +xadd +xread +xrevrange +evalsha +script|load";
    let mut args = vec!["ACL", "SETUSER", "eg-fleet"];
    args.extend(rules.split_whitespace());
    assert_eq!(redis.command(&args), Ok(Reply::Status("OK".into())));
    format!("redis://eg-fleet:fleet-password@127.0.0.1:{}", redis.port())
}

/// A replica's fleet as the least-privileged Redis user.
fn fleet(redis: &RedisServer, replica: &str) -> Fleet {
    fleet_at(&least_privilege_url(redis), replica)
}

fn fleet_at(url: &str, replica: &str) -> Fleet {
    Fleet::builder(url, key())
        .namespace("lib-test")
        .replica_id(replica)
        .heartbeat_interval(Duration::from_millis(200))
        .resync_interval(Duration::from_secs(2))
        .build()
        .unwrap()
}

fn replica(idp: &TestIdp, fleet: Fleet) -> Governor {
    common::builder(idp).fleet(fleet).build().unwrap()
}

/// Polls `check` every 10 ms until it holds, for at most `within`.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check().await
}

async fn caught_up(governors: &[&Governor]) {
    for g in governors {
        assert!(
            eventually(Duration::from_secs(5), async || g
                .fleet_status()
                .view_age
                .is_some())
            .await,
            "{} never caught up",
            g.fleet_status().replica_id
        );
    }
}

fn is_revoked(result: &Result<Principal, TokenError>) -> bool {
    matches!(result, Err(TokenError::Revoked { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_is_enforced_by_every_replica() {
    // Alone with the process tests: its bound is 1 s.
    let _serial = crate::replica::SERIAL.lock().await;
    let redis = RedisServer::start();
    let idp = TestIdp::start().await;
    let (a, b, c) = (
        replica(&idp, fleet(&redis, "a")),
        replica(&idp, fleet(&redis, "b")),
        replica(&idp, fleet(&redis, "c")),
    );
    caught_up(&[&a, &b, &c]).await;
    let token = idp.token().scopes("Inference.Invoke").sign();
    let caller = b.verify(&token).await.unwrap();
    a.revoke(caller.id(), SystemTime::now() + Duration::from_secs(1))
        .unwrap();
    assert!(
        is_revoked(&a.verify(&token).await),
        "at once where it was made"
    );
    for g in [&b, &c] {
        assert!(
            eventually(STREAMED, async || is_revoked(&g.verify(&token).await)).await,
            "{} still accepts the revoked token after {STREAMED:?}",
            g.fleet_status().replica_id
        );
    }
    assert_eq!(a.fleet_status().pending_revocations, 0);
    assert_eq!(
        redis.command(&["HLEN", "lib-test:revocations"]),
        Ok(Reply::Integer(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_survive_an_outage_and_a_replaced_redis() {
    let mut redis = RedisServer::start();
    let idp = TestIdp::start().await;
    // The default user: the restarted server knows no other.
    let (a, b) = (
        replica(&idp, fleet_at(&redis.url(), "a")),
        replica(&idp, fleet_at(&redis.url(), "b")),
    );
    caught_up(&[&a, &b]).await;
    let (early, during) = (
        idp.token().scopes("Inference.Invoke").sign(),
        idp.token().scopes("Inference.Invoke").sign(),
    );
    let soon = SystemTime::now() + Duration::from_secs(1);
    a.revoke(a.verify(&early).await.unwrap().id(), soon)
        .unwrap();
    assert!(eventually(STREAMED, async || is_revoked(&b.verify(&early).await)).await);

    redis.kill();
    let victim = a.verify(&during).await.unwrap();
    a.revoke(victim.id(), soon).unwrap();
    assert!(
        is_revoked(&a.verify(&during).await),
        "enforced locally at once"
    );
    assert!(b.verify(&during).await.is_ok(), "b cannot know yet");
    assert!(
        eventually(Duration::from_secs(15), async || !a
            .fleet_status()
            .connected)
        .await,
        "a never noticed that Redis is gone"
    );
    assert_eq!(a.fleet_status().pending_revocations, 1);

    // A new, empty Redis: the revocation made meanwhile is delivered, and the earlier one,
    // which the new Redis never had, is written back from the mirrors.
    redis.restart();
    assert!(
        eventually(Duration::from_secs(10), async || is_revoked(
            &b.verify(&during).await
        ))
        .await,
        "the revocation made during the outage never reached b"
    );
    assert!(
        is_revoked(&b.verify(&early).await),
        "a replaced Redis lifted a revocation"
    );
    assert!(
        eventually(Duration::from_secs(5), async || {
            redis.command(&["HLEN", "lib-test:revocations"]) == Ok(Reply::Integer(2))
        })
        .await,
        "the mirrors did not write the lost revocation back"
    );
    assert_eq!(a.fleet_status().pending_revocations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_while_the_view_is_stale_and_recovers() {
    let mut redis = RedisServer::start();
    let idp = TestIdp::start().await;
    let strict = Fleet::builder(least_privilege_url(&redis), key())
        .namespace("lib-test")
        .replica_id("strict")
        .strict(Duration::from_secs(2))
        .build()
        .unwrap();
    let g = replica(&idp, strict);
    let token = idp.token().scopes("Inference.Invoke").sign();
    caught_up(&[&g]).await;
    assert!(g.verify(&token).await.is_ok());
    redis.pause();
    let stale = eventually(Duration::from_secs(6), async || {
        matches!(
            g.verify(&token).await,
            Err(TokenError::RevocationViewStale { bound_secs: 2, .. })
        )
    });
    assert!(stale.await, "strict mode kept accepting with a stale view");
    let status = g.fleet_status();
    assert!(
        status.view_age.unwrap() > Duration::from_secs(2),
        "{status:?}"
    );
    redis.resume();
    assert!(
        eventually(Duration::from_secs(6), async || g
            .verify(&token)
            .await
            .is_ok())
        .await,
        "strict mode did not recover after Redis returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_policy_reaches_every_replica_and_a_tampered_one_none() {
    let redis = RedisServer::start();
    let idp = TestIdp::start().await;
    let (a, b) = (
        replica(&idp, fleet(&redis, "a")),
        replica(&idp, fleet(&redis, "b")),
    );
    let policy = r#"version = 1
[roles.user]
grants = [{ actions = ["inference.invoke"], resources = ["endpoints/*"] }]
[[bindings]]
name = "everyone-in-tenant"
tenant = "TENANT"
roles = ["user"]
[scopes]
"Inference.Invoke" = ["inference.*"]
"#
    .replace("TENANT", idp.tenant_id().as_str());
    let token = idp.token().scopes("Inference.Invoke").sign();
    assert!(
        !b.authorize(&token, "inference.invoke", "endpoints/chat")
            .await
            .unwrap()
            .is_allowed()
    );

    // Invalid: refused before anything is published.
    assert!(matches!(
        a.publish_policy("version = 1\n[roles.x]\ngrants = 7").await,
        Err(entra_governor::fleet::FleetError::InvalidPolicy { .. })
    ));
    let version = a.publish_policy(&policy).await.unwrap();
    assert_eq!(a.policy_version(), version);
    assert!(
        eventually(Duration::from_secs(15), async || b.policy_version()
            == version)
        .await,
        "b never applied the published policy"
    );
    assert!(
        b.authorize(&token, "inference.invoke", "endpoints/chat")
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        eventually(Duration::from_secs(15), async || {
            let s = a.fleet_status();
            s.replicas.len() == 2 && s.policy_converged()
        })
        .await,
        "{:?}",
        a.fleet_status()
    );
    let status = b.fleet_status();
    assert_eq!(status.mode, FleetMode::Redis);
    assert_eq!(
        status.fleet_policy_version.as_deref(),
        Some(version.as_str())
    );
    let ids: Vec<&str> = status
        .replicas
        .iter()
        .map(|r| r.replica_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);

    // Someone with write access to Redis widens the policy: not sealed with the key.
    let doc = redis
        .command(&["GET", "lib-test:policy"])
        .unwrap()
        .text()
        .unwrap();
    let widened = doc.replace("endpoints/*", "**");
    redis
        .command(&["SET", "lib-test:policy", &widened])
        .unwrap();
    redis
        .command(&["SET", "lib-test:policy:hint", "forged"])
        .unwrap();
    let rejected_before = b.fleet_status().rejected_entries;
    assert!(
        eventually(Duration::from_secs(15), async || b
            .fleet_status()
            .fleet_policy_rejected
            .is_some())
        .await,
        "the tampered policy was not reported"
    );
    let status = b.fleet_status();
    assert_eq!(
        status.fleet_policy_rejected.as_deref(),
        Some("it does not verify with the fleet key")
    );
    assert!(status.rejected_entries > rejected_before);
    assert_eq!(b.policy_version(), version, "the good policy keeps serving");
    assert!(
        !b.authorize(&token, "datasets.read", "datasets/pii/x")
            .await
            .unwrap()
            .is_allowed()
    );
}

fn resolver(idp: &TestIdp, fleet: &Fleet) -> GraphGroupResolver {
    crate::common::graph_resolver(idp)
        .fleet(fleet)
        .build()
        .unwrap()
}

fn group(n: u8) -> GroupId {
    GroupId::parse(&format!("0b3e3f0c-5b8a-4c4e-9c1d-2f6a7e8d9c{n:02x}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_resolving_one_caller_make_one_graph_call_and_ignore_forged_answers() {
    let redis = RedisServer::start();
    let idp = TestIdp::start().await;
    let fleets: Vec<Fleet> = (0..3).map(|n| fleet(&redis, &format!("r{n}"))).collect();
    let resolvers: Vec<GraphGroupResolver> = fleets.iter().map(|f| resolver(&idp, f)).collect();
    let g = common::builder(&idp).build().unwrap();
    let principal = g.verify(&idp.token().overage().sign()).await.unwrap();
    idp.set_memberships(principal.object_id(), vec![group(1)]);
    let candidates = [group(1), group(2)];

    // Concurrently: one Graph call for the fleet, the same answer everywhere.
    let answers = resolve_concurrently(&resolvers, &principal, &candidates).await;
    for answer in answers {
        assert_eq!(answer, Ok(vec![group(1)]));
    }
    assert_eq!(idp.check_member_groups_requests(), 1);
    // A fourth replica, later: still no call.
    let late = resolver(&idp, &fleet(&redis, "late"));
    assert_eq!(
        late.resolve(&principal, &candidates).await,
        Ok(vec![group(1)])
    );
    assert_eq!(idp.check_member_groups_requests(), 1);
    assert_eq!(late.graph_calls(), 0);

    // Another set of groups (another policy) never reads that answer.
    let other = resolver(&idp, &fleet(&redis, "other-policy"));
    assert_eq!(
        other.resolve(&principal, &[group(1), group(3)]).await,
        Ok(vec![group(1)])
    );
    assert_eq!(idp.check_member_groups_requests(), 2);

    // A forged answer (member of group 2) written into Redis is refused: the replica
    // asks Graph, which says group 1 only.
    let keys: Vec<String> = redis
        .command(&["KEYS", "lib-test:graph:m:*"])
        .unwrap()
        .items()
        .iter()
        .filter_map(|i| i.text())
        .collect();
    assert_eq!(keys.len(), 2, "one answer per set of groups asked about");
    for key in &keys {
        let sealed = redis.command(&["GET", key]).unwrap().text().unwrap();
        let forged = sealed.replace(
            &format!("[\"{}\"]", group(1)),
            &format!("[\"{}\",\"{}\"]", group(1), group(2)),
        );
        assert_ne!(forged, sealed, "the entry names its members");
        redis.command(&["SET", key, &forged]).unwrap();
    }
    let fresh_fleet = fleet(&redis, "fresh");
    let fresh = resolver(&idp, &fresh_fleet);
    assert_eq!(
        fresh.resolve(&principal, &candidates).await,
        Ok(vec![group(1)])
    );
    assert_eq!(
        idp.check_member_groups_requests(),
        3,
        "the forged answer was used"
    );
    let probe = replica(&idp, fresh_fleet);
    assert!(probe.fleet_status().rejected_entries >= 1);
}

async fn resolve_concurrently(
    resolvers: &[GraphGroupResolver],
    principal: &Principal,
    candidates: &[GroupId],
) -> Vec<Result<Vec<GroupId>, GroupResolutionError>> {
    let mut tasks = Vec::new();
    for r in resolvers {
        let (r, p, c) = (r.clone(), principal.clone(), candidates.to_vec());
        tasks.push(tokio::spawn(async move { r.resolve(&p, &c).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_replica_holds_back_the_others() {
    let redis = RedisServer::start();
    let idp = TestIdp::start().await;
    let (fa, fb) = (fleet(&redis, "a"), fleet(&redis, "b"));
    let (a, b) = (resolver(&idp, &fa), resolver(&idp, &fb));
    let g = common::builder(&idp).build().unwrap();
    let first = g.verify(&idp.token().overage().sign()).await.unwrap();
    let second = g.verify(&idp.token().overage().sign()).await.unwrap();
    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 30,
        times: 1,
    });
    let throttled = a.resolve(&first, &[group(1)]).await;
    assert!(
        matches!(throttled, Err(GroupResolutionError::Throttled { .. })),
        "{throttled:?}"
    );
    let calls = idp.check_member_groups_requests();
    // Another replica, another caller of the same tenant: held back without a call.
    match b.resolve(&second, &[group(1)]).await {
        Err(GroupResolutionError::Throttled { retry_after_secs }) => {
            assert!((25..=30).contains(&retry_after_secs), "{retry_after_secs}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(idp.check_member_groups_requests(), calls);
    assert_eq!(b.graph_calls(), 0);
}

/// A Redis answering TLS on `localhost` with a certificate of a CA made for the test;
/// returns the server (its plain port for the harness) and the CA's PEM.
fn tls_redis() -> (RedisServer, String, u16) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let dir = common::TempDir::new("tls");
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let (cert, key, ca_file) = (
        write("server.pem", server.pem()),
        write("server.key", server_key.serialize_pem()),
        write("ca.pem", ca.pem()),
    );
    let tls_port = common::redis::free_port();
    let args = [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca_file,
        "--tls-auth-clients",
        "no",
    ];
    let redis = RedisServer::start_with_args(args.iter().map(|a| a.to_string()).collect());
    // Read when the server started; a restart would need them again, this test does none.
    drop(dir);
    (redis, ca.pem(), tls_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_revocations_over_tls() {
    // Alone with the process tests: its bound is 1 s.
    let _serial = crate::replica::SERIAL.lock().await;
    let (redis, ca, port) = tls_redis();
    let idp = TestIdp::start().await;
    let url = format!("rediss://localhost:{port}");
    let tls = |replica: &str, roots: Option<&str>| {
        let b = Fleet::builder(&url, key())
            .namespace("lib-tls")
            .replica_id(replica);
        let b = match roots {
            Some(pem) => b.redis_root_certificates(pem.as_bytes()),
            None => b,
        };
        b.build().unwrap()
    };
    let (a, b) = (
        replica(&idp, tls("a", Some(&ca))),
        replica(&idp, tls("b", Some(&ca))),
    );
    caught_up(&[&a, &b]).await;
    let token = idp.token().scopes("Inference.Invoke").sign();
    let caller = a.verify(&token).await.unwrap();
    a.revoke(caller.id(), SystemTime::now() + Duration::from_secs(1))
        .unwrap();
    assert!(
        eventually(STREAMED, async || is_revoked(&b.verify(&token).await)).await,
        "the revocation did not cross TLS"
    );
    assert_eq!(
        redis.command(&["HLEN", "lib-tls:revocations"]),
        Ok(Reply::Integer(1)),
        "written through the TLS port"
    );
    // Without the test CA, the server's certificate is not trusted: never connected.
    let untrusting = replica(&idp, tls("c", None));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = untrusting.fleet_status();
    assert!(!status.connected && status.view_age.is_none(), "{status:?}");
}

#[test]
fn fleet_mode_needs_a_runtime_and_one_governor_per_fleet() {
    let redis = RedisServer::start();
    let build = |fleet: Fleet| {
        Governor::builder()
            .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
            .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
            .fleet(fleet)
            .build()
    };
    let shared = fleet_at(&redis.url(), "one");
    assert_eq!(
        build(shared.clone()).unwrap_err(),
        entra_governor::ConfigError::FleetNeedsRuntime
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let first = build(shared.clone()).expect("the first governor attaches");
    assert_eq!(
        build(shared).unwrap_err(),
        entra_governor::ConfigError::FleetInUse
    );
    assert_eq!(first.fleet_status().replica_id, "one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_reconnect_once_a_restarted_redis_knows_their_user_again() {
    let mut redis = RedisServer::start();
    let url = least_privilege_url(&redis);
    let idp = TestIdp::start().await;
    let (a, b) = (
        replica(&idp, fleet_at(&url, "a")),
        replica(&idp, fleet_at(&url, "b")),
    );
    caught_up(&[&a, &b]).await;
    let token = idp.token().scopes("Inference.Invoke").sign();
    redis.kill();
    a.revoke(a.verify(&token).await.unwrap().id(), SystemTime::now())
        .unwrap();
    // The new Redis refuses the replicas' logins for a while (no such user yet).
    redis.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!b.fleet_status().connected);
    least_privilege_url(&redis);
    assert!(
        eventually(Duration::from_secs(10), async || is_revoked(
            &b.verify(&token).await
        ))
        .await,
        "the replicas never logged in again: {:?}",
        b.fleet_status()
    );
    assert!(eventually(Duration::from_secs(15), async || a.fleet_status().connected).await);
}

/// The fleet gauges `Governor::record_gauges` sets, read through a debugging recorder.
#[cfg(feature = "metrics")]
fn fleet_gauges(g: &Governor) -> (f64, f64) {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || g.record_gauges());
    let gauge = |name: &str| {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find_map(|(key, _, _, value)| match value {
                DebugValue::Gauge(v) if key.key().name() == name => Some(v.into_inner()),
                _ => None,
            })
            .unwrap_or(f64::NAN)
    };
    let connected = gauge(entra_governor::observe::FLEET_CONNECTED);
    metrics::with_local_recorder(&recorder, || g.record_gauges());
    (
        connected,
        gauge(entra_governor::observe::FLEET_VIEW_AGE_SECONDS),
    )
}

#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_gauges_show_the_connection_and_the_views_age() {
    let mut redis = RedisServer::start();
    let idp = TestIdp::start().await;
    let a = replica(&idp, fleet(&redis, "a"));
    caught_up(&[&a]).await;
    let (connected, age) = fleet_gauges(&a);
    assert_eq!(connected, 1.0);
    let status_age = a.fleet_status().view_age.unwrap().as_secs_f64();
    assert!(
        (0.0..=status_age + 1.0).contains(&age),
        "{age} vs {status_age}"
    );
    redis.kill();
    assert!(
        eventually(Duration::from_secs(10), async || fleet_gauges(&a).0 == 0.0).await,
        "still connected after Redis went away"
    );
    // With Redis gone nothing confirms the view: it only grows older.
    let (_, gone) = fleet_gauges(&a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, later) = fleet_gauges(&a);
    assert!(later >= gone + 0.25, "{later} vs {gone}");
}
