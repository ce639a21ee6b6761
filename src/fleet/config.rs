//! [`Fleet`] and its [`FleetBuilder`]: where Redis is, the fleet key, the namespace and
//! the timings. Building checks the settings; nothing touches the network until a
//! governor starts the fleet's tasks.

use std::sync::Arc;
use std::time::Duration;

use super::key::FleetKey;
use super::names::Names;
use super::shared::Shared;
use crate::error::ConfigError;

/// Key prefix in Redis unless [`FleetBuilder::namespace`] says otherwise.
pub const DEFAULT_NAMESPACE: &str = "entra-governor";
/// How often a replica checks in and looks for a newly published policy: 2 s.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// How often a replica re-reads the fleet's whole revocation set: 30 s.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(30);
/// Deadline of one Redis command (and of connecting): 1 s.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one read of the revocation stream waits for news: 1 s. While Redis answers,
/// a replica's view of the revocations is never older than this plus a round trip.
pub const REVOCATION_BLOCK: Duration = Duration::from_secs(1);

/// A handle on the fleet's shared state in Redis: give it to
/// [`GovernorBuilder::fleet`](crate::GovernorBuilder::fleet), and to
/// [`GraphGroupResolverBuilder::fleet`](crate::GraphGroupResolverBuilder::fleet) to share
/// Graph answers. Cheap to clone. `Debug` shows the Redis host, never a password or the key.
#[derive(Clone)]
pub struct Fleet {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shared.settings;
        f.debug_struct("Fleet")
            .field("redis", &s.shown_url)
            .field("namespace", &s.names.namespace())
            .field("replica_id", &s.replica_id)
            .field("strict_bound", &s.strict_bound)
            .finish_non_exhaustive()
    }
}

/// The settings of a [`Fleet`].
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) shown_url: String,
    pub(crate) names: Names,
    pub(crate) replica_id: String,
    pub(crate) heartbeat: Duration,
    pub(crate) resync: Duration,
    pub(crate) timeout: Duration,
    pub(crate) strict_bound: Option<Duration>,
}

/// Configuration of a [`Fleet`]; see [`Fleet::builder`].
#[must_use = "a builder does nothing until `build()` is called"]
pub struct FleetBuilder {
    url: String,
    key: FleetKey,
    namespace: String,
    replica_id: Option<String>,
    heartbeat: Duration,
    resync: Duration,
    timeout: Duration,
    strict_bound: Option<Duration>,
    allow_plaintext: bool,
    root_certificates: Option<Vec<u8>>,
}

impl std::fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("redis", &shown_url(&self.url))
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Starts a configuration: the Redis URL (`rediss://` for TLS; `redis://` only to a
    /// loopback host unless [`dangerous_allow_plaintext_redis`](FleetBuilder::dangerous_allow_plaintext_redis))
    /// and the fleet key, the same on every replica. A password or ACL user goes in the
    /// URL (`rediss://user:password@host:6380`) and is never shown.
    pub fn builder(redis_url: impl Into<String>, key: FleetKey) -> FleetBuilder {
        FleetBuilder {
            url: redis_url.into(),
            key,
            namespace: DEFAULT_NAMESPACE.into(),
            replica_id: None,
            heartbeat: DEFAULT_HEARTBEAT_INTERVAL,
            resync: DEFAULT_RESYNC_INTERVAL,
            timeout: DEFAULT_REDIS_TIMEOUT,
            strict_bound: None,
            allow_plaintext: false,
            root_certificates: None,
        }
    }

    /// This replica's id, as the fleet lists it.
    pub fn replica_id(&self) -> &str {
        &self.shared.settings.replica_id
    }
}

impl FleetBuilder {
    /// The prefix of every key the fleet writes (default [`DEFAULT_NAMESPACE`]): one
    /// namespace per service, so that two services sharing a Redis never share state.
    /// Letters, digits, `-`, `_` and `.`, at most 64.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// This replica's id in [`FleetStatus`](super::FleetStatus) (default: the host name,
    /// the process id and a random suffix). Printable ASCII, at most 128 bytes.
    pub fn replica_id(mut self, id: impl Into<String>) -> Self {
        self.replica_id = Some(id.into());
        self
    }

