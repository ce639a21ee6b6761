//! The suggested narrower policy: what was never used goes, what was used only in part
//! is narrowed to the part used.
//!
//! - A grant that allowed nothing is removed.
//! - A used grant's pattern that reached nothing is removed. One that reached only some
//!   of what it covers is narrowed to the tightest pattern of the same shape that covers
//!   every resource reached: segments all reached resources share stay literal, others
//!   become their common prefix and `*` (`exp-1`, `exp-2` → `exp-*`), or `*`. A narrowed
//!   pattern is kept only when the old one provably covers it (never a widening) and it
//!   matches every resource reached.
//! - Bindings that conferred no role of an allow are removed, and so are, from the
//!   bindings that remain, roles no allow in the window used; roles neither bound nor
//!   included by a bound role are removed.
//! - Separation of duties is the exception: a role conflicts through its grants, and the
//!   requests a conflict refuses never show up as allows, so grants that give a side of a
//!   `[[separation_of_duties]]` rule are kept as written, with the roles holding them and
//!   the bindings conferring those roles. Removing them could turn a refusal into an
//!   allow.
//!
//! Deny rules, scope ceilings, requirements and separation-of-duty rules stay as they
//! are: they only ever refuse. The suggestion is the policy document re-serialised:
//! comments and layout are not kept, and the diff is between the two normalised forms.

use std::collections::{BTreeSet, HashSet};

use super::collect::{GrantStats, Usage, sample};
use super::report::{Suggestion, WideGrant};
use crate::policy::model::SeparationOfDutiesDef;
use crate::policy::pattern::Pattern;
use crate::policy::{Policy, PolicyDocument};

/// The narrowed patterns of one used grant: `None` for a pattern that reached nothing.
fn narrowed_patterns(patterns: &[String], stats: &GrantStats) -> Vec<Option<String>> {
    patterns
        .iter()
        .map(|p| {
            let Ok(pattern) = Pattern::parse(p) else {
                return Some(p.clone());
            };
            if stats.truncated {
                return Some(p.clone()); // what was reached is not all known
            }
            let reached: Vec<&str> = stats
                .reached
                .iter()
                .map(String::as_str)
                .filter(|r| pattern.matches(r))
                .collect();
            if reached.is_empty() {
                return None;
            }
            Some(narrow(&pattern, &reached).unwrap_or_else(|| p.clone()))
        })
        .collect()
}

/// The tightest pattern of the reached resources' shape, when `pattern` covers it. Only
/// what is far wider than what was reached is narrowed: `**` and bare `*` segments; a
/// segment the author already narrowed (`exp-*`, `*-prod`) stays as written.
pub(crate) fn narrow(pattern: &Pattern, reached: &[&str]) -> Option<String> {
    let candidate = keep_partial_globs(pattern.as_str(), generalize(reached)?);
    if candidate == pattern.as_str() {
        return None;
    }
    let parsed = Pattern::parse(&candidate).ok()?;
    let covers = pattern.subsumes(&parsed) && reached.iter().all(|r| parsed.matches(r));
    covers.then_some(candidate)
}

/// One pattern covering every resource in `reached` (all valid resources): per segment
/// position the shared value, else the shared prefix and `*`. Resources of different
/// depths share their leading segments and then `**`.
fn generalize(reached: &[&str]) -> Option<String> {
    let split: Vec<Vec<&str>> = reached.iter().map(|r| r.split('/').collect()).collect();
    let depth = split.first()?.len();
    if split.iter().all(|s| s.len() == depth) {
        let segments: Vec<String> = (0..depth)
            .map(|i| segment_pattern(split.iter().map(|s| s[i])))
            .collect();
        return Some(segments.join("/"));
    }
    let shallowest = split.iter().map(Vec::len).min()?;
    let shared: Vec<&str> = (0..shallowest)
        .take_while(|&i| split.iter().all(|s| s[i] == split[0][i]))
        .map(|i| split[0][i])
        .collect();
    if shared.is_empty() {
        return Some("**".to_owned());
    }
    Some(format!("{}/**", shared.join("/")))
}

