#![doc = include_str!("../README.md")]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

#[cfg(any(feature = "axum", feature = "actix"))]
mod adapters;
pub mod cloud;
pub mod decision;
pub mod error;
mod governor;
pub mod http;
pub mod ids;
pub mod policy;
pub mod principal;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

#[cfg(feature = "actix")]
pub use adapters::actix;
#[cfg(feature = "axum")]
pub use adapters::axum;
pub use cloud::Cloud;
pub use decision::{Decision, Effect, Match, Reason};
pub use error::{AuthorizeError, ConfigError, TokenError};
pub use governor::{
    DEFAULT_CLOCK_SKEW, DEFAULT_HTTP_TIMEOUT, DEFAULT_KEY_REFRESH_COOLDOWN,
    DEFAULT_KEY_REFRESH_INTERVAL, DEFAULT_MAX_TOKEN_BYTES, Governor, GovernorBuilder,
    MAX_METADATA_BYTES,
};
pub use ids::{GroupId, InvalidId, ObjectId, PrincipalId, TenantId};
pub use policy::{CompiledPolicy, MembershipView, Permissions, Policy, PolicyError};
pub use principal::{
    ClientAuth, DisplayClaims, Groups, Principal, PrincipalBuilder, PrincipalKind, TokenVersion,
};
