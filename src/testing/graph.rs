//! The Microsoft Graph side of [`TestIdp`]: the client credentials token endpoint and the
//! transitive membership actions `checkMemberGroups` and `getMemberObjects`, for users and
//! service principals, with fault modes ([`GraphMode`] for Graph, [`GraphTokenMode`] for
//! the token endpoint) and request counters.
//!
//! The Graph base URL is the authority, as [`Cloud::custom`](crate::Cloud::custom) assumes:
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: `grant_type=client_credentials`, `client_id` =
//!   [`TestIdp::client_id`], `scope` = `{authority}/.default`, and either `client_secret` =
//!   [`TestIdp::graph_client_secret`], a `client_assertion` signed by the key of
//!   [`TestIdp::graph_client_certificate`], or a registered federated token
//!   ([`TestIdp::mint_federated_token`]; see `identity`). Answers
//!   `{"token_type":"Bearer","expires_in":3599,"access_token":"…"}` or Entra's errors
//!   (`invalid_client` 401, `unauthorized_client`, `invalid_scope`, `unsupported_grant_type`,
//!   `invalid_tenant` 400).
//! - `POST /v1.0/{users|servicePrincipals}/{oid}/checkMemberGroups` `{"groupIds":[≤ 20]}`:
//!   `{"value":[the ones the object is in]}`.
//! - `POST /v1.0/{users|servicePrincipals}/{oid}/getMemberObjects`
//!   `{"securityEnabledOnly":true}`: 100 ids per page, `@odata.nextLink` to
//!   `{authority}/v1.0/…/getMemberObjects?$skiptoken=N` (POST the same body to it).
//!
//! Graph calls need `Authorization: Bearer <a token this idp issued>` (else 401
//! `InvalidAuthenticationToken`) and an object set with [`TestIdp::set_memberships`] (else
//! 404 `Request_ResourceNotFound`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::keys::RsaKey;
use super::respond::{
    bad_request, entra_error, graph_error, graph_fault, invalid_tenant, json_response, throttled,
    token_fault, too_large,
};
use super::{State, TestIdp, lock, random_b64};
use crate::ids::{GroupId, ObjectId, TenantId};

/// Largest request body read by the Graph and token endpoints.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// `getMemberObjects` page size.
const PAGE_SIZE: usize = 100;
/// `checkMemberGroups` accepts at most this many ids.
const MAX_CHECK_IDS: usize = 20;
/// Default `expires_in` of issued Graph tokens (Entra's usual value).
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3599;
/// Clock skew allowed on client assertions.
const ASSERTION_SKEW_SECS: u64 = 300;

/// How the Microsoft Graph endpoints (`checkMemberGroups`, `getMemberObjects`) answer; set
/// with [`TestIdp::set_graph_mode`]. The token endpoint is not affected (see
/// [`GraphTokenMode`]).
///
/// Requests are counted whatever the mode; the `Authorization` header is checked first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphMode {
    /// Answer like Microsoft Graph.
    #[default]
    Normal,
    /// Answer with this HTTP status and a Graph-style JSON error body (codes outside
    /// `200..=999` are answered as 500).
    Status(u16),
    /// Answer the next `times` calls with `429 Too Many Requests` and
    /// `Retry-After: retry_after_secs`, then normally (the mode switches back to
    /// [`GraphMode::Normal`]).
    TooManyRequests {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
        /// How many calls are throttled.
        times: usize,
    },
    /// Wait this long, then answer normally.
    Slow(Duration),
}

/// How the client credentials token endpoint answers; set with
/// [`TestIdp::set_graph_token_mode`]. The Graph endpoints are not affected.
///
/// Requests are counted whatever the mode; the mode applies before the request is
/// checked, except [`GraphTokenMode::ExpiresIn`], which applies to tokens it issues.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphTokenMode {
    /// Answer like Entra.
    #[default]
    Normal,
    /// Answer with this HTTP status and an Entra-style JSON error body (codes outside
    /// `200..=999` are answered as 500).
    Status(u16),
    /// Answer the next `times` requests with `429 Too Many Requests` and
    /// `Retry-After: retry_after_secs` (any `u64`, e.g. `u64::MAX` for a hostile answer),
    /// then normally (the mode switches back to [`GraphTokenMode::Normal`]).
    TooManyRequests {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
        /// How many requests are throttled.
        times: usize,
    },
    /// Issue tokens normally but with this `expires_in` (any `u64`, e.g. `u64::MAX` for a
    /// hostile answer), overriding [`TestIdp::set_graph_token_lifetime`].
    ExpiresIn(u64),
}

