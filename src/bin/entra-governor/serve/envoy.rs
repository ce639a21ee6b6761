//! Envoy external authorization, v3 gRPC: `envoy.service.auth.v3.Authorization/Check`.
//!
//! The original request's method, path and `authorization` header are read from the
//! `CheckRequest` (its `headers` map, or `header_map` when Envoy sends raw headers). An
//! allow answers gRPC `OK` with the upstream headers (overwriting any the client sent)
//! and, when configured, `authorization` in `headers_to_remove`; a refusal answers
//! `UNAUTHENTICATED` (401), `PERMISSION_DENIED` (403, and 400/500) or `UNAVAILABLE`
//! (503) with a `DeniedHttpResponse` carrying the same status, headers and JSON body as
//! the library's adapters.

use entra_governor::http::{Allowed, Refusal, request_context};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Code, Request, Response, Status};

use super::Service;

/// The gRPC service.
struct Check {
    service: Service,
}

/// Serves gRPC on `listener` until `stop` turns true, then drains open calls.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Check { service }))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        })
        .await
        .map_err(std::io::Error::other)
}

#[tonic::async_trait]
impl Authorization for Check {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let request = request.into_inner();
        let http = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let Some(http) = http else {
            return Ok(Response::new(denied(&Refusal::misconfigured(
                "the CheckRequest carries no HTTP request attributes",
            ))));
        };
        let headers = OriginalHeaders::of(http);
        let context = request_context(headers.get("x-request-id").map(str::as_bytes));
        let authorization = headers.all("authorization").map(str::as_bytes);
        let answer = match self
            .service
            .gate
            .check(&http.method, &http.path, authorization, &context)
            .await
        {
            Ok(allowed) => ok(&allowed),
            Err(refusal) => denied(&refusal),
        };
        Ok(Response::new(answer))
    }
}

/// The original request's headers: Envoy's `headers` map (lowercase keys), or its
/// `header_map` (raw values) when that is what it sent.
struct OriginalHeaders<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> OriginalHeaders<'a> {
    fn of(
        http: &'a envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest,
    ) -> Self {
        let mut pairs: Vec<(&str, &str)> = http
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(map) = &http.header_map {
            for h in &map.headers {
                let value = if h.value.is_empty() {
                    std::str::from_utf8(&h.raw_value).unwrap_or_default()
                } else {
                    h.value.as_str()
                };
                pairs.push((h.key.as_str(), value));
            }
        }
        Self { pairs }
    }

    fn all(&self, name: &'a str) -> impl Iterator<Item = &'a str> + '_ {
        self.pairs
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn get(&self, name: &'a str) -> Option<&'a str> {
        self.all(name).next()
    }
}

fn header(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    #[allow(deprecated)] // `append` is deprecated in favour of `append_action`
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: action.into(),
        keep_empty_value: true,
    }
}

fn ok(allowed: &Allowed) -> CheckResponse {
    let headers = allowed
        .headers
        .iter()
        .map(|(k, v)| header(k, v, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .collect();
    let headers_to_remove = if allowed.remove_authorization {
        vec!["authorization".to_owned()]
    } else {
        Vec::new()
    };
    CheckResponse {
        status: Some(rpc::Status {
            code: Code::Ok.into(),
            message: String::new(),
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A refusal as Envoy sends it to the client; the gRPC code names the kind.
fn denied(refusal: &Refusal) -> CheckResponse {
    let code = match refusal.status {
        401 => Code::Unauthenticated,
        503 => Code::Unavailable,
        _ => Code::PermissionDenied,
    };
    let headers = refusal
        .headers()
        .into_iter()
        .map(|(k, v)| header(k, &v, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .collect();
    CheckResponse {
        status: Some(rpc::Status {
            code: code.into(),
            message: refusal.body.error.to_owned(),
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(refusal.status),
            }),
            headers,
            body: refusal.body_json(),
        })),
        ..Default::default()
    }
}
