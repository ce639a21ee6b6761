//! Fleet mode end to end: a real `redis-server` (the harness in `tests/common/redis.rs`),
//! the library's replicas in one process (`library`), and the example servers as
//! processes sharing it (three replicas of both frameworks, the local Entra and Graph
//! look-alike in this process). One test binary (needs the `redis`, `axum` and `actix`
//! features).

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod graph;
mod harness;
mod library;
mod replica;
mod revocation;
mod tamper;
