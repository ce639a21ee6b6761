//! Token verification: the envelope (`jws`), signing keys (`keys`), the payload
//! (`claims`) and the Entra rules (`validate`), run in this order:
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
//! 8. `aud` one of ours; an access token, naming its calling app (`azp` in v2, `appid` in
//!    v1: ID tokens do not); that app on the allow-list, if any;
//! 9. `scp` or `roles` present (unless ACL mode), then the [`Principal`] is built.

pub(crate) mod cache;
pub(crate) mod claims;
pub(crate) mod config;
pub(crate) mod jws;
pub(crate) mod keys;
pub(crate) mod validate;

use std::sync::Arc;

use crate::clock::unix_now;
use crate::cloud::Cloud;
use crate::error::TokenError;
use crate::principal::Principal;
use keys::KeyStore;
use validate::{Rules, TenantRule};

/// Verifies tokens against one key source and one set of rules.
pub(crate) struct Verifier {
    pub(crate) rules: Rules,
    pub(crate) max_token_bytes: usize,
    pub(crate) keys: Arc<KeyStore>,
    /// Verified tokens, when the cache is enabled.
    pub(crate) verified: Option<cache::VerifiedTokens>,
    /// The request path's metric handles (shared with the governor).
    pub(crate) hot: crate::observe::Hot,
}

impl Verifier {
    /// Verifies a token, answering a repeat of a still-valid token from the cache.
    pub(crate) async fn verify(&self, token: &str) -> Result<Arc<Principal>, TokenError> {
        let now = unix_now();
        if let Some(cache) = &self.verified {
            let hit = cache.get(token, &self.keys.snapshot(), now);
            crate::observe::token_cache_lookup(&self.hot, hit.is_some());
            if let Some(principal) = hit {
                return Ok(principal);
            }
        }
        // Boxed: the cache hit above stays a small future for callers to move around.
        let started = crate::observe::Stopwatch::start();
        let verified = Box::pin(self.verify_fully(token, now)).await;
        crate::observe::token_verified(&self.hot, started);
        let (principal, key) = verified?;
        let principal = Arc::new(principal);
        if let Some(cache) = &self.verified {
            let evicted = cache.insert(token, principal.clone(), key, now);
            crate::observe::token_cache_evicted(&self.hot, evicted);
        }
        Ok(principal)
    }

    /// The Entra cloud tokens are checked against.
    pub(crate) fn cloud(&self) -> &Cloud {
        &self.rules.cloud
    }

    /// The accepted audiences, in order.
    pub(crate) fn audiences(&self) -> &[String] {
        &self.rules.audiences
    }

    /// The clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub(crate) fn skew_secs(&self) -> u64 {
        self.rules.skew_secs
    }

    /// Whether exactly one tenant is accepted (the governor maps this to the policy's
    /// `TenantScope`: the token stage does not know the policy).
    pub(crate) fn accepts_one_tenant(&self) -> bool {
        self.rules.tenants.accepts_one_tenant()
    }

    /// Fetches the signing keys now (if none are held yet) and returns how many are held.
    pub(crate) async fn prefetch_keys(&self) -> Result<usize, TokenError> {
        self.keys.prefetch().await
    }

    /// The key ids currently held, sorted.
    pub(crate) fn key_ids(&self) -> Vec<String> {
        let set = self.keys.current();
        let mut kids: Vec<String> = set.kids().map(str::to_owned).collect();
        kids.sort();
        kids
    }

    /// When the signing keys were last refreshed successfully, and last failed to be.
    pub(crate) fn key_refresh_times(&self) -> keys::RefreshTimes {
        self.keys.refresh_times()
    }

    /// How many verified tokens are cached (0 without a cache).
    pub(crate) fn cached_tokens(&self) -> u64 {
        self.verified
            .as_ref()
            .map_or(0, cache::VerifiedTokens::entry_count)
    }

    /// Bytes the verified-token cache counts against its budget (0 without a cache).
    pub(crate) fn cached_token_bytes(&self) -> u64 {
        self.verified
            .as_ref()
            .map_or(0, cache::VerifiedTokens::weighed_bytes)
    }

    async fn verify_fully(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(Principal, Arc<keys::SigningKey>), TokenError> {
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
        let principal = validate::check(&self.rules, single, &key, raw, now)?;
        Ok((principal, key))
    }
}

