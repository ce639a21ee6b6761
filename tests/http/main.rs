//! The HTTP edge: one contract (`contract.rs`) run against real axum and actix-web servers
//! over loopback sockets, the example demos' printed commands, and the example servers run
//! as processes. One test binary (needs the `axum` and `actix` features).

// Both example servers include the shared `examples/platform` module, and this binary
// includes both examples (`demo_axum`, `demo_actix`): the module is compiled twice, once
// inside each example, as in the examples themselves.
#![allow(clippy::duplicate_mod)]

#[path = "../common/mod.rs"]
mod common;

mod actix;
mod admin;
mod axum;
mod contract;
mod demo_actix;
mod demo_axum;
mod example_demo;
mod example_servers;
mod mcp;
mod openai;
mod openai_gateway;
