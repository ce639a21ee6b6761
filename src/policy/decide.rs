//! The hot path: [`CompiledPolicy::decide`], the evaluation of one request.
//!
//! The access-review listing ([`CompiledPolicy::permissions`]) is in
//! [`permissions`](super::permissions); it shares role collection ([`CompiledPolicy::collect`])
//! with this module and nothing else.
//!
//! A decision runs these steps, first answer wins:
//!
//! 1. the action must be known, else [`Reason::UnknownAction`];
//! 2. the resource must be a valid path, else [`Reason::InvalidResource`];
//! 3. a deny rule whose `when`, actions and resources cover the request denies it
//!    ([`Reason::DeniedByRule`]): deny overrides permit;
//! 4. a delegated (user) call needs a scope whose ceiling allows the action
//!    ([`Reason::OutsideScopes`]); app-only calls have no scopes and are governed by their
//!    app permissions alone;
//! 5. the caller's roles are collected from the bindings that match its token (tenant,
//!    principal, directory roles, app roles or app permissions, groups), each binding
//!    admitting the caller's kind and, for guests, only if it says `guests = true`;
//! 6. a grant of one of those roles must cover the action and the resource, else
//!    [`Reason::NoRoleGrants`], or [`Reason::GroupMembershipUnavailable`] when the
//!    caller's groups are unknown and a group binding could have granted it;
//! 7. a separation-of-duty rule covering the request denies it when the caller's roles
//!    give both of its sides ([`Reason::SeparationOfDuties`]);
//! 8. Conditional Access requirements: the request is allowed through some grant of step
//!    6 whose role and grant requirements hold, provided every `[[requirements]]` rule
//!    covering the request holds too; otherwise [`Reason::StepUpRequired`],
//!    [`Reason::StepUpNotPossible`] or [`Reason::RequirementNotMet`] (see
//!    [the module docs](super#conditional-access-requirements-and-step-up));
//! 9. otherwise: [`Reason::Allow`], naming the grant and the bindings that led to it.
//!
//! Separation of duties is deliberately not monotonic: holding *more* roles can deny a
//! request. Everything else is: more deny rules, fewer bindings or narrower scopes never

use crate::decision::{Decision, Match, Reason};
use crate::principal::{Principal, PrincipalKind, TokenGroups};
use crate::resource::{MAX_SEGMENTS, split_resource};

use super::compiled::{
    Binding, CompiledPolicy, GROUP_HIT, MAX_ROLE_WORDS, SeparationOfDuties, Subject, class_of,
    has_bit, intersects, set_bit,
};
use super::model::OnGroupOverage;
use super::requirement::{Clock, Unmet};
use crate::ids::GroupId;

/// Where a decision takes the caller's group membership from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MembershipSource<'a> {
    /// The token's `groups` claim; an overage marker or a missing claim means unknown.
    #[default]
    FromToken,
    /// Membership resolved elsewhere (Microsoft Graph): the caller's groups among
    /// [`CompiledPolicy::bound_group_ids`] (or all of its groups). Replaces the token's.
    Resolved(&'a [GroupId]),
    /// Membership is unknown.
    Unavailable,
}

/// The old name of [`MembershipSource`].
#[deprecated(note = "renamed to `MembershipSource`: where a decision reads membership from")]
pub type MembershipView<'a> = MembershipSource<'a>;

/// Collects binding indices without allocating, up to a limit.
pub(super) trait HitSink {
    fn push(&mut self, binding: u32);
}

struct HitBuf {
    ids: [u32; 256],
    len: usize,
    overflow: bool,
}

impl HitSink for HitBuf {
    #[inline]
    fn push(&mut self, binding: u32) {
        if self.len < self.ids.len() {
            self.ids[self.len] = binding;
            self.len += 1;
        } else {
            self.overflow = true;
        }
    }
}

impl HitSink for Vec<u32> {
    fn push(&mut self, binding: u32) {
        Vec::push(self, binding);
    }
}

