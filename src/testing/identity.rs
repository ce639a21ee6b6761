//! The secretless credentials side of [`TestIdp`]: federated (workload identity) client
//! assertions at the token endpoint, and look-alikes of the two managed identity
//! endpoints, on the same loopback server.
//!
//! - Workload identity: the token endpoint accepts a `client_assertion` without an
//!   `x5t#S256` header (not a certificate assertion) only when the test registered it
//!   ([`TestIdp::mint_federated_token`], [`TestIdp::register_federated_token`]) and has not
//!   revoked it ([`TestIdp::revoke_federated_token`]); anything else is refused like Entra
//!   refuses an assertion no federated identity credential matches: 401 `invalid_client`,
//!   `AADSTS70021`.
//! - IMDS: `GET /metadata/identity/oauth2/token` ([`TestIdp::imds_endpoint`]) needs the
//!   header `Metadata: true` (else 400 `invalid_request`, "Required metadata header not
//!   specified"), no `X-Forwarded-For`, `api-version=2018-02-01` and
//!   `resource={authority}` (the look-alike's Graph base), and optionally one of
//!   `client_id`, `object_id`, `msi_res_id` naming the user-assigned identity
//!   ([`TestIdp::user_assigned_client_id`] and friends; else 400 "Identity not found").
//!   Answers as IMDS does, every number a string: `{"access_token","expires_in",
//!   "expires_on","not_before","resource","token_type":"Bearer","client_id"}`.
//! - App Service: `GET /msi/token` ([`TestIdp::app_service_identity_endpoint`]) needs
//!   `X-IDENTITY-HEADER` = [`TestIdp::app_service_identity_header`] (else 401),
//!   `api-version=2019-08-01`, the same `resource`, and optionally `client_id`,
//!   `principal_id` or `mi_res_id`. Answers `expires_on` as a number (as Container Apps
//!   does) and no `expires_in`.
//!
//! Tokens from both endpoints are Graph tokens of the primary tenant, valid for
//! [`TestIdp::set_graph_token_lifetime`]. Requests are counted whatever the answer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::keys::RsaKey;
use super::respond::{error_response, json_response};
use super::{State, TestIdp, lock, random_b64, random_guid};

const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
const APP_SERVICE_PATH: &str = "/msi/token";

/// The identity look-alikes' state, inside the idp's [`State`].
pub(crate) struct IdentityState {
    /// Federated tokens the test registered and has not revoked.
    federated: Mutex<HashSet<String>>,
    /// Signs minted federated tokens, like a cluster's service-account issuer.
    cluster_key: OnceLock<Arc<RsaKey>>,
    /// The App Service `IDENTITY_HEADER`.
    identity_header: String,
    client_id: String,
    object_id: String,
    resource_id: String,
    imds_requests: AtomicUsize,
    app_service_requests: AtomicUsize,
    queries: Mutex<Vec<String>>,
}

