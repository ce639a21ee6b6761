//! Signing keys: OIDC discovery, the JWKS, and a per-`kid` cache that follows Microsoft's
//! guidance for Entra key rotation.
//!
//! - Keys are cached by `kid`, parsed once into verification-ready public keys.
//! - An unknown `kid` triggers an immediate refresh, merged into a single fetch for all
//!   concurrent callers, and at most once per cooldown (default 5 minutes).
//! - Until a first good key set exists, a failed fetch may be retried after a short,
//!   doubling backoff (1 s up to 60 s), so a service that starts while Entra is
//!   unreachable recovers on its own. No token is accepted meanwhile.
//! - A refresh that fails, or yields no usable key, never replaces the last known good set.
//!   Individual entries that cannot be used are skipped: not RSA, `use` other than `sig`,
//!   an `alg` other than RS256, a modulus under 2048 bits, an exponent that is even or 1.
//! - Each key is bound to the issuer it is published for (its `issuer` member, or the
//!   discovered issuer), so a shared multi-tenant key set cannot vouch for another issuer.
//! - An optional periodic refresh (default every 12 hours, with up to 10% jitter) picks up
//!   rotations and drops removed keys; it stops when the last `Governor` clone is dropped.
//!   It runs beside the on-demand refreshes, not behind their lock: a result older than
//!   one already stored (a slow periodic fetch overtaken by an unknown-`kid` fetch after
//!   an emergency roll) is dropped, so a removed key never comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde::Deserialize;

use crate::error::{TokenError, excerpt};
use crate::fast_hash::FastBuildHasher;
use crate::fetch::{FetchError, Fetcher, host_of};
use crate::ids::TenantId;

const MIN_RSA_BITS: usize = 2048;
const BOOTSTRAP_BACKOFF_MIN: Duration = Duration::from_secs(1);
const BOOTSTRAP_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One verification-ready signing key.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    key: ParsedPublicKey,
    /// The modulus and exponent as published, to recognise the same key in a later JWKS.
    material: (Box<[u8]>, Box<[u8]>),
    /// The issuer this key vouches for; may hold the `{tenantid}` template.
    pub(crate) issuer: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over the signing input.
    pub(crate) fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(signing_input, signature).is_ok()
    }

    /// True when this key vouches for the issuer `expected` of tenant `tid`.
    #[cfg(test)]
    pub(crate) fn binds(&self, tid: &str, expected: &str) -> bool {
        self.binds_parts(tid, &[expected])
    }

    /// [`binds`](Self::binds) with the expected issuer given in pieces (concatenated).
    pub(crate) fn binds_parts(&self, tid: &str, expected: &[&str]) -> bool {
        match self.issuer.split_once("{tenantid}") {
            Some((pre, post)) => crate::cloud::concat_eq(&[pre, tid, post], expected),
            None => crate::cloud::concat_eq(&[&self.issuer], expected),
        }
    }
}

/// A parsed JWKS: usable keys by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    /// Key ids come from the identity provider's JWKS, never from callers: the fast
    /// seeded hash keeps lookups (every cache hit checks its key) cheap.
    by_kid: HashMap<String, Arc<SigningKey>, FastBuildHasher>,
}

impl KeySet {
    /// This set, with every key that `previous` holds under the same `kid`, material and
    /// issuer taken from `previous`: an unchanged key stays the same key, so the tokens
    /// it verified stay cached across a refresh.
    pub(crate) fn keeping_unchanged(mut self, previous: &KeySet) -> Self {
        for (kid, key) in &mut self.by_kid {
            if let Some(old) = previous.get(kid)
                && old.material == key.material
                && old.issuer == key.issuer
            {
                *key = Arc::clone(old);
            }
        }
        self
    }

    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: SigningKey) {
        self.by_kid.insert(key.kid.clone(), Arc::new(key));
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.by_kid.get(kid)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len()
    }

    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.by_kid.keys().map(String::as_str)
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: String,
    n: String,
    e: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    issuer: Option<String>,
}

/// Parses a JWKS, keeping only the entries that are usable RS256 signing keys.
pub(crate) fn parse_jwks(body: &[u8], default_issuer: &str) -> Option<KeySet> {
    let jwks: Jwks = serde_json::from_slice(body).ok()?;
    let mut set = KeySet::default();
    for entry in jwks.keys {
        match parse_jwk(entry, default_issuer) {
            Ok(key) => {
                set.by_kid
                    .entry(key.kid.clone())
                    .or_insert_with(|| Arc::new(key));
            }
            Err(why) => tracing::debug!(reason = why, "skipping a JWKS entry"),
        }
    }
    Some(set)
}

