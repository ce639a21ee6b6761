//! Token verification: the envelope ([`jws`]), signing keys ([`keys`]), the payload
//! ([`claims`]) and the Entra rules ([`validate`]), run in this order:
//!
//! 1. size cap, before any decoding;
//! 2. exactly three base64url segments, no padding, canonical encoding;
//! 3. header JSON; `alg` must be `RS256` (never taken from the header); `kid` required;
//!    `crit` and key-bearing members (`jwk`, `jku`, `x5u`, `x5c`) refused;
//! 4. key lookup by `kid` (refreshing once on an unknown `kid`);
//! 5. signature;
//! 6. claims typed strictly; `exp`, `nbf`, `iat` with the clock skew;
//! 7. `ver` selects the issuer form; `iss` byte-exact; `tid` a GUID, allowed, the tenant in
//!    `iss`; the key bound to that issuer;
//! 8. `aud` one of ours; the calling app on the allow-list, if any;
//! 9. `scp` or `roles` present (unless ACL mode), then the [`Principal`] is built.

pub(crate) mod claims;
pub(crate) mod fetch;
pub(crate) mod jws;
pub(crate) mod keys;
pub(crate) mod validate;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::TokenError;
use crate::principal::Principal;
use keys::KeyStore;
use validate::{Rules, TenantRule};

/// Verifies tokens against one key source and one set of rules.
pub(crate) struct Verifier {
    pub(crate) rules: Rules,
    pub(crate) max_token_bytes: usize,
    pub(crate) keys: Arc<KeyStore>,
}

impl Verifier {
    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let compact = jws::parse(token, self.max_token_bytes)?;
        let key = self.keys.key(&compact.kid).await?;
        if !key.verify(compact.signing_input.as_bytes(), &compact.signature) {
            return Err(TokenError::InvalidSignature);
        }
        let payload = jws::decode_segment(compact.payload_b64, "payload is not valid base64url")?;
        let raw = claims::parse(&payload)?;
        let discovered = self.keys.discovered();
        let single = match self.rules.tenants {
            TenantRule::Single => discovered.as_ref().and_then(|d| d.tenant.as_ref()),
            _ => None,
        };
        validate::check(&self.rules, single, &key, raw, unix_now())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
