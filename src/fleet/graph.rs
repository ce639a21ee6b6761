//! Graph answers shared by the fleet: membership answers (sealed, keyed by the set of
//! groups asked about, with a TTL that never outlives the caller's token), a fleet-wide
//! single flight (a short lock per principal), and tenants held back by a 429.
//!
//! Every call here is bounded by [`SHARE_TIMEOUT`] and any failure is a miss: the
//! resolver then asks Graph itself, as a standalone one would.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use super::names::groups_digest;
use super::shared::Shared;
use crate::clock::unix_millis_now;
use crate::ids::{GroupId, PrincipalId, TenantId};

/// Longest wait for Redis on a Graph lookup's path: past it, the lookup goes on alone.
pub(crate) const SHARE_TIMEOUT: Duration = Duration::from_millis(250);
/// How often a replica waiting for another's Graph call looks for its answer.
const POLL: Duration = Duration::from_millis(20);
/// Longest hold read back (Graph's longest honoured `Retry-After`).
const MAX_HOLD: Duration = Duration::from_secs(300);

/// A membership answer as stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    members: Vec<GroupId>,
    valid_until_ms: u64,
}

/// A principal's answer found in the fleet.
pub(crate) struct Found {
    pub(crate) members: HashSet<GroupId>,
    /// How much longer it may be used.
    pub(crate) valid_for: Duration,
}

/// What a lookup found in the fleet.
pub(crate) enum Lookup {
    /// Another replica's answer.
    Found(Found),
    /// Nobody is asking: this replica holds the lock and asks Graph.
    Ask(Lock),
    /// Someone else is asking and did not answer in time, or Redis is unavailable: ask
    /// Graph without the fleet.
    Alone,
}

/// The fleet's lock on asking Graph about one principal; released by [`GraphShare::put`]
/// or [`GraphShare::release`].
pub(crate) struct Lock {
    key: String,
}

/// The resolver's handle on the fleet.
#[derive(Clone)]
pub(crate) struct GraphShare {
    fleet: Arc<Shared>,
}

impl super::Fleet {
    /// The handle a Graph resolver shares answers through.
    pub(crate) fn graph_share(&self) -> GraphShare {
        GraphShare {
            fleet: Arc::clone(&self.shared),
        }
    }
}

impl GraphShare {
    fn con(&self) -> Option<ConnectionManager> {
        self.fleet.commands()
    }

    /// How much longer another replica's 429 holds back `tenant`, if it does.
    pub(crate) async fn held(&self, tenant: &TenantId) -> Option<Duration> {
        let mut con = self.con()?;
        let key = self.fleet.settings.names.graph_hold(tenant);
        let until: Option<String> =
            bounded(redis::cmd("GET").arg(&key).query_async(&mut con)).await?;
        let Ok(until) = until?.parse::<u64>() else {
            self.fleet.reject("Graph hold", &key);
            return None;
        };
        let left = Duration::from_millis(until.saturating_sub(unix_millis_now()));
        (!left.is_zero()).then(|| left.min(MAX_HOLD))
    }

    /// Holds back every replica's Graph calls to `tenant` for `wait` (a shorter hold
    /// never cuts a longer one short).
    pub(crate) async fn hold(&self, tenant: &TenantId, wait: Duration) {
        let Some(mut con) = self.con() else { return };
        let wait = wait.min(MAX_HOLD);
        let ms = u64::try_from(wait.as_millis()).unwrap_or(1).max(1);
        let until = unix_millis_now().saturating_add(ms);
        let key = self.fleet.settings.names.graph_hold(tenant);
        let script = redis::Script::new(
            r"local cur = tonumber(redis.call('GET', KEYS[1])) or 0
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 0",
        );
        let mut invocation = script.key(&key);
        invocation.arg(until).arg(ms);
        let _ = bounded(invocation.invoke_async::<i64>(&mut con)).await;
    }

