//! Fleet mode: how fast a revocation reaches the other replicas, and what fleet mode
//! costs `authorize()` on its hot path.
//!
//! Run: `cargo bench --bench fleet --features redis` (needs `redis-server` installed:
//! the bench starts its own on a free loopback port).
//!
//! - `propagation`: 1,000 revocations, each made on one of three replicas (in turn);
//!   the time until each of the two others enforces it (its mirror holds it), measured
//!   from just before `revoke()` returns. Printed as p50 / p99 / max.
//! - `authorize_known/standalone`, `/fleet`, `/fleet_strict`: `authorize()` of a token
//!   seen before, with fleet mode off, on, and on in strict mode, in the same run.

mod common;

#[path = "../tests/common/redis.rs"]
#[allow(dead_code)]
mod redis_server;

use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use entra_governor::fleet::{Fleet, FleetKey};
use entra_governor::testing::TestIdp;
use entra_governor::{Cloud, Governor, GovernorBuilder, ObjectId, Policy, PrincipalId};

use common::{ready, token};
use redis_server::RedisServer;

const REVOCATIONS: usize = 1_000;

fn builder(idp: &TestIdp) -> GovernorBuilder {
    let policy = Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml"))
        .expect("example policy");
    Governor::builder()
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback()
        .key_refresh_interval(None)
        .max_revocations(10 * REVOCATIONS)
        .policy(policy)
}

/// A replica of the fleet `namespace`.
fn fleet(redis: &RedisServer, namespace: &str, replica: &str, strict: bool) -> Fleet {
    let key = FleetKey::from_bytes(&[7; 32]).expect("key");
    let b = Fleet::builder(redis.url(), key)
        .namespace(namespace)
        .replica_id(replica);
    let b = if strict {
        b.strict(Duration::from_secs(5))
    } else {
        b
    };
    b.build().expect("fleet")
}

/// Waits until every replica has caught up with the fleet.
fn caught_up(replicas: &[&Governor]) {
    let until = Instant::now() + Duration::from_secs(10);
    while replicas.iter().any(|g| g.fleet_status().view_age.is_none()) {
        assert!(
            Instant::now() < until,
            "a replica never caught up with Redis"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn propagation(rt: &tokio::runtime::Runtime, idp: &TestIdp, redis: &RedisServer) {
    let replicas: Vec<Governor> = ["a", "b", "c"]
        .iter()
        .map(|r| {
            let _guard = rt.enter();
            let fleet = fleet(redis, "bench-propagation", r, false);
            builder(idp).fleet(fleet).build().expect("replica")
        })
        .collect();
    caught_up(&replicas.iter().collect::<Vec<_>>());
    let mut samples = Vec::with_capacity(2 * REVOCATIONS);
    for n in 0..REVOCATIONS {
        let origin = &replicas[n % 3];
        let others: Vec<&Governor> = (1..3).map(|k| &replicas[(n + k) % 3]).collect();
        let oid = ObjectId::parse(&format!("00000000-0000-4000-8000-{n:012x}")).expect("oid");
        let id = PrincipalId::new(idp.tenant_id(), oid);
        let started = Instant::now();
        origin.revoke(&id, SystemTime::now()).expect("revoked");
        let mut pending: Vec<&Governor> = others;
        let deadline = started + Duration::from_secs(10);
        while !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "revocation {n} did not propagate in 10 s"
            );
            pending.retain(|g| {
                if g.revocation_count() > n {
                    samples.push(started.elapsed());
                    false
                } else {
                    true
                }
            });
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    samples.sort();
    eprintln!(
        "propagation over {} revocations x 2 replicas: p50 {:?}, p99 {:?}, max {:?}",
        REVOCATIONS,
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

fn hot_path(c: &mut Criterion, rt: &tokio::runtime::Runtime, idp: &TestIdp, redis: &RedisServer) {
    let (standalone, in_fleet, strict) = {
        let _guard = rt.enter();
        (
            builder(idp).build().expect("standalone"),
            builder(idp)
                .fleet(fleet(redis, "bench-hot", "hot", false))
                .build()
                .expect("fleet"),
            builder(idp)
                .fleet(fleet(redis, "bench-hot-strict", "hot-strict", true))
                .build()
                .expect("strict"),
        )
    };
    caught_up(&[&in_fleet, &strict]);
    let sample = token(idp, 0);
    for g in [&standalone, &in_fleet, &strict] {
        let d = rt.block_on(g.authorize(&sample, "training.submit", "models/exp-1"));
        assert!(d.expect("valid").is_allowed(), "keys fetched, token cached");
    }
    let mut group = c.benchmark_group("authorize_known");
    for (name, g) in [
        ("standalone", &standalone),
        ("fleet", &in_fleet),
        ("fleet_strict", &strict),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| ready(g.authorize(&sample, "training.submit", "models/exp-1")))
        });
    }
    group.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let redis = RedisServer::start();
    let idp = rt.block_on(TestIdp::start());
    propagation(&rt, &idp, &redis);
    let mut c = Criterion::default().configure_from_args();
    hot_path(&mut c, &rt, &idp, &redis);
    c.final_summary();
}
