//! The action table: the built-in actions and the policy's custom ones, and the action
//! specs (`family.verb`, `family.*`, `*`) that grants, scopes and rules name.

use std::collections::HashSet;

use crate::fast_hash::FastBuildHasher;
use crate::policy::action::{
    ActionSet, ActionTable, BUILTIN_ACTIONS, MAX_ACTIONS, SpecError, action_syntax_problem,
};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::ident::IdentKind;
use crate::policy::model::PolicyDocument;

use super::check::{err, ident};

/// Checks the custom actions (`[actions] custom`) and builds the table of every action.
pub(super) fn table(
    doc: &PolicyDocument,
    hasher: FastBuildHasher,
) -> Result<ActionTable, PolicyError> {
    let mut names: Vec<&str> = BUILTIN_ACTIONS.to_vec();
    for (i, a) in doc.actions.custom.iter().enumerate() {
        let path = format!("actions.custom[{i}]");
        ident(&path, a, IdentKind::Token)?;
        if let Some(expected) = action_syntax_problem(a) {
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
    Ok(ActionTable::new(names, hasher))
}

/// Resolves a list of action specs (at `path`) into one set; `*` only when `allow_star`.
pub(super) fn specs(
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
