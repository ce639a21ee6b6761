//! The token stage: verification of Entra access tokens (signatures, keys, claims, times,
//! issuers, audiences), the verified-token cache, revocation, hostile tokens and a failing
//! identity provider. One test binary, one module per topic.

#[path = "../common/mod.rs"]
mod common;

mod attacks;
mod idp_faults;
mod keys;
mod revocation;
mod token_cache;
mod tokens;
