//! OpenAI-compatible routes: the model named in the JSON body authorized before the
//! handler runs, the `GET /v1/models` listing that shows exactly what the caller may
//! invoke, and errors in OpenAI's shape.
//!
//! An OpenAI-compatible API names the resource in the body
//! (`POST /v1/chat/completions {"model": "llama-3-70b", ...}`), not in the URL, so a
//! path-based `Require` cannot see it. [`ModelRoute`] is the framework-neutral step the
//! adapters (`entra_governor::axum::openai`, `entra_governor::actix::openai`) run after
//! they have authenticated the caller and read the body within its limit:
//!
//! 1. the `Content-Type` is absent or JSON ([`check_content_type`]), else 415;
//! 2. the body is parsed once into an object whose keys are unique at every depth
//!    ([`parse_object`]): a second `"model"` is refused, never resolved one way here and
//!    another way by the model server;
//! 3. `model` is present and a string, else 400;
//! 4. the resource template (default [`DEFAULT_TEMPLATE`], `models/{model}`) is filled
//!    with it, and the result must be a valid resource ([`validate_resource`]: no `/`
//!    in a one-segment `{model}`, no `..`, no control or invisible characters), else 400;
//! 5. the caller is authorized for the route's action (default [`DEFAULT_ACTION`],
//!    `inference.invoke`) on that resource: 403, a 401 step-up challenge or 503 otherwise.
//!
//! On allow the handler receives the parsed body ([`ModelRequest`]) and never reads or
//! parses it again; the adapters also put the same bytes back as the request body, for
//! handlers that forward the request to a model server unchanged. Every refusal of a
//! verified caller is in the audit trail: decisions as usual, body problems with their
//! [`ModelRequestError::code`] as the reason.
//!
//! Model names with a `/` (`meta-llama/Meta-Llama-3-70B-Instruct`, as vLLM serves them)
//! need a rest placeholder: `models/{*model}`.
//!
//! ## Errors
//!
//! Statuses and `WWW-Authenticate` values are those of every other route
//! ([`crate::http`]); only the body takes OpenAI's shape, which OpenAI's SDKs parse:
//! `{"error": {"message", "type", "param", "code"}}`.
//!
//! | refusal | status | `type` | `code` | `param` |
//! |---|---|---|---|---|
//! | no or malformed `Authorization` | 401 / 400 | `authentication_error` / `invalid_request_error` | `invalid_request` | — |
//! | token rejected | 401 | `authentication_error` | `invalid_token` | — |
//! | step-up or revocation challenge | 401 | `authentication_error` | `insufficient_claims` | — |
//! | body over the limit | 413 | `invalid_request_error` | `body_too_large` | — |
//! | `Content-Type` not JSON | 415 | `invalid_request_error` | `unsupported_media_type` | — |
//! | not JSON, not an object, a key twice | 400 | `invalid_request_error` | `invalid_json`, `body_not_an_object`, `duplicate_key` | — |
//! | no `model`, or not a string | 400 | `invalid_request_error` | `model_missing`, `model_not_a_string` | `model` |
//! | `model` not a resource segment | 400 | `invalid_request_error` | `invalid_model` | `model` |
//! | the caller may not invoke the model | 403 | `permission_error` | `insufficient_scope` | `model` |
//! | `GET /v1/models/{model}` of a model not listed for the caller | 404 | `invalid_request_error` | `model_not_found` | `model` |
//! | keys, group membership or audit unavailable | 503 + `Retry-After` | `server_error` | `temporarily_unavailable` | — |
//! | the server is misconfigured | 500 | `server_error` | `server_error` | — |
//!
//! A model the caller may not invoke and a model the server does not serve get different
//! answers on the invoke routes (403 from the governor; whatever the model server says
//! after an allow), but the same 404 on `GET /v1/models/{model}`, so the listing does not
//! reveal which models exist to callers who may use none of them.
//!
//! ## Listings
//!
//! [`ModelCatalog`] holds the models the server serves; [`ModelCatalog::visible_to`]
//! answers `GET /v1/models` with exactly those the caller may invoke, asked as one batch
//! ([`Governor::authorize_each`]: one policy version for the whole answer, one audit
//! event per model), so the listing and enforcement cannot disagree: both are the same
//! decision on the same resource.
//!
//! ```
//! use entra_governor::ai::openai::{ModelCatalog, ModelRoute};
//! # fn run(governor: entra_governor::Governor) -> Result<(), Box<dyn std::error::Error>> {
//! // `inference.invoke` on `models/{model}`, bodies up to 4 MiB: the defaults.
//! let route = ModelRoute::new(governor);
//! let catalog = ModelCatalog::new(&route, ["llama-3-70b", "llama-3-8b", "gpt-4o"])?;
//! assert_eq!(catalog.len(), 3);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use super::body::{
    BodyError, DEFAULT_MAX_BODY_BYTES, JsonObject, check_content_type, parse_object,
};
use crate::http::{self, Refusal, ResourceTemplate, TemplateError};
use crate::resource::validate_resource;
use crate::{Decision, Governor, Principal, Reason, RequestContext};

