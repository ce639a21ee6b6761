//! OpenAI-compatible routes on axum: [`RequireModelLayer`] authorizes the `model` of the
//! JSON body and hands the parsed body to the handler as a [`ModelRequest`];
//! [`models_router`] serves `GET /v1/models` (and `GET /v1/models/{model}`) with exactly
//! the models the caller may invoke. Errors are in OpenAI's shape, with the statuses and
//! `WWW-Authenticate` values of every other route ([`crate::ai::openai`] has the table).
//!
//! ```
//! use axum::{Json, Router, routing::post};
//! use entra_governor::ai::openai::{MODEL_ROUTES, ModelCatalog, ModelRoute};
//! use entra_governor::axum::Authenticated;
//! use entra_governor::axum::openai::{ModelRequest, RequireModelLayer, models_router};
//! use serde_json::{Value, json};
//!
//! // `inference.invoke` on `models/<model of the body>` was decided before this runs.
//! async fn chat(Authenticated(caller): Authenticated, request: ModelRequest) -> Json<Value> {
//!     Json(json!({ "model": request.model(), "caller": caller.id().to_string() }))
//! }
//!
//! # fn app(governor: entra_governor::Governor) -> Result<Router, Box<dyn std::error::Error>> {
//! let route = ModelRoute::new(governor); // the defaults: inference.invoke, models/{model}, 4 MiB
//! let catalog = ModelCatalog::new(&route, ["llama-3-70b", "llama-3-8b", "gpt-4o"])?;
//! let mut api = Router::new();
//! for path in MODEL_ROUTES {
//!     api = api.route(path, post(chat));
//! }
//! let app = api
//!     .route_layer(RequireModelLayer::from_route(route))
//!     .merge(models_router(catalog));
//! # Ok(app) }
//! ```
//!
//! [`RequireModelLayer`] authenticates the caller itself (or takes the one an
//! [`AuthenticateLayer`](super::AuthenticateLayer) of the same governor verified), so
//! the OpenAI routes need no other layer. Put it on routes with `route_layer`, so that
//! unknown paths stay 404. It reads the body only after the caller is authenticated, and
//! never more than the limit: a `Content-Length` over it is refused before reading, a
//! body that grows past it while streaming too.

use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::Router;
use ::axum::body::{Body, Bytes};
use ::axum::extract::{FromRequestParts, Path};
use ::axum::http::header::CONTENT_TYPE;
use ::axum::http::request::Parts;
use ::axum::http::{HeaderValue, Request};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;
use tower::{Layer, Service};

use super::{
    Read, ResponseFuture, authorization, context, json_response, read_bounded, take_ready,
};
use crate::adapters::{Verified, not_installed};
use crate::ai::body::BodyError;
use crate::ai::openai::{ModelCatalog, ModelRoute, OpenAiError};
use crate::{Governor, Principal, RequestContext};

pub use crate::ai::openai::ModelRequest;

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        json_response(self.status, self.headers(), self.body_json())
    }
}

// ---------------------------------------------------------------------------- the layer

/// Authorizes the model named in the JSON body of every request on the routes it wraps,
/// and puts the parsed body ([`ModelRequest`]), the caller and the decision in the request
/// extensions; refuses in OpenAI's shape otherwise.
#[derive(Clone, Debug)]
pub struct RequireModelLayer {
    route: Arc<ModelRoute>,
}

impl RequireModelLayer {
    /// `inference.invoke` on `models/{model}`, bodies up to 4 MiB, decided by `governor`.
    pub fn new(governor: Governor) -> Self {
        Self::from_route(ModelRoute::new(governor))
    }

    /// The requirement `route` describes (another action, template or body limit).
    pub fn from_route(route: ModelRoute) -> Self {
        Self {
            route: Arc::new(route),
        }
    }
}

impl<S> Layer<S> for RequireModelLayer {
    type Service = RequireModel<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireModel {
            inner,
            route: Arc::clone(&self.route),
        }
    }
}

/// The service made by [`RequireModelLayer`]: authenticates, reads and authorizes the
/// body, then calls the inner service with the same bytes as its body.
#[derive(Clone, Debug)]
pub struct RequireModel<S> {
    inner: S,
    route: Arc<ModelRoute>,
}

impl<S> Service<Request<Body>> for RequireModel<S>
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
        let route = Arc::clone(&self.route);
        ResponseFuture {
            inner: Box::pin(async move {
                let (mut parts, body) = request.into_parts();
                match require_model(&route, &mut parts, body).await {
                    Ok(bytes) => {
                        inner
                            .call(Request::from_parts(parts, Body::from(bytes)))
                            .await
                    }
                    Err(error) => Ok(error.into_response()),
                }
            }),
        }
    }
}

