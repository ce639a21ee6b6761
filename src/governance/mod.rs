//! Governance: change a policy safely and keep it least-privilege.
//!
//! Every function here is a library API that the `entra-governor` CLI only wraps, so
//! platforms can run them in their own pipelines:
//!
//! - [`cases`]: policy test files, kept next to the policy and run in CI;
//! - [`caller`]: the Entra-shaped callers those files (and `explain`) describe;
//! - [`shadow`]: a candidate policy decided beside the live one, never enforced;
//! - [`replay`]: a candidate decided against a recorded trail: what would change;
//! - [`review`]: an access review of a trail: unused and over-wide grants, per-caller
//!   evidence, a suggested narrower policy;
//! - [`trail`]: reading recorded trails and the windows they are read over.

pub mod caller;
pub mod cases;
pub mod replay;
pub mod review;
pub mod shadow;
pub mod trail;
