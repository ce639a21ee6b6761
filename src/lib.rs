#![doc = include_str!("../README.md")]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

#[cfg(any(feature = "axum", feature = "actix"))]
mod adapters;
pub mod audit;
mod clock;
pub mod cloud;
pub mod decision;
pub mod error;
mod fast_hash;
mod fetch;
mod governor;
pub mod graph;
pub mod http;
pub mod ids;
pub mod policy;
pub mod principal;
pub mod resource;
pub mod revocation;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

#[cfg(feature = "actix")]
pub use adapters::actix;
#[cfg(feature = "axum")]
pub use adapters::axum;
pub use audit::{
    AuditError, AuditEvent, AuditLog, AuditLogBuilder, AuditOutcome, AuditSink, AuditSinkError,
    JsonLinesSink, MemorySink, OnFull, TracingSink,
};
pub use cloud::Cloud;
pub use decision::{Decision, Effect, Match, Reason};
pub use error::{AuthorizeError, ConfigError, ReloadError, TokenError};
pub use fetch::DEFAULT_HTTP_TIMEOUT;
pub use governor::{Governor, GovernorBuilder, RequestContext};
#[cfg(feature = "graph")]
pub use graph::{ClientCredential, GraphGroupResolver, GraphGroupResolverBuilder};
pub use graph::{GroupResolutionError, GroupResolver};
pub use ids::{GroupId, InvalidId, ObjectId, PrincipalId, TenantId};
#[allow(deprecated)]
pub use policy::MembershipView;
pub use policy::{CompiledPolicy, MembershipSource, Permissions, Policy, PolicyError};
#[allow(deprecated)]
pub use principal::Groups;
pub use principal::{
    ClientAuth, DisplayClaims, GuestStatus, Principal, PrincipalBuilder, PrincipalKind,
    TokenGroups, TokenVersion,
};
pub use revocation::RevocationError;
pub use token::config::{
    DEFAULT_CLOCK_SKEW, DEFAULT_KEY_REFRESH_COOLDOWN, DEFAULT_KEY_REFRESH_INTERVAL,
    DEFAULT_MAX_TOKEN_BYTES, DEFAULT_TOKEN_CACHE_BYTES, KEY_REFRESH_COOLDOWN_RANGE,
    KEY_REFRESH_INTERVAL_RANGE, MAX_METADATA_BYTES,
};
