//! Bearer-token extraction from the `Authorization` header (RFC 6750 §2.1).

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
}
