//! Validation and compilation: a [`PolicyDocument`] becomes a [`CompiledPolicy`] of lookup
//! tables, or a [`PolicyError`] naming the key path of the first mistake.
//!
//! Everything that can be wrong with a policy is found here, so that evaluation never
//! fails: role names resolve to indices, actions to bitsets, patterns to matchers, group
//! ids to a hash table. The driver below runs one step per concern, in document order
//! (so that the first mistake reported is the same whatever the concern):
//! [`actions`], [`roles`], [`bindings`], scopes and [`rules`]; [`check`] holds the checks
//! they share.

mod actions;
mod bindings;
mod check;
mod roles;
mod rules;

pub(crate) use check::key;

use std::collections::BTreeMap;

use crate::fast_hash::FastBuildHasher;

use super::compiled::{CompiledPolicy, FastMap};
use super::error::{PolicyError, PolicyErrorKind};
use super::model::{POLICY_FORMAT_VERSION, PolicyDocument};
use check::err;

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
    let hasher = FastBuildHasher::new();
    let actions = actions::table(doc, hasher)?;
    let role_index = roles::index(doc)?;
    let mfa_auth_context = doc
        .mfa_auth_context
        .as_deref()
        .map(|c| super::requirement::auth_context("mfa_auth_context", c))
        .transpose()?;
    let roles = roles::compile(doc, &role_index, &actions)?;
    let bindings = bindings::compile(doc, &role_index, &roles)?;
    let groups = bindings::groups(bindings.by_group, &bindings.bindings, roles.words);
    let (bindings_by_role, bindings_by_role_ids) =
        bindings::by_role(&bindings.bindings, roles.roles.len());
    let scopes = rules::scopes(doc, &actions, hasher)?;
    let rules = rules::compile(doc, &actions, &roles.roles, roles.words)?;

    let to_fast = |m: BTreeMap<String, Vec<u32>>| -> FastMap<Box<[u32]>> {
        let mut out = FastMap::with_capacity_and_hasher(m.len(), hasher);
        out.extend(m.into_iter().map(|(k, v)| (k.into_boxed_str(), v.into())));
        out
    };
    Ok(CompiledPolicy {
        version_hash,
        on_group_overage: doc.on_group_overage,
        actions,
        has_requirements: roles.has_requirements || !rules.requirement_rules.is_empty(),
        roles: roles.roles,
        words: roles.words,
        role_closure: roles.closure.into(),
        roles_by_action: roles.by_action.into(),
        bindings: bindings.bindings,
        bindings_by_role: bindings_by_role.into(),
        bindings_by_role_ids: bindings_by_role_ids.into(),
        binding_hit_key: groups.binding_hit_key.into(),
        groups: groups.groups,
        group_entries: groups.group_entries.into(),
        group_roles: groups.group_roles.into(),
        group_binding_ids: groups.group_binding_ids.into(),
        group_roles_by_class: groups.group_roles_by_class.map(Into::into),
        group_classes: groups.group_classes,
        app_roles: to_fast(bindings.app_roles),
        app_permissions: to_fast(bindings.app_permissions),
        directory_roles: to_fast(bindings.directory_roles),
        tenants: to_fast(bindings.tenants),
        principals: to_fast(bindings.principals),
        scopes,
        deny: rules.deny,
        sod: rules.sod,
        bound_group_ids: groups.bound_group_ids,
        mfa_auth_context,
        requirement_rules: rules.requirement_rules,
        unqualified_claim_bindings: bindings.unqualified_claim_bindings,
    })
}
