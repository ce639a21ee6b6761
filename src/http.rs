//! Framework-neutral HTTP mapping, shared by the axum and actix-web adapters so that both
//! answer identically: bearer-token extraction (RFC 6750 §2.1), the status, headers and
//! body of every refusal (RFC 6750 §3, ENTRA.md §5), resource templates filled from path
//! parameters, and the two steps every adapter runs ([`authenticate`], [`authorize`]).
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
//! To write an adapter for another framework: take the `Authorization` header values,
//! call [`authenticate`], fill a [`ResourceTemplate`] from the route's parameters, call
//! [`authorize`], and write any [`Refusal`] with [`Refusal::headers`] and
//! [`Refusal::body_json`].

use std::fmt;

use serde::Serialize;

use crate::policy::PathProblem;
use crate::{Decision, Governor, Principal, RequestContext};

/// Why the `Authorization` header could not yield a bearer token (HTTP 400, or 401 when it
/// is simply absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization` header: 401 with a bare `Bearer` challenge.
    #[error("no Authorization header")]
    Missing,
    /// More than one `Authorization` header: 400.
    #[error("more than one Authorization header")]
    Multiple,
    /// Not `Bearer <token68>`: 400.
    #[error("malformed Authorization header: expected \"Bearer <token>\"")]
    Malformed,
}

/// Extracts the bearer token from the request's `Authorization` header values.
///
/// Exactly one header is accepted; the scheme is case-insensitive (`Bearer`, `bearer`),
/// followed by one or more spaces and a token68 (RFC 7235 §2.1).
pub fn bearer_token<'a, I>(mut values: I) -> Result<&'a str, BearerError>
where
    I: Iterator<Item = &'a [u8]>,
{
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Multiple);
    }
    let value = std::str::from_utf8(value).map_err(|_| BearerError::Malformed)?;
    let (scheme, rest) = value.split_once(' ').ok_or(BearerError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Malformed);
    }
    let token = rest.trim_start_matches(' ');
    let token68 =
        |b: u8| b.is_ascii_alphanumeric() | matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
    let body = token.trim_end_matches('=');
    // A fold without early exit, so the check over a 2 KB token is vectorised (`all`
    // stops at the first failure and goes byte by byte).
    if body.is_empty() || !body.bytes().fold(true, |ok, b| ok & token68(b)) {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

/// A refusal, ready to be written by any framework.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status code.
    pub status: u16,
    /// The `WWW-Authenticate` header value, when the status calls for one.
    pub www_authenticate: Option<String>,
    /// The `Retry-After` header value in seconds, for 503.
    pub retry_after: Option<u64>,
    /// The JSON body.
    pub body: RefusalBody,
}

/// The JSON body of a refusal: an OAuth-style error code and a fixed description that
/// never echoes the token nor the policy's internals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalBody {
    /// `invalid_request`, `invalid_token`, `insufficient_scope`, `insufficient_claims`,
    /// `temporarily_unavailable`.
    pub error: &'static str,
    /// A fixed, human-readable phrase.
    pub error_description: &'static str,
}

impl BearerError {
    /// A stable snake_case code for the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_bearer_token",
            Self::Multiple => "multiple_authorization_headers",
            Self::Malformed => "malformed_authorization_header",
        }
    }
}

