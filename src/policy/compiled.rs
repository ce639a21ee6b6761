//! The compiled tables: what [`compile`](super::compile) builds and
//! [`decide`](super::decide), [`permissions`](super::permissions) and
//! [`lint`](super::lint) read.
//!
//! Roles, bindings and role sets are indices and bitsets (`words` `u64`s per role set);
//! group ids sit in a hash table, claim values in string maps. The spans that index
//! one table into another (a role's closure row, the roles an action's grants mention,
//! the bindings holding a role, a group entry's roles and bindings) are read through the
//! `#[inline]` methods at the end of this file, so that the arithmetic lives beside the
//! layout it describes: [`decide`](super::decide), [`permissions`](super::permissions)
//! and [`lint`](super::lint) never index one table by another's spans themselves. The
//! fields stay visible to `policy` (`pub(super)`) because [`compile`](super::compile)
//! assembles them and the evaluator walks the rule and binding lists directly; wrapping
//! each of those reads in a method would add names without narrowing anything.
//!
//! The compiled requirement blocks ([`Requires`]) stay in
//! [`requirement`](super::requirement), beside their validation and their check against
//! a caller: that module is one concern (Conditional Access), and splitting its compiled
//! form from its check would put the two halves of one `match` in two files.

use std::collections::HashMap;

use crate::ids::{GroupId, PrincipalId, TenantId};
use crate::principal::{GuestStatus, Principal, PrincipalKind};

use super::action::{ActionSet, ActionTable};
use super::model::OnGroupOverage;
use super::pattern::Pattern;
use super::requirement::Requires;
use crate::fast_hash::{FastBuildHasher, GuidTable};

/// The largest number of roles one policy may define.
pub const MAX_ROLES: usize = 4096;
pub(super) const MAX_ROLE_WORDS: usize = MAX_ROLES / 64;
/// Marks a recorded hit that is a group entry (all of its admitting bindings) rather
/// than one binding.
pub(super) const GROUP_HIT: u32 = 1 << 31;
/// The largest number of bindings one policy may define.
pub const MAX_BINDINGS: usize = 1 << 24;

pub(super) type FastMap<V> = HashMap<Box<str>, V, FastBuildHasher>;

/// A compiled, immutable policy: the fast, infallible decision core.
///
/// Cheap to share (`Arc<CompiledPolicy>`), `Send + Sync`. Build one with
/// [`Policy::compiled`](super::Policy::compiled); decide with
/// [`decide`](CompiledPolicy::decide).
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(super) version_hash: String,
    pub(super) on_group_overage: OnGroupOverage,
    pub(super) actions: ActionTable,
    pub(super) roles: Vec<Role>,
    /// `u64` words in one role set.
    pub(super) words: usize,
    /// Per role: the roles it includes, transitively, itself included (`words` each).
    pub(super) role_closure: Box<[u64]>,
    /// Per action: the roles whose own grants mention it (`words` each).
    pub(super) roles_by_action: Box<[u64]>,
    pub(super) bindings: Vec<Binding>,
    /// Per role: (start, len) in `bindings_by_role_ids` of the bindings whose closure
    /// holds the role, in policy order (to name them in an allow).
    pub(super) bindings_by_role: Box<[(u32, u32)]>,
    pub(super) bindings_by_role_ids: Box<[u32]>,
    /// Per binding: the value a decision records when the binding matches (the binding
    /// index, or `GROUP_HIT | group entry` for group bindings).
    pub(super) binding_hit_key: Box<[u32]>,
    /// Group id -> index in `group_entries`.
    pub(super) groups: GuidTable,
    pub(super) group_entries: Box<[GroupEntry]>,
    /// Role lists referenced by `GroupEntry::roles`.
    pub(super) group_roles: Box<[u16]>,
    /// Binding lists referenced by `GroupEntry::bindings`.
    pub(super) group_binding_ids: Box<[u32]>,
    /// Per admission class: every role some group binding could confer.
    pub(super) group_roles_by_class: [Box<[u64]>; 4],
    /// Admission classes some group binding admits.
    pub(super) group_classes: u8,
    pub(super) app_roles: FastMap<Box<[u32]>>,
    pub(super) app_permissions: FastMap<Box<[u32]>>,
    pub(super) directory_roles: FastMap<Box<[u32]>>,
    pub(super) tenants: FastMap<Box<[u32]>>,
    pub(super) principals: FastMap<Box<[u32]>>,
    pub(super) scopes: FastMap<ActionSet>,
    pub(super) deny: Vec<Deny>,
    pub(super) sod: Vec<SeparationOfDuties>,
    pub(super) bound_group_ids: Vec<GroupId>,
    /// The authentication context that proves (and steps up to) MFA.
    pub(super) mfa_auth_context: Option<Box<str>>,
    /// `[[requirements]]` rules.
    pub(super) requirement_rules: Vec<RequirementRule>,
    /// Some role, grant or rule has requirements: without any, a decision never looks.
    pub(super) has_requirements: bool,
    /// Claim-value bindings without a `tenants` qualifier, in policy order.
    pub(super) unqualified_claim_bindings: Vec<UnqualifiedBinding>,
}