/// Why group membership that could decide the request is unknown: a lookup that
/// failed (transient: [`Reason::GroupMembershipUnavailable`]), or a token that does not
/// list it with nobody resolving it (permanent until configured otherwise:
/// [`Reason::GroupMembershipUnknown`]).
fn membership_unknown(principal: &Principal, membership: MembershipSource<'_>) -> Reason {
    match membership {
        MembershipSource::Unavailable => Reason::GroupMembershipUnavailable,
        MembershipSource::FromToken | MembershipSource::Resolved(_) => {
            Reason::GroupMembershipUnknown {
                overage: matches!(principal.groups(), TokenGroups::Overage),
            }
        }
    }
}

/// The outcome of role collection.
pub(super) struct Collected {
    /// Group membership was unknown and matters under `on_group_overage = "deny"`.
    pub(super) groups_unknown: bool,
    /// Group membership was unknown (whatever the setting).
    pub(super) groups_missing: bool,
}

impl CompiledPolicy {
    /// Decides whether `principal` may perform `action` on `resource`, taking group
    /// membership from the token.
    ///
    /// Infallible: malformed input becomes a deny with a reason. An invalid *token* is
    /// not this function's business: it must have been rejected before a [`Principal`]
    /// existed.
    pub fn decide(&self, principal: &Principal, action: &str, resource: &str) -> Decision {
        self.decide_with(principal, MembershipSource::FromToken, action, resource)
    }

    /// Like [`decide`](Self::decide), with group membership from `membership` (for group
    /// overage: pass what Microsoft Graph resolved).
    pub fn decide_with(
        &self,
        principal: &Principal,
        membership: MembershipSource<'_>,
        action: &str,
        resource: &str,
    ) -> Decision {
        self.decide_impl(principal, membership, action, resource, Clock(None))
    }

    /// Like [`decide_with`](Self::decide_with) at the given time (seconds since the Unix
    /// epoch), which only `max_auth_age` requirements read: for tests and for replaying
    /// a decision.
    pub fn decide_at(
        &self,
        principal: &Principal,
        membership: MembershipSource<'_>,
        action: &str,
        resource: &str,
        now: u64,
    ) -> Decision {
        self.decide_impl(principal, membership, action, resource, Clock(Some(now)))
    }

    fn decide_impl(
        &self,
        principal: &Principal,
        membership: MembershipSource<'_>,
        action: &str,
        resource: &str,
        mut clock: Clock,
    ) -> Decision {
        let Some(a) = self.actions.get(action) else {
            return Decision::deny(action, resource, Reason::UnknownAction);
        };
        let mut buf = [""; MAX_SEGMENTS];
        let segs = match split_resource(resource, &mut buf) {
            Ok(n) => &buf[..n],
            Err(problem) => {
                return Decision::deny(action, resource, Reason::InvalidResource { problem });
            }
        };
        for rule in &self.deny {
            if rule.actions.contains(a)
                && rule.when.matches(principal)
                && rule
                    .patterns
                    .iter()
                    .any(|p| p.matches_segments(resource, segs))
            {
                let reason = Reason::DeniedByRule {
                    rule: rule.name[..].to_owned(),
                };
                return Decision::deny(action, resource, reason);
            }
        }
        if principal.kind() == PrincipalKind::User && !self.scopes_allow(principal, a) {
            let reason = Reason::OutsideScopes {
                scopes: principal.scopes().to_vec(),
            };
            return Decision::deny(action, resource, reason);
        }

        let class = class_of(principal);
        let mut buf = [0u64; MAX_ROLE_WORDS];
        let roles = &mut buf[..self.words()];
        let mut hits = HitBuf {
            ids: [0; 256],
            len: 0,
            overflow: false,
        };
        let collected = self.collect(principal, membership, class, roles, &mut hits);

        let Some((role, grant)) = self.find_grant(roles, a, resource, segs) else {
            let could = collected.groups_unknown
                && self
                    .find_grant(self.possible_group_roles(class), a, resource, segs)
                    .is_some();
            let reason = if could {
                membership_unknown(principal, membership)
            } else {
                Reason::NoRoleGrants
            };
            return Decision::deny(action, resource, reason);
        };

        // When groups are unknown, a conflict they could complete fails closed.
        let unknown = collected
            .groups_unknown
            .then(|| membership_unknown(principal, membership));
        if let Some(reason) = self.separation_of_duties(roles, unknown, class, a, resource, segs) {
            return Decision::deny(action, resource, reason);
        }

        // Without requirements in the policy this costs one branch.
        let (role, grant) = if self.has_requirements {
            match self.meet_requirements(principal, roles, a, resource, segs, &mut clock) {
                Ok(path) => path,
                Err(reason) => return Decision::deny(action, resource, reason),
            }
        } else {
            (role, grant)
        };

        let mut all = Vec::new();
        let recorded: &[u32] = if hits.overflow {
            let mut scratch = [0u64; MAX_ROLE_WORDS];
            self.collect(
                principal,
                membership,
                class,
                &mut scratch[..self.words()],
                &mut all,
            );
            &all
        } else {
            &hits.ids[..hits.len]
        };
        Decision::allow(
            action,
            resource,
            self.matches(principal, recorded, role, grant),
        )
    }

