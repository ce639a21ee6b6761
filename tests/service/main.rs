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

mod authzen;
mod contract;
mod governance;
mod harness;
mod metrics_endpoint;
mod nginx;
mod operations;

use entra_governor::TenantId;
use entra_governor::testing::{Options, TestIdp};

/// The home tenant of the example policy's claim-value bindings.
const EXAMPLE_HOME_TENANT: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";

/// A look-alike whose home tenant is the example policy's.
pub async fn example_idp() -> TestIdp {
    TestIdp::start_with(Options::default().tenant(TenantId::parse(EXAMPLE_HOME_TENANT).unwrap()))
        .await
}
