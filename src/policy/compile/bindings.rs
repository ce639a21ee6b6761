//! Bindings: who holds which roles. Each binding's subject, label, kinds and tenant
//! qualifier are checked; the binding is indexed under its subject (group id, claim
//! value, tenant or principal); group bindings become the group table (what one token
//! group confers, per admission class), and every binding is listed under the roles it
//! confers (to name the bindings behind an allow).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use crate::fast_hash::GuidTable;
use crate::ids::{GroupId, ObjectId, PrincipalId, TenantId};
use crate::policy::compiled::{
    Binding, GROUP_HIT, GroupEntry, MAX_BINDINGS, Subject, UnqualifiedBinding, set_bit,
};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::ident::IdentKind;
use crate::policy::model::{BindingDef, KindDef, PolicyDocument};

use super::check::{err, guid, ident, non_empty, tenant_list};
use super::roles::{self, RoleIndex, Roles};

/// Claim value, tenant id or object id -> the bindings under it, in policy order.
pub(super) type Index = BTreeMap<String, Vec<u32>>;

/// The compiled bindings and their indices by subject.
#[derive(Default)]
pub(super) struct Bindings {
    pub(super) bindings: Vec<Binding>,
    pub(super) by_group: BTreeMap<GroupId, Vec<u32>>,
    pub(super) app_roles: Index,
    pub(super) app_permissions: Index,
    pub(super) directory_roles: Index,
    pub(super) tenants: Index,
    pub(super) principals: Index,
    /// Claim-value bindings without a `tenants` qualifier, in policy order.
    pub(super) unqualified_claim_bindings: Vec<UnqualifiedBinding>,
}

/// The group table: what each bound group confers.
pub(super) struct GroupTables {
    pub(super) bound_group_ids: Vec<GroupId>,
    pub(super) groups: GuidTable,
    pub(super) group_entries: Vec<GroupEntry>,
    pub(super) group_roles: Vec<u16>,
    pub(super) group_binding_ids: Vec<u32>,
    pub(super) group_roles_by_class: [Vec<u64>; 4],
    pub(super) group_classes: u8,
    /// Per binding: the value a decision records when it matches.
    pub(super) binding_hit_key: Vec<u32>,
}

/// Checks and indexes every binding.
pub(super) fn compile(
    doc: &PolicyDocument,
    role_index: &RoleIndex<'_>,
    roles: &Roles,
) -> Result<Bindings, PolicyError> {
    if doc.bindings.len() >= MAX_BINDINGS {
        return Err(err(
            "bindings",
            PolicyErrorKind::TooMany {
                what: "bindings",
                max: MAX_BINDINGS,
            },
        ));
    }
    let mut out = Bindings {
        bindings: Vec::with_capacity(doc.bindings.len()),
        ..Bindings::default()
    };
    let mut binding_names = HashSet::new();
    for (bi, b) in doc.bindings.iter().enumerate() {
        let base = format!("bindings[{bi}]");
        let (label, subject, default_kinds, fixed_kind) = binding_subject(&base, b)?;
        let label = binding_label(&base, b, label, &mut binding_names)?;
        let kinds = binding_kinds(&base, b, default_kinds, fixed_kind)?;
        let qualifier = binding_tenants(&base, b, &subject)?;
        if qualifier.is_none() && matches!(subject, Subject::Claim | Subject::DirectoryRole) {
            out.unqualified_claim_bindings.push(UnqualifiedBinding {
                key_path: base.clone(),
                label: label.clone(),
            });
        }
        non_empty(&format!("{base}.roles"), &b.roles, "roles")?;
        let direct = roles::refs(&format!("{base}.roles"), &b.roles, role_index)?;
        let mut closure: Vec<u16> = direct.iter().flat_map(|r| roles.closure_list(*r)).collect();
        closure.sort_unstable();
        closure.dedup();
        out.index(&subject, b, bi as u32);
        out.bindings.push(Binding {
            label: label.into(),
            subject,
            roles: direct.into(),
            closure: closure.into(),
            admits: class_mask(&kinds, b.guests),
            tenants: qualifier,
        });
    }
    Ok(out)
}

