//! MCP (Model Context Protocol) servers behind the governor, on axum: [`McpLayer`] in
//! front of a Streamable HTTP MCP endpoint, and [`metadata_router`] serving its OAuth 2.0
//! Protected Resource Metadata (RFC 9728).
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use entra_governor::ai::mcp::ProtectedResourceMetadata;
//! use entra_governor::axum::mcp::{McpLayer, metadata_router};
//! use entra_governor::{Cloud, Governor, Policy, TenantId};
//!
//! // The MCP server's own JSON-RPC handler (an SDK's, or hand-written).
//! async fn mcp(body: String) -> String {
//!     body
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tenant = TenantId::parse("8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d")?;
//! let client_id = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
//! let governor = Governor::builder()
//!     .tenant(tenant.as_str())
//!     .client_id(client_id)
//!     .policy(Policy::from_path("examples/ai_gateway_policy.toml")?)
//!     .build()?;
//! let metadata = ProtectedResourceMetadata::for_entra(
//!     "https://mcp.example.com/mcp",
//!     &Cloud::global(),
//!     &tenant,
//!     client_id,
//! )?
//! .resource_name("Model operations");
//!
//! let app = Router::new()
//!     .route("/mcp", post(mcp).layer(McpLayer::new(governor, &metadata)))
//!     // GET /.well-known/oauth-protected-resource/mcp, unauthenticated.
//!     .merge(metadata_router(&metadata));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Per request, [`Mcp`] (the service):
//! 1. authenticates the bearer token (or takes the caller an `AuthenticateLayer` of the
//!    same governor verified); a refusal's `Bearer` challenge carries
//!    `resource_metadata="<the document's URL>"` and, for 401 and 403, `scope="<the
//!    metadata's scopes_supported>"` (MCP authorization: "Scope Selection Strategy",
//!    "Runtime Insufficient Scope Errors");
//! 2. for a `POST`, reads the body up to the limit (default
//!    [`DEFAULT_MAX_BODY_BYTES`]; 413 past it), parses it once
//!    ([`McpMessage::parse`], refusals in [`crate::ai::mcp`]'s table, recorded in the
//!    audit trail), checks `Mcp-Method` / `Mcp-Name` against it, and decides a
//!    `tools/call` (403 `insufficient_scope` when denied; the decision is recorded);
//! 3. hands the same bytes to the inner service, with the caller and the allowing
//!    decision in the request extensions ([`Authenticated`](super::Authenticated),
//!    [`Authorized`](super::Authorized));
//! 4. for a `tools/list`, filters the inner service's `application/json` or
//!    `text/event-stream` answer to the tools the caller may call, or answers 502 when
//!    it cannot be read with certainty (responses with a non-2xx status carry no
//!    listing and pass unchanged).
//!
//! Other HTTP methods (`GET`, `DELETE` of earlier Streamable HTTP revisions) need only an
//! authenticated caller, and reach the inner service without a body: only a `POST`
//! carries a JSON-RPC message, and a server that read one from a `PUT` would run it
//! undecided. A `Last-Event-ID` header is removed from every request: a resumed stream
//! could replay a `tools/list` answer this layer did not filter (the 2026-07-28 revision
//! has no resumption).
//!
//! Refusals after authentication have a JSON-RPC error body with the request's `id`
//! (null when the body could not be parsed): `{"jsonrpc":"2.0","id":7,"error":{"code":
//! -32001,"message":"the caller may not perform this action on this resource","data":
//! {"error":"insufficient_scope"}}}`.

use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::Router;
use ::axum::body::{Body, Bytes};
use ::axum::http::header::{self, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use ::axum::http::{HeaderMap, HeaderValue, Method, Request};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;
use serde_json::Value;
use tower::{Layer, Service};

use super::{
    Read, ResponseFuture, authorization, context, json_response, next_chunk, read_bounded,
    take_ready,
};
use crate::adapters::Verified;
use crate::ai::body::{BodyError, DEFAULT_MAX_BODY_BYTES};
use crate::ai::mcp::{
    FilterError, INTERNAL_ERROR, INVALID_REQUEST, MCP_REQUEST_ACTION, McpAuthorizer, McpError,
    McpMessage, McpMethod, ProtectedResourceMetadata, ResponseError, SseResponse, UNAUTHORIZED,
    jsonrpc_error,
};
use crate::http::{self, Refusal, RefusalBody};
use crate::{Governor, Principal, RequestContext};

/// Puts an MCP endpoint behind the governor: authenticates, decides `tools/call`, filters
/// `tools/list` (see [the module](self)).
#[derive(Clone, Debug)]
pub struct McpLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    authorizer: McpAuthorizer,
    metadata_url: String,
    scope: Option<String>,
    max_body_bytes: usize,
    max_response_bytes: usize,
}

