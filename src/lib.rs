#![doc = include_str!("../README.md")]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

pub mod cloud;
pub mod error;
mod governor;
pub mod graph;
pub mod ids;
pub mod principal;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

pub use cloud::Cloud;
pub use error::{ConfigError, TokenError};
pub use governor::{
    DEFAULT_CLOCK_SKEW, DEFAULT_HTTP_TIMEOUT, DEFAULT_KEY_REFRESH_COOLDOWN,
    DEFAULT_KEY_REFRESH_INTERVAL, DEFAULT_MAX_TOKEN_BYTES, Governor, GovernorBuilder,
    MAX_METADATA_BYTES,
};
#[cfg(feature = "graph")]
pub use graph::{ClientCredential, GraphGroupResolver, GraphGroupResolverBuilder};
pub use graph::{GroupResolutionError, GroupResolver};
pub use ids::{GroupId, InvalidId, ObjectId, PrincipalId, TenantId};
pub use principal::{
    ClientAuth, DisplayClaims, Groups, Principal, PrincipalBuilder, PrincipalKind, TokenVersion,
};