impl Bindings {
    /// Indexes binding `ix` under its subject.
    fn index(&mut self, subject: &Subject, b: &BindingDef, ix: u32) {
        match (subject, b) {
            (Subject::Group, BindingDef { group: Some(g), .. }) => {
                let g = GroupId::parse(g).expect("checked by binding_subject");
                self.by_group.entry(g).or_default().push(ix);
            }
            (Subject::Claim, _) => {
                if let Some(v) = &b.app_role {
                    self.app_roles.entry(v.clone()).or_default().push(ix);
                }
                if let Some(v) = &b.app_permission {
                    self.app_permissions.entry(v.clone()).or_default().push(ix);
                }
            }
            (
                Subject::DirectoryRole,
                BindingDef {
                    directory_role: Some(w),
                    ..
                },
            ) => {
                self.directory_roles
                    .entry(w.to_ascii_lowercase())
                    .or_default()
                    .push(ix);
            }
            (Subject::Tenant(t), _) => self.tenants.entry(t.to_string()).or_default().push(ix),
            (Subject::Principal(p), _) => {
                self.principals
                    .entry(p.object.to_string())
                    .or_default()
                    .push(ix);
            }
            _ => unreachable!("binding_subject returns the subject it found"),
        }
    }
}

/// The binding's label: its `name` (an identifier, unique among bindings), else the
/// label its subject gives it.
fn binding_label<'d>(
    base: &str,
    b: &'d BindingDef,
    default: String,
    names: &mut HashSet<&'d str>,
) -> Result<String, PolicyError> {
    let Some(name) = &b.name else {
        return Ok(default);
    };
    ident(&format!("{base}.name"), name, IdentKind::Label)?;
    if !names.insert(name.as_str()) {
        return Err(err(
            format!("{base}.name"),
            PolicyErrorKind::Duplicate {
                what: "binding name",
                name: name.clone(),
            },
        ));
    }
    Ok(name.clone())
}

/// The kinds a binding admits: its `kinds` (distinct, non-empty, not on a subject that
/// fixes the kind), else its subject's default.
fn binding_kinds(
    base: &str,
    b: &BindingDef,
    default_kinds: Vec<KindDef>,
    fixed_kind: Option<&'static str>,
) -> Result<Vec<KindDef>, PolicyError> {
    match (&b.kinds, fixed_kind) {
        (Some(_), Some(subject)) => Err(err(
            format!("{base}.kinds"),
            PolicyErrorKind::KindsNotAllowed { subject },
        )),
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
            Ok(seen)
        }
        (None, _) => Ok(default_kinds),
    }
}

/// The group table, and what group bindings could add per admission class.
pub(super) fn groups(
    by_group: BTreeMap<GroupId, Vec<u32>>,
    bindings: &[Binding],
    words: usize,
) -> GroupTables {
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
    GroupTables {
        bound_group_ids,
        groups,
        group_entries,
        group_roles,
        group_binding_ids,
        group_roles_by_class,
        group_classes,
        binding_hit_key,
    }
}

/// Per role: (start, len) in the returned id list of the bindings whose closure holds
/// the role, in policy order.
pub(super) fn by_role(bindings: &[Binding], n_roles: usize) -> (Vec<(u32, u32)>, Vec<u32>) {
    let mut by_role: Vec<Vec<u32>> = vec![Vec::new(); n_roles];
    for (b, binding) in bindings.iter().enumerate() {
        for r in binding.closure.iter() {
            by_role[usize::from(*r)].push(b as u32);
        }
    }
    let mut bindings_by_role = Vec::with_capacity(n_roles);
    let mut bindings_by_role_ids = Vec::new();
    for list in by_role {
        bindings_by_role.push((bindings_by_role_ids.len() as u32, list.len() as u32));
        bindings_by_role_ids.extend(list);
    }
    (bindings_by_role, bindings_by_role_ids)
}

/// Admission classes (see [`class_of`](crate::policy::compiled::class_of)) of `kinds`,
/// guests included when `guests`.
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
