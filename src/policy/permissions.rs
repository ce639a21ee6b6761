//! The access-review report: [`CompiledPolicy::permissions`] lists what a principal may
//! do ([`Permissions`]), for user interfaces and reviews. Not on the decision path: it
//! allocates freely, and shares only role collection with [`decide`](super::decide).

use serde::Serialize;

use crate::ids::PrincipalId;
use crate::principal::{Principal, PrincipalKind};

use super::action::ActionSet;
use super::compiled::{CompiledPolicy, GROUP_HIT, MAX_ROLE_WORDS, class_of, has_bit, intersects};
use super::decide::MembershipSource;
use super::requirement::RequirementView;

/// Whether the caller's group membership was known for a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MembershipKnowledge {
    /// Groups were known (token or resolved) and evaluated.
    Evaluated,
    /// Groups were unknown and some group binding applies to callers of this kind: the
    /// listing may miss roles (and a separation-of-duty conflict).
    Unavailable,
    /// Groups were unknown, but no group binding applies to callers of this kind.
    NotNeeded,
}

/// The old name of [`MembershipKnowledge`].
#[deprecated(note = "renamed to `MembershipKnowledge`: whether a listing knew the groups")]
pub type GroupMembership = MembershipKnowledge;

/// A role the caller holds, and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct RoleAssignment {
    /// The role.
    pub role: String,
    /// Labels of the caller's bindings that name this role.
    pub bindings: Vec<String>,
    /// Held roles that include this role directly.
    pub included_by: Vec<String>,
}

/// One grant of a held role, as it applies to this caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct EffectiveGrant {
    /// The grant, as `<role>#<index>`.
    pub grant: String,
    /// The role that defines it.
    pub role: String,
    /// The actions it gives, after the scope ceiling of a delegated call.
    pub actions: Vec<String>,
    /// The resource patterns it covers.
    pub resources: Vec<String>,
    /// True when the token's scopes removed some of the grant's actions.
    pub narrowed_by_scopes: bool,
    /// Conditional Access requirements on this grant: its role's, then its own.
    /// `[[requirements]]` rules are in [`Permissions::requirement_rules`].
    pub requires: Vec<RequirementView>,
}

/// A `[[requirements]]` rule, as listed for access reviews.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct RequirementRuleView {
    /// The actions it covers.
    pub actions: Vec<String>,
    /// The resource patterns it covers.
    pub resources: Vec<String>,
    /// What every allow of those requests needs.
    pub requires: RequirementView,
}

/// A deny rule that applies to this caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct DenyView {
    /// The rule's name.
    pub rule: String,
    /// The actions it denies (after `except_actions`).
    pub actions: Vec<String>,
    /// The resource patterns it covers.
    pub resources: Vec<String>,
}

/// What a caller may do under a policy: for user interfaces and access reviews.
///
/// Effective access is: some grant below covers the action and resource, no deny rule
/// below covers them, and no separation-of-duty rule below covers them; and then the
/// grant's `requires` and every covering requirement rule must be met by the token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Permissions {
    /// The caller.
    pub principal: PrincipalId,
    /// User or application.
    pub kind: PrincipalKind,
    /// Whether the caller is a guest.
    pub guest: bool,
    /// The policy's [`version_hash`](CompiledPolicy::version_hash).
    pub policy_version: String,
    /// Whether group membership was known.
    pub groups: MembershipKnowledge,
    /// Roles held, sorted by name.
    pub roles: Vec<RoleAssignment>,
    /// Grants of the held roles, narrowed by the scope ceiling; grants the scopes reduce
    /// to nothing are left out.
    pub grants: Vec<EffectiveGrant>,
    /// For a delegated call: every action the token's scopes allow. `None` for app-only.
    pub scope_ceiling: Option<Vec<String>>,
    /// Deny rules that apply to this caller.
    pub deny_rules: Vec<DenyView>,
    /// Separation-of-duty rules whose two sides the caller holds: requests they cover are
    /// denied.
    pub separation_of_duties: Vec<String>,
    /// `[[requirements]]` rules: what an allow of the requests they cover needs, whatever
    /// the grant.
    pub requirement_rules: Vec<RequirementRuleView>,
}

impl CompiledPolicy {
    /// Lists what `principal` may do, taking group membership from the token.
    pub fn permissions(&self, principal: &Principal) -> Permissions {
        self.permissions_with(principal, MembershipSource::FromToken)
    }

