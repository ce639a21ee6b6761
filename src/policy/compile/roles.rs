//! Roles: names first (so that includes can refer forwards), then grants and their
//! requirements, then the include graph (no cycles) and the role sets the tables keep:
//! each role's transitive closure, and per action the roles whose grants mention it.

use std::collections::BTreeMap;

use crate::policy::action::ActionTable;
use crate::policy::compiled::{Grant, MAX_ROLES, Role, has_bit, set_bit};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::ident::IdentKind;
use crate::policy::model::{GrantDef, PolicyDocument, RoleDef};
use crate::policy::requirement::compile_requires;

use super::actions;
use super::check::{err, ident, key, non_empty, patterns};

/// Role name -> role index, in document (name) order.
pub(super) type RoleIndex<'d> = BTreeMap<&'d str, u16>;

/// The compiled roles and the role sets derived from them.
pub(super) struct Roles {
    pub(super) roles: Vec<Role>,
    /// `u64` words in one role set.
    pub(super) words: usize,
    /// Per role: the roles it includes, transitively, itself included.
    pub(super) closure: Vec<u64>,
    /// Per action: the roles whose own grants mention it.
    pub(super) by_action: Vec<u64>,
    /// Some role or grant has requirements.
    pub(super) has_requirements: bool,
}

impl Roles {
    /// The roles `r` includes, transitively, itself included, as a sorted list.
    pub(super) fn closure_list(&self, r: u16) -> Vec<u16> {
        let row = &self.closure[usize::from(r) * self.words..(usize::from(r) + 1) * self.words];
        (0..self.roles.len())
            .filter(|i| has_bit(row, *i))
            .map(|i| i as u16)
            .collect()
    }
}

/// Checks the role count and names; indexes the roles by name.
pub(super) fn index(doc: &PolicyDocument) -> Result<RoleIndex<'_>, PolicyError> {
    if doc.roles.len() > MAX_ROLES {
        return Err(err(
            "roles",
            PolicyErrorKind::TooMany {
                what: "roles",
                max: MAX_ROLES,
            },
        ));
    }
    let mut role_index = RoleIndex::new();
    for (i, name) in doc.roles.keys().enumerate() {
        ident(&format!("roles.{}", key(name)), name, IdentKind::Name)?;
        role_index.insert(name, i as u16);
    }
    Ok(role_index)
}

/// Compiles every role, refuses include cycles and computes the role sets.
pub(super) fn compile(
    doc: &PolicyDocument,
    role_index: &RoleIndex<'_>,
    actions: &ActionTable,
) -> Result<Roles, PolicyError> {
    let mut has_requirements = false;
    let mut roles = Vec::with_capacity(doc.roles.len());
    for (name, def) in &doc.roles {
        let role = role(name, def, role_index, actions)?;
        has_requirements |=
            role.requires.is_some() || role.grants.iter().any(|g| g.requires.is_some());
        roles.push(role);
    }
    check_cycles(&roles)?;
    let words = roles.len().div_ceil(64).max(1);
    let closure = closures(&roles, words);
    let by_action = roles_by_action(&roles, words, actions.names().count());
    Ok(Roles {
        roles,
        words,
        closure,
        by_action,
        has_requirements,
    })
}

fn role(
    name: &str,
    def: &RoleDef,
    role_index: &RoleIndex<'_>,
    actions: &ActionTable,
) -> Result<Role, PolicyError> {
    let base = format!("roles.{}", key(name));
    let includes = refs(&format!("{base}.include"), &def.include, role_index)?;
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
            .map(|r| compile_requires(&format!("{gpath}.requires"), format!("grant:{label}"), r))
            .transpose()?;
        grants.push(Grant {
            label: label.into(),
            actions: actions::specs(actions, &format!("{gpath}.actions"), a, true)?,
            patterns: patterns(&format!("{gpath}.resources"), resources)?,
            requires,
        });
    }
    let requires = def
        .requires
        .as_ref()
        .map(|r| compile_requires(&format!("{base}.requires"), format!("role:{name}"), r))
        .transpose()?;
    Ok(Role {
        name: name.into(),
        grants,
        includes,
        requires,
    })
}

fn check_cycles(roles: &[Role]) -> Result<(), PolicyError> {
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
    Ok(())
}

/// Per role (`words` each): the roles it includes, transitively, itself included.
fn closures(roles: &[Role], words: usize) -> Vec<u64> {
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
    role_closure
}

/// Per action (`words` each): the roles whose own grants mention it.
fn roles_by_action(roles: &[Role], words: usize, n_actions: usize) -> Vec<u64> {
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
    roles_by_action
}

/// Resolves role names (at `path`) to indices, refusing unknown and repeated names.
pub(super) fn refs(
    path: &str,
    names: &[String],
    index: &RoleIndex<'_>,
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
}