/// `candidate` with the segments of `original` that are partial globs put back, when the
/// two align segment by segment (no `**` in `original`).
fn keep_partial_globs(original: &str, candidate: String) -> String {
    let old: Vec<&str> = original.split('/').collect();
    let new: Vec<&str> = candidate.split('/').collect();
    if old.contains(&"**") || old.len() != new.len() {
        return candidate;
    }
    let kept: Vec<&str> = old
        .iter()
        .zip(&new)
        .map(|(o, n)| if o.contains('*') && *o != "*" { *o } else { *n })
        .collect();
    kept.join("/")
}

fn segment_pattern<'a>(mut values: impl Iterator<Item = &'a str>) -> String {
    let first = values.next().unwrap_or_default();
    let (mut prefix, mut all_same) = (first, true);
    for v in values {
        all_same &= v == first;
        prefix = common_prefix(prefix, v);
    }
    if all_same {
        first.to_owned()
    } else {
        format!("{prefix}*")
    }
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let len = a
        .char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .last()
        .map_or(0, |((i, c), _)| i + c.len_utf8());
    &a[..len]
}

/// Used grants whose patterns are wider than the resources reached.
pub(crate) fn wide_grants(policy: &Policy, usage: &Usage) -> Vec<WideGrant> {
    let mut out = Vec::new();
    for (role, def) in &policy.document().roles {
        for (i, grant) in def.grants.iter().enumerate() {
            let label = format!("{role}#{i}");
            let Some(stats) = usage.grants.get(&label) else {
                continue;
            };
            let narrowed = narrowed_patterns(&grant.resources, stats);
            let suggested: Vec<String> = narrowed.iter().flatten().cloned().collect();
            if suggested == grant.resources {
                continue;
            }
            out.push(WideGrant {
                grant: label,
                patterns: grant.resources.clone(),
                suggested,
                resources_reached: stats.reached.len() as u64,
                reached_sample: sample(&stats.reached),
            });
        }
    }
    out
}

/// Grants (`<role>#<i>`) that give a side of a separation-of-duty rule, and the roles
/// whose closure holds one: what the suggestion keeps as written.
struct Protected {
    grants: HashSet<String>,
    roles: HashSet<String>,
}

impl Protected {
    fn of(doc: &PolicyDocument) -> Self {
        let mut grants = HashSet::new();
        let mut holders = HashSet::new();
        for (role, def) in &doc.roles {
            for (i, grant) in def.grants.iter().enumerate() {
                if doc
                    .separation_of_duties
                    .iter()
                    .any(|rule| gives_a_side(grant, rule))
                {
                    grants.insert(format!("{role}#{i}"));
                    holders.insert(role.clone());
                }
            }
        }
        // A role that includes a holder holds the side too.
        let roles = doc
            .roles
            .keys()
            .filter(|r| closure(doc, r).iter().any(|c| holders.contains(c)))
            .cloned()
            .collect();
        Self { grants, roles }
    }
}

/// Whether `grant` could give one of `rule`'s actions on one of its resources.
fn gives_a_side(grant: &crate::policy::model::GrantDef, rule: &SeparationOfDutiesDef) -> bool {
    let covers = |spec: &str, action: &str| {
        spec == "*"
            || spec == action
            || spec
                .strip_suffix('*')
                .is_some_and(|family| family.ends_with('.') && action.starts_with(family))
    };
    let action = grant
        .actions
        .iter()
        .any(|spec| rule.actions.iter().any(|a| covers(spec, a)));
    let parse = |p: &String| Pattern::parse(p).ok();
    let ours: Vec<Pattern> = grant.resources.iter().filter_map(parse).collect();
    let theirs: Vec<Pattern> = rule.resources.iter().filter_map(parse).collect();
    action && ours.iter().any(|o| theirs.iter().any(|t| o.intersects(t)))
}

/// `role` and every role it includes, transitively.
fn closure(doc: &PolicyDocument, role: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([role.to_owned()]);
    let mut frontier = vec![role.to_owned()];
    while let Some(r) = frontier.pop() {
        for inc in doc
            .roles
            .get(&r)
            .map(|d| d.include.clone())
            .unwrap_or_default()
        {
            if seen.insert(inc.clone()) {
                frontier.push(inc);
            }
        }
    }
    seen
}