    /// How often the replica checks in and looks for a published policy (default 2 s;
    /// 100 ms to 60 s).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// How often the whole revocation set is read again (default 30 s; 1 s to 1 h).
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.resync = interval;
        self
    }

    /// Deadline of one Redis command (default 1 s; 10 ms to 30 s).
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Strict mode: refuse every token with 503
    /// ([`TokenError::RevocationViewStale`](crate::TokenError::RevocationViewStale)) while
    /// this replica's view of the fleet's revocations is older than `bound` (at least
    /// 2 s, twice the [`REVOCATION_BLOCK`]), including before its first catch-up. Off by
    /// default: decisions then continue from the local view, however old.
    pub fn strict(mut self, bound: Duration) -> Self {
        self.strict_bound = Some(bound);
        self
    }

    /// Trust these CA certificates (PEM) for `rediss://` instead of the system's roots:
    /// a Redis behind a private CA. The server's name must match its certificate.
    pub fn redis_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into());
        self
    }

    /// Allow plain `redis://` to a host that is not loopback. Dangerous: whoever is on
    /// the path can read the fleet's revocations and memberships, and drop revocations
    /// on their way (they cannot forge grants: those are sealed with the fleet key).
    pub fn dangerous_allow_plaintext_redis(mut self) -> Self {
        self.allow_plaintext = true;
        self
    }

    /// Checks the settings. No network access happens here.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRedisUrl`] or [`ConfigError::OutOfRange`].
    pub fn build(self) -> Result<Fleet, ConfigError> {
        let shown = shown_url(&self.url);
        check_url(&self.url, &shown, self.allow_plaintext)?;
        let client = client(&self.url, &shown, self.root_certificates)?;
        let names = Names::new(&self.namespace).ok_or(ConfigError::OutOfRange {
            setting: "namespace",
            reason: "1 to 64 letters, digits, '-', '_' or '.'",
        })?;
        let replica_id = match self.replica_id {
            Some(id) if valid_replica_id(&id) => id,
            Some(_) => {
                return Err(ConfigError::OutOfRange {
                    setting: "replica_id",
                    reason: "1 to 128 printable ASCII characters",
                });
            }
            None => default_replica_id(),
        };
        let (ms, secs) = (Duration::from_millis, Duration::from_secs);
        in_range(
            "heartbeat_interval",
            self.heartbeat,
            ms(100),
            secs(60),
            "100 ms to 60 s",
        )?;
        in_range(
            "resync_interval",
            self.resync,
            secs(1),
            secs(3600),
            "1 s to 1 h",
        )?;
        in_range(
            "redis_timeout",
            self.timeout,
            ms(10),
            secs(30),
            "10 ms to 30 s",
        )?;
        if let Some(bound) = self.strict_bound {
            in_range(
                "strict",
                bound,
                REVOCATION_BLOCK * 2,
                Duration::MAX,
                "at least 2 s",
            )?;
        }
        let settings = Settings {
            shown_url: shown,
            names,
            replica_id,
            heartbeat: self.heartbeat,
            resync: self.resync,
            timeout: self.timeout,
            strict_bound: self.strict_bound,
        };
        Ok(Fleet {
            shared: Arc::new(Shared::new(settings, self.key, client)),
        })
    }
}

/// The Redis client for `url`, trusting `roots` (PEM) instead of the system's if given.
fn client(url: &str, shown: &str, roots: Option<Vec<u8>>) -> Result<redis::Client, ConfigError> {
    let invalid = |reason| ConfigError::InvalidRedisUrl {
        shown: shown.to_owned(),
        reason,
    };
    match roots {
        None => redis::Client::open(url).map_err(|_| invalid("not a Redis URL")),
        Some(_) if !url.starts_with("rediss://") => {
            Err(invalid("root certificates are for rediss:// (TLS) only"))
        }
        Some(pem) => {
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            redis::Client::build_with_tls(url, certificates)
                .map_err(|_| invalid("the root certificates are not PEM certificates"))
        }
    }
}