/// Runs the envelope parser (size cap, segments, base64url, header) and the claims parser
/// on arbitrary input, without keys or a network: the `token_parse` fuzz target's entry
/// point. Not part of the API; it only has to never panic.
#[doc(hidden)]
pub fn fuzz_parse(bytes: &[u8]) {
    if let Ok(token) = std::str::from_utf8(bytes)
        && let Ok(compact) = jws::parse(token, config::DEFAULT_MAX_TOKEN_BYTES)
        && let Ok(payload) = jws::decode_segment(compact.payload_b64, "payload")
    {
        let _ = claims::parse(&payload);
    }
    // The raw bytes as a payload too, so the fuzzer reaches the claims parser directly.
    let _ = claims::parse(bytes);
}

#[cfg(test)]
mod tests {
    //! A real RS256 token verified end to end without any cargo feature or server, so the
    //! crypto path is exercised in every feature combination CI builds.
    use super::*;
    use crate::cloud::Cloud;
    use crate::token::keys::{Discovered, KeySet, parse_jwk};
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const C: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    const O: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";

    fn sign(pair: &aws_lc_rs::rsa::KeyPair, header: &str, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn verifier(pair: &aws_lc_rs::rsa::KeyPair) -> Verifier {
        let cloud = Cloud::global();
        let pk = pair.public_key();
        let jwk = serde_json::json!({
            "kty": "RSA", "use": "sig", "kid": "k1",
            "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero()),
        });
        let mut set = KeySet::default();
        set.insert(parse_jwk(jwk, &cloud.v2_issuer(T)).unwrap());
        let v = config::VerifierSettings {
            tenant: Some(config::TenantChoice::Single(T.into())),
            client_id: Some(C.into()),
            token_cache_bytes: None,
            ..config::VerifierSettings::default()
        }
        .build()
        .unwrap();
        v.keys.install(
            set,
            Discovered {
                issuer: cloud.v2_issuer(T),
                jwks_uri: reqwest::Url::parse("https://login.microsoftonline.com/x").unwrap(),
                tenant: Some(crate::TenantId::parse(T).unwrap()),
            },
        );
        v
    }

    #[test]
    fn fuzz_parse_accepts_anything() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"exp":1,"roles":["a"]}"#);
        for input in [
            format!("{header}.{payload}.c2ln").into_bytes(),
            b"{\"tid\":\"a\",\"TID\":\"b\"}".to_vec(),
            vec![0xff; 64],
            Vec::new(),
        ] {
            fuzz_parse(&input);
        }
    }

    #[tokio::test]
    async fn verifies_a_real_rs256_token() {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let v = verifier(&pair);
        let now = unix_now();
        let claims = serde_json::json!({
            "aud": C, "iss": format!("https://login.microsoftonline.com/{T}/v2.0"),
            "iat": now, "nbf": now, "exp": now + 3600, "tid": T, "oid": O, "sub": "s",
            "azp": C, "azpacr": "0", "scp": "access_as_user", "ver": "2.0",
        });
        let token = sign(&pair, r#"{"typ":"JWT","alg":"RS256","kid":"k1"}"#, &claims);
        let p = v.verify(&token).await.unwrap();
        assert_eq!(p.object_id().as_str(), O);
        assert_eq!(p.scopes(), ["access_as_user"]);

        let i = token.find('.').unwrap() + 5;
        let mut tampered = token.clone().into_bytes();
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            v.verify(&tampered).await.unwrap_err(),
            TokenError::InvalidSignature
        );
        let other = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let forged = sign(&other, r#"{"typ":"JWT","alg":"RS256","kid":"k1"}"#, &claims);
        assert_eq!(
            v.verify(&forged).await.unwrap_err(),
            TokenError::InvalidSignature
        );
    }
}
