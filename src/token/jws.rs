//! The compact JWS envelope: size cap, segments, strict base64url and the JOSE header.
//!
//! Everything here runs before any key is looked up, on attacker-controlled bytes, so it
//! is written to be linear in the input, allocation-bounded by the size cap, and to
//! reject rather than interpret anything unusual.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{TokenError, excerpt};

/// The longest `kid` accepted. Entra's key ids are 27-40 characters.
const MAX_KID_LEN: usize = 256;

/// A token split into its parts; the payload is still encoded.
#[derive(Debug)]
pub(crate) struct Compact<'t> {
    /// `header.payload`: the bytes the signature covers.
    pub(crate) signing_input: &'t str,
    /// The encoded payload segment.
    pub(crate) payload_b64: &'t str,
    /// The decoded signature.
    pub(crate) signature: Vec<u8>,
    /// The key id from the header.
    pub(crate) kid: String,
}

/// Splits and checks the envelope and the header, up to (not including) the key lookup.
pub(crate) fn parse(token: &str, max_bytes: usize) -> Result<Compact<'_>, TokenError> {
    if token.len() > max_bytes {
        return Err(TokenError::TooLarge {
            size: token.len(),
            max: max_bytes,
        });
    }
    let (header_b64, payload_b64, signature_b64) = split_three(token)?;
    let header = decode_segment(header_b64, "header is not valid base64url")?;
    let kid = parse_header(&header)?;
    let signature = decode_segment(signature_b64, "signature is not valid base64url")?;
    if signature.is_empty() {
        return Err(TokenError::Malformed {
            reason: "empty signature",
        });
    }
    Ok(Compact {
        signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        payload_b64,
        signature,
        kid,
    })
}

fn split_three(token: &str) -> Result<(&str, &str, &str), TokenError> {
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed {
            reason: "expected three dot-separated segments",
        });
    };
    if h.is_empty() || p.is_empty() {
        return Err(TokenError::Malformed {
            reason: "empty header or payload segment",
        });
    }
    Ok((h, p, s))
}

/// Decodes one segment with the strict alphabet: no padding, no `+`/`/`, no whitespace,
/// no non-zero trailing bits (so every token has exactly one encoding).
pub(crate) fn decode_segment(segment: &str, reason: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed { reason })
}

/// The JOSE header members we act on. Anything that names a key source or asks us to
/// understand an extension is refused outright.
struct Header {
    alg: Option<String>,
    kid: Option<Result<String, &'static str>>,
    forbidden: Option<&'static str>,
    duplicate: bool,
}

const FORBIDDEN_MEMBERS: &[&str] = &["crit", "jwk", "jku", "x5u", "x5c", "enc", "zip", "b64"];

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut h = Header {
            alg: None,
            kid: None,
            forbidden: None,
            duplicate: false,
        };
        // Keys borrowed from the header (`Cow<str>`'s own `Deserialize` always copies).
        while let Some(key) = map.next_key::<crate::token::claims::Str<'de>>()? {
            match &*key {
                "alg" => {
                    let v = map.next_value::<serde_json::Value>()?;
                    h.duplicate |= h.alg.is_some();
                    h.alg = Some(match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    });
                }
                "kid" => {
                    h.duplicate |= h.kid.is_some();
                    h.kid = Some(match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(s) => check_kid(s),
                        _ => Err("not a string"),
                    });
                }
                other => {
                    if let Some(name) = FORBIDDEN_MEMBERS.iter().find(|m| **m == other) {
                        h.forbidden.get_or_insert(name);
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(h)
    }
}

fn check_kid(kid: String) -> Result<String, &'static str> {
    if kid.is_empty() {
        Err("empty")
    } else if kid.len() > MAX_KID_LEN {
        Err("longer than 256 bytes")
    } else if !kid.bytes().all(|b| b.is_ascii_graphic()) {
        Err("not printable ASCII")
    } else {
        Ok(kid)
    }
}

/// The deepest JSON nesting accepted in a header or payload. Entra's deepest member is
/// `_claim_sources.src1.endpoint` (depth 3); serde_json skips ignored values without a
/// depth limit, so without this bound a signed token could carry arbitrarily deep
/// structures that other JSON parsers (audit consumers, log pipelines) choke on.
pub(crate) const MAX_JSON_DEPTH: usize = 32;

