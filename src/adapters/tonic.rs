//! gRPC servers on tonic 0.14 (feature `tonic`): a tower layer that authenticates every
//! call and authorizes every request message by its gRPC method, and the KServe v2
//! inference protocol's types ([`kserve`]).
//!
//! ```no_run
//! use entra_governor::tonic::kserve::grpc_inference_service_server::{
//!     GrpcInferenceService, GrpcInferenceServiceServer,
//! };
//! use entra_governor::tonic::kserve::{ModelInferRequest, ModelInferResponse};
//! use entra_governor::tonic::{AuthorizeLayer, MethodRules};
//! use entra_governor::{Governor, Policy};
//! use tonic::{Request, Response, Status};
//!
//! struct Models;
//!
//! // The other methods answer UNIMPLEMENTED unless implemented.
//! #[tonic::async_trait]
//! impl GrpcInferenceService for Models {
//!     // Reached only by callers the policy allows `inference.invoke` on
//!     // `models/<model_name>`.
//!     async fn model_infer(
//!         &self,
//!         request: Request<ModelInferRequest>,
//!     ) -> Result<Response<ModelInferResponse>, Status> {
//!         let request = request.into_inner();
//!         Ok(Response::new(ModelInferResponse {
//!             model_name: request.model_name,
//!             id: request.id,
//!             ..Default::default()
//!         }))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let governor = Governor::builder()
//!     .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
//!     .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
//!     .policy(Policy::from_path("examples/ai_gateway_policy.toml")?)
//!     .build()?;
//!
//! // ModelInfer: `inference.invoke` on `models/{model}`; ModelMetadata, ModelReady:
//! // `models.read`; the server-level methods: a valid token; any other method: refused.
//! let rules = MethodRules::kserve_v2();
//!
//! tonic::transport::Server::builder()
//!     .layer(AuthorizeLayer::new(governor, rules))
//!     .add_service(GrpcInferenceServiceServer::new(Models))
//!     .serve("127.0.0.1:8001".parse()?)
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## What the layer does
//!
//! 1. Once per call, it verifies the bearer token of the `authorization` metadata
//!    ([`crate::http::authenticate`]), before the service sees anything.
//! 2. It looks the call's method path (`/inference.GRPCInferenceService/ModelInfer`) up
//!    in the [`MethodRules`]. A method without a rule is refused `PERMISSION_DENIED`
//!    (deny by default) unless it was declared
//!    [authentication-only](MethodRules::authentication_only).
//! 3. It reads the request body's gRPC frames (a compressed flag and a big-endian `u32`
//!    length, then the message) and holds each message until it is decided: decoded
//!    with prost as the method's message type, the rule's resource template filled from
//!    it through [`NamesResource`], and [`Governor::authorize_principal`] asked (which
//!    checks the caller's expiry and revocation again, and records the decision in the
//!    audit trail). An allowed message is released to the service as the exact bytes that
//!    arrived; the service's own decoder then decodes it as usual.
//! 4. Streams are checked message by message. A stream whose Nth message is refused is
//!    cut: the request body ends with that [`Status`] as its error (tonic's decoder
//!    hands it to the service's `Streaming` as `Err(status)`), and the response ends at
//!    once with that status in its trailers, whatever the service was still sending or
//!    answers later. A unary call whose message is refused never reaches the service's
//!    handler.
//!
//! ## Status codes
//!
//! Every refusal is a [`crate::http::Refusal`] turned into a [`Status`]
//! (`impl From<Refusal> for Status`), whose message is fixed text (`error:
//! description`): it never echoes the token nor names the policy's roles or rules.
//!
//! | outcome | gRPC status | metadata |
//! |---|---|---|
//! | no `authorization` metadata, several, or not `Bearer <token>` | `UNAUTHENTICATED` | `www-authenticate` |
//! | token rejected | `UNAUTHENTICATED` | `www-authenticate: Bearer error="invalid_token", …` |
//! | step-up (Conditional Access auth context) or revocation challenge | `UNAUTHENTICATED` | `www-authenticate: Bearer …, error="insufficient_claims", claims="…"` |
//! | denied, or a method without a rule | `PERMISSION_DENIED` | `www-authenticate: Bearer error="insufficient_scope"` |
//! | keys, group membership or audit trail unavailable | `UNAVAILABLE` | `retry-after` |
//! | a rule's template names a parameter its message type does not have | `INTERNAL` | — |
//! | a compressed message (flag 1), or `grpc-encoding` other than `identity` | `UNIMPLEMENTED` | — |
//! | a message longer than the limit (4 MiB by default) | `RESOURCE_EXHAUSTED` | — |
//! | a message that does not decode, a malformed or truncated frame | `INVALID_ARGUMENT` | — |
//!
//! Compression is refused because the layer advertises no `grpc-accept-encoding` and
//! does not decompress what it cannot then inspect. The length limit is checked on the
//! prefix, before the message is buffered.
//!
//! ## Layout
//!
//! The layer sits outside tonic's router, so it sees every call of every service on the
//! server: a service added without rules for its methods is refused, not exposed.
//! Methods that must answer without a token (the gRPC health service of a Kubernetes
//! probe) belong on another server, without this layer.

