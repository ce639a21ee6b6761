//! The checks every part of a document shares: key paths, identifiers, GUIDs, non-empty
//! lists, resource patterns and tenant lists, each failing with a [`PolicyError`] that
//! names the key path.

use std::collections::HashSet;

use crate::ids::TenantId;

use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::ident::{IdentKind, check_identifier};
use crate::policy::pattern::Pattern;

/// Renders a map key for a key path: bare when TOML allows it, quoted otherwise.
pub(crate) fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.escape_debug())
    }
}

pub(super) fn err(path: impl Into<String>, kind: PolicyErrorKind) -> PolicyError {
    PolicyError::new(path, kind)
}

pub(super) fn ident(path: &str, value: &str, kind: IdentKind) -> Result<(), PolicyError> {
    check_identifier(value, kind).map_err(|problem| {
        err(
            path,
            PolicyErrorKind::SuspiciousIdentifier {
                value: value.to_owned(),
                problem,
            },
        )
    })
}

pub(super) fn guid<T>(
    path: &str,
    value: &str,
    what: &'static str,
    parse: impl Fn(&str) -> Result<T, crate::ids::InvalidId>,
) -> Result<T, PolicyError> {
    parse(value).map_err(|_| {
        err(
            path,
            PolicyErrorKind::MalformedGuid {
                what,
                value: value.to_owned(),
            },
        )
    })
}

pub(super) fn non_empty<T>(path: &str, list: &[T], what: &'static str) -> Result<(), PolicyError> {
    if list.is_empty() {
        return Err(err(path, PolicyErrorKind::Empty { what }));
    }
    Ok(())
}

pub(super) fn patterns(path: &str, list: &[String]) -> Result<Box<[Pattern]>, PolicyError> {
    non_empty(path, list, "resources")?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, source) in list.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if !seen.insert(source.as_str()) {
            return Err(err(
                path,
                PolicyErrorKind::Duplicate {
                    what: "resource pattern",
                    name: source.clone(),
                },
            ));
        }
        let p = Pattern::parse(source).map_err(|problem| {
            err(
                &path,
                PolicyErrorKind::BadPattern {
                    pattern: source.clone(),
                    problem,
                },
            )
        })?;
        out.push(p);
    }
    Ok(out.into())
}

pub(super) fn tenant_list(path: &str, list: &[String]) -> Result<Box<[TenantId]>, PolicyError> {
    non_empty(path, list, "tenant list")?;
    list.iter()
        .enumerate()
        .map(|(i, t)| guid(&format!("{path}[{i}]"), t, "tenant id", TenantId::parse))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_when_toml_needs_it() {
        assert_eq!(key("ml-engineer"), "ml-engineer");
        assert_eq!(key("Inference.Invoke"), "\"Inference.Invoke\"");
    }
}
