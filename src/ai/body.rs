//! The JSON body of an AI request, read once: bounded by the caller, parsed into an object
//! whose keys are unique at every depth.
//!
//! Why unique keys: JSON parsers disagree on `{"model": "a", "model": "b"}` (serde_json
//! and Python keep the last, others the first or refuse). If the governor authorized one
//! value and the model server acted on the other, the decision would be about a request
//! that never ran. RFC 8259 leaves duplicates to the parser; I-JSON (RFC 7493 §2.3)
//! forbids them. The body is refused instead, with [`BodyError::DuplicateKey`].

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON object, as handed to handlers: `serde_json`'s map.
pub type JsonObject = Map<String, Value>;

/// The default limit on a request body: 4 MiB, room for long chat histories and a few
/// inline images, small enough that a flood of large bodies cannot exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Why a request body was refused before any decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is longer than the route's limit (HTTP 413).
    #[error("the request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed while the body was read (HTTP 400): nothing to decide on.
    #[error("the request body could not be read")]
    Unreadable,
    /// The `Content-Type` is neither absent nor JSON (HTTP 415).
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// The body is not JSON (HTTP 400); where the parser stopped, never the content.
    #[error("the request body is not valid JSON (line {line}, column {column})")]
    NotJson {
        /// 1-based line where parsing failed.
        line: usize,
        /// 1-based column where parsing failed.
        column: usize,
    },
    /// The body is JSON but not an object (HTTP 400).
    #[error("the request body is not a JSON object")]
    NotAnObject,
    /// A key appears twice in one object (HTTP 400); the key is shortened.
    #[error("the key {key:?} appears more than once in one JSON object")]
    DuplicateKey {
        /// The repeated key, at most 64 characters of it.
        key: String,
    },
}

impl BodyError {
    /// The HTTP status of this refusal: 413, 415 or 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 413,
            Self::UnsupportedMediaType => 415,
            _ => 400,
        }
    }

    /// A stable snake_case code for responses and the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unreadable => "body_unreadable",
            Self::NotJson { .. } => "invalid_json",
            Self::NotAnObject => "body_not_an_object",
            Self::DuplicateKey { .. } => "duplicate_key",
        }
    }

    /// A fixed phrase for the response body (no part of the request is echoed).
    pub fn description(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "the request body is too large",
            Self::UnsupportedMediaType => "the request body must be application/json",
            Self::Unreadable => "the request body could not be read",
            Self::NotJson { .. } => "the request body is not valid JSON",
            Self::NotAnObject => "the request body must be a JSON object",
            Self::DuplicateKey { .. } => "a key appears more than once in a JSON object",
        }
    }
}

/// Whether a `Content-Type` value may carry a JSON body: absent, `application/json` or
/// any `application/*+json`, with or without parameters (case-insensitive).
///
/// # Errors
/// [`BodyError::UnsupportedMediaType`] for anything else.
pub fn check_content_type(content_type: Option<&[u8]>) -> Result<(), BodyError> {
    let Some(value) = content_type else {
        return Ok(());
    };
    let value = std::str::from_utf8(value).map_err(|_| BodyError::UnsupportedMediaType)?;
    let essence = value.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    let json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json") && !sub.contains('/'));
    if json {
        Ok(())
    } else {
        Err(BodyError::UnsupportedMediaType)
    }
}

/// Parses `bytes` as one JSON object whose keys are unique at every depth (surrounding
/// whitespace allowed). Values keep serde_json's representation.
///
/// # Errors
/// [`BodyError::NotJson`], [`BodyError::NotAnObject`] or [`BodyError::DuplicateKey`].
pub fn parse_object(bytes: &[u8]) -> Result<JsonObject, BodyError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = UniqueValue {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match value {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::NotAnObject),
        Err(e) => match duplicate.into_inner() {
            Some(key) => Err(BodyError::DuplicateKey { key }),
            None => Err(BodyError::NotJson {
                line: e.line(),
                column: e.column(),
            }),
        },
    }
}

