//! actix-web 4 integration (feature `actix`): middleware that authenticates, middleware
//! that authorizes per resource, and extractors for handlers.
//!
//! - [`Authenticate`] verifies the bearer token of every request and puts the
//!   caller's [`Principal`](crate::Principal) (shared with the verified-token cache: no
//!   copy per request, and tagged with the governor that verified it) in the request
//!   extensions, or answers the refusal (400, 401, 503).
//! - [`Require`] requires an action on a resource named by the route's match info
//!   (`inference.invoke` on `models/{model}`); on allow it puts the [`Decision`] (an
//!   `Arc<Decision>`) in the request extensions, otherwise it answers 403 (or 503). Wrap the
//!   [`Resource`](actix_web::Resource) (or a [`Scope`](actix_web::Scope) whose path holds
//!   the parameters): middleware on the `App` runs before routing and sees no
//!   parameters. It verifies the token itself when no [`Authenticate`] ran before
//!   it, so it also works alone.
//! - [`Authenticated`] and [`Authorized`] hand the principal and the decision to handlers.
//! - [`Refusal`] implements [`ResponseError`], so handlers that decide on resources named
//!   in a request body answer exactly as the middleware does.
//!
//! Every refusal is rendered from [`crate::http::Refusal`], the mapping shared with the
//! axum adapter, and the require step is [`crate::http::RouteRequirement::check`], shared
//! too: both frameworks answer with the same status, `WWW-Authenticate`, `Retry-After`
//! and JSON body (see [`crate::http`] for the table). This module only reads headers and
//! match info, fills the request extensions and writes responses.
//!
//! Each middleware is a `Transform` named for what it does, and the service it makes is
//! named after it, as in actix-web (`Logger` / `LoggerMiddleware`): [`Authenticate`]
//! makes [`AuthenticateMiddleware`], [`Require`] makes [`RequireMiddleware`].
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use entra_governor::actix::{Authenticate, Authenticated, Authorized, Require};
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
//! // The resource is in the body: decide in the handler, answer like the middleware does.
//! async fn submit(
//!     governor: web::Data<Governor>,
//!     Authenticated(caller): Authenticated,
//!     job: web::Json<Job>,
//! ) -> Result<String, Refusal> {
//!     let resource = format!("models/{}", job.base_model);
//!     // Decided, recorded in the audit trail, and refused exactly as the middleware would.
//!     entra_governor::http::authorize(&governor, &caller, "training.submit", &resource, &Default::default()).await?;
//!     Ok(format!("training {resource} for {}", caller.id()))
//! }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let governor = Governor::builder()
//!         .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!         .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!         .policy(Policy::from_path("examples/policy.toml")?)
//!         .build()?;
//!
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(web::Data::new(governor.clone()))
//!             .service(
//!                 web::resource("/v1/models/{model}/infer")
//!                     .route(web::post().to(infer))
//!                     .wrap(Require::new(governor.clone(), "inference.invoke", "models/{model}")),
//!             )
//!             .route("/v1/training/jobs", web::post().to(submit))
//!             .wrap(Authenticate::new(governor.clone()))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```
//!
//! ## Resource templates
//!
//! `{name}` placeholders take the match-info parameter of that name (one segment),
//! `{*name}` a tail parameter (`/v1/datasets/{name:.*}`); see
//! [`ResourceTemplate`](crate::http::ResourceTemplate) for what a value may hold.
//! actix-web leaves `%2F`, `%25` and `%2B` encoded in match info; values holding `%` are
//! refused (403), so the two adapters refuse the same requests. A
//! placeholder the route does not have is a server bug: such requests are refused with
//! 500 `server_error`, never authorized, and logged at `error` level. A malformed
//! template makes [`Require::new`] panic at start-up; [`Require::try_new`] returns the
//! [`TemplateError`] instead.

pub mod openai;

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::http::{self, RouteRequirement, TemplateError};
use crate::{Decision, Governor, RequestContext};

pub use crate::http::Refusal;

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        json_response(self.status_code(), self.headers(), self.body_json())
    }
}