/// The suggested policy for `policy` after `usage`, not yet replayed.
pub(crate) fn suggest(policy: &Policy, usage: &Usage) -> Suggestion {
    let mut changes = Vec::new();
    let mut doc = policy.document().clone();
    let protected = Protected::of(&doc);
    narrow_grants(&mut doc, usage, &protected, &mut changes);
    prune_bindings(&mut doc, policy, usage, &protected, &mut changes);
    prune_roles(&mut doc, &mut changes);
    let before = to_toml(policy.document());
    let after = to_toml(&doc);
    let (loads, load_error, lint_warnings) = match Policy::from_document(doc) {
        Ok(p) => (
            true,
            None,
            p.lint().warnings.iter().map(|w| w.to_string()).collect(),
        ),
        Err(e) => (false, Some(e.to_string()), Vec::new()),
    };
    Suggestion {
        changes,
        diff: unified_diff(&before, &after, "policy (reviewed)", "policy (suggested)"),
        policy_toml: after,
        loads,
        load_error,
        lint_warnings,
        replay: None,
    }
}

fn narrow_grants(
    doc: &mut PolicyDocument,
    usage: &Usage,
    protected: &Protected,
    changes: &mut Vec<String>,
) {
    for (role, def) in &mut doc.roles {
        let grants = std::mem::take(&mut def.grants);
        for (i, mut grant) in grants.into_iter().enumerate() {
            let label = format!("{role}#{i}");
            if protected.grants.contains(&label) {
                def.grants.push(grant); // a side of a separation-of-duty rule
                continue;
            }
            let Some(stats) = usage.grants.get(&label) else {
                changes.push(format!("remove grant {label} (never used)"));
                continue;
            };
            let narrowed = narrowed_patterns(&grant.resources, stats);
            for (old, new) in grant.resources.iter().zip(&narrowed) {
                match new {
                    None => changes.push(format!("{label}: remove pattern {old} (never reached)")),
                    Some(new) if new != old => {
                        changes.push(format!("{label}: narrow {old} to {new}"));
                    }
                    Some(_) => {}
                }
            }
            grant.resources = narrowed.into_iter().flatten().collect();
            def.grants.push(grant);
        }
    }
}

fn prune_bindings(
    doc: &mut PolicyDocument,
    policy: &Policy,
    usage: &Usage,
    protected: &Protected,
    changes: &mut Vec<String>,
) {
    let compiled = policy.compiled();
    let labels: Vec<&str> = compiled.binding_labels().collect();
    let bindings = std::mem::take(&mut doc.bindings);
    for (i, mut binding) in bindings.into_iter().enumerate() {
        let label = labels.get(i).copied().unwrap_or("?");
        let holds_a_side = binding.roles.iter().any(|r| protected.roles.contains(r));
        if !usage.bindings.contains_key(label) && !holds_a_side {
            changes.push(format!("remove binding {label} (conferred nothing used)"));
            continue;
        }
        let (kept, dropped): (Vec<String>, Vec<String>) = binding
            .roles
            .into_iter()
            .partition(|r| usage.role_used(r) || protected.roles.contains(r));
        if kept.is_empty() {
            changes.push(format!("remove binding {label} (conferred nothing used)"));
            continue;
        }
        for role in &dropped {
            changes.push(format!(
                "binding {label}: stop conferring {role} (never used)"
            ));
        }
        binding.roles = kept;
        doc.bindings.push(binding);
    }
}

fn prune_roles(doc: &mut PolicyDocument, changes: &mut Vec<String>) {
    let mut needed: BTreeSet<String> = doc.bindings.iter().flat_map(|b| b.roles.clone()).collect();
    let mut frontier: Vec<String> = needed.iter().cloned().collect();
    while let Some(role) = frontier.pop() {
        for inc in doc
            .roles
            .get(&role)
            .map(|r| r.include.clone())
            .unwrap_or_default()
        {
            if needed.insert(inc.clone()) {
                frontier.push(inc);
            }
        }
    }
    let all: HashSet<String> = doc.roles.keys().cloned().collect();
    for role in all
        .into_iter()
        .filter(|r| !needed.contains(r))
        .collect::<BTreeSet<_>>()
    {
        doc.roles.remove(&role);
        changes.push(format!("remove role {role} (no binding confers it)"));
    }
}