    /// The fleet's answer for `id` about `asked`, or the lock to ask Graph, or neither,
    /// waiting for another replica's call at most until `deadline`.
    pub(crate) async fn find_or_lock(
        &self,
        id: &PrincipalId,
        asked: &[GroupId],
        lock_for: Duration,
        deadline: tokio::time::Instant,
    ) -> Lookup {
        let Some(mut con) = self.con() else {
            return Lookup::Alone;
        };
        let groups = groups_digest(asked);
        let names = &self.fleet.settings.names;
        let (key, lock_key) = (
            names.membership(&groups, id),
            names.membership_lock(&groups, id),
        );
        let lock_ms = u64::try_from(lock_for.as_millis()).unwrap_or(5_000).max(1);
        // Waiting for another replica's call uses at most half the time left, so that a
        // replica that died holding the lock still leaves time to ask Graph here.
        let now = tokio::time::Instant::now();
        let wait_until = now + deadline.saturating_duration_since(now) / 2;
        loop {
            let Some(answer) = self.answer(&mut con, &key, asked).await else {
                return Lookup::Alone; // Redis slow or down
            };
            if let Some(found) = answer {
                return Lookup::Found(found);
            }
            let locked: Option<Option<String>> = bounded(
                redis::cmd("SET")
                    .arg(&lock_key)
                    .arg(&self.fleet.settings.replica_id)
                    .arg("NX")
                    .arg("PX")
                    .arg(lock_ms)
                    .query_async(&mut con),
            )
            .await;
            match locked {
                None => return Lookup::Alone,
                Some(Some(_)) => return self.recheck(&mut con, &key, asked, lock_key).await,
                Some(None) => {} // another replica is asking: wait for its answer
            }
            if tokio::time::Instant::now() + POLL >= wait_until {
                return Lookup::Alone;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// With the lock just taken: the answer, if the replica that held the lock before
    /// shared it between this replica's read and its lock (then the lock goes back);
    /// otherwise the lock, to ask Graph.
    async fn recheck(
        &self,
        con: &mut ConnectionManager,
        key: &str,
        asked: &[GroupId],
        lock_key: String,
    ) -> Lookup {
        let lock = Lock { key: lock_key };
        match self.answer(con, key, asked).await.flatten() {
            Some(found) => {
                self.release(lock).await;
                Lookup::Found(found)
            }
            None => Lookup::Ask(lock),
        }
    }

    /// The answer stored under `key`, if one verifies (`Some(None)`: none does);
    /// `None` when Redis did not answer in time.
    async fn answer(
        &self,
        con: &mut ConnectionManager,
        key: &str,
        asked: &[GroupId],
    ) -> Option<Option<Found>> {
        let stored: Option<String> = bounded(redis::cmd("GET").arg(key).query_async(con)).await?;
        Some(stored.and_then(|s| self.open(key, &s, asked)))
    }

    /// Shares this replica's answer for `valid_for`, and releases the lock.
    pub(crate) async fn put(
        &self,
        lock: Lock,
        id: &PrincipalId,
        asked: &[GroupId],
        members: &HashSet<GroupId>,
        valid_for: Duration,
    ) {
        let Some(mut con) = self.con() else { return };
        let ms = u64::try_from(valid_for.as_millis()).unwrap_or(0);
        if ms > 0 {
            let key = self
                .fleet
                .settings
                .names
                .membership(&groups_digest(asked), id);
            let mut members: Vec<GroupId> = members.iter().cloned().collect();
            members.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            let stored = Stored {
                members,
                valid_until_ms: unix_millis_now().saturating_add(ms),
            };
            let body = serde_json::to_string(&stored).unwrap_or_default();
            let sealed = self.fleet.key.seal(&key, &body);
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(sealed).arg("PX").arg(ms);
            let _ = bounded(set.query_async::<()>(&mut con)).await;
        }
        self.release(lock).await;
    }

    /// Releases the lock without an answer (the call failed): the next replica asks.
    pub(crate) async fn release(&self, lock: Lock) {
        let Some(mut con) = self.con() else { return };
        let mut del = redis::cmd("DEL");
        del.arg(&lock.key);
        let _ = bounded(del.query_async::<()>(&mut con)).await;
    }

    /// A stored answer, if it verifies, is about exactly these groups' members and is
    /// still valid.
    fn open(&self, key: &str, sealed: &str, asked: &[GroupId]) -> Option<Found> {
        let Some(body) = self.fleet.key.open(key, sealed) else {
            self.fleet.reject("Graph membership", key);
            return None;
        };
        let Ok(stored) = serde_json::from_str::<Stored>(body) else {
            self.fleet.reject("Graph membership", key);
            return None;
        };
        if !stored.members.iter().all(|g| asked.contains(g)) {
            self.fleet.reject("Graph membership", key);
            return None;
        }
        let left = Duration::from_millis(stored.valid_until_ms.saturating_sub(unix_millis_now()));
        (!left.is_zero()).then(|| Found {
            members: stored.members.into_iter().collect(),
            valid_for: left,
        })
    }
}

/// `command` within [`SHARE_TIMEOUT`]; `None` on a timeout or an error.
async fn bounded<T>(command: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
    match tokio::time::timeout(SHARE_TIMEOUT, command).await {
        Ok(Ok(value)) => Some(value),
        _ => None,
    }
}