impl McpLayer {
    /// `tools.call` on `tools/{name}`, decided by `governor`; challenges name `metadata`'s
    /// URL and scopes.
    pub fn new(governor: Governor, metadata: &ProtectedResourceMetadata) -> Self {
        Self::with_authorizer(McpAuthorizer::new(governor), metadata)
    }

    /// With another action or resource template ([`McpAuthorizer::with_action`],
    /// [`McpAuthorizer::with_template`]).
    pub fn with_authorizer(
        authorizer: McpAuthorizer,
        metadata: &ProtectedResourceMetadata,
    ) -> Self {
        let scopes = metadata.scopes().join(" ");
        Self {
            config: Arc::new(Config {
                authorizer,
                metadata_url: metadata.well_known_url(),
                scope: (!scopes.is_empty()).then_some(scopes),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                max_response_bytes: DEFAULT_MAX_BODY_BYTES,
            }),
        }
    }

    /// The largest request body read (default [`DEFAULT_MAX_BODY_BYTES`]); longer bodies
    /// are refused with 413.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).max_body_bytes = limit;
        self
    }

    /// The largest `tools/list` answer filtered (default [`DEFAULT_MAX_BODY_BYTES`]);
    /// longer answers are refused with 502.
    #[must_use]
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).max_response_bytes = limit;
        self
    }
}

impl<S> Layer<S> for McpLayer {
    type Service = Mcp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Mcp {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service made by [`McpLayer`].
#[derive(Clone, Debug)]
pub struct Mcp<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Service<Request<Body>> for Mcp<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let config = Arc::clone(&self.config);
        ResponseFuture {
            inner: Box::pin(async move {
                let (mut parts, body) = request.into_parts();
                let context = context(&parts.headers);
                let path = parts.uri.path().to_owned();
                let governor = config.authorizer.governor();
                parts.headers.remove("last-event-id");
                let verified = parts
                    .extensions
                    .remove::<Verified>()
                    .and_then(|v| v.for_governor(governor));
                let principal = match verified {
                    Some(principal) => principal,
                    None => {
                        let headers = authorization(&parts.headers);
                        match http::authenticate(governor, headers, &path, &context).await {
                            Ok(principal) => principal,
                            Err(refusal) => return Ok(config.challenge(refusal).into_response()),
                        }
                    }
                };
                parts
                    .extensions
                    .insert(Verified::new(Arc::clone(&principal), governor));
                if parts.method != Method::POST {
                    // Only a POST carries a message; a body on anything else could be one
                    // a lenient server acts on undecided, so it is not forwarded.
                    drop(body);
                    parts.headers.remove(CONTENT_LENGTH);
                    parts.headers.remove(header::TRANSFER_ENCODING);
                    return inner.call(Request::from_parts(parts, Body::empty())).await;
                }
                let caller = Caller {
                    config: &config,
                    principal: &principal,
                    path: &path,
                    context: &context,
                };
                let (message, bytes) = match caller.read_request(&parts.headers, body).await {
                    Ok(read) => read,
                    Err(response) => return Ok(response),
                };
                match config
                    .authorizer
                    .authorize(&principal, &message, &path, &context)
                    .await
                {
                    Ok(Some(decision)) => {
                        parts.extensions.insert(Arc::new(decision));
                    }
                    Ok(None) => {}
                    Err(refusal) => {
                        let code = code_of(&refusal);
                        let refusal = config.challenge(refusal);
                        return Ok(jsonrpc_response(&refusal, message.id(), code));
                    }
                }
                let list = match message.kind() {
                    McpMethod::ToolsList => message.id().cloned(),
                    _ => None,
                };
                let response = inner
                    .call(Request::from_parts(parts, Body::from(bytes)))
                    .await?;
                Ok(match list {
                    Some(id) => caller.filter(id, response).await,
                    None => response,
                })
            }),
        }
    }
}

impl Config {
    /// `refusal` with the challenge parameters MCP clients need: `scope` (on 401 and 403,
    /// but not on a claims challenge) and `resource_metadata`.
    fn challenge(&self, refusal: Refusal) -> Refusal {
        let refusal = match &self.scope {
            Some(scope)
                if matches!(refusal.status, 401 | 403)
                    && refusal.body.error != "insufficient_claims" =>
            {
                refusal.with_challenge_param("scope", scope)
            }
            _ => refusal,
        };
        refusal.with_resource_metadata(&self.metadata_url)
    }
}

/// One authenticated request's context.
struct Caller<'a> {
    config: &'a Config,
    principal: &'a Principal,
    path: &'a str,
    context: &'a RequestContext,
}

