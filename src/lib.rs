#![doc = "entra-governor (work in progress)"]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

pub mod ids;
pub mod principal;
#[cfg(feature = "testing")]
pub mod testing;

pub use ids::{GroupId, InvalidId, ObjectId, PrincipalId, TenantId};
pub use principal::{
    ClientAuth, DisplayClaims, Groups, Principal, PrincipalBuilder, PrincipalKind, TokenVersion,
};