pub mod kserve;

mod frames;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use ::tonic::codegen::http::header::AUTHORIZATION;
use ::tonic::codegen::http::{self as http_types, HeaderMap, HeaderValue};
use ::tonic::metadata::{MetadataMap, MetadataValue};
use ::tonic::{Code, Status};
use bytes::Bytes;
use http_body::Frame as BodyFrame;
use tower::{Layer, Service};

use self::frames::{FrameError, Frames};
use crate::http::{self, NO_ROUTE_ACTION, NO_ROUTE_REASON, Refusal, RenderError};
use crate::{Governor, Principal, RequestContext};

pub use crate::http::{ResourceTemplate, TemplateError};

/// The largest request message accepted by default: 4 MiB, tonic's own default limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The action of [`MethodRules::invoke`]: `inference.invoke`.
pub const DEFAULT_ACTION: &str = "inference.invoke";

/// The resource template of [`MethodRules::invoke`]: `models/{model}`.
pub const DEFAULT_TEMPLATE: &str = "models/{model}";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

// ------------------------------------------------------------------------- statuses

/// The gRPC status of a refusal: 400 and 401 `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`,
/// 503 `UNAVAILABLE`, anything else `INTERNAL`; the `WWW-Authenticate` challenge (a step-up
/// claims challenge included) in the `www-authenticate` metadata, `Retry-After` in
/// `retry-after`. The message is the refusal's fixed `error: description`.
///
/// So a handler that decides on something else than the request message answers as the
/// layer does: `http::authorize(&governor, &caller, action, resource, &context).await?`
/// in a function returning `Result<_, Status>`.
impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let code = match refusal.status {
            400 | 401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            503 => Code::Unavailable,
            _ => Code::Internal,
        };
        let mut metadata = MetadataMap::new();
        // Both values are built by `crate::http` from fixed text, base64 and digits.
        if let Some(challenge) = &refusal.www_authenticate
            && let Ok(value) = MetadataValue::try_from(challenge.as_str())
        {
            metadata.insert("www-authenticate", value);
        }
        if let Some(secs) = refusal.retry_after
            && let Ok(value) = MetadataValue::try_from(secs.to_string())
        {
            metadata.insert("retry-after", value);
        }
        let message = format!("{}: {}", refusal.body.error, refusal.body.error_description);
        Status::with_metadata(code, message, metadata)
    }
}