/// A claim-value binding (`app_role`, `app_permission`, `directory_role`) without a
/// `tenants` qualifier: it trusts whichever tenant issued the token, so only a governor
/// that accepts exactly one tenant can use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub struct UnqualifiedBinding {
    /// The binding's key path, `bindings[3]`.
    pub key_path: String,
    /// The binding's label (its `name`, or `app_role:<value>`, ...).
    pub label: String,
}

impl std::fmt::Display for UnqualifiedBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.key_path, self.label.escape_debug())
    }
}

/// A `[[requirements]]` rule: the requirements of every allow of its actions on its
/// resources.
#[derive(Debug)]
pub(super) struct RequirementRule {
    pub(super) actions: ActionSet,
    pub(super) patterns: Box<[Pattern]>,
    pub(super) requires: Requires,
}

/// What one bound group confers: precomputed so that a token group costs one lookup and
/// a few bit sets.
#[derive(Debug)]
pub(super) struct GroupEntry {
    /// Per admission class: (start, len) in `group_roles` of the roles (closures
    /// included) of the group's bindings that admit the class.
    pub(super) roles: [(u32, u32); 4],
    /// (start, len) in `group_binding_ids` of the group's bindings.
    pub(super) bindings: (u32, u32),
}

#[derive(Debug)]
pub(super) struct Role {
    pub(super) name: Box<str>,
    pub(super) grants: Vec<Grant>,
    pub(super) includes: Vec<u16>,
    /// Requirements on every use of the role's own grants.
    pub(super) requires: Option<Requires>,
}

#[derive(Debug)]
pub(super) struct Grant {
    pub(super) label: Box<str>,
    pub(super) actions: ActionSet,
    pub(super) patterns: Box<[Pattern]>,
    pub(super) requires: Option<Requires>,
}

impl Grant {
    #[inline]
    pub(super) fn matches(&self, action: u16, whole: &str, segs: &[&str]) -> bool {
        self.actions.contains(action)
            && self
                .patterns
                .iter()
                .any(|p| p.matches_segments(whole, segs))
    }
}

#[derive(Debug)]
pub(super) enum Subject {
    Group,
    Claim,
    DirectoryRole,
    Tenant(TenantId),
    Principal(PrincipalId),
}

#[derive(Debug)]
pub(super) struct Binding {
    pub(super) label: Box<str>,
    pub(super) subject: Subject,
    /// The roles the binding names.
    pub(super) roles: Box<[u16]>,
    /// Those roles and every role they include.
    pub(super) closure: Box<[u16]>,
    /// Admission classes (see [`class_of`]: bit `1 << class` admits the class).
    pub(super) admits: u8,
    /// For claim-value subjects: the issuing tenants whose values the binding trusts
    /// (`tenants = [...]`); `None` when unqualified.
    pub(super) tenants: Option<Box<[TenantId]>>,
}

impl Binding {
    /// Whether the binding trusts claim values issued by the caller's tenant: always for
    /// object-id subjects and unqualified bindings (which only a single-tenant governor
    /// accepts), else only for the tenants it names.
    #[inline]
    pub(super) fn trusts_issuer(&self, p: &Principal) -> bool {
        self.tenants
            .as_ref()
            .is_none_or(|ts| ts.contains(p.tenant()))
    }
}

/// Admission class of a caller: bit 0 guest, bit 1 application.
#[inline]
pub(super) fn class_of(p: &Principal) -> u8 {
    u8::from(p.is_guest()) | (u8::from(p.kind() == PrincipalKind::Application) << 1)
}

#[derive(Debug, Default)]
pub(super) struct When {
    pub(super) guest: Option<bool>,
    pub(super) kind: Option<PrincipalKind>,
    pub(super) tenant: Option<TenantId>,
    pub(super) tenant_in: Option<Box<[TenantId]>>,
    pub(super) tenant_not_in: Option<Box<[TenantId]>>,
}

impl When {
    pub(super) fn is_everyone(&self) -> bool {
        self.guest.is_none()
            && self.kind.is_none()
            && self.tenant.is_none()
            && self.tenant_in.is_none()
            && self.tenant_not_in.is_none()
    }

    #[inline]
    pub(super) fn matches(&self, p: &Principal) -> bool {
        // An unknown guest status meets both guest conditions: deny rules fail closed.
        self.guest
            .is_none_or(|g| g == p.is_guest() || p.guest_status() == GuestStatus::Unknown)
            && self.kind.is_none_or(|k| k == p.kind())
            && self.tenant.as_ref().is_none_or(|t| t == p.tenant())
            && self
                .tenant_in
                .as_ref()
                .is_none_or(|ts| ts.contains(p.tenant()))
            && self
                .tenant_not_in
                .as_ref()
                .is_none_or(|ts| !ts.contains(p.tenant()))
    }
}

