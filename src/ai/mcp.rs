//! MCP (Model Context Protocol) servers behind the governor, framework-neutral: which tool
//! a JSON-RPC message calls, the `tools/list` answer filtered to the tools the caller may
//! call, and the OAuth 2.0 Protected Resource Metadata (RFC 9728) an MCP server publishes.
//!
//! ```
//! use entra_governor::ai::mcp::{McpMessage, McpMethod, ProtectedResourceMetadata};
//! use entra_governor::{Cloud, TenantId};
//!
//! let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call",
//!                 "params":{"name":"deploy_model","arguments":{"model":"llama-3-8b"}}}"#;
//! let message = McpMessage::parse(Some(b"application/json"), body)?;
//! assert_eq!(message.kind(), &McpMethod::ToolsCall { name: "deploy_model".into() });
//! assert_eq!(message.id(), Some(&serde_json::json!(7)));
//!
//! let tenant = TenantId::parse("8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d")?;
//! let metadata = ProtectedResourceMetadata::for_entra(
//!     "https://mcp.example.com/mcp",
//!     &Cloud::global(),
//!     &tenant,
//!     "6e74172b-be56-4843-9ff4-e66a39bb12e3",
//! )?
//! .resource_name("Model operations MCP server");
//! assert_eq!(
//!     metadata.well_known_url(),
//!     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
//! );
//! assert_eq!(
//!     metadata.authorization_servers(),
//!     ["https://login.microsoftonline.com/8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d/v2.0"]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The axum middleware built on this module is `entra_governor::axum::mcp`.
//!
//! ## What is decided, per JSON-RPC method
//!
//! | message | requires | then |
//! |---|---|---|
//! | `tools/call` | the tool action (default `tools.call`) on the template filled with `params.name` (default `tools/{name}`) | forwarded on allow |
//! | `tools/list` (a request: it has an `id`) | an authenticated caller | forwarded; the answer filtered to the tools the caller may call (one [`Governor::authorize_each`] call; 503 when group membership is unavailable for any tool, rather than a list short of tools the caller has) |
//! | any other method (`initialize`, `ping`, `server/discover`, `notifications/*`, `resources/*`, `prompts/*`, …), and JSON-RPC responses | an authenticated caller | forwarded unchanged |
//!
//! This module decides tools only: methods that need more than a verified caller are the
//! server's to guard (or the route's `RequireLayer`, which then requires its action of
//! every message).
//!
//! ## What is refused before any decision
//!
//! | request | status | JSON-RPC code | audit reason |
//! |---|---|---|---|
//! | body over the limit | 413 | -32600 | `body_too_large` |
//! | `Content-Type` not JSON | 415 | -32600 | `unsupported_media_type` |
//! | not JSON | 400 | -32700 | `invalid_json` |
//! | a key repeated in one object (`params.name` twice, at any depth) | 400 | -32600 | `duplicate_key` |
//! | a JSON-RPC batch (an array; removed from MCP in 2025-06-18) | 400 | -32600 | `jsonrpc_batch` |
//! | not JSON-RPC 2.0 (`jsonrpc` ≠ `"2.0"`, `method` not a string, an `id` neither string, number nor null, no `method` and not a response, `tools/list` without `id`, `Tools/Call` or ` tools/call`) | 400 | -32600 | `invalid_jsonrpc` |
//! | `tools/call` whose `params.name` is missing or not a string | 400 | -32602 | `invalid_tool_name` |
//! | `tools/call` whose `params.name` is not a resource segment (empty, `/`, `%`) | 403 | -32001 | `invalid_resource` |
//! | `Mcp-Method` or `Mcp-Name` header (Streamable HTTP 2026-07-28) repeated or differing from the body | 400 | -32020 (`HeaderMismatch`) | `header_mismatch` |
//!
//! The headers are checked when present, so that a load balancer routing on `Mcp-Name`
//! and the server executing the body's `params.name` cannot disagree about the tool the
//! governor authorized; requiring them is the MCP server's business.
//!
//! ## Filtering `tools/list`: fail closed
//!
//! Both response forms of the Streamable HTTP transport are filtered:
//! - `application/json`: the body must be one JSON-RPC response (keys unique at every
//!   depth) whose `id` is the request's; a `result.tools` array keeps only the entries
//!   whose `name` the caller may call; every other field (`nextCursor`, `ttlMs`, `_meta`,
//!   each kept tool's schema) is kept.
//! - `text/event-stream`: events are read until the one carrying the response to the
//!   request's `id`; that event's data is filtered as above (its other fields, `event:`,
//!   `id:`, comments, kept), the events before it (progress, log messages, the empty
//!   priming event) are passed unchanged, in order, and the stream ends with the response,
//!   as the transport says it should: events a server sends after it are dropped.
//!
//! A tool entry without a string `name`, or whose name is not a resource segment, cannot
//! be called, so it is left out. A listing carrying `cacheScope` (or `ttlMs`) is marked
//! `"cacheScope": "private"`: it is this caller's, and a shared cache must not hand it to
//! another.
//!
//! Anything that cannot be read with certainty is refused rather than passed unfiltered
//! ([`ResponseError`], answered 502 with a JSON-RPC error): a body that is not JSON or has
//! a repeated key, a batch, a response with another `id` (or a second response), a
//! `result` without a `tools` array, another content type (or a `Content-Encoding`), an
//! SSE event whose data is not a JSON object, a bare carriage return (the SSE parsers of
//! clients would split lines where this one does not), more than the response limit.
//! Error responses (`error` instead of `result`) list nothing and pass unchanged.
//!
//! ## The protected resource metadata (RFC 9728)
//!
//! [`ProtectedResourceMetadata`] is the document an MCP server MUST publish (MCP
//! authorization, "Authorization Server Discovery"): its resource identifier (the MCP
//! endpoint's URL), Entra's v2.0 issuer for the tenant as authorization server, the scopes
//! to ask for (`api://<client-id>/Tools.Call`), `bearer_methods_supported = ["header"]`.
//! It is served unauthenticated at [`well_known_path`](ProtectedResourceMetadata::well_known_path)
//! (RFC 9728 §3.1: `/.well-known/oauth-protected-resource` inserted between the host and
//! the path), and every refusal's `Bearer` challenge names it with `resource_metadata`
//! ([`Refusal::with_resource_metadata`]).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

