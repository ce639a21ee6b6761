//! [`ClientCredential`]: how the API's own application proves itself to the token endpoint,
//! or how it gets a Graph token without any secret at all.
//!
//! Four kinds: a client secret, a certificate (a signed client assertion), workload
//! identity federation (the AKS projected service-account token as the client assertion,
//! `workload_identity`) and a managed identity (IMDS or the App Service identity
//! endpoint, `managed_identity`). The last two keep no long-lived secret in the process.
//!
//! Secrets, private keys, federated tokens, identity headers and the assertions made from
//! them never reach a log line, an error or a `Debug` output: the `Debug` impl names the
//! kind of credential and its public parts (a certificate's thumbprint, a token file's
//! path, an identity endpoint) only.
//!
//! # Why not the `azure_identity` crate
//! Its credentials (checked at 1.0 / 1.1.0-beta.1) do not fit the resolver: a credential's
//! tenant is fixed when it is made and `TokenRequestOptions` cannot name another one, while
//! the resolver asks for a token in **each principal's** tenant (multi-tenant APIs); the
//! IMDS address is a constant that only its own unit tests can override, so it cannot be
//! exercised against a loopback look-alike; and its requests go through its own HTTP
//! pipeline, outside the resolver's body cap, redirect refusal, host pinning, time budget,
//! 429 holds and counters. Its licence (MIT) and TLS stack (reqwest 0.13 with rustls)
//! would have been acceptable. The two protocols are small, so they live here, on the
//! resolver's `reqwest` client.

mod managed_identity;
mod workload_identity;

use std::fmt;
use std::path::PathBuf;
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
use crate::ids::TenantId;

pub use managed_identity::ManagedIdentityId;
use managed_identity::{Endpoint, IMDS_ENDPOINT};
pub(crate) use managed_identity::{ManagedIdentity, parse_identity_answer};
use workload_identity::WorkloadIdentity;

/// Lifetime of a client assertion: Entra accepts up to 10 minutes; one request needs
/// seconds.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// The client credential of the API's app registration, for the client credentials grant,
/// or a managed identity.
///
/// `Debug` never shows the secret, the private key, the federated token or the identity
/// header.
#[derive(Clone)]
pub struct ClientCredential {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Secret(Arc<str>),
    Certificate(Arc<Certificate>),
    WorkloadIdentity(Arc<WorkloadIdentity>),
    ManagedIdentity(Arc<ManagedIdentity>),
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

