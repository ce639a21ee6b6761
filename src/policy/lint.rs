//! [`Policy::lint`](super::Policy::lint): warnings about policies that load but are
//! probably not what their author meant, or not least privilege.
//!
//! Lints never change a decision. Each warning has a stable [`LintCode`], the key path of
//! the offending entry and a message.

use std::fmt;

use serde::Serialize;

use super::compile::key;
use super::compiled::{CompiledPolicy, has_bit, set_bit};
use super::model::{BindingDef, PolicyDocument};

/// What a lint warning is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LintCode {
    /// A grant of every action on every resource.
    AllActionsOnAllResources,
    /// A wildcard action (`*` or `family.*`) on a pattern whose first segment is a
    /// wildcard, i.e. not confined to one collection.
    WildcardActionOnUnboundedResource,
    /// A role that no binding confers, directly or through includes.
    UnusedRole,
    /// A binding to a single principal; groups are easier to review and revoke.
    SinglePrincipalBinding,
    /// A scope whose ceiling is `*`: it does not limit delegated calls at all.
    ScopeWithoutCeiling,
    /// A scope whose ceiling is empty: delegated calls with it alone are always denied.
    EmptyScopeCeiling,
    /// No scope ceilings while bindings admit users: every delegated call is denied.
    NoScopeCeilings,
    /// Some combination of bindings (group memberships, app roles, …) gives one principal
    /// both sides of a separation-of-duty rule.
    SeparationOfDutiesReachable,
    /// A grant every request of which is denied by an unconditional deny rule.
    ShadowedGrant,
    /// A claim-value binding (`app_role`, `app_permission`, `directory_role`) without
    /// `tenants`: it trusts the values of whichever tenant issued the token, and a
    /// governor that accepts several tenants refuses the policy.
    ClaimBindingWithoutTenants,
    /// In multi-tenant use, a binding with `guests = true`: it admits the guests of every
    /// accepted tenant, whom that tenant's administrators invite.
    GuestsAcrossTenants,
}

/// How many tenants the policy will serve, for [`Policy::lint_for`](super::Policy::lint_for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TenantScope {
    /// A governor that accepts exactly one tenant: unqualified claim bindings mean it.
    Single,
    /// A governor that accepts an allow-list of tenants, or any tenant.
    Multiple,
}

impl LintCode {
    /// The code as a snake_case string.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AllActionsOnAllResources => "all_actions_on_all_resources",
            Self::WildcardActionOnUnboundedResource => "wildcard_action_on_unbounded_resource",
            Self::UnusedRole => "unused_role",
            Self::SinglePrincipalBinding => "single_principal_binding",
            Self::ScopeWithoutCeiling => "scope_without_ceiling",
            Self::EmptyScopeCeiling => "empty_scope_ceiling",
            Self::NoScopeCeilings => "no_scope_ceilings",
            Self::SeparationOfDutiesReachable => "separation_of_duties_reachable",
            Self::ShadowedGrant => "shadowed_grant",
            Self::ClaimBindingWithoutTenants => "claim_binding_without_tenants",
            Self::GuestsAcrossTenants => "guests_across_tenants",
        }
    }
}

/// One lint warning.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LintWarning {
    /// What it is about.
    pub code: LintCode,
    /// The key path of the entry (`roles.admin.grants[0]`).
    pub key_path: String,
    /// A sentence for the policy author.
    pub message: String,
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}]",
            self.key_path,
            self.message,
            self.code.as_str()
        )
    }
}

/// All warnings for one policy, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LintReport {
    /// The warnings.
    pub warnings: Vec<LintWarning>,
}

impl LintReport {
    /// True when there is nothing to report.
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }

    /// The warnings with a given code.
    pub fn with_code(&self, code: LintCode) -> impl Iterator<Item = &LintWarning> {
        self.warnings.iter().filter(move |w| w.code == code)
    }
}

impl fmt::Display for LintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

fn is_wildcard_spec(spec: &str) -> bool {
    spec == "*" || spec.ends_with(".*")
}