use super::body::{BodyError, JsonObject, check_content_type, parse_object};
use crate::http::{self, Refusal, RefusalBody, RenderError, ResourceTemplate, TemplateError};
use crate::{Cloud, Decision, Governor, Principal, RequestContext, TenantId};

/// The action a `tools/call` requires by default.
pub const DEFAULT_TOOL_ACTION: &str = "tools.call";

/// The resource a `tools/call` is decided on by default: `tools/` and `params.name`.
pub const DEFAULT_TOOL_TEMPLATE: &str = "tools/{name}";

/// The action recorded in the audit trail for a refused message that names no tool (a
/// body that is not JSON-RPC, a batch, mismatching headers).
pub const MCP_REQUEST_ACTION: &str = "mcp.request";

/// The delegated scope (`scp`) an MCP client asks Entra for: `api://<client-id>/Tools.Call`.
pub const TOOLS_CALL_SCOPE: &str = "Tools.Call";

/// The well-known URI suffix of RFC 9728 §3.
pub const PROTECTED_RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// JSON-RPC: the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the body is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the parameters are invalid (`params.name`).
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: the server failed (the MCP server's answer could not be filtered).
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP `HeaderMismatch`: `Mcp-Method` / `Mcp-Name` differ from the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// The code of refusals by the governor (401, 403): from the JSON-RPC range MCP leaves
/// to implementations (-32000 to -32019); the HTTP status and `WWW-Authenticate` say more.
pub const UNAUTHORIZED: i64 = -32001;

// ------------------------------------------------------------------------- requests

/// What a message asks for, as far as authorization goes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpMethod {
    /// `tools/call` of the tool `params.name`.
    ToolsCall {
        /// The tool's name, as the body gives it.
        name: String,
    },
    /// `tools/list`: its answer is filtered.
    ToolsList,
    /// Every other method, notification or response: an authenticated caller suffices.
    Other,
}

/// One JSON-RPC message of an MCP client, parsed once: the body the MCP server will act on.
#[derive(Clone, Debug)]
pub struct McpMessage {
    id: Option<Value>,
    method: Option<String>,
    kind: McpMethod,
    body: JsonObject,
}

/// Why a message was refused before any decision (see [the table](self)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The body itself: too large, not JSON, not an object, a repeated key.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A JSON-RPC batch (an array of messages): MCP removed them in 2025-06-18.
    #[error("JSON-RPC batches are not accepted")]
    Batch,
    /// Not a JSON-RPC 2.0 message this module can classify with certainty.
    #[error("not a valid JSON-RPC 2.0 message: {reason}")]
    InvalidRequest {
        /// What is wrong, a fixed phrase.
        reason: &'static str,
    },
    /// `tools/call` without a string `params.name`.
    #[error("tools/call needs a string params.name: {reason}")]
    InvalidToolName {
        /// What is wrong, a fixed phrase.
        reason: &'static str,
    },
    /// An `Mcp-Method` or `Mcp-Name` header that is repeated, malformed or differs from the
    /// body.
    #[error("the {header} header does not match the request body")]
    HeaderMismatch {
        /// `Mcp-Method` or `Mcp-Name`.
        header: &'static str,
    },
}

impl McpError {
    /// The HTTP status: 413, 415 or 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::Body(e) => e.status(),
            _ => 400,
        }
    }

    /// The JSON-RPC error code of the response body.
    pub fn jsonrpc_code(&self) -> i64 {
        match self {
            Self::Body(BodyError::NotJson { .. }) => PARSE_ERROR,
            Self::Body(_) | Self::Batch | Self::InvalidRequest { .. } => INVALID_REQUEST,
            Self::InvalidToolName { .. } => INVALID_PARAMS,
            Self::HeaderMismatch { .. } => HEADER_MISMATCH,
        }
    }

    /// A stable snake_case code for the response and the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Body(e) => e.code(),
            Self::Batch => "jsonrpc_batch",
            Self::InvalidRequest { .. } => "invalid_jsonrpc",
            Self::InvalidToolName { .. } => "invalid_tool_name",
            Self::HeaderMismatch { .. } => "header_mismatch",
        }
    }

    /// A fixed phrase for the response (no part of the request is echoed).
    pub fn description(&self) -> &'static str {
        match self {
            Self::Body(e) => e.description(),
            Self::Batch => "JSON-RPC batches are not accepted",
            Self::InvalidRequest { reason } | Self::InvalidToolName { reason } => reason,
            Self::HeaderMismatch {
                header: "Mcp-Method",
            } => "the Mcp-Method header does not match the request body",
            Self::HeaderMismatch { .. } => "the Mcp-Name header does not match the request body",
        }
    }

    /// The refusal to send: status, no challenge, this error's code and description.
    pub fn refusal(&self) -> Refusal {
        Refusal {
            status: self.status(),
            www_authenticate: None,
            retry_after: None,
            body: RefusalBody {
                error: self.code(),
                error_description: self.description(),
            },
        }
    }
}

