//! Validation and compilation: a [`PolicyDocument`] becomes a [`CompiledPolicy`] of lookup
//! tables, or a [`PolicyError`] naming the key path of the first mistake.
//!
//! Everything that can be wrong with a policy is found here, so that evaluation never
//! fails: role names resolve to indices, actions to bitsets, patterns to matchers, group
//! ids to a hash table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crate::ids::{GroupId, ObjectId, PrincipalId, TenantId};
use crate::principal::{GuestStatus, Principal, PrincipalKind};

use super::action::{ActionSet, ActionTable, BUILTIN_ACTIONS, MAX_ACTIONS, SpecError};
use super::error::{PolicyError, PolicyErrorKind};
use super::ident::{IdentKind, check_identifier};
use super::model::{
    BindingDef, DenyDef, GrantDef, KindDef, OnGroupOverage, POLICY_FORMAT_VERSION, PolicyDocument,
    RequirementRuleDef, SeparationOfDutiesDef, WhenDef,
};
use super::pattern::Pattern;
use super::requirement::{CRequires, compile_requires};
use crate::fast_hash::{FastBuildHasher, GuidTable};

/// The largest number of roles one policy may define.
pub const MAX_ROLES: usize = 4096;
pub(crate) const MAX_ROLE_WORDS: usize = MAX_ROLES / 64;
/// Marks a recorded hit that is a group entry (all of its admitting bindings) rather
/// than one binding.
pub(crate) const GROUP_HIT: u32 = 1 << 31;
/// The largest number of bindings one policy may define.
pub const MAX_BINDINGS: usize = 1 << 24;

pub(crate) type FastMap<V> = HashMap<Box<str>, V, FastBuildHasher>;

/// A compiled, immutable policy: the fast, infallible decision core.
///
/// Cheap to share (`Arc<CompiledPolicy>`), `Send + Sync`. Build one with
/// [`Policy::compiled`](super::Policy::compiled); decide with
/// [`decide`](CompiledPolicy::decide).
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) version_hash: String,
    pub(crate) on_group_overage: OnGroupOverage,
    pub(crate) actions: ActionTable,
    pub(crate) roles: Vec<CRole>,
    /// `u64` words in one role set.
    pub(crate) words: usize,
    /// Per role: the roles it includes, transitively, itself included (`words` each).
    pub(crate) role_closure: Box<[u64]>,
    /// Per action: the roles whose own grants mention it (`words` each).
    pub(crate) roles_by_action: Box<[u64]>,
    pub(crate) bindings: Vec<CBinding>,
    /// Per role: (start, len) in `bindings_by_role_ids` of the bindings whose closure
    /// holds the role, in policy order (to name them in an allow).
    pub(crate) bindings_by_role: Box<[(u32, u32)]>,
    pub(crate) bindings_by_role_ids: Box<[u32]>,
    /// Per binding: the value a decision records when the binding matches (the binding
    /// index, or `GROUP_HIT | group entry` for group bindings).
    pub(crate) binding_hit_key: Box<[u32]>,
    /// Group id -> index in `group_entries`.
    pub(crate) groups: GuidTable,
    pub(crate) group_entries: Box<[GroupEntry]>,
    /// Role lists referenced by `GroupEntry::roles`.
    pub(crate) group_roles: Box<[u16]>,
    /// Binding lists referenced by `GroupEntry::bindings`.
    pub(crate) group_binding_ids: Box<[u32]>,
    /// Per admission class: every role some group binding could confer.
    pub(crate) group_roles_by_class: [Box<[u64]>; 4],
    /// Admission classes some group binding admits.
    pub(crate) group_classes: u8,
    pub(crate) app_roles: FastMap<Box<[u32]>>,
    pub(crate) app_permissions: FastMap<Box<[u32]>>,
    pub(crate) directory_roles: FastMap<Box<[u32]>>,
    pub(crate) tenants: FastMap<Box<[u32]>>,
    pub(crate) principals: FastMap<Box<[u32]>>,
    pub(crate) scopes: FastMap<ActionSet>,
    pub(crate) deny: Vec<CDeny>,
    pub(crate) sod: Vec<CSod>,
    pub(crate) bound_group_ids: Vec<GroupId>,
    /// The authentication context that proves (and steps up to) MFA.
    pub(crate) mfa_auth_context: Option<Box<str>>,
    /// `[[requirements]]` rules.
    pub(crate) requirement_rules: Vec<CRequirementRule>,
    /// Some role, grant or rule has requirements: without any, a decision never looks.
    pub(crate) has_requirements: bool,
    /// Claim-value bindings without a `tenants` qualifier, in policy order.
    pub(crate) unqualified_claim_bindings: Vec<UnqualifiedBinding>,
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
pub(crate) struct CRequirementRule {
    pub(crate) actions: ActionSet,
    pub(crate) patterns: Box<[Pattern]>,
    pub(crate) requires: CRequires,
}

