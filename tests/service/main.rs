//! The decision service (`entra-governor serve`) end to end: the built binary as a
//! process, against the local Entra look-alike, asked the way gateways ask.
//!
//! | module | covers |
//! |---|---|
//! | `contract` | the adapters' contract through forward-auth, Envoy HTTP and gRPC, AuthZEN |
//! | `authzen` | PEP authentication, batches and their semantics, the well-known metadata |
//! | `operations` | the configuration's errors, hot reload under load, readiness, shutdown, admin routes |
//! | `metrics_endpoint` | `/metrics`: counters moved exactly by scripted requests, no request value in a label |
//! | `nginx` | a real nginx with `deploy/nginx.conf` (auth_request) in front of an upstream |
//! | `governance` | the service's v2 trail through `replay`, `review`, `lint` and `test` |
//! | `demo` | `cargo run --example service_demo`: its configuration, tokens and printed commands against the binary |

#[path = "../common/mod.rs"]
mod common;

mod authzen;
mod contract;
mod demo;
mod governance;
mod harness;
mod metrics_endpoint;
mod nginx;
mod operations;

pub use common::example_idp;