impl McpMessage {
    /// Parses the body of an MCP POST (its `Content-Type` value, absent or JSON) and
    /// classifies it; see [the table](self) for what is refused.
    ///
    /// # Errors
    /// The [`McpError`] saying why the body is refused.
    pub fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<Self, McpError> {
        check_content_type(content_type)?;
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(McpError::Batch);
        }
        let body = parse_object(body)?;
        let invalid = |reason| Err(McpError::InvalidRequest { reason });
        if body.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return invalid("jsonrpc must be \"2.0\"");
        }
        let id = match body.get("id") {
            None => None,
            Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id.clone()),
            Some(_) => return invalid("id must be a string, a number or null"),
        };
        let method = match body.get("method") {
            None if body.contains_key("result") || body.contains_key("error") => None,
            None => return invalid("a request or notification needs a method"),
            Some(Value::String(method)) => Some(method.clone()),
            Some(_) => return invalid("method must be a string"),
        };
        let kind = match method.as_deref() {
            Some("tools/call") => McpMethod::ToolsCall {
                name: tool_name(&body)?,
            },
            Some("tools/list") if id.is_none() => return invalid("tools/list needs an id"),
            Some("tools/list") => McpMethod::ToolsList,
            // A server that matched methods loosely would run a call decided as "other".
            Some(m)
                if ["tools/call", "tools/list"]
                    .iter()
                    .any(|t| m.trim().eq_ignore_ascii_case(t)) =>
            {
                return invalid("method names are case-sensitive and unpadded");
            }
            _ => McpMethod::Other,
        };
        Ok(Self {
            id,
            method,
            kind,
            body,
        })
    }

    /// The JSON-RPC `id` (a string, a number or null); `None` for a notification.
    pub fn id(&self) -> Option<&Value> {
        self.id.as_ref()
    }

    /// The JSON-RPC `method`; `None` for a response.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// What the message asks for.
    pub fn kind(&self) -> &McpMethod {
        &self.kind
    }

    /// The whole message, as parsed.
    pub fn body(&self) -> &JsonObject {
        &self.body
    }

    /// Checks the `Mcp-Method` and `Mcp-Name` headers (Streamable HTTP, 2026-07-28), each
    /// given as all its values, against the body: when present, each must appear once and
    /// equal `method` and `params.name` (`params.uri` for `resources/read`) respectively,
    /// `Mcp-Name` after decoding the `=?base64?…?=` form. Absent headers are not required
    /// here.
    ///
    /// # Errors
    /// [`McpError::HeaderMismatch`] naming the header.
    pub fn check_mirrored_headers<'a>(
        &self,
        mcp_method: impl Iterator<Item = &'a [u8]>,
        mcp_name: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), McpError> {
        let method = single(mcp_method, "Mcp-Method")?;
        if method.is_some_and(|value| self.method.as_deref().map(str::as_bytes) != Some(value)) {
            return Err(McpError::HeaderMismatch {
                header: "Mcp-Method",
            });
        }
        if let Some(value) = single(mcp_name, "Mcp-Name")? {
            let field = match self.method.as_deref() {
                Some("tools/call" | "prompts/get") => "name",
                Some("resources/read") => "uri",
                _ => return Ok(()),
            };
            let mismatch = McpError::HeaderMismatch { header: "Mcp-Name" };
            let decoded = decode_header_value(value).ok_or(mismatch.clone())?;
            let body_value = self
                .body
                .get("params")
                .and_then(|p| p.get(field))
                .and_then(Value::as_str);
            if body_value != Some(decoded.as_str()) {
                return Err(mismatch);
            }
        }
        Ok(())
    }
}

/// The one value of a header given as all its values; a repeated header is a mismatch.
fn single<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
    header: &'static str,
) -> Result<Option<&'a [u8]>, McpError> {
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(McpError::HeaderMismatch { header }),
    }
}

/// `params.name` of a `tools/call`, a string.
fn tool_name(body: &JsonObject) -> Result<String, McpError> {
    let invalid = |reason| Err(McpError::InvalidToolName { reason });
    match body.get("params") {
        Some(Value::Object(params)) => match params.get("name") {
            Some(Value::String(name)) => Ok(name.clone()),
            Some(_) => invalid("params.name must be a string"),
            None => invalid("params.name is missing"),
        },
        _ => invalid("params must be an object with a name"),
    }
}

/// A header value as text, `=?base64?…?=` decoded (MCP "Value Encoding").
fn decode_header_value(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    match text
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(STANDARD.decode(encoded).ok()?).ok(),
        None => Some(text.to_owned()),
    }
}