/// What one bound group confers: precomputed so that a token group costs one lookup and
/// a few bit sets.
#[derive(Debug)]
pub(crate) struct GroupEntry {
    /// Per admission class: (start, len) in `group_roles` of the roles (closures
    /// included) of the group's bindings that admit the class.
    pub(crate) roles: [(u32, u32); 4],
    /// (start, len) in `group_binding_ids` of the group's bindings.
    pub(crate) bindings: (u32, u32),
}

#[derive(Debug)]
pub(crate) struct CRole {
    pub(crate) name: Box<str>,
    pub(crate) grants: Vec<CGrant>,
    pub(crate) includes: Vec<u16>,
    /// Requirements on every use of the role's own grants.
    pub(crate) requires: Option<CRequires>,
}

#[derive(Debug)]
pub(crate) struct CGrant {
    pub(crate) label: Box<str>,
    pub(crate) actions: ActionSet,
    pub(crate) patterns: Box<[Pattern]>,
    pub(crate) requires: Option<CRequires>,
}

impl CGrant {
    #[inline]
    pub(crate) fn matches(&self, action: u16, whole: &str, segs: &[&str]) -> bool {
        self.actions.contains(action)
            && self
                .patterns
                .iter()
                .any(|p| p.matches_segments(whole, segs))
    }
}

#[derive(Debug)]
pub(crate) enum Subject {
    Group,
    Claim,
    DirectoryRole,
    Tenant(TenantId),
    Principal(PrincipalId),
}

#[derive(Debug)]
pub(crate) struct CBinding {
    pub(crate) label: Box<str>,
    pub(crate) subject: Subject,
    /// The roles the binding names.
    pub(crate) roles: Box<[u16]>,
    /// Those roles and every role they include.
    pub(crate) closure: Box<[u16]>,
    /// Admission classes (see [`class_of`]).
    pub(crate) admits: u8,
    /// For claim-value subjects: the issuing tenants whose values the binding trusts
    /// (`tenants = [...]`); `None` when unqualified.
    pub(crate) tenants: Option<Box<[TenantId]>>,
}

impl CBinding {
    /// Whether the binding trusts claim values issued by the caller's tenant: always for
    /// object-id subjects and unqualified bindings (which only a single-tenant governor
    /// accepts), else only for the tenants it names.
    #[inline]
    pub(crate) fn trusts_issuer(&self, p: &Principal) -> bool {
        self.tenants
            .as_ref()
            .is_none_or(|ts| ts.contains(p.tenant()))
    }
}

/// Admission class of a caller: bit 0 guest, bit 1 application.
#[inline]
pub(crate) fn class_of(p: &Principal) -> u8 {
    u8::from(p.is_guest()) | (u8::from(p.kind() == PrincipalKind::Application) << 1)
}

fn class_mask(kinds: &[KindDef], guests: bool) -> u8 {
    let mut mask = 0;
    for k in kinds {
        let base = match k {
            KindDef::User => 0,
            KindDef::Application => 2,
        };
        mask |= 1 << base;
        if guests {
            mask |= 1 << (base | 1);
        }
    }
    mask
}

#[derive(Debug, Default)]
pub(crate) struct CWhen {
    pub(crate) guest: Option<bool>,
    pub(crate) kind: Option<PrincipalKind>,
    pub(crate) tenant: Option<TenantId>,
    pub(crate) tenant_in: Option<Box<[TenantId]>>,
    pub(crate) tenant_not_in: Option<Box<[TenantId]>>,
}

impl CWhen {
    pub(crate) fn is_everyone(&self) -> bool {
        self.guest.is_none()
            && self.kind.is_none()
            && self.tenant.is_none()
            && self.tenant_in.is_none()
            && self.tenant_not_in.is_none()
    }