impl Refusal {
    /// The body serialized as JSON.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body).unwrap_or_default()
    }

    /// The response headers, names in lower case: `content-type: application/json`, then
    /// `www-authenticate` and `retry-after` when this refusal carries them.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("content-type", "application/json".to_owned())];
        if let Some(challenge) = &self.www_authenticate {
            headers.push(("www-authenticate", challenge.clone()));
        }
        if let Some(secs) = self.retry_after {
            headers.push(("retry-after", secs.to_string()));
        }
        headers
    }

    /// 400 or 401 for an unusable `Authorization` header.
    pub fn from_bearer_error(e: BearerError) -> Self {
        match e {
            BearerError::Missing => Self {
                status: 401,
                www_authenticate: Some("Bearer".into()),
                retry_after: None,
                body: RefusalBody {
                    error: "invalid_request",
                    error_description: "bearer token required",
                },
            },
            BearerError::Multiple | BearerError::Malformed => Self {
                status: 400,
                www_authenticate: Some("Bearer error=\"invalid_request\"".into()),
                retry_after: None,
                body: RefusalBody {
                    error: "invalid_request",
                    error_description: "malformed Authorization header",
                },
            },
        }
    }

    /// 401 `invalid_token`, or 503 when keys are unavailable.
    pub fn from_token_error(e: &crate::TokenError) -> Self {
        if e.http_status() == 503 {
            return Self::unavailable("signing keys unavailable");
        }
        if let crate::TokenError::Revoked {
            challenge: Some(challenge),
            ..
        } = e
        {
            // A client that handles claims challenges gets the CAE challenge, header and
            // body alike, as the table above says.
            return Self::insufficient_claims(challenge.clone());
        }
        Self {
            status: 401,
            www_authenticate: Some(e.www_authenticate()),
            retry_after: None,
            body: RefusalBody {
                error: "invalid_token",
                error_description: e.short_description(),
            },
        }
    }

    /// The refusal for a denying decision, or `None` for an allow: 403
    /// `insufficient_scope` (the body names no role, rule or scope), 503 when group
    /// membership could not be resolved, or — for a
    /// [`StepUpRequired`](crate::Reason::StepUpRequired) whose challenge is filled in (the
    /// [`Governor`] does it; see
    /// [`Decision::with_challenge`](crate::Decision::with_challenge)) — 401 with that
    /// exact `WWW-Authenticate` claims challenge and an `insufficient_claims` body.
    /// Clients that cannot perform step-up get the plain 403.
    pub fn from_decision(decision: &crate::Decision) -> Option<Self> {
        use crate::Reason;
        match &decision.reason {
            Reason::Allow => None,
            Reason::GroupMembershipUnavailable => {
                Some(Self::unavailable("group membership unavailable"))
            }
            Reason::StepUpRequired {
                www_authenticate: Some(challenge),
                ..
            } => Some(Self::insufficient_claims(challenge.clone())),
            _ => Some(Self::forbidden()),
        }
    }

    /// 403 `insufficient_scope`: the verified caller may not perform this action on this
    /// resource. The body says no more than that.
    pub fn forbidden() -> Self {
        Self {
            status: 403,
            www_authenticate: Some("Bearer error=\"insufficient_scope\"".into()),
            retry_after: None,
            body: RefusalBody {
                error: "insufficient_scope",
                error_description: "the caller may not perform this action on this resource",
            },
        }
    }

    /// 401 `insufficient_claims` with a ready claims challenge (step-up authentication or
    /// continuous access evaluation, ENTRA.md §5), e.g. `Bearer realm="",
    /// authorization_uri="…", error="insufficient_claims", claims="…"`.
    ///
    /// Only clients whose token says they can handle a claims challenge (`xms_cc`
    /// contains `cp1`, [`Principal::can_handle_claims_challenge`]) should receive it;
    /// others get [`forbidden`](Self::forbidden).
    pub fn insufficient_claims(challenge: String) -> Self {
        Self {
            status: 401,
            www_authenticate: Some(challenge),
            retry_after: None,
            body: RefusalBody {
                error: "insufficient_claims",
                error_description: "a stronger or more recent sign-in is required",
            },
        }
    }

    /// 500: the server, not the caller, is at fault (a route whose resource template
    /// names a parameter it does not have, an extractor without its middleware). Log the
    /// details; the description here is all the caller sees.
    pub fn misconfigured(description: &'static str) -> Self {
        Self {
            status: 500,
            www_authenticate: None,
            retry_after: None,
            body: RefusalBody {
                error: "server_error",
                error_description: description,
            },
        }
    }

    /// The refusal for a resource template that could not be filled: 500 for a parameter
    /// the route does not have (a server bug), 403 for a value that is not a resource
    /// segment (the caller's request).
    pub fn from_render_error(e: &RenderError) -> Self {
        match e {
            RenderError::MissingParameter { .. } => {
                Self::misconfigured("authorization is misconfigured for this route")
            }
            RenderError::InvalidValue { .. } => Self::forbidden(),
        }
    }

    /// The refusal for an [`AuthorizeError`](crate::AuthorizeError).
    pub fn from_authorize_error(e: &crate::AuthorizeError) -> Self {
        match e {
            crate::AuthorizeError::InvalidToken(t) => Self::from_token_error(t),
            crate::AuthorizeError::AuditUnavailable => Self::unavailable("audit trail unavailable"),
        }
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(description: &'static str) -> Self {
        Self {
            status: 503,
            www_authenticate: None,
            retry_after: Some(RETRY_AFTER_SECS),
            body: RefusalBody {
                error: "temporarily_unavailable",
                error_description: description,
            },
        }
    }
}