/// A JSON-RPC error response: `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…}}`,
/// with `data` when given; `id` null when the request's is unknown.
pub fn jsonrpc_error(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    serde_json::json!({ "jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error })
}

// ---------------------------------------------------------------------- authorizing

/// Decides MCP messages with one governor: `tools/call` on the tool's resource, and the
/// `tools/list` answer filtered to what the caller may call. Adapters hold one.
#[derive(Clone, Debug)]
pub struct McpAuthorizer {
    governor: Governor,
    action: Arc<str>,
    template: Arc<ResourceTemplate>,
}

impl McpAuthorizer {
    /// `tools.call` on `tools/{name}`, decided by `governor`.
    pub fn new(governor: Governor) -> Self {
        Self {
            governor,
            action: DEFAULT_TOOL_ACTION.into(),
            template: Arc::new(
                ResourceTemplate::parse(DEFAULT_TOOL_TEMPLATE).expect("a valid template"),
            ),
        }
    }

    /// Requires `action` instead of `tools.call` (a custom action of the policy).
    #[must_use]
    pub fn with_action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into().into();
        self
    }

    /// Decides on the resource `template` names instead of `tools/{name}`, e.g.
    /// `mcp/ops-server/tools/{name}` for one of several servers. Its only placeholder is
    /// `{name}` (one segment).
    ///
    /// # Errors
    /// The [`TemplateError`] of a template that does not parse or has another placeholder.
    pub fn with_template(mut self, template: &str) -> Result<Self, TemplateError> {
        let parsed = ResourceTemplate::parse(template)?;
        if parsed
            .placeholders()
            .any(|(name, rest)| name != "name" || rest)
            || !parsed.has_placeholders()
        {
            return Err(TemplateError {
                template: template.to_owned(),
                reason: "an MCP tool template has {name} placeholders only",
                problem: None,
            });
        }
        self.template = Arc::new(parsed);
        Ok(self)
    }

    /// The governor that decides.
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// The action a `tools/call` requires.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The template naming a tool's resource.
    pub fn template(&self) -> &ResourceTemplate {
        &self.template
    }

    /// The resource of the tool `name`.
    ///
    /// # Errors
    /// [`RenderError::InvalidValue`] when `name` is not a resource segment.
    pub fn tool_resource(&self, name: &str) -> Result<String, RenderError> {
        self.template.render(|_| Some(name))
    }

    /// Decides `message` for a verified caller: a `tools/call` is [`http::authorize`]d
    /// (recorded in the audit trail) and its allowing [`Decision`] returned; other
    /// messages need nothing more (`Ok(None)`). A tool name that is not a resource segment
    /// is refused with 403 and recorded as `invalid_resource`, resource `path`.
    ///
    /// # Errors
    /// The [`Refusal`] to send (403, 503, a 401 step-up challenge).
    pub async fn authorize(
        &self,
        principal: &Arc<Principal>,
        message: &McpMessage,
        path: &str,
        context: &RequestContext,
    ) -> Result<Option<Decision>, Refusal> {
        let McpMethod::ToolsCall { name } = &message.kind else {
            return Ok(None);
        };
        let resource = match self.tool_resource(name) {
            Ok(resource) => resource,
            Err(e) => {
                http::record_invalid_resource(
                    &self.governor,
                    principal,
                    &self.action,
                    path,
                    context,
                )
                .await;
                return Err(Refusal::from_render_error(&e));
            }
        };
        http::authorize(&self.governor, principal, &self.action, &resource, context)
            .await
            .map(Some)
    }

    /// Filters an `application/json` answer to the `tools/list` request `id`.
    ///
    /// # Errors
    /// A [`FilterError`]: the answer cannot be filtered (502), or the caller's token
    /// expired or was revoked meanwhile, or the audit trail failed.
    pub async fn filter_json_response(
        &self,
        principal: &Principal,
        id: &Value,
        body: &[u8],
        context: &RequestContext,
    ) -> Result<Vec<u8>, FilterError> {
        let mut message = parse_response(body)?;
        if !is_response(&message) || message.get("id") != Some(id) {
            return Err(ResponseError::NotTheResponse.into());
        }
        self.filter_message(principal, &mut message, context)
            .await?;
        Ok(serde_json::to_vec(&message).unwrap_or_default())
    }

    /// Filters a `text/event-stream` answer read into `stream` (see [`SseResponse`]): the
    /// events before the response unchanged, then the response filtered.
    ///
    /// # Errors
    /// As [`filter_json_response`](Self::filter_json_response).
    pub async fn filter_sse_response(
        &self,
        principal: &Principal,
        mut stream: SseResponse,
        context: &RequestContext,
    ) -> Result<Vec<u8>, FilterError> {
        let Some((event, mut message)) = stream.response.take() else {
            return Ok(stream.output);
        };
        self.filter_message(principal, &mut message, context)
            .await?;
        event.write_with_data(
            &serde_json::to_string(&message).unwrap_or_default(),
            &mut stream.output,
        );
        Ok(stream.output)
    }

    /// Filters one JSON-RPC response to a `tools/list`: `result.tools` keeps the tools the
    /// caller may call; an error response is left as it is.
    async fn filter_message(
        &self,
        principal: &Principal,
        message: &mut JsonObject,
        context: &RequestContext,
    ) -> Result<(), FilterError> {
        let Some(result) = message.get_mut("result") else {
            return Ok(());
        };
        let Value::Object(result) = result else {
            return Err(ResponseError::NoToolsArray.into());
        };
        let Some(Value::Array(tools)) = result.get_mut("tools") else {
            return Err(ResponseError::NoToolsArray.into());
        };
        let resources: Vec<Option<String>> = tools
            .iter()
            .map(|tool| {
                let name = tool.get("name").and_then(Value::as_str)?;
                self.tool_resource(name).ok()
            })
            .collect();
        let named: Vec<&str> = resources.iter().flatten().map(String::as_str).collect();
        let decisions = self
            .governor
            .authorize_each(principal, &self.action, &named, context)
            .await
            .map_err(|e| {
                FilterError::Refused(Refusal::from_authorize_error(&e, self.governor.cloud()))
            })?;
        if decisions
            .iter()
            .any(|d| d.reason == crate::Reason::GroupMembershipUnavailable)
        {
            // A listing short of the caller's tools would look like a revocation.
            return Err(FilterError::Refused(Refusal::unavailable(
                "group membership unavailable",
            )));
        }
        let allowed: HashSet<&str> = named
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| d.is_allowed())
            .map(|(name, _)| *name)
            .collect();
        let mut keep = resources
            .iter()
            .map(|r| r.as_deref().is_some_and(|r| allowed.contains(r)));
        tools.retain(|_| keep.next().unwrap_or(false));
        if result.contains_key("cacheScope") || result.contains_key("ttlMs") {
            result.insert("cacheScope".into(), Value::String("private".into()));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------- responses

/// Why the MCP server's answer to a `tools/list` could not be filtered: it is refused
/// (502) rather than passed through unfiltered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The answer is longer than the response limit.
    #[error("the tools/list response exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Neither `application/json` nor `text/event-stream`, or content-encoded.
    #[error("the tools/list response is neither application/json nor text/event-stream")]
    UnsupportedContentType,
    /// Not one JSON object with unique keys.
    #[error("the tools/list response is not a JSON-RPC message: {0}")]
    NotJson(BodyError),
    /// A JSON-RPC batch.
    #[error("the tools/list response is a JSON-RPC batch")]
    Batch,
    /// Not a response, or the response to another request.
    #[error("the message is not the response to the tools/list request")]
    NotTheResponse,
    /// A `result` without a `tools` array.
    #[error("the tools/list result has no tools array")]
    NoToolsArray,
    /// An event stream this module cannot read as every client would.
    #[error("the tools/list event stream cannot be read: {reason}")]
    InvalidEventStream {
        /// What is wrong, a fixed phrase.
        reason: &'static str,
    },
}

impl ResponseError {
    /// The refusal sent instead: 502 `server_error`, the same for every cause (the MCP
    /// server's answer is not the caller's business; it is logged).
    pub fn refusal(&self) -> Refusal {
        Refusal {
            status: 502,
            www_authenticate: None,
            retry_after: None,
            body: RefusalBody {
                error: "server_error",
                error_description: "the MCP server's tools/list answer could not be filtered",
            },
        }
    }
}

/// Why a `tools/list` answer was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The answer could not be filtered (502).
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The governor refused meanwhile: the token expired or was revoked (401), the audit
    /// trail is unavailable (503).
    #[error("{0}")]
    Refused(Refusal),
}

impl FilterError {
    /// The refusal to send.
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Response(e) => e.refusal(),
            Self::Refused(r) => r.clone(),
        }
    }
}