    /// Workload identity federation with explicit values: the application (or
    /// user-assigned managed identity) whose federated identity credential trusts the
    /// cluster's OIDC issuer, its home tenant, and the projected service-account token
    /// file. Each token request reads the file afresh and sends its contents as
    /// `client_assertion` (`client_assertion_type`
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`) to the token endpoint of
    /// the principal's tenant, with this `client_id` (it wins over the resolver's). The
    /// resolver's `build()` refuses a client id that is not a GUID and a tenant that is not
    /// the resolver's own; the file is first read by the first token request.
    ///
    /// ```
    /// use entra_governor::Cloud;
    /// use entra_governor::graph::{ClientCredential, GraphGroupResolver};
    /// use entra_governor::testing::TestIdp;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let idp = TestIdp::start().await;
    /// // What the kubelet projects into the pod, registered at the look-alike.
    /// let file = std::env::temp_dir().join(format!("doc-federated-{}", std::process::id()));
    /// std::fs::write(&file, idp.mint_federated_token())?;
    ///
    /// let credential = ClientCredential::workload_identity(idp.client_id(), idp.tenant_id(), &file);
    /// let cloud = Cloud::custom(idp.authority());
    /// let resolver = GraphGroupResolver::builder(&cloud, idp.tenant_id(), idp.client_id(), credential)
    ///     .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
    ///     .build()?;
    /// resolver.prefetch_token().await?; // reads the file, exchanges it for a Graph token
    /// assert_eq!(idp.graph_token_requests(), 1);
    /// # std::fs::remove_file(&file)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn workload_identity(
        client_id: impl Into<String>,
        tenant: TenantId,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            kind: Kind::WorkloadIdentity(Arc::new(WorkloadIdentity {
                client_id: client_id.into(),
                tenant,
                authority_host: None,
                token_file: token_file.into(),
            })),
        }
    }

    /// Workload identity federation as the AKS webhook sets it up, from the environment
    /// variables the Azure SDKs read: `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`,
    /// `AZURE_TENANT_ID` and (optional) `AZURE_AUTHORITY_HOST`, which the resolver's
    /// `build()` requires to be its cloud's authority. See
    /// [`workload_identity`](Self::workload_identity).
    ///
    /// # Errors
    /// [`ConfigError::InvalidCredential`] naming the variable that is missing or invalid.
    pub fn workload_identity_from_env() -> Result<Self, ConfigError> {
        Self::workload_identity_from_vars(|name| std::env::var(name).ok())
    }

    /// [`workload_identity_from_env`](Self::workload_identity_from_env) over any lookup.
    pub(crate) fn workload_identity_from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            kind: Kind::WorkloadIdentity(Arc::new(WorkloadIdentity::from_vars(var)?)),
        })
    }

    /// A managed identity through the Azure Instance Metadata Service at
    /// `http://169.254.169.254` (VMs, scale sets, AKS nodes): `GET
    /// /metadata/identity/oauth2/token?api-version=2018-02-01&resource={graph}` with
    /// `Metadata: true`. A managed identity belongs to one tenant, the resolver's: lookups
    /// of principals of other tenants fail with
    /// [`GroupResolutionError::ForeignTenant`](super::GroupResolutionError::ForeignTenant)
    /// without a request.
    pub fn managed_identity(id: ManagedIdentityId) -> Self {
        Self::managed_identity_at(IMDS_ENDPOINT, id)
    }

    /// [`managed_identity`](Self::managed_identity) through IMDS at another token
    /// endpoint URL, e.g. a loopback look-alike (`TestIdp::imds_endpoint`). Plain http is
    /// accepted only for 169.254.169.254, or for a loopback host with the resolver's
    /// `dangerous_allow_http_loopback()`.
    ///
    /// ```
    /// use entra_governor::Cloud;
    /// use entra_governor::graph::{ClientCredential, GraphGroupResolver, ManagedIdentityId};
    /// use entra_governor::testing::TestIdp;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let idp = TestIdp::start().await;
    /// let credential =
    ///     ClientCredential::managed_identity_at(idp.imds_endpoint(), ManagedIdentityId::SystemAssigned);
    /// let cloud = Cloud::custom(idp.authority());
    /// let resolver = GraphGroupResolver::builder(&cloud, idp.tenant_id(), idp.client_id(), credential)
    ///     .dangerous_allow_http_loopback()
    ///     .build()?;
    /// resolver.prefetch_token().await?; // GET …/oauth2/token with `Metadata: true`
    /// assert_eq!((idp.imds_requests(), idp.graph_token_requests()), (1, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn managed_identity_at(imds_endpoint: impl Into<String>, id: ManagedIdentityId) -> Self {
        Self::managed_identity_with(imds_endpoint.into(), Endpoint::Imds, id)
    }

    /// A managed identity through the App Service / Functions / Container Apps identity
    /// endpoint: `GET {endpoint}?api-version=2019-08-01&resource={graph}` with
    /// `X-IDENTITY-HEADER: {identity_header}` (the platform's `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER`). Plain http is accepted for loopback and link-local hosts, where
    /// the platform serves it.
    pub fn managed_identity_app_service(
        endpoint: impl Into<String>,
        identity_header: impl Into<String>,
        id: ManagedIdentityId,
    ) -> Self {
        let endpoint_kind = Endpoint::AppService {
            header: identity_header.into(),
        };
        Self::managed_identity_with(endpoint.into(), endpoint_kind, id)
    }

    /// A managed identity from the environment: the App Service endpoint when
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set, IMDS when neither is.
    ///
    /// # Errors
    /// [`ConfigError::InvalidCredential`] when only one of the two is set.
    pub fn managed_identity_from_env(id: ManagedIdentityId) -> Result<Self, ConfigError> {
        Self::managed_identity_from_vars(|name| std::env::var(name).ok(), id)
    }

    /// [`managed_identity_from_env`](Self::managed_identity_from_env) over any lookup.
    pub(crate) fn managed_identity_from_vars(
        var: impl Fn(&str) -> Option<String>,
        id: ManagedIdentityId,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        match (get("IDENTITY_ENDPOINT"), get("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) => Ok(Self::managed_identity_app_service(
                endpoint.trim(),
                header.trim(),
                id,
            )),
            (None, None) => Ok(Self::managed_identity(id)),
            _ => Err(ConfigError::InvalidCredential {
                reason: "IDENTITY_ENDPOINT and IDENTITY_HEADER must be set together",
            }),
        }
    }

    fn managed_identity_with(url: String, endpoint: Endpoint, id: ManagedIdentityId) -> Self {
        Self {
            kind: Kind::ManagedIdentity(Arc::new(ManagedIdentity { url, endpoint, id })),
        }
    }

    /// The configuration problem with this credential, if any.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        match &self.kind {
            Kind::Secret(s) if s.trim().is_empty() => Some("the client secret is empty"),
            _ => None,
        }
    }

    /// Checks the credential against the resolver's settings: [`problem`](Self::problem),
    /// a workload identity's client id, tenant and authority host, a managed identity's
    /// endpoint (plain http rules) and identity.
    pub(crate) fn check(
        &self,
        authority: &str,
        home: &TenantId,
        allow_http_loopback: bool,
    ) -> Result<(), ConfigError> {
        if let Some(reason) = self.problem() {
            return Err(ConfigError::InvalidCredential { reason });
        }
        match &self.kind {
            Kind::WorkloadIdentity(identity) => identity.check(authority, home),
            Kind::ManagedIdentity(identity) => identity.check(allow_http_loopback),
            Kind::Secret(_) | Kind::Certificate(_) => Ok(()),
        }
    }

    /// The managed identity, when this credential is one: its tokens come from the local
    /// identity endpoint, not from the token endpoint.
    pub(crate) fn as_managed_identity(&self) -> Option<&ManagedIdentity> {
        match &self.kind {
            Kind::ManagedIdentity(identity) => Some(identity),
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
    ) -> Result<String, String> {
        // A federated credential may belong to another application than the resolver's
        // (a user-assigned identity's): its client id is the one Entra checks.
        let client_id = match &self.kind {
            Kind::WorkloadIdentity(identity) => identity.client_id.as_str(),
            _ => client_id,
        };
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
                form.append_pair("client_assertion_type", JWT_BEARER)
                    .append_pair("client_assertion", &assertion);
            }
            Kind::WorkloadIdentity(identity) => {
                // Read now, used once, dropped with the form: a rotated file is picked up
                // by the next request.
                let assertion = identity.assertion()?;
                form.append_pair("client_assertion_type", JWT_BEARER)
                    .append_pair("client_assertion", &assertion);
            }
            Kind::ManagedIdentity(_) => {
                return Err("a managed identity does not use the token endpoint".into());
            }
        }
        Ok(form.finish())
    }
}