/// `403 insufficient_scope: the caller may not …`: status, code and description.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status, self.body.error, self.body.error_description
        )
    }
}

impl std::error::Error for Refusal {}

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 5;

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
) -> Result<std::sync::Arc<Principal>, Refusal>
where
    I: Iterator<Item = &'a [u8]>,
{
    let token = match bearer_token(authorization) {
        Ok(token) => token,
        Err(e) => {
            governor.record_bad_request(e.code(), &e.to_string(), path, context);
            return Err(Refusal::from_bearer_error(e));
        }
    };
    governor
        .verify_recorded(token, AUTHENTICATE_ACTION, path, context)
        .await
        .map_err(|e| Refusal::from_authorize_error(&e))
}

/// The audit action of a request refused before any authorization question was asked.
pub const AUTHENTICATE_ACTION: &str = "authenticate";

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
    principal: &Principal,
    action: &str,
    resource: &str,
    context: &RequestContext,
) -> Result<Decision, Refusal> {
    let decision = governor
        .authorize_principal(principal, action, resource, context)
        .await
        .map_err(|e| Refusal::from_authorize_error(&e))?;
    match Refusal::from_decision(&decision) {
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
    governor
        .record_invalid_resource(principal, action, path, context)
        .await;
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

/// A resource path with placeholders filled from a request's path parameters:
/// `models/{model}`, `datasets/{*path}`.
///
/// - `{name}` takes one path segment: the value must be non-empty and contain neither
///   `/` nor `%` (a `%` is what is left of an escape the framework did not decode, such
///   as `%2F`, so both frameworks refuse the same requests).
/// - `{*name}` takes the rest of a wildcard route (`/files/{*path}` in axum,
///   `/files/{path:.*}` in actix-web) and may contain `/`, but not `%`.
///
/// The literal text must already be a valid resource once each placeholder holds one
/// letter: `\`, fullwidth `／` and `．`, control and default-ignorable characters are
/// refused when the template is parsed (see [`PathProblem`]). The filled path is then
/// checked by the policy like any resource: `.`, `..` and empty segments, wildcards and
/// the same characters in a parameter's value are refused there (403). A handler uses
/// the filled, authorized path verbatim and never decodes or normalises it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceTemplate {
    source: String,
    parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Segment(String),
    Rest(String),
}

/// A resource template that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource template {template:?}: {reason}")]
pub struct TemplateError {
    /// The template, as given.
    pub template: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// The resource rule the template's literal text breaks, when that is what is wrong.
    pub problem: Option<PathProblem>,
}

/// Why a [`ResourceTemplate`] could not be filled for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The route has no parameter of this name: a server bug (500).
    #[error("the route has no path parameter {name:?}")]
    MissingParameter {
        /// The placeholder's name.
        name: String,
    },
    /// The parameter's value cannot be a resource segment (403).
    #[error("path parameter {name:?} is not a valid resource segment")]
    InvalidValue {
        /// The placeholder's name.
        name: String,
    },
}

