//! Reading the payload: one pass over the JSON object into typed claims.
//!
//! Each known claim must have exactly its Entra JSON type: a string `exp`, a string
//! `roles` or an array `scp` is an error, never coerced or split. A known claim may appear
//! once, and no other member may spell a known claim in another letter case (`TID`), so
//! validation and policy always see the same value.

use std::borrow::Cow;
use std::cell::Cell;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::TokenError;
use crate::ids::GroupId;

/// A claim string read straight from the decoded payload when it holds no escape (no
/// allocation), owned otherwise. For claims only the rules read; those the principal
/// keeps are `String`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str<'de>(pub(crate) Cow<'de, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `aud` is a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Audiences(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for Audiences {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audiences;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Audiences, E> {
                Ok(Audiences(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audiences, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Audiences(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `_claim_names` object: only whether it redirects `groups` matters.
#[derive(Deserialize)]
struct ClaimNames {
    groups: Option<IgnoredAny>,
}

/// The claims of an Entra access token, typed, before any rule is applied.
///
/// Claims only the rules read are borrowed from the payload ([`Str`]); those the principal
/// keeps are owned.
#[derive(Debug, Default)]
pub(crate) struct RawClaims<'de> {
    pub(crate) iss: Option<Str<'de>>,
    pub(crate) aud: Option<Audiences>,
    pub(crate) tid: Option<Str<'de>>,
    pub(crate) oid: Option<Str<'de>>,
    pub(crate) sub: Option<String>,
    pub(crate) azp: Option<Str<'de>>,
    pub(crate) appid: Option<Str<'de>>,
    pub(crate) azpacr: Option<Str<'de>>,
    pub(crate) appidacr: Option<Str<'de>>,
    pub(crate) scp: Option<Str<'de>>,
    pub(crate) roles: Option<Vec<String>>,
    pub(crate) groups: Option<Vec<GroupEntry>>,
    pub(crate) groups_overage: bool,
    pub(crate) hasgroups: Option<bool>,
    pub(crate) wids: Option<Vec<String>>,
    pub(crate) acrs: Option<Vec<String>>,
    pub(crate) amr: Option<Vec<String>>,
    pub(crate) xms_cc: Option<Vec<String>>,
    pub(crate) idtyp: Option<Str<'de>>,
    pub(crate) ver: Option<Str<'de>>,
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) iat: Option<u64>,
    pub(crate) auth_time: Option<u64>,
    pub(crate) acct: Option<u64>,
    pub(crate) uti: Option<String>,
    pub(crate) idp: Option<Str<'de>>,
    pub(crate) name: Option<String>,
    pub(crate) preferred_username: Option<String>,
    pub(crate) upn: Option<String>,
    pub(crate) unique_name: Option<String>,
    pub(crate) email: Option<String>,
}

/// Every claim name read above, with the JSON type it must have.
const KNOWN: &[(&str, &str)] = &[
    ("iss", "string"),
    ("aud", "string or array of strings"),
    ("tid", "string"),
    ("oid", "string"),
    ("sub", "string"),
    ("azp", "string"),
    ("appid", "string"),
    ("azpacr", "string"),
    ("appidacr", "string"),
    ("scp", "string"),
    ("roles", "array of strings"),
    ("groups", "array of strings"),
    ("_claim_names", "object"),
    ("hasgroups", "boolean"),
    ("wids", "array of strings"),
    ("acrs", "array of strings"),
    ("amr", "array of strings"),
    ("xms_cc", "array of strings"),
    ("idtyp", "string"),
    ("ver", "string"),
    ("exp", "integer NumericDate"),
    ("nbf", "integer NumericDate"),
    ("iat", "integer NumericDate"),
    ("auth_time", "integer NumericDate"),
    ("acct", "integer"),
    ("uti", "string"),
    ("idp", "string"),
    ("name", "string"),
    ("preferred_username", "string"),
    ("upn", "string"),
    ("unique_name", "string"),
    ("email", "string"),
];

/// Parses a decoded payload.
pub(crate) fn parse(payload: &[u8]) -> Result<RawClaims<'_>, TokenError> {
    // serde_json skips ignored values without validating their UTF-8 or bounding their
    // depth: check both first, so that every consumer of the payload reads the same JSON.
    if std::str::from_utf8(payload).is_err() {
        return Err(TokenError::InvalidPayload {
            reason: "not valid UTF-8",
        });
    }
    if !crate::token::jws::json_depth_within(payload, crate::token::jws::MAX_JSON_DEPTH) {
        return Err(TokenError::InvalidPayload {
            reason: "nested too deeply",
        });
    }
    let fault = Cell::new(None);
    let seed = ClaimsSeed { fault: &fault };
    let mut de = serde_json::Deserializer::from_slice(payload);
    let result = seed.deserialize(&mut de).and_then(|c| de.end().map(|()| c));
    match (result, fault.take()) {
        (Ok(claims), None) => Ok(claims),
        (_, Some(fault)) => Err(fault),
        (Err(_), None) => Err(TokenError::InvalidPayload {
            reason: "not a JSON object",
        }),
    }
}

