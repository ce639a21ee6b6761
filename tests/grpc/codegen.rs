//! The generated code is committed (users never run a code generator, and the crate
//! has no build script), so this test regenerates it into a temporary directory and
//! requires the committed files to be byte-identical: a proto or generator change
//! without a regenerated file fails here.
//!
//! To regenerate after changing a proto or the generator's version:
//! `ENTRA_GOVERNOR_REGENERATE=1 cargo test --all-features --test grpc codegen`.

use std::path::{Path, PathBuf};

use crate::common::TempDir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed file at `committed` must be `generated`, or be replaced by it when
/// regenerating.
fn check(generated: &Path, committed: &str) {
    let fresh = std::fs::read(generated).expect("the generator wrote the file");
    let path = root().join(committed);
    if std::env::var_os("ENTRA_GOVERNOR_REGENERATE").is_some() {
        std::fs::write(&path, &fresh).expect("write the regenerated file");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "{committed} is not what tonic-prost-build generates from the protos: \
         regenerate it with `ENTRA_GOVERNOR_REGENERATE=1 cargo test --all-features \
         --test grpc codegen`"
    );
}

/// The library's KServe v2 types, `entra_governor::tonic::kserve`.
#[test]
fn the_committed_kserve_code_is_what_the_proto_generates() {
    let fds = protox::compile(["grpc_predict_v2.proto"], [root().join("proto/kserve")])
        .expect("the vendored proto parses");
    let out = TempDir::new("codegen-kserve");
    tonic_prost_build::configure()
        // Tensors as `bytes::Bytes`: the layer's decoding and the service's share the
        // message's buffer instead of copying raw tensor contents.
        .bytes(".")
        // Servers implement only the methods they serve; the rest answer UNIMPLEMENTED.
        .generate_default_stubs(true)
        .out_dir(&out)
        .compile_fds(fds)
        .expect("generate");
    check(
        &out.join("inference.rs"),
        "src/adapters/tonic/generated/inference.rs",
    );
}

/// The test-only streaming service over KServe's messages (tests/grpc/proto).
#[test]
fn the_committed_streaming_test_code_is_what_its_proto_generates() {
    let fds = protox::compile(
        ["streaming.proto"],
        [root().join("tests/grpc/proto"), root().join("proto/kserve")],
    )
    .expect("the test proto parses");
    let out = TempDir::new("codegen-streaming");
    tonic_prost_build::configure()
        .extern_path(".inference", "::entra_governor::tonic::kserve")
        .generate_default_stubs(true)
        .out_dir(&out)
        .compile_fds(fds)
        .expect("generate");
    check(
        &out.join("streaming.rs"),
        "tests/grpc/generated/streaming.rs",
    );
}