impl ResourceTemplate {
    /// Parses a template. Placeholder names are ASCII letters, digits and `_`; literal
    /// text holds neither braces nor `*`; the template does not start with `/`.
    ///
    /// # Errors
    /// A [`TemplateError`] saying what is wrong.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let error = |reason| TemplateError {
            template: template.to_owned(),
            reason,
            problem: None,
        };
        if template.is_empty() {
            return Err(error("empty template"));
        }
        if template.starts_with('/') {
            return Err(error("a resource does not start with '/'"));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(0) if rest.starts_with('{') => {
                    let end = rest.find('}').ok_or_else(|| error("unclosed '{'"))?;
                    let inner = &rest[1..end];
                    let (rest_of_path, name) = match inner.strip_prefix('*') {
                        Some(name) => (true, name),
                        None => (false, inner),
                    };
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(error(
                            "a placeholder is {name} or {*name}, name of ASCII letters, digits, '_'",
                        ));
                    }
                    parts.push(if rest_of_path {
                        TemplatePart::Rest(name.to_owned())
                    } else {
                        TemplatePart::Segment(name.to_owned())
                    });
                    rest = &rest[end + 1..];
                }
                Some(0) => return Err(error("unmatched '}'")),
                found => {
                    let end = found.unwrap_or(rest.len());
                    let literal = &rest[..end];
                    if literal.contains('*') {
                        return Err(error("'*' outside a {*name} placeholder"));
                    }
                    parts.push(TemplatePart::Literal(literal.to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        let parsed = Self {
            source: template.to_owned(),
            parts,
        };
        parsed.check_literal_text()?;
        Ok(parsed)
    }

    /// Refuses literal text no filled path could make valid: with every placeholder
    /// holding one letter, the path must pass the resource rules.
    fn check_literal_text(&self) -> Result<(), TemplateError> {
        let sample = self
            .render(|_| Some("x"))
            .expect("every placeholder is filled");
        crate::policy::pattern::validate_resource(&sample).map_err(|problem| TemplateError {
            template: self.source.clone(),
            reason: problem.as_str(),
            problem: Some(problem),
        })
    }

    /// The template, as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the template has at least one placeholder.
    pub fn has_placeholders(&self) -> bool {
        self.parts
            .iter()
            .any(|p| !matches!(p, TemplatePart::Literal(_)))
    }

    /// Fills the placeholders with `param(name)`.
    ///
    /// # Errors
    /// [`RenderError::MissingParameter`] when `param` has no value for a placeholder,
    /// [`RenderError::InvalidValue`] when a value is empty or holds a forbidden character.
    pub fn render<'a>(
        &self,
        param: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            let (name, one_segment) = match part {
                TemplatePart::Literal(text) => {
                    out.push_str(text);
                    continue;
                }
                TemplatePart::Segment(name) => (name, true),
                TemplatePart::Rest(name) => (name, false),
            };
            let value =
                param(name).ok_or_else(|| RenderError::MissingParameter { name: name.clone() })?;
            if value.is_empty() || value.contains('%') || (one_segment && value.contains('/')) {
                return Err(RenderError::InvalidValue { name: name.clone() });
            }
            out.push_str(value);
        }
        Ok(out)
    }
}

