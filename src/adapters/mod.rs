//! Web-framework adapters, one module and one cargo feature each; re-exported at the
//! crate root as `entra_governor::axum`, `entra_governor::actix` and
//! `entra_governor::tonic` (gRPC).

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "tonic")]
pub mod tonic;

#[cfg(any(feature = "axum", feature = "actix"))]
mod extractors {
    use std::ops::Deref;
    use std::sync::Arc;

    use crate::http::Refusal;
    use crate::{Decision, Governor, Principal};

    /// What the adapters keep in the request extensions for a verified caller: the
    /// principal and the governor that verified it. Private to the crate, so no other
    /// middleware can plant a principal, and a `Require` of another governor (another
    /// audience, another revocation list) verifies the token itself instead of trusting it.
    #[derive(Clone, Debug)]
    pub(crate) struct Verified {
        principal: Arc<Principal>,
        governor: u64,
    }

    impl Verified {
        /// A caller `governor` has just verified.
        pub(crate) fn new(principal: Arc<Principal>, governor: &Governor) -> Self {
            Self {
                principal,
                governor: governor.instance(),
            }
        }

        /// The caller, if `governor` is the one that verified it.
        pub(crate) fn for_governor(self, governor: &Governor) -> Option<Arc<Principal>> {
            (self.governor == governor.instance()).then_some(self.principal)
        }

        /// The caller, whoever verified it (for the `Authenticated` extractor).
        pub(crate) fn principal(&self) -> &Arc<Principal> {
            &self.principal
        }
    }

    /// The verified caller (shared, not copied), from the request extensions, where the
    /// governor's layer or middleware (axum `AuthenticateLayer` / `RequireLayer`,
    /// actix-web `Authenticate` / `Require`) put it.
    ///
    /// Without one of them on the route, extraction fails with 500: a server bug, not
    /// something the client can fix.
    #[derive(Clone, Debug)]
    pub struct Authenticated(pub Arc<Principal>);

    /// The allowing decision (shared, not copied) of the route's `RequireLayer` (axum) or
    /// `Require` (actix-web), from the request extensions.
    ///
    /// Without one on the route, extraction fails with 500.
    #[derive(Clone, Debug)]
    pub struct Authorized(pub Arc<Decision>);

    impl Deref for Authenticated {
        type Target = Principal;

        fn deref(&self) -> &Principal {
            &self.0
        }
    }

    impl Deref for Authorized {
        type Target = Decision;

        fn deref(&self) -> &Decision {
            &self.0
        }
    }

    /// The refusal of an extractor whose layer or middleware is missing (logged: it is a
    /// server bug).
    pub(crate) fn not_installed(what: &'static str) -> Refusal {
        tracing::error!(
            "{what}: the route has no entra-governor layer or middleware; answering 500"
        );
        Refusal::misconfigured("authorization is misconfigured for this route")
    }
}

#[cfg(any(feature = "axum", feature = "actix"))]
pub use extractors::{Authenticated, Authorized};
#[cfg(any(feature = "axum", feature = "actix"))]
use extractors::{Verified, not_installed};