/// Authenticates, reads the body within the limit and runs [`ModelRoute::check`]; on
/// allow the caller, the decision and the parsed body are in `parts.extensions` and the
/// body's bytes are returned for the inner service.
async fn require_model(
    route: &ModelRoute,
    parts: &mut Parts,
    body: Body,
) -> Result<Bytes, OpenAiError> {
    let governor = route.governor();
    let context = context(&parts.headers);
    let principal = caller(route, parts, &context).await?;
    let path = parts.uri.path();
    let limit = route.max_body_bytes();
    let bytes = match read_bounded(body, limit).await {
        Ok(bytes) => bytes,
        Err(unread) => {
            let error = match unread {
                Read::TooLarge => BodyError::TooLarge { limit },
                Read::Failed => BodyError::Unreadable,
            };
            return Err(route.refuse_body(&principal, error, path, &context).await);
        }
    };
    let content_type = parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes);
    let (request, decision) = route
        .check(&principal, content_type, &bytes, path, &context)
        .await?;
    parts.extensions.insert(Verified::new(principal, governor));
    parts.extensions.insert(Arc::new(decision));
    parts.extensions.insert(request);
    Ok(bytes)
}

/// The caller an authenticate layer of this governor verified, or the one this request's
/// bearer token names.
async fn caller(
    route: &ModelRoute,
    parts: &mut Parts,
    context: &RequestContext,
) -> Result<Arc<Principal>, OpenAiError> {
    let verified = parts
        .extensions
        .remove::<Verified>()
        .and_then(|v| v.for_governor(route.governor()));
    let (headers, path) = (authorization(&parts.headers), parts.uri.path());
    route.authenticate(verified, headers, path, context).await
}

// ------------------------------------------------------------------------- extractors

impl<S: Send + Sync> FromRequestParts<S> for ModelRequest {
    type Rejection = OpenAiError;

    /// The parsed body [`RequireModelLayer`] authorized, moved out of the extensions (a
    /// handler takes it once).
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, OpenAiError> {
        parts
            .extensions
            .remove::<ModelRequest>()
            .ok_or_else(|| not_installed("ModelRequest extractor without RequireModelLayer").into())
    }
}

// ------------------------------------------------------------------------ the listing

/// `GET /v1/models` (the models the caller may invoke) and `GET /v1/models/{model}` (the
/// model's card, or 404 `model_not_found` for a model not listed for the caller), each
/// authenticating the caller itself unless an
/// [`AuthenticateLayer`](super::AuthenticateLayer) of the same governor did.
pub fn models_router<S: Clone + Send + Sync + 'static>(catalog: ModelCatalog) -> Router<S> {
    let one = catalog.clone();
    Router::new()
        .route(
            "/v1/models",
            get(move |request: Request<Body>| {
                let catalog = catalog.clone();
                async move { list(&catalog, &mut request.into_parts().0).await }
            }),
        )
        .route(
            "/v1/models/{model}",
            get(move |Path(model): Path<String>, request: Request<Body>| {
                let catalog = one.clone();
                async move { retrieve(&catalog, &mut request.into_parts().0, &model).await }
            }),
        )
}

async fn list(catalog: &ModelCatalog, parts: &mut Parts) -> Response {
    let context = context(&parts.headers);
    let answer = match listing_caller(catalog, parts, &context).await {
        Ok(principal) => catalog.visible_to(&principal, &context).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(list) => json(list.to_json()),
        Err(e) => e.into_response(),
    }
}

async fn retrieve(catalog: &ModelCatalog, parts: &mut Parts, model: &str) -> Response {
    let context = context(&parts.headers);
    let answer = match listing_caller(catalog, parts, &context).await {
        Ok(principal) => catalog.retrieve(&principal, model, &context).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(card) => json(serde_json::to_string(&card).unwrap_or_default()),
        Err(e) => e.into_response(),
    }
}

async fn listing_caller(
    catalog: &ModelCatalog,
    parts: &mut Parts,
    context: &RequestContext,
) -> Result<Arc<Principal>, OpenAiError> {
    let governor = catalog.governor();
    if let Some(principal) = parts
        .extensions
        .get::<Verified>()
        .cloned()
        .and_then(|v| v.for_governor(governor))
    {
        return Ok(principal);
    }
    let (headers, path) = (authorization(&parts.headers), parts.uri.path());
    crate::http::authenticate(governor, headers, path, context)
        .await
        .map_err(OpenAiError::from_refusal)
}

fn json(body: String) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}