impl IdentityState {
    pub(crate) fn new() -> IdentityState {
        let subscription = random_guid();
        IdentityState {
            federated: Mutex::new(HashSet::new()),
            cluster_key: OnceLock::new(),
            identity_header: random_b64::<24>(),
            client_id: random_guid(),
            object_id: random_guid(),
            resource_id: format!(
                "/subscriptions/{subscription}/resourceGroups/ai/providers/\
                 Microsoft.ManagedIdentity/userAssignedIdentities/entra-governor"
            ),
            imds_requests: AtomicUsize::new(0),
            app_service_requests: AtomicUsize::new(0),
            queries: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn reset_counters(&self) {
        self.imds_requests.store(0, Ordering::SeqCst);
        self.app_service_requests.store(0, Ordering::SeqCst);
        lock(&self.queries).clear();
    }
}

impl TestIdp {
    /// Mints a federated token the way a Kubernetes cluster projects one into a pod (an
    /// RS256 JWT from the cluster's issuer, `aud` `api://AzureADTokenExchange`, `sub`
    /// `system:serviceaccount:ai:entra-governor`, valid for an hour) and registers it:
    /// the token endpoint accepts it as the `client_assertion` of [`client_id`](Self::client_id)
    /// until it is revoked. Each call makes a different token.
    pub fn mint_federated_token(&self) -> String {
        let identity = &self.state().identity;
        let key = identity
            .cluster_key
            .get_or_init(|| Arc::new(RsaKey::generate()))
            .clone();
        let now = crate::clock::unix_now();
        let header = json!({ "alg": "RS256", "kid": key.kid() });
        let claims = json!({
            "aud": ["api://AzureADTokenExchange"],
            "iss": format!("{}/oidc/cluster/", self.state().authority),
            "sub": "system:serviceaccount:ai:entra-governor",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": random_b64::<16>(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()))
        );
        self.register_federated_token(&token);
        token
    }

    /// Accepts `token` as a federated client assertion of [`client_id`](Self::client_id)
    /// from now on (a token made elsewhere, e.g. a fixed string).
    pub fn register_federated_token(&self, token: &str) {
        lock(&self.state().identity.federated).insert(token.to_owned());
    }

    /// Stops accepting `token` (a rotated-out or revoked federated token): the token
    /// endpoint answers `invalid_client` (`AADSTS70021`) to it from now on.
    pub fn revoke_federated_token(&self, token: &str) {
        lock(&self.state().identity.federated).remove(token);
    }

    /// The IMDS look-alike's token endpoint, `{authority}/metadata/identity/oauth2/token`
    /// (for `ClientCredential::managed_identity_at`).
    pub fn imds_endpoint(&self) -> String {
        format!("{}{IMDS_PATH}", self.state().authority)
    }

    /// The App Service identity endpoint look-alike, `{authority}/msi/token` (what the
    /// platform puts in `IDENTITY_ENDPOINT`).
    pub fn app_service_identity_endpoint(&self) -> String {
        format!("{}{APP_SERVICE_PATH}", self.state().authority)
    }

    /// The App Service `IDENTITY_HEADER` the look-alike expects in `X-IDENTITY-HEADER`;
    /// random per idp.
    pub fn app_service_identity_header(&self) -> String {
        self.state().identity.identity_header.clone()
    }

    /// The client id of the one user-assigned identity the look-alikes know.
    pub fn user_assigned_client_id(&self) -> String {
        self.state().identity.client_id.clone()
    }

    /// The object (principal) id of the user-assigned identity.
    pub fn user_assigned_object_id(&self) -> String {
        self.state().identity.object_id.clone()
    }

    /// The Azure resource id of the user-assigned identity.
    pub fn user_assigned_resource_id(&self) -> String {
        self.state().identity.resource_id.clone()
    }

    /// Requests received by the IMDS look-alike (any answer).
    pub fn imds_requests(&self) -> usize {
        self.state().identity.imds_requests.load(Ordering::SeqCst)
    }

    /// Requests received by the App Service identity endpoint look-alike (any answer).
    pub fn app_service_identity_requests(&self) -> usize {
        self.state()
            .identity
            .app_service_requests
            .load(Ordering::SeqCst)
    }

    /// The query strings of every managed identity request received, in order (never a
    /// header).
    pub fn managed_identity_queries(&self) -> Vec<String> {
        lock(&self.state().identity.queries).clone()
    }
}

/// Whether `assertion` is a certificate assertion (its header names a thumbprint): those
/// are checked against the registered certificate, the others as federated tokens.
pub(crate) fn is_certificate_assertion(assertion: &str) -> bool {
    assertion
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .is_some_and(|h| h.get("x5t#S256").is_some() || h.get("x5t").is_some())
}

/// Checks a federated client assertion: registered and not revoked.
pub(crate) fn check_federated(state: &State, assertion: &str) -> Result<(), (u32, &'static str)> {
    if lock(&state.identity.federated).contains(assertion) {
        Ok(())
    } else {
        Err((
            70021,
            "No matching federated identity record found for presented assertion.",
        ))
    }
}

/// A managed identity endpoint look-alike.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Imds,
    AppService,
}

/// Matches `GET /metadata/identity/oauth2/token` and `GET /msi/token`.
pub(crate) fn route(method: &Method, path: &str) -> Option<Route> {
    if method != Method::GET {
        return None;
    }
    match path {
        IMDS_PATH => Some(Route::Imds),
        APP_SERVICE_PATH => Some(Route::AppService),
        _ => None,
    }
}

fn invalid_request(status: StatusCode, description: &str) -> Response<Full<Bytes>> {
    error_response(status, "invalid_request", description)
}

pub(crate) fn answer(
    route: Route,
    req: &Request<Incoming>,
    state: &State,
) -> Response<Full<Bytes>> {
    let identity = &state.identity;
    match route {
        Route::Imds => &identity.imds_requests,
        Route::AppService => &identity.app_service_requests,
    }
    .fetch_add(1, Ordering::SeqCst);
    let query = req.uri().query().unwrap_or_default().to_owned();
    lock(&identity.queries).push(query.clone());
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let (version, object_id, resource_id) = match route {
        Route::Imds => {
            if header("Metadata") != Some("true") {
                return invalid_request(
                    StatusCode::BAD_REQUEST,
                    "Required metadata header not specified",
                );
            }
            if req.headers().contains_key("X-Forwarded-For") {
                return invalid_request(
                    StatusCode::BAD_REQUEST,
                    "Request contains the X-Forwarded-For header",
                );
            }
            ("2018-02-01", "object_id", "msi_res_id")
        }
        Route::AppService => {
            if header("X-IDENTITY-HEADER") != Some(identity.identity_header.as_str()) {
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "X-IDENTITY-HEADER is missing or wrong.",
                );
            }
            ("2019-08-01", "principal_id", "mi_res_id")
        }
    };
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("api-version") != Some(version) {
        return invalid_request(StatusCode::BAD_REQUEST, "Invalid or missing api-version");
    }
    if param("resource") != Some(state.authority.as_str()) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            "AADSTS500011: The resource principal was not found in the tenant.",
        );
    }
    let selectors = [
        (param("client_id"), identity.client_id.as_str()),
        (param(object_id), identity.object_id.as_str()),
        (param(resource_id), identity.resource_id.as_str()),
    ];
    let named: Vec<_> = selectors
        .iter()
        .filter(|(given, _)| given.is_some())
        .collect();
    let (client_id, known) = match named.as_slice() {
        [] => (random_guid(), true),
        [(Some(given), expected)] => (identity.client_id.clone(), given == expected),
        _ => (String::new(), false),
    };
    if !known {
        return invalid_request(StatusCode::BAD_REQUEST, "Identity not found");
    }
    let (access_token, lifetime) = state.graph.issue(state.primary.clone());
    let now = crate::clock::unix_now();
    let expires_on = now.saturating_add(lifetime);
    let body = match route {
        Route::Imds => json!({
            "access_token": access_token,
            "client_id": client_id,
            "expires_in": lifetime.to_string(),
            "expires_on": expires_on.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "not_before": now.to_string(),
            "resource": state.authority,
            "token_type": "Bearer",
        }),
        Route::AppService => json!({
            "access_token": access_token,
            "client_id": client_id,
            "expires_on": expires_on,
            "resource": state.authority,
            "token_type": "Bearer",
        }),
    };
    json_response(StatusCode::OK, Bytes::from(body.to_string()))
}
