//! Checking in: every heartbeat a replica writes its policy version and the age of its
//! view, reads every replica's check-in (dropping long-silent ones), and looks for a
//! newly published policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::shared::{Attachment, Shared, describe, stopped};
use super::status::ReplicaStatus;
use crate::clock::unix_millis_now;

/// A replica that has not checked in for this many heartbeats is not listed.
const LIVE_HEARTBEATS: u32 = 3;
/// ... and after this many, its check-in is deleted.
const FORGET_HEARTBEATS: u32 = 30;

/// One check-in, as stored in the replicas hash.
#[derive(Serialize, Deserialize)]
struct CheckIn {
    policy_version: String,
    checked_in_ms: u64,
    view_age_ms: Option<u64>,
}

/// Checks in every heartbeat until the governor is gone.
pub(crate) async fn check_in(
    fleet: Arc<Shared>,
    attachment: Arc<Attachment>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let Some(mut con) = fleet.commands() else {
            return;
        };
        let beat = async {
            write_check_in(&fleet, &attachment, &mut con).await?;
            read_replicas(&fleet, &mut con).await?;
            super::policy::follow(&fleet, &attachment, &mut con).await
        };
        let result = tokio::select! {
            () = stopped(&mut stop) => break,
            result = beat => result,
        };
        match result {
            Ok(()) => fleet.set_connected(true),
            Err(e) => {
                fleet.set_connected(false);
                fleet.renew();
                tracing::debug!(error = %describe(&e), "fleet: check-in failed");
            }
        }
        tokio::select! {
            () = stopped(&mut stop) => break,
            () = tokio::time::sleep(fleet.settings.heartbeat) => {}
        }
    }
}

/// Deletes this replica's check-in (on graceful shutdown), so that the fleet stops
/// listing it at once.
pub(crate) async fn check_out(fleet: &Shared) {
    if let Some(mut con) = fleet.commands() {
        let deleted = redis::cmd("HDEL")
            .arg(fleet.settings.names.replicas())
            .arg(&fleet.settings.replica_id)
            .query_async::<()>(&mut con)
            .await;
        if let Err(e) = deleted {
            tracing::debug!(error = %describe(&e), "fleet: check-out failed");
        }
    }
}

async fn write_check_in(
    fleet: &Shared,
    attachment: &Attachment,
    con: &mut ConnectionManager,
) -> redis::RedisResult<()> {
    let check_in = CheckIn {
        policy_version: attachment.policy.load().version_hash().to_owned(),
        checked_in_ms: unix_millis_now(),
        view_age_ms: fleet
            .view_age()
            .map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
    };
    let json = serde_json::to_string(&check_in).unwrap_or_default();
    redis::cmd("HSET")
        .arg(fleet.settings.names.replicas())
        .arg(&fleet.settings.replica_id)
        .arg(json)
        .query_async(con)
        .await
}

async fn read_replicas(fleet: &Shared, con: &mut ConnectionManager) -> redis::RedisResult<()> {
    let key = fleet.settings.names.replicas();
    let all: HashMap<String, String> = redis::cmd("HGETALL").arg(&key).query_async(con).await?;
    let read_at = Instant::now();
    let now_ms = unix_millis_now();
    let heartbeat = fleet.settings.heartbeat;
    let mut live = Vec::new();
    let mut forgotten = Vec::new();
    for (id, json) in &all {
        let Ok(check_in) = serde_json::from_str::<CheckIn>(json) else {
            fleet.reject("replica check-in", &key);
            continue;
        };
        let ago = Duration::from_millis(now_ms.saturating_sub(check_in.checked_in_ms));
        if ago > heartbeat * FORGET_HEARTBEATS {
            forgotten.push(id.clone());
        } else if ago <= heartbeat * LIVE_HEARTBEATS {
            live.push(ReplicaStatus {
                replica_id: id.clone(),
                policy_version: check_in.policy_version,
                checked_in_ago: ago,
                view_age: check_in.view_age_ms.map(Duration::from_millis),
            });
        }
    }
    live.sort_by(|a, b| a.replica_id.cmp(&b.replica_id));
    {
        let mut view = fleet.replicas.lock().unwrap_or_else(|p| p.into_inner());
        view.replicas = live;
        view.read_at = Some(read_at);
    }
    if !forgotten.is_empty() {
        redis::cmd("HDEL")
            .arg(&key)
            .arg(&forgotten)
            .query_async::<()>(con)
            .await?;
    }
    Ok(())
}