/// `client_assertion_type` of a JWT client assertion (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl Certificate {
    /// A signed client assertion: `aud` the token endpoint, `iss` = `sub` = the client id,
    /// a random `jti`, valid from now for [`ASSERTION_LIFETIME_SECS`].
    fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<String, String> {
        let now = unix_now();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti)
            .map_err(|_| "the system random generator failed".to_owned())?;
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
            .map_err(|_| "the client assertion could not be signed".to_owned())?;
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
            Kind::WorkloadIdentity(identity) => f
                .debug_struct("ClientCredential::WorkloadIdentity")
                .field("client_id", &identity.client_id)
                .field("tenant", &identity.tenant)
                .field("authority_host", &identity.authority_host)
                .field("token_file", &identity.token_file)
                .finish_non_exhaustive(),
            Kind::ManagedIdentity(identity) => {
                let mut s = f.debug_struct("ClientCredential::ManagedIdentity");
                s.field("source", &identity.source())
                    .field("endpoint", &identity.url)
                    .field("identity", &identity.id);
                if let Endpoint::AppService { .. } = identity.endpoint {
                    s.field("identity_header", &format_args!("<redacted>"));
                }
                s.finish()
            }
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

    fn vars(table: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        |name| {
            table
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn workload_identity_form_carries_the_file_as_it_is_now() {
        let dir =
            std::env::temp_dir().join(format!("entra-governor-wi-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln\n").unwrap();
        let tenant = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        let own = "3f2a1b0c-0000-4000-8000-000000000001";
        let credential = ClientCredential::workload_identity(own, tenant, &file);
        let form = credential
            .token_request_form(CLIENT, ENDPOINT, "https://graph.microsoft.com/.default")
            .unwrap();
        assert_eq!(
            form,
            format!(
                "grant_type=client_credentials&client_id={own}\
                 &scope=https%3A%2F%2Fgraph.microsoft.com%2F.default\
                 &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
                 &client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
            )
        );
        // Rotated: the next form carries the new token, nothing of the old one.
        std::fs::write(&file, "eyJuZXcifQ.eyJzdWIiOiJiIn0.c2lnMg").unwrap();
        let form = credential
            .token_request_form(CLIENT, ENDPOINT, "https://graph.microsoft.com/.default")
            .unwrap();
        assert!(
            form.ends_with("&client_assertion=eyJuZXcifQ.eyJzdWIiOiJiIn0.c2lnMg"),
            "{form}"
        );
        let shown = format!("{credential:?} {credential:#?}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(
            shown.contains("WorkloadIdentity") && shown.contains(own),
            "{shown}"
        );

        std::fs::write(&file, "  \n").unwrap();
        let error = credential
            .token_request_form(CLIENT, ENDPOINT, "scope")
            .unwrap_err();
        assert_eq!(
            error,
            format!(
                "the federated token file {} does not hold a token",
                file.display()
            )
        );
        std::fs::write(&file, vec![b'a'; 64 * 1024 + 1]).unwrap();
        let error = credential
            .token_request_form(CLIENT, ENDPOINT, "scope")
            .unwrap_err();
        assert!(error.ends_with("is larger than 65536 bytes"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn workload_identity_reads_the_azure_sdk_variables() {
        let credential = ClientCredential::workload_identity_from_vars(vars(&[
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
            ("AZURE_CLIENT_ID", "3f2a1b0c-0000-4000-8000-000000000001"),
            ("AZURE_TENANT_ID", "72F988BF-86F1-41AF-91AB-2D7CD011DB47"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
        ]))
        .unwrap();
        let home = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        assert_eq!(
            credential.check("https://login.microsoftonline.com", &home, false),
            Ok(())
        );
        assert_eq!(
            credential.check("https://login.microsoftonline.us", &home, false),
            Err(ConfigError::InvalidCredential {
                reason: "AZURE_AUTHORITY_HOST is not the authority of the resolver's cloud"
            })
        );
        let missing = |table| match ClientCredential::workload_identity_from_vars(vars(table)) {
            Err(ConfigError::InvalidCredential { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(missing(&[]).starts_with("AZURE_FEDERATED_TOKEN_FILE is not set"));
        assert_eq!(
            missing(&[
                ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
                ("AZURE_TENANT_ID", "x")
            ]),
            "AZURE_CLIENT_ID is not set"
        );
        assert_eq!(
            missing(&[
                ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
                ("AZURE_CLIENT_ID", "3f2a1b0c-0000-4000-8000-000000000001"),
                ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
            ]),
            "AZURE_TENANT_ID is not a tenant GUID"
        );
    }

    #[test]
    fn managed_identity_comes_from_the_platform_variables_and_debug_redacts_the_header() {
        let header = "9f8e7d6c5b4a39282716";
        let credential = ClientCredential::managed_identity_from_vars(
            |name| match name {
                "IDENTITY_ENDPOINT" => Some("http://127.0.0.1:41741/msi/token".into()),
                "IDENTITY_HEADER" => Some(header.into()),
                _ => None,
            },
            ManagedIdentityId::SystemAssigned,
        )
        .unwrap();
        let shown = format!("{credential:?} {credential:#?}");
        assert!(!shown.contains(header), "{shown}");
        assert!(
            shown.contains("app_service") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(
            credential
                .token_request_form(CLIENT, ENDPOINT, "s")
                .is_err()
        );

        let imds = ClientCredential::managed_identity_from_vars(
            |_| None,
            ManagedIdentityId::SystemAssigned,
        )
        .unwrap();
        assert!(
            format!("{imds:?}").contains("http://169.254.169.254/metadata/identity/oauth2/token")
        );
        assert_eq!(
            ClientCredential::managed_identity_from_vars(
                |name| (name == "IDENTITY_HEADER").then(|| header.to_owned()),
                ManagedIdentityId::SystemAssigned,
            )
            .unwrap_err(),
            ConfigError::InvalidCredential {
                reason: "IDENTITY_ENDPOINT and IDENTITY_HEADER must be set together"
            }
        );
    }
}
