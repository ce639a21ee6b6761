//! Fleet mode: many replicas of one service behave as one, with Redis (or Valkey) holding
//! what they share. Feature `redis`.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use entra_governor::Governor;
//! use entra_governor::fleet::{Fleet, FleetKey};
//!
//! // The same key on every replica, from the environment (never from a file in git).
//! let key = FleetKey::from_env("ENTRA_FLEET_KEY")?;
//! let fleet = Fleet::builder("rediss://redis.internal:6380", key)
//!     .namespace("ai-platform")
//!     .build()?;
//! let governor = Governor::builder()
//!     .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!     .fleet(fleet)
//!     .build()?; // inside a tokio runtime: starts the fleet's background tasks
//! println!("{:?}", governor.fleet_status());
//! # Ok(()) }
//! ```
//!
//! What the fleet shares, and what it guarantees:
//!
//! - **Revocations.** [`Governor::revoke`](crate::Governor::revoke) on any replica is
//!   enforced by every replica, typically within milliseconds (a stream every replica
//!   follows) and at most one block interval (1 s) plus the round trip after Redis has
//!   it. The request path never waits on Redis: each replica checks its local mirror. The
//!   mirror catches up (a full read of the fleet's set) at start, after every
//!   reconnection and every 30 s. A revocation made while Redis is unreachable is
//!   enforced locally at once and delivered when Redis returns. Revocations leave the
//!   mirror only by expiry: entries Redis lost (flushed, replaced) are written back.
//! - **Graph memberships** (with [`GraphGroupResolverBuilder::fleet`](crate::GraphGroupResolverBuilder::fleet)):
//!   an answer is shared by every replica for its lifetime (one Graph call for the
//!   fleet), holds only the policy-bound groups asked about, is keyed by that set of
//!   groups, and never outlives the caller's token. A `429` seen by one replica holds
//!   back every replica's calls to that tenant until its `Retry-After` has passed.
//! - **The policy.** Every replica checks in (its policy version, how old its view is);
//!   [`Governor::fleet_status`](crate::Governor::fleet_status) lists them.
//!   [`Governor::publish_policy`](crate::Governor::publish_policy) validates a policy and
//!   publishes it; every replica validates it again before its atomic swap.
//!
//! Redis is not trusted to grant: a membership answer or a published policy is sealed
//! with the [`FleetKey`] (HMAC-SHA256) and ignored, with a warning and a count in
//! [`FleetStatus::rejected_entries`], when it does not verify. A revocation can only
//! narrow access and is taken as it is.
//!
//! Without the `redis` feature only [`FleetStatus`] is here: a standalone governor
//! describes itself with it.

mod status;

#[cfg(feature = "redis")]
mod config;
#[cfg(feature = "redis")]
mod graph;
#[cfg(feature = "redis")]
mod key;
#[cfg(feature = "redis")]
mod names;
#[cfg(feature = "redis")]
mod policy;
#[cfg(feature = "redis")]
mod replicas;
#[cfg(feature = "redis")]
mod revocations;
#[cfg(feature = "redis")]
mod shared;

#[cfg(feature = "redis")]
pub use config::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_NAMESPACE, DEFAULT_REDIS_TIMEOUT, DEFAULT_RESYNC_INTERVAL,
    Fleet, FleetBuilder, REVOCATION_BLOCK,
};
#[cfg(feature = "redis")]
pub(crate) use graph::{GraphShare, Lookup};
#[cfg(feature = "redis")]
pub use key::{FleetKey, MIN_FLEET_KEY_BYTES};
#[cfg(feature = "redis")]
pub use policy::FleetError;
#[cfg(feature = "redis")]
pub(crate) use policy::publish as publish_policy;
#[cfg(feature = "redis")]
pub(crate) use replicas::check_out;
#[cfg(feature = "redis")]
pub(crate) use shared::{AcceptPolicy, Attached, Attachment};
pub use status::{FleetMode, FleetStatus, ReplicaStatus};