    /// Finds a grant covering the request whose role and grant requirements hold, when
    /// every requirement rule covering the request holds too; otherwise the reason to
    /// refuse: a failure no step-up can fix when every path has one, else the first
    /// step-up.
    fn meet_requirements(
        &self,
        p: &Principal,
        roles: &[u64],
        action: u16,
        resource: &str,
        segs: &[&str],
        clock: &mut Clock,
    ) -> Result<(usize, usize), Reason> {
        let mfa = self.mfa_auth_context.as_deref();
        let mut rules: Option<Unmet<'_>> = None;
        for rule in &self.requirement_rules {
            if rule.actions.contains(action)
                && rule
                    .patterns
                    .iter()
                    .any(|q| q.matches_segments(resource, segs))
            {
                rules = Unmet::worst(rules, rule.requires.check(p, mfa, clock));
            }
        }
        if let Some(unmet @ Unmet::NotMet { .. }) = rules {
            // No path can make up for it.
            return Err(unmet_reason(p, unmet));
        }
        let mut best: Option<Unmet<'_>> = None;
        let mut found = None;
        self.for_each_grant(roles, action, resource, segs, |r, g| {
            let role = &self.roles[r];
            let path = Unmet::worst(
                role.requires.as_ref().and_then(|q| q.check(p, mfa, clock)),
                role.grants[g]
                    .requires
                    .as_ref()
                    .and_then(|q| q.check(p, mfa, clock)),
            );
            match Unmet::worst(rules.clone(), path) {
                None => {
                    found = Some((r, g));
                    true
                }
                Some(unmet) => {
                    let better = match &best {
                        None => true,
                        Some(Unmet::NotMet { .. }) => matches!(unmet, Unmet::StepUp { .. }),
                        Some(Unmet::StepUp { .. }) => false,
                    };
                    if better {
                        best = Some(unmet);
                    }
                    false
                }
            }
        });
        match (found, best) {
            (Some(path), _) => Ok(path),
            (None, Some(unmet)) => Err(unmet_reason(p, unmet)),
            (None, None) => unreachable!("called after a grant was found"),
        }
    }

    /// Calls `f` with every grant (by role name, then grant order) of a role in `roles`
    /// that covers the request, until it returns true.
    #[inline]
    fn for_each_grant(
        &self,
        roles: &[u64],
        action: u16,
        resource: &str,
        segs: &[&str],
        mut f: impl FnMut(usize, usize) -> bool,
    ) {
        let by_action = self.roles_granting(action);
        for (w, (held, granting)) in roles.iter().zip(by_action).enumerate() {
            let mut bits = held & granting;
            while bits != 0 {
                let r = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                for (g, grant) in self.roles[r].grants.iter().enumerate() {
                    if grant.matches(action, resource, segs) && f(r, g) {
                        return;
                    }
                }
            }
        }
    }

