//! Managed identity: a Graph token from the platform's local identity endpoint, without
//! any credential in the process.
//!
//! - On VMs, scale sets, AKS nodes and Container Instances: the Azure Instance Metadata
//!   Service (IMDS), `GET http://169.254.169.254/metadata/identity/oauth2/token
//!   ?api-version=2018-02-01&resource={graph}` with the header `Metadata: true` (IMDS
//!   refuses requests without it, and requests with `X-Forwarded-For`, as a guard against
//!   server-side request forgery). A user-assigned identity is chosen by `client_id`,
//!   `object_id` or `msi_res_id`.
//! - On App Service, Functions and Container Apps: `GET {IDENTITY_ENDPOINT}
//!   ?api-version=2019-08-01&resource={graph}` with `X-IDENTITY-HEADER: {IDENTITY_HEADER}`
//!   (the platform's per-process secret, redacted everywhere); a user-assigned identity is
//!   chosen by `client_id`, `principal_id` or `mi_res_id`.
//!
//! # Why plain http is acceptable here, and only here
//! Both endpoints are served on the host itself and speak only http: IMDS at the
//! link-local address 169.254.169.254, which is answered by the hypervisor and never
//! routed off the host; App Service's endpoint on a loopback (or, in Linux containers, a
//! link-local) address of the sandbox. A network attacker cannot reach or intercept
//! either without already running on the host. So plain http is accepted for exactly
//! those hosts; any other plain-http endpoint is refused unless
//! `dangerous_allow_http_loopback()` is set and the host is a loopback address (a test
//! look-alike). Requests to them never go through a proxy (a proxy would see the token),
//! follow no redirect and must be answered by the host they were sent to.
//!
//! A managed identity is a service principal of one tenant: it gets tokens only for its
//! own tenant, so it resolves the groups of that tenant's principals only.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::ids::is_guid;

/// The IMDS token endpoint, the same in every Azure cloud.
pub(super) const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// The IMDS address.
const IMDS_HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// Which managed identity a token is asked for.
///
/// `SystemAssigned` is the resource's own identity; the others name one of its
/// user-assigned identities (none of these values is a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagedIdentityId {
    /// The system-assigned identity (or the only identity, when there is just one).
    SystemAssigned,
    /// A user-assigned identity by its client (application) id, a GUID.
    ClientId(String),
    /// A user-assigned identity by its object (principal) id, a GUID.
    ObjectId(String),
    /// A user-assigned identity by its Azure resource id,
    /// `/subscriptions/…/resourceGroups/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…`.
    ResourceId(String),
}

/// Which local endpoint, and what it needs.
pub(super) enum Endpoint {
    Imds,
    AppService {
        /// `IDENTITY_HEADER`: a secret of the platform. Never shown.
        header: String,
    },
}

/// A managed identity credential: the endpoint and the identity asked for.
pub(crate) struct ManagedIdentity {
    pub(super) url: String,
    pub(super) endpoint: Endpoint,
    pub(super) id: ManagedIdentityId,
}