/// A refusal's response, whatever shape its body takes.
fn json_response(
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: String,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    response.body(body)
}

fn authorization(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers.get_all(AUTHORIZATION).map(|value| value.as_bytes())
}

/// The audit context of a request: its `x-request-id` or `x-correlation-id` header, and
/// its W3C `traceparent` (so OTLP audit records join the caller's trace).
fn context(headers: &HeaderMap) -> RequestContext {
    let id = headers
        .get("x-request-id")
        .or_else(|| headers.get("x-correlation-id"));
    let traceparent = headers.get("traceparent").map(|v| v.as_bytes());
    http::request_context_with_trace(id.map(|v| v.as_bytes()), traceparent)
}

/// The future of [`AuthenticateMiddleware`] and [`RequireMiddleware`].
type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Answers `refusal` instead of calling the inner service.
fn refuse<B>(request: ServiceRequest, refusal: &Refusal) -> ServiceResponse<EitherBody<B>> {
    request
        .into_response(refusal.error_response())
        .map_into_right_body()
}

// ------------------------------------------------------------------- authentication

/// Middleware that verifies the bearer token of every request and inserts the caller's
/// [`Principal`](crate::Principal) into the request extensions; refuses with 400, 401 or 503 otherwise.
///
/// ```
/// # use actix_web::{App, web};
/// # use entra_governor::actix::Authenticate;
/// # fn app(governor: entra_governor::Governor) {
/// App::new()
///     .route("/v1/models", web::get().to(|| async { "[]" }))
///     .wrap(Authenticate::new(governor));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Authenticate {
    governor: Governor,
}

/// The former name of [`Authenticate`].
#[deprecated(note = "renamed `Authenticate`")]
pub type GovernorMiddleware = Authenticate;

/// The former name of [`AuthenticateMiddleware`].
#[deprecated(note = "renamed `AuthenticateMiddleware`")]
pub type GovernorService<S> = AuthenticateMiddleware<S>;

/// The former name of [`RequireMiddleware`].
#[deprecated(note = "renamed `RequireMiddleware`")]
pub type RequireService<S> = RequireMiddleware<S>;

impl Authenticate {
    /// Middleware that authenticates every request with `governor`.
    pub fn new(governor: Governor) -> Self {
        Self { governor }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Authenticate
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = AuthenticateMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthenticateMiddleware {
            service: Rc::new(service),
            governor: self.governor.clone(),
        }))
    }
}

/// The service made by [`Authenticate`]: authenticates, then calls the inner service.
pub struct AuthenticateMiddleware<S> {
    service: Rc<S>,
    governor: Governor,
}

impl<S> fmt::Debug for AuthenticateMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateMiddleware")
            .field("governor", &self.governor)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for AuthenticateMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let governor = self.governor.clone();
        Box::pin(async move {
            let context = context(request.headers());
            let outcome = http::authenticate(
                &governor,
                authorization(request.headers()),
                request.path(),
                &context,
            )
            .await;
            match outcome {
                Ok(principal) => {
                    request
                        .extensions_mut()
                        .insert(Verified::new(principal, &governor));
                    Ok(service.call(request).await?.map_into_left_body())
                }
                Err(refusal) => Ok(refuse(request, &refusal)),
            }
        })
    }
}

// -------------------------------------------------------------------- authorization

/// Middleware that requires an action on a resource named by the route's match info;
/// inserts the allowing [`Decision`] (and the [`Principal`](crate::Principal)) into the request extensions,
/// or refuses.
///
/// The caller is the [`Principal`](crate::Principal) an [`Authenticate`] put in the extensions;
/// without one, this middleware verifies the bearer token itself (same refusals).
/// A caller verified by another governor (another audience, another revocation list)
/// is not trusted: the bearer token is verified again by this one. The caller is also
/// checked again for expiry and revocation before the decision
/// ([`Governor::authorize_principal`]).
///
/// ```
/// # use actix_web::{App, web};
/// # use entra_governor::actix::Require;
/// # fn app(governor: entra_governor::Governor) {
/// App::new().service(
///     web::resource("/v1/models/{model}/deploy")
///         .route(web::post().to(|| async { "deploying" }))
///         .wrap(Require::new(governor, "models.deploy", "models/{model}")),
/// );
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Require {
    requirement: Arc<RouteRequirement>,
}