fn frame_status(error: FrameError, max_message_bytes: usize) -> Status {
    match error {
        FrameError::Compressed => compressed_status(),
        FrameError::TooLarge { .. } => Status::resource_exhausted(format!(
            "a request message is longer than {max_message_bytes} bytes"
        )),
        FrameError::InvalidFlag => Status::invalid_argument("malformed gRPC message frame"),
        FrameError::Truncated => Status::invalid_argument("the request ended inside a message"),
    }
}

fn compressed_status() -> Status {
    Status::unimplemented("compressed request messages are not accepted")
}

/// The audit reason of a frame refusal.
fn frame_reason(error: FrameError) -> (&'static str, &'static str) {
    match error {
        FrameError::Compressed => (
            "compressed_message",
            "a compressed message cannot be inspected",
        ),
        FrameError::TooLarge { .. } => ("message_too_large", "a message is longer than the limit"),
        FrameError::InvalidFlag | FrameError::Truncated => {
            ("malformed_message", "a message frame is malformed")
        }
    }
}

// ---------------------------------------------------------------------------- rules

/// A request message that names the resource it acts on: the values of a resource
/// template's placeholders (`{model}` in `models/{model}`).
///
/// Implemented for the KServe v2 requests in [`kserve`]; implement it for your own
/// messages to write [`MethodRules`] for them.
///
/// ```
/// use entra_governor::tonic::NamesResource;
///
/// struct Embed {
///     model: String,
/// }
///
/// impl NamesResource for Embed {
///     fn resource_param(&self, name: &str) -> Option<&str> {
///         (name == "model").then_some(self.model.as_str())
///     }
/// }
/// ```
pub trait NamesResource {
    /// The value of the placeholder `name`, or `None` when this message has no such
    /// parameter (a rule whose template names it is a server bug: `INTERNAL`). An empty
    /// value is returned as it is: it names no resource, and the call is refused
    /// `PERMISSION_DENIED`.
    fn resource_param(&self, name: &str) -> Option<&str>;
}

/// Decodes a message and fills a template from it.
type Resolve = dyn Fn(Bytes, &ResourceTemplate) -> Result<Result<String, RenderError>, prost::DecodeError>
    + Send
    + Sync;

/// What one method requires of each of its request messages.
struct MethodRule {
    action: Arc<str>,
    template: ResourceTemplate,
    message_type: &'static str,
    resolve: Box<Resolve>,
}

#[derive(Clone)]
enum MethodPolicy {
    AuthenticationOnly,
    Require(Arc<MethodRule>),
}

/// A rule that cannot be added to [`MethodRules`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// Not a gRPC method path, `/package.Service/Method`.
    #[error("invalid gRPC method {method:?}: expected \"/package.Service/Method\"")]
    InvalidMethod {
        /// The method, as given.
        method: String,
    },
    /// The method already has a rule.
    #[error("gRPC method {method:?} has a rule already")]
    Duplicate {
        /// The method.
        method: String,
    },
    /// The resource template does not parse.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// What each gRPC method requires, by its full path (`/inference.GRPCInferenceService/ModelInfer`):
/// an action on the resource a template names, filled from every request message, or
/// only a valid token. Any other method is refused (deny by default).
///
/// ```
/// use entra_governor::tonic::MethodRules;
/// use entra_governor::tonic::kserve::{self, ModelInferRequest, ModelMetadataRequest};
///
/// let rules = MethodRules::new()
///     // `inference.invoke` on `models/{model}` (the message's `model_name`).
///     .invoke::<ModelInferRequest>(kserve::MODEL_INFER)
///     .require::<ModelMetadataRequest>(kserve::MODEL_METADATA, "models.read", "models/{model}")
///     .authentication_only(kserve::SERVER_LIVE)
///     .max_message_bytes(16 * 1024 * 1024);
/// ```
#[derive(Clone)]
#[must_use]
pub struct MethodRules {
    methods: HashMap<Box<str>, MethodPolicy>,
    max_message_bytes: usize,
}

impl Default for MethodRules {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MethodRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodRules")
            .field("methods", &MethodsDebug(&self.methods))
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}