/// Can one caller match both bindings? Different tenants or different principals
/// cannot; app roles need a user, app permissions an application.
fn compatible(a: &BindingDef, ma: u8, b: &BindingDef, mb: u8) -> bool {
    if ma & mb == 0 {
        return false;
    }
    // The tenants whose callers can match: a tenant or principal binding names one, a
    // qualified claim binding lists them; `None` is any tenant.
    let tenants_of = |x: &BindingDef| -> Option<Vec<String>> {
        let one = x
            .tenant
            .as_deref()
            .or(x.principal.as_ref().map(|p| p.tenant.as_str()));
        match (one, &x.tenants) {
            (Some(t), _) => Some(vec![t.to_ascii_lowercase()]),
            (None, Some(list)) => Some(list.iter().map(|t| t.to_ascii_lowercase()).collect()),
            (None, None) => None,
        }
    };
    if let (Some(x), Some(y)) = (tenants_of(a), tenants_of(b))
        && !x.iter().any(|t| y.contains(t))
    {
        return false;
    }
    if let (Some(x), Some(y)) = (&a.principal, &b.principal)
        && !x.object.eq_ignore_ascii_case(&y.object)
    {
        return false;
    }
    true
}

/// Tenant trust: claim bindings without `tenants` (unless the scope is one tenant), and
/// guest bindings when several tenants are served.
fn lint_tenant_trust(
    doc: &PolicyDocument,
    c: &CompiledPolicy,
    scope: Option<TenantScope>,
    warn: &mut impl FnMut(LintCode, String, String),
) {
    if scope != Some(TenantScope::Single) {
        for u in &c.unqualified_claim_bindings {
            warn(
                LintCode::ClaimBindingWithoutTenants,
                u.key_path.clone(),
                format!(
                    "binding {} trusts the claim value whatever tenant issued the token, and \
                     every tenant's administrators set their own: add tenants = [\"<tenant id>\"] \
                     (a governor accepting several tenants refuses it)",
                    u.label.escape_debug()
                ),
            );
        }
    }
    if scope == Some(TenantScope::Multiple) {
        for (i, _) in doc.bindings.iter().enumerate().filter(|(_, b)| b.guests) {
            warn(
                LintCode::GuestsAcrossTenants,
                format!("bindings[{i}]"),
                format!(
                    "binding {} admits guests, and in a multi-tenant API that is the guests \
                     of every accepted tenant, invited by its own administrators",
                    c.bindings[i].label.escape_debug()
                ),
            );
        }
    }
}

pub(crate) fn lint(
    doc: &PolicyDocument,
    c: &CompiledPolicy,
    scope: Option<TenantScope>,
) -> LintReport {
    let mut out = Vec::new();
    let mut warn = |code, key_path: String, message: String| {
        out.push(LintWarning {
            code,
            key_path,
            message,
        })
    };
    lint_grants(doc, c, &mut warn);
    lint_unused_roles(c, &mut warn);
    lint_single_principal_bindings(doc, c, &mut warn);
    lint_scopes(doc, c, &mut warn);
    lint_tenant_trust(doc, c, scope, &mut warn);
    lint_separation_of_duties(doc, c, &mut warn);
    LintReport { warnings: out }
}

/// Grants of every action on everything, wildcard actions on unbounded resources, and
/// grants a deny rule for everyone covers entirely.
fn lint_grants(
    doc: &PolicyDocument,
    c: &CompiledPolicy,
    warn: &mut impl FnMut(LintCode, String, String),
) {
    let all_actions = c.actions.all();

    // Grants.
    for ((name, def), role) in doc.roles.iter().zip(&c.roles) {
        for (gi, (gdef, g)) in def.grants.iter().zip(&role.grants).enumerate() {
            let path = format!("roles.{}.grants[{gi}]", key(name));
            let everything = g.patterns.iter().any(|p| p.is_everything());
            if g.actions == all_actions && everything {
                warn(
                    LintCode::AllActionsOnAllResources,
                    path.clone(),
                    format!("role {name} grants every action on every resource"),
                );
            } else if gdef.actions.iter().any(|s| is_wildcard_spec(s)) {
                for p in g.patterns.iter().filter(|p| p.is_unbounded()) {
                    warn(
                        LintCode::WildcardActionOnUnboundedResource,
                        path.clone(),
                        format!(
                            "role {name} grants wildcard actions on {p}, which is not confined \
                             to one collection"
                        ),
                    );
                }
            }
            for d in c.deny.iter().filter(|d| d.when.is_everyone()) {
                let covered = g.actions.is_subset(&d.actions)
                    && g.patterns
                        .iter()
                        .all(|p| d.patterns.iter().any(|q| q.subsumes(p)));
                if covered {
                    warn(
                        LintCode::ShadowedGrant,
                        path.clone(),
                        format!(
                            "grant {} is entirely denied by rule {}, for everyone",
                            g.label, d.name
                        ),
                    );
                }
            }
        }
    }
}