/// The Graph look-alike's state, inside the idp's [`State`].
pub(crate) struct GraphState {
    client_secret: String,
    certificate: OnceLock<Arc<RsaKey>>,
    token_lifetime_secs: AtomicU64,
    /// Issued access tokens and the tenant each was issued in.
    issued: Mutex<HashMap<String, TenantId>>,
    /// `jti`s of accepted client assertions (replays are refused).
    assertions_seen: Mutex<HashSet<String>>,
    memberships: Mutex<HashMap<ObjectId, Vec<GroupId>>>,
    mode: Mutex<GraphMode>,
    token_mode: Mutex<GraphTokenMode>,
    paths: Mutex<Vec<String>>,
    token_requests: AtomicUsize,
    check_member_groups_requests: AtomicUsize,
    get_member_objects_requests: AtomicUsize,
}

impl GraphState {
    pub(crate) fn new() -> GraphState {
        GraphState {
            // The shape of an Entra secret value: 40 characters with a `~`.
            client_secret: format!("Tst8Q~{}", random_b64::<25>()),
            certificate: OnceLock::new(),
            token_lifetime_secs: AtomicU64::new(DEFAULT_TOKEN_LIFETIME_SECS),
            issued: Mutex::new(HashMap::new()),
            assertions_seen: Mutex::new(HashSet::new()),
            memberships: Mutex::new(HashMap::new()),
            mode: Mutex::new(GraphMode::Normal),
            token_mode: Mutex::new(GraphTokenMode::Normal),
            paths: Mutex::new(Vec::new()),
            token_requests: AtomicUsize::new(0),
            check_member_groups_requests: AtomicUsize::new(0),
            get_member_objects_requests: AtomicUsize::new(0),
        }
    }

    fn certificate(&self) -> &Arc<RsaKey> {
        self.certificate
            .get_or_init(|| Arc::new(RsaKey::generate()))
    }

    /// The stand-in for the certificate's DER: the public key (PKCS#1 DER). Only its
    /// SHA-256 thumbprint is ever compared.
    fn certificate_der(&self) -> Vec<u8> {
        self.certificate().public_key_der().to_vec()
    }

    /// Issues a Graph token of `tenant` with the configured lifetime (for the managed
    /// identity look-alikes): the token and its `expires_in`.
    pub(crate) fn issue(&self, tenant: TenantId) -> (String, u64) {
        let access_token = random_b64::<32>();
        lock(&self.issued).insert(access_token.clone(), tenant);
        (
            access_token,
            self.token_lifetime_secs.load(Ordering::SeqCst),
        )
    }

    pub(crate) fn reset_counters(&self) {
        self.token_requests.store(0, Ordering::SeqCst);
        self.check_member_groups_requests.store(0, Ordering::SeqCst);
        self.get_member_objects_requests.store(0, Ordering::SeqCst);
        lock(&self.paths).clear();
    }

    /// The mode for this call; consumes one throttled call of `TooManyRequests`.
    fn take_mode(&self) -> GraphMode {
        let mut mode = lock(&self.mode);
        let current = mode.clone();
        if let GraphMode::TooManyRequests { times, .. } = &mut *mode {
            if *times <= 1 {
                *mode = GraphMode::Normal;
            } else {
                *times -= 1;
            }
        }
        match current {
            GraphMode::TooManyRequests { times: 0, .. } => GraphMode::Normal,
            other => other,
        }
    }

