//! axum 0.8 integration (feature `axum`): a layer that authenticates, a per-route layer
//! that authorizes, and extractors for handlers.
//!
//! - [`GovernorLayer`] verifies the bearer token of every request and puts the caller's
//!   [`Principal`](crate::Principal) (shared with the verified-token cache: no copy per
//!   request, and tagged with the governor that verified it) in the request extensions,
//!   or answers the refusal (400, 401, 503).
//! - [`RequireLayer`] requires an action on a resource named by the route's parameters
//!   (`inference.invoke` on `models/{model}`); on allow it puts the [`Decision`] (an
//!   `Arc<Decision>`) in the request extensions, otherwise it answers 403 (or 503). Use it with
//!   [`route_layer`](::axum::Router::route_layer) or on one
//!   [`MethodRouter`](::axum::routing::MethodRouter). It verifies the token itself when
//!   no [`GovernorLayer`] ran before it, so it also works alone.
//! - [`Authenticated`] and [`Authorized`] hand the principal and the decision to handlers.
//! - [`Refusal`] implements [`IntoResponse`], so handlers that decide on resources named
//!   in a request body answer exactly as the layers do.
//!
//! Every refusal is rendered from [`crate::http::Refusal`], the mapping shared with the
//! actix-web adapter: both frameworks answer with the same status, `WWW-Authenticate`,
//! `Retry-After` and JSON body (see [`crate::http`] for the table).
//!
//! ```no_run
//! use axum::{Json, Router, routing::{get, post}};
//! use entra_governor::axum::{Authenticated, Authorized, GovernorLayer, RequireLayer};
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
//!     .layer(GovernorLayer::new(governor.clone()))
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
//! start-up, like an invalid route makes axum panic.
//!
//! ## Order
//!
//! With `Router::layer(GovernorLayer)` outermost and `route_layer(RequireLayer)` per
//! route, a request is authenticated once (401 before anything else), then authorized
//! after routing, so an unknown path is still 404 for an authenticated caller. Layers
//! that must answer unauthenticated requests (CORS preflights, health checks) go outside
//! `GovernorLayer`, or on routes it does not cover.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::extract::rejection::RawPathParamsRejection;
use ::axum::extract::{FromRequestParts, RawPathParams};
use ::axum::http::header::AUTHORIZATION;
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use ::axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::http::{self, RenderError, ResourceTemplate};
use crate::{Decision, Governor, RequestContext};

pub use crate::http::Refusal;

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body_json()).into_response();
        let headers = response.headers_mut();
        for (name, value) in self.headers() {
            // Every value is built by `crate::http` from fixed text and digits.
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

fn authorization(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
}

/// The audit context of a request: its `x-request-id` or `x-correlation-id` header.
fn context(headers: &HeaderMap) -> RequestContext {
    let id = headers
        .get("x-request-id")
        .or_else(|| headers.get("x-correlation-id"));
    http::request_context(id.map(HeaderValue::as_bytes))
}

/// The future of [`GovernorService`] and [`RequireService`].
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
/// # use entra_governor::axum::GovernorLayer;
/// # fn app(governor: entra_governor::Governor) -> Router {
/// Router::new()
///     .route("/v1/models", get(|| async { "[]" }))
///     .layer(GovernorLayer::new(governor))
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct GovernorLayer {
    governor: Governor,
}

impl GovernorLayer {
    /// A layer that authenticates every request with `governor`.
    pub fn new(governor: Governor) -> Self {
        Self { governor }
    }
}

impl<S> Layer<S> for GovernorLayer {
    type Service = GovernorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GovernorService {
            inner,
            governor: self.governor.clone(),
        }
    }
}

/// The service made by [`GovernorLayer`].
#[derive(Clone, Debug)]
pub struct GovernorService<S> {
    inner: S,
    governor: Governor,
}

