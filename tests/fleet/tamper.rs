//! Redis is not trusted to grant: a membership answer tampered with in Redis is ignored
//! (the replica asks Graph itself), and a forged published policy is not applied.

use std::time::Duration;

use crate::common::redis::Reply;
use crate::graph::{CURATED, overage_scientist};
use crate::replica::{
    DATA_SCIENTISTS, Fleet, ML_ENGINEERS, NAMESPACE, SERIAL, admin_token, caller, fleet_status,
    get, wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_answer_tampered_with_in_redis_is_refused_and_graph_asked_instead() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start("tamper-membership").await;
    let admin = admin_token(&fleet.idp);
    let scientist = overage_scientist(&fleet);
    let (r0, r1) = (&fleet.replicas[0], &fleet.replicas[1]);
    assert_eq!(get(&r0.base, CURATED, &scientist.token).await.0, 200);
    assert_eq!(fleet.idp.check_member_groups_requests(), 1);

    // The shared answer, sealed: `v1.{mac}.{body}`. Widen its body (the data scientist
    // becomes an ML engineer), keep the seal and the expiry.
    let pattern = format!(
        "{NAMESPACE}:graph:m:*:{}:{}",
        scientist.tenant, scientist.object
    );
    let keys: Vec<String> = fleet
        .redis
        .command(&["KEYS", &pattern])
        .unwrap()
        .items()
        .iter()
        .filter_map(Reply::text)
        .collect();
    assert_eq!(keys.len(), 1, "one shared answer for {pattern}: {keys:?}");
    let sealed = fleet
        .redis
        .command(&["GET", &keys[0]])
        .unwrap()
        .text()
        .unwrap();
    assert!(sealed.starts_with("v1."), "{sealed}");
    assert!(sealed.contains(DATA_SCIENTISTS), "{sealed}");
    let forged = sealed.replace(
        &format!("\"{DATA_SCIENTISTS}\""),
        &format!("\"{DATA_SCIENTISTS}\",\"{ML_ENGINEERS}\""),
    );
    assert_ne!(forged, sealed);
    assert_eq!(
        fleet.redis.command(&["SET", &keys[0], &forged, "KEEPTTL"]),
        Ok(Reply::Status("OK".into()))
    );

    // Another replica, which never saw this caller, reads the forged answer: it does not
    // verify, so the replica asks Graph itself and decides on the real membership.
    let rejected_before = fleet_status(&r1.base, &admin).await["rejected_entries"]
        .as_u64()
        .unwrap();
    let curated_write = "/v1/datasets/curated/chat-v2"; // GET: datasets.read, as before
    assert_eq!(get(&r1.base, curated_write, &scientist.token).await.0, 200);
    assert_eq!(
        fleet.idp.check_member_groups_requests(),
        2,
        "the tampered answer was used instead of asking Graph"
    );
    // What only ML engineers may (personal data, with c1 missing: a step-up, not a
    // grant) stays out of reach: the forged group was not taken.
    assert_eq!(
        get(&r1.base, "/v1/datasets/pii/patients", &scientist.token)
            .await
            .0,
        403
    );
    let status = fleet_status(&r1.base, &admin).await;
    assert!(
        status["rejected_entries"].as_u64().unwrap() > rejected_before,
        "the rejection is not counted: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_published_policy_is_not_applied_by_any_replica() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start("tamper-policy").await;
    let admin = admin_token(&fleet.idp);
    let scientist = caller(
        fleet
            .idp
            .token()
            .scopes("Inference.Invoke Training.Manage")
            .groups([DATA_SCIENTISTS]),
    );
    let before: Vec<String> = {
        let mut versions = Vec::new();
        for r in &fleet.replicas {
            let status = fleet_status(&r.base, &admin).await;
            assert_eq!(status["fleet_policy_rejected"], serde_json::Value::Null);
            versions.push(status["policy_version"].as_str().unwrap().to_owned());
        }
        versions
    };
    // A policy that makes everyone an admin, published by someone without the fleet key.
    let permissive = r#"version = 1
[actions]
custom = ["admin.revoke", "admin.read"]
[roles.everyone]
grants = [{ actions = ["*"], resources = ["**"] }]
[[bindings]]
name = "group:data-scientists"
group = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d"
roles = ["everyone"]
"#;
    let body = serde_json::json!({
        "version": "forged",
        "source": permissive,
        "published_ms": 0,
        "published_by": "attacker",
    });
    let forged = format!("v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.{body}");
    for (key, value) in [
        (format!("{NAMESPACE}:policy"), forged.as_str()),
        (format!("{NAMESPACE}:policy:hint"), "forged"),
    ] {
        assert_eq!(
            fleet.redis.command(&["SET", &key, value]),
            Ok(Reply::Status("OK".into()))
        );
    }
    for (r, version) in fleet.replicas.iter().zip(&before) {
        wait_for(
            Duration::from_secs(15),
            &format!("{} rejects", r.id),
            || async { fleet_status(&r.base, &admin).await["fleet_policy_rejected"].is_string() },
        )
        .await;
        let status = fleet_status(&r.base, &admin).await;
        assert_eq!(status["policy_version"], version.as_str(), "{status}");
        assert!(
            status["fleet_policy_rejected"]
                .as_str()
                .unwrap()
                .contains("does not verify"),
            "{status}"
        );
        // The forged grants are not in force.
        assert_eq!(
            get(&r.base, "/v1/admin/fleet", &scientist.token).await.0,
            403
        );
        assert_eq!(
            get(&r.base, "/v1/datasets/pii/patients", &scientist.token)
                .await
                .0,
            403
        );
    }
}