    /// Names the caller's bindings that lead to `role`, in policy order.
    fn matches(
        &self,
        principal: &Principal,
        recorded: &[u32],
        role: usize,
        grant: usize,
    ) -> Vec<Match> {
        let class = class_of(principal);
        let grant_label = &self.roles[role].grants[grant].label;
        let mut matched = Vec::new();
        for &b in self.bindings_holding(role) {
            let binding = &self.bindings[b as usize];
            if binding.admits & (1 << class) == 0
                || !recorded.contains(&self.binding_hit_key[b as usize])
            {
                continue;
            }
            // A qualified claim binding matched because it trusts the caller's tenant.
            let tenant = binding.tenants.as_ref().map(|_| principal.tenant().clone());
            for r in binding.roles.iter() {
                if has_bit(self.closure_of(*r), role) {
                    matched.push(Match {
                        binding: binding.label[..].to_owned(),
                        role: self.roles[usize::from(*r)].name[..].to_owned(),
                        grant: grant_label[..].to_owned(),
                        tenant: tenant.clone(),
                    });
                }
            }
        }
        matched
    }

    #[inline]
    fn scopes_allow(&self, principal: &Principal, action: u16) -> bool {
        !self.scopes.is_empty()
            && principal.scopes().iter().any(|s| {
                self.scopes
                    .get(s.as_str())
                    .is_some_and(|c| c.contains(action))
            })
    }

    /// Sets the roles of every binding that matches the caller, and records the bindings.
    pub(super) fn collect<S: HitSink>(
        &self,
        p: &Principal,
        membership: MembershipSource<'_>,
        class: u8,
        roles: &mut [u64],
        hits: &mut S,
    ) -> Collected {
        let bit = 1u8 << class;
        let mut take = |list: &[u32], check: &dyn Fn(&Binding) -> bool| {
            for &b in list {
                let binding = &self.bindings[b as usize];
                if binding.admits & bit != 0 && check(binding) {
                    for r in binding.closure.iter() {
                        set_bit(roles, usize::from(*r));
                    }
                    hits.push(b);
                }
            }
        };
        let any = |_: &Binding| true;
        // Claim values (`wids`, `roles`) are set by the issuing tenant's administrators:
        // a binding trusts only the tenants it names.
        let issuer_trusted = |b: &Binding| b.trusts_issuer(p);
        if !self.tenants.is_empty()
            && let Some(list) = self.tenants.get(p.tenant().as_str())
        {
            take(list, &any);
        }
        if !self.principals.is_empty()
            && let Some(list) = self.principals.get(p.object_id().as_str())
        {
            // Object ids are per tenant: the tenant must match too.
            take(
                list,
                &|b| matches!(&b.subject, Subject::Principal(id) if id == p.id()),
            );
        }
        if !self.directory_roles.is_empty() {
            for w in p.directory_roles() {
                if let Some(list) = self.directory_roles.get(w.as_str()) {
                    take(list, &issuer_trusted);
                }
            }
        }
        // The `roles` claim holds app roles in user tokens and app permissions in
        // app-only tokens: each is looked up only in its own table.
        let claim_table = match p.kind() {
            PrincipalKind::User => &self.app_roles,
            PrincipalKind::Application => &self.app_permissions,
        };
        if !claim_table.is_empty() {
            for v in p.roles() {
                if let Some(list) = claim_table.get(v.as_str()) {
                    take(list, &issuer_trusted);
                }
            }
        }
        let groups = match membership {
            MembershipSource::FromToken => match p.groups() {
                TokenGroups::Listed(g) => Some(g.as_slice()),
                TokenGroups::Overage | TokenGroups::NotEmitted => None,
            },
            MembershipSource::Resolved(g) => Some(g),
            MembershipSource::Unavailable => None,
        };
        let relevant = self.groups_matter(class);
        match groups {
            Some(groups) if relevant => {
                for g in groups {
                    if let Some(ix) = self.groups.get_guid(g.as_bytes()) {
                        let conferred = self.roles_of_group(ix, class);
                        if !conferred.is_empty() {
                            for r in conferred {
                                set_bit(roles, usize::from(*r));
                            }
                            hits.push(GROUP_HIT | ix);
                        }
                    }
                }
                Collected {
                    groups_unknown: false,
                    groups_missing: false,
                }
            }
            Some(_) => Collected {
                groups_unknown: false,
                groups_missing: false,
            },
            None => Collected {
                groups_unknown: relevant && self.on_group_overage == OnGroupOverage::Deny,
                groups_missing: true,
            },
        }
    }

