//! The audit stage: the pipeline (sinks, back-pressure, strict mode, shutdown) and the
//! trail every decision leaves. One test binary, one module per topic.

#[path = "../common/mod.rs"]
mod common;

mod pipeline;
mod trail;
