//! axum 0.8 integration (feature `axum`): a layer that authenticates, a per-route layer
//! that authorizes, and extractors for handlers.
//!
//! - [`AuthenticateLayer`] verifies the bearer token of every request and puts the caller's
//!   [`Principal`](crate::Principal) (shared with the verified-token cache: no copy per
//!   request, and tagged with the governor that verified it) in the request extensions,
//!   or answers the refusal (400, 401, 503).
//! - [`RequireLayer`] requires an action on a resource named by the route's parameters
//!   (`inference.invoke` on `models/{model}`); on allow it puts the [`Decision`] (an
//!   `Arc<Decision>`) in the request extensions, otherwise it answers 403 (or 503). Use it with
//!   [`route_layer`](::axum::Router::route_layer) or on one
//!   [`MethodRouter`](::axum::routing::MethodRouter). It verifies the token itself when
//!   no [`AuthenticateLayer`] ran before it, so it also works alone.
//! - [`Authenticated`] and [`Authorized`] hand the principal and the decision to handlers.
//! - [`Refusal`] implements [`IntoResponse`], so handlers that decide on resources named
//!   in a request body answer exactly as the layers do.
//!
//! Every refusal is rendered from [`crate::http::Refusal`], the mapping shared with the
//! actix-web adapter, and the require step is [`crate::http::RouteRequirement::check`],
//! shared too: both frameworks answer with the same status, `WWW-Authenticate`,
//! `Retry-After` and JSON body (see [`crate::http`] for the table). This module only reads
//! headers and path parameters, fills the request extensions and writes responses.
//!
//! Each layer is a `Layer` and its `Service`, named for what it does:
//! [`AuthenticateLayer`] makes [`Authenticate`], [`RequireLayer`] makes [`Require`].
//!
//! ```no_run
//! use axum::{Json, Router, routing::{get, post}};
//! use entra_governor::axum::{AuthenticateLayer, Authenticated, Authorized, RequireLayer};
//! use entra_governor::http::Refusal;
//! use entra_governor::{Governor, Policy};
//! use serde::Deserialize;
//!
//! // `inference.invoke` on `models/{model}` was checked before the handler runs.
//! async fn infer(Authorized(decision): Authorized) -> String {
//!     format!("{} may call {}", decision.action, decision.resource)
//! }
//!
//! #[derive(Deserialize)]
//! struct Job {
//!     base_model: String,
//! }
//!
//! // The resource is in the body: decide in the handler, answer like the layers do.
//! async fn submit(
//!     axum::extract::State(governor): axum::extract::State<Governor>,
//!     Authenticated(caller): Authenticated,
//!     Json(job): Json<Job>,
//! ) -> Result<String, Refusal> {
//!     let resource = format!("models/{}", job.base_model);
//!     // Decided, recorded in the audit trail, and refused exactly as the middleware would.
//!     entra_governor::http::authorize(&governor, &caller, "training.submit", &resource, &Default::default()).await?;
//!     Ok(format!("training {resource} for {}", caller.id()))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let governor = Governor::builder()
//!     .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!     .policy(Policy::from_path("examples/policy.toml")?)
//!     .build()?;
//!
//! let app = Router::new()
//!     .route(
//!         "/v1/models/{model}/infer",
//!         post(infer).route_layer(RequireLayer::new(
//!             governor.clone(),
//!             "inference.invoke",
//!             "models/{model}",
//!         )),
//!     )
//!     .route("/v1/training/jobs", post(submit))
//!     .route("/v1/whoami", get(|Authenticated(p): Authenticated| async move { p.id().to_string() }))
//!     .layer(AuthenticateLayer::new(governor.clone()))
//!     .with_state(governor);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Resource templates
//!
//! `{name}` placeholders take the route's path parameter of that name (one segment),
//! `{*name}` the rest of a wildcard route (`/v1/datasets/{*name}`); see
//! [`ResourceTemplate`] for what a value may hold. A placeholder the route does not
//! have is a server bug that no construction-time check can see (the layer does not know
//! its route): such requests are refused with 500 `server_error`, never authorized, and
//! logged at `error` level. A malformed template makes [`RequireLayer::new`] panic at
//! start-up, like an invalid route makes axum panic; [`RequireLayer::try_new`] returns
//! the [`TemplateError`] instead.
//!
//! ## Order
//!
//! With `Router::layer(AuthenticateLayer)` outermost and `route_layer(RequireLayer)` per
//! route, a request is authenticated once (401 before anything else), then authorized
//! after routing, so an unknown path is still 404 for an authenticated caller. Layers
//! that must answer unauthenticated requests (CORS preflights, health checks) go outside
//! `AuthenticateLayer`, or on routes it does not cover.

pub mod mcp;
pub mod openai;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::body::{Body, Bytes, HttpBody};
use ::axum::extract::rejection::RawPathParamsRejection;
use ::axum::extract::{FromRequestParts, RawPathParams};
use ::axum::http::header::AUTHORIZATION;
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use ::axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::http::{self, RenderError, ResourceTemplate, RouteRequirement, TemplateError};
use crate::{Decision, Governor, RequestContext};

