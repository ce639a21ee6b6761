//! The HTTP listener: forward-auth for nginx `auth_request` and Traefik `forwardAuth`,
//! Envoy's HTTP `ext_authz` mode, and (from the sibling modules) AuthZEN, health and
//! admin routes.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use entra_governor::config::{Config, UpstreamValue};
use entra_governor::http::{Allowed, Refusal, request_context};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{BoxError, Service, authzen, ops};

/// The path prefix of Envoy's HTTP mode (`http_service.path_prefix: /envoy`): Envoy
/// sends `/envoy` followed by the original path, with the original method.
pub const ENVOY_PREFIX: &str = "/envoy";

/// Headers a gateway's question may not ask to set on the upstream request.
const RESERVED: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "host",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The `[upstream] headers`, checked: lowercase HTTP header names, none of them a
/// hop-by-hop or framing header, nor `authorization`.
pub fn upstream_headers(config: &Config) -> Result<Vec<(String, UpstreamValue)>, BoxError> {
    config
        .upstream
        .headers
        .iter()
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            if HeaderName::from_bytes(lower.as_bytes()).is_err()
                || RESERVED.contains(&lower.as_str())
            {
                return Err(
                    format!("upstream.headers.{name}: not a header name the gate may set").into(),
                );
            }
            Ok((lower, *value))
        })
        .collect()
}

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

/// `/forward-auth`: the original method and URI from `X-Original-Method` and
/// `X-Original-URI` (nginx) or `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik,
/// Caddy); 200 with the upstream headers, or the refusal.
async fn forward_auth(State(service): State<Service>, headers: HeaderMap) -> Response {
    let original = |names: [&str; 2]| -> Result<Option<&str>, Refusal> {
        for name in names {
            let mut values = headers.get_all(name).iter();
            if let Some(value) = values.next() {
                if values.next().is_some() {
                    return Err(Refusal::misconfigured(
                        "the gateway sent an original-request header twice",
                    ));
                }
                return value.to_str().map(Some).map_err(|_| {
                    Refusal::misconfigured(
                        "the gateway sent an original-request header that is not ASCII",
                    )
                });
            }
        }
        Ok(None)
    };
    let request = original(["x-original-method", "x-forwarded-method"]).and_then(|method| {
        let uri = original(["x-original-uri", "x-forwarded-uri"])?;
        match (method, uri) {
            (Some(method), Some(uri)) => Ok((method.to_owned(), uri.to_owned())),
            _ => Err(Refusal::misconfigured(
                "the gateway sent no X-Original-Method and X-Original-URI (or X-Forwarded-Method and X-Forwarded-Uri)",
            )),
        }
    });
    match request {
        Ok((method, uri)) => decide(&service, &method, &uri, &headers).await,
        Err(refusal) => {
            tracing::warn!(
                problem = refusal.body.error_description,
                "a forward-auth request the gateway should not send; check its configuration"
            );
            with_request_id(refusal.into_response(), &headers)
        }
    }
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
