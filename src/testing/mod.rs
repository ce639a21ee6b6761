//! [`TestIdp`]: a real, local Microsoft Entra ID look-alike for tests (feature `testing`).
//!
//! `TestIdp::start()` binds an HTTP server on `127.0.0.1` that serves Entra's v1 and v2
//! OpenID Connect discovery documents and signing-key sets (JWKS), and mints access tokens
//! signed by the keys it publishes. Well-formed tokens are encoded by `jsonwebtoken`, an
//! implementation independent of this crate's verifier; hostile shapes (custom headers, raw
//! bytes) are signed directly with aws-lc-rs.
//!
//! Every knob a verifier must survive is here: key rotation and unpublished keys
//! ([`TestIdp::rotate`], [`TestIdp::remove_key`]), odd JWKS entries
//! ([`TestIdp::publish_raw_jwk`]), outages and hostile answers ([`Mode`]), held JWKS answers
//! ([`TestIdp::hold_jwks_request`]), request counters to prove caching, and a
//! [`TokenBuilder`] for every claim Entra sends. For Microsoft Graph it also serves the
//! client credentials token endpoint (secrets, certificates and federated workload
//! identity tokens, [`TestIdp::mint_federated_token`]) and look-alikes of the managed
//! identity endpoints ([`TestIdp::imds_endpoint`], [`TestIdp::app_service_identity_endpoint`]).
//!
//! The authority is plain `http://`: a verifier must be told explicitly that it may talk to
//! it. The server runs on the current tokio runtime (which needs its IO and time drivers, as
//! `#[tokio::test]` provides) and stops when the last clone of the `TestIdp` is dropped, or on
//! [`TestIdp::shutdown`].
//!
//! To use it from your own tests:
//!
//! ```toml
//! [dev-dependencies]
//! entra-governor = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```
//! use entra_governor::testing::{Mode, TestIdp};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let idp = TestIdp::start().await;
//! let tenant = idp.tenant_id();
//!
//! // The same discovery document shape as login.microsoftonline.com.
//! let url = format!("{}/{tenant}/v2.0/.well-known/openid-configuration", idp.authority());
//! let discovery: serde_json::Value = serde_json::from_slice(&reqwest::get(&url).await?.bytes().await?)?;
//! assert_eq!(discovery["issuer"], format!("{}/{tenant}/v2.0", idp.authority()));
//!
//! // A v2 delegated token for the primary tenant, with a scope and an app role.
//! let token = idp.token().scopes("Model.Train Model.Infer").roles(["Trainer"]).sign();
//! assert_eq!(token.split('.').count(), 3);
//!
//! // Faults apply to discovery and JWKS.
//! idp.set_mode(Mode::Status(503));
//! assert_eq!(reqwest::get(&url).await?.status(), 503);
//! assert_eq!(idp.discovery_requests(), 2);
//! # Ok(())
//! # }
//! ```

mod graph;
mod hold;
mod identity;
mod keys;
mod mint;
mod respond;
mod server;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ids::TenantId;

pub use graph::{GraphMode, GraphTokenMode};
pub use hold::JwksHold;
use keys::RsaKey;
pub use mint::TokenBuilder;

/// How the discovery and JWKS endpoints answer; set with [`TestIdp::set_mode`].
///
/// Requests are counted whatever the mode. Other paths (404s) are not affected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Answer like Entra.
    #[default]
    Normal,
    /// Read the request, then close the connection without any response.
    Down,
    /// Answer with this HTTP status and an Entra-style JSON error body (codes outside
    /// `200..=999` are answered as 500).
    Status(u16),
    /// Answer 200 `application/json` with a body that is not valid JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer 200 `application/json` with a body of exactly this many bytes: the normal
    /// document padded with trailing whitespace (still valid JSON), or, when that does not
    /// fit, `{` whitespace `}` (valid JSON for two bytes or more).
    HugeBody(usize),
    /// Answer `302 Found` with this `Location`.
    RedirectTo(String),
    /// Discovery answers with the issuer of a tenant this idp does not serve; JWKS is normal.
    WrongIssuer,
    /// Discovery answers with a `jwks_uri` on another host
    /// (`http://127.0.0.2:1/{tenant}/discovery/…/keys`); JWKS is normal.
    ForeignJwksUri,
}

/// A local Entra look-alike: discovery, JWKS and a token minter. See the [module docs](self).
///
/// Cheap to clone; all clones share one server and one key ring.
#[derive(Clone)]
pub struct TestIdp {
    shared: Arc<Shared>,
}

/// Owned by the `TestIdp` clones only: dropping it stops the server.
struct Shared {
    state: Arc<State>,
    stop: watch::Sender<bool>,
    server: Mutex<Option<JoinHandle<()>>>,
}

