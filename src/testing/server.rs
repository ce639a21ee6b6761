//! The HTTP side of [`TestIdp`](super::TestIdp): Entra's discovery and JWKS endpoints on a
//! hyper 1 HTTP/1.1 server, one task per connection, with the fault [`Mode`]s. The token
//! endpoint and Microsoft Graph are routed to [`super::graph`], the managed identity
//! endpoints to [`super::identity`].

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::respond::{error_response, invalid_tenant, json_response};
use super::{Mode, State};
use crate::ids::TenantId;

/// Where [`Mode::ForeignJwksUri`] points: a host that is not the authority (and not listening).
const FOREIGN_HOST: &str = "http://127.0.0.2:1";

/// Accepts connections until told to stop (or until every `TestIdp` clone is gone).
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            biased;
            // Ok: shutdown() was called; Err: the last TestIdp clone was dropped.
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::debug!(%error, "TestIdp: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, state.clone()));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                // Protocol errors and Mode::Down end up here; nothing to do but close.
                _ = connection => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// The error a [`Mode::Down`] answer returns: hyper then closes the connection without
/// writing a response.
#[derive(Debug)]
struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestIdp is in Mode::Down: connection closed without a response")
    }
}

impl std::error::Error for Hangup {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Discovery(Version),
    Jwks(Version),
}

/// Matches Entra's paths: `/{tenant}/v2.0/.well-known/openid-configuration`,
/// `/{tenant}/.well-known/openid-configuration`, `/{tenant}/discovery/v2.0/keys`,
/// `/{tenant}/discovery/keys`.
fn route(path: &str) -> Option<(Endpoint, &str)> {
    let path = path.strip_prefix('/')?;
    let segments: Vec<&str> = path.split('/').collect();
    let (tenant, rest) = segments.split_first()?;
    if tenant.is_empty() {
        return None;
    }
    let endpoint = match rest {
        ["v2.0", ".well-known", "openid-configuration"] => Endpoint::Discovery(Version::V2),
        [".well-known", "openid-configuration"] => Endpoint::Discovery(Version::V1),
        ["discovery", "v2.0", "keys"] => Endpoint::Jwks(Version::V2),
        ["discovery", "keys"] => Endpoint::Jwks(Version::V1),
        _ => return None,
    };
    Some((endpoint, tenant))
}

/// The tenant a path names, as this idp sees it.
enum PathTenant {
    /// A served tenant GUID (lower case).
    Guid(TenantId),
    /// `common` or `organizations`: issuers are the `{tenantid}` template.
    Multi(&'static str),
}

impl PathTenant {
    fn resolve(state: &State, segment: &str) -> Option<PathTenant> {
        match segment {
            "common" => Some(PathTenant::Multi("common")),
            "organizations" => Some(PathTenant::Multi("organizations")),
            _ => TenantId::parse(segment)
                .ok()
                .filter(|tenant| state.serves(tenant))
                .map(PathTenant::Guid),
        }
    }

    /// The path segment used in URLs this idp hands out.
    fn segment(&self) -> &str {
        match self {
            PathTenant::Guid(tenant) => tenant.as_str(),
            PathTenant::Multi(name) => name,
        }
    }

