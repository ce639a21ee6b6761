//! The action vocabulary: built-in AI-workflow actions, policy-defined custom actions,
//! and compiled action sets.
//!
//! An action is `family.verb` (ASCII letters, digits, `_` and `-` on each side of one
//! dot), compared byte for byte. In grants, scope ceilings and rules an action may also
//! be written as a family wildcard (`training.*`: every known action of that family) or
//! `*` (every known action, custom ones included).

use std::collections::HashMap;

use crate::fast_hash::FastBuildHasher;

/// The built-in actions every policy knows, by the surface that asks for them:
///
/// | family | actions | asked by |
/// |---|---|---|
/// | `training` | `submit`, `read`, `cancel` | training APIs |
/// | `inference` | `invoke`, `batch` | inference APIs: the OpenAI-compatible routes (`model` of the body, [`crate::ai::openai`]), KServe v2 gRPC (`model_name`), and the model listings, which show the models the caller may `inference.invoke` |
/// | `models` | `read`, `register`, `deploy`, `delete` | model registries |
/// | `datasets` | `read`, `write` | data access |
/// | `evaluations` | `run` | evaluation jobs |
/// | `audit` | `read` | the audit trail |
/// | `tools` | `call` | MCP servers: `tools/call` on `tools/{name}`, and `tools/list` filtered to it ([`crate::ai::mcp`]) |
pub const BUILTIN_ACTIONS: &[&str] = &[
    "training.submit",
    "training.read",
    "training.cancel",
    "inference.invoke",
    "inference.batch",
    "models.read",
    "models.register",
    "models.deploy",
    "models.delete",
    "datasets.read",
    "datasets.write",
    "evaluations.run",
    "audit.read",
    "tools.call",
];

/// The largest number of actions (built-in plus custom) one policy may know.
pub const MAX_ACTIONS: usize = 256;

/// Why an action name is malformed.
pub(crate) fn action_syntax_problem(action: &str) -> Option<&'static str> {
    let Some((family, verb)) = action.split_once('.') else {
        return Some("an action is family.verb");
    };
    let part_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !part_ok(family) || !part_ok(verb) {
        return Some("an action is family.verb, each of ASCII letters, digits, '_' or '-'");
    }
    None
}

/// A set of actions, by index in the policy's action table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ActionSet([u64; MAX_ACTIONS / 64]);

impl ActionSet {
    pub(crate) const EMPTY: Self = Self([0; MAX_ACTIONS / 64]);

    pub(crate) fn insert(&mut self, i: u16) {
        self.0[usize::from(i) / 64] |= 1 << (i % 64);
    }

    #[inline]
    pub(crate) fn contains(&self, i: u16) -> bool {
        self.0[usize::from(i) / 64] & (1 << (i % 64)) != 0
    }

    pub(crate) fn union(&self, other: &Self) -> Self {
        let mut out = *self;
        for (o, x) in out.0.iter_mut().zip(other.0) {
            *o |= x;
        }
        out
    }

    pub(crate) fn minus(&self, other: &Self) -> Self {
        let mut out = *self;
        for (o, x) in out.0.iter_mut().zip(other.0) {
            *o &= !x;
        }
        out
    }

    pub(crate) fn intersect(&self, other: &Self) -> Self {
        let mut out = *self;
        for (o, x) in out.0.iter_mut().zip(other.0) {
            *o &= x;
        }
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub(crate) fn is_subset(&self, other: &Self) -> bool {
        self.minus(other).is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..MAX_ACTIONS as u16).filter(|i| self.contains(*i))
    }
}

/// Why an action spec in a policy could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpecError {
    Malformed(&'static str),
    UnknownAction,
    UnknownFamily,
}

/// The known actions of one policy.
#[derive(Debug)]
pub(crate) struct ActionTable {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u16, FastBuildHasher>,
}

impl ActionTable {
    /// Builds the table; the caller has checked syntax, duplicates and the size limit.
    pub(crate) fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        hasher: FastBuildHasher,
    ) -> Self {
        let names: Vec<Box<str>> = names.into_iter().map(Box::from).collect();
        let mut index = HashMap::with_capacity_and_hasher(names.len(), hasher);
        for (i, n) in names.iter().enumerate() {
            index.insert(n.clone(), i as u16);
        }
        Self { names, index }
    }

    #[inline]
    pub(crate) fn get(&self, action: &str) -> Option<u16> {
        self.index.get(action).copied()
    }

    pub(crate) fn name(&self, i: u16) -> &str {
        &self.names[usize::from(i)]
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    pub(crate) fn all(&self) -> ActionSet {
        let mut s = ActionSet::EMPTY;
        for i in 0..self.names.len() {
            s.insert(i as u16);
        }
        s
    }

    /// Resolves `*`, `family.*` or `family.verb` to a set.
    pub(crate) fn resolve(&self, spec: &str) -> Result<ActionSet, SpecError> {
        if spec == "*" {
            return Ok(self.all());
        }
        if let Some(family) = spec.strip_suffix(".*") {
            if let Some(problem) = action_syntax_problem(&format!("{family}.x")) {
                return Err(SpecError::Malformed(problem));
            }
            let mut s = ActionSet::EMPTY;
            for (i, n) in self.names.iter().enumerate() {
                if n.split_once('.').map(|(f, _)| f) == Some(family) {
                    s.insert(i as u16);
                }
            }
            return if s.is_empty() {
                Err(SpecError::UnknownFamily)
            } else {
                Ok(s)
            };
        }
        if let Some(problem) = action_syntax_problem(spec) {
            return Err(SpecError::Malformed(problem));
        }
        let mut s = ActionSet::EMPTY;
        s.insert(self.get(spec).ok_or(SpecError::UnknownAction)?);
        Ok(s)
    }

    pub(crate) fn names_of(&self, set: &ActionSet) -> Vec<String> {
        set.iter()
            .take_while(|i| usize::from(*i) < self.names.len())
            .map(|i| self.name(i).to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ActionTable {
        let mut names: Vec<&str> = BUILTIN_ACTIONS.to_vec();
        names.push("endpoints.scale");
        ActionTable::new(names, FastBuildHasher::new())
    }

    #[test]
    fn specs_resolve() {
        let t = table();
        let training = t.resolve("training.*").unwrap();
        assert_eq!(
            t.names_of(&training),
            ["training.submit", "training.read", "training.cancel"]
        );
        assert_eq!(t.names_of(&t.resolve("*").unwrap()).len(), 15);
        assert_eq!(
            t.names_of(&t.resolve("endpoints.*").unwrap()),
            ["endpoints.scale"]
        );
        assert_eq!(t.resolve("training.fly"), Err(SpecError::UnknownAction));
        assert_eq!(t.resolve("robots.*"), Err(SpecError::UnknownFamily));
        assert!(matches!(
            t.resolve("training"),
            Err(SpecError::Malformed(_))
        ));
        assert!(matches!(
            t.resolve("training.*.x"),
            Err(SpecError::Malformed(_))
        ));
        assert!(matches!(
            t.resolve("Training .submit"),
            Err(SpecError::Malformed(_))
        ));
        assert_eq!(t.resolve("Training.Submit"), Err(SpecError::UnknownAction));
    }

    #[test]
    fn builtins_are_well_formed() {
        for a in BUILTIN_ACTIONS {
            assert_eq!(action_syntax_problem(a), None, "{a}");
        }
    }
}
