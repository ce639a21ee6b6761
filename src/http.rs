//! Framework-neutral HTTP mapping, shared by the axum and actix-web adapters so that both
//! answer identically: bearer-token extraction (RFC 6750 §2.1) and the status, headers and
//! body of every refusal (RFC 6750 §3, ENTRA.md §5).

use serde::Serialize;

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
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.bytes().all(token68) {
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

impl Refusal {
    /// The body serialized as JSON.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body).unwrap_or_default()
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
    /// [`Governor`](crate::Governor) does it; see
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
            } => Some(Self {
                status: 401,
                www_authenticate: Some(challenge.clone()),
                retry_after: None,
                body: RefusalBody {
                    error: "insufficient_claims",
                    error_description: "a stronger or more recent sign-in is required",
                },
            }),
            _ => Some(Self {
                status: 403,
                www_authenticate: Some("Bearer error=\"insufficient_scope\"".into()),
                retry_after: None,
                body: RefusalBody {
                    error: "insufficient_scope",
                    error_description: "the caller may not perform this action on this resource",
                },
            }),
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

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 5;

#[cfg(test)]
mod tests {
    use super::*;

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