    /// The token endpoint's mode for this request; consumes one throttled request of
    /// `TooManyRequests`.
    fn take_token_mode(&self) -> GraphTokenMode {
        let mut mode = lock(&self.token_mode);
        let current = mode.clone();
        if let GraphTokenMode::TooManyRequests { times, .. } = &mut *mode {
            if *times <= 1 {
                *mode = GraphTokenMode::Normal;
            } else {
                *times -= 1;
            }
        }
        match current {
            GraphTokenMode::TooManyRequests { times: 0, .. } => GraphTokenMode::Normal,
            other => other,
        }
    }
}

impl TestIdp {
    /// The client secret of the API's app registration ([`client_id`](Self::client_id)) for
    /// the client credentials grant at this idp's token endpoint.
    pub fn graph_client_secret(&self) -> String {
        self.state().graph.client_secret.clone()
    }

    /// A certificate credential of the API's app registration: an RSA-2048 private key
    /// (PKCS#8 DER) and the bytes that stand for its certificate. The look-alike knows a
    /// certificate only by its SHA-256 thumbprint (`x5t#S256`), so the stand-in is not an
    /// X.509 document (it is the public key's DER). Made once per idp.
    pub fn graph_client_certificate(&self) -> (Vec<u8>, Vec<u8>) {
        let graph = &self.state().graph;
        (graph.certificate().pkcs8_der(), graph.certificate_der())
    }

    /// Sets the `expires_in` of Graph tokens issued from now on (default 3599 s).
    pub fn set_graph_token_lifetime(&self, lifetime: Duration) {
        self.state()
            .graph
            .token_lifetime_secs
            .store(lifetime.as_secs(), Ordering::SeqCst);
    }

    /// Every Graph access token issued so far and still honoured (for tests that check a
    /// token never leaks into a log line, an error or a `Debug` output).
    pub fn issued_graph_tokens(&self) -> Vec<String> {
        lock(&self.state().graph.issued).keys().cloned().collect()
    }

    /// Forgets every Graph token issued so far: Graph answers 401 to them from now on.
    pub fn revoke_graph_tokens(&self) {
        lock(&self.state().graph.issued).clear();
    }

    /// Sets the groups an object (user or service principal) is a transitive member of,
    /// in `getMemberObjects` order. Objects never set are unknown to Graph (404).
    pub fn set_memberships(&self, oid: &ObjectId, groups: Vec<GroupId>) {
        lock(&self.state().graph.memberships).insert(oid.clone(), groups);
    }

    /// Sets how the Graph endpoints answer from now on.
    pub fn set_graph_mode(&self, mode: GraphMode) {
        *lock(&self.state().graph.mode) = mode;
    }

    /// Sets how the token endpoint answers from now on.
    pub fn set_graph_token_mode(&self, mode: GraphTokenMode) {
        *lock(&self.state().graph.token_mode) = mode;
    }

    /// Token endpoint requests received (any tenant, any answer).
    pub fn graph_token_requests(&self) -> usize {
        self.state().graph.token_requests.load(Ordering::SeqCst)
    }

    /// `checkMemberGroups` requests received (users and service principals, any answer).
    pub fn check_member_groups_requests(&self) -> usize {
        self.state()
            .graph
            .check_member_groups_requests
            .load(Ordering::SeqCst)
    }

    /// `getMemberObjects` requests received, pages included (any answer).
    pub fn get_member_objects_requests(&self) -> usize {
        self.state()
            .graph
            .get_member_objects_requests
            .load(Ordering::SeqCst)
    }

    /// The path and query of every Graph request received, in order, e.g.
    /// `/v1.0/servicePrincipals/{oid}/checkMemberGroups`.
    pub fn graph_paths(&self) -> Vec<String> {
        lock(&self.state().graph.paths).clone()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    CheckMemberGroups,
    GetMemberObjects,
}

/// A Graph look-alike endpoint.
pub(crate) enum Route {
    Token {
        tenant: String,
    },
    Graph {
        collection: String,
        action: Action,
        oid: String,
    },
}

/// Matches `POST /{tenant}/oauth2/v2.0/token` and
/// `POST /v1.0/{users|servicePrincipals}/{oid}/{checkMemberGroups|getMemberObjects}`.
pub(crate) fn route(method: &Method, path: &str) -> Option<Route> {
    if method != Method::POST {
        return None;
    }
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        [
            "v1.0",
            collection @ ("users" | "servicePrincipals"),
            oid,
            action,
        ] => {
            let action = match *action {
                "checkMemberGroups" => Action::CheckMemberGroups,
                "getMemberObjects" => Action::GetMemberObjects,
                _ => return None,
            };
            Some(Route::Graph {
                collection: (*collection).to_owned(),
                action,
                oid: (*oid).to_owned(),
            })
        }
        [tenant, "oauth2", "v2.0", "token"] if !tenant.is_empty() => Some(Route::Token {
            tenant: (*tenant).to_owned(),
        }),
        _ => None,
    }
}