/// The action an OpenAI-compatible route requires unless told otherwise.
pub const DEFAULT_ACTION: &str = "inference.invoke";

/// The resource an OpenAI-compatible route authorizes unless told otherwise.
pub const DEFAULT_TEMPLATE: &str = "models/{model}";

/// The routes of OpenAI's API that name a model in their JSON body, for applications that
/// mount them all behind one layer.
pub const MODEL_ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
];

// ---------------------------------------------------------------------------- errors

/// An error in OpenAI's shape, with the status and headers of the refusal it renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiError {
    /// HTTP status code.
    pub status: u16,
    /// The `WWW-Authenticate` header value, when the status calls for one.
    pub www_authenticate: Option<String>,
    /// The `Retry-After` header value in seconds, for 503.
    pub retry_after: Option<u64>,
    /// The body's `error` object.
    pub error: OpenAiErrorBody,
}

/// The `error` object of an OpenAI error body: fixed text, never the token nor the
/// policy's internals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenAiErrorBody {
    /// A fixed, human-readable phrase.
    pub message: &'static str,
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault (`model`), or `null`.
    pub param: Option<&'static str>,
    /// A stable snake_case code (the table in [the module docs](self)).
    pub code: &'static str,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a OpenAiErrorBody,
}

impl OpenAiError {
    /// A refusal of [`crate::http`] in OpenAI's shape: same status and headers, the
    /// refusal's OAuth error code as `code`.
    pub fn from_refusal(refusal: Refusal) -> Self {
        let kind = match refusal.status {
            401 => "authentication_error",
            403 => "permission_error",
            500.. => "server_error",
            _ => "invalid_request_error",
        };
        Self {
            status: refusal.status,
            www_authenticate: refusal.www_authenticate,
            retry_after: refusal.retry_after,
            error: OpenAiErrorBody {
                message: refusal.body.error_description,
                kind,
                param: None,
                code: refusal.body.error,
            },
        }
    }

    /// The refusal of a body that is unusable before any decision (400, 413 or 415).
    pub fn from_request_error(e: &ModelRequestError) -> Self {
        Self {
            status: e.status(),
            www_authenticate: None,
            retry_after: None,
            error: OpenAiErrorBody {
                message: e.description(),
                kind: "invalid_request_error",
                param: e.param(),
                code: e.code(),
            },
        }
    }

    /// 404 `model_not_found`: the model is not listed for this caller (unknown, or not
    /// one the caller may invoke: the same answer for both).
    pub fn model_not_found() -> Self {
        Self {
            status: 404,
            www_authenticate: None,
            retry_after: None,
            error: OpenAiErrorBody {
                message: "the model does not exist or the caller may not use it",
                kind: "invalid_request_error",
                param: Some("model"),
                code: "model_not_found",
            },
        }
    }