impl Require {
    /// Requires `action` on the resource `template` names, e.g. `"inference.invoke"` on
    /// `"models/{model}"`.
    ///
    /// # Panics
    /// When `template` is not a valid [`ResourceTemplate`](crate::http::ResourceTemplate)
    /// (a programming error, caught at start-up); [`try_new`](Self::try_new) returns the
    /// error instead.
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

    /// Runs the require step; on allow the principal and the decision are in the request
    /// extensions.
    async fn check(&self, request: &ServiceRequest) -> Result<(), Refusal> {
        let governor = self.requirement.governor();
        let existing = request.extensions_mut().remove::<Verified>();
        let context = context(request.headers());
        // A caller verified by another governor is verified again by this one.
        let verified = existing.and_then(|v| v.for_governor(governor));
        let params = request.match_info();
        let (principal, decision) = self
            .requirement
            .check(
                verified,
                authorization(request.headers()),
                request.path(),
                |template| template.render(|name| params.get(name)),
                &context,
            )
            .await?;
        let mut extensions = request.extensions_mut();
        extensions.insert(Verified::new(principal, governor));
        extensions.insert(Arc::new(decision));
        Ok(())
    }
}

impl<S, B> Transform<S, ServiceRequest> for Require
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireMiddleware {
            service: Rc::new(service),
            require: self.clone(),
        }))
    }
}

/// The service made by [`Require`]: authorizes, then calls the inner service.
pub struct RequireMiddleware<S> {
    service: Rc<S>,
    require: Require,
}

impl<S> fmt::Debug for RequireMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireMiddleware")
            .field("require", &self.require)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for RequireMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let require = self.require.clone();
        Box::pin(async move {
            match require.check(&request).await {
                Ok(()) => Ok(service.call(request).await?.map_into_left_body()),
                Err(refusal) => Ok(refuse(request, &refusal)),
            }
        })
    }
}

// ---------------------------------------------------------------------- extractors

pub use super::{Authenticated, Authorized};
use super::{Verified, not_installed};

impl FromRequest for Authenticated {
    type Error = Refusal;
    type Future = Ready<Result<Self, Refusal>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(match request.extensions().get::<Verified>() {
            Some(verified) => Ok(Self(Arc::clone(verified.principal()))),
            None => Err(not_installed(
                "Authenticated extractor without Authenticate or Require",
            )),
        })
    }
}

impl FromRequest for Authorized {
    type Error = Refusal;
    type Future = Ready<Result<Self, Refusal>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(match request.extensions().get::<Arc<Decision>>() {
            Some(decision) => Ok(Self(decision.clone())),
            None => Err(not_installed("Authorized extractor without Require")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(response: &HttpResponse, name: &str) -> String {
        response
            .headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn refusals_render_with_their_headers() {
        let response = Refusal::unavailable("signing keys unavailable").error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&response, "retry-after"), "5");
        assert_eq!(header(&response, "content-type"), "application/json");
        let cloud = crate::Cloud::global();
        let challenge = crate::http::challenge::insufficient_claims(cloud.authority(), "{}");
        let response = Refusal::insufficient_claims(&cloud, "{}").error_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&response, "www-authenticate"), challenge);
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
        let e = Require::try_new(governor(), "a.b", "models/{").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid resource template \"models/{\": unclosed '{'"
        );
        assert!(Require::try_new(governor(), "a.b", "models/{m}").is_ok());
        let panic = std::panic::catch_unwind(|| Require::new(governor(), "a.b", "models/{"));
        assert!(panic.is_err());
    }

    #[test]
    #[allow(deprecated)]
    fn the_former_names_still_compile() {
        let _: GovernorMiddleware = Authenticate::new(governor());
    }
}