/// The methods, sorted, each with what it requires.
struct MethodsDebug<'a>(&'a HashMap<Box<str>, MethodPolicy>);

impl fmt::Debug for MethodsDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut methods: Vec<_> = self.0.iter().collect();
        methods.sort_by(|a, b| a.0.cmp(b.0));
        let mut map = f.debug_map();
        for (method, policy) in methods {
            match policy {
                MethodPolicy::AuthenticationOnly => map.entry(method, &"authentication only"),
                MethodPolicy::Require(rule) => map.entry(
                    method,
                    &format_args!(
                        "{} on {} ({})",
                        rule.action,
                        rule.template.as_str(),
                        rule.message_type
                    ),
                ),
            };
        }
        map.finish()
    }
}

impl MethodRules {
    /// No rules: every method refused, messages up to [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub fn new() -> Self {
        Self {
            methods: HashMap::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// Requires [`DEFAULT_ACTION`] (`inference.invoke`) on [`DEFAULT_TEMPLATE`]
    /// (`models/{model}`) for every message of `method`, decoded as `M`.
    ///
    /// # Panics
    /// When `method` is not `/package.Service/Method` or already has a rule (a
    /// programming error, caught at start-up); [`try_require`](Self::try_require)
    /// returns the error instead.
    #[track_caller]
    pub fn invoke<M>(self, method: &str) -> Self
    where
        M: prost::Message + Default + NamesResource + 'static,
    {
        self.require::<M>(method, DEFAULT_ACTION, DEFAULT_TEMPLATE)
    }

    /// Requires `action` on the resource `template` names (`models/{model}`), filled
    /// from every message of `method` decoded as `M`.
    ///
    /// # Panics
    /// When the method or the template is invalid, or the method has a rule already;
    /// [`try_require`](Self::try_require) returns the error instead.
    #[track_caller]
    pub fn require<M>(self, method: &str, action: impl Into<String>, template: &str) -> Self
    where
        M: prost::Message + Default + NamesResource + 'static,
    {
        self.try_require::<M>(method, action, template)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`require`](Self::require) for rules that may be invalid (read from configuration).
    ///
    /// # Errors
    /// The [`RuleError`] saying what is wrong.
    pub fn try_require<M>(
        self,
        method: &str,
        action: impl Into<String>,
        template: &str,
    ) -> Result<Self, RuleError>
    where
        M: prost::Message + Default + NamesResource + 'static,
    {
        let template = ResourceTemplate::parse(template)?;
        let resolve = |payload: Bytes, template: &ResourceTemplate| {
            let message = M::decode(payload)?;
            Ok(template.render(|name| message.resource_param(name)))
        };
        let rule = MethodRule {
            action: action.into().into(),
            template,
            message_type: std::any::type_name::<M>(),
            resolve: Box::new(resolve),
        };
        self.insert(method, MethodPolicy::Require(Arc::new(rule)))
    }

    /// Lets any caller with a valid token call `method`, whatever its messages say (health
    /// and server metadata calls that name no resource).
    ///
    /// # Panics
    /// When `method` is not `/package.Service/Method` or already has a rule;
    /// [`try_authentication_only`](Self::try_authentication_only) returns the error
    /// instead.
    #[track_caller]
    pub fn authentication_only(self, method: &str) -> Self {
        self.try_authentication_only(method)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`authentication_only`](Self::authentication_only) for a method that may be
    /// invalid.
    ///
    /// # Errors
    /// The [`RuleError`] saying what is wrong.
    pub fn try_authentication_only(self, method: &str) -> Result<Self, RuleError> {
        self.insert(method, MethodPolicy::AuthenticationOnly)
    }

    /// Refuses request messages longer than `max` bytes (`RESOURCE_EXHAUSTED`), checked
    /// on each message's length prefix before it is buffered. Default
    /// [`DEFAULT_MAX_MESSAGE_BYTES`]; keep it at most the service's own limit
    /// (`max_decoding_message_size`).
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// The methods that have a rule or are authentication-only, sorted.
    pub fn methods(&self) -> Vec<&str> {
        let mut methods: Vec<&str> = self.methods.keys().map(|m| &**m).collect();
        methods.sort_unstable();
        methods
    }

    fn insert(mut self, method: &str, policy: MethodPolicy) -> Result<Self, RuleError> {
        if !is_method_path(method) {
            return Err(RuleError::InvalidMethod {
                method: method.to_owned(),
            });
        }
        if self.methods.contains_key(method) {
            return Err(RuleError::Duplicate {
                method: method.to_owned(),
            });
        }
        self.methods.insert(method.into(), policy);
        Ok(self)
    }
}

/// `/package.Service/Method`: two non-empty parts of letters, digits, `_` and `.`.
fn is_method_path(method: &str) -> bool {
    let part = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    match method.strip_prefix('/').and_then(|m| m.split_once('/')) {
        Some((service, name)) => part(service) && part(name),
        None => false,
    }
}

// ---------------------------------------------------------------------------- layer

struct Shared {
    governor: Governor,
    rules: MethodRules,
}

/// Authenticates every gRPC call and authorizes every request message by its method's
/// rule (see [the module](self)); makes [`Authorize`].
///
/// Add it to the server (`tonic::transport::Server::builder().layer(..)`), so that it
/// sees the calls of every service.
#[derive(Clone)]
pub struct AuthorizeLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for AuthorizeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeLayer")
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

impl AuthorizeLayer {
    /// A layer deciding with `governor` by `rules`.
    pub fn new(governor: Governor, rules: MethodRules) -> Self {
        Self {
            shared: Arc::new(Shared { governor, rules }),
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service made by [`AuthorizeLayer`]: authenticates, then calls the inner service
/// with a request body that releases each message once it is allowed.
#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for Authorize<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize")
            .field("inner", &self.inner)
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

/// The future of [`Authorize`].
pub struct ResponseFuture<E> {
    inner: BoxFuture<Result<http_types::Response<::tonic::body::Body>, E>>,
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<http_types::Response<::tonic::body::Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Takes the ready service and leaves a fresh clone in its place.
fn take_ready<S: Clone>(slot: &mut S) -> S {
    let clone = slot.clone();
    std::mem::replace(slot, clone)
}

impl<S, ReqBody, ResBody> Service<http_types::Request<ReqBody>> for Authorize<S>
where
    S: Service<http_types::Request<::tonic::body::Body>, Response = http_types::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http_types::Response<::tonic::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http_types::Request<ReqBody>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let shared = Arc::clone(&self.shared);
        ResponseFuture {
            inner: Box::pin(async move {
                let (parts, body) = request.into_parts();
                let call = match admit(&shared, &parts.headers, parts.uri.path()).await {
                    Ok(call) => call,
                    Err(status) => return Ok(status.into_http()),
                };
                let cut = Arc::new(Cut::default());
                let body = CheckedBody {
                    inner: ::tonic::body::Body::new(body),
                    frames: Frames::new(shared.rules.max_message_bytes),
                    call: Arc::new(call),
                    shared,
                    check: None,
                    trailers: None,
                    inner_done: false,
                    done: false,
                    cut: Arc::clone(&cut),
                };
                let request =
                    http_types::Request::from_parts(parts, ::tonic::body::Body::new(body));
                let response = inner.call(request).await?;
                // A unary call refused by its message: the service answered the status the
                // body ended with; answer it from here, whatever the service said.
                if let Some(status) = cut.status() {
                    return Ok(status.into_http());
                }
                Ok(response.map(|body| {
                    ::tonic::body::Body::new(CutBody {
                        inner: ::tonic::body::Body::new(body),
                        cut,
                        done: false,
                    })
                }))
            }),
        }
    }
}

/// A call past authentication and its method's rule.
struct Call {
    principal: Arc<Principal>,
    rule: Option<Arc<MethodRule>>,
    path: Box<str>,
    context: RequestContext,
}

/// The audit context of a call: its `x-request-id` or `x-correlation-id` metadata, and
/// its W3C `traceparent`.
fn context(headers: &HeaderMap) -> RequestContext {
    let id = headers
        .get("x-request-id")
        .or_else(|| headers.get("x-correlation-id"));
    let traceparent = headers.get("traceparent").map(HeaderValue::as_bytes);
    http::request_context_with_trace(id.map(HeaderValue::as_bytes), traceparent)
}

/// Authenticates the call and finds its method's rule.
async fn admit(shared: &Shared, headers: &HeaderMap, path: &str) -> Result<Call, Status> {
    let governor = &shared.governor;
    let context = context(headers);
    let authorization = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    let principal = http::authenticate(governor, authorization, path, &context).await?;
    let rule = match shared.rules.methods.get(path) {
        Some(MethodPolicy::AuthenticationOnly) => None,
        Some(MethodPolicy::Require(rule)) => Some(Arc::clone(rule)),
        None => {
            http::record_refusal(
                governor,
                &principal,
                NO_ROUTE_ACTION,
                path,
                NO_ROUTE_REASON,
                "no rule names this gRPC method",
                &context,
            )
            .await;
            return Err(Refusal::forbidden().into());
        }
    };
    let compressed = headers
        .get("grpc-encoding")
        .is_some_and(|e| e.as_bytes() != b"identity");
    if compressed {
        if let Some(rule) = &rule {
            let (reason, explanation) = frame_reason(FrameError::Compressed);
            http::record_refusal(
                governor,
                &principal,
                &rule.action,
                path,
                reason,
                explanation,
                &context,
            )
            .await;
        }
        return Err(compressed_status());
    }
    Ok(Call {
        principal,
        rule,
        path: path.into(),
        context,
    })
}

/// Decides one request message: decoded, its resource filled in, authorized.
async fn check_message(
    shared: Arc<Shared>,
    call: Arc<Call>,
    rule: Arc<MethodRule>,
    payload: Bytes,
) -> Result<(), Status> {
    let governor = &shared.governor;
    let resource = match (rule.resolve)(payload, &rule.template) {
        Ok(Ok(resource)) => resource,
        Ok(Err(error)) => {
            if let RenderError::MissingParameter { name } = &error {
                tracing::error!(
                    method = &*call.path,
                    template = rule.template.as_str(),
                    parameter = name.as_str(),
                    message = rule.message_type,
                    "the method's request message has no parameter for this resource \
                     template placeholder; calls are refused with INTERNAL"
                );
            } else {
                http::record_invalid_resource(
                    governor,
                    &call.principal,
                    &rule.action,
                    &call.path,
                    &call.context,
                )
                .await;
            }
            return Err(Refusal::from_render_error(&error).into());
        }
        Err(_) => {
            http::record_refusal(
                governor,
                &call.principal,
                &rule.action,
                &call.path,
                "invalid_message",
                "the request message does not decode as the method's type",
                &call.context,
            )
            .await;
            return Err(Status::invalid_argument(
                "the request message does not decode",
            ));
        }
    };
    http::authorize(
        governor,
        &call.principal,
        &rule.action,
        &resource,
        &call.context,
    )
    .await?;
    Ok(())
}

/// Records a frame refusal (for a method with a rule) and returns its status.
async fn refuse_frame(
    shared: Arc<Shared>,
    call: Arc<Call>,
    error: FrameError,
) -> Result<(), Status> {
    if let Some(rule) = &call.rule {
        let (reason, explanation) = frame_reason(error);
        http::record_refusal(
            &shared.governor,
            &call.principal,
            &rule.action,
            &call.path,
            reason,
            explanation,
            &call.context,
        )
        .await;
    }
    Err(frame_status(error, shared.rules.max_message_bytes))
}

// --------------------------------------------------------------- the cut, both ways

/// The status a request body was cut with, shared with the response body, which ends
/// with it.
#[derive(Default)]
struct Cut {
    state: Mutex<CutState>,
}

#[derive(Default)]
struct CutState {
    status: Option<Status>,
    /// The response body's task, waiting on the service.
    waker: Option<Waker>,
}

impl Cut {
    fn lock(&self) -> MutexGuard<'_, CutState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cut(&self, status: Status) {
        let waker = {
            let mut state = self.lock();
            state.status.get_or_insert(status);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn status(&self) -> Option<Status> {
        self.lock().status.clone()
    }

    /// The status, or `None` after registering `waker` to be woken by [`cut`](Self::cut).
    fn status_or_register(&self, waker: &Waker) -> Option<Status> {
        let mut state = self.lock();
        if state.status.is_none() {
            state.waker = Some(waker.clone());
        }
        state.status.clone()
    }
}

fn trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    // Fails only for a message or metadata that is not a header value; ours are ASCII.
    let _ = status.add_header(&mut trailers);
    trailers
}

/// A message held until it is decided.
struct Check {
    future: BoxFuture<Result<(), Status>>,
    frame: Bytes,
}

/// The request body the service reads: each message released as it arrived, once
/// allowed; the first refusal ends it with its status.
struct CheckedBody {
    inner: ::tonic::body::Body,
    frames: Frames,
    call: Arc<Call>,
    shared: Arc<Shared>,
    check: Option<Check>,
    trailers: Option<HeaderMap>,
    inner_done: bool,
    done: bool,
    cut: Arc<Cut>,
}

impl CheckedBody {
    fn refuse(&mut self, error: FrameError) {
        let future = refuse_frame(Arc::clone(&self.shared), Arc::clone(&self.call), error);
        self.check = Some(Check {
            future: Box::pin(future),
            frame: Bytes::new(),
        });
    }
}

impl http_body::Body for CheckedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(check) = &mut this.check {
                let outcome = std::task::ready!(check.future.as_mut().poll(cx));
                let frame = std::mem::take(&mut check.frame);
                this.check = None;
                return Poll::Ready(Some(match outcome {
                    Ok(()) => Ok(BodyFrame::data(frame)),
                    Err(status) => {
                        this.done = true;
                        this.cut.cut(status.clone());
                        Err(status)
                    }
                }));
            }
            match this.frames.next_frame() {
                Ok(Some(frame)) => match &this.call.rule {
                    None => return Poll::Ready(Some(Ok(BodyFrame::data(frame.into_bytes())))),
                    Some(rule) => {
                        let future = check_message(
                            Arc::clone(&this.shared),
                            Arc::clone(&this.call),
                            Arc::clone(rule),
                            frame.payload(),
                        );
                        this.check = Some(Check {
                            future: Box::pin(future),
                            frame: frame.into_bytes(),
                        });
                        continue;
                    }
                },
                Ok(None) => {}
                Err(error) => {
                    this.refuse(error);
                    continue;
                }
            }
            if this.inner_done {
                if let Err(error) = this.frames.finish() {
                    this.refuse(error);
                    continue;
                }
                this.done = true;
                return Poll::Ready(this.trailers.take().map(|t| Ok(BodyFrame::trailers(t))));
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.frames.push(data),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.trailers = Some(trailers);
                        }
                    }
                },
                // The client went away, or the transport failed: not a refusal.
                Some(Err(status)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(status)));
                }
                None => this.inner_done = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// The response body: the service's, until the request is cut; then the cut's status