    /// The body serialized as JSON: `{"error":{"message":…,"type":…,"param":…,"code":…}}`.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&Envelope { error: &self.error }).unwrap_or_default()
    }

    /// The response headers, names in lower case: `content-type: application/json`, then
    /// `www-authenticate` and `retry-after` when this error carries them.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        crate::http::json_headers(self.www_authenticate.as_deref(), self.retry_after)
    }
}

impl From<Refusal> for OpenAiError {
    fn from(refusal: Refusal) -> Self {
        Self::from_refusal(refusal)
    }
}

/// `403 permission_error (insufficient_scope): …`: status, type, code and message.
impl std::fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}): {}",
            self.status, self.error.kind, self.error.code, self.error.message
        )
    }
}

impl std::error::Error for OpenAiError {}

/// Why a request body names no model the governor can decide on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelRequestError {
    /// The body itself is unusable (too large, not JSON, a key twice, ...).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body has no `model` field.
    #[error("the request body has no \"model\" field")]
    ModelMissing,
    /// `model` is not a string.
    #[error("the request body's \"model\" is not a string")]
    ModelNotString,
    /// `model` does not fill the template with a valid resource (a `/` in a one-segment
    /// placeholder, `..`, a control or invisible character, ...).
    #[error("the request body's \"model\" is not a valid resource name")]
    InvalidModel,
}

impl ModelRequestError {
    /// The HTTP status: the body error's (400, 413, 415), else 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::Body(e) => e.status(),
            _ => 400,
        }
    }

    /// A stable snake_case code, for responses and the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Body(e) => e.code(),
            Self::ModelMissing => "model_missing",
            Self::ModelNotString => "model_not_a_string",
            Self::InvalidModel => "invalid_model",
        }
    }

    /// A fixed phrase for the response body.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Body(e) => e.description(),
            Self::ModelMissing => "the request body must name a model",
            Self::ModelNotString => "the model must be a string",
            Self::InvalidModel => "the model name is not valid",
        }
    }

    /// The request field at fault, if one is.
    fn param(&self) -> Option<&'static str> {
        match self {
            Self::Body(_) => None,
            _ => Some("model"),
        }
    }
}

// ------------------------------------------------------------------------ the request

/// An authorized request's parsed body: what the handler receives instead of the bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    model: String,
    resource: String,
    body: JsonObject,
}

impl ModelRequest {
    /// Reads `model` from a parsed body and fills `template` with it.
    ///
    /// # Errors
    /// [`ModelRequestError::ModelMissing`], [`ModelNotString`](ModelRequestError::ModelNotString)
    /// or [`InvalidModel`](ModelRequestError::InvalidModel).
    pub fn from_body(
        body: JsonObject,
        template: &ResourceTemplate,
    ) -> Result<Self, ModelRequestError> {
        let model = match body.get("model") {
            None => return Err(ModelRequestError::ModelMissing),
            Some(Value::String(model)) => model.clone(),
            Some(_) => return Err(ModelRequestError::ModelNotString),
        };
        let resource = model_resource(template, &model)?;
        Ok(Self {
            model,
            resource,
            body,
        })
    }

    /// The model the body names, as sent.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The resource that was authorized (`models/llama-3-70b`).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The whole body, parsed once.
    pub fn body(&self) -> &JsonObject {
        &self.body
    }

    /// The whole body, owned.
    pub fn into_body(self) -> JsonObject {
        self.body
    }

    /// The body as the handler's own type (`CreateChatCompletionRequest`, ...), from the
    /// parsed object: no second parse of the bytes.
    ///
    /// # Errors
    /// The `serde_json` error when the body does not fit `T`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&Value::Object(self.body.clone()))
    }
}

/// Fills `template` (whose only placeholder is `model`) with `model`, and checks that the
/// result is a resource requests may name.
fn model_resource(template: &ResourceTemplate, model: &str) -> Result<String, ModelRequestError> {
    let resource = template
        .render(|name| (name == "model").then_some(model))
        .map_err(|_| ModelRequestError::InvalidModel)?;
    validate_resource(&resource).map_err(|_| ModelRequestError::InvalidModel)?;
    Ok(resource)
}

