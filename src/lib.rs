#![doc = include_str!("../README.md")]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Modules in pipeline order: the foundations, then the stages a request passes through,
// token -> principal -> policy -> decision -> audit -> governor -> HTTP edge -> adapters.

// Foundations: no stage above them.
mod clock;
pub mod cloud;
pub mod error;
mod fast_hash;
mod fetch;
pub mod ids;
pub mod limits;

// The stages (blank lines keep rustfmt from sorting them).
pub mod token;

pub mod principal;

pub mod resource;

pub mod policy;

pub mod decision;

pub mod graph;

pub mod revocation;

pub mod audit;

pub mod config;

pub mod fleet;

pub mod governance;

mod governor;

pub mod http;

pub mod observe;

pub mod ai;

#[cfg(any(feature = "axum", feature = "actix", feature = "tonic"))]
mod adapters;

// The local Entra and Graph look-alike for tests.
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use adapters::actix;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use adapters::axum;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use adapters::tonic;
pub use audit::{
    AuditError, AuditEvent, AuditLog, AuditLogBuilder, AuditOutcome, AuditSink, AuditSinkError,
    JsonLinesSink, MemorySink, OnFull, TracingSink,
};
pub use cloud::Cloud;
pub use decision::{Decision, Effect, Match, Reason};
pub use error::{AuthorizeError, ConfigError, ReloadError, TokenError};
pub use governor::health;
pub use governor::{Governor, GovernorBuilder, RequestContext};
#[cfg(feature = "graph")]
#[cfg_attr(docsrs, doc(cfg(feature = "graph")))]
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