impl fmt::Display for ResourceTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for ResourceTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_token_gets_the_cae_challenge_only_when_the_client_can_answer_it() {
        let challenge = "Bearer realm=\"\", error=\"insufficient_claims\", claims=\"e30\"";
        let cae = Refusal::from_token_error(&crate::TokenError::Revoked {
            revoked_before: 1,
            challenge: Some(challenge.to_owned()),
        });
        assert_eq!(cae.status, 401);
        assert_eq!(cae.www_authenticate.as_deref(), Some(challenge));
        assert_eq!(cae.body.error, "insufficient_claims");
        let plain = Refusal::from_token_error(&crate::TokenError::Revoked {
            revoked_before: 1,
            challenge: None,
        });
        assert_eq!(plain.status, 401);
        assert_eq!(plain.body.error, "invalid_token");
        assert_eq!(
            plain.www_authenticate.as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"token revoked\"")
        );
    }

    fn one(v: &str) -> Result<&str, BearerError> {
        bearer_token(std::iter::once(v.as_bytes()))
    }

    #[test]
    fn bearer_extraction() {
        assert_eq!(one("Bearer abc.def-ghi_jk"), Ok("abc.def-ghi_jk"));
        assert_eq!(one("bearer abc"), Ok("abc"));
        assert_eq!(one("BEARER   abc=="), Ok("abc=="));
        assert_eq!(one("Basic abc"), Err(BearerError::Malformed));
        assert_eq!(one("Bearer"), Err(BearerError::Malformed));
        assert_eq!(one("Bearer "), Err(BearerError::Malformed));
        assert_eq!(one("Bearer a b"), Err(BearerError::Malformed));
        assert_eq!(one("Bearer a\"b"), Err(BearerError::Malformed));
        assert_eq!(bearer_token(std::iter::empty()), Err(BearerError::Missing));
        assert_eq!(
            bearer_token([&b"Bearer a"[..], b"Bearer b"].into_iter()),
            Err(BearerError::Multiple)
        );
        assert_eq!(
            bearer_token(std::iter::once(&b"Bearer \xff"[..])),
            Err(BearerError::Malformed)
        );
    }

    #[test]
    fn refusals() {
        let r = Refusal::from_bearer_error(BearerError::Multiple);
        assert_eq!(r.status, 400);
        let r = Refusal::from_bearer_error(BearerError::Missing);
        assert_eq!(
            (r.status, r.www_authenticate.as_deref()),
            (401, Some("Bearer"))
        );
        let r = Refusal::from_token_error(&crate::TokenError::InvalidSignature);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"invalid signature\"")
        );
        assert_eq!(
            r.body_json(),
            r#"{"error":"invalid_token","error_description":"invalid signature"}"#
        );
        let r =
            Refusal::from_token_error(&crate::TokenError::KeysUnavailable { reason: "x".into() });
        assert_eq!((r.status, r.retry_after), (503, Some(5)));
    }

    #[test]
    fn refusal_headers() {
        let r = Refusal::unavailable("signing keys unavailable");
        assert_eq!(
            r.headers(),
            vec![
                ("content-type", "application/json".to_owned()),
                ("retry-after", "5".to_owned())
            ]
        );
        let r = Refusal::forbidden();
        assert_eq!(
            r.headers(),
            vec![
                ("content-type", "application/json".to_owned()),
                (
                    "www-authenticate",
                    "Bearer error=\"insufficient_scope\"".to_owned()
                )
            ]
        );
        assert_eq!(
            r.to_string(),
            "403 insufficient_scope: the caller may not perform this action on this resource"
        );
        let r = Refusal::insufficient_claims("Bearer error=\"insufficient_claims\"".into());
        assert_eq!((r.status, r.body.error), (401, "insufficient_claims"));
        let r = Refusal::misconfigured("x");
        assert_eq!((r.status, r.body.error), (500, "server_error"));
        assert_eq!(r.headers().len(), 1);
    }

    #[test]
    fn templates_parse() {
        let t = ResourceTemplate::parse("models/{model}/versions/{v_1}").unwrap();
        assert!(t.has_placeholders());
        assert_eq!(t.as_str(), "models/{model}/versions/{v_1}");
        assert!(
            !ResourceTemplate::parse("audit/decisions")
                .unwrap()
                .has_placeholders()
        );
        assert!(ResourceTemplate::parse("datasets/{*path}").is_ok());
        for bad in [
            "",
            "/models/{model}",
            "models/{model",
            "models/model}",
            "models/{}",
            "models/{*}",
            "models/{a-b}",
            "models/{{a}}",
            "models/*",
            "models/{**a}",
        ] {
            assert!(ResourceTemplate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ResourceTemplate::parse("models/{").unwrap_err().to_string(),
            "invalid resource template \"models/{\": unclosed '{'"
        );
    }

    /// The literal text of a template follows the resource rules, class by class.
    #[test]
    fn templates_refuse_second_spellings_in_literal_text() {
        for (template, problem) in [
            ("models\\{m}", PathProblem::Backslash),
            ("models/{m}\\x", PathProblem::Backslash),
            ("models\u{FF0F}{m}", PathProblem::SeparatorLookalike),
            (
                "models/{m}/\u{FF0E}\u{FF0E}/x",
                PathProblem::SeparatorLookalike,
            ),
            ("models/\u{200B}{m}", PathProblem::ForbiddenCharacter),
            ("models/{m}\u{FE0F}", PathProblem::ForbiddenCharacter),
            ("models/{m}/\u{E0041}", PathProblem::ForbiddenCharacter),
            ("models/{m}\u{3164}", PathProblem::ForbiddenCharacter),
            ("models/../{m}", PathProblem::DotSegment),
            ("models//{m}", PathProblem::EmptySegment),
        ] {
            let e = ResourceTemplate::parse(template).unwrap_err();
            assert_eq!(e.problem, Some(problem), "{template:?}");
            assert_eq!(e.reason, problem.as_str(), "{template:?}");
        }
        assert_eq!(
            ResourceTemplate::parse("models\\{m}")
                .unwrap_err()
                .to_string(),
            "invalid resource template \"models\\\\{m}\": '\\' in a path"
        );
        assert_eq!(
            ResourceTemplate::parse("models/{").unwrap_err().problem,
            None
        );
    }

    #[test]
    fn templates_render() {
        let t: ResourceTemplate = "models/{model}/at/{*rest}".parse().unwrap();
        let render = |model: &str, rest: Option<&str>| {
            t.render(|name| match name {
                "model" => Some(model),
                "rest" => rest,
                _ => None,
            })
        };
        assert_eq!(
            render("exp-1", Some("a/b")),
            Ok("models/exp-1/at/a/b".to_owned())
        );
        assert_eq!(
            render("exp-1", None),
            Err(RenderError::MissingParameter {
                name: "rest".into()
            })
        );
        for (model, rest) in [
            ("a/b", "c"),
            ("", "c"),
            ("a%2Fb", "c"),
            ("a", "b%2F"),
            ("a", ""),
        ] {
            assert!(
                matches!(
                    render(model, Some(rest)),
                    Err(RenderError::InvalidValue { .. })
                ),
                "{model} {rest}"
            );
        }
        assert_eq!(
            Refusal::from_render_error(&RenderError::MissingParameter { name: "x".into() }).status,
            500
        );
        assert_eq!(
            Refusal::from_render_error(&RenderError::InvalidValue { name: "x".into() }).status,
            403
        );
    }

    #[test]
    fn step_up_refusals() {
        use crate::{Decision, Reason};
        let step_up = |www_authenticate: Option<&str>| {
            Decision::deny(
                "datasets.read",
                "datasets/pii/x",
                Reason::StepUpRequired {
                    requirement: "requirements:pii".into(),
                    auth_context: "c1".into(),
                    claims: crate::challenge::auth_context_claims("c1"),
                    www_authenticate: www_authenticate.map(str::to_owned),
                },
            )
        };
        let r = Refusal::from_decision(&step_up(Some("Bearer realm=\"\", x"))).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.www_authenticate.as_deref(), Some("Bearer realm=\"\", x"));
        assert_eq!(
            r.body_json(),
            r#"{"error":"insufficient_claims","error_description":"a stronger or more recent sign-in is required"}"#
        );
        // Without a challenge (a bare policy decision), fall back to a plain 403.
        let forbidden = |d: &Decision| {
            let r = Refusal::from_decision(d).unwrap();
            assert_eq!(r.status, 403);
            assert_eq!(
                r.body_json(),
                r#"{"error":"insufficient_scope","error_description":"the caller may not perform this action on this resource"}"#
            );
        };
        forbidden(&step_up(None));
        forbidden(&Decision::deny(
            "a.b",
            "c",
            Reason::StepUpNotPossible {
                requirement: "role:x".into(),
                auth_context: "c1".into(),
            },
        ));
        forbidden(&Decision::deny(
            "a.b",
            "c",
            Reason::RequirementNotMet {
                requirement: "role:x".into(),
                detail: "secret".into(),
            },
        ));
    }
}