// -------------------------------------------------------------------------- the route

/// What an OpenAI-compatible route requires: an action on the resource the body's
/// `model` names, decided by one governor, for bodies up to a limit. The framework-neutral
/// step of the adapters' `RequireModel`; an adapter for another framework holds one too.
#[derive(Clone, Debug)]
pub struct ModelRoute {
    governor: Governor,
    action: Arc<str>,
    template: ResourceTemplate,
    max_body_bytes: usize,
}

impl ModelRoute {
    /// `inference.invoke` on `models/{model}` for bodies up to
    /// [`DEFAULT_MAX_BODY_BYTES`], decided by `governor`.
    pub fn new(governor: Governor) -> Self {
        Self {
            governor,
            action: DEFAULT_ACTION.into(),
            template: ResourceTemplate::parse(DEFAULT_TEMPLATE)
                .unwrap_or_else(|e| unreachable!("the default template parses: {e}")),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Requires `action` instead (`inference.batch` for a batch route, say).
    #[must_use]
    pub fn with_action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into().into();
        self
    }

    /// Names the resource with `template` instead, whose one placeholder is `model`:
    /// `endpoints/{model}`, or `models/{*model}` for model names holding `/`.
    ///
    /// # Errors
    /// The [`TemplateError`] of a template that does not parse, or that has a placeholder
    /// other than one `model`.
    pub fn with_template(mut self, template: &str) -> Result<Self, TemplateError> {
        let parsed = ResourceTemplate::parse(template)?;
        let names: Vec<&str> = parsed.placeholders().map(|(name, _)| name).collect();
        if names != ["model"] {
            return Err(TemplateError {
                template: template.to_owned(),
                reason: "an OpenAI-compatible route's template has exactly one placeholder, \
                         {model} or {*model}",
                problem: None,
            });
        }
        self.template = parsed;
        Ok(self)
    }

    /// Accepts bodies up to `bytes` long instead (413 beyond).
    #[must_use]
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
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

    /// The longest body accepted, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Authenticates a request's `Authorization` header values, unless `verified` holds a
    /// caller this route's governor verified earlier. Refusals in OpenAI's shape.
    ///
    /// # Errors
    /// The refusal of [`http::authenticate`].
    pub async fn authenticate<'a, I>(
        &self,
        verified: Option<Arc<Principal>>,
        authorization: I,
        path: &str,
        context: &RequestContext,
    ) -> Result<Arc<Principal>, OpenAiError>
    where
        I: Iterator<Item = &'a [u8]>,
    {
        match verified {
            Some(principal) => Ok(principal),
            None => http::authenticate(&self.governor, authorization, path, context)
                .await
                .map_err(OpenAiError::from_refusal),
        }
    }

    /// The body step, once the caller is authenticated and the body read (the adapter
    /// refuses a body over [`max_body_bytes`](Self::max_body_bytes) itself, with
    /// [`refuse_body`](Self::refuse_body)): checks the content type, parses the
    /// body once, fills the template with `model`, then authorizes. On allow: the parsed
    /// body and the allowing decision.
    ///
    /// # Errors
    /// The [`OpenAiError`] of the body (400, 415, recorded in the audit trail with its
    /// code as the reason) or of the decision (403, 401 step-up, 503).
    pub async fn check(
        &self,
        principal: &Arc<Principal>,
        content_type: Option<&[u8]>,
        body: &[u8],
        path: &str,
        context: &RequestContext,
    ) -> Result<(ModelRequest, Decision), OpenAiError> {
        let request = match self.parse(content_type, body) {
            Ok(request) => request,
            Err(e) => return Err(self.refuse(principal, &e, path, context).await),
        };
        let decision = self
            .governor
            .authorize_shared(principal, &self.action, request.resource(), context)
            .await
            .map_err(|e| Refusal::from_authorize_error(&e, self.governor.cloud()))?;
        if let Reason::InvalidResource { .. } = decision.reason {
            // Checked above; kept as a second line should the policy's rules grow.
            return Err(OpenAiError::from_request_error(
                &ModelRequestError::InvalidModel,
            ));
        }
        match Refusal::from_decision(&decision, self.governor.cloud()) {
            None => Ok((request, decision)),
            Some(refusal) => {
                let mut error = OpenAiError::from_refusal(refusal);
                if error.status == 403 {
                    error.error.param = Some("model");
                }
                Err(error)
            }
        }
    }

