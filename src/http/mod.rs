//! Framework-neutral HTTP mapping, shared by the axum and actix-web adapters so that both
//! answer identically: bearer-token extraction (RFC 6750 §2.1), the status, headers and
//! body of every refusal (RFC 6750 §3; Entra's claims challenges), resource templates
//! filled from path parameters, and the steps every adapter runs: [`authenticate`], and
//! the require step [`RouteRequirement::check`] (fill the template, [`authorize`]).
//!
//! | module | holds |
//! |---|---|
//! | `bearer` | [`bearer_token`], [`BearerError`] |
//! | `refusal` | [`Refusal`], [`RefusalBody`]: the only place that builds statuses and headers, from a [`Decision`] or a [`TokenError`](crate::TokenError) plus the governor's [`Cloud`](crate::Cloud) |
//! | `template` | [`ResourceTemplate`], [`TemplateError`], [`RenderError`] |
//! | `gate` | [`Gate`]: a gateway's question (method, URI, `Authorization`) answered through the routes, with the headers an allow carries upstream |
//! | `routes` | [`RouteTable`], [`Route`]: method and path templates mapped to an action and a resource, for gateways (the decision service's `[[routes]]`) |
//! | [`challenge`] | the claims-challenge builders |
//!
//! | outcome | status | `WWW-Authenticate` | body `error` |
//! |---|---|---|---|
//! | no `Authorization` header | 401 | `Bearer` | `invalid_request` |
//! | several, or not `Bearer <token>` | 400 | `Bearer error="invalid_request"` | `invalid_request` |
//! | token rejected | 401 | `Bearer error="invalid_token", error_description="…"` | `invalid_token` |
//! | verified caller, denied | 403 | `Bearer error="insufficient_scope"` | `insufficient_scope` |
//! | step-up or revocation challenge | 401 | `Bearer …, error="insufficient_claims", claims="…"` | `insufficient_claims` |
//! | keys or group membership unavailable | 503 + `Retry-After` | — | `temporarily_unavailable` |
//! | the server is misconfigured (a route's template, a missing middleware) | 500 | — | `server_error` |
//!
//! Every body is `application/json`, `{"error":…,"error_description":…}`, with a fixed
//! description that names neither the token's content nor the policy's roles, rules or
//! scopes.
//!
//! To write an adapter for another framework: take the `Authorization` header values and
//! call [`authenticate`]; per route, hold a [`RouteRequirement`] and call its
//! [`check`](RouteRequirement::check) with a closure that fills the template from the
//! route's parameters; write any [`Refusal`] with [`Refusal::headers`] and
//! [`Refusal::body_json`].

pub mod admin;
pub mod challenge;

mod bearer;
mod gate;
mod refusal;
mod routes;
mod template;

pub use bearer::{BearerError, bearer_token};
pub use gate::{
    Allowed, Gate, NO_ROUTE_ACTION, NO_ROUTE_REASON, NONCANONICAL_PATH_REASON, is_canonical,
    kind_name,
};
pub(crate) use refusal::json_headers;
pub use refusal::{RETRY_AFTER_SECS, Refusal, RefusalBody};
pub use routes::{Route, RouteError, RouteMatch, RouteTable};
pub use template::{RenderError, ResourceTemplate, TemplateError};

use std::sync::Arc;
use std::time::Instant;

pub use crate::audit::AUTHENTICATE_ACTION;
use crate::audit::{AuditEvent, AuditOutcome};
use crate::{Decision, Governor, Principal, RequestContext};