pub(crate) fn parse_jwk(
    entry: serde_json::Value,
    default_issuer: &str,
) -> Result<SigningKey, &'static str> {
    let jwk: Jwk = serde_json::from_value(entry).map_err(|_| "not an RSA JWK")?;
    if jwk.kty != "RSA" {
        return Err("not an RSA key");
    }
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("not a signing key");
    }
    if jwk.alg.as_deref().is_some_and(|a| a != "RS256") {
        return Err("not an RS256 key");
    }
    if jwk.kid.is_empty() {
        return Err("empty kid");
    }
    let n = decode_uint(&jwk.n).ok_or("modulus is not base64url")?;
    let e = decode_uint(&jwk.e).ok_or("exponent is not base64url")?;
    if bit_len(&n) < MIN_RSA_BITS {
        return Err("modulus shorter than 2048 bits");
    }
    if e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
        return Err("exponent is not an odd number above 1 that fits 32 bits");
    }
    let key = RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| "not a valid RSA public key")?;
    Ok(SigningKey {
        kid: jwk.kid,
        key,
        material: (n.into(), e.into()),
        issuer: jwk.issuer.unwrap_or_else(|| default_issuer.to_owned()),
    })
}

/// Big-endian unsigned integer without leading zero bytes.
fn decode_uint(b64: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok()?;
    let start = bytes.iter().position(|b| *b != 0)?;
    Some(bytes[start..].to_vec())
}

fn bit_len(n: &[u8]) -> usize {
    n.first()
        .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize)
}

/// What the discovery document's `issuer` must be.
#[derive(Clone, Debug)]
pub(crate) enum ExpectedIssuer {
    /// Exactly this (a GUID tenant).
    Exact(String),
    /// `{prefix}{GUID}{suffix}`, the GUID being learnt (a domain tenant).
    AnyGuid { prefix: String, suffix: String },
}

/// What discovery told us.
#[derive(Clone, Debug)]
pub(crate) struct Discovered {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: Url,
    /// The tenant id, for a single tenant configured by GUID or domain.
    pub(crate) tenant: Option<TenantId>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// Static settings of a key source.
#[derive(Clone, Debug)]
pub(crate) struct KeySourceConfig {
    pub(crate) discovery_url: Url,
    pub(crate) expected_issuer: ExpectedIssuer,
    /// `scheme://host[:port]` origins the `jwks_uri` may point to.
    pub(crate) key_origins: Vec<String>,
    pub(crate) cooldown: Duration,
    pub(crate) refresh_interval: Option<Duration>,
}

/// When the key source was last refreshed successfully, and last failed to be.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RefreshTimes {
    /// The last refresh that fetched a usable key set (it confirmed the held keys).
    pub(crate) last_success: Option<Instant>,
    /// The last refresh that failed (the held keys were kept).
    pub(crate) last_failure: Option<Instant>,
}

struct RefreshState {
    last_unknown_kid_refresh: Option<Instant>,
    last_failure: Option<Instant>,
    failures: u32,
    last_error: Option<String>,
    refresher_started: bool,
}

/// Keys of one identity-provider source, readable without locks; refreshes are
/// single-flight behind an async mutex that readers of known keys never touch.
pub(crate) struct KeyStore {
    config: KeySourceConfig,
    fetcher: Fetcher,
    keys: ArcSwap<KeySet>,
    discovered: ArcSwapOption<Discovered>,
    state: tokio::sync::Mutex<RefreshState>,
    /// Numbers JWKS requests as they are sent. The periodic refresh does not take `state`'s lock
    /// (an unknown `kid` must not wait behind it), so a slow periodic fetch can end after
    /// a newer on-demand one: its older key set must then be dropped, not stored.
    jwks_requests_sent: AtomicU64,
    /// The number of the JWKS request whose key set is stored; held while storing.
    stored_request: Mutex<u64>,
    /// When refreshes (on demand and periodic) last succeeded and failed: for health
    /// reports, never for decisions.
    refreshes: Mutex<RefreshTimes>,
    /// Dropped with the store: tells the periodic refresher to stop.
    _stop: tokio::sync::watch::Sender<()>,
    stop_rx: tokio::sync::watch::Receiver<()>,
}

impl KeyStore {
    pub(crate) fn new(config: KeySourceConfig, fetcher: Fetcher) -> Arc<Self> {
        let (stop, stop_rx) = tokio::sync::watch::channel(());
        Arc::new(Self {
            config,
            fetcher,
            keys: ArcSwap::from_pointee(KeySet::default()),
            discovered: ArcSwapOption::empty(),
            state: tokio::sync::Mutex::new(RefreshState {
                last_unknown_kid_refresh: None,
                last_failure: None,
                failures: 0,
                last_error: None,
                refresher_started: false,
            }),
            jwks_requests_sent: AtomicU64::new(0),
            stored_request: Mutex::new(0),
            refreshes: Mutex::new(RefreshTimes::default()),
            _stop: stop,
            stop_rx,
        })
    }