    /// The refusal of a body the adapter could not read whole ([`BodyError::TooLarge`]
    /// past [`max_body_bytes`](Self::max_body_bytes), 413; [`BodyError::Unreadable`],
    /// 400), recorded in the audit trail for a verified caller.
    pub async fn refuse_body(
        &self,
        principal: &Principal,
        error: BodyError,
        path: &str,
        context: &RequestContext,
    ) -> OpenAiError {
        self.refuse(principal, &ModelRequestError::Body(error), path, context)
            .await
    }

    /// Parses and reads the model, without deciding.
    fn parse(
        &self,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Result<ModelRequest, ModelRequestError> {
        check_content_type(content_type)?;
        if body.len() > self.max_body_bytes {
            return Err(BodyError::TooLarge {
                limit: self.max_body_bytes,
            }
            .into());
        }
        ModelRequest::from_body(parse_object(body)?, &self.template)
    }

    /// Records a body refusal in the audit trail and renders it.
    async fn refuse(
        &self,
        principal: &Principal,
        e: &ModelRequestError,
        path: &str,
        context: &RequestContext,
    ) -> OpenAiError {
        http::record_refusal(
            &self.governor,
            principal,
            &self.action,
            path,
            e.code(),
            e.description(),
            context,
        )
        .await;
        OpenAiError::from_request_error(e)
    }
}

// ------------------------------------------------------------------------ the listing

/// A model the server serves, as `GET /v1/models` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCard {
    /// The model's name, as requests send it in `model`.
    pub id: String,
    /// Always `"model"`.
    pub object: &'static str,
    /// When the model was created (Unix seconds).
    pub created: u64,
    /// Who owns it (`"organization-owner"`, `"meta"`, ...).
    pub owned_by: String,
}

impl ModelCard {
    /// A model named `id`, owned by `owned_by`, created at `created` (Unix seconds).
    pub fn new(id: impl Into<String>, owned_by: impl Into<String>, created: u64) -> Self {
        Self {
            id: id.into(),
            object: "model",
            created,
            owned_by: owned_by.into(),
        }
    }
}

/// The body of `GET /v1/models`: `{"object": "list", "data": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelList {
    /// Always `"list"`.
    pub object: &'static str,
    /// The models the caller may invoke, in the catalog's order.
    pub data: Vec<ModelCard>,
}

impl ModelList {
    /// The names of the listed models.
    pub fn ids(&self) -> Vec<&str> {
        self.data.iter().map(|m| m.id.as_str()).collect()
    }

    /// The body serialized as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The models a server serves, each with the resource its route authorizes, so that
/// `GET /v1/models` lists exactly what the caller may invoke.
#[derive(Clone, Debug)]
pub struct ModelCatalog {
    governor: Governor,
    action: Arc<str>,
    models: Arc<[ModelCard]>,
    resources: Arc<[String]>,
}

/// Why a [`ModelCatalog`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A model's name does not fill the route's template with a valid resource.
    #[error("model {model:?} is not a valid resource name for this route's template")]
    InvalidModel {
        /// The model's name.
        model: String,
    },
    /// The same model is listed twice.
    #[error("model {model:?} is listed twice")]
    Duplicate {
        /// The model's name.
        model: String,
    },
}