/// in the trailers, at once.
struct CutBody {
    inner: ::tonic::body::Body,
    cut: Arc<Cut>,
    done: bool,
}

impl CutBody {
    fn end(&mut self, status: &Status) -> Poll<Option<Result<BodyFrame<Bytes>, Status>>> {
        self.done = true;
        Poll::Ready(Some(Ok(BodyFrame::trailers(trailers(status)))))
    }
}

impl http_body::Body for CutBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(status) = this.cut.status() {
            return this.end(&status);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => match this.cut.status_or_register(cx.waker()) {
                Some(status) => this.end(&status),
                None => Poll::Pending,
            },
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_trailers()
                    && let Some(status) = this.cut.status()
                {
                    return this.end(&status);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(status))) => {
                this.done = true;
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => match this.cut.status() {
                Some(status) => this.end(&status),
                None => {
                    this.done = true;
                    Poll::Ready(None)
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths() {
        for good in [
            "/inference.GRPCInferenceService/ModelInfer",
            "/Svc/M",
            "/a.b_c.D/e_1",
        ] {
            assert!(is_method_path(good), "{good}");
        }
        for bad in [
            "", "/", "//M", "/S/", "S/M", "/S/M/", "/S/M?x", "/S M/N", "/S/%4D",
        ] {
            assert!(!is_method_path(bad), "{bad}");
        }
        let e = MethodRules::new()
            .try_authentication_only("S/M")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid gRPC method \"S/M\": expected \"/package.Service/Method\""
        );
        let e = MethodRules::new()
            .authentication_only("/S/M")
            .try_authentication_only("/S/M")
            .unwrap_err();
        assert_eq!(e.to_string(), "gRPC method \"/S/M\" has a rule already");
    }

    #[test]
    fn refusals_map_to_statuses() {
        let cloud = crate::Cloud::global();
        let s = Status::from(Refusal::from_bearer_error(http::BearerError::Missing));
        assert_eq!(s.code(), Code::Unauthenticated);
        assert_eq!(s.message(), "invalid_request: bearer token required");
        assert_eq!(s.metadata().get("www-authenticate").unwrap(), "Bearer");
        let s = Status::from(Refusal::from_bearer_error(http::BearerError::Malformed));
        assert_eq!(s.code(), Code::Unauthenticated);
        let s = Status::from(Refusal::forbidden());
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(
            s.message(),
            "insufficient_scope: the caller may not perform this action on this resource"
        );
        let s = Status::from(Refusal::unavailable("signing keys unavailable"));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.metadata().get("retry-after").unwrap(), "5");
        let s = Status::from(Refusal::misconfigured("x"));
        assert_eq!(s.code(), Code::Internal);
        let claims = crate::http::challenge::auth_context_claims("c1");
        let refusal = Refusal::insufficient_claims(&cloud, &claims);
        let challenge = refusal.www_authenticate.clone().unwrap();
        let s = Status::from(refusal);
        assert_eq!(s.code(), Code::Unauthenticated);
        assert_eq!(
            s.metadata()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap(),
            challenge
        );
        assert_eq!(
            s.message(),
            "insufficient_claims: a stronger or more recent sign-in is required"
        );
    }

    #[test]
    fn frame_refusals_map_to_statuses() {
        assert_eq!(
            frame_status(FrameError::Compressed, 4).code(),
            Code::Unimplemented
        );
        let s = frame_status(FrameError::TooLarge { len: 9 }, 4);
        assert_eq!(
            (s.code(), s.message()),
            (
                Code::ResourceExhausted,
                "a request message is longer than 4 bytes"
            )
        );
        assert_eq!(
            frame_status(FrameError::Truncated, 4).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            frame_status(FrameError::InvalidFlag, 4).code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn the_response_ends_with_the_cut() {
        let cut = Cut::default();
        assert!(cut.status().is_none());
        cut.cut(Status::permission_denied("first"));
        cut.cut(Status::internal("second"));
        let status = cut.status().unwrap();
        assert_eq!(
            (status.code(), status.message()),
            (Code::PermissionDenied, "first")
        );
        let trailers = trailers(&status);
        assert_eq!(trailers.get("grpc-status").unwrap(), "7");
    }
}