fn parse_response(body: &[u8]) -> Result<JsonObject, ResponseError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ResponseError::Batch);
    }
    parse_object(body).map_err(ResponseError::NotJson)
}

/// A JSON-RPC response: it carries `result` or `error` (whatever else it holds, a client
/// would take it for one).
fn is_response(message: &JsonObject) -> bool {
    message.contains_key("result") || message.contains_key("error")
}

/// A `text/event-stream` answer to a `tools/list` request, read chunk by chunk until the
/// response to the request arrives: [`push`](Self::push) says when to stop reading, then
/// [`McpAuthorizer::filter_sse_response`] writes the stream to send.
///
/// Events are separated by blank lines; lines end with LF or CRLF (a bare CR is refused);
/// a leading byte-order mark is dropped; an event's data is its `data:` lines joined by
/// LF. Events without data pass unchanged; an event with data must carry one JSON object
/// (unique keys), and any response in it must be the one to the request.
#[derive(Debug)]
pub struct SseResponse {
    id: Value,
    limit: usize,
    read: usize,
    started: bool,
    /// Bytes of the event being read; `scanned` of them are complete lines, in `lines`.
    pending: Vec<u8>,
    scanned: usize,
    lines: Vec<String>,
    output: Vec<u8>,
    response: Option<(SseEvent, JsonObject)>,
}

/// One event's lines (terminators removed).
#[derive(Debug)]
struct SseEvent {
    lines: Vec<String>,
}

