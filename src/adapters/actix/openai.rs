//! OpenAI-compatible routes on actix-web: [`RequireModel`] authorizes the `model` of the
//! JSON body and hands the parsed body to the handler as a [`ModelRequest`];
//! [`models_service`] serves `GET /v1/models` (and `GET /v1/models/{model}`) with exactly
//! the models the caller may invoke. Errors are in OpenAI's shape, with the statuses and
//! `WWW-Authenticate` values of every other route ([`crate::ai::openai`] has the table).
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use entra_governor::actix::Authenticated;
//! use entra_governor::actix::openai::{ModelRequest, RequireModel, models_service};
//! use entra_governor::ai::openai::{ModelCatalog, ModelRoute};
//!
//! // `inference.invoke` on `models/<model of the body>` was decided before this runs.
//! async fn chat(Authenticated(caller): Authenticated, request: ModelRequest) -> String {
//!     format!("{} answers {}", request.model(), caller.id())
//! }
//!
//! # async fn run(governor: entra_governor::Governor) -> Result<(), Box<dyn std::error::Error>> {
//! let route = ModelRoute::new(governor);
//! let catalog = ModelCatalog::new(&route, ["llama-3-70b", "llama-3-8b", "gpt-4o"])?;
//! HttpServer::new(move || {
//!     App::new()
//!         .service(
//!             web::resource(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
//!                 .route(web::post().to(chat))
//!                 .wrap(RequireModel::from_route(route.clone())),
//!         )
//!         .service(models_service(catalog.clone()))
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! [`RequireModel`] authenticates the caller itself (or takes the one an
//! [`Authenticate`](super::Authenticate) of the same governor verified). It reads the
//! body only after the caller is authenticated and never more than the limit, then puts
//! the same bytes back as the request's payload for handlers that forward it unchanged.

use std::fmt;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::{self, Bytes};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, Scope};

use super::{LocalBoxFuture, authorization, context, json_response};
use crate::adapters::{Verified, not_installed};
use crate::ai::body::BodyError;
use crate::ai::openai::{ModelCatalog, ModelRoute, OpenAiError};
use crate::{Governor, Principal, RequestContext};

pub use crate::ai::openai::ModelRequest;

impl ResponseError for OpenAiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        json_response(self.status_code(), self.headers(), self.body_json())
    }
}

// ------------------------------------------------------------------------ middleware

/// Middleware that authorizes the model named in the JSON body of every request on the
/// resource or scope it wraps, and puts the parsed body ([`ModelRequest`]), the caller and
/// the decision in the request extensions; refuses in OpenAI's shape otherwise.
#[derive(Clone, Debug)]
pub struct RequireModel {
    route: Arc<ModelRoute>,
}

impl RequireModel {
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

    /// Authenticates, reads the body within the limit and runs [`ModelRoute::check`]; on
    /// allow the caller, the decision and the parsed body are in the request extensions
    /// and the payload holds the same bytes again.
    async fn check(&self, request: &mut ServiceRequest) -> Result<(), OpenAiError> {
        let route = &*self.route;
        let governor = route.governor();
        let context = context(request.headers());
        let verified = request
            .extensions_mut()
            .remove::<Verified>()
            .and_then(|v| v.for_governor(governor));
        let principal = route
            .authenticate(
                verified,
                authorization(request.headers()),
                request.path(),
                &context,
            )
            .await?;
        let bytes = match read_bounded(request, route.max_body_bytes()).await {
            Ok(bytes) => bytes,
            Err(error) => {
                return Err(route
                    .refuse_body(&principal, error, request.path(), &context)
                    .await);
            }
        };
        let content_type = request.headers().get(CONTENT_TYPE).map(|v| v.as_bytes());
        let (model, decision) = route
            .check(&principal, content_type, &bytes, request.path(), &context)
            .await?;
        request.set_payload(Payload::from(bytes));
        let mut extensions = request.extensions_mut();
        extensions.insert(Verified::new(principal, governor));
        extensions.insert(Arc::new(decision));
        extensions.insert(model);
        Ok(())
    }
}