impl<S, B> Service<Request<B>> for GovernorService<S>
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
/// The caller is the [`Principal`](crate::Principal) a [`GovernorLayer`] put in the extensions; without
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
    governor: Governor,
    action: Arc<str>,
    template: Arc<ResourceTemplate>,
}

impl RequireLayer {
    /// Requires `action` on the resource `template` names, e.g. `"inference.invoke"` on
    /// `"models/{model}"`.
    ///
    /// # Panics
    /// When `template` is not a valid [`ResourceTemplate`] (a programming error, caught
    /// at start-up like an invalid route).
    #[track_caller]
    pub fn new(governor: Governor, action: impl Into<String>, template: &str) -> Self {
        let template = ResourceTemplate::parse(template).unwrap_or_else(|e| panic!("{e}"));
        Self {
            governor,
            action: action.into().into(),
            template: Arc::new(template),
        }
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService {
            inner,
            require: Arc::new(self.clone()),
        }
    }
}

/// The service made by [`RequireLayer`].
#[derive(Clone, Debug)]
pub struct RequireService<S> {
    inner: S,
    /// One reference count to bump per request, not one per field.
    require: Arc<RequireLayer>,
}

impl<S, B> Service<Request<B>> for RequireService<S>
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
        let require = Arc::clone(&self.require);
        ResponseFuture {
            inner: Box::pin(async move {
                let (mut parts, body) = request.into_parts();
                match require.check(&mut parts).await {
                    Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                    Err(refusal) => Ok(refusal.into_response()),
                }
            }),
        }
    }
}

impl RequireLayer {
    /// Authenticates (unless done), fills the template, decides; on allow the principal
    /// and the decision are in `parts.extensions`.
    async fn check(&self, parts: &mut Parts) -> Result<(), Refusal> {
        let context = context(&parts.headers);
        let verified = parts.extensions.remove::<Verified>();
        // A caller verified by another governor is verified again by this one.
        let principal = match verified.and_then(|v| v.for_governor(&self.governor)) {
            Some(principal) => principal,
            None => {
                let path = parts.uri.path().to_owned();
                let headers = authorization(&parts.headers);
                http::authenticate(&self.governor, headers, &path, &context).await?
            }
        };
        let resource = match self.resource(parts).await {
            Ok(resource) => resource,
            Err(refusal) => {
                if refusal.status == 403 {
                    let path = parts.uri.path().to_owned();
                    http::record_invalid_resource(
                        &self.governor,
                        &principal,
                        &self.action,
                        &path,
                        &context,
                    )
                    .await;
                }
                return Err(refusal);
            }
        };
        let decision = http::authorize(
            &self.governor,
            &principal,
            &self.action,
            &resource,
            &context,
        )
        .await?;
        parts
            .extensions
            .insert(Verified::new(principal, &self.governor));
        parts.extensions.insert(Arc::new(decision));
        Ok(())
    }

    async fn resource(&self, parts: &mut Parts) -> Result<String, Refusal> {
        if !self.template.has_placeholders() {
            return Ok(self.template.as_str().to_owned());
        }
        let params = match RawPathParams::from_request_parts(parts, &()).await {
            Ok(params) => Some(params),
            // Not UTF-8 once percent-decoded: not a resource segment.
            Err(RawPathParamsRejection::InvalidUtf8InPathParam(_)) => {
                return Err(Refusal::forbidden());
            }
            // The route has no parameters at all: every placeholder is missing.
            Err(_) => None,
        };
        let param = |name: &str| {
            let params = params.as_ref()?;
            params.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
        };
        self.template.render(param).map_err(|e| self.refuse(&e))
    }

    fn refuse(&self, error: &RenderError) -> Refusal {
        if let RenderError::MissingParameter { name } = error {
            tracing::error!(
                template = self.template.as_str(),
                parameter = name.as_str(),
                "RequireLayer: the route has no path parameter for this resource template \
                 placeholder; requests are refused with 500"
            );
        }
        Refusal::from_render_error(error)
    }
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
                "Authenticated extractor without GovernorLayer or RequireLayer",
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
}