/// Everything the server and the token builder read.
pub(crate) struct State {
    pub(crate) authority: String,
    /// Base of v2 issuers (`{base}/{tid}/v2.0`); the authority unless impersonating.
    pub(crate) v2_issuer_base: String,
    /// Base of v1 issuers (`{base}/{tid}/`); the authority unless impersonating.
    pub(crate) v1_issuer_base: String,
    pub(crate) primary: TenantId,
    /// A tenant this idp never serves: [`Mode::WrongIssuer`] uses its issuer.
    pub(crate) stranger: TenantId,
    pub(crate) client_id: String,
    pub(crate) client_app_id: String,
    tenants: Mutex<Vec<TenantId>>,
    keys: Mutex<KeyRing>,
    foreign: OnceLock<Arc<RsaKey>>,
    mode: Mutex<Mode>,
    /// Overrides `mode` for the JWKS endpoint only, when set.
    jwks_mode: Mutex<Option<Mode>>,
    discovery_requests: AtomicUsize,
    jwks_requests: AtomicUsize,
    /// JWKS answers the test holds back, by request number.
    pub(crate) jwks_holds: hold::Holds,
    pub(crate) appid_requests: AtomicUsize,
    /// The token endpoint and Microsoft Graph look-alike.
    pub(crate) graph: graph::GraphState,
    /// Federated tokens and the managed identity endpoints' look-alikes.
    pub(crate) identity: identity::IdentityState,
}

/// Keys held (can sign) and published (in the JWKS); held keys are never forgotten so that
/// tokens signed by an unpublished key can still be minted.
pub(crate) struct KeyRing {
    held: Vec<Arc<RsaKey>>,
    published: Vec<String>,
    current: Arc<RsaKey>,
    raw: Vec<Value>,
}

impl KeyRing {
    fn held(&self, kid: &str) -> Option<&Arc<RsaKey>> {
        self.held.iter().find(|k| k.kid() == kid)
    }

    /// The key new tokens are signed with.
    pub(crate) fn current(&self) -> &Arc<RsaKey> {
        &self.current
    }

    /// A held key by kid, published or not.
    pub(crate) fn find(&self, kid: &str) -> Option<Arc<RsaKey>> {
        self.held(kid).cloned()
    }

    /// The JWKS `keys` array: published keys bound to `issuer`, then the raw entries.
    pub(crate) fn jwks(&self, issuer: &str) -> Vec<Value> {
        let published = self
            .published
            .iter()
            .filter_map(|kid| self.held(kid))
            .map(|key| key.jwk(issuer));
        published.chain(self.raw.iter().cloned()).collect()
    }
}

