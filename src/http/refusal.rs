//! [`Refusal`]: the status, headers and JSON body of every refusal, the same in every
//! framework (see [the table](super)).

use std::fmt;

use serde::Serialize;

use super::{BearerError, RenderError, challenge};
use crate::{AuthorizeError, Cloud, Decision, Reason, TokenError};

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

impl Refusal {
    /// The body serialized as JSON.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body).unwrap_or_default()
    }

    /// The response headers, names in lower case: `content-type: application/json`, then
    /// `www-authenticate` and `retry-after` when this refusal carries them.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        json_headers(self.www_authenticate.as_deref(), self.retry_after)
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

    /// 401 `invalid_token`, or 503 when keys are unavailable. A revoked token of a
    /// client that handles claims challenges gets the CAE challenge instead (401
    /// `insufficient_claims` asking `cloud`'s authority for a token issued after the
    /// revocation), header and body alike, as [the table](super) says.
    pub fn from_token_error(e: &TokenError, cloud: &Cloud) -> Self {
        match e {
            TokenError::KeysUnavailable { .. } => Self::unavailable("signing keys unavailable"),
            TokenError::RevocationViewStale { .. } => {
                Self::unavailable("revocation state unavailable")
            }
            TokenError::Revoked {
                revoked_before,
                can_handle_claims_challenge: true,
            } => Self::insufficient_claims(
                cloud,
                &challenge::fresh_token_claims(crate::clock::unix_secs(*revoked_before)),
            ),
            _ => Self {
                status: 401,
                www_authenticate: Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    e.short_description()
                )),
                retry_after: None,
                body: RefusalBody {
                    error: "invalid_token",
                    error_description: e.short_description(),
                },
            },
        }
    }

    /// The refusal for a denying decision, or `None` for an allow: 403
    /// `insufficient_scope` (the body names no role, rule or scope), 503 when group
    /// membership could not be resolved, or, for a
    /// [`StepUpRequired`](crate::Reason::StepUpRequired), 401 with the claims challenge
    /// for its claims request, naming `cloud`'s authority, and an `insufficient_claims`
    /// body. Clients that cannot perform step-up
    /// ([`StepUpNotPossible`](crate::Reason::StepUpNotPossible)) get the plain 403.
    pub fn from_decision(decision: &Decision, cloud: &Cloud) -> Option<Self> {
        match &decision.reason {
            Reason::Allow => None,
            Reason::GroupMembershipUnavailable => {
                Some(Self::unavailable("group membership unavailable"))
            }
            Reason::StepUpRequired { claims, .. } => Some(Self::insufficient_claims(cloud, claims)),
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

    /// 401 `insufficient_claims` with the claims challenge for the claims request
    /// `claims_json` (step-up authentication or continuous access evaluation; Microsoft's
    /// "Claims challenges, claims requests and client capabilities"): `Bearer realm="",
    /// authorization_uri="<cloud's authority>/common/oauth2/authorize",
    /// error="insufficient_claims", claims="<base64 of claims_json>"`.
    ///
    /// Only clients whose token says they can handle a claims challenge (`xms_cc`
    /// contains `cp1`, [`Principal::can_handle_claims_challenge`](crate::Principal::can_handle_claims_challenge))
    /// should receive it; others get [`forbidden`](Self::forbidden).
    pub fn insufficient_claims(cloud: &Cloud, claims_json: &str) -> Self {
        Self {
            status: 401,
            www_authenticate: Some(challenge::insufficient_claims(
                cloud.authority(),
                claims_json,
            )),
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
            RenderError::InvalidValue { .. } | RenderError::NotUtf8 => Self::forbidden(),
        }
    }

    /// The refusal for an [`AuthorizeError`], whose token error is mapped as by
    /// [`from_token_error`](Self::from_token_error).
    pub fn from_authorize_error(e: &AuthorizeError, cloud: &Cloud) -> Self {
        match e {
            AuthorizeError::InvalidToken(t) => Self::from_token_error(t, cloud),
            AuthorizeError::AuditUnavailable => Self::unavailable("audit trail unavailable"),
        }
    }

    /// This refusal with `resource_metadata="<url>"` (RFC 9728 §5.1: where the protected
    /// resource's metadata document is) appended to every `Bearer` challenge of its
    /// `WWW-Authenticate` value, whatever the status (401, 403, 400): MCP clients find the
    /// authorization server through it. A refusal without a challenge (503, 500) is
    /// returned unchanged.
    ///
    /// The URL is written as a quoted string: `"` and `\` are escaped (RFC 9110 §5.6.4),
    /// and control, space and non-ASCII characters, which no URL holds unencoded and no
    /// header value may carry, are percent-encoded, so the header is always valid.
    pub fn with_resource_metadata(self, url: &str) -> Self {
        self.with_challenge_param("resource_metadata", url)
    }

    /// This refusal with `name="<value>"` appended to every `Bearer` challenge (quoted as
    /// by [`with_resource_metadata`](Self::with_resource_metadata)).
    pub(crate) fn with_challenge_param(mut self, name: &str, value: &str) -> Self {
        if let Some(challenge) = self.www_authenticate.take() {
            self.www_authenticate = Some(append_bearer_param(&challenge, name, value));
        }
        self
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

/// `challenges` (a `WWW-Authenticate` value: one or more challenges) with `name="value"`
/// appended to each `Bearer` challenge. Commas inside quoted strings are not separators;
/// an element that is not `token=…` starts a new challenge (RFC 9110 §11.6.1).
fn append_bearer_param(challenges: &str, name: &str, value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            ' '..='~' => quoted.push(c),
            _ => {
                let mut utf8 = [0; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    quoted.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    quoted.push('"');
    // Split at the commas outside quoted strings.
    let mut elements = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    for (i, b) in challenges.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                elements.push(&challenges[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    elements.push(&challenges[start..]);
    let mut out = String::with_capacity(challenges.len() + name.len() + quoted.len() + 4);
    let mut bearer = false;
    for (i, element) in elements.iter().map(|e| e.trim()).enumerate() {
        // `scheme` or `scheme param=…` starts a challenge; `param=…` continues one.
        let first = element.split([' ', '\t', '=']).next().unwrap_or("");
        let starts_challenge = !element[first.len()..].trim_start().starts_with('=');
        if starts_challenge {
            if bearer {
                out.push_str(&format!(", {name}={quoted}"));
            }
            bearer = first.eq_ignore_ascii_case("bearer");
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(element);
        if starts_challenge && bearer && element.len() == first.len() {
            // A bare `Bearer`: its first parameter follows a space, not a comma.
            out.push_str(&format!(" {name}={quoted}"));
            bearer = false;
        }
    }
    if bearer {
        out.push_str(&format!(", {name}={quoted}"));
    }
    out
}

/// `content-type: application/json`, then `www-authenticate` and `retry-after` when given:
/// the headers of every refusal, whatever shape its body takes.
pub(crate) fn json_headers(
    www_authenticate: Option<&str>,
    retry_after: Option<u64>,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(challenge) = www_authenticate {
        headers.push(("www-authenticate", challenge.to_owned()));
    }
    if let Some(secs) = retry_after {
        headers.push(("retry-after", secs.to_string()));
    }
    headers
}

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    /// The CAE challenge for a token issued after `not_before`, from Microsoft's samples.
    const CAE_1700000000: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", \
         error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNzAwMDAwMDAwIn19fQ==\"";

    #[test]
    fn a_revoked_token_gets_the_cae_challenge_only_when_the_client_can_answer_it() {
        let cloud = Cloud::global();
        let cae = Refusal::from_token_error(
            &TokenError::Revoked {
                revoked_before: crate::clock::from_unix_secs(1_700_000_000),
                can_handle_claims_challenge: true,
            },
            &cloud,
        );
        assert_eq!(cae.status, 401);
        assert_eq!(cae.www_authenticate.as_deref(), Some(CAE_1700000000));
        assert_eq!(cae.body.error, "insufficient_claims");
        let plain = Refusal::from_token_error(
            &TokenError::Revoked {
                revoked_before: crate::clock::from_unix_secs(1_700_000_000),
                can_handle_claims_challenge: false,
            },
            &cloud,
        );
        assert_eq!(plain.status, 401);
        assert_eq!(plain.body.error, "invalid_token");
        assert_eq!(
            plain.www_authenticate.as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"token revoked\"")
        );
    }

    #[test]
    fn rfc6750_challenge_is_fixed_text() {
        let cloud = Cloud::global();
        let e = TokenError::Expired {
            expired_at: crate::clock::from_unix_secs(1),
            now: crate::clock::from_unix_secs(2),
            skew_secs: 300,
        };
        let r = Refusal::from_token_error(&e, &cloud);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"token expired\"")
        );
        let id_token = TokenError::NotAnAccessToken { missing: "azp" };
        let r = Refusal::from_token_error(&id_token, &cloud);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"not an access token\"")
        );
        let down = TokenError::KeysUnavailable {
            reason: "timeout".into(),
        };
        assert_eq!(Refusal::from_token_error(&down, &cloud).status, 503);
    }

    #[test]
    fn refusals() {
        let cloud = Cloud::global();
        let r = Refusal::from_bearer_error(BearerError::Multiple);
        assert_eq!(r.status, 400);
        let r = Refusal::from_bearer_error(BearerError::Missing);
        assert_eq!(
            (r.status, r.www_authenticate.as_deref()),
            (401, Some("Bearer"))
        );
        let r = Refusal::from_token_error(&TokenError::InvalidSignature, &cloud);
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
            Refusal::from_token_error(&TokenError::KeysUnavailable { reason: "x".into() }, &cloud);
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
        let r = Refusal::insufficient_claims(&Cloud::global(), "{}");
        assert_eq!((r.status, r.body.error), (401, "insufficient_claims"));
        let r = Refusal::misconfigured("x");
        assert_eq!((r.status, r.body.error), (500, "server_error"));
        assert_eq!(r.headers().len(), 1);
    }

    #[test]
    fn resource_metadata_is_appended_to_every_bearer_challenge() {
        const URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        let r = Refusal::forbidden().with_resource_metadata(URL);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some(
                "Bearer error=\"insufficient_scope\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
            )
        );
        assert_eq!(r.status, 403);
        let r = Refusal::from_bearer_error(BearerError::Missing).with_resource_metadata(URL);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some(
                "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
            )
        );
        let cae = Refusal::from_token_error(
            &TokenError::Revoked {
                revoked_before: crate::clock::from_unix_secs(1_700_000_000),
                can_handle_claims_challenge: true,
            },
            &Cloud::global(),
        )
        .with_resource_metadata(URL);
        assert_eq!(
            cae.www_authenticate.unwrap(),
            format!("{CAE_1700000000}, resource_metadata=\"{URL}\"")
        );
        // No challenge, nothing to append to.
        assert_eq!(
            Refusal::unavailable("x").with_resource_metadata(URL),
            Refusal::unavailable("x")
        );
        // `"` and `\\` are escaped, what no header value may hold is percent-encoded.
        let r = Refusal::forbidden().with_resource_metadata("https://a/\"x\\y\r\n\u{e9}");
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some(
                "Bearer error=\"insufficient_scope\", resource_metadata=\"https://a/\\\"x\\\\y%0D%0A%C3%A9\""
            )
        );
        // Only the Bearer challenges of several, commas inside quoted strings kept.
        let mut r = Refusal::forbidden();
        r.www_authenticate = Some("Basic realm=\"a, b=c\", Bearer error=\"x\", Negotiate".into());
        assert_eq!(
            r.with_resource_metadata("https://m")
                .www_authenticate
                .as_deref(),
            Some(
                "Basic realm=\"a, b=c\", Bearer error=\"x\", resource_metadata=\"https://m\", Negotiate"
            )
        );
    }

    #[test]
    fn render_error_refusals() {
        assert_eq!(
            Refusal::from_render_error(&RenderError::MissingParameter { name: "x".into() }).status,
            500
        );
        assert_eq!(
            Refusal::from_render_error(&RenderError::InvalidValue { name: "x".into() }).status,
            403
        );
        assert_eq!(
            Refusal::from_render_error(&RenderError::NotUtf8).status,
            403
        );
    }

    #[test]
    fn step_up_refusals() {
        let step_up = Decision::deny(
            "datasets.read",
            "datasets/pii/x",
            Reason::StepUpRequired {
                requirement: "requirements:pii".into(),
                auth_context: "c1".into(),
                claims: challenge::auth_context_claims("c1"),
            },
        );
        let r = Refusal::from_decision(&step_up, &Cloud::global()).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some(
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", \
                 error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\""
            )
        );
        assert_eq!(
            r.body_json(),
            r#"{"error":"insufficient_claims","error_description":"a stronger or more recent sign-in is required"}"#
        );
        // The challenge names the governor's cloud, whatever cloud that is.
        let us = Refusal::from_decision(&step_up, &Cloud::us_government()).unwrap();
        assert!(
            us.www_authenticate.as_deref().unwrap().contains(&format!(
                "authorization_uri=\"{}/common/oauth2/authorize\"",
                Cloud::us_government().authority()
            )),
            "{us:?}"
        );
        let forbidden = |d: &Decision| {
            let r = Refusal::from_decision(d, &Cloud::global()).unwrap();
            assert_eq!(r.status, 403);
            assert_eq!(
                r.body_json(),
                r#"{"error":"insufficient_scope","error_description":"the caller may not perform this action on this resource"}"#
            );
        };
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