    /// Installs keys and discovery results directly (unit tests without a server).
    #[cfg(test)]
    pub(crate) fn install(&self, set: KeySet, discovered: Discovered) {
        self.keys.store(Arc::new(set));
        self.discovered.store(Some(Arc::new(discovered)));
    }

    /// The discovery result, once known.
    pub(crate) fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovered.load_full()
    }

    /// The current key set for a short read, without touching its reference count.
    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// The current key set (lock-free).
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// The key for `kid`, refreshing once (single flight, cooldown) when it is unknown.
    pub(crate) async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<SigningKey>, TokenError> {
        if let Some(key) = self.keys.load().get(kid) {
            return Ok(key.clone());
        }
        let mut state = self.state.lock().await;
        // Someone else's refresh may have brought it while we waited.
        if let Some(key) = self.keys.load().get(kid) {
            return Ok(key.clone());
        }
        let have_keys = self.keys.load().len() > 0;
        if self.may_refresh(&state, have_keys) {
            self.refresh_locked(&mut state, have_keys).await;
        }
        if let Some(key) = self.keys.load().get(kid) {
            return Ok(key.clone());
        }
        if self.keys.load().len() == 0 {
            return Err(unavailable(&state));
        }
        Err(TokenError::UnknownKey { kid: excerpt(kid) })
    }

    /// Fetches keys now unless a fetch already failed within the backoff; for readiness
    /// checks and warm-up.
    pub(crate) async fn prefetch(self: &Arc<Self>) -> Result<usize, TokenError> {
        let mut state = self.state.lock().await;
        let have_keys = self.keys.load().len() > 0;
        if !have_keys && self.may_refresh(&state, false) {
            self.refresh_locked(&mut state, false).await;
        }
        match self.keys.load().len() {
            0 => Err(unavailable(&state)),
            n => Ok(n),
        }
    }

    fn may_refresh(&self, state: &RefreshState, have_keys: bool) -> bool {
        if have_keys {
            return state
                .last_unknown_kid_refresh
                .is_none_or(|t| t.elapsed() >= self.config.cooldown);
        }
        match state.last_failure {
            None => true,
            Some(t) => t.elapsed() >= bootstrap_backoff(state.failures),
        }
    }

    async fn refresh_locked(self: &Arc<Self>, state: &mut RefreshState, on_demand: bool) {
        if on_demand {
            state.last_unknown_kid_refresh = Some(Instant::now());
        }
        match self.fetch(false).await {
            Ok(()) => {
                state.failures = 0;
                state.last_failure = None;
                state.last_error = None;
                if !state.refresher_started {
                    state.refresher_started = self.start_refresher();
                }
            }
            Err(error) => {
                tracing::warn!(%error, "signing key refresh failed; keeping the last known good keys");
                state.failures = state.failures.saturating_add(1);
                state.last_failure = Some(Instant::now());
                state.last_error = Some(error);
            }
        }
    }

    /// When refreshes last succeeded and failed (a copy; no network).
    pub(crate) fn refresh_times(&self) -> RefreshTimes {
        *self
            .refreshes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`fetch_once`](Self::fetch_once), its outcome noted in [`refresh_times`](Self::refresh_times).
    async fn fetch(&self, rediscover: bool) -> Result<(), String> {
        let result = self.fetch_once(rediscover).await;
        crate::observe::jwks_fetched(result.is_ok());
        let now = Instant::now();
        let mut times = self
            .refreshes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if result.is_ok() {
            times.last_success = Some(now);
        } else {
            times.last_failure = Some(now);
        }
        drop(times);
        result
    }

    /// Discovery (when not yet known, or when `rediscover`) and the JWKS. Replaces the key
    /// set only with a non-empty parsed one, and only when no JWKS request sent later has
    /// stored its key set already.
    async fn fetch_once(&self, rediscover: bool) -> Result<(), String> {
        let discovered = match self.discovered.load_full() {
            Some(d) if !rediscover => d,
            _ => {
                let d = Arc::new(self.discover().await?);
                self.discovered.store(Some(d.clone()));
                d
            }
        };
        // Numbered as the JWKS request leaves: a later number read a later key set.
        let number = self.jwks_requests_sent.fetch_add(1, Ordering::SeqCst) + 1;
        let body = self
            .fetcher
            .get_bytes(&discovered.jwks_uri)
            .await
            .map_err(|e| e.to_string())?;
        let set = parse_jwks(&body, &discovered.issuer).ok_or_else(|| {
            format!(
                "{}: the JWKS is not valid JSON",
                host_of(&discovered.jwks_uri)
            )
        })?;
        if set.len() == 0 {
            return Err(format!(
                "{}: the JWKS holds no usable RS256 signing key",
                host_of(&discovered.jwks_uri)
            ));
        }
        let stored = self.store_if_newest(number, || {
            let set = set.keeping_unchanged(&self.keys.load());
            self.keys.store(Arc::new(set));
        });
        if !stored {
            tracing::debug!(
                "a newer key refresh finished first; dropping this one's older key set"
            );
        }
        Ok(())
    }

    /// Runs `store` for JWKS request `number` unless a request sent later already stored;
    /// true when it ran. Serialised, so two fetches never interleave their stores.
    fn store_if_newest(&self, number: u64, store: impl FnOnce()) -> bool {
        let mut stored = self
            .stored_request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *stored >= number {
            return false;
        }
        store();
        *stored = number;
        true
    }

    async fn discover(&self) -> Result<Discovered, String> {
        let url = &self.config.discovery_url;
        let meta: Metadata = self
            .fetcher
            .get_json(url)
            .await
            .map_err(|e: FetchError| e.to_string())?;
        let tenant = check_issuer(&self.config.expected_issuer, &meta.issuer)?;
        let jwks_uri = Url::parse(&meta.jwks_uri)
            .map_err(|_| "discovery document has an invalid jwks_uri".to_owned())?;
        let origin = jwks_uri.origin().ascii_serialization();
        if !self.config.key_origins.contains(&origin) {
            return Err(format!(
                "discovery jwks_uri points to {}, outside the authority",
                excerpt(&origin)
            ));
        }
        Ok(Discovered {
            issuer: meta.issuer,
            jwks_uri,
            tenant,
        })
    }

    /// Starts the periodic refresh task. True once nothing remains to start (started, or
    /// no interval configured); false without a runtime, so a later call retries.
    fn start_refresher(self: &Arc<Self>) -> bool {
        let Some(interval) = self.config.refresh_interval else {
            return true;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let mut stop = self.stop_rx.clone();
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(jittered(interval)) => {}
                    _ = stop.changed() => return,
                }
                let Some(store) = weak.upgrade() else { return };
                if let Err(error) = store.fetch(true).await {
                    tracing::warn!(%error, "periodic signing key refresh failed; keeping the last known good keys");
                }
            }
        });
        true
    }
}