impl ManagedIdentity {
    /// `imds` or `app_service`, for `Debug`.
    pub(super) fn source(&self) -> &'static str {
        match self.endpoint {
            Endpoint::Imds => "imds",
            Endpoint::AppService { .. } => "app_service",
        }
    }

    /// Checks the endpoint and the identity. See the module docs for plain http.
    pub(super) fn check(&self, allow_http_loopback: bool) -> Result<(), ConfigError> {
        let bad = |reason| Err(ConfigError::InvalidCredential { reason });
        let Ok(url) = Url::parse(&self.url) else {
            return bad("the managed identity endpoint is not a URL");
        };
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return bad(
                "the managed identity endpoint must not carry a query, fragment or credentials",
            );
        }
        match url.scheme() {
            "https" => {}
            "http" if self.on_host(&url) => {}
            "http" if allow_http_loopback && crate::cloud::is_loopback(&url) => {}
            "http" => {
                return bad(match self.endpoint {
                    Endpoint::Imds => {
                        "plain http to a managed identity endpoint is allowed only for IMDS \
                         (169.254.169.254), or a loopback test server with \
                         dangerous_allow_http_loopback()"
                    }
                    Endpoint::AppService { .. } => {
                        "plain http to a managed identity endpoint is allowed only for a \
                         loopback or link-local host, as App Service sets IDENTITY_ENDPOINT"
                    }
                });
            }
            _ => return bad("the managed identity endpoint's scheme must be http or https"),
        }
        if let Endpoint::AppService { header } = &self.endpoint {
            let valid = !header.is_empty()
                && header.len() <= 1024
                && header.bytes().all(|b| b.is_ascii_graphic());
            if !valid {
                return bad("IDENTITY_HEADER is empty or not a valid header value");
            }
        }
        match &self.id {
            ManagedIdentityId::SystemAssigned => Ok(()),
            ManagedIdentityId::ClientId(id) | ManagedIdentityId::ObjectId(id) if is_guid(id) => {
                Ok(())
            }
            ManagedIdentityId::ClientId(_) => {
                bad("the user-assigned identity's client id is not a GUID")
            }
            ManagedIdentityId::ObjectId(_) => {
                bad("the user-assigned identity's object id is not a GUID")
            }
            ManagedIdentityId::ResourceId(id) => {
                let valid = id.len() <= 1024
                    && id
                        .get(..15)
                        .is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions/"))
                    && id.bytes().all(|b| b.is_ascii_graphic());
                if valid {
                    Ok(())
                } else {
                    bad("the user-assigned identity's resource id is not an Azure resource id")
                }
            }
        }
    }

    /// Plain http is the nature of the endpoint: IMDS's link-local address, or App
    /// Service's loopback or link-local one.
    fn on_host(&self, url: &Url) -> bool {
        match (&self.endpoint, url.host()) {
            (Endpoint::Imds, Some(url::Host::Ipv4(ip))) => ip == IMDS_HOST,
            (Endpoint::Imds, _) => false,
            (Endpoint::AppService { .. }, Some(url::Host::Ipv4(ip))) => {
                IpAddr::V4(ip).is_loopback() || ip.is_link_local()
            }
            (Endpoint::AppService { .. }, _) => crate::cloud::is_loopback(url),
        }
    }

    /// The request URL for a token for `resource` (the cloud's Graph base, no
    /// `/.default`): the endpoint, the api-version, the resource and the identity.
    pub(crate) fn token_url(&self, resource: &str) -> Result<Url, &'static str> {
        let mut url =
            Url::parse(&self.url).map_err(|_| "the managed identity endpoint is not a URL")?;
        let (version, object_id, resource_id) = match self.endpoint {
            Endpoint::Imds => (IMDS_API_VERSION, "object_id", "msi_res_id"),
            Endpoint::AppService { .. } => (APP_SERVICE_API_VERSION, "principal_id", "mi_res_id"),
        };
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("api-version", version)
                .append_pair("resource", resource);
            match &self.id {
                ManagedIdentityId::SystemAssigned => {}
                ManagedIdentityId::ClientId(id) => {
                    query.append_pair("client_id", id);
                }
                ManagedIdentityId::ObjectId(id) => {
                    query.append_pair(object_id, id);
                }
                ManagedIdentityId::ResourceId(id) => {
                    query.append_pair(resource_id, id);
                }
            }
        }
        Ok(url)
    }

    /// The GET of `url` with the endpoint's header. Holds the identity header: never log
    /// it.
    pub(crate) fn request(&self, client: &reqwest::Client, url: &Url) -> reqwest::RequestBuilder {
        let request = client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.endpoint {
            Endpoint::Imds => request.header("Metadata", "true"),
            Endpoint::AppService { header } => request.header("X-IDENTITY-HEADER", header.as_str()),
        }
    }
}

