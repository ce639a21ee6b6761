//! Scope ceilings and the rules that are not roles: deny rules, separation-of-duty
//! rules and `[[requirements]]` rules (the three share one namespace of rule names).

use std::collections::HashSet;

use crate::fast_hash::FastBuildHasher;
use crate::ids::TenantId;
use crate::policy::action::{ActionSet, ActionTable};
use crate::policy::compiled::{
    Deny, FastMap, RequirementRule, Role, SeparationOfDuties, When, set_bit,
};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::ident::IdentKind;
use crate::policy::model::{
    DenyDef, KindDef, PolicyDocument, RequirementRuleDef, SeparationOfDutiesDef, WhenDef,
};
use crate::policy::requirement::compile_requires;
use crate::principal::PrincipalKind;

use super::actions;
use super::check::{err, guid, ident, key, non_empty, patterns, tenant_list};

/// The rules of a policy, compiled.
pub(super) struct Rules {
    pub(super) deny: Vec<Deny>,
    pub(super) sod: Vec<SeparationOfDuties>,
    pub(super) requirement_rules: Vec<RequirementRule>,
}

/// The scope ceilings (`[scopes]`): scope name -> the actions it allows.
pub(super) fn scopes(
    doc: &PolicyDocument,
    actions: &ActionTable,
    hasher: FastBuildHasher,
) -> Result<FastMap<ActionSet>, PolicyError> {
    let mut scopes = FastMap::with_capacity_and_hasher(doc.scopes.len(), hasher);
    for (name, specs) in &doc.scopes {
        let path = format!("scopes.{}", key(name));
        ident(&path, name, IdentKind::Token)?;
        scopes.insert(
            name.as_str().into(),
            actions::specs(actions, &path, specs, true)?,
        );
    }
    Ok(scopes)
}

/// Rule names: identifiers, unique across deny, separation-of-duty and requirement rules.
#[derive(Default)]
struct RuleNames(HashSet<String>);

impl RuleNames {
    fn check(&mut self, path: &str, name: &str) -> Result<(), PolicyError> {
        ident(path, name, IdentKind::Name)?;
        if !self.0.insert(name.to_owned()) {
            return Err(err(
                path,
                PolicyErrorKind::Duplicate {
                    what: "rule name",
                    name: name.to_owned(),
                },
            ));
        }
        Ok(())
    }
}

/// Compiles the deny, separation-of-duty and requirement rules, in that order.
pub(super) fn compile(
    doc: &PolicyDocument,
    actions: &ActionTable,
    roles: &[Role],
    words: usize,
) -> Result<Rules, PolicyError> {
    let mut names = RuleNames::default();
    let mut deny_rules = Vec::with_capacity(doc.deny.len());
    for (i, d) in doc.deny.iter().enumerate() {
        deny_rules.push(deny(&format!("deny[{i}]"), d, actions, &mut names)?);
    }
    let mut sod = Vec::with_capacity(doc.separation_of_duties.len());
    for (i, s) in doc.separation_of_duties.iter().enumerate() {
        let base = format!("separation_of_duties[{i}]");
        sod.push(separation_of_duties(
            &base, s, actions, roles, words, &mut names,
        )?);
    }
    let mut requirement_rules = Vec::with_capacity(doc.requirements.len());
    for (i, r) in doc.requirements.iter().enumerate() {
        let base = format!("requirements[{i}]");
        requirement_rules.push(requirement_rule(&base, r, actions, &mut names)?);
    }
    Ok(Rules {
        deny: deny_rules,
        sod,
        requirement_rules,
    })
}

fn deny(
    base: &str,
    d: &DenyDef,
    actions: &ActionTable,
    names: &mut RuleNames,
) -> Result<Deny, PolicyError> {
    let DenyDef {
        name,
        when: w,
        actions: a,
        except_actions,
        resources,
        ..
    } = d;
    names.check(&format!("{base}.name"), name)?;
    non_empty(&format!("{base}.actions"), a, "actions")?;
    let denied = actions::specs(actions, &format!("{base}.actions"), a, true)?;
    let except = actions::specs(
        actions,
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
    Ok(Deny {
        name: name.as_str().into(),
        when: when(&format!("{base}.when"), w.as_ref())?,
        actions: effective,
        patterns: patterns(&format!("{base}.resources"), resources)?,
    })
}

fn separation_of_duties(
    base: &str,
    s: &SeparationOfDutiesDef,
    actions: &ActionTable,
    roles: &[Role],
    words: usize,
    names: &mut RuleNames,
) -> Result<SeparationOfDuties, PolicyError> {
    let SeparationOfDutiesDef {
        name,
        actions: a,
        resources,
        ..
    } = s;
    names.check(&format!("{base}.name"), name)?;
    let path = format!("{base}.actions");
    if a.len() != 2 {
        return Err(err(
            path,
            PolicyErrorKind::SeparationOfDutiesActions { found: a.len() },
        ));
    }
    let first = actions::specs(actions, &path, &a[..1], false)?;
    let second = actions::specs(actions, &path, &a[1..], false)?;
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
    Ok(SeparationOfDuties {
        name: name.as_str().into(),
        sides: [first, second],
        patterns: pats,
        holds,
    })
}

fn requirement_rule(
    base: &str,
    r: &RequirementRuleDef,
    actions: &ActionTable,
    names: &mut RuleNames,
) -> Result<RequirementRule, PolicyError> {
    let RequirementRuleDef {
        name,
        actions: a,
        resources,
        requires,
        ..
    } = r;
    names.check(&format!("{base}.name"), name)?;
    non_empty(&format!("{base}.actions"), a, "actions")?;
    Ok(RequirementRule {
        actions: actions::specs(actions, &format!("{base}.actions"), a, true)?,
        patterns: patterns(&format!("{base}.resources"), resources)?,
        requires: compile_requires(
            &format!("{base}.requires"),
            format!("requirements:{name}"),
            requires,
        )?,
    })
}

fn when(path: &str, when: Option<&WhenDef>) -> Result<When, PolicyError> {
    let Some(w) = when else {
        return Ok(When::default());
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
    Ok(When {
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
