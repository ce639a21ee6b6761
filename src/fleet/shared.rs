//! The state one replica keeps about the fleet (connections, the age of its view, the
//! replicas it last read, revocations not yet delivered), and the start of the
//! background tasks that keep it current.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{Notify, watch};

use super::config::{REVOCATION_BLOCK, Settings};
use super::key::FleetKey;
use super::status::{FleetMode, FleetStatus, ReplicaStatus};
use crate::error::{ConfigError, TokenError};
use crate::policy::CompiledPolicy;
use crate::revocation::{Revocations, Subject};

/// Checks a policy document published to the fleet the way the governor checks a
/// reload: parsed, compiled and trusted for its tenants, or why not.
pub(crate) type AcceptPolicy =
    Box<dyn Fn(&str) -> Result<Arc<CompiledPolicy>, String> + Send + Sync>;

/// What a governor hands to its fleet: the state the fleet keeps current.
pub(crate) struct Attachment {
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) policy: Arc<ArcSwap<CompiledPolicy>>,
    pub(crate) accept_policy: AcceptPolicy,
}

/// A governor's end of its fleet: dropping it stops the background tasks.
pub(crate) struct Attached {
    pub(crate) fleet: Arc<Shared>,
    pub(crate) attachment: Arc<Attachment>,
    _stop: watch::Sender<()>,
}

/// One replica's fleet state, shared by its tasks and its request path.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) key: FleetKey,
    client: redis::Client,
    /// The shared command connection; replaced after a failure (see [`Self::renew`]).
    commands: Mutex<Option<ConnectionManager>>,
    epoch: Instant,
    /// Milliseconds after `epoch` (plus one) as of which the revocation view was
    /// complete; 0 before the first catch-up.
    view_current_at: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) rejected: AtomicU64,
    attached: AtomicBool,
    /// Revocations made here that Redis has not acknowledged, by subject.
    pub(crate) outbox: Mutex<HashMap<Subject, u64>>,
    pub(crate) outbox_ready: Notify,
    pub(crate) replicas: Mutex<ReplicasView>,
    pub(crate) policy_follow: Mutex<PolicyFollow>,
}

/// The replicas as last read from Redis.
#[derive(Default)]
pub(crate) struct ReplicasView {
    pub(crate) replicas: Vec<ReplicaStatus>,
    pub(crate) read_at: Option<Instant>,
}

/// What this replica knows of the published policy.
#[derive(Default)]
pub(crate) struct PolicyFollow {
    /// The sealed document last looked at (applied or rejected): not looked at again.
    pub(crate) last_seen: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) rejected: Option<String>,
}

impl Shared {
    pub(crate) fn new(settings: Settings, key: FleetKey, client: redis::Client) -> Self {
        Self {
            settings,
            key,
            client,
            commands: Mutex::new(None),
            epoch: Instant::now(),
            view_current_at: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            rejected: AtomicU64::new(0),
            attached: AtomicBool::new(false),
            outbox: Mutex::new(HashMap::new()),
            outbox_ready: Notify::new(),
            replicas: Mutex::new(ReplicasView::default()),
            policy_follow: Mutex::new(PolicyFollow::default()),
        }
    }

