//! The HTTP listener: forward-auth for nginx `auth_request` and Traefik `forwardAuth`,
//! Envoy's HTTP `ext_authz` mode, and (from the sibling modules) AuthZEN, health and
//! admin routes.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use entra_governor::http::{Allowed, Refusal, request_context};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Service, authzen, ops};

/// The path prefix of Envoy's HTTP mode (`http_service.path_prefix: /envoy`): Envoy
/// sends `/envoy` followed by the original path, with the original method.
pub const ENVOY_PREFIX: &str = "/envoy";

/// Serves HTTP on `listener` until `stop` turns true, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/forward-auth", any(forward_auth))
        .route(ENVOY_PREFIX, any(envoy_http))
        .route(&format!("{ENVOY_PREFIX}/{{*path}}"), any(envoy_http))
        .merge(authzen::routes())
        .merge(ops::routes(&service))
        .with_state(service);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        })
        .await
}

/// `/forward-auth`: the original method and URI from the pair of headers
/// `[forward_auth] headers` names (nginx: `X-Original-Method`, `X-Original-URI`;
/// Traefik: `X-Forwarded-Method`, `X-Forwarded-Uri`); 200 with the upstream headers, or
/// the refusal.
async fn forward_auth(State(service): State<Service>, headers: HeaderMap) -> Response {
    match original_request(&headers, service.forward_auth.names()) {
        Ok((method, uri)) => decide(&service, method, uri, &headers).await,
        Err(refusal) => {
            tracing::warn!(
                problem = refusal.body.error_description,
                "a forward-auth request the gateway should not send; check its configuration"
            );
            with_request_id(refusal.into_response(), &headers)
        }
    }
}

/// The original request's method and URI, each from exactly one header of `names`.
fn original_request<'h>(
    headers: &'h HeaderMap,
    (method, uri): (&str, &str),
) -> Result<(&'h str, &'h str), Refusal> {
    let one = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().map_err(|_| {
                Refusal::misconfigured(
                    "the gateway sent an original-request header that is not ASCII",
                )
            }),
            (Some(_), Some(_)) => Err(Refusal::misconfigured(
                "the gateway sent an original-request header twice",
            )),
            (None, _) => Err(Refusal::misconfigured(
                "the gateway did not send the original method and URI headers [forward_auth] names",
            )),
        }
    };
    Ok((one(method)?, one(uri)?))
}

/// Envoy's HTTP mode: the original method, and the original path after [`ENVOY_PREFIX`].
async fn envoy_http(State(service): State<Service>, request: Request) -> Response {
    let method = request.method().as_str().to_owned();
    let uri = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .strip_prefix(ENVOY_PREFIX)
        .unwrap_or("/")
        .to_owned();
    let uri = if uri.starts_with('/') {
        uri
    } else {
        format!("/{uri}")
    };
    decide(&service, &method, &uri, request.headers()).await
}

async fn decide(service: &Service, method: &str, uri: &str, headers: &HeaderMap) -> Response {
    let context = request_context(request_id(headers).map(str::as_bytes));
    let authorization = headers
        .get_all("authorization")
        .iter()
        .map(HeaderValue::as_bytes);
    let response = match service
        .gate
        .check(method, uri, authorization, &context)
        .await
    {
        Ok(allowed) => allow(&allowed),
        Err(refusal) => refusal.into_response(),
    };
    with_request_id(response, headers)
}

/// 200 with the upstream headers (nginx `auth_request_set`, Traefik
/// `authResponseHeaders`, Envoy `allowed_upstream_headers`), and for Envoy the header
/// that removes `Authorization` when configured.
fn allow(allowed: &Allowed) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    // The gate checked every name (configuration) and value (visible ASCII).
    for (name, value) in &allowed.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    if allowed.remove_authorization {
        headers.insert(
            "x-envoy-auth-headers-to-remove",
            HeaderValue::from_static("authorization"),
        );
    }
    response
}

/// The request's `x-request-id`, when it is one the audit trail would record.
fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-request-id")
        .or_else(|| headers.get("x-correlation-id"))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// Echoes the request id, so a gateway's logs join the answer.
pub fn with_request_id(mut response: Response, headers: &HeaderMap) -> Response {
    if let Some(id) = request_id(headers).and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}