/// The longest part of a repeated key kept in [`BodyError::DuplicateKey`].
const MAX_KEY_CHARS: usize = 64;

/// A `serde_json::Value` seed that refuses a repeated key in any object, leaving the key in
/// `duplicate`.
#[derive(Clone, Copy)]
struct UniqueValue<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for UniqueValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite number from text.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let short: String = key.chars().take(MAX_KEY_CHARS).collect();
                *self.duplicate.borrow_mut() = Some(short);
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_parses_as_serde_json_would() {
        let text = br#" {"model":"m","n":1,"t":-2,"f":0.5,"b":true,"z":null,"a":[1,{"x":"y"}],"o":{"k":[]}} "#;
        let ours = parse_object(text).unwrap();
        let theirs: JsonObject = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"model":"a","model":"b"}"#),
            Err(BodyError::DuplicateKey {
                key: "model".into()
            })
        );
        assert_eq!(
            parse_object(br#"{"params":{"name":"a","name":"b"}}"#),
            Err(BodyError::DuplicateKey { key: "name".into() })
        );
        assert_eq!(
            parse_object(br#"{"a":[{"k":1,"k":2}]}"#),
            Err(BodyError::DuplicateKey { key: "k".into() })
        );
        // The same key in two objects is not a repetition.
        assert!(parse_object(br#"{"a":{"k":1},"b":{"k":2}}"#).is_ok());
        // Escapes are decoded before comparing: "mod\u0065l" is "model".
        assert_eq!(
            parse_object(br#"{"model":"a","mod\u0065l":"b"}"#),
            Err(BodyError::DuplicateKey {
                key: "model".into()
            })
        );
        let long = "k".repeat(500);
        let text = format!(r#"{{"{long}":1,"{long}":2}}"#);
        let Err(BodyError::DuplicateKey { key }) = parse_object(text.as_bytes()) else {
            panic!("expected a duplicate key");
        };
        assert_eq!(key.len(), MAX_KEY_CHARS);
    }

    #[test]
    fn what_is_not_one_object_is_refused() {
        assert_eq!(parse_object(b"[1]"), Err(BodyError::NotAnObject));
        assert_eq!(parse_object(b"\"model\""), Err(BodyError::NotAnObject));
        assert_eq!(
            parse_object(b"{\"a\":1} {}"),
            Err(BodyError::NotJson { line: 1, column: 9 })
        );
        assert_eq!(
            parse_object(b""),
            Err(BodyError::NotJson { line: 1, column: 0 })
        );
        assert!(matches!(
            parse_object(b"{\"a\":"),
            Err(BodyError::NotJson { .. })
        ));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep = format!("{{\"a\":{deep}}}");
        assert!(matches!(
            parse_object(deep.as_bytes()),
            Err(BodyError::NotJson { .. })
        ));
    }

    #[test]
    fn content_types() {
        for ok in [
            None,
            Some(&b"application/json"[..]),
            Some(b"Application/JSON; charset=utf-8"),
            Some(b"application/vnd.api+json"),
        ] {
            assert_eq!(check_content_type(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            &b"text/plain"[..],
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"application/jsonx",
            b"\xff",
        ] {
            assert_eq!(
                check_content_type(Some(bad)),
                Err(BodyError::UnsupportedMediaType),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn statuses_and_codes() {
        assert_eq!(BodyError::TooLarge { limit: 1 }.status(), 413);
        assert_eq!(BodyError::UnsupportedMediaType.status(), 415);
        assert_eq!(BodyError::NotAnObject.status(), 400);
        assert_eq!(BodyError::NotAnObject.code(), "body_not_an_object");
        assert_eq!(
            (BodyError::Unreadable.status(), BodyError::Unreadable.code()),
            (400, "body_unreadable")
        );
    }
}