fn in_range(
    setting: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
    reason: &'static str,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::OutOfRange { setting, reason });
    }
    Ok(())
}

/// `scheme://host:port` of a URL: what errors and `Debug` show (never the password).
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", u.scheme()),
            (Some(host), None) => format!("{}://{host}", u.scheme()),
            _ => format!("{}://", u.scheme()),
        },
        Err(_) => "<unparsable>".into(),
    }
}

fn check_url(url: &str, shown: &str, allow_plaintext: bool) -> Result<(), ConfigError> {
    let invalid = |reason| ConfigError::InvalidRedisUrl {
        shown: shown.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|_| invalid("not a URL"))?;
    let host = parsed.host().ok_or_else(|| invalid("no host"))?;
    match parsed.scheme() {
        "rediss" => Ok(()),
        "redis" if allow_plaintext || is_loopback(&host) => Ok(()),
        "redis" => Err(invalid(
            "plain redis:// is allowed only for loopback hosts: use rediss:// (TLS)",
        )),
        _ => Err(invalid("scheme must be rediss or redis")),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        // A non-special scheme's host is opaque to the URL parser: an address is a
        // "domain" here.
        url::Host::Domain(d) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn valid_replica_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// `{host}-{pid}-{random}`: unique across restarts and hosts.
fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| valid_replica_id(h) && h.len() <= 64)
        .unwrap_or_else(|| "replica".into());
    let mut random = [0u8; 4];
    let suffix = match aws_lc_rs::rand::fill(&mut random) {
        Ok(()) => u32::from_be_bytes(random),
        Err(_) => 0,
    };
    format!("{host}-{}-{suffix:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FleetKey {
        FleetKey::from_bytes(&[9; 32]).unwrap()
    }

    #[test]
    fn urls_are_checked_and_never_shown_with_their_password() {
        assert!(
            Fleet::builder("redis://127.0.0.1:6379", key())
                .build()
                .is_ok()
        );
        assert!(
            Fleet::builder("rediss://:pw@redis.internal:6380", key())
                .build()
                .is_ok()
        );
        let err = Fleet::builder("redis://:s3cret@redis.internal:6379", key())
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidRedisUrl {
                shown: "redis://redis.internal:6379".into(),
                reason: "plain redis:// is allowed only for loopback hosts: use rediss:// (TLS)",
            }
        );
        assert!(!err.to_string().contains("s3cret"));
        assert!(
            Fleet::builder("redis://:s3cret@redis.internal:6379", key())
                .dangerous_allow_plaintext_redis()
                .build()
                .is_ok()
        );
        let fleet = Fleet::builder("rediss://user:s3cret@redis.internal:6380", key())
            .build()
            .unwrap();
        let debug = format!("{fleet:?}");
        assert!(debug.contains("rediss://redis.internal:6380") && !debug.contains("s3cret"));
        for bad in ["http://127.0.0.1", "nope", "redis://"] {
            assert!(
                matches!(
                    Fleet::builder(bad, key()).build(),
                    Err(ConfigError::InvalidRedisUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn settings_are_bounded() {
        let b = || Fleet::builder("redis://127.0.0.1", key());
        let out = |setting, reason| ConfigError::OutOfRange { setting, reason };
        let cases = [
            (
                b().strict(Duration::from_secs(1)),
                out("strict", "at least 2 s"),
            ),
            (
                b().namespace("a b"),
                out("namespace", "1 to 64 letters, digits, '-', '_' or '.'"),
            ),
            (
                b().replica_id(""),
                out("replica_id", "1 to 128 printable ASCII characters"),
            ),
            (
                b().heartbeat_interval(Duration::ZERO),
                out("heartbeat_interval", "100 ms to 60 s"),
            ),
            (
                b().resync_interval(Duration::from_secs(7200)),
                out("resync_interval", "1 s to 1 h"),
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(builder.build().unwrap_err(), expected);
        }
        let fleet = b().replica_id("pod-7").build().unwrap();
        assert_eq!(fleet.replica_id(), "pod-7");
        assert!(b().build().unwrap().replica_id().len() > 10);
    }
}