struct ClaimsSeed<'f> {
    fault: &'f Cell<Option<TokenError>>,
}

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = RawClaims<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawClaims<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

/// One `groups` entry: a string, kept as a group id when it is a lower-case GUID (read
/// straight from the payload, without an intermediate `String`).
#[derive(Debug)]
pub(crate) struct GroupEntry(pub(crate) Option<GroupId>);

impl<'de> Deserialize<'de> for GroupEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry;
        impl Visitor<'_> for Entry {
            type Value = GroupEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<GroupEntry, E> {
                let lower = !s.bytes().any(|b| b.is_ascii_uppercase());
                Ok(GroupEntry(lower.then(|| GroupId::parse(s).ok()).flatten()))
            }
        }
        d.deserialize_str(Entry)
    }
}

/// Takes the value of known claim number `i`, recording a precise fault on a type error.
fn take<'de, A, T>(
    map: &mut A,
    fault: &Cell<Option<TokenError>>,
    seen: &mut u64,
    i: usize,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let (claim, expected) = KNOWN[i];
    if *seen & (1 << i) != 0 {
        fault.set(Some(TokenError::DuplicateClaim { claim }));
        return Err(A::Error::custom("duplicate claim"));
    }
    *seen |= 1 << i;
    map.next_value::<T>()
        .inspect_err(|_| fault.set(Some(TokenError::InvalidClaimType { claim, expected })))
}

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = RawClaims<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims<'de>, A::Error> {
        let mut c = RawClaims::default();
        let mut seen = 0u64;
        let f = self.fault;
        // Keys borrowed from the payload: `Cow<str>`'s own `Deserialize` always copies.
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let key: &str = &key;
            let Some(i) = KNOWN.iter().position(|(k, _)| *k == key) else {
                if let Some((claim, _)) = KNOWN.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                    f.set(Some(TokenError::DuplicateClaim { claim }));
                    return Err(A::Error::custom("claim in another letter case"));
                }
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let s = &mut seen;
            match KNOWN[i].0 {
                "iss" => c.iss = Some(take(&mut map, f, s, i)?),
                "aud" => c.aud = Some(take(&mut map, f, s, i)?),
                "tid" => c.tid = Some(take(&mut map, f, s, i)?),
                "oid" => c.oid = Some(take(&mut map, f, s, i)?),
                "sub" => c.sub = Some(take(&mut map, f, s, i)?),
                "azp" => c.azp = Some(take(&mut map, f, s, i)?),
                "appid" => c.appid = Some(take(&mut map, f, s, i)?),
                "azpacr" => c.azpacr = Some(take(&mut map, f, s, i)?),
                "appidacr" => c.appidacr = Some(take(&mut map, f, s, i)?),
                "scp" => c.scp = Some(take(&mut map, f, s, i)?),
                "roles" => c.roles = Some(take(&mut map, f, s, i)?),
                "groups" => c.groups = Some(take(&mut map, f, s, i)?),
                "_claim_names" => {
                    let names: ClaimNames = take(&mut map, f, s, i)?;
                    c.groups_overage = names.groups.is_some();
                }
                "hasgroups" => c.hasgroups = Some(take(&mut map, f, s, i)?),
                "wids" => c.wids = Some(take(&mut map, f, s, i)?),
                "acrs" => c.acrs = Some(take(&mut map, f, s, i)?),
                "amr" => c.amr = Some(take(&mut map, f, s, i)?),
                "xms_cc" => c.xms_cc = Some(take(&mut map, f, s, i)?),
                "idtyp" => c.idtyp = Some(take(&mut map, f, s, i)?),
                "ver" => c.ver = Some(take(&mut map, f, s, i)?),
                "exp" => c.exp = Some(take(&mut map, f, s, i)?),
                "nbf" => c.nbf = Some(take(&mut map, f, s, i)?),
                "iat" => c.iat = Some(take(&mut map, f, s, i)?),
                "auth_time" => c.auth_time = Some(take(&mut map, f, s, i)?),
                "acct" => c.acct = Some(take(&mut map, f, s, i)?),
                "uti" => c.uti = Some(take(&mut map, f, s, i)?),
                "idp" => c.idp = Some(take(&mut map, f, s, i)?),
                "name" => c.name = Some(take(&mut map, f, s, i)?),
                "preferred_username" => c.preferred_username = Some(take(&mut map, f, s, i)?),
                "upn" => c.upn = Some(take(&mut map, f, s, i)?),
                "unique_name" => c.unique_name = Some(take(&mut map, f, s, i)?),
                "email" => c.email = Some(take(&mut map, f, s, i)?),
                _ => map.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typed_claims() {
        let c = parse(
            br#"{"aud":["a","b"],"exp":5,"scp":"x y","roles":["R"],"_claim_names":{"groups":"src1"},"other":{"deep":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(c.aud, Some(Audiences(vec!["a".into(), "b".into()])));
        assert_eq!(c.exp, Some(5));
        assert_eq!(c.scp.as_deref(), Some("x y"));
        assert!(c.groups_overage);
    }

    #[test]
    fn wrong_types_are_errors_not_coercions() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"exp":"5"}"#, "exp"),
            (br#"{"exp":5.5}"#, "exp"),
            (br#"{"exp":-5}"#, "exp"),
            (br#"{"exp":true}"#, "exp"),
            (br#"{"exp":1e400}"#, "exp"),
            (br#"{"nbf":99999999999999999999999}"#, "nbf"),
            (br#"{"roles":"Admin"}"#, "roles"),
            (br#"{"scp":["a"]}"#, "scp"),
            (br#"{"aud":7}"#, "aud"),
            (br#"{"aud":["a",7]}"#, "aud"),
            (br#"{"groups":{"a":1}}"#, "groups"),
            (br#"{"tid":1}"#, "tid"),
        ];
        for (payload, claim) in cases {
            match parse(payload) {
                Err(TokenError::InvalidClaimType { claim: c, .. }) => assert_eq!(c, *claim),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(payload)),
            }
        }
    }

    #[test]
    fn duplicates_in_any_case_are_rejected() {
        for payload in [
            &br#"{"tid":"a","tid":"b"}"#[..],
            br#"{"tid":"a","TID":"b"}"#,
            br#"{"Oid":"a"}"#,
        ] {
            assert!(matches!(
                parse(payload),
                Err(TokenError::DuplicateClaim { .. })
            ));
        }
    }

    #[test]
    fn non_objects_are_invalid_payloads() {
        for payload in [&b"[]"[..], b"\"x\"", b"{", b"{} x", b"\xff"] {
            assert!(matches!(
                parse(payload),
                Err(TokenError::InvalidPayload { .. })
            ));
        }
    }
}