impl SseEvent {
    /// The lines, the data lines replaced by one `data: <data>` line where the first was.
    fn write_with_data(&self, data: &str, out: &mut Vec<u8>) {
        let mut written = false;
        for line in &self.lines {
            if is_data_line(line) {
                if !written {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(data.as_bytes());
                    out.push(b'\n');
                    written = true;
                }
            } else {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }

    /// The data lines' values joined by LF; `None` without any.
    fn data(&self) -> Option<String> {
        let mut data: Option<String> = None;
        for line in self.lines.iter().filter(|l| is_data_line(l)) {
            let value = line.strip_prefix("data").unwrap_or_default();
            let value = value.strip_prefix(':').unwrap_or(value);
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
        data
    }
}

/// `data`, `data:…`: the field name is exactly `data`.
fn is_data_line(line: &str) -> bool {
    line == "data" || line.starts_with("data:")
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseResponse {
    /// The stream answering the `tools/list` request `id`, refused past `limit` bytes.
    pub fn new(id: Value, limit: usize) -> Self {
        Self {
            id,
            limit,
            read: 0,
            started: false,
            pending: Vec::new(),
            scanned: 0,
            lines: Vec::new(),
            output: Vec::new(),
            response: None,
        }
    }

    /// Reads `chunk`: `Ok(true)` once the response has arrived (read no more; what
    /// follows it is dropped), `Ok(false)` to go on reading.
    ///
    /// # Errors
    /// The [`ResponseError`] that makes the stream unreadable.
    pub fn push(&mut self, chunk: &[u8]) -> Result<bool, ResponseError> {
        if self.response.is_some() {
            return Ok(true);
        }
        self.read += chunk.len();
        if self.read > self.limit {
            return Err(ResponseError::TooLarge { limit: self.limit });
        }
        self.pending.extend_from_slice(chunk);
        if !self.started {
            if self.pending.len() < BOM.len() && BOM.starts_with(&self.pending) {
                return Ok(false);
            }
            if self.pending.starts_with(BOM) {
                self.pending.drain(..BOM.len());
            }
            self.started = true;
        }
        let invalid = |reason| ResponseError::InvalidEventStream { reason };
        let mut start = self.scanned;
        let mut consumed = 0;
        while let Some(offset) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let end = start + offset;
            let line = &self.pending[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.contains(&b'\r') {
                return Err(invalid("a bare carriage return"));
            }
            let line = std::str::from_utf8(line).map_err(|_| invalid("not UTF-8"))?;
            start = end + 1;
            if !line.is_empty() {
                self.lines.push(line.to_owned());
                continue;
            }
            // A blank line ends the event.
            let event = SseEvent {
                lines: std::mem::take(&mut self.lines),
            };
            let raw = &self.pending[consumed..start];
            consumed = start;
            match event.data().filter(|d| !d.is_empty()) {
                None => self.output.extend_from_slice(raw),
                Some(data) => {
                    let message = parse_response(data.as_bytes())
                        .map_err(|_| invalid("an event's data is not one JSON object"))?;
                    if !is_response(&message) {
                        self.output.extend_from_slice(raw);
                    } else if message.get("id") == Some(&self.id) {
                        self.response = Some((event, message));
                        self.pending = Vec::new();
                        self.scanned = 0;
                        return Ok(true);
                    } else {
                        return Err(ResponseError::NotTheResponse);
                    }
                }
            }
        }
        self.pending.drain(..consumed);
        self.scanned = start - consumed;
        Ok(false)
    }

    /// Whether the response has arrived.
    pub fn has_response(&self) -> bool {
        self.response.is_some()
    }
}

// ------------------------------------------------------------- protected resource metadata

/// OAuth 2.0 Protected Resource Metadata (RFC 9728 §2): what an MCP client reads to find
/// the authorization server and the scopes to ask for. Serialize it as the JSON document
/// served at [`well_known_path`](Self::well_known_path); empty lists and absent values
/// are left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProtectedResourceMetadata {
    /// REQUIRED: the resource identifier, the MCP endpoint's URL (`https`, no fragment).
    resource: String,
    /// The issuers of the authorization servers whose tokens the resource accepts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    /// The scopes a client requests to call the resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    /// How a token is sent: `header` (RFC 6750 §2.1), the only way the governor reads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bearer_methods_supported: Vec<String>,
    /// A human-readable name of the resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    /// A page of documentation for developers.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
    #[serde(skip)]
    origin: String,
    #[serde(skip)]
    path: String,
}

/// A resource identifier RFC 9728 does not allow, or this crate does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid protected resource identifier {resource:?}: {reason}")]
pub struct MetadataError {
    /// The identifier, as given (at most 256 characters of it).
    pub resource: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ProtectedResourceMetadata {
    /// The metadata of the resource `resource` (the MCP endpoint's URL, e.g.
    /// `https://mcp.example.com/mcp`): an absolute `https` URL with a host and without
    /// user information, query or fragment. `bearer_methods_supported` is `["header"]`;
    /// add the authorization server with [`entra`](Self::entra) or
    /// [`authorization_server`](Self::authorization_server).
    ///
    /// # Errors
    /// The [`MetadataError`] saying what is wrong with `resource`.
    pub fn new(resource: &str) -> Result<Self, MetadataError> {
        Self::checked(resource, false)
    }

    /// [`new`](Self::new) that also accepts `http` on a loopback host (`127.0.0.1`,
    /// `[::1]`, `localhost`), for local development and tests. RFC 9728 requires `https`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn dangerous_http_loopback(resource: &str) -> Result<Self, MetadataError> {
        Self::checked(resource, true)
    }

    /// The metadata of `resource` protected by Entra: the authorization server is the
    /// tenant's v2.0 issuer (`<cloud authority>/<tenant>/v2.0`, whose OpenID configuration
    /// MCP clients find by appending `/.well-known/openid-configuration`), the scope
    /// `api://<client_id>/Tools.Call`. See [`entra`](Self::entra).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn for_entra(
        resource: &str,
        cloud: &Cloud,
        tenant: &TenantId,
        client_id: &str,
    ) -> Result<Self, MetadataError> {
        Ok(Self::new(resource)?.entra(cloud, tenant, client_id))
    }

    fn checked(resource: &str, http_loopback: bool) -> Result<Self, MetadataError> {
        let error = |reason| MetadataError {
            resource: resource.chars().take(256).collect(),
            reason,
        };
        let url = url::Url::parse(resource).map_err(|_| error("not an absolute URL"))?;
        let loopback = matches!(
            url.host(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback()
        ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            || url.host_str() == Some("localhost");
        match url.scheme() {
            "https" => {}
            "http" if http_loopback && loopback => {}
            "http" if http_loopback => return Err(error("http is for loopback hosts only")),
            _ => return Err(error("the scheme must be https")),
        }
        if url.host().is_none() {
            return Err(error("no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(error("user information is not allowed"));
        }
        if resource.contains('#') {
            return Err(error("a fragment is not allowed"));
        }
        if resource.contains('?') {
            return Err(error("a query is not supported"));
        }
        Ok(Self {
            resource: resource.to_owned(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: None,
            resource_documentation: None,
            origin: url.origin().ascii_serialization(),
            path: url.path().to_owned(),
        })
    }

    /// Entra as the authorization server: `<cloud authority>/<tenant>/v2.0`, and the scope
    /// `api://<client_id>/Tools.Call` (replace it with
    /// [`scopes_supported`](Self::scopes_supported) when the API's App ID URI is another).
    #[must_use]
    pub fn entra(mut self, cloud: &Cloud, tenant: &TenantId, client_id: &str) -> Self {
        self.authorization_servers = vec![format!(
            "{}/{}/v2.0",
            cloud.authority().trim_end_matches('/'),
            tenant.as_str()
        )];
        self.scopes_supported = vec![format!("api://{client_id}/{TOOLS_CALL_SCOPE}")];
        self
    }

    /// Adds an authorization server (its issuer identifier).
    #[must_use]
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Replaces the scopes a client should request.
    #[must_use]
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the human-readable name.
    #[must_use]
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Sets the developer documentation URL.
    #[must_use]
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The authorization servers' issuers.
    pub fn authorization_servers(&self) -> &[String] {
        &self.authorization_servers
    }

    /// The scopes a client should request; the `scope` of the server's challenges.
    pub fn scopes(&self) -> &[String] {
        &self.scopes_supported
    }

    /// The path the document is served at (RFC 9728 §3.1): the well-known suffix
    /// inserted between the host and the resource's path, a path of `/` dropped:
    /// `https://mcp.example.com/mcp` → `/.well-known/oauth-protected-resource/mcp`,
    /// `https://mcp.example.com` → `/.well-known/oauth-protected-resource`.
    pub fn well_known_path(&self) -> String {
        match self.path.as_str() {
            "" | "/" => PROTECTED_RESOURCE_WELL_KNOWN.to_owned(),
            path => format!("{PROTECTED_RESOURCE_WELL_KNOWN}{path}"),
        }
    }

    /// The document's URL: the resource's origin and [`well_known_path`](Self::well_known_path);
    /// the `resource_metadata` of every challenge.
    pub fn well_known_url(&self) -> String {
        format!("{}{}", self.origin, self.well_known_path())
    }

    /// The document, as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl fmt::Display for ProtectedResourceMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: &str) -> Result<McpMessage, McpError> {
        McpMessage::parse(Some(b"application/json"), body.as_bytes())
    }

    #[test]
    fn messages_are_classified() {
        let call = parse(
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"search_docs"}}"#,
        )
        .unwrap();
        assert_eq!(
            call.kind(),
            &McpMethod::ToolsCall {
                name: "search_docs".into()
            }
        );
        assert_eq!(call.id(), Some(&json!("a")));
        let list =
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c"}}"#)
                .unwrap();
        assert_eq!(list.kind(), &McpMethod::ToolsList);
        for other in [
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"resources/read","params":{"uri":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
        ] {
            let m = parse(other).unwrap();
            assert_eq!(m.kind(), &McpMethod::Other, "{other}");
        }
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","method":"ping"}"#)
                .unwrap()
                .method(),
            Some("ping")
        );
    }

    #[test]
    fn what_cannot_be_classified_with_certainty_is_refused() {
        let cases: &[(&str, McpError)] = &[
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
                McpError::Batch,
            ),
            (r#"  [] "#, McpError::Batch),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
                McpError::Body(BodyError::DuplicateKey { key: "name".into() }),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
                McpError::InvalidToolName {
                    reason: "params.name must be a string",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
                McpError::InvalidToolName {
                    reason: "params.name is missing",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
                McpError::InvalidToolName {
                    reason: "params must be an object with a name",
                },
            ),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
                McpError::InvalidRequest {
                    reason: "jsonrpc must be \"2.0\"",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"tools/list"}"#,
                McpError::InvalidRequest {
                    reason: "id must be a string, a number or null",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":["tools/call"]}"#,
                McpError::InvalidRequest {
                    reason: "method must be a string",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","method":"tools/list"}"#,
                McpError::InvalidRequest {
                    reason: "tools/list needs an id",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"x"}}"#,
                McpError::InvalidRequest {
                    reason: "method names are case-sensitive and unpadded",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list "}"#,
                McpError::InvalidRequest {
                    reason: "method names are case-sensitive and unpadded",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1}"#,
                McpError::InvalidRequest {
                    reason: "a request or notification needs a method",
                },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body).unwrap_err(), *expected, "{body}");
        }
        let e = McpMessage::parse(Some(b"text/plain"), b"{}").unwrap_err();
        assert_eq!((e.status(), e.code()), (415, "unsupported_media_type"));
        let e = parse("{").unwrap_err();
        assert_eq!((e.status(), e.jsonrpc_code()), (400, PARSE_ERROR));
        assert_eq!(
            McpError::Batch.refusal().body_json(),
            r#"{"error":"jsonrpc_batch","error_description":"JSON-RPC batches are not accepted"}"#
        );
    }

    #[test]
    fn mirrored_headers_must_match_the_body() {
        let call = parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_docs"}}"#,
        )
        .unwrap();
        let check = |method: &[&[u8]], name: &[&[u8]]| {
            call.check_mirrored_headers(method.iter().copied(), name.iter().copied())
        };
        assert_eq!(check(&[], &[]), Ok(()));
        assert_eq!(check(&[b"tools/call"], &[b"search_docs"]), Ok(()));
        // "search_docs" in the Base64 sentinel form.
        assert_eq!(check(&[], &[b"=?base64?c2VhcmNoX2RvY3M=?="]), Ok(()));
        let name = Err(McpError::HeaderMismatch { header: "Mcp-Name" });
        let method = Err(McpError::HeaderMismatch {
            header: "Mcp-Method",
        });
        assert_eq!(check(&[], &[b"deploy_model"]), name);
        assert_eq!(check(&[], &[b"search_docs", b"search_docs"]), name);
        assert_eq!(check(&[], &[b"=?base64?not base64?="]), name);
        assert_eq!(check(&[b"tools/list"], &[]), method);
        assert_eq!(check(&[b"tools/call", b"tools/call"], &[]), method);
    }

    #[test]
    fn the_tool_template_has_name_placeholders_only() {
        let governor = Governor::builder()
            .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
            .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
            .build()
            .unwrap();
        let authorizer = McpAuthorizer::new(governor);
        assert_eq!(
            authorizer.tool_resource("search_docs").unwrap(),
            "tools/search_docs"
        );
        assert_eq!(
            authorizer.tool_resource("a/b"),
            Err(RenderError::InvalidValue {
                name: "name".into()
            })
        );
        assert_eq!(
            authorizer.tool_resource(""),
            Err(RenderError::InvalidValue {
                name: "name".into()
            })
        );
        for bad in ["tools/{tool}", "tools/{*name}", "tools/all"] {
            let e = authorizer.clone().with_template(bad).unwrap_err();
            assert_eq!(
                e.reason, "an MCP tool template has {name} placeholders only",
                "{bad}"
            );
        }
        let ops = authorizer.with_template("mcp/ops/tools/{name}").unwrap();
        assert_eq!(ops.tool_resource("x").unwrap(), "mcp/ops/tools/x");
    }

    fn read_sse(id: Value, chunks: &[&[u8]]) -> Result<SseResponse, ResponseError> {
        let mut stream = SseResponse::new(id, 1024);
        for chunk in chunks {
            if stream.push(chunk)? {
                break;
            }
        }
        Ok(stream)
    }

    #[test]
    fn an_event_stream_is_read_up_to_the_response() {
        let progress = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\r\n\r\n";
        let priming = "id: 1\ndata:\n\n";
        let response = ": comment\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\n\
                        data: \"result\":{\"tools\":[]}}\n\n";
        let text = format!("\u{feff}{priming}{progress}{response}data: after\n\n");
        let bytes = text.as_bytes();
        // Any chunking reads the same: one byte at a time, then in two halves.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let halves: Vec<&[u8]> = bytes.chunks(bytes.len() / 2 + 1).collect();
        for chunks in [singles, halves] {
            let stream = read_sse(json!(5), &chunks).unwrap();
            assert!(stream.has_response());
            assert_eq!(
                String::from_utf8_lossy(&stream.output),
                format!("{priming}{progress}")
            );
            let (event, message) = stream.response.as_ref().unwrap();
            assert_eq!(message["result"], json!({"tools": []}));
            let mut out = Vec::new();
            event.write_with_data("{}", &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                ": comment\nid: 2\ndata: {}\n\n"
            );
        }
        // Without the response, the stream is read to its end, events passed unchanged.
        let stream = read_sse(json!(5), &[priming.as_bytes(), progress.as_bytes()]).unwrap();
        assert!(!stream.has_response());
    }

    #[test]
    fn an_event_stream_that_cannot_be_read_with_certainty_is_refused() {
        let invalid = |reason| Err(ResponseError::InvalidEventStream { reason });
        let cases: &[(&str, Result<(), ResponseError>)] = &[
            (
                "data: {\"id\":5,\"result\":{}}\rdata: x\n\n",
                invalid("a bare carriage return"),
            ),
            (
                "data: not json\n\n",
                invalid("an event's data is not one JSON object"),
            ),
            (
                "data: [{\"id\":5,\"result\":{}}]\n\n",
                invalid("an event's data is not one JSON object"),
            ),
            (
                "data: {\"id\":5,\"result\":{\"tools\":[]},\"result\":{}}\n\n",
                invalid("an event's data is not one JSON object"),
            ),
            (
                "data: {\"id\":6,\"result\":{}}\n\n",
                Err(ResponseError::NotTheResponse),
            ),
            (
                "data: {\"id\":\"5\",\"error\":{}}\n\n",
                Err(ResponseError::NotTheResponse),
            ),
        ];
        for (text, expected) in cases {
            let got = read_sse(json!(5), &[text.as_bytes()]).map(|_| ());
            assert_eq!(&got, expected, "{text:?}");
        }
        let mut stream = SseResponse::new(json!(5), 8);
        assert_eq!(
            stream.push(b"data: 123456"),
            Err(ResponseError::TooLarge { limit: 8 })
        );
    }

    #[test]
    fn the_well_known_path_is_inserted_after_the_host() {
        let path = |r: &str| ProtectedResourceMetadata::new(r).unwrap();
        let m = path("https://mcp.example.com/mcp");
        assert_eq!(
            m.well_known_path(),
            "/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            m.well_known_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let m = path("https://mcp.example.com");
        assert_eq!(
            m.well_known_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        let m = path("https://mcp.example.com/");
        assert_eq!(
            m.well_known_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        let m = path("https://mcp.example.com:8443/public/mcp/");
        assert_eq!(
            m.well_known_url(),
            "https://mcp.example.com:8443/.well-known/oauth-protected-resource/public/mcp/"
        );
        let m = ProtectedResourceMetadata::dangerous_http_loopback("http://127.0.0.1:8080/mcp")
            .unwrap();
        assert_eq!(
            m.well_known_url(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
        );
        for (bad, reason) in [
            ("http://mcp.example.com/mcp", "the scheme must be https"),
            ("mcp.example.com", "not an absolute URL"),
            ("https://mcp.example.com/mcp#x", "a fragment is not allowed"),
            (
                "https://mcp.example.com/mcp?x=1",
                "a query is not supported",
            ),
            (
                "https://u:p@mcp.example.com/mcp",
                "user information is not allowed",
            ),
        ] {
            assert_eq!(
                ProtectedResourceMetadata::new(bad).unwrap_err().reason,
                reason,
                "{bad}"
            );
        }
        assert_eq!(
            ProtectedResourceMetadata::dangerous_http_loopback("http://10.0.0.1/mcp")
                .unwrap_err()
                .reason,
            "http is for loopback hosts only"
        );
    }

    #[test]
    fn the_entra_document_names_the_tenant_issuer_and_the_scope() {
        let tenant = TenantId::parse("8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d").unwrap();
        let m = ProtectedResourceMetadata::for_entra(
            "https://mcp.example.com/mcp",
            &Cloud::us_government(),
            &tenant,
            "6e74172b-be56-4843-9ff4-e66a39bb12e3",
        )
        .unwrap()
        .resource_name("Tools");
        let doc: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": [format!("{}/8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d/v2.0", Cloud::us_government().authority())],
                "scopes_supported": ["api://6e74172b-be56-4843-9ff4-e66a39bb12e3/Tools.Call"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Tools",
            })
        );
    }
}