/// Roles no binding confers, directly or through includes.
fn lint_unused_roles(c: &CompiledPolicy, warn: &mut impl FnMut(LintCode, String, String)) {
    let mut used = vec![0u64; c.words()];
    for b in &c.bindings {
        for r in b.closure.iter() {
            set_bit(&mut used, usize::from(*r));
        }
    }
    for (r, role) in c.roles.iter().enumerate() {
        if !has_bit(&used, r) {
            warn(
                LintCode::UnusedRole,
                format!("roles.{}", key(&role.name)),
                format!(
                    "role {} is not conferred by any binding, directly or through includes",
                    role.name
                ),
            );
        }
    }
}

/// Bindings to one principal, which access reviews and revocation cannot see.
fn lint_single_principal_bindings(
    doc: &PolicyDocument,
    c: &CompiledPolicy,
    warn: &mut impl FnMut(LintCode, String, String),
) {
    for (i, b) in doc.bindings.iter().enumerate() {
        if b.principal.is_some() {
            warn(
                LintCode::SinglePrincipalBinding,
                format!("bindings[{i}]"),
                format!(
                    "binding {} names a single principal; prefer a group, which access \
                     reviews and revocation can see",
                    c.bindings[i].label
                ),
            );
        }
    }
}

/// Scope ceilings that set no ceiling or allow nothing, and their absence.
fn lint_scopes(
    doc: &PolicyDocument,
    c: &CompiledPolicy,
    warn: &mut impl FnMut(LintCode, String, String),
) {
    for (name, specs) in &doc.scopes {
        let path = format!("scopes.{}", key(name));
        if specs.iter().any(|s| s == "*") {
            warn(
                LintCode::ScopeWithoutCeiling,
                path,
                format!("scope {name} allows every action: it sets no ceiling"),
            );
        } else if specs.is_empty() {
            warn(
                LintCode::EmptyScopeCeiling,
                path,
                format!("scope {name} allows no action"),
            );
        }
    }
    let admits_users = c.bindings.iter().any(|b| b.admits & 0b11 != 0);
    if doc.scopes.is_empty() && admits_users {
        warn(
            LintCode::NoScopeCeilings,
            "scopes".to_owned(),
            "no scope ceilings are defined: every delegated (user) call will be denied".to_owned(),
        );
    }
}

/// Separation-of-duty rules reachable through some combination of bindings.
fn lint_separation_of_duties(
    doc: &PolicyDocument,
    c: &CompiledPolicy,
    warn: &mut impl FnMut(LintCode, String, String),
) {
    for (si, s) in c.sod.iter().enumerate() {
        let gives = |side: usize| -> Vec<usize> {
            (0..c.bindings.len())
                .filter(|b| {
                    c.bindings[*b]
                        .closure
                        .iter()
                        .any(|r| has_bit(&s.holds[side], usize::from(*r)))
                })
                .collect()
        };
        let (first, second) = (gives(0), gives(1));
        let pair = first.iter().find_map(|&x| {
            second
                .iter()
                .find(|&&y| {
                    compatible(
                        &doc.bindings[x],
                        c.bindings[x].admits,
                        &doc.bindings[y],
                        c.bindings[y].admits,
                    )
                })
                .map(|&y| (x, y))
        });
        if let Some((x, y)) = pair {
            let how = if x == y {
                format!("binding {} alone", c.bindings[x].label)
            } else {
                format!(
                    "bindings {} and {} together",
                    c.bindings[x].label, c.bindings[y].label
                )
            };
            warn(
                LintCode::SeparationOfDutiesReachable,
                format!("separation_of_duties[{si}]"),
                format!(
                    "{how} give both sides of {}; such callers are denied both",
                    s.name
                ),
            );
        }
    }
}
