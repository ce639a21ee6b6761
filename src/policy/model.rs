//! The policy document as written: plain serde structs for TOML and JSON.
//!
//! Nothing here is validated; [`Policy`](super::Policy) checks and compiles a document.
//! Every struct rejects unknown keys, so a misspelt key (or an attempt to bind by
//! `email`, `upn` or `name`) is a load error rather than a silently ignored line.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The policy format version this crate reads.
pub const POLICY_FORMAT_VERSION: u32 = 1;

/// A whole policy document (`version = 1`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyDocument {
    /// The format version; must be [`POLICY_FORMAT_VERSION`].
    pub version: u32,
    /// What to do when a token's groups cannot be known (overage or no `groups` claim).
    #[serde(default)]
    pub on_group_overage: OnGroupOverage,
    /// The authentication context (`c1`..`c99`) whose Conditional Access policy requires
    /// multi-factor authentication: v2 tokens carry no `amr`, so they prove MFA only
    /// through it, and an unmet `mfa = true` steps up through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_auth_context: Option<String>,
    /// Custom actions added to the built-in vocabulary.
    #[serde(default, skip_serializing_if = "ActionsSection::is_empty")]
    pub actions: ActionsSection,
    /// Named roles: sets of grants, possibly including other roles.
    #[serde(
        default,
        deserialize_with = "unique_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub roles: BTreeMap<String, RoleDef>,
    /// Which Entra facts confer which roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<BindingDef>,
    /// Scope ceilings: the actions each delegated OAuth2 scope allows.
    #[serde(
        default,
        deserialize_with = "unique_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Deny rules; a matching deny rule overrides every grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<DenyDef>,
    /// Pairs of actions one principal may not hold together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub separation_of_duties: Vec<SeparationOfDutiesDef>,
    /// Conditional Access requirements on action/resource patterns: they apply to every
    /// allow of a matching request, whatever role allowed it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<RequirementRuleDef>,
}

impl PolicyDocument {
    /// An empty version-1 document, to be filled in by hand.
    pub fn new() -> Self {
        Self {
            version: POLICY_FORMAT_VERSION,
            ..Self::default()
        }
    }
}

/// What a decision does when group membership is needed but unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnGroupOverage {
    /// Deny with [`Reason::GroupMembershipUnavailable`](crate::decision::Reason) whenever a
    /// group binding could change the answer (the default).
    #[default]
    Deny,
    /// Decide as if the caller were in no group. Group-based grants are lost, and so are
    /// separation-of-duty conflicts that only group roles would reveal.
    EvaluateWithoutGroups,
}

/// The `[actions]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ActionsSection {
    /// Additional `family.verb` actions.
    #[serde(default)]
    pub custom: Vec<String>,
}

impl ActionsSection {
    fn is_empty(&self) -> bool {
        self.custom.is_empty()
    }
}

/// A role: grants, plus other roles it includes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RoleDef {
    /// Free text for people; not used in decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Roles whose grants this role also has. Cycles are rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// The role's own grants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantDef>,
    /// Conditional Access requirements on every use of the role's own grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<RequiresDef>,
}

/// A grant: every listed action on every resource matching one of the patterns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GrantDef {
    /// Actions: `family.verb`, `family.*` or `*`.
    pub actions: Vec<String>,
    /// Resource patterns (see [`pattern`](super::pattern)).
    pub resources: Vec<String>,
    /// Conditional Access requirements on every use of this grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<RequiresDef>,
}

impl GrantDef {
    /// A grant of `actions` on `resources`.
    pub fn new<A, R>(actions: A, resources: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        R: IntoIterator,
        R::Item: Into<String>,
    {
        Self {
            actions: actions.into_iter().map(Into::into).collect(),
            resources: resources.into_iter().map(Into::into).collect(),
            requires: None,
        }
    }

    /// The same grant, with Conditional Access requirements.
    pub fn with_requires(mut self, requires: RequiresDef) -> Self {
        self.requires = Some(requires);
        self
    }
}

/// Conditional Access requirements (`requires = { … }`); all given ones must hold.
///
/// See [the policy module](super#conditional-access-requirements-and-step-up) for what
/// satisfies each and what the client is told when one does not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RequiresDef {
    /// Multi-factor authentication: `amr` has `mfa` or `ngcmfa` (v1), or `acrs` has the
    /// policy's `mfa_auth_context`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa: bool,
    /// An authentication context (`c1`..`c99`) the token's `acrs` must list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_context: Option<String>,
    /// The longest time since the last interactive sign-in (`auth_time`): `30m`, `4h`,
    /// `1d` (at most `30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_auth_age: Option<String>,
    /// The least client authentication (`azpacr`/`appidacr`): `"secret"` (a secret or a
    /// certificate) or `"certificate"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
    /// The client applications (`azp`/`appid` GUIDs) allowed to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_apps: Option<Vec<String>>,
}

