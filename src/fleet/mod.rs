//! Fleet mode: many replicas behave as one service, with Redis (or Valkey) holding the
//! state they share.
//!
//! Without the `redis` feature only [`FleetStatus`] is here: a standalone governor
//! describes itself with it.

mod status;

pub use status::{FleetMode, FleetStatus, ReplicaStatus};
