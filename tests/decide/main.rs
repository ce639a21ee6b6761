//! The policy stage: policies loaded and decided (table-driven and against a reference
//! evaluator), `authorize()`, group overage and Microsoft Graph, Conditional Access step-up,
//! and property tests. One test binary, one module per topic.

#[path = "../common/mod.rs"]
mod common;
#[path = "../seeded/mod.rs"]
mod seeded;

mod authorize;
mod batch;
mod graph;
mod overage;
mod policy;
mod properties;
mod secretless;
mod step_up;
