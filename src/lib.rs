#![doc = "entra-governor (work in progress)"]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

pub mod decision;
pub mod ids;
pub mod policy;
pub mod principal;

pub use decision::{Decision, Effect, Match, Reason};
pub use ids::{GroupId, InvalidId, ObjectId, PrincipalId, TenantId};
pub use policy::{CompiledPolicy, MembershipView, Permissions, Policy, PolicyError};
pub use principal::{
    ClientAuth, DisplayClaims, Groups, Principal, PrincipalBuilder, PrincipalKind, TokenVersion,
};