/// Verifies the bearer token found in a request's `Authorization` header values (all of
/// them, in order): the caller, or the refusal to send (400, 401 or 503).
///
/// This is the first step of both adapters' middleware. A refusal is recorded in the
/// audit trail (action `authenticate`, resource = the request path).
///
/// # Errors
/// The [`Refusal`] for a missing, repeated or malformed header or a rejected token.
pub async fn authenticate<'a, I>(
    governor: &Governor,
    authorization: I,
    path: &str,
    context: &RequestContext,
) -> Result<Arc<Principal>, Refusal>
where
    I: Iterator<Item = &'a [u8]>,
{
    let started = Instant::now();
    let token = match bearer_token(authorization) {
        Ok(token) => token,
        Err(e) => {
            crate::observe::token_refused(e.code());
            let event = AuditEvent::new(AuditOutcome::InvalidToken, AUTHENTICATE_ACTION, path)
                .with_reason(e.code())
                .with_explanation(e.to_string());
            // The request is refused whatever the trail says; strict mode changes nothing.
            let _ = governor.record_event(event, context, started).await;
            return Err(Refusal::from_bearer_error(e));
        }
    };
    match governor.verify_shared(token).await {
        Ok(principal) => Ok(principal),
        Err(error) => {
            crate::observe::token_refused(error.code());
            let event = AuditEvent::for_token_error(&error, AUTHENTICATE_ACTION, path);
            if let Err(e) = governor.record_event(event, context, started).await {
                return Err(Refusal::from_authorize_error(&e, governor.cloud()));
            }
            Err(Refusal::from_token_error(&error, governor.cloud()))
        }
    }
}

/// Decides whether a verified caller may perform `action` on `resource`: the allowing
/// [`Decision`], or the refusal to send (403, 503, or 401 for a step-up challenge). The
/// decision is recorded in the audit trail.
///
/// This is the second step of both adapters' `Require` middleware.
///
/// # Errors
/// The [`Refusal`] for a denying decision, from [`Refusal::from_decision`].
pub async fn authorize(
    governor: &Governor,
    principal: &Arc<Principal>,
    action: &str,
    resource: &str,
    context: &RequestContext,
) -> Result<Decision, Refusal> {
    let decision = governor
        .authorize_shared(principal, action, resource, context)
        .await
        .map_err(|e| Refusal::from_authorize_error(&e, governor.cloud()))?;
    match Refusal::from_decision(&decision, governor.cloud()) {
        Some(refusal) => Err(refusal),
        None => Ok(decision),
    }
}

/// Records (in the audit trail) a verified caller's request refused because a route
/// parameter is not a resource segment; the adapters answer it with 403.
pub async fn record_invalid_resource(
    governor: &Governor,
    principal: &Principal,
    action: &str,
    path: &str,
    context: &RequestContext,
) {
    let event = AuditEvent::from_principal(principal, AuditOutcome::Deny, action, path)
        .with_reason("invalid_resource")
        .with_explanation("the request path does not name a resource");
    let _ = governor.record_event(event, context, Instant::now()).await;
}

/// Records (in the audit trail) a verified caller's request refused for a reason of the
/// caller's own (`reason`, a snake_case code): a decision service refusing a question
/// whose subject is not the token's caller, for example.
pub async fn record_refusal(
    governor: &Governor,
    principal: &Principal,
    action: &str,
    resource: &str,
    reason: &str,
    explanation: &str,
    context: &RequestContext,
) {
    let event = AuditEvent::from_principal(principal, AuditOutcome::Deny, action, resource)
        .with_reason(reason)
        .with_explanation(explanation);
    let _ = governor.record_event(event, context, Instant::now()).await;
}

/// What a route requires: an action on the resource its template names, decided by one
/// governor. [`check`](Self::check) is the require step of both adapters (axum
/// `RequireLayer`, actix-web `Require`), written once: they keep only reading the request
/// and writing the response. An adapter for another framework holds one too.
#[derive(Clone, Debug)]
pub struct RouteRequirement {
    governor: Governor,
    action: Arc<str>,
    template: ResourceTemplate,
}

impl RouteRequirement {
    /// Requires `action` on the resource `template` names, e.g. `"inference.invoke"` on
    /// `"models/{model}"`, decided by `governor`.
    ///
    /// # Errors
    /// The [`TemplateError`] of a template that does not parse.
    pub fn new(
        governor: Governor,
        action: impl Into<String>,
        template: &str,
    ) -> Result<Self, TemplateError> {
        Ok(Self {
            governor,
            action: action.into().into(),
            template: ResourceTemplate::parse(template)?,
        })
    }

