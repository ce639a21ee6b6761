//! Fleet mode end to end: a real `redis-server` (the harness in `tests/common/redis.rs`)
//! and the example servers as processes sharing it. One test binary (needs the `redis`,
//! `axum` and `actix` features).

#[path = "../common/mod.rs"]
mod common;

mod harness;
mod library;