/// A number of seconds, as IMDS (a string) or some App Service hosts (a number) send it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn get(&self) -> Option<u64> {
        match self {
            Seconds::Number(n) => Some(*n),
            Seconds::Text(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct IdentityAnswer {
    access_token: String,
    #[serde(default)]
    expires_on: Option<Seconds>,
    #[serde(default)]
    expires_in: Option<Seconds>,
}

/// The access token and its remaining life from a managed identity endpoint's answer at
/// `now` (Unix seconds): `expires_on` (Unix seconds, string or number) first, else
/// `expires_in`. `None` for anything unusable: no token, no parsable expiry, or already
/// expired.
pub(crate) fn parse_identity_answer(body: &[u8], now: u64) -> Option<(String, Duration)> {
    let answer: IdentityAnswer = serde_json::from_slice(body).ok()?;
    if answer.access_token.is_empty() {
        return None;
    }
    let life = match answer.expires_on.as_ref().and_then(Seconds::get) {
        Some(on) => on.checked_sub(now)?,
        None => answer.expires_in.as_ref().and_then(Seconds::get)?,
    };
    (life > 0).then(|| (answer.access_token, Duration::from_secs(life)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imds(url: &str, id: ManagedIdentityId) -> ManagedIdentity {
        ManagedIdentity {
            url: url.into(),
            endpoint: Endpoint::Imds,
            id,
        }
    }

    fn app_service(url: &str) -> ManagedIdentity {
        ManagedIdentity {
            url: url.into(),
            endpoint: Endpoint::AppService {
                header: "f0e1d2c3".into(),
            },
            id: ManagedIdentityId::SystemAssigned,
        }
    }

    #[test]
    fn expiry_is_read_from_expires_on_or_expires_in() {
        let now = 1_700_000_000;
        let imds = br#"{"access_token":"t","expires_in":"86399","expires_on":"1700003600","resource":"https://graph.microsoft.com","token_type":"Bearer"}"#;
        assert_eq!(
            parse_identity_answer(imds, now),
            Some(("t".into(), Duration::from_secs(3600)))
        );
        let number = br#"{"access_token":"t","expires_on":1700000060}"#;
        assert_eq!(
            parse_identity_answer(number, now),
            Some(("t".into(), Duration::from_secs(60)))
        );
        let only_in = br#"{"access_token":"t","expires_in":120}"#;
        assert_eq!(
            parse_identity_answer(only_in, now),
            Some(("t".into(), Duration::from_secs(120)))
        );
        for unusable in [
            &br#"{"access_token":"t","expires_on":"1699999999"}"#[..],
            br#"{"access_token":"t","expires_on":"09/14/2017 00:00:00 PM +00:00"}"#,
            br#"{"access_token":"t"}"#,
            br#"{"access_token":"","expires_in":60}"#,
            br#"{"access_token":"t","expires_in":"-5"}"#,
            b"not json",
        ] {
            assert_eq!(parse_identity_answer(unusable, now), None);
        }
    }

    #[test]
    fn query_names_the_api_version_resource_and_identity() {
        let id = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
        let url = imds(IMDS_ENDPOINT, ManagedIdentityId::ObjectId(id.into()))
            .token_url("https://graph.microsoft.com")
            .unwrap();
        assert_eq!(
            url.as_str(),
            format!(
                "{IMDS_ENDPOINT}?api-version=2018-02-01\
                 &resource=https%3A%2F%2Fgraph.microsoft.com&object_id={id}"
            )
        );
        let mut service = app_service("http://127.0.0.1:41741/msi/token");
        service.id = ManagedIdentityId::ResourceId("/subscriptions/s/x".into());
        assert_eq!(
            service
                .token_url("https://graph.microsoft.us")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:41741/msi/token?api-version=2019-08-01\
             &resource=https%3A%2F%2Fgraph.microsoft.us&mi_res_id=%2Fsubscriptions%2Fs%2Fx"
        );
    }

    #[test]
    fn plain_http_only_for_the_local_endpoints() {
        let system = ManagedIdentityId::SystemAssigned;
        assert_eq!(imds(IMDS_ENDPOINT, system.clone()).check(false), Ok(()));
        assert_eq!(
            app_service("http://127.0.0.1:41741/msi/token").check(false),
            Ok(())
        );
        assert_eq!(
            app_service("http://localhost:8081/msi/token").check(false),
            Ok(())
        );
        assert_eq!(
            app_service("http://169.254.255.2:8081/msi/token").check(false),
            Ok(())
        );
        assert_eq!(
            app_service("https://identity.example/msi/token").check(false),
            Ok(())
        );
        let refused = |m: ManagedIdentity, allow| match m.check(allow) {
            Err(ConfigError::InvalidCredential { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(
            refused(
                imds(
                    "http://10.0.0.4/metadata/identity/oauth2/token",
                    system.clone()
                ),
                true
            )
            .starts_with("plain http to a managed identity endpoint is allowed only for IMDS")
        );
        assert!(
            refused(imds("http://127.0.0.1:9/token", system.clone()), false)
                .starts_with("plain http to a managed identity endpoint is allowed only for IMDS")
        );
        assert_eq!(
            imds("http://127.0.0.1:9/token", system.clone()).check(true),
            Ok(())
        );
        assert!(
            refused(app_service("http://identity.example/msi/token"), true)
                .contains("loopback or link-local")
        );
        assert_eq!(
            refused(
                imds("http://169.254.169.254/x?api-version=1", system.clone()),
                false
            ),
            "the managed identity endpoint must not carry a query, fragment or credentials"
        );
        assert_eq!(
            refused(
                imds(IMDS_ENDPOINT, ManagedIdentityId::ClientId("me".into())),
                false
            ),
            "the user-assigned identity's client id is not a GUID"
        );
        assert_eq!(
            refused(
                imds(IMDS_ENDPOINT, ManagedIdentityId::ResourceId("/x y".into())),
                false
            ),
            "the user-assigned identity's resource id is not an Azure resource id"
        );
        let mut service = app_service("http://127.0.0.1:41741/msi/token");
        service.endpoint = Endpoint::AppService {
            header: "two\nlines".into(),
        };
        assert_eq!(
            refused(service, false),
            "IDENTITY_HEADER is empty or not a valid header value"
        );
    }
}