pub(crate) async fn answer(
    route: Route,
    req: Request<Incoming>,
    state: &State,
) -> Response<Full<Bytes>> {
    match route {
        Route::Token { tenant } => {
            state.graph.token_requests.fetch_add(1, Ordering::SeqCst);
            let lifetime = match state.graph.take_token_mode() {
                GraphTokenMode::Status(code) => return token_fault(code),
                GraphTokenMode::TooManyRequests {
                    retry_after_secs, ..
                } => return throttled(retry_after_secs),
                GraphTokenMode::ExpiresIn(secs) => secs,
                GraphTokenMode::Normal => state.graph.token_lifetime_secs.load(Ordering::SeqCst),
            };
            match read_body(req).await {
                Some(body) => token(state, &tenant, &body, lifetime),
                None => too_large(),
            }
        }
        Route::Graph {
            collection,
            action,
            oid,
        } => {
            let graph = &state.graph;
            match action {
                Action::CheckMemberGroups => &graph.check_member_groups_requests,
                Action::GetMemberObjects => &graph.get_member_objects_requests,
            }
            .fetch_add(1, Ordering::SeqCst);
            let path_and_query = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            lock(&graph.paths).push(path_and_query);
            let authorized = bearer(&req).is_some_and(|t| lock(&graph.issued).contains_key(t));
            if !authorized {
                return graph_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Access token is empty or invalid.",
                );
            }
            let skiptoken = skiptoken(req.uri().query());
            match graph.take_mode() {
                GraphMode::Status(code) => return graph_fault(code),
                GraphMode::TooManyRequests {
                    retry_after_secs, ..
                } => return throttled(retry_after_secs),
                GraphMode::Slow(delay) => tokio::time::sleep(delay).await,
                GraphMode::Normal => {}
            }
            let Some(body) = read_body(req).await else {
                return too_large();
            };
            membership_action(state, action, &collection, &oid, skiptoken, &body)
        }
    }
}

async fn read_body(req: Request<Incoming>) -> Option<Bytes> {
    Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// `$skiptoken=N` (also percent-encoded as `%24skiptoken`); `None` without one.
fn skiptoken(query: Option<&str>) -> Option<Option<usize>> {
    let query = query?;
    Some(
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "$skiptoken")
            .and_then(|(_, v)| v.parse().ok()),
    )
}

