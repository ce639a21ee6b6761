//! Web-framework adapters, one module and one cargo feature each; re-exported at the
//! crate root as `entra_governor::axum` and `entra_governor::actix`.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;

#[cfg(any(feature = "axum", feature = "actix"))]
mod extractors {
    use std::ops::Deref;
    use std::sync::Arc;

    use crate::http::Refusal;
    use crate::{Decision, Principal};

    /// The verified caller (shared, not copied), from the request extensions, where the
    /// governor's layer or middleware (axum `GovernorLayer` / `RequireLayer`, actix-web
    /// `GovernorMiddleware` / `Require`) put it.
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
use extractors::not_installed;
#[cfg(any(feature = "axum", feature = "actix"))]
pub use extractors::{Authenticated, Authorized};