    /// What stands for the tenant inside an issuer: the GUID, or the literal template.
    fn issuer_tenant(&self) -> &str {
        match self {
            PathTenant::Guid(tenant) => tenant.as_str(),
            PathTenant::Multi(_) => "{tenantid}",
        }
    }
}

fn issuer(state: &State, tenant: &str, version: Version) -> String {
    match version {
        Version::V2 => format!("{}/{tenant}/v2.0", state.v2_issuer_base),
        Version::V1 => format!("{}/{tenant}/", state.v1_issuer_base),
    }
}

/// The `appid` query parameter Entra asks apps with custom signing keys to send.
fn appid(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|pair| pair.strip_prefix("appid="))
        .find(|value| !value.is_empty())
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Hangup> {
    if let Some(route) = super::identity::route(req.method(), req.uri().path()) {
        return Ok(super::identity::answer(route, &req, &state));
    }
    if let Some(route) = super::graph::route(req.method(), req.uri().path()) {
        return Ok(super::graph::answer(route, req, &state).await);
    }
    let Some((endpoint, segment)) = route(req.uri().path()) else {
        return Ok(error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such endpoint.",
        ));
    };
    if req.method() != Method::GET {
        return Ok(error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "Only GET is served.",
        ));
    }
    let jwks_number = match endpoint {
        Endpoint::Discovery(_) => {
            state.count_discovery();
            None
        }
        Endpoint::Jwks(_) => Some(state.count_jwks()),
    };

    let mode = match endpoint {
        Endpoint::Discovery(_) => state.mode(),
        Endpoint::Jwks(_) => state.jwks_mode(),
    };
    match &mode {
        Mode::Down => return Err(Hangup),
        Mode::Status(code) => return Ok(fault(*code)),
        Mode::Garbage => {
            return Ok(json_response(
                StatusCode::OK,
                Bytes::from_static(br#"{"keys":[{"kty":"RSA","use":"sig","kid":"#),
            ));
        }
        Mode::RedirectTo(location) => return Ok(redirect(location)),
        Mode::Slow(delay) => tokio::time::sleep(*delay).await,
        _ => {}
    }

    let Some(tenant) = PathTenant::resolve(&state, segment) else {
        return Ok(invalid_tenant(&state.authority, segment));
    };
    let document = match endpoint {
        Endpoint::Discovery(version) => {
            let appid = appid(req.uri().query());
            if appid.is_some() {
                state
                    .appid_requests
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            discovery(&state, &tenant, version, appid, &mode)
        }
        Endpoint::Jwks(version) => {
            let issuer = issuer(&state, tenant.issuer_tenant(), version);
            json!({ "keys": state.keys().jwks(&issuer) })
        }
    };
    if let Some(n) = jwks_number {
        state.jwks_holds.wait(n).await;
    }
    let mut body = serde_json::to_vec(&document).unwrap_or_default();
    if let Mode::HugeBody(len) = mode {
        body = pad(body, len);
    }
    Ok(json_response(StatusCode::OK, Bytes::from(body)))
}

fn discovery(
    state: &State,
    tenant: &PathTenant,
    version: Version,
    appid: Option<&str>,
    mode: &Mode,
) -> Value {
    let authority = &state.authority;
    let segment = tenant.segment();
    let issuer_tenant = match mode {
        Mode::WrongIssuer => state.stranger.as_str(),
        _ => tenant.issuer_tenant(),
    };
    let keys_host = match mode {
        Mode::ForeignJwksUri => FOREIGN_HOST,
        _ => authority,
    };
    let query = appid.map(|id| format!("?appid={id}")).unwrap_or_default();
    match version {
        Version::V2 => json!({
            "issuer": issuer(state, issuer_tenant, Version::V2),
            "jwks_uri": format!("{keys_host}/{segment}/discovery/v2.0/keys{query}"),
            "token_endpoint": format!("{authority}/{segment}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{authority}/{segment}/oauth2/v2.0/authorize"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "WW",
        }),
        Version::V1 => json!({
            "issuer": issuer(state, issuer_tenant, Version::V1),
            "jwks_uri": format!("{keys_host}/{segment}/discovery/keys{query}"),
            "token_endpoint": format!("{authority}/{segment}/oauth2/token"),
            "authorization_endpoint": format!("{authority}/{segment}/oauth2/authorize"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "WW",
        }),
    }
}

/// Pads `body` to exactly `len` bytes while keeping it valid JSON where possible.
fn pad(mut body: Vec<u8>, len: usize) -> Vec<u8> {
    if len >= body.len() {
        body.resize(len, b' ');
        return body;
    }
    let mut small = vec![b' '; len];
    if len >= 2 {
        small[0] = b'{';
        small[len - 1] = b'}';
    }
    small
}

fn fault(code: u16) -> Response<Full<Bytes>> {
    let status = match code {
        200..=999 => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(
        status,
        "temporarily_unavailable",
        &format!("TestIdp fault injection: HTTP {}.", status.as_u16()),
    )
}

fn redirect(location: &str) -> Response<Full<Bytes>> {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::FOUND;
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "TestIdp: Mode::RedirectTo holds a value that is not a valid Location header.",
        ),
    }
}