    /// Lists what `principal` may do, with group membership from `membership`.
    pub fn permissions_with(
        &self,
        principal: &Principal,
        membership: MembershipSource<'_>,
    ) -> Permissions {
        let class = class_of(principal);
        let mut buf = [0u64; MAX_ROLE_WORDS];
        let roles = &mut buf[..self.words()];
        let mut hits: Vec<u32> = Vec::new();
        let collected = self.collect(principal, membership, class, roles, &mut hits);
        let mut bindings = Vec::with_capacity(hits.len());
        self.for_each_binding(&hits, class, |b| bindings.push(b));
        let hits = bindings;
        let held: Vec<usize> = (0..self.roles.len())
            .filter(|r| has_bit(roles, *r))
            .collect();

        let mut assignments: Vec<RoleAssignment> = held
            .iter()
            .map(|&r| RoleAssignment {
                role: self.roles[r].name[..].to_owned(),
                bindings: hits
                    .iter()
                    .map(|b| &self.bindings[*b as usize])
                    .filter(|b| b.roles.iter().any(|x| usize::from(*x) == r))
                    .map(|b| b.label[..].to_owned())
                    .collect(),
                included_by: held
                    .iter()
                    .filter(|h| {
                        self.roles[**h]
                            .includes
                            .iter()
                            .any(|x| usize::from(*x) == r)
                    })
                    .map(|h| self.roles[*h].name[..].to_owned())
                    .collect(),
            })
            .collect();
        assignments.sort_by(|a, b| a.role.cmp(&b.role));

        let ceiling = match principal.kind() {
            PrincipalKind::User => Some(self.scope_ceiling(principal)),
            PrincipalKind::Application => None,
        };
        let mut grants = Vec::new();
        for &r in &held {
            for g in &self.roles[r].grants {
                let actions = match &ceiling {
                    Some(c) => g.actions.intersect(c),
                    None => g.actions,
                };
                if actions.is_empty() {
                    continue;
                }
                grants.push(EffectiveGrant {
                    grant: g.label[..].to_owned(),
                    role: self.roles[r].name[..].to_owned(),
                    actions: self.actions.names_of(&actions),
                    resources: g.patterns.iter().map(|p| p.as_str().to_owned()).collect(),
                    narrowed_by_scopes: actions != g.actions,
                    requires: self.roles[r]
                        .requires
                        .iter()
                        .chain(&g.requires)
                        .map(|q| q.view())
                        .collect(),
                });
            }
        }
        let deny_rules = self
            .deny
            .iter()
            .filter(|d| d.when.matches(principal))
            .map(|d| DenyView {
                rule: d.name[..].to_owned(),
                actions: self.actions.names_of(&d.actions),
                resources: d.patterns.iter().map(|p| p.as_str().to_owned()).collect(),
            })
            .collect();
        let separation_of_duties = self
            .sod
            .iter()
            .filter(|s| intersects(roles, &s.holds[0]) && intersects(roles, &s.holds[1]))
            .map(|s| s.name[..].to_owned())
            .collect();
        let relevant = self.groups_matter(class);
        Permissions {
            principal: principal.id().clone(),
            kind: principal.kind(),
            guest: principal.is_guest(),
            policy_version: self.version_hash.clone(),
            groups: match (collected.groups_missing, relevant) {
                (false, _) => MembershipKnowledge::Evaluated,
                (true, true) => MembershipKnowledge::Unavailable,
                (true, false) => MembershipKnowledge::NotNeeded,
            },
            roles: assignments,
            grants,
            scope_ceiling: ceiling.map(|c| self.actions.names_of(&c)),
            deny_rules,
            separation_of_duties,
            requirement_rules: self
                .requirement_rules
                .iter()
                .map(|rule| RequirementRuleView {
                    actions: self.actions.names_of(&rule.actions),
                    resources: rule
                        .patterns
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect(),
                    requires: rule.requires.view(),
                })
                .collect(),
        }
    }

    /// Expands hits (bindings and group entries) to the bindings admitting `class`.
    fn for_each_binding(&self, hits: &[u32], class: u8, mut f: impl FnMut(u32)) {
        for &h in hits {
            if h & GROUP_HIT == 0 {
                f(h);
                continue;
            }
            for &b in self.group_bindings(h & !GROUP_HIT) {
                if self.bindings[b as usize].admits & (1 << class) != 0 {
                    f(b);
                }
            }
        }
    }

    fn scope_ceiling(&self, principal: &Principal) -> ActionSet {
        principal
            .scopes()
            .iter()
            .filter_map(|s| self.scopes.get(s.as_str()))
            .fold(ActionSet::EMPTY, |acc, c| acc.union(c))
    }
}