fn bootstrap_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    (BOOTSTRAP_BACKOFF_MIN * 2u32.pow(exp)).min(BOOTSTRAP_BACKOFF_MAX)
}

/// `interval` plus up to 10% random jitter, so fleets do not refresh in lockstep.
fn jittered(interval: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    let fraction = match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    with_jitter(interval, fraction)
}

/// `interval` plus `fraction` (0 to 1) of 10% of it, without any arithmetic that can
/// panic: the builder bounds the interval, but the refresh task must not depend on it.
fn with_jitter(interval: Duration, fraction: f64) -> Duration {
    Duration::try_from_secs_f64(interval.as_secs_f64() * 0.1 * fraction)
        .ok()
        .and_then(|jitter| interval.checked_add(jitter))
        .unwrap_or(interval)
}

/// Checks the discovered issuer; returns the tenant id when the expectation names one.
fn check_issuer(expected: &ExpectedIssuer, found: &str) -> Result<Option<TenantId>, String> {
    let mismatch = || {
        format!(
            "discovery issuer {:?} is not the expected one",
            excerpt(found)
        )
    };
    match expected {
        ExpectedIssuer::Exact(issuer) if issuer == found => {
            let tenant = issuer_tenant(found);
            Ok(tenant)
        }
        ExpectedIssuer::Exact(_) => Err(mismatch()),
        ExpectedIssuer::AnyGuid { prefix, suffix } => found
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.strip_suffix(suffix.as_str()))
            .and_then(|guid| TenantId::parse(guid).ok())
            .map(Some)
            .ok_or_else(mismatch),
    }
}

/// No key is held: why, as the last refresh saw it.
fn unavailable(state: &RefreshState) -> TokenError {
    TokenError::KeysUnavailable {
        reason: state
            .last_error
            .clone()
            .unwrap_or_else(|| "no usable signing key published".into()),
    }
}

/// The GUID path segment of an issuer URL, if any (`https://host/{guid}/v2.0`).
pub(crate) fn issuer_tenant(issuer: &str) -> Option<TenantId> {
    issuer.split('/').find_map(|seg| TenantId::parse(seg).ok())
}

#[cfg(test)]
pub(crate) mod tests;