    #[inline]
    pub(crate) fn matches(&self, p: &Principal) -> bool {
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
pub(crate) struct CDeny {
    pub(crate) name: Box<str>,
    pub(crate) when: CWhen,
    /// `actions` minus `except_actions`.
    pub(crate) actions: ActionSet,
    pub(crate) patterns: Box<[Pattern]>,
}

#[derive(Debug)]
pub(crate) struct CSod {
    pub(crate) name: Box<str>,
    pub(crate) sides: [ActionSet; 2],
    pub(crate) patterns: Box<[Pattern]>,
    /// Per side: the roles whose own grants give that side on a covered resource.
    pub(crate) holds: [Box<[u64]>; 2],
}

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

fn err(path: impl Into<String>, kind: PolicyErrorKind) -> PolicyError {
    PolicyError::new(path, kind)
}

fn ident(path: &str, value: &str, kind: IdentKind) -> Result<(), PolicyError> {
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

fn guid<T>(
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

fn non_empty<T>(path: &str, list: &[T], what: &'static str) -> Result<(), PolicyError> {
    if list.is_empty() {
        return Err(err(path, PolicyErrorKind::Empty { what }));
    }
    Ok(())
}

fn action_specs(
    table: &ActionTable,
    path: &str,
    specs: &[String],
    allow_star: bool,
) -> Result<ActionSet, PolicyError> {
    let mut set = ActionSet::EMPTY;
    let mut seen = HashSet::new();
    for (i, spec) in specs.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if !seen.insert(spec.as_str()) {
            return Err(err(
                path,
                PolicyErrorKind::Duplicate {
                    what: "action",
                    name: spec.clone(),
                },
            ));
        }
        if spec == "*" && !allow_star {
            return Err(err(
                path,
                PolicyErrorKind::MalformedAction {
                    action: spec.clone(),
                    expected: "family.verb or family.*",
                },
            ));
        }
        let resolved = table.resolve(spec).map_err(|e| {
            let kind = match e {
                SpecError::Malformed(expected) => PolicyErrorKind::MalformedAction {
                    action: spec.clone(),
                    expected,
                },
                SpecError::UnknownAction => PolicyErrorKind::UnknownAction {
                    action: spec.clone(),
                },
                SpecError::UnknownFamily => {
                    PolicyErrorKind::UnknownActionFamily { spec: spec.clone() }
                }
            };
            err(&path, kind)
        })?;
        set = set.union(&resolved);
    }
    Ok(set)
}

fn patterns(path: &str, list: &[String]) -> Result<Box<[Pattern]>, PolicyError> {
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

fn tenant_list(path: &str, list: &[String]) -> Result<Box<[TenantId]>, PolicyError> {
    non_empty(path, list, "tenant list")?;
    list.iter()
        .enumerate()
        .map(|(i, t)| guid(&format!("{path}[{i}]"), t, "tenant id", TenantId::parse))
        .collect()
}

fn role_refs(
    path: &str,
    names: &[String],
    index: &BTreeMap<&str, u16>,
) -> Result<Vec<u16>, PolicyError> {
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let r = *index
            .get(name.as_str())
            .ok_or_else(|| err(&path, PolicyErrorKind::UnknownRole { name: name.clone() }))?;
        if out.contains(&r) {
            return Err(err(
                path,
                PolicyErrorKind::Duplicate {
                    what: "role",
                    name: name.clone(),
                },
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// Finds a cycle in the include graph, as role indices with the first repeated last.
fn find_cycle(includes: &[Vec<u16>]) -> Option<Vec<u16>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; includes.len()];
    for start in 0..includes.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (role, next child position).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (r, ref mut next)) = stack.last_mut() {
            if let Some(&child) = includes[r].get(*next) {
                *next += 1;
                let c = usize::from(child);
                match mark[c] {
                    Mark::Active => {
                        let from = stack.iter().position(|(x, _)| *x == c).expect("on stack");
                        let mut cycle: Vec<u16> =
                            stack[from..].iter().map(|(x, _)| *x as u16).collect();
                        cycle.push(child);
                        return Some(cycle);
                    }
                    Mark::New => {
                        mark[c] = Mark::Active;
                        stack.push((c, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[r] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

pub(crate) fn set_bit(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

#[inline]
pub(crate) fn has_bit(words: &[u64], i: usize) -> bool {
    words[i / 64] & (1 << (i % 64)) != 0
}

pub(crate) fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

/// Validates and compiles a document. `version_hash` identifies the source text.
pub(crate) fn compile(
    doc: &PolicyDocument,
    version_hash: String,
) -> Result<CompiledPolicy, PolicyError> {
    if doc.version != POLICY_FORMAT_VERSION {
        return Err(err(
            "version",
            PolicyErrorKind::UnsupportedVersion {
                found: doc.version,
                expected: POLICY_FORMAT_VERSION,
            },
        ));
    }

    // Actions.
    let mut names: Vec<&str> = BUILTIN_ACTIONS.to_vec();
    for (i, a) in doc.actions.custom.iter().enumerate() {
        let path = format!("actions.custom[{i}]");
        ident(&path, a, IdentKind::Token)?;
        if let Some(expected) = super::action::action_syntax_problem(a) {
            return Err(err(
                path,
                PolicyErrorKind::MalformedAction {
                    action: a.clone(),
                    expected,
                },
            ));
        }
        if names.contains(&a.as_str()) {
            return Err(err(
                path,
                PolicyErrorKind::Duplicate {
                    what: "action",
                    name: a.clone(),
                },
            ));
        }
        names.push(a);
    }
    if names.len() > MAX_ACTIONS {
        return Err(err(
            "actions.custom",
            PolicyErrorKind::TooMany {
                what: "actions",
                max: MAX_ACTIONS,
            },
        ));
    }
    let hasher = FastBuildHasher::new();
    let actions = ActionTable::new(names, hasher);
    let n_actions = actions.names().count();

    // Roles: names first, so that includes can refer forwards.
    if doc.roles.len() > MAX_ROLES {
        return Err(err(
            "roles",
            PolicyErrorKind::TooMany {
                what: "roles",
                max: MAX_ROLES,
            },
        ));
    }
    let mut role_index: BTreeMap<&str, u16> = BTreeMap::new();
    for (i, name) in doc.roles.keys().enumerate() {
        ident(&format!("roles.{}", key(name)), name, IdentKind::Name)?;
        role_index.insert(name, i as u16);
    }
    let mfa_auth_context = doc
        .mfa_auth_context
        .as_deref()
        .map(|c| super::requirement::auth_context("mfa_auth_context", c))
        .transpose()?;
    let mut has_requirements = false;
    let mut roles = Vec::with_capacity(doc.roles.len());
    for (name, def) in &doc.roles {
        let base = format!("roles.{}", key(name));
        let includes = role_refs(&format!("{base}.include"), &def.include, &role_index)?;
        let mut grants = Vec::with_capacity(def.grants.len());
        for (
            gi,
            GrantDef {
                actions: a,
                resources,
                requires,
            },
        ) in def.grants.iter().enumerate()
        {
            let gpath = format!("{base}.grants[{gi}]");
            non_empty(&format!("{gpath}.actions"), a, "actions")?;
            let label = format!("{name}#{gi}");
            let requires = requires
                .as_ref()
                .map(|r| {
                    compile_requires(&format!("{gpath}.requires"), format!("grant:{label}"), r)
                })
                .transpose()?;
            has_requirements |= requires.is_some();
            grants.push(CGrant {
                label: label.into(),
                actions: action_specs(&actions, &format!("{gpath}.actions"), a, true)?,
                patterns: patterns(&format!("{gpath}.resources"), resources)?,
                requires,
            });
        }
        let requires = def
            .requires
            .as_ref()
            .map(|r| compile_requires(&format!("{base}.requires"), format!("role:{name}"), r))
            .transpose()?;
        has_requirements |= requires.is_some();
        roles.push(CRole {
            name: name.as_str().into(),
            grants,
            includes,
            requires,
        });
    }
    let include_lists: Vec<Vec<u16>> = roles.iter().map(|r| r.includes.clone()).collect();
    if let Some(cycle) = find_cycle(&include_lists) {
        let first = &roles[usize::from(cycle[0])].name;
        return Err(err(
            format!("roles.{}.include", key(first)),
            PolicyErrorKind::RoleCycle {
                cycle: cycle
                    .iter()
                    .map(|r| roles[usize::from(*r)].name.to_string())
                    .collect(),
            },
        ));
    }
    let words = roles.len().div_ceil(64).max(1);
    let mut role_closure = vec![0u64; roles.len() * words];
    for r in 0..roles.len() {
        let mut stack = vec![r as u16];
        let row = &mut role_closure[r * words..(r + 1) * words];
        while let Some(x) = stack.pop() {
            if !has_bit(row, usize::from(x)) {
                set_bit(row, usize::from(x));
                stack.extend(roles[usize::from(x)].includes.iter().copied());
            }
        }
    }
    let mut roles_by_action = vec![0u64; n_actions * words];
    for (r, role) in roles.iter().enumerate() {
        for g in &role.grants {
            for a in g.actions.iter().take_while(|a| usize::from(*a) < n_actions) {
                set_bit(
                    &mut roles_by_action[usize::from(a) * words..(usize::from(a) + 1) * words],
                    r,
                );
            }
        }
    }
    let closure_list = |r: u16| -> Vec<u16> {
        let row = &role_closure[usize::from(r) * words..(usize::from(r) + 1) * words];
        (0..roles.len())
            .filter(|i| has_bit(row, *i))
            .map(|i| i as u16)
            .collect()
    };

    // Bindings.
    if doc.bindings.len() >= MAX_BINDINGS {
        return Err(err(
            "bindings",
            PolicyErrorKind::TooMany {
                what: "bindings",
                max: MAX_BINDINGS,
            },
        ));
    }
    let mut bindings = Vec::with_capacity(doc.bindings.len());
    let mut by_group: BTreeMap<GroupId, Vec<u32>> = BTreeMap::new();
    let mut app_roles: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut app_permissions: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut directory_roles: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut tenants: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut principals: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut binding_names = HashSet::new();
    let mut unqualified_claim_bindings = Vec::new();
    for (bi, b) in doc.bindings.iter().enumerate() {
        let base = format!("bindings[{bi}]");
        let ix = bi as u32;
        let (label, subject, default_kinds, fixed_kind) = binding_subject(&base, b)?;
        let label = match &b.name {
            Some(name) => {
                ident(&format!("{base}.name"), name, IdentKind::Label)?;
                if !binding_names.insert(name.as_str()) {
                    return Err(err(
                        format!("{base}.name"),
                        PolicyErrorKind::Duplicate {
                            what: "binding name",
                            name: name.clone(),
                        },
                    ));
                }
                name.clone()
            }
            None => label,
        };
        let kinds: Vec<KindDef> = match (&b.kinds, fixed_kind) {
            (Some(_), Some(subject)) => {
                return Err(err(
                    format!("{base}.kinds"),
                    PolicyErrorKind::KindsNotAllowed { subject },
                ));
            }
            (Some(kinds), None) => {
                non_empty(&format!("{base}.kinds"), kinds, "kinds")?;
                let mut seen = Vec::new();
                for (ki, k) in kinds.iter().enumerate() {
                    if seen.contains(k) {
                        return Err(err(
                            format!("{base}.kinds[{ki}]"),
                            PolicyErrorKind::Duplicate {
                                what: "kind",
                                name: format!("{k:?}").to_lowercase(),
                            },
                        ));
                    }
                    seen.push(*k);
                }
                seen
            }
            (None, _) => default_kinds,
        };
        let qualifier = binding_tenants(&base, b, &subject)?;
        if qualifier.is_none() && matches!(subject, Subject::Claim | Subject::DirectoryRole) {
            unqualified_claim_bindings.push(UnqualifiedBinding {
                key_path: base.clone(),
                label: label.clone(),
            });
        }
        non_empty(&format!("{base}.roles"), &b.roles, "roles")?;
        let direct = role_refs(&format!("{base}.roles"), &b.roles, &role_index)?;
        let mut closure: Vec<u16> = direct.iter().flat_map(|r| closure_list(*r)).collect();
        closure.sort_unstable();
        closure.dedup();
        // Index the binding under its subject.
        match (&subject, b) {
            (Subject::Group, BindingDef { group: Some(g), .. }) => {
                let g = GroupId::parse(g).expect("checked by binding_subject");
                by_group.entry(g).or_default().push(ix);
            }
            (Subject::Claim, _) => {
                if let Some(v) = &b.app_role {
                    app_roles.entry(v.clone()).or_default().push(ix);
                }
                if let Some(v) = &b.app_permission {
                    app_permissions.entry(v.clone()).or_default().push(ix);
                }
            }
            (
                Subject::DirectoryRole,
                BindingDef {
                    directory_role: Some(w),
                    ..
                },
            ) => {
                directory_roles
                    .entry(w.to_ascii_lowercase())
                    .or_default()
                    .push(ix);
            }
            (Subject::Tenant(t), _) => tenants.entry(t.to_string()).or_default().push(ix),
            (Subject::Principal(p), _) => {
                principals.entry(p.object.to_string()).or_default().push(ix);
            }
            _ => unreachable!("binding_subject returns the subject it found"),
        }
        bindings.push(CBinding {
            label: label.into(),
            subject,
            roles: direct.into(),
            closure: closure.into(),
            admits: class_mask(&kinds, b.guests),
            tenants: qualifier,
        });
    }

    // Group table and what group bindings could add per admission class.
    let bound_group_ids: Vec<GroupId> = by_group.keys().cloned().collect();
    let group_keys: Vec<(&str, u32)> = bound_group_ids
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i as u32))
        .collect();
    let groups = GuidTable::new(&group_keys);
    let mut group_entries = Vec::with_capacity(bound_group_ids.len());
    let mut group_roles: Vec<u16> = Vec::new();
    let mut group_binding_ids: Vec<u32> = Vec::new();
    let mut group_roles_by_class: [Vec<u64>; 4] = std::array::from_fn(|_| vec![0; words]);
    let mut group_classes = 0u8;
    let mut binding_hit_key: Vec<u32> = (0..bindings.len() as u32).collect();
    for (entry, list) in by_group.into_values().enumerate() {
        for b in &list {
            binding_hit_key[*b as usize] = GROUP_HIT | entry as u32;
        }
        let span = (group_binding_ids.len() as u32, list.len() as u32);
        group_binding_ids.extend(&list);
        let roles = std::array::from_fn(|class| {
            let mut rs: Vec<u16> = list
                .iter()
                .map(|b| &bindings[*b as usize])
                .filter(|b| b.admits & (1 << class) != 0)
                .flat_map(|b| b.closure.iter().copied())
                .collect();
            rs.sort_unstable();
            rs.dedup();
            for r in &rs {
                set_bit(&mut group_roles_by_class[class], usize::from(*r));
            }
            let start = group_roles.len() as u32;
            group_roles.extend(&rs);
            (start, rs.len() as u32)
        });
        for b in &list {
            group_classes |= bindings[*b as usize].admits;
        }
        group_entries.push(GroupEntry {
            roles,
            bindings: span,
        });
    }

    let mut by_role: Vec<Vec<u32>> = vec![Vec::new(); roles.len()];
    for (b, binding) in bindings.iter().enumerate() {
        for r in binding.closure.iter() {
            by_role[usize::from(*r)].push(b as u32);
        }
    }
    let mut bindings_by_role = Vec::with_capacity(roles.len());
    let mut bindings_by_role_ids = Vec::new();
    for list in by_role {
        bindings_by_role.push((bindings_by_role_ids.len() as u32, list.len() as u32));
        bindings_by_role_ids.extend(list);
    }

    // Scope ceilings.
    let mut scopes = FastMap::with_capacity_and_hasher(doc.scopes.len(), hasher);
    for (name, specs) in &doc.scopes {
        let path = format!("scopes.{}", key(name));
        ident(&path, name, IdentKind::Token)?;
        scopes.insert(
            name.as_str().into(),
            action_specs(&actions, &path, specs, true)?,
        );
    }

    // Deny and separation-of-duty rules share one namespace of rule names.
    let mut rule_names = HashSet::new();
    let mut rule_name = |path: &str, name: &str| -> Result<(), PolicyError> {
        ident(path, name, IdentKind::Name)?;
        if !rule_names.insert(name.to_owned()) {
            return Err(err(
                path,
                PolicyErrorKind::Duplicate {
                    what: "rule name",
                    name: name.to_owned(),
                },
            ));
        }
        Ok(())
    };
    let mut deny = Vec::with_capacity(doc.deny.len());
    for (i, d) in doc.deny.iter().enumerate() {
        let base = format!("deny[{i}]");
        let DenyDef {
            name,
            when,
            actions: a,
            except_actions,
            resources,
            ..
        } = d;
        rule_name(&format!("{base}.name"), name)?;
        non_empty(&format!("{base}.actions"), a, "actions")?;
        let denied = action_specs(&actions, &format!("{base}.actions"), a, true)?;
        let except = action_specs(
            &actions,
            &format!("{base}.except_actions"),
            except_actions,
            true,
        )?;
        let effective = denied.minus(&except);
        if effective.is_empty() {
            return Err(err(
                format!("{base}.except_actions"),
                PolicyErrorKind::Empty {
                    what: "actions minus except_actions",
                },
            ));
        }
        deny.push(CDeny {
            name: name.as_str().into(),
            when: compile_when(&format!("{base}.when"), when.as_ref())?,
            actions: effective,
            patterns: patterns(&format!("{base}.resources"), resources)?,
        });
    }
    let mut sod = Vec::with_capacity(doc.separation_of_duties.len());
    for (i, s) in doc.separation_of_duties.iter().enumerate() {
        let base = format!("separation_of_duties[{i}]");
        let SeparationOfDutiesDef {
            name,
            actions: a,
            resources,
            ..
        } = s;
        rule_name(&format!("{base}.name"), name)?;
        let path = format!("{base}.actions");
        if a.len() != 2 {
            return Err(err(
                path,
                PolicyErrorKind::SeparationOfDutiesActions { found: a.len() },
            ));
        }
        let first = action_specs(&actions, &path, &a[..1], false)?;
        let second = action_specs(&actions, &path, &a[1..], false)?;
        if !first.intersect(&second).is_empty() {
            return Err(err(
                path,
                PolicyErrorKind::SeparationOfDutiesActions { found: 2 },
            ));
        }
        let pats = patterns(&format!("{base}.resources"), resources)?;
        let holds = [first, second].map(|side| {
            let mut set = vec![0u64; words];
            for (r, role) in roles.iter().enumerate() {
                let gives = role.grants.iter().any(|g| {
                    !g.actions.intersect(&side).is_empty()
                        && g.patterns
                            .iter()
                            .any(|p| pats.iter().any(|q| p.intersects(q)))
                });
                if gives {
                    set_bit(&mut set, r);
                }
            }
            set.into_boxed_slice()
        });
        sod.push(CSod {
            name: name.as_str().into(),
            sides: [first, second],
            patterns: pats,
            holds,
        });
    }

    let mut requirement_rules = Vec::with_capacity(doc.requirements.len());
    for (i, r) in doc.requirements.iter().enumerate() {
        let base = format!("requirements[{i}]");
        let RequirementRuleDef {
            name,
            actions: a,
            resources,
            requires,
            ..
        } = r;
        rule_name(&format!("{base}.name"), name)?;
        non_empty(&format!("{base}.actions"), a, "actions")?;
        requirement_rules.push(CRequirementRule {
            actions: action_specs(&actions, &format!("{base}.actions"), a, true)?,
            patterns: patterns(&format!("{base}.resources"), resources)?,
            requires: compile_requires(
                &format!("{base}.requires"),
                format!("requirements:{name}"),
                requires,
            )?,
        });
    }
    has_requirements |= !requirement_rules.is_empty();

    let to_fast = |m: BTreeMap<String, Vec<u32>>| -> FastMap<Box<[u32]>> {
        let mut out = FastMap::with_capacity_and_hasher(m.len(), hasher);
        out.extend(m.into_iter().map(|(k, v)| (k.into_boxed_str(), v.into())));
        out
    };
    Ok(CompiledPolicy {
        version_hash,
        on_group_overage: doc.on_group_overage,
        actions,
        roles,
        words,
        role_closure: role_closure.into(),
        roles_by_action: roles_by_action.into(),
        bindings,
        bindings_by_role: bindings_by_role.into(),
        bindings_by_role_ids: bindings_by_role_ids.into(),
        binding_hit_key: binding_hit_key.into(),
        groups,
        group_entries: group_entries.into(),
        group_roles: group_roles.into(),
        group_binding_ids: group_binding_ids.into(),
        group_roles_by_class: group_roles_by_class.map(Into::into),
        group_classes,
        app_roles: to_fast(app_roles),
        app_permissions: to_fast(app_permissions),
        directory_roles: to_fast(directory_roles),
        tenants: to_fast(tenants),
        principals: to_fast(principals),
        scopes,
        deny,
        sod,
        bound_group_ids,
        mfa_auth_context,
        requirement_rules,
        has_requirements,
        unqualified_claim_bindings,
    })
}

/// Checks a binding's `tenants` qualifier: only on claim-value subjects, a non-empty
/// list of distinct tenant GUIDs.
fn binding_tenants(
    base: &str,
    b: &BindingDef,
    subject: &Subject,
) -> Result<Option<Box<[TenantId]>>, PolicyError> {
    let Some(list) = &b.tenants else {
        return Ok(None);
    };
    let path = format!("{base}.tenants");
    let object_subject = match subject {
        Subject::Group => Some("group"),
        Subject::Tenant(_) => Some("tenant"),
        Subject::Principal(_) => Some("principal"),
        Subject::Claim | Subject::DirectoryRole => None,
    };
    if let Some(subject) = object_subject {
        return Err(err(path, PolicyErrorKind::TenantsNotAllowed { subject }));
    }
    let tenants = tenant_list(&path, list)?;
    for (i, t) in tenants.iter().enumerate() {
        if tenants[..i].contains(t) {
            return Err(err(
                format!("{path}[{i}]"),
                PolicyErrorKind::Duplicate {
                    what: "tenant",
                    name: t.to_string(),
                },
            ));
        }
    }
    Ok(Some(tenants))
}

type SubjectInfo = (String, Subject, Vec<KindDef>, Option<&'static str>);

/// Checks a binding's subject; returns its default label, subject, default kinds and the
/// subject key that fixes the kind, if any.
fn binding_subject(base: &str, b: &BindingDef) -> Result<SubjectInfo, PolicyError> {
    let mut found = Vec::new();
    if b.group.is_some() {
        found.push("group");
    }
    if b.app_role.is_some() || b.app_permission.is_some() {
        found.push(match (&b.app_role, &b.app_permission) {
            (Some(_), Some(_)) => "app_role/app_permission",
            (Some(_), None) => "app_role",
            _ => "app_permission",
        });
    }
    if b.directory_role.is_some() {
        found.push("directory_role");
    }
    if b.tenant.is_some() {
        found.push("tenant");
    }
    if b.principal.is_some() {
        found.push("principal");
    }
    if found.len() != 1 {
        return Err(err(base, PolicyErrorKind::BindingSubject { found }));
    }
    let user = vec![KindDef::User];
    if let Some(g) = &b.group {
        let g = guid(&format!("{base}.group"), g, "group id", GroupId::parse)?;
        return Ok((format!("group:{g}"), Subject::Group, user, None));
    }
    if let Some(w) = &b.directory_role {
        // Template ids are GUIDs; Entra emits them in lower case, as we store them.
        let w = guid(
            &format!("{base}.directory_role"),
            w,
            "directory role template id",
            |s| {
                if crate::ids::is_guid(s) {
                    Ok(s.to_ascii_lowercase())
                } else {
                    Err(crate::ids::InvalidId {
                        what: "directory role template id",
                    })
                }
            },
        )?;
        return Ok((
            format!("directory_role:{w}"),
            Subject::DirectoryRole,
            user,
            None,
        ));
    }
    if let Some(t) = &b.tenant {
        let t = guid(&format!("{base}.tenant"), t, "tenant id", TenantId::parse)?;
        return Ok((format!("tenant:{t}"), Subject::Tenant(t), user, None));
    }
    if let Some(p) = &b.principal {
        let tenant = guid(
            &format!("{base}.principal.tenant"),
            &p.tenant,
            "tenant id",
            TenantId::parse,
        )?;
        let object = guid(
            &format!("{base}.principal.object"),
            &p.object,
            "object id",
            ObjectId::parse,
        )?;
        let id = PrincipalId::new(tenant, object);
        return Ok((
            format!("principal:{id}"),
            Subject::Principal(id),
            vec![KindDef::User, KindDef::Application],
            None,
        ));
    }
    let mut label = String::new();
    let mut kinds = Vec::new();
    let mut fixed = "app_permission";
    if let Some(v) = &b.app_role {
        ident(&format!("{base}.app_role"), v, IdentKind::Token)?;
        let _ = write!(label, "app_role:{v}");
        kinds.push(KindDef::User);
        fixed = "app_role";
    }
    if let Some(v) = &b.app_permission {
        ident(&format!("{base}.app_permission"), v, IdentKind::Token)?;
        if !label.is_empty() {
            label.push('|');
        }
        let _ = write!(label, "app_permission:{v}");
        kinds.push(KindDef::Application);
    }
    Ok((label, Subject::Claim, kinds, Some(fixed)))
}

fn compile_when(path: &str, when: Option<&WhenDef>) -> Result<CWhen, PolicyError> {
    let Some(w) = when else {
        return Ok(CWhen::default());
    };
    // `tenant` and `tenant_in` are separate conditions, like every other key: both must
    // hold when both are given.
    let tenant = w
        .tenant
        .as_ref()
        .map(|t| guid(&format!("{path}.tenant"), t, "tenant id", TenantId::parse))
        .transpose()?;
    let tenant_in = w
        .tenant_in
        .as_ref()
        .map(|l| tenant_list(&format!("{path}.tenant_in"), l))
        .transpose()?;
    Ok(CWhen {
        tenant,
        guest: w.guest,
        kind: w.kind.map(|k| match k {
            KindDef::User => PrincipalKind::User,
            KindDef::Application => PrincipalKind::Application,
        }),
        tenant_in,
        tenant_not_in: w
            .tenant_not_in
            .as_ref()
            .map(|l| tenant_list(&format!("{path}.tenant_not_in"), l))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_with_their_path() {
        let g = vec![vec![1], vec![2], vec![0], vec![]];
        assert_eq!(find_cycle(&g), Some(vec![0, 1, 2, 0]));
        let g = vec![vec![1, 2], vec![2], vec![]];
        assert_eq!(find_cycle(&g), None);
        let g = vec![vec![0]];
        assert_eq!(find_cycle(&g), Some(vec![0, 0]));
    }

    #[test]
    fn keys_are_quoted_when_toml_needs_it() {
        assert_eq!(key("ml-engineer"), "ml-engineer");
        assert_eq!(key("Inference.Invoke"), "\"Inference.Invoke\"");
    }
}