fn to_toml(doc: &PolicyDocument) -> String {
    toml::to_string(doc).unwrap_or_else(|e| format!("# cannot render the policy: {e}\n"))
}

/// A unified diff (one hunk per change, three lines of context) of two texts.
pub(crate) fn unified_diff(before: &str, after: &str, from: &str, to: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let ops = line_ops(&a, &b);
    if ops.iter().all(|op| matches!(op, Op::Same(..))) {
        return String::new();
    }
    let mut out = format!("--- {from}\n+++ {to}\n");
    for hunk in hunks(&ops, 3) {
        render_hunk(&mut out, &ops[hunk.0..hunk.1], &a, &b);
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Line `a` of the old text equals line `b` of the new one.
    Same(usize, usize),
    /// Old line removed.
    Del(usize),
    /// New line added.
    Add(usize),
}

/// The line edit script by longest common subsequence (policies are short).
fn line_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::with_capacity(n + m));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same(i, j));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
            ops.push(Op::Del(i));
            i += 1;
        } else {
            ops.push(Op::Add(j));
            j += 1;
        }
    }
    ops
}

/// Ranges of `ops` to show: every change with `context` unchanged lines around it.
fn hunks(ops: &[Op], context: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        if matches!(op, Op::Same(..)) {
            continue;
        }
        let start = k.saturating_sub(context);
        let end = (k + context + 1).min(ops.len());
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

fn render_hunk(out: &mut String, ops: &[Op], a: &[&str], b: &[&str]) {
    use std::fmt::Write as _;
    let old_start = ops.iter().find_map(|op| match op {
        Op::Same(i, _) | Op::Del(i) => Some(*i),
        Op::Add(_) => None,
    });
    let new_start = ops.iter().find_map(|op| match op {
        Op::Same(_, j) | Op::Add(j) => Some(*j),
        Op::Del(_) => None,
    });
    let old_len = ops.iter().filter(|op| !matches!(op, Op::Add(_))).count();
    let new_len = ops.iter().filter(|op| !matches!(op, Op::Del(_))).count();
    let line_no =
        |start: Option<usize>, len: usize| start.map_or(0, |s| s + 1).max(usize::from(len > 0));
    let _ = writeln!(
        out,
        "@@ -{},{old_len} +{},{new_len} @@",
        line_no(old_start, old_len),
        line_no(new_start, new_len)
    );
    for op in ops {
        let _ = match *op {
            Op::Same(i, _) => writeln!(out, " {}", a[i]),
            Op::Del(i) => writeln!(out, "-{}", a[i]),
            Op::Add(j) => writeln!(out, "+{}", b[j]),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrowed(pattern: &str, reached: &[&str]) -> Option<String> {
        narrow(&Pattern::parse(pattern).unwrap(), reached)
    }

    #[test]
    fn patterns_narrow_to_what_was_reached_and_never_widen() {
        assert_eq!(
            narrowed("models/**", &["models/exp-1", "models/exp-2"]).as_deref(),
            Some("models/exp-*")
        );
        assert_eq!(
            narrowed("models/**", &["models/exp-1"]).as_deref(),
            Some("models/exp-1")
        );
        assert_eq!(
            narrowed("models/*", &["models/a", "models/b"]),
            None,
            "already tight"
        );
        assert_eq!(
            narrowed("datasets/**", &["datasets/public/a", "datasets/public/b/c"]).as_deref(),
            Some("datasets/public/**")
        );
        assert_eq!(
            narrowed("**", &["models/x", "datasets/y"]).as_deref(),
            Some("*/*")
        );
        // `*-prod` does not provably cover `a*`: no suggestion rather than a widening.
        assert_eq!(
            narrowed("models/*-prod", &["models/a-prod", "models/ab-prod"]),
            None
        );
    }

    #[test]
    fn the_diff_is_unified_with_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let after = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified_diff(before, after, "old", "new"),
            "--- old\n+++ new\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(unified_diff("x\n", "x\n", "old", "new"), "");
        assert_eq!(
            unified_diff("", "x\n", "old", "new"),
            "--- old\n+++ new\n@@ -0,0 +1,1 @@\n+x\n"
        );
    }
}