/// Locks a mutex, ignoring poisoning: a panicking test must not cascade into the server.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    pub(crate) fn keys(&self) -> MutexGuard<'_, KeyRing> {
        lock(&self.keys)
    }

    pub(crate) fn mode(&self) -> Mode {
        lock(&self.mode).clone()
    }

    /// The mode of the JWKS endpoint: its override, or the common mode.
    pub(crate) fn jwks_mode(&self) -> Mode {
        lock(&self.jwks_mode).clone().unwrap_or_else(|| self.mode())
    }

    pub(crate) fn serves(&self, tenant: &TenantId) -> bool {
        lock(&self.tenants).contains(tenant)
    }

    pub(crate) fn count_discovery(&self) {
        self.discovery_requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a JWKS request and returns its number (1-based).
    pub(crate) fn count_jwks(&self) -> usize {
        self.jwks_requests.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The never-published key behind [`TokenBuilder::sign_with_foreign_key`], made once.
    pub(crate) fn foreign_key(&self) -> Arc<RsaKey> {
        self.foreign
            .get_or_init(|| Arc::new(RsaKey::generate()))
            .clone()
    }
}

/// Start-up options for [`TestIdp::start_with`].
#[derive(Clone, Debug, Default)]
#[must_use = "options do nothing until passed to `TestIdp::start_with`"]
pub struct Options {
    tenant: Option<TenantId>,
    v2_issuer_base: Option<String>,
    v1_issuer_base: Option<String>,
}

impl Options {
    /// Use this primary tenant instead of a random one.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Issue (and publish keys for) issuers on these bases instead of the authority, e.g.
    /// `https://login.microsoftonline.com` and `https://sts.windows.net`, to replay real
    /// Entra payloads. Pair with [`Cloud::with_v2_issuer_base`](crate::Cloud::with_v2_issuer_base).
    pub fn issuer_bases(mut self, v2: impl Into<String>, v1: impl Into<String>) -> Self {
        self.v2_issuer_base = Some(v2.into());
        self.v1_issuer_base = Some(v1.into());
        self
    }
}

impl TestIdp {
    /// Binds `127.0.0.1:0` and starts serving: one RSA-2048 signing key, one primary tenant.
    ///
    /// # Panics
    /// If no loopback port can be bound or no key generated (the test cannot run anyway).
    pub async fn start() -> TestIdp {
        Self::start_with(Options::default()).await
    }

    /// Like [`start`](Self::start), with [`Options`].
    ///
    /// # Panics
    /// If no loopback port can be bound or no key generated.
    pub async fn start_with(options: Options) -> TestIdp {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("TestIdp: cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("TestIdp: bound socket has no address")
            .port();
        let key = Arc::new(RsaKey::generate());
        let primary = options.tenant.unwrap_or_else(random_tenant);
        let authority = format!("http://127.0.0.1:{port}");
        let state = Arc::new(State {
            v2_issuer_base: options.v2_issuer_base.unwrap_or_else(|| authority.clone()),
            v1_issuer_base: options.v1_issuer_base.unwrap_or_else(|| authority.clone()),
            authority,
            stranger: random_tenant(),
            client_id: random_guid(),
            client_app_id: random_guid(),
            tenants: Mutex::new(vec![primary.clone()]),
            primary,
            keys: Mutex::new(KeyRing {
                held: vec![key.clone()],
                published: vec![key.kid().to_owned()],
                current: key,
                raw: Vec::new(),
            }),
            foreign: OnceLock::new(),
            mode: Mutex::new(Mode::Normal),
            jwks_mode: Mutex::new(None),
            discovery_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
            jwks_holds: hold::Holds::default(),
            appid_requests: AtomicUsize::new(0),
            graph: graph::GraphState::new(),
            identity: identity::IdentityState::new(),
        });
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(server::serve(listener, state.clone(), stopped));
        TestIdp {
            shared: Arc::new(Shared {
                state,
                stop,
                server: Mutex::new(Some(server)),
            }),
        }
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.shared.state
    }

    /// The authority URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn authority(&self) -> String {
        self.state().authority.clone()
    }

    /// The primary tenant: the default `tid` of minted tokens.
    pub fn tenant_id(&self) -> TenantId {
        self.state().primary.clone()
    }

    /// The API's client id (the default audience), fixed for this idp.
    pub fn client_id(&self) -> String {
        self.state().client_id.clone()
    }

    /// The default calling client application (`azp` / `appid`).
    pub fn client_app_id(&self) -> String {
        self.state().client_app_id.clone()
    }

    /// Adds another tenant served by this idp (for multi-tenant tests) and returns its id.
    pub fn add_tenant(&self) -> TenantId {
        let tenant = random_tenant();
        lock(&self.state().tenants).push(tenant.clone());
        tenant
    }

    /// The tenants this idp serves, the primary one first.
    pub fn tenants(&self) -> Vec<TenantId> {
        lock(&self.state().tenants).clone()
    }

    /// The v2 issuer of the primary tenant: `{authority}/{tid}/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.state().authority, self.state().primary)
    }

    /// The v2 discovery URL of the primary tenant.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.state().authority,
            self.state().primary
        )
    }

    /// The v2 JWKS URL of the primary tenant.
    pub fn jwks_url(&self) -> String {
        format!(
            "{}/{}/discovery/v2.0/keys",
            self.state().authority,
            self.state().primary
        )
    }

    /// Starts a token with the defaults: a v2 delegated user token for the primary tenant.
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(self.clone())
    }

    /// The kid of the key new tokens are signed with.
    pub fn signing_kid(&self) -> String {
        self.state().keys().current().kid().to_owned()
    }

    /// Generates a new RSA-2048 key, publishes it in the JWKS and returns its kid.
    ///
    /// Tokens keep being signed by the current key; see [`use_key`](Self::use_key).
    pub fn add_key(&self) -> String {
        let key = Arc::new(RsaKey::generate());
        let kid = key.kid().to_owned();
        let mut ring = self.state().keys();
        ring.published.push(kid.clone());
        ring.held.push(key);
        kid
    }

    /// Removes the key (and any raw entry) with this kid from the JWKS. The idp still holds
    /// the key, so it can keep signing with it: that is how "signed by an unpublished key"
    /// tokens are made. Unknown kids are ignored.
    pub fn remove_key(&self, kid: &str) {
        let mut ring = self.state().keys();
        ring.published.retain(|k| k != kid);
        ring.raw
            .retain(|jwk| jwk.get("kid").and_then(Value::as_str) != Some(kid));
    }

    /// Signs new tokens with this key (published or not, as long as the idp holds it).
    ///
    /// # Panics
    /// If the idp holds no key with this kid: a mistake in the test itself.
    #[track_caller]
    pub fn use_key(&self, kid: &str) {
        let mut ring = self.state().keys();
        match ring.find(kid) {
            Some(key) => ring.current = key,
            None => panic!("TestIdp::use_key: no key with kid {kid:?} is held by this idp"),
        }
    }

    /// Rolls the signing key: adds a key, signs with it, unpublishes the old one. Returns the
    /// new kid.
    pub fn rotate(&self) -> String {
        let key = Arc::new(RsaKey::generate());
        let kid = key.kid().to_owned();
        let mut ring = self.state().keys();
        let old = ring.current.kid().to_owned();
        ring.published.retain(|k| *k != old);
        ring.published.push(kid.clone());
        ring.held.push(key.clone());
        ring.current = key;
        kid
    }

    /// The JWKS entry of a held key, bound to `issuer` (for hand-made key sets: publish it
    /// with [`publish_raw_jwk`](Self::publish_raw_jwk)). `None` for a kid the idp does not hold.
    pub fn jwk(&self, kid: &str, issuer: &str) -> Option<Value> {
        self.state().keys().find(kid).map(|key| key.jwk(issuer))
    }

    /// Discovery requests that carried `?appid=` (custom signing keys).
    pub fn appid_requests(&self) -> usize {
        self.state().appid_requests.load(Ordering::SeqCst)
    }

    /// Publishes an extra JWKS entry exactly as given (e.g. `"use": "enc"`, an EC key, a short
    /// modulus, `e = 1`). It is served on every JWKS path, after the idp's own keys.
    pub fn publish_raw_jwk(&self, jwk: Value) {
        self.state().keys().raw.push(jwk);
    }

    /// A raw RS256 signature of `signing_input` by a held key (published or not), for attack
    /// tests that assemble tokens by hand. `None` if the idp holds no key with this kid.
    pub fn sign_raw(&self, kid: &str, signing_input: &[u8]) -> Option<Vec<u8>> {
        let key = self.state().keys().find(kid)?;
        Some(key.sign(signing_input))
    }

    /// Sets how the discovery and JWKS endpoints answer from now on.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.state().mode) = mode;
    }

    /// Sets how the JWKS endpoint alone answers (discovery keeps following
    /// [`set_mode`](Self::set_mode)); `None` makes it follow `set_mode` again. For faults
    /// that only the key set has, while discovery is fine.
    pub fn set_jwks_mode(&self, mode: Option<Mode>) {
        *lock(&self.state().jwks_mode) = mode;
    }

    /// Holds back the answer to JWKS request number `n` (1-based, as
    /// [`jwks_requests`](Self::jwks_requests) counts them; [`reset_counters`](Self::reset_counters)
    /// starts the numbering again): that request reads the key set when it arrives, then
    /// answers only once the returned [`JwksHold`] is released or dropped. For ordering a
    /// slow key refresh against a key roll deterministically. Applies in [`Mode::Normal`]
    /// (and the modes that answer with the key set).
    pub fn hold_jwks_request(&self, n: usize) -> JwksHold {
        self.state().jwks_holds.add(n)
    }

    /// Discovery requests received (v1 and v2, any tenant, any answer, including [`Mode::Down`]).
    pub fn discovery_requests(&self) -> usize {
        self.state().discovery_requests.load(Ordering::SeqCst)
    }

    /// JWKS requests received (v1 and v2, any tenant, any answer, including [`Mode::Down`]).
    pub fn jwks_requests(&self) -> usize {
        self.state().jwks_requests.load(Ordering::SeqCst)
    }

    /// Sets every request counter back to zero (discovery, JWKS, the Graph and the managed
    /// identity counters) and clears [`graph_paths`](Self::graph_paths) and
    /// [`managed_identity_queries`](Self::managed_identity_queries).
    pub fn reset_counters(&self) {
        self.state().discovery_requests.store(0, Ordering::SeqCst);
        self.state().jwks_requests.store(0, Ordering::SeqCst);
        self.state().graph.reset_counters();
        self.state().identity.reset_counters();
    }

    /// Stops the server for every clone and waits until the port is closed: later requests
    /// fail to connect. Minting tokens keeps working. Dropping the last clone also stops it.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let server = lock(&self.shared.server).take();
        if let Some(server) = server {
            // A JoinError here means the server task panicked or was cancelled: either way
            // it is gone, which is all shutdown promises.
            let _ = server.await;
        }
    }
}

impl fmt::Debug for TestIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIdp")
            .field("authority", &self.state().authority)
            .field("tenant_id", &self.state().primary)
            .field("client_id", &self.state().client_id)
            .finish_non_exhaustive()
    }
}

/// `n` random bytes from the system RNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).expect("TestIdp: system RNG failed");
    bytes
}

/// A random version-4 GUID in lower case, the form Entra emits.
pub(crate) fn random_guid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn random_tenant() -> TenantId {
    TenantId::parse(&random_guid()).expect("random_guid makes GUIDs")
}

/// A random base64url string from `N` bytes (16 bytes give Entra's 22-character `uti`).
pub(crate) fn random_b64<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

#[cfg(test)]
mod tests;
