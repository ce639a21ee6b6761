//! The fleet key: an HMAC-SHA256 key that every replica holds and Redis never sees.
//! Entries that could widen access (a Graph membership answer, a published policy) are
//! sealed with it before they are written and opened (verified) after they are read;
//! an entry that does not verify is ignored.
//!
//! A sealed entry is `v1.{mac}.{body}`, `mac` the base64url HMAC of the Redis key the
//! entry is stored under, a zero byte, and the body: an entry copied to another key (to
//! another principal, say) does not verify either.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ConfigError;

/// Shortest fleet key accepted, in bytes (256 bits, the HMAC-SHA256 output size).
pub const MIN_FLEET_KEY_BYTES: usize = 32;

const PREFIX: &str = "v1.";

/// The fleet's shared secret. `Debug` shows nothing of it; it is never logged, never
/// sent to Redis and never part of an error.
#[derive(Clone)]
pub struct FleetKey {
    key: hmac::Key,
}

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(<redacted>)")
    }
}

impl FleetKey {
    /// A key from raw bytes: at least [`MIN_FLEET_KEY_BYTES`] of them. Generate one with
    /// `openssl rand -base64 48` and give every replica the same.
    ///
    /// # Errors
    /// [`ConfigError::InvalidFleetKey`] when it is shorter.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() < MIN_FLEET_KEY_BYTES {
            return Err(ConfigError::InvalidFleetKey {
                reason: "shorter than 32 bytes",
            });
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        })
    }

    /// The key in the environment variable `name` (its bytes as written, surrounding
    /// whitespace removed).
    ///
    /// # Errors
    /// [`ConfigError::InvalidFleetKey`] when the variable is unset, not UTF-8 or too
    /// short. The error names the variable, never its value.
    pub fn from_env(name: &str) -> Result<Self, ConfigError> {
        let value = std::env::var(name).map_err(|e| ConfigError::InvalidFleetKey {
            reason: match e {
                std::env::VarError::NotPresent => "the environment variable is not set",
                std::env::VarError::NotUnicode(_) => "the environment variable is not UTF-8",
            },
        })?;
        Self::from_bytes(value.trim().as_bytes())
    }

    /// `body` sealed for storage under `redis_key`.
    pub(crate) fn seal(&self, redis_key: &str, body: &str) -> String {
        let tag = hmac::sign(&self.key, &signed_bytes(redis_key, body));
        format!("{PREFIX}{}.{body}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The body of an entry read from `redis_key`, if it was sealed there with this key.
    pub(crate) fn open<'a>(&self, redis_key: &str, sealed: &'a str) -> Option<&'a str> {
        let (mac, body) = sealed.strip_prefix(PREFIX)?.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        hmac::verify(&self.key, &signed_bytes(redis_key, body), &mac).ok()?;
        Some(body)
    }
}

fn signed_bytes(redis_key: &str, body: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(redis_key.len() + 1 + body.len());
    bytes.extend_from_slice(redis_key.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> FleetKey {
        FleetKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_sealed_entry_opens_only_with_its_key_under_its_redis_key() {
        let sealed = key(1).seal("ns:graph:m:a", r#"{"members":[]}"#);
        assert_eq!(
            key(1).open("ns:graph:m:a", &sealed),
            Some(r#"{"members":[]}"#)
        );
        assert_eq!(key(2).open("ns:graph:m:a", &sealed), None, "another key");
        assert_eq!(
            key(1).open("ns:graph:m:b", &sealed),
            None,
            "moved to another key"
        );
        let widened = sealed.replace("[]", r#"["g"]"#);
        assert_eq!(key(1).open("ns:graph:m:a", &widened), None, "body changed");
        for garbage in ["", "v1.", "v1..{}", "v2.AAAA.{}", "v1.!!!.{}", "plain"] {
            assert_eq!(key(1).open("ns:graph:m:a", garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn short_keys_are_refused_and_debug_shows_nothing() {
        assert_eq!(
            FleetKey::from_bytes(&[7; 31]).unwrap_err(),
            ConfigError::InvalidFleetKey {
                reason: "shorter than 32 bytes"
            }
        );
        assert_eq!(format!("{:?}", key(0x41)), "FleetKey(<redacted>)");
        assert_eq!(
            FleetKey::from_env("ENTRA_GOVERNOR_TEST_UNSET_FLEET_KEY").unwrap_err(),
            ConfigError::InvalidFleetKey {
                reason: "the environment variable is not set"
            }
        );
    }
}
