//! [`ClientCredential`]: how the API's own application proves itself to the token endpoint.
//!
//! Secrets, private keys and the assertions made from them never reach a log line, an
//! error or a `Debug` output: the `Debug` impl names the kind of credential (and, for a
//! certificate, its public thumbprint) only.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::clock::unix_now;
use crate::error::ConfigError;

/// Lifetime of a client assertion: Entra accepts up to 10 minutes; one request needs
/// seconds.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// The client credential of the API's app registration, for the client credentials grant.
///
/// `Debug` never shows the secret or the private key.
#[derive(Clone)]
pub struct ClientCredential {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Secret(Arc<str>),
    Certificate(Arc<Certificate>),
}

struct Certificate {
    key: KeyPair,
    /// `x5t#S256`: base64url SHA-256 of the certificate's DER encoding.
    thumbprint: String,
}

impl ClientCredential {
    /// A client secret (the secret's **value**, not its id). An empty secret is refused by
    /// the resolver's `build()`.
    pub fn secret(secret: impl Into<String>) -> Self {
        let secret: String = secret.into();
        Self {
            kind: Kind::Secret(secret.into()),
        }
    }

    /// A certificate credential: the RSA private key (PKCS#8 DER, at least 2048 bits) and
    /// the DER encoding of the X.509 certificate uploaded to the app registration. Each
    /// token request carries a fresh RS256 client assertion whose header names the
    /// certificate by its SHA-256 thumbprint (`x5t#S256`).
    ///
    /// # Errors
    /// [`ConfigError::InvalidCredential`] when the key is not an RSA PKCS#8 key of at least
    /// 2048 bits, or the certificate is empty.
    pub fn certificate(
        private_key_pkcs8_der: &[u8],
        certificate_der: &[u8],
    ) -> Result<Self, ConfigError> {
        let key = KeyPair::from_pkcs8(private_key_pkcs8_der).map_err(|_| {
            ConfigError::InvalidCredential {
                reason: "the private key is not an RSA key in PKCS#8 DER",
            }
        })?;
        if key.public_modulus_len() < 256 {
            return Err(ConfigError::InvalidCredential {
                reason: "the RSA key is shorter than 2048 bits",
            });
        }
        if certificate_der.is_empty() {
            return Err(ConfigError::InvalidCredential {
                reason: "the certificate is empty",
            });
        }
        let thumbprint =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, certificate_der).as_ref());
        Ok(Self {
            kind: Kind::Certificate(Arc::new(Certificate { key, thumbprint })),
        })
    }

    /// The configuration problem with this credential, if any.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        match &self.kind {
            Kind::Secret(s) if s.trim().is_empty() => Some("the client secret is empty"),
            _ => None,
        }
    }

    /// The form body of a client credentials request to `token_endpoint` for `scope`,
    /// `application/x-www-form-urlencoded`. Holds the credential: never log it.
    pub(crate) fn token_request_form(
        &self,
        client_id: &str,
        token_endpoint: &str,
        scope: &str,
    ) -> Result<String, &'static str> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("scope", scope);
        match &self.kind {
            Kind::Secret(secret) => {
                form.append_pair("client_secret", secret);
            }
            Kind::Certificate(cert) => {
                let assertion = cert.assertion(client_id, token_endpoint)?;
                form.append_pair(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .append_pair("client_assertion", &assertion);
            }
        }
        Ok(form.finish())
    }
}

impl Certificate {
    /// A signed client assertion: `aud` the token endpoint, `iss` = `sub` = the client id,
    /// a random `jti`, valid from now for [`ASSERTION_LIFETIME_SECS`].
    fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<String, &'static str> {
        let now = unix_now();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| "the system random generator failed")?;
        let header = json!({ "alg": "RS256", "typ": "JWT", "x5t#S256": self.thumbprint });
        let claims = json!({
            "aud": token_endpoint,
            "iss": client_id,
            "sub": client_id,
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "the client assertion could not be signed")?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Secret(_) => f.write_str("ClientCredential::Secret(<redacted>)"),
            Kind::Certificate(cert) => f
                .debug_struct("ClientCredential::Certificate")
                .field("x5t#S256", &cert.thumbprint)
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{self, KeyPair as _};

    use super::*;

    const SECRET: &str = "Xy7Q~super.secret-value_1234567890abcdef";
    const CLIENT: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    const ENDPOINT: &str =
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";

    #[test]
    fn debug_redacts_the_secret() {
        let credential = ClientCredential::secret(SECRET);
        let shown = format!("{credential:?} {credential:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn secret_form_is_the_client_credentials_grant() {
        let form = ClientCredential::secret("a&b=c")
            .token_request_form(CLIENT, ENDPOINT, "https://graph.microsoft.com/.default")
            .unwrap();
        assert_eq!(
            form,
            format!(
                "grant_type=client_credentials&client_id={CLIENT}\
                 &scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=a%26b%3Dc"
            )
        );
        assert_eq!(
            ClientCredential::secret(" ").problem(),
            Some("the client secret is empty")
        );
    }

    #[test]
    fn certificate_assertion_is_rs256_and_verifies() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        let cert = b"stand-in certificate DER";
        let credential = ClientCredential::certificate(pkcs8.as_ref(), cert).unwrap();
        let form = credential
            .token_request_form(CLIENT, ENDPOINT, "https://graph.microsoft.com/.default")
            .unwrap();
        let assertion = url::form_urlencoded::parse(form.as_bytes())
            .find(|(k, _)| k == "client_assertion")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert!(!form.contains("client_secret"));
        let parts: Vec<&str> = assertion.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let thumbprint = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, cert).as_ref());
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t#S256"], thumbprint.as_str());
        assert_eq!(claims["aud"], ENDPOINT);
        assert_eq!(claims["iss"], CLIENT);
        assert_eq!(claims["sub"], CLIENT);
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 22));
        let nbf = claims["nbf"].as_u64().unwrap();
        assert_eq!(
            claims["exp"].as_u64().unwrap(),
            nbf + ASSERTION_LIFETIME_SECS
        );
        let public = signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref(),
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(signed.as_bytes(), &signature).is_ok());
        let shown = format!("{credential:?}");
        assert!(shown.contains(&thumbprint) && !shown.contains(&assertion));
    }

    #[test]
    fn unusable_certificates_are_refused() {
        assert_eq!(
            ClientCredential::certificate(b"not a key", b"cert").unwrap_err(),
            ConfigError::InvalidCredential {
                reason: "the private key is not an RSA key in PKCS#8 DER"
            }
        );
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        assert_eq!(
            ClientCredential::certificate(pkcs8.as_ref(), b"").unwrap_err(),
            ConfigError::InvalidCredential {
                reason: "the certificate is empty"
            }
        );
    }
}
