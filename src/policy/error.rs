//! [`PolicyError`]: why a policy could not be loaded, with the file and key path.

use std::fmt::{self, Write as _};

use super::ident::IdentifierProblem;
use crate::resource::PathProblem;

/// A policy that could not be loaded: where (file, key path) and what.
///
/// Displays as `policy.toml: roles.ml-engineer.include[0]: unknown role "ml-enginer"`,
/// or `policy.toml:12:3: …` for syntax errors. Texts are pinned by tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    origin: Option<String>,
    key_path: String,
    kind: PolicyErrorKind,
}

impl PolicyError {
    pub(crate) fn new(key_path: impl Into<String>, kind: PolicyErrorKind) -> Self {
        Self {
            origin: None,
            key_path: key_path.into(),
            kind,
        }
    }

    pub(crate) fn with_origin(mut self, origin: Option<&str>) -> Self {
        self.origin = origin.map(str::to_owned);
        self
    }

    /// The file the policy came from, when it was loaded from one.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The key path of the offending value (`bindings[3].group`); empty for syntax and
    /// I/O errors.
    pub fn key_path(&self) -> &str {
        &self.key_path
    }

    /// What was wrong.
    pub fn kind(&self) -> &PolicyErrorKind {
        &self.kind
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.origin.as_deref().unwrap_or("policy");
        match &self.kind {
            PolicyErrorKind::Syntax {
                line: Some(line),
                column: Some(column),
                ..
            } => write!(f, "{origin}:{line}:{column}: {}", self.kind),
            _ if self.key_path.is_empty() => write!(f, "{origin}: {}", self.kind),
            _ => write!(f, "{origin}: {}: {}", self.key_path, self.kind),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The kinds of policy load errors.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// The policy file could not be read.
    Io {
        /// The I/O error kind.
        kind: std::io::ErrorKind,
        /// The I/O error message.
        message: String,
    },
    /// The text is not valid TOML/JSON, or does not have the policy's shape (unknown or
    /// missing keys, wrong types, duplicate keys).
    Syntax {
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// `version` is not one this crate reads.
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The version expected.
        expected: u32,
    },
    /// A role name that no `[roles.*]` table defines.
    UnknownRole {
        /// The name referenced.
        name: String,
    },
    /// An action that is neither built in nor declared in `[actions] custom`.
    UnknownAction {
        /// The action referenced.
        action: String,
    },
    /// A family wildcard (`family.*`) of a family with no known action.
    UnknownActionFamily {
        /// The wildcard as written.
        spec: String,
    },
    /// An action or action spec that is not `family.verb`, `family.*` or `*`.
    MalformedAction {
        /// The value as written.
        action: String,
        /// What the syntax is.
        expected: &'static str,
    },
    /// A value that must be a GUID is not one.
    MalformedGuid {
        /// Which id (group id, tenant id, …).
        what: &'static str,
        /// The value as written.
        value: String,
    },
    /// A resource pattern that does not parse.
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A name defined twice, or a value listed twice.
    Duplicate {
        /// What was duplicated.
        what: &'static str,
        /// The duplicated value.
        name: String,
    },
    /// Roles that include each other.
    RoleCycle {
        /// The cycle, first role repeated at the end: `["a", "b", "a"]`.
        cycle: Vec<String>,
    },
    /// An identifier with control, bidirectional or invisible characters, or mixed
    /// scripts.
    SuspiciousIdentifier {
        /// The identifier, as written.
        value: String,
        /// What is wrong with it.
        problem: IdentifierProblem,
    },
    /// A binding without exactly one subject.
    BindingSubject {
        /// The subject keys found (empty when none).
        found: Vec<&'static str>,
    },
    /// `kinds` was given where the subject already fixes the kind.
    KindsNotAllowed {
        /// The subject key that fixes the kind.
        subject: &'static str,
    },
    /// `tenants` was given on a binding whose subject is an object id (`group`, `tenant`,
    /// `principal`): object ids are unique across tenants, so there is nothing to qualify.
    TenantsNotAllowed {
        /// The subject key.
        subject: &'static str,
    },
    /// A list that must not be empty is empty.
    Empty {
        /// What is empty.
        what: &'static str,
    },
    /// A separation-of-duty rule without exactly two disjoint action specs.
    SeparationOfDutiesActions {
        /// How many specs were given.
        found: usize,
    },
    /// An authentication context id that is not `c1`..`c99`.
    MalformedAuthContext {
        /// The value as written.
        value: String,
    },
    /// A `max_auth_age` that is not a positive duration of at most 30 days.
    MalformedDuration {
        /// The value as written.
        value: String,
    },
    /// A `client_auth` other than `"secret"` or `"certificate"`.
    UnknownClientAuth {
        /// The value as written.
        value: String,
    },
    /// More items than the compiled tables support.
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for PolicyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { message, .. } => write!(f, "cannot read policy: {message}"),
            Self::Syntax { message, .. } => write!(f, "{}", message.trim_end()),
            Self::UnsupportedVersion { found, expected } => {
                write!(
                    f,
                    "unsupported policy version {found} (expected {expected})"
                )
            }
            Self::UnknownRole { name } => write!(f, "unknown role {name:?}"),
            Self::UnknownAction { action } => write!(f, "unknown action {action:?}"),
            Self::UnknownActionFamily { spec } => {
                write!(f, "no known action matches {spec:?}")
            }
            Self::MalformedAction { action, expected } => {
                write!(f, "malformed action {action:?}: {expected}")
            }
            Self::MalformedGuid { what, value } => {
                write!(f, "malformed {what} {value:?}: expected a GUID")
            }
            Self::BadPattern { pattern, problem } => {
                write!(f, "bad resource pattern {pattern:?}: {problem}")
            }
            Self::Duplicate { what, name } => write!(f, "duplicate {what} {name:?}"),
            Self::RoleCycle { cycle } => {
                write!(f, "roles include each other: {}", cycle.join(" -> "))
            }
            Self::SuspiciousIdentifier { value, problem } => {
                // Spell out every non-ASCII character: the point is to see the one that
                // hides among look-alikes.
                f.write_str("identifier \"")?;
                for c in value.chars() {
                    if c.is_ascii_graphic() || c == ' ' {
                        if c == '"' || c == '\\' {
                            f.write_char('\\')?;
                        }
                        f.write_char(c)?;
                    } else {
                        write!(f, "\\u{{{:x}}}", c as u32)?;
                    }
                }
                write!(f, "\" {problem}")
            }
            Self::BindingSubject { found } if found.is_empty() => f.write_str(
                "a binding needs one subject: group, app_role, app_permission, \
                 directory_role, tenant or principal",
            ),
            Self::BindingSubject { found } => write!(
                f,
                "a binding has exactly one subject, found {}",
                found.join(" and ")
            ),
            Self::KindsNotAllowed { subject } => {
                write!(
                    f,
                    "`kinds` cannot be combined with `{subject}`, which fixes the kind"
                )
            }
            Self::TenantsNotAllowed { subject } => write!(
                f,
                "`tenants` qualifies app_role, app_permission and directory_role bindings; \
                 a `{subject}` binding names an object id, unique across tenants"
            ),
            Self::Empty { what } => write!(f, "{what} must not be empty"),
            Self::SeparationOfDutiesActions { found: 2 } => {
                f.write_str("the two action specs of a separation-of-duty rule overlap")
            }
            Self::SeparationOfDutiesActions { found } => write!(
                f,
                "separation of duties needs exactly two disjoint action specs, found {found}"
            ),
            Self::MalformedAuthContext { value } => write!(
                f,
                "malformed authentication context {value:?}: expected c1 to c99"
            ),
            Self::MalformedDuration { value } => write!(
                f,
                "malformed duration {value:?}: expected a positive number with s, m, h or d \
                 (\"30m\", \"4h\", \"1d\"), at most 30d"
            ),
            Self::UnknownClientAuth { value } => write!(
                f,
                "unknown client_auth {value:?}: expected \"secret\" or \"certificate\""
            ),
            Self::TooMany { what, max } => write!(f, "more than {max} {what}"),
        }
    }
}