/// A requirement rule (`[[requirements]]`): the requirements hold for every allow of the
/// actions on the resources, whatever role allowed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RequirementRuleDef {
    /// The rule's name, reported in decisions as `requirements:<name>`.
    pub name: String,
    /// Free text for people; not used in decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Actions: `family.verb`, `family.*` or `*`.
    pub actions: Vec<String>,
    /// Resource patterns the rule covers.
    pub resources: Vec<String>,
    /// What the caller's token must show.
    pub requires: RequiresDef,
}

/// A binding: one Entra fact (the subject) confers roles.
///
/// Exactly one subject key is set: `group`, `app_role` and/or `app_permission`,
/// `directory_role`, `tenant` or `principal`. There is no key for e-mail addresses, UPNs
/// or display names: they are mutable and cannot be bound. Claim-value subjects
/// (`app_role`, `app_permission`, `directory_role`) take a `tenants` qualifier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BindingDef {
    /// A label for decisions and audit; defaults to the subject (`group:<id>`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text for people; not used in decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A security group object id (from the `groups` claim or Microsoft Graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// An app role value in the `roles` claim of a user (delegated) token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<String>,
    /// An application permission in the `roles` claim of an app-only token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_permission: Option<String>,
    /// A directory role template id (`wids` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_role: Option<String>,
    /// Every caller whose token was issued in this tenant (`tid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Exactly one user or service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalRef>,
    /// The tenants (`tid` GUIDs) whose tokens a claim-value binding (`app_role`,
    /// `app_permission`, `directory_role`) trusts. Those values are set by each issuing
    /// tenant's own administrators, so in a governor that accepts several tenants every
    /// such binding must say whose administrators it trusts. Not allowed on `group`,
    /// `tenant` and `principal` bindings, whose object ids are unique across tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// The roles conferred.
    pub roles: Vec<String>,
    /// Whether guest (B2B) accounts get the roles too. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guests: bool,
    /// Which kinds of caller the binding applies to. Default: `["user"]` for `group`,
    /// `directory_role` and `tenant` bindings, both kinds for `principal` bindings. Not
    /// allowed with `app_role` (users only) or `app_permission` (applications only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<KindDef>>,
}

/// One principal: tenant id plus object id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrincipalRef {
    /// The tenant id (`tid`).
    pub tenant: String,
    /// The object id (`oid`).
    pub object: String,
}

impl PrincipalRef {
    /// A reference to the principal `object` in `tenant`.
    pub fn new(tenant: impl Into<String>, object: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            object: object.into(),
        }
    }
}

/// A kind of caller, as written in a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindDef {
    /// A user, through a delegated token.
    User,
    /// An application, through an app-only token.
    Application,
}

/// A deny rule: `when` the caller matches, the actions (minus `except_actions`) on the
/// resources are denied, whatever the roles say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DenyDef {
    /// The rule's name, reported in decisions.
    pub name: String,
    /// Free text for people; not used in decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which callers the rule applies to; absent means every caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<WhenDef>,
    /// Denied actions: `family.verb`, `family.*` or `*`.
    pub actions: Vec<String>,
    /// Actions taken out of `actions`: `actions = ["*"], except_actions = ["inference.*"]`
    /// means "nothing but inference".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except_actions: Vec<String>,
    /// Resource patterns the rule covers (`["**"]` for all).
    pub resources: Vec<String>,
}

/// Conditions on the caller; all given conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WhenDef {
    /// `true`: guests only; `false`: members only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<bool>,
    /// Users only or applications only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<KindDef>,
    /// The token was issued in this tenant (`tid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The token was issued in one of these tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_in: Option<Vec<String>>,
    /// The token was issued in none of these tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_not_in: Option<Vec<String>>,
}

/// Two actions one principal may not hold together on the given resources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeparationOfDutiesDef {
    /// The rule's name, reported in decisions.
    pub name: String,
    /// Free text for people; not used in decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Exactly two disjoint action specs (`family.verb` or `family.*`).
    pub actions: Vec<String>,
    /// Resource patterns the rule covers.
    pub resources: Vec<String>,
}

/// Deserializes a map, rejecting duplicate keys (JSON would keep the last one silently).
fn unique_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueMap<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, V>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format_args!(
                        "duplicate key `{}`",
                        k.escape_debug()
                    )));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(UniqueMap(PhantomData))
}