impl Caller<'_> {
    /// Reads and parses the body: the message and its bytes, or the refusal (recorded).
    async fn read_request(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<(McpMessage, Bytes), Response> {
        let limit = self.config.max_body_bytes;
        let bytes = match read_bounded(body, limit).await {
            Ok(bytes) => bytes,
            Err(Read::TooLarge) => {
                let e = McpError::Body(BodyError::TooLarge { limit });
                return Err(self.refuse(&e, None).await);
            }
            Err(Read::Failed) => {
                let refusal = Refusal {
                    status: 400,
                    www_authenticate: None,
                    retry_after: None,
                    body: RefusalBody {
                        error: "invalid_request",
                        error_description: "the request body could not be read",
                    },
                };
                return Err(jsonrpc_response(&refusal, None, INVALID_REQUEST));
            }
        };
        let content_type = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes);
        let message = match McpMessage::parse(content_type, &bytes) {
            Ok(message) => message,
            Err(e) => return Err(self.refuse(&e, None).await),
        };
        let values = |name| headers.get_all(name).iter().map(HeaderValue::as_bytes);
        match message.check_mirrored_headers(values("mcp-method"), values("mcp-name")) {
            Ok(()) => Ok((message, bytes)),
            Err(e) => Err(self.refuse(&e, message.id()).await),
        }
    }

    /// The answer to a body refused before any decision, recorded in the audit trail.
    async fn refuse(&self, e: &McpError, id: Option<&Value>) -> Response {
        let action = match e {
            McpError::InvalidToolName { .. } => self.config.authorizer.action(),
            _ => MCP_REQUEST_ACTION,
        };
        http::record_refusal(
            self.config.authorizer.governor(),
            self.principal,
            action,
            self.path,
            e.code(),
            e.description(),
            self.context,
        )
        .await;
        jsonrpc_response(&e.refusal(), id, e.jsonrpc_code())
    }

    /// The inner service's answer to the `tools/list` request `id`, filtered.
    async fn filter(&self, id: Value, response: Response) -> Response {
        let (mut parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Response::from_parts(parts, body);
        }
        let result = self.filtered(&id, &parts.headers, body).await;
        match result {
            Ok(bytes) => {
                parts.headers.remove(CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(bytes))
            }
            Err(e) => {
                if let FilterError::Response(e) = &e {
                    tracing::warn!(error = %e, "the MCP server's tools/list answer was refused");
                }
                let refusal = e.refusal();
                let code = code_of(&refusal);
                jsonrpc_response(&self.config.challenge(refusal), Some(&id), code)
            }
        }
    }

    async fn filtered(
        &self,
        id: &Value,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Vec<u8>, FilterError> {
        let authorizer = &self.config.authorizer;
        let limit = self.config.max_response_bytes;
        let encoded = headers
            .get(CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let essence = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match essence.as_deref() {
            _ if encoded => Err(ResponseError::UnsupportedContentType.into()),
            Some("application/json") => {
                let bytes = read_bounded(body, limit)
                    .await
                    .map_err(|e| e.response(limit))?;
                authorizer
                    .filter_json_response(self.principal, id, &bytes, self.context)
                    .await
            }
            Some("text/event-stream") => {
                let mut stream = SseResponse::new(id.clone(), limit);
                let mut body = body;
                while let Some(chunk) = next_chunk(&mut body).await {
                    let chunk = chunk.map_err(|()| Read::Failed.response(limit))?;
                    if stream.push(&chunk)? {
                        break;
                    }
                }
                authorizer
                    .filter_sse_response(self.principal, stream, self.context)
                    .await
            }
            _ => Err(ResponseError::UnsupportedContentType.into()),
        }
    }
}

impl Read {
    fn response(self, limit: usize) -> FilterError {
        match self {
            Self::TooLarge => ResponseError::TooLarge { limit }.into(),
            Self::Failed => ResponseError::InvalidEventStream {
                reason: "the answer could not be read",
            }
            .into(),
        }
    }
}

/// The JSON-RPC error code of a refusal by its status.
fn code_of(refusal: &Refusal) -> i64 {
    match refusal.status {
        401 | 403 => UNAUTHORIZED,
        400 | 413 | 415 => INVALID_REQUEST,
        _ => INTERNAL_ERROR,
    }
}

/// `refusal`'s status and headers, with a JSON-RPC error body for the request `id`.
fn jsonrpc_response(refusal: &Refusal, id: Option<&Value>, code: i64) -> Response {
    let data = serde_json::json!({ "error": refusal.body.error });
    let body = jsonrpc_error(id, code, refusal.body.error_description, Some(data));
    json_response(refusal.status, refusal.headers(), body.to_string())
}

/// A router serving `metadata` at its well-known path
/// ([`ProtectedResourceMetadata::well_known_path`]), `GET` only, unauthenticated,
/// `application/json`: merge it into the application outside any authenticating layer.
///
/// # Panics
/// When the resource's path is not a valid axum route (it contains `{` or starts a segment
/// with `:` or `*`): a programming error, caught at start-up.
pub fn metadata_router<S: Clone + Send + Sync + 'static>(
    metadata: &ProtectedResourceMetadata,
) -> Router<S> {
    let document = Bytes::from(metadata.to_json());
    Router::new().route(
        &metadata.well_known_path(),
        get(move || {
            let document = document.clone();
            async move { ([(CONTENT_TYPE, "application/json")], document) }
        }),
    )
}
