//! gRPC inference behind `entra_governor::tonic`: a real tonic server on a loopback
//! socket, behind the layer, called by the generated KServe v2 client with tokens from
//! the local Entra look-alike; the example server as a process; and the generated code
//! checked against the protos. One test binary, one module per topic.

#[path = "../common/mod.rs"]
mod common;

// The test-only bidirectional service over KServe's messages (see its proto).
#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
#[path = "generated/streaming.rs"]
mod streaming;

mod calls;
mod codegen;
mod example;
mod server;
mod streams;
