//! Shared set-up: a local Entra look-alike and a governor pointed at it.
#![allow(dead_code)]

pub mod redis;

use std::path::{Path, PathBuf};
use std::time::Duration;

use entra_governor::TenantId;
use entra_governor::testing::{Options, TestIdp};
use entra_governor::{
    ClientCredential, Cloud, Governor, GovernorBuilder, GraphGroupResolver,
    GraphGroupResolverBuilder, Policy,
};

/// A governor builder for the idp's primary tenant, with no periodic refresh.
pub fn builder(idp: &TestIdp) -> GovernorBuilder {
    Governor::builder()
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback()
        .key_refresh_interval(None)
        .http_timeout(Duration::from_secs(2))
}

/// An idp and a governor for it.
pub async fn setup() -> (TestIdp, Governor) {
    let idp = TestIdp::start().await;
    let governor = builder(&idp).build().expect("valid configuration");
    (idp, governor)
}

/// The home tenant that `examples/policy.toml`'s claim-value bindings trust
/// (`tenants = [...]` on its app role and app permission bindings).
pub const EXAMPLE_HOME_TENANT: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";

/// An idp whose primary tenant is the example policy's home tenant.
pub async fn example_idp() -> TestIdp {
    TestIdp::start_with(Options::default().tenant(TenantId::parse(EXAMPLE_HOME_TENANT).unwrap()))
        .await
}

/// `target/<profile>/examples/<name>`, built by `cargo test` beside this test binary.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test --all-features` builds the examples first \
         (or run `cargo build --examples --all-features`)",
        path.display()
    );
    path
}

/// The example policy, `examples/policy.toml`.
pub fn example_policy() -> Policy {
    Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml"))
        .expect("the example policy loads")
}

/// A Graph group resolver builder for the idp's primary tenant and client, with the
/// idp's Graph client secret, allowed to talk plain HTTP to the loopback look-alike.
pub fn graph_resolver(idp: &TestIdp) -> GraphGroupResolverBuilder {
    graph_resolver_with(idp, ClientCredential::secret(idp.graph_client_secret()))
}

/// [`graph_resolver`] with another credential.
pub fn graph_resolver_with(
    idp: &TestIdp,
    credential: ClientCredential,
) -> GraphGroupResolverBuilder {
    GraphGroupResolver::builder(
        &Cloud::custom(idp.authority()),
        idp.tenant_id(),
        idp.client_id(),
        credential,
    )
    .dangerous_allow_http_loopback()
}

/// A fresh, empty directory under the system's temporary directory, unique to this test
/// process and to this call, removed with what the test wrote into it when dropped; kept
/// (and its path printed) when the test is failing, so that what it wrote can be read.
///
/// Declare it before anything that writes into it (a child process, a governor with a
/// file sink): locals are dropped in reverse order, so those stop first.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `<tmp>/entra-governor-<tag>-<pid>-<n>`, created empty.
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("entra-governor-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for the failing test", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