/// The payload; [`BodyError::TooLarge`] when its declared or actual length is over
/// `limit` bytes, [`BodyError::Unreadable`] when the connection failed while reading it.
async fn read_bounded(request: &mut ServiceRequest, limit: usize) -> Result<Bytes, BodyError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let payload = request
        .extract::<web::Payload>()
        .await
        .map_err(|_| BodyError::Unreadable)?;
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(BodyError::Unreadable),
        Err(_) => Err(BodyError::TooLarge { limit }),
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireModel
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireModelMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireModelMiddleware {
            service: Rc::new(service),
            require: self.clone(),
        }))
    }
}

/// The service made by [`RequireModel`]: authorizes the body, then calls the inner
/// service.
pub struct RequireModelMiddleware<S> {
    service: Rc<S>,
    require: RequireModel,
}

impl<S> fmt::Debug for RequireModelMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireModelMiddleware")
            .field("require", &self.require)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for RequireModelMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let require = self.require.clone();
        Box::pin(async move {
            match require.check(&mut request).await {
                Ok(()) => Ok(service.call(request).await?.map_into_left_body()),
                Err(error) => Ok(request
                    .into_response(error.error_response())
                    .map_into_right_body()),
            }
        })
    }
}

// ------------------------------------------------------------------------- extractors

impl FromRequest for ModelRequest {
    type Error = OpenAiError;
    type Future = Ready<Result<Self, OpenAiError>>;

    /// The parsed body [`RequireModel`] authorized, moved out of the extensions (a
    /// handler takes it once).
    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions_mut()
                .remove::<ModelRequest>()
                .ok_or_else(|| not_installed("ModelRequest extractor without RequireModel").into()),
        )
    }
}

// ------------------------------------------------------------------------ the listing

/// A scope at `/v1/models` answering `GET /v1/models` (the models the caller may invoke)
/// and `GET /v1/models/{model}` (the model's card, or 404 `model_not_found` for a model
/// not listed for the caller), authenticating the caller itself unless an
/// [`Authenticate`](super::Authenticate) of the same governor did.
pub fn models_service(catalog: ModelCatalog) -> Scope {
    let catalog = web::Data::new(catalog);
    web::scope("/v1/models")
        .app_data(catalog)
        .route("", web::get().to(list))
        .route("/{model}", web::get().to(retrieve))
}

async fn list(request: HttpRequest, catalog: web::Data<ModelCatalog>) -> HttpResponse {
    let context = context(request.headers());
    let answer = match listing_caller(&catalog, &request, &context).await {
        Ok(principal) => catalog.visible_to(&principal, &context).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(list) => json(list.to_json()),
        Err(e) => e.error_response(),
    }
}

async fn retrieve(
    request: HttpRequest,
    catalog: web::Data<ModelCatalog>,
    model: web::Path<String>,
) -> HttpResponse {
    let context = context(request.headers());
    let answer = match listing_caller(&catalog, &request, &context).await {
        Ok(principal) => catalog.retrieve(&principal, &model, &context).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(card) => json(serde_json::to_string(&card).unwrap_or_default()),
        Err(e) => e.error_response(),
    }
}

async fn listing_caller(
    catalog: &ModelCatalog,
    request: &HttpRequest,
    context: &RequestContext,
) -> Result<Arc<Principal>, OpenAiError> {
    let governor = catalog.governor();
    let verified = request.extensions().get::<Verified>().cloned();
    if let Some(principal) = verified.and_then(|v| v.for_governor(governor)) {
        return Ok(principal);
    }
    crate::http::authenticate(
        governor,
        authorization(request.headers()),
        request.path(),
        context,
    )
    .await
    .map_err(OpenAiError::from_refusal)
}

fn json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}
