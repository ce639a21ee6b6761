//! Identifier newtypes: tenants, objects, groups and the `(tid, oid)` identity key.
//!
//! Entra ids are GUIDs. They are validated once, when a token is verified or a policy is
//! loaded, so that a mix-up between a tenant id and an object id is a type error and a
//! malformed id never reaches a decision.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The tenant id of Microsoft personal accounts (MSA); never a customer tenant.
pub const PERSONAL_ACCOUNTS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// True when `s` is a GUID in the 8-4-4-4-12 hexadecimal form (either letter case).
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A GUID's 36 characters, held inline: a principal's ids and groups sit in one
/// allocation each, so a decision reads them without chasing a pointer per id.
type GuidText = [u8; 36];

macro_rules! guid_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(GuidText);

        impl $name {
            /// Parses a GUID, normalising it to lower case (the form Entra emits).
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                if is_guid(s) {
                    let mut text: GuidText = [0; 36];
                    for (t, c) in text.iter_mut().zip(s.bytes()) {
                        *t = c.to_ascii_lowercase();
                    }
                    Ok(Self(text))
                } else {
                    Err(InvalidId { what: $what })
                }
            }

            /// The id as a lower-case GUID string.
            pub fn as_str(&self) -> &str {
                // Only ASCII hex digits and dashes are ever stored (see `parse`).
                std::str::from_utf8(&self.0).unwrap_or_default()
            }

            /// The 36 ASCII bytes, for lookup tables.
            #[allow(dead_code)]
            pub(crate) fn as_bytes(&self) -> &GuidText {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.as_str().to_owned()
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }
    };
}

guid_newtype!(
    /// A directory (tenant) id: the `tid` claim.
    TenantId,
    "tenant id"
);
guid_newtype!(
    /// An object id of a user or service principal in one tenant: the `oid` claim.
    ObjectId,
    "object id"
);
guid_newtype!(
    /// The object id of an Entra security group, as found in the `groups` claim.
    GroupId,
    "group id"
);

/// A string that should have been a GUID was not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
pub struct InvalidId {
    /// Which kind of id was malformed.
    pub what: &'static str,
}

/// The only identity used in decisions, audit and caches: tenant id plus object id.
///
/// Object ids are immutable but differ per tenant, so the pair is the identity. Names,
/// e-mail addresses and UPNs are mutable and are never used.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrincipalId {
    /// The tenant the token was issued in (`tid`).
    pub tenant: TenantId,
    /// The caller's object id in that tenant (`oid`).
    pub object: ObjectId,
}

impl PrincipalId {
    /// Builds the identity key from its two parts.
    pub fn new(tenant: TenantId, object: ObjectId) -> Self {
        Self { tenant, object }
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_shape_is_checked_exactly() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(is_guid("72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
        assert!(!is_guid("72f988bf86f141af91ab2d7cd011db47"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4g"));
        assert!(!is_guid("{72f988bf-86f1-41af-91ab-2d7cd011db47}"));
    }

    #[test]
    fn ids_normalise_to_lower_case() {
        let t = TenantId::parse("72F988BF-86F1-41AF-91AB-2D7CD011DB47").unwrap();
        assert_eq!(t.as_str(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(
            ObjectId::parse("nope").unwrap_err().to_string(),
            "malformed object id: expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        );
    }
}