#[derive(Debug)]
pub(super) struct Deny {
    pub(super) name: Box<str>,
    pub(super) when: When,
    /// `actions` minus `except_actions`.
    pub(super) actions: ActionSet,
    pub(super) patterns: Box<[Pattern]>,
}

#[derive(Debug)]
pub(super) struct SeparationOfDuties {
    pub(super) name: Box<str>,
    pub(super) sides: [ActionSet; 2],
    pub(super) patterns: Box<[Pattern]>,
    /// Per side: the roles whose own grants give that side on a covered resource.
    pub(super) holds: [Box<[u64]>; 2],
}

/// Sets bit `i` of a role set (`words` `u64`s, bit `r` for role `r`).
pub(super) fn set_bit(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

#[inline]
pub(super) fn has_bit(words: &[u64], i: usize) -> bool {
    words[i / 64] & (1 << (i % 64)) != 0
}

pub(super) fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

impl CompiledPolicy {
    /// The group ids the policy binds, sorted: the only groups a membership resolver
    /// needs to ask about (`checkMemberGroups`).
    pub fn bound_group_ids(&self) -> &[GroupId] {
        &self.bound_group_ids
    }

    /// A stable identifier of the policy source: lower-case hex SHA-256 of the text it
    /// was loaded from. Record it with every decision in audit logs.
    pub fn version_hash(&self) -> &str {
        &self.version_hash
    }

    /// Claim-value bindings (`app_role`, `app_permission`, `directory_role`) without a
    /// `tenants` qualifier, in policy order. A [`Governor`](crate::Governor) that accepts
    /// more than one tenant refuses a policy that has any.
    pub fn unqualified_claim_bindings(&self) -> &[UnqualifiedBinding] {
        &self.unqualified_claim_bindings
    }

    /// The bindings' labels (`name`, or `group:<id>`, …), in policy order: what
    /// decisions and audit events name them by.
    pub fn binding_labels(&self) -> impl Iterator<Item = &str> {
        self.bindings.iter().map(|b| &*b.label)
    }

    /// What the policy does when group membership is unknown.
    pub fn on_group_overage(&self) -> OnGroupOverage {
        self.on_group_overage
    }

    /// The authentication context that proves multi-factor authentication
    /// (`mfa_auth_context`), if the policy names one.
    pub fn mfa_auth_context(&self) -> Option<&str> {
        self.mfa_auth_context.as_deref()
    }

    /// True when some role, grant or `[[requirements]]` rule carries Conditional Access
    /// requirements.
    pub fn has_requirements(&self) -> bool {
        self.has_requirements
    }

    /// Every action the policy knows: built-ins first, then custom actions.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.actions.names()
    }

    /// `u64` words in one role set.
    #[inline]
    pub(super) fn words(&self) -> usize {
        self.words
    }

    /// The roles `role` includes, transitively, itself included.
    #[inline]
    pub(super) fn closure_of(&self, role: u16) -> &[u64] {
        let r = usize::from(role);
        &self.role_closure[r * self.words..(r + 1) * self.words]
    }

    /// The roles whose own grants mention `action`.
    #[inline]
    pub(super) fn roles_granting(&self, action: u16) -> &[u64] {
        let a = usize::from(action);
        &self.roles_by_action[a * self.words..(a + 1) * self.words]
    }

    /// The bindings whose closure holds `role`, in policy order.
    #[inline]
    pub(super) fn bindings_holding(&self, role: usize) -> &[u32] {
        let (start, len) = self.bindings_by_role[role];
        &self.bindings_by_role_ids[start as usize..(start + len) as usize]
    }

    /// The bindings of group entry `entry` (a hit without [`GROUP_HIT`]).
    #[inline]
    pub(super) fn group_bindings(&self, entry: u32) -> &[u32] {
        let (start, len) = self.group_entries[entry as usize].bindings;
        &self.group_binding_ids[start as usize..(start + len) as usize]
    }

    /// The roles (closures included) group entry `entry` confers on callers of `class`.
    #[inline]
    pub(super) fn roles_of_group(&self, entry: u32, class: u8) -> &[u16] {
        let (start, len) = self.group_entries[entry as usize].roles[usize::from(class)];
        &self.group_roles[start as usize..(start + len) as usize]
    }

    /// Every role some group binding could confer on callers of `class`.
    #[inline]
    pub(super) fn possible_group_roles(&self, class: u8) -> &[u64] {
        &self.group_roles_by_class[usize::from(class)]
    }

    /// Whether some group binding admits callers of `class`.
    #[inline]
    pub(super) fn groups_matter(&self, class: u8) -> bool {
        self.group_classes & (1 << class) != 0
    }
}