impl ModelCatalog {
    /// A catalog of the models named `ids` (owned by `"organization-owner"`, created
    /// now), authorized as `route` authorizes them.
    ///
    /// # Errors
    /// [`CatalogError`] for a name that is not a valid resource, or a name given twice.
    pub fn new<I, S>(route: &ModelRoute, ids: I) -> Result<Self, CatalogError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::with_cards(
            route,
            ids.into_iter()
                .map(|id| ModelCard::new(id, "organization-owner", now)),
        )
    }

    /// A catalog of these cards, authorized as `route` authorizes them.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_cards(
        route: &ModelRoute,
        cards: impl IntoIterator<Item = ModelCard>,
    ) -> Result<Self, CatalogError> {
        let mut models = Vec::new();
        let mut resources = Vec::new();
        for card in cards {
            if models.iter().any(|m: &ModelCard| m.id == card.id) {
                return Err(CatalogError::Duplicate { model: card.id });
            }
            let resource = model_resource(&route.template, &card.id).map_err(|_| {
                CatalogError::InvalidModel {
                    model: card.id.clone(),
                }
            })?;
            resources.push(resource);
            models.push(card);
        }
        Ok(Self {
            governor: route.governor.clone(),
            action: Arc::clone(&route.action),
            models: models.into(),
            resources: resources.into(),
        })
    }

    /// The governor that authenticates and decides.
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// How many models the server serves.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// True when the catalog lists no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Every model the server serves, whoever asks.
    pub fn models(&self) -> &[ModelCard] {
        &self.models
    }

    /// `GET /v1/models` for `principal`: the models it may invoke, decided in one batch
    /// (one audit event per model, sharing the request's correlation id).
    ///
    /// # Errors
    /// 401 or 503 (in OpenAI's shape) when the caller was revoked or expired since it was
    /// verified, or group membership or the audit trail is unavailable.
    pub async fn visible_to(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<ModelList, OpenAiError> {
        let decisions = self
            .governor
            .authorize_each(principal, &self.action, &self.resources, context)
            .await
            .map_err(|e| Refusal::from_authorize_error(&e, self.governor.cloud()))?;
        if decisions
            .iter()
            .any(|d| d.reason == Reason::GroupMembershipUnavailable)
        {
            // A listing short of the caller's models would look like a revocation.
            return Err(Refusal::unavailable("group membership unavailable").into());
        }
        let data = self
            .models
            .iter()
            .zip(&decisions)
            .filter(|(_, decision)| decision.is_allowed())
            .map(|(card, _)| card.clone())
            .collect();
        Ok(ModelList {
            object: "list",
            data,
        })
    }

    /// `GET /v1/models/{model}` for `principal`: the model's card when the caller may
    /// invoke it; 404 `model_not_found` when it may not or the model is not served.
    ///
    /// # Errors
    /// 404 as above; 401 or 503 as [`visible_to`](Self::visible_to).
    pub async fn retrieve(
        &self,
        principal: &Arc<Principal>,
        model: &str,
        context: &RequestContext,
    ) -> Result<ModelCard, OpenAiError> {
        let Some(index) = self.models.iter().position(|m| m.id == model) else {
            return Err(OpenAiError::model_not_found());
        };
        let decision = self
            .governor
            .authorize_shared(principal, &self.action, &self.resources[index], context)
            .await
            .map_err(|e| Refusal::from_authorize_error(&e, self.governor.cloud()))?;
        match decision.reason {
            Reason::Allow => Ok(self.models[index].clone()),
            Reason::GroupMembershipUnavailable => {
                Err(Refusal::unavailable("group membership unavailable").into())
            }
            _ => Err(OpenAiError::model_not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(t: &str) -> ResourceTemplate {
        ResourceTemplate::parse(t).unwrap()
    }

    fn object(text: &str) -> JsonObject {
        parse_object(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_model_fills_the_template() {
        let t = template(DEFAULT_TEMPLATE);
        let r = ModelRequest::from_body(object(r#"{"model":"llama-3-70b","n":2}"#), &t).unwrap();
        assert_eq!(
            (r.model(), r.resource()),
            ("llama-3-70b", "models/llama-3-70b")
        );
        assert_eq!(r.body()["n"], 2);
        let err = |text: &str, t: &ResourceTemplate| ModelRequest::from_body(object(text), t);
        assert_eq!(
            err(r#"{"messages":[]}"#, &t),
            Err(ModelRequestError::ModelMissing)
        );
        assert_eq!(
            err(r#"{"model":7}"#, &t),
            Err(ModelRequestError::ModelNotString)
        );
        assert_eq!(
            err(r#"{"model":null}"#, &t),
            Err(ModelRequestError::ModelNotString)
        );
        for bad in [
            "",
            "a/b",
            "..",
            ".",
            "a%2Fb",
            "*",
            "llama\u{200b}",
            "x\ny",
            "**",
        ] {
            let text = serde_json::json!({ "model": bad }).to_string();
            assert_eq!(
                err(&text, &t),
                Err(ModelRequestError::InvalidModel),
                "{bad:?}"
            );
        }
        // A rest placeholder takes Hugging Face names, but never `..`.
        let rest = template("models/{*model}");
        let r = err(r#"{"model":"meta-llama/Llama-3-70B"}"#, &rest).unwrap();
        assert_eq!(r.resource(), "models/meta-llama/Llama-3-70B");
        assert_eq!(
            err(r#"{"model":"meta-llama/../secret"}"#, &rest),
            Err(ModelRequestError::InvalidModel)
        );
    }

    #[test]
    fn errors_take_openai_shape() {
        let e = OpenAiError::from_request_error(&ModelRequestError::ModelNotString);
        assert_eq!(e.status, 400);
        assert_eq!(
            e.body_json(),
            r#"{"error":{"message":"the model must be a string","type":"invalid_request_error","param":"model","code":"model_not_a_string"}}"#
        );
        let e = OpenAiError::from_refusal(Refusal::forbidden());
        assert_eq!(
            (e.status, e.error.kind, e.error.code),
            (403, "permission_error", "insufficient_scope")
        );
        assert_eq!(
            e.headers()[1],
            (
                "www-authenticate",
                "Bearer error=\"insufficient_scope\"".to_owned()
            )
        );
        let e = OpenAiError::from_refusal(Refusal::unavailable("signing keys unavailable"));
        assert_eq!(
            (e.status, e.error.kind, e.retry_after),
            (503, "server_error", Some(5))
        );
        assert_eq!(
            e.to_string(),
            "503 server_error (temporarily_unavailable): signing keys unavailable"
        );
        let e = OpenAiError::from_request_error(&BodyError::TooLarge { limit: 9 }.into());
        assert_eq!((e.status, e.error.code), (413, "body_too_large"));
        assert_eq!(
            e.body_json(),
            r#"{"error":{"message":"the request body is too large","type":"invalid_request_error","param":null,"code":"body_too_large"}}"#
        );
    }

    fn governor() -> Governor {
        Governor::builder()
            .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
            .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
            .build()
            .unwrap()
    }

    #[test]
    fn a_route_template_names_the_model_once() {
        let route = ModelRoute::new(governor());
        assert_eq!(route.template().as_str(), "models/{model}");
        assert!(route.clone().with_template("endpoints/{model}").is_ok());
        assert!(route.clone().with_template("models/{*model}").is_ok());
        for bad in [
            "models/fixed",
            "models/{name}",
            "{model}/{model}",
            "models/{",
        ] {
            assert!(route.clone().with_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_catalog_refuses_names_it_could_never_authorize() {
        let route = ModelRoute::new(governor());
        assert_eq!(
            ModelCatalog::new(&route, ["ok", "a/b"]).unwrap_err(),
            CatalogError::InvalidModel {
                model: "a/b".into()
            }
        );
        assert_eq!(
            ModelCatalog::new(&route, ["ok", "ok"]).unwrap_err(),
            CatalogError::Duplicate { model: "ok".into() }
        );
        let c = ModelCatalog::new(&route, ["a", "b"]).unwrap();
        assert_eq!((c.len(), c.is_empty()), (2, false));
        assert_eq!(&*c.resources, ["models/a", "models/b"]);
    }
}