    /// The first grant (by role name, then grant order) of a role in `roles` that covers
    /// the request.
    #[inline]
    fn find_grant(
        &self,
        roles: &[u64],
        action: u16,
        resource: &str,
        segs: &[&str],
    ) -> Option<(usize, usize)> {
        let mut first = None;
        self.for_each_grant(roles, action, resource, segs, |r, g| {
            first = Some((r, g));
            true
        });
        first
    }

    fn separation_of_duties(
        &self,
        roles: &[u64],
        groups_unknown: Option<Reason>,
        class: u8,
        action: u16,
        resource: &str,
        segs: &[&str],
    ) -> Option<Reason> {
        if self.sod.is_empty() {
            return None;
        }
        let covers = |s: &SeparationOfDuties| {
            (s.sides[0].contains(action) || s.sides[1].contains(action))
                && s.patterns
                    .iter()
                    .any(|p| p.matches_segments(resource, segs))
        };
        for s in self.sod.iter().filter(|s| covers(s)) {
            if intersects(roles, &s.holds[0]) && intersects(roles, &s.holds[1]) {
                return Some(Reason::SeparationOfDuties {
                    rule: s.name[..].to_owned(),
                });
            }
        }
        if let Some(unknown) = groups_unknown {
            // Unknown groups could complete a conflict: fail closed.
            let group_roles = self.possible_group_roles(class);
            let mut possible = [0u64; MAX_ROLE_WORDS];
            let possible = &mut possible[..self.words()];
            for ((p, r), g) in possible.iter_mut().zip(roles).zip(group_roles.iter()) {
                *p = r | g;
            }
            if self
                .sod
                .iter()
                .filter(|s| covers(s))
                .any(|s| intersects(possible, &s.holds[0]) && intersects(possible, &s.holds[1]))
            {
                return Some(unknown);
            }
        }
        None
    }

    /// True when deciding for `principal` could depend on groups its token does not list
    /// (overage or no `groups` claim): resolve them and use
    /// [`decide_with`](Self::decide_with).
    pub fn needs_group_resolution(&self, principal: &Principal) -> bool {
        !matches!(principal.groups(), TokenGroups::Listed(_))
            && self.groups_matter(class_of(principal))
    }
}

/// The refusal for an unmet requirement: a step-up only for clients that can answer a
/// claims challenge (`cp1`).
fn unmet_reason(p: &Principal, unmet: Unmet<'_>) -> Reason {
    match unmet {
        Unmet::StepUp {
            requirement,
            auth_context,
        } if p.can_handle_claims_challenge() => Reason::StepUpRequired {
            requirement: requirement.to_owned(),
            auth_context: auth_context.to_owned(),
            claims: crate::decision::auth_context_claims(auth_context),
        },
        Unmet::StepUp {
            requirement,
            auth_context,
        } => Reason::StepUpNotPossible {
            requirement: requirement.to_owned(),
            auth_context: auth_context.to_owned(),
        },
        Unmet::NotMet {
            requirement,
            detail,
        } => Reason::RequirementNotMet {
            requirement: requirement.to_owned(),
            detail,
        },
    }
}
