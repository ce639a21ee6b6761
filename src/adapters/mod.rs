//! Web-framework adapters, one module and one cargo feature each; re-exported at the
//! crate root as `entra_governor::axum` and `entra_governor::actix`.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
