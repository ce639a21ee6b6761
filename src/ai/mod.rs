//! AI surfaces: where AI APIs name the resource (the request body, a protobuf message, a
//! JSON-RPC call) rather than the URL, and the listings that must match enforcement.
//!
//! Framework-neutral, like [`crate::http`]; the adapters (`entra_governor::axum::openai`,
//! `entra_governor::actix::openai`, ...) only read requests and write responses.
//!
//! | module | holds |
//! |---|---|
//! | [`body`] | a bounded JSON body parsed once, keys unique at every depth ([`body::BodyError`]) |
//! | [`mcp`] | MCP servers (Streamable HTTP): `tools/call` authorized on `tools/{name}`, the filtered `tools/list`, the protected resource metadata (RFC 9728) |
//! | [`openai`] | OpenAI-compatible routes: the `model` of the body authorized on `models/{model}`, the filtered `GET /v1/models`, errors in OpenAI's shape |

pub mod body;
pub mod mcp;
pub mod openai;