/// True when `bytes` never nests arrays or objects deeper than `max`. Linear, no
/// allocation; brackets inside strings (escapes included) are not counted.
// 33 lines: line counters that take the byte literals `b'{'` below for braces misread it
// as running to the end of the file.
pub(crate) fn json_depth_within(bytes: &[u8], max: usize) -> bool {
    // Fewer opening brackets than the bound, wherever they are, cannot nest past it: the
    // usual case, decided by a count the compiler vectorises.
    let openings = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
    if openings <= max {
        return true;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

fn parse_header(bytes: &[u8]) -> Result<String, TokenError> {
    // serde_json does not validate UTF-8 inside values it skips: check it all first, so
    // that no parser anywhere sees a different header than this one.
    if std::str::from_utf8(bytes).is_err() {
        return Err(TokenError::InvalidHeader {
            reason: "not valid UTF-8",
        });
    }
    if !json_depth_within(bytes, MAX_JSON_DEPTH) {
        return Err(TokenError::InvalidHeader {
            reason: "nested too deeply",
        });
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|_| TokenError::InvalidHeader {
        reason: "not a JSON object",
    })?;
    if header.duplicate {
        return Err(TokenError::InvalidHeader {
            reason: "duplicate member",
        });
    }
    match header.alg.as_deref() {
        Some("RS256") => {}
        Some(other) => {
            return Err(TokenError::UnsupportedAlgorithm {
                found: excerpt(other),
            });
        }
        None => {
            return Err(TokenError::InvalidHeader {
                reason: "no alg member",
            });
        }
    }
    let kid = match header.kid {
        Some(Ok(kid)) => kid,
        Some(Err(reason)) => return Err(TokenError::MissingKeyId { reason }),
        None => return Err(TokenError::MissingKeyId { reason: "absent" }),
    };
    if let Some(name) = header.forbidden {
        return Err(TokenError::ForbiddenHeader { name });
    }
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.{}", b64(header), b64("{}"), b64("sig"))
    }

    #[test]
    fn accepts_a_plain_rs256_header() {
        let t = token(r#"{"typ":"JWT","alg":"RS256","kid":"abc","x5t":"abc"}"#);
        let c = parse(&t, 32 * 1024).unwrap();
        assert_eq!(c.kid, "abc");
        assert_eq!(c.signature, b"sig");
        assert_eq!(c.signing_input, &t[..t.rfind('.').unwrap()]);
    }

    #[test]
    fn size_cap_comes_first() {
        let t = "x".repeat(100);
        assert_eq!(
            parse(&t, 99).unwrap_err(),
            TokenError::TooLarge { size: 100, max: 99 }
        );
    }

    #[test]
    fn shape_errors() {
        for t in ["a.b", "a.b.c.d", ".b.c", "a..c"] {
            assert!(matches!(parse(t, 1024), Err(TokenError::Malformed { .. })));
        }
        let padded = format!(
            "{}=.{}.{}",
            b64("{\"alg\":\"RS256\",\"kid\":\"k\"}"),
            b64("{}"),
            b64("s")
        );
        assert!(matches!(
            parse(&padded, 1024),
            Err(TokenError::Malformed { .. })
        ));
    }

    #[test]
    fn json_depth_counts_brackets_outside_strings_only() {
        assert!(json_depth_within(br#"{"a":[[1]]}"#, 3));
        assert!(!json_depth_within(br#"{"a":[[1]]}"#, 2));
        assert!(json_depth_within(br#"{"a":"[[[[\"[[[[{{{{"}"#, 1));
        assert!(json_depth_within(br#"{"a":"\\"}"#, 1));
        assert!(!json_depth_within(br#"{"a":"\\","b":[[]]}"#, 2));
        assert!(json_depth_within(b"]]]]{}", 1));
        // Past the bracket-count shortcut: closings never make the depth negative.
        assert!(!json_depth_within(b"]]]][[[", 2));
        assert!(json_depth_within(br#"{"a":"\\"}{"b":"[[["}"#, 1));
    }

    #[test]
    fn header_rules() {
        let cases: &[(&str, TokenError)] = &[
            (
                r#"{"alg":"none","kid":"k"}"#,
                TokenError::UnsupportedAlgorithm {
                    found: "none".into(),
                },
            ),
            (
                r#"{"alg":"rs256","kid":"k"}"#,
                TokenError::UnsupportedAlgorithm {
                    found: "rs256".into(),
                },
            ),
            (
                r#"{"alg":"HS256","kid":"k"}"#,
                TokenError::UnsupportedAlgorithm {
                    found: "HS256".into(),
                },
            ),
            (
                r#"{"kid":"k"}"#,
                TokenError::InvalidHeader {
                    reason: "no alg member",
                },
            ),
            (
                r#"{"alg":"RS256"}"#,
                TokenError::MissingKeyId { reason: "absent" },
            ),
            (
                r#"{"alg":"RS256","kid":""}"#,
                TokenError::MissingKeyId { reason: "empty" },
            ),
            (
                r#"{"alg":"RS256","kid":7}"#,
                TokenError::MissingKeyId {
                    reason: "not a string",
                },
            ),
            (
                r#"{"alg":"RS256","kid":"k","crit":["exp"]}"#,
                TokenError::ForbiddenHeader { name: "crit" },
            ),
            (
                r#"{"alg":"RS256","kid":"k","jku":"http://x"}"#,
                TokenError::ForbiddenHeader { name: "jku" },
            ),
            (
                r#"{"alg":"RS256","alg":"RS256","kid":"k"}"#,
                TokenError::InvalidHeader {
                    reason: "duplicate member",
                },
            ),
            (
                r#"[1,2]"#,
                TokenError::InvalidHeader {
                    reason: "not a JSON object",
                },
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(
                &parse(&token(header), 4096).unwrap_err(),
                expected,
                "{header}"
            );
        }
    }
}