/// Answers a token request whose tokens live `lifetime` seconds (`expires_in`).
fn token(state: &State, tenant: &str, body: &[u8], lifetime: u64) -> Response<Full<Bytes>> {
    let tenant = match TenantId::parse(tenant) {
        Ok(t) if state.serves(&t) => t,
        _ => return invalid_tenant(&state.authority, tenant),
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if field("client_id") != Some(state.client_id.as_str()) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if field("scope") != Some(format!("{}/.default", state.authority).as_str()) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", state.authority);
    let verdict = match (field("client_secret"), field("client_assertion")) {
        (Some(secret), None) if secret == state.graph.client_secret => Ok(()),
        (Some(_), None) => Err((7000215, "Invalid client secret provided.")),
        (None, Some(assertion))
            if field("client_assertion_type")
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") =>
        {
            if super::identity::is_certificate_assertion(assertion) {
                check_assertion(state, assertion, &endpoint)
            } else {
                super::identity::check_federated(state, assertion)
            }
        }
        _ => Err((
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
    };
    if let Err((code, description)) = verdict {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        );
    }
    let access_token = random_b64::<32>();
    lock(&state.graph.issued).insert(access_token.clone(), tenant);
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    json_response(StatusCode::OK, Bytes::from(body.to_string()))
}

/// Checks a client assertion as Entra does: RS256 by the registered certificate (found by
/// `x5t#S256`), `aud` the token endpoint, `iss` = `sub` = the client id, in its validity
/// window, `jti` not seen before.
fn check_assertion(
    state: &State,
    assertion: &str,
    endpoint: &str,
) -> Result<(), (u32, &'static str)> {
    const BAD: (u32, &str) = (700027, "Client assertion failed signature validation.");
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(BAD);
    };
    let decode = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (decode(header), decode(claims)) else {
        return Err(BAD);
    };
    let certificate = state.graph.certificate();
    let thumbprint = URL_SAFE_NO_PAD
        .encode(digest::digest(&digest::SHA256, &state.graph.certificate_der()).as_ref());
    if header["alg"] != "RS256" || header["x5t#S256"] != thumbprint.as_str() {
        return Err((
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        ));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| BAD)?;
    let signed = &assertion[..assertion.rfind('.').unwrap_or(0)];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, certificate.public_key_der())
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| BAD)?;
    let client_id = state.client_id.as_str();
    if claims["aud"] != endpoint || claims["iss"] != client_id || claims["sub"] != client_id {
        return Err((
            700021,
            "Client assertion audience or issuer claim is invalid.",
        ));
    }
    let now = crate::clock::unix_now();
    let (Some(nbf), Some(exp)) = (claims["nbf"].as_u64(), claims["exp"].as_u64()) else {
        return Err((
            700024,
            "Client assertion is not within its valid time range.",
        ));
    };
    if nbf > now + ASSERTION_SKEW_SECS || exp + ASSERTION_SKEW_SECS < now || exp - nbf > 600 {
        return Err((
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let Some(jti) = claims["jti"].as_str() else {
        return Err(BAD);
    };
    if !lock(&state.graph.assertions_seen).insert(jti.to_owned()) {
        return Err((700023, "Client assertion contains a replayed jti."));
    }
    Ok(())
}

fn membership_action(
    state: &State,
    action: Action,
    collection: &str,
    oid: &str,
    skiptoken: Option<Option<usize>>,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let groups = ObjectId::parse(oid)
        .ok()
        .and_then(|oid| lock(&state.graph.memberships).get(&oid).cloned());
    let Some(groups) = groups else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{oid}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return bad_request("The request body is not valid JSON.");
    };
    match action {
        Action::CheckMemberGroups => {
            let Some(ids) = body["groupIds"].as_array() else {
                return bad_request("groupIds is required.");
            };
            if ids.len() > MAX_CHECK_IDS {
                return bad_request("At most 20 groupIds can be checked in one call.");
            }
            let value: Vec<&Value> = ids
                .iter()
                .filter(|id| {
                    id.as_str()
                        .and_then(|s| GroupId::parse(s).ok())
                        .is_some_and(|g| groups.contains(&g))
                })
                .collect();
            json_response(
                StatusCode::OK,
                Bytes::from(json!({ "value": value }).to_string()),
            )
        }
        Action::GetMemberObjects => {
            if !body["securityEnabledOnly"].is_boolean() {
                return bad_request("securityEnabledOnly is required.");
            }
            let start = match skiptoken {
                None => 0,
                Some(Some(n)) if n <= groups.len() => n,
                Some(_) => return bad_request("Invalid $skiptoken."),
            };
            let end = (start + PAGE_SIZE).min(groups.len());
            let value: Vec<&str> = groups[start..end].iter().map(GroupId::as_str).collect();
            let mut page = json!({
                "@odata.context": format!("{}/v1.0/$metadata#Collection(Edm.String)", state.authority),
                "value": value,
            });
            if end < groups.len() {
                page["@odata.nextLink"] = json!(format!(
                    "{}/v1.0/{collection}/{oid}/getMemberObjects?$skiptoken={end}",
                    state.authority
                ));
            }
            json_response(StatusCode::OK, Bytes::from(page.to_string()))
        }
    }
}

#[cfg(test)]
mod tests;