    /// The governor that authenticates and decides.
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// The action required.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The template naming the resource.
    pub fn template(&self) -> &ResourceTemplate {
        &self.template
    }

    /// The require step: authenticates the request unless `verified` holds a caller this
    /// requirement's governor verified earlier (an authenticate layer ran before), fills
    /// the template with `render` (called only when it has placeholders, and only for an
    /// authenticated caller), then [`authorize`]s. On allow: the caller and the allowing
    /// decision, for the request extensions.
    ///
    /// A template the request cannot fill is refused from the [`RenderError`] itself: a
    /// parameter the route does not have is a server bug (500, logged at `error` level,
    /// not audited); a value that is not a resource segment is the caller's (403, recorded
    /// in the audit trail as `invalid_resource`).
    ///
    /// # Errors
    /// The [`Refusal`] of [`authenticate`], of the template, or of [`authorize`].
    pub async fn check<'a, I>(
        &self,
        verified: Option<Arc<Principal>>,
        authorization: I,
        path: &str,
        render: impl FnOnce(&ResourceTemplate) -> Result<String, RenderError>,
        context: &RequestContext,
    ) -> Result<(Arc<Principal>, Decision), Refusal>
    where
        I: Iterator<Item = &'a [u8]>,
    {
        let principal = match verified {
            Some(principal) => principal,
            None => authenticate(&self.governor, authorization, path, context).await?,
        };
        // A template without placeholders is the resource itself: no copy per request.
        let resource: std::borrow::Cow<'_, str> = if self.template.has_placeholders() {
            match render(&self.template) {
                Ok(resource) => resource.into(),
                Err(e) => return Err(self.refuse(&principal, &e, path, context).await),
            }
        } else {
            self.template.as_str().into()
        };
        let decision =
            authorize(&self.governor, &principal, &self.action, &resource, context).await?;
        Ok((principal, decision))
    }

    /// The refusal of a template the request could not fill, logged or audited by whose
    /// fault it is.
    async fn refuse(
        &self,
        principal: &Principal,
        error: &RenderError,
        path: &str,
        context: &RequestContext,
    ) -> Refusal {
        match error {
            RenderError::MissingParameter { name } => tracing::error!(
                template = self.template.as_str(),
                parameter = name.as_str(),
                "the route has no path parameter for this resource template placeholder \
                 (actix-web: wrap the resource or scope, not the App); requests are \
                 refused with 500"
            ),
            _ => {
                record_invalid_resource(&self.governor, principal, &self.action, path, context)
                    .await;
            }
        }
        Refusal::from_render_error(error)
    }
}

/// The request context of an HTTP request: its `x-request-id` (or `x-correlation-id`)
/// header when it is short printable ASCII, so it can join the audit trail to access logs
/// without letting a client inject text into them.
pub fn request_context(request_id: Option<&[u8]>) -> RequestContext {
    let id = request_id
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.iter().all(u8::is_ascii_graphic))
        .and_then(|v| std::str::from_utf8(v).ok());
    match id {
        Some(id) => RequestContext::with_correlation_id(id),
        None => RequestContext::default(),
    }
}

/// [`request_context`] plus the request's W3C `traceparent` header, parsed strictly
/// ([`TraceParent::parse`](crate::audit::TraceParent::parse)): an invalid one is ignored,
/// as the W3C recommendation says, and the request is neither refused nor logged for it.
pub fn request_context_with_trace(
    request_id: Option<&[u8]>,
    traceparent: Option<&[u8]>,
) -> RequestContext {
    let context = request_context(request_id);
    match traceparent.map(crate::audit::TraceParent::parse) {
        Some(Ok(trace_parent)) => context.with_trace_parent(trace_parent),
        _ => context,
    }
}
