//! The response bodies [`TestIdp`](super::TestIdp) answers with, shared by the discovery
//! and JWKS side (`server`) and the token endpoint and Microsoft Graph side (`graph`):
//! JSON with Entra's content type, Entra's OAuth error bodies, Graph's error bodies and the
//! injected faults. Neither side imports the other.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

pub(super) fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// An Entra-style OAuth error body: `error`, `error_description`, `error_codes`.
pub(super) fn error_response(
    status: StatusCode,
    error: &str,
    description: &str,
) -> Response<Full<Bytes>> {
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [],
    });
    json_response(status, Bytes::from(body.to_string()))
}

pub(super) fn invalid_tenant(authority: &str, segment: &str) -> Response<Full<Bytes>> {
    let body = json!({
        "error": "invalid_tenant",
        "error_description": format!(
            "AADSTS90002: Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
        "error_codes": [90002],
        "error_uri": format!("{authority}/error?code=90002"),
    });
    json_response(StatusCode::BAD_REQUEST, Bytes::from(body.to_string()))
}

/// Entra's OAuth error body, with one AADSTS code.
pub(super) fn entra_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
) -> Response<Full<Bytes>> {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}"),
        "error_codes": [code],
    });
    json_response(status, Bytes::from(body.to_string()))
}

/// Microsoft Graph's error body: `{"error":{"code","message"}}`.
pub(super) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({ "error": { "code": code, "message": message } });
    json_response(status, Bytes::from(body.to_string()))
}

pub(super) fn bad_request(message: &str) -> Response<Full<Bytes>> {
    graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

pub(super) fn too_large() -> Response<Full<Bytes>> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
        "The request body is too large.",
    )
}

pub(super) fn graph_fault(code: u16) -> Response<Full<Bytes>> {
    let status = match code {
        200..=999 => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    graph_error(
        status,
        "generalException",
        &format!("TestIdp fault injection: HTTP {}.", status.as_u16()),
    )
}

/// The token endpoint's answer to a `GraphTokenMode::Status` fault.
pub(super) fn token_fault(code: u16) -> Response<Full<Bytes>> {
    let status = match code {
        200..=999 => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    entra_error(
        status,
        "temporarily_unavailable",
        50196,
        &format!("TestIdp fault injection: HTTP {}.", status.as_u16()),
    )
}

pub(super) fn throttled(retry_after_secs: u64) -> Response<Full<Bytes>> {
    let mut response = graph_error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Too many requests. TestIdp throttling injection.",
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