pub use crate::http::Refusal;

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        json_response(self.status, self.headers(), self.body_json())
    }
}

/// A refusal's response, whatever shape its body takes: `status`, `headers` (built by
/// `crate::http` from fixed text and digits) and `body`.
fn json_response(status: u16, headers: Vec<(&'static str, String)>, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let map = response.headers_mut();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// Why a body was not read.
enum Read {
    /// Longer than the limit.
    TooLarge,
    /// The transport failed while reading.
    Failed,
}

/// The next data chunk of `body` (trailers skipped); `Err` when the transport failed.
async fn next_chunk(body: &mut Body) -> Option<Result<Bytes, ()>> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(_) => return Some(Err(())),
        }
    }
}

/// The whole body, refused past `limit` bytes without reading further.
async fn read_bounded(mut body: Body, limit: usize) -> Result<Bytes, Read> {
    if body.size_hint().lower() > limit as u64 {
        return Err(Read::TooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk.map_err(|()| Read::Failed)?;
        if bytes.len() + chunk.len() > limit {
            return Err(Read::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

fn authorization(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
}

/// The audit context of a request: its `x-request-id` or `x-correlation-id` header, and
/// its W3C `traceparent` (so OTLP audit records join the caller's trace).
fn context(headers: &HeaderMap) -> RequestContext {
    let id = headers
        .get("x-request-id")
        .or_else(|| headers.get("x-correlation-id"));
    let traceparent = headers.get("traceparent").map(HeaderValue::as_bytes);
    http::request_context_with_trace(id.map(HeaderValue::as_bytes), traceparent)
}

/// The future of [`Authenticate`] and [`Require`].
pub struct ResponseFuture<E> {
    inner: Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>,
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Takes the ready service and leaves a fresh clone in its place (the tower idiom for
/// calling a service from a `'static` future).
fn take_ready<S: Clone>(slot: &mut S) -> S {
    let clone = slot.clone();
    std::mem::replace(slot, clone)
}

// ------------------------------------------------------------------- authentication

/// Verifies the bearer token of every request and inserts the caller's [`Principal`](crate::Principal) into
/// the request extensions; refuses with 400, 401 or 503 otherwise.
///
/// ```
/// # use axum::{Router, routing::get};
/// # use entra_governor::axum::AuthenticateLayer;
/// # fn app(governor: entra_governor::Governor) -> Router {
/// Router::new()
///     .route("/v1/models", get(|| async { "[]" }))
///     .layer(AuthenticateLayer::new(governor))
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AuthenticateLayer {
    governor: Governor,
}

/// The former name of [`AuthenticateLayer`].
#[deprecated(note = "renamed `AuthenticateLayer`")]
pub type GovernorLayer = AuthenticateLayer;

/// The former name of [`Authenticate`].
#[deprecated(note = "renamed `Authenticate`")]
pub type GovernorService<S> = Authenticate<S>;

/// The former name of [`Require`].
#[deprecated(note = "renamed `Require`")]
pub type RequireService<S> = Require<S>;

impl AuthenticateLayer {
    /// A layer that authenticates every request with `governor`.
    pub fn new(governor: Governor) -> Self {
        Self { governor }
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            governor: self.governor.clone(),
        }
    }
}

/// The service made by [`AuthenticateLayer`]: authenticates, then calls the inner service.
#[derive(Clone, Debug)]
pub struct Authenticate<S> {
    inner: S,
    governor: Governor,
}

impl<S, B> Service<Request<B>> for Authenticate<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let governor = self.governor.clone();
        ResponseFuture {
            inner: Box::pin(async move {
                let (mut parts, body) = request.into_parts();
                let context = context(&parts.headers);
                let (headers, path) = (authorization(&parts.headers), parts.uri.path());
                let outcome = http::authenticate(&governor, headers, path, &context).await;
                match outcome {
                    Ok(principal) => {
                        parts.extensions.insert(Verified::new(principal, &governor));
                        inner.call(Request::from_parts(parts, body)).await
                    }
                    Err(refusal) => Ok(refusal.into_response()),
                }
            }),
        }
    }
}

// -------------------------------------------------------------------- authorization

/// Requires an action on a resource named by the route's path parameters; inserts the
/// allowing [`Decision`] (and the [`Principal`](crate::Principal)) into the request extensions, or refuses.
///
/// The caller is the [`Principal`](crate::Principal) an [`AuthenticateLayer`] put in the extensions; without
/// one, this layer verifies the bearer token itself (same refusals).
/// A caller verified by another governor (another audience, another revocation list)
/// is not trusted: the bearer token is verified again by this one. The caller is also
/// checked again for expiry and revocation before the decision
/// ([`Governor::authorize_principal`]).
///
/// ```
/// # use axum::{Router, routing::post};
/// # use entra_governor::axum::RequireLayer;
/// # fn app(governor: entra_governor::Governor) -> Router {
/// Router::new().route(
///     "/v1/models/{model}/deploy",
///     post(|| async { "deploying" })
///         .route_layer(RequireLayer::new(governor, "models.deploy", "models/{model}")),
/// )
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RequireLayer {
    /// One reference count to bump per request, not one per field.
    requirement: Arc<RouteRequirement>,
}

impl RequireLayer {
    /// Requires `action` on the resource `template` names, e.g. `"inference.invoke"` on
    /// `"models/{model}"`.
    ///
    /// # Panics
    /// When `template` is not a valid [`ResourceTemplate`] (a programming error, caught
    /// at start-up like an invalid route); [`try_new`](Self::try_new) returns the error
    /// instead.
    #[track_caller]
    pub fn new(governor: Governor, action: impl Into<String>, template: &str) -> Self {
        Self::try_new(governor, action, template).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`new`](Self::new) for a template that may be invalid (read from configuration).
    ///
    /// # Errors
    /// The [`TemplateError`] saying what is wrong with `template`.
    pub fn try_new(
        governor: Governor,
        action: impl Into<String>,
        template: &str,
    ) -> Result<Self, TemplateError> {
        Ok(Self {
            requirement: Arc::new(RouteRequirement::new(governor, action, template)?),
        })
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Require {
            inner,
            requirement: Arc::clone(&self.requirement),
        }
    }
}

/// The service made by [`RequireLayer`]: authorizes, then calls the inner service.
#[derive(Clone, Debug)]
pub struct Require<S> {
    inner: S,
    requirement: Arc<RouteRequirement>,
}

impl<S, B> Service<Request<B>> for Require<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let requirement = Arc::clone(&self.requirement);
        ResponseFuture {
            inner: Box::pin(async move {
                let (mut parts, body) = request.into_parts();
                match require(&requirement, &mut parts).await {
                    Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                    Err(refusal) => Ok(refusal.into_response()),
                }
            }),
        }
    }
}

/// Runs the require step on a request's parts; on allow the principal and the decision
/// are in `parts.extensions`.
async fn require(requirement: &RouteRequirement, parts: &mut Parts) -> Result<(), Refusal> {
    let governor = requirement.governor();
    let context = context(&parts.headers);
    // A caller verified by another governor is verified again by this one.
    let verified = parts
        .extensions
        .remove::<Verified>()
        .and_then(|v| v.for_governor(governor));
    let params = if requirement.template().has_placeholders() {
        Some(RawPathParams::from_request_parts(parts, &()).await)
    } else {
        None
    };
    let render = |template: &ResourceTemplate| {
        let params = match params {
            Some(Ok(params)) => params,
            // Not UTF-8 once percent-decoded: not a resource segment.
            Some(Err(RawPathParamsRejection::InvalidUtf8InPathParam(_))) => {
                return Err(RenderError::NotUtf8);
            }
            // The route has no parameters at all: every placeholder is missing.
            _ => return template.render(|_| None),
        };
        template.render(|name| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v))
    };
    let (principal, decision) = requirement
        .check(
            verified,
            authorization(&parts.headers),
            parts.uri.path(),
            render,
            &context,
        )
        .await?;
    parts.extensions.insert(Verified::new(principal, governor));
    parts.extensions.insert(Arc::new(decision));
    Ok(())
}

// ---------------------------------------------------------------------- extractors

pub use super::{Authenticated, Authorized};
use super::{Verified, not_installed};

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Refusal> {
        match parts.extensions.get::<Verified>() {
            Some(verified) => Ok(Self(Arc::clone(verified.principal()))),
            None => Err(not_installed(
                "Authenticated extractor without AuthenticateLayer or RequireLayer",
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Refusal> {
        match parts.extensions.get::<Arc<Decision>>() {
            Some(decision) => Ok(Self(decision.clone())),
            None => Err(not_installed("Authorized extractor without RequireLayer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_render_with_their_headers() {
        let response = Refusal::unavailable("signing keys unavailable").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "5");
        assert_eq!(response.headers()["content-type"], "application/json");
        let cloud = crate::Cloud::global();
        let challenge = crate::http::challenge::insufficient_claims(cloud.authority(), "{}");
        let response = Refusal::insufficient_claims(&cloud, "{}").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], challenge);
    }

    fn governor() -> Governor {
        Governor::builder()
            .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
            .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
            .build()
            .unwrap()
    }

    #[test]
    fn try_new_returns_the_template_error_new_would_panic_with() {
        let e = RequireLayer::try_new(governor(), "a.b", "models/{").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid resource template \"models/{\": unclosed '{'"
        );
        assert!(RequireLayer::try_new(governor(), "a.b", "models/{m}").is_ok());
        let panic = std::panic::catch_unwind(|| RequireLayer::new(governor(), "a.b", "models/{"));
        assert!(panic.is_err());
    }

    #[test]
    #[allow(deprecated)]
    fn the_former_names_still_compile() {
        let _: GovernorLayer = AuthenticateLayer::new(governor());
    }
}