    /// A connection for commands (shared, multiplexed, reconnecting), or `None` if
    /// the client cannot make one. Call inside the runtime.
    pub(crate) fn commands(&self) -> Option<ConnectionManager> {
        let mut slot = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = self.connection(self.settings.timeout);
        }
        slot.clone()
    }

    /// Drops the shared command connection after a failure, so that the next command
    /// connects afresh: a connection manager whose reconnection was refused (a Redis
    /// restarted before its ACL user existed, a password rotated) may not try again.
    pub(crate) fn renew(&self) {
        *self.commands.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A new reconnecting connection whose commands time out after `timeout`.
    pub(crate) fn connection(&self, timeout: Duration) -> Option<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.settings.timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(redis = %self.settings.shown_url, error = %describe(&e), "fleet: no Redis connection");
                None
            }
        }
    }

    /// Records that the revocation view was complete as of `at`.
    pub(crate) fn mark_current(&self, at: Instant) {
        let ms = u64::try_from(at.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX - 1);
        self.view_current_at.fetch_max(ms + 1, Ordering::Relaxed);
    }

    /// How old the revocation view is; `None` before the first catch-up.
    pub(crate) fn view_age(&self) -> Option<Duration> {
        match self.view_current_at.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms - 1)),
            ),
        }
    }

    /// In strict mode, refuses while the view is older than the bound (or absent).
    pub(crate) fn check_fresh(&self) -> Result<(), TokenError> {
        let Some(bound) = self.settings.strict_bound else {
            return Ok(());
        };
        match self.view_age() {
            Some(age) if age <= bound => Ok(()),
            age => Err(TokenError::RevocationViewStale {
                age_secs: age.map_or(u64::MAX, |a| a.as_secs()),
                bound_secs: bound.as_secs(),
            }),
        }
    }

    /// Queues a revocation made here for delivery to the fleet.
    pub(crate) fn enqueue(&self, subject: Subject, before: u64) {
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        let slot = outbox.entry(subject).or_insert(before);
        *slot = (*slot).max(before);
        drop(outbox);
        self.outbox_ready.notify_one();
    }

    /// Counts and logs an entry read from Redis that is ignored.
    pub(crate) fn reject(&self, what: &'static str, redis_key: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(key = %redis_key, "fleet: ignored {what} read from Redis (did not verify or parse)");
    }

    /// Marks whether the last exchange with Redis succeeded, logging the transitions.
    pub(crate) fn set_connected(&self, up: bool) {
        if self.connected.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!(redis = %self.settings.shown_url, "fleet: Redis reachable");
            } else {
                tracing::warn!(redis = %self.settings.shown_url, "fleet: Redis unreachable; deciding from the local view");
            }
        }
    }

    /// The status, as of now.
    pub(crate) fn status(&self, policy_version: String) -> FleetStatus {
        let replicas = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        let follow = self.policy_follow.lock().unwrap_or_else(|p| p.into_inner());
        FleetStatus {
            mode: FleetMode::Redis,
            replica_id: self.settings.replica_id.clone(),
            policy_version,
            connected: self.connected.load(Ordering::Relaxed),
            view_age: self.view_age(),
            strict_bound: self.settings.strict_bound,
            fleet_policy_version: follow.version.clone(),
            fleet_policy_rejected: follow.rejected.clone(),
            pending_revocations: self.outbox.lock().unwrap_or_else(|p| p.into_inner()).len(),
            rejected_entries: self.rejected.load(Ordering::Relaxed),
            replicas: replicas.replicas.clone(),
            replicas_age: replicas.read_at.map(|t| t.elapsed()),
        }
    }

    /// Starts the fleet's tasks for one governor.
    pub(crate) fn attach(
        self: &Arc<Self>,
        attachment: Attachment,
    ) -> Result<Attached, ConfigError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ConfigError::FleetNeedsRuntime)?;
        if self.attached.swap(true, Ordering::SeqCst) {
            return Err(ConfigError::FleetInUse);
        }
        let attachment = Arc::new(attachment);
        let (stop, stopped) = watch::channel(());
        let stream = self.connection(REVOCATION_BLOCK + self.settings.timeout);
        runtime.spawn(super::revocations::follow(
            Arc::clone(self),
            Arc::clone(&attachment),
            stream,
            stopped.clone(),
        ));
        runtime.spawn(super::revocations::deliver(
            Arc::clone(self),
            stopped.clone(),
        ));
        runtime.spawn(super::replicas::check_in(
            Arc::clone(self),
            Arc::clone(&attachment),
            stopped,
        ));
        Ok(Attached {
            fleet: Arc::clone(self),
            attachment,
            _stop: stop,
        })
    }
}

/// Resolves when the governor is gone.
pub(crate) async fn stopped(stop: &mut watch::Receiver<()>) {
    while stop.changed().await.is_ok() {}
}

/// A short, password-free description of a Redis error.
pub(crate) fn describe(error: &redis::RedisError) -> String {
    let mut s = format!("{:?}", error.kind());
    if let Some(code) = error.code() {
        s.push_str(": ");
        s.push_str(code);
    }
    if error.is_timeout() {
        s.push_str(" (timed out)");
    }
    s
}
