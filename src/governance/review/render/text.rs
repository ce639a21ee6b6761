//! The review for a terminal.

use std::fmt::Write as _;

use super::{clean, count, short_version, window_words};
use crate::governance::review::{
    CallerEvidence, GrantUsage, ReviewReport, Suggestion, Unused, WideGrant,
};

/// Appends one line (writing to a `String` cannot fail).
macro_rules! ln {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

pub(super) fn render(report: &ReviewReport) -> String {
    let mut out = String::with_capacity(4096);
    header(&mut out, report);
    unused(&mut out, &report.unused);
    grant_usage(&mut out, &report.grants);
    wide_grants(&mut out, &report.wide_grants);
    callers(&mut out, &report.callers);
    suggestion(&mut out, &report.suggestion);
    out
}

/// `a, b, c` with each item cleaned, `none` when empty.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(|s| clean(s))
        .collect::<Vec<_>>()
        .join(", ")
}

fn header(out: &mut String, report: &ReviewReport) {
    let w = &report.window;
    ln!(
        out,
        "Access review of policy {}",
        clean(short_version(&report.policy_version))
    );
    let mut window = format!("Window: {}", clean(&window_words(w)));
    match (&w.first_event, &w.last_event) {
        (Some(first), Some(last)) => {
            let _ = write!(
                window,
                "; decisions from {} to {}",
                clean(first),
                clean(last)
            );
        }
        _ => window.push_str("; no decisions read"),
    }
    ln!(out, "{window}");
    let t = &report.totals;
    ln!(out, "\nTotals");
    let rows = [
        ("decisions", t.decisions),
        ("  allows", t.allows),
        ("  refusals", t.refusals),
        ("callers", t.callers),
        ("other_policy_versions", t.other_policy_versions),
        ("without_inputs", t.without_inputs),
        ("uncredited_allows", t.uncredited_allows),
        ("unreadable_lines", t.unreadable_lines),
        ("skipped", t.skipped),
    ];
    for (name, value) in rows {
        ln!(out, "  {name:<22}{value:>10}");
    }
    if t.other_policy_versions > 0 {
        ln!(
            out,
            "  note: {} decided under another policy version: their roles and grants are \
             counted as recorded",
            count(t.other_policy_versions, "decision was", "decisions were")
        );
    }
    if t.without_inputs > 0 {
        ln!(
            out,
            "  note: {} had no recorded inputs (v1 events): those callers' held roles are \
             only the roles seen in use",
            count(t.without_inputs, "decision", "decisions")
        );
    }
}

fn unused(out: &mut String, unused: &Unused) {
    ln!(out, "\nUnused");
    ln!(out, "  roles: {}", list(&unused.roles));
    if unused.grants.is_empty() {
        ln!(out, "  grants: none");
    } else {
        ln!(out, "  grants:");
        for g in &unused.grants {
            ln!(
                out,
                "    {}: {} on {}",
                clean(&g.grant),
                list(&g.actions),
                list(&g.resources)
            );
        }
    }
    ln!(out, "  bindings: {}", list(&unused.bindings));
}

fn grant_usage(out: &mut String, grants: &[GrantUsage]) {
    ln!(out, "\nGrant usage");
    if grants.is_empty() {
        ln!(out, "  no grant allowed anything");
    }
    for g in grants {
        let reached = if g.reached_truncated {
            format!("at least {} resources reached", g.resources_reached)
        } else {
            count(g.resources_reached, "resource reached", "resources reached")
        };
        ln!(
            out,
            "  {}: {} by {}, last used {}; {reached}: {}",
            clean(&g.grant),
            count(g.uses, "allow", "allows"),
            count(g.callers, "caller", "callers"),
            clean(&g.last_used),
            list(&g.reached_sample)
        );
    }
}

fn wide_grants(out: &mut String, wide: &[WideGrant]) {
    ln!(out, "\nWide grants");
    if wide.is_empty() {
        ln!(out, "  none");
    }
    for g in wide {
        ln!(
            out,
            "  {}: {} -> {}; {}: {}",
            clean(&g.grant),
            list(&g.patterns),
            list(&g.suggested),
            count(g.resources_reached, "resource reached", "resources reached"),
            list(&g.reached_sample)
        );
    }
}

fn callers(out: &mut String, callers: &[CallerEvidence]) {
    ln!(out, "\nCallers");
    if callers.is_empty() {
        ln!(out, "  none");
    }
    for c in callers {
        let guest = if c.guest { ", guest" } else { "" };
        ln!(
            out,
            "  {}/{} ({}{guest})",
            clean(&c.tenant_id),
            clean(&c.object_id),
            clean(&c.kind)
        );
        ln!(
            out,
            "    {}: {}, {}; first seen {}, last seen {}",
            count(c.decisions, "decision", "decisions"),
            count(c.allows, "allow", "allows"),
            count(c.refusals, "refusal", "refusals"),
            clean(&c.first_seen),
            clean(&c.last_seen)
        );
        if c.roles.is_empty() {
            ln!(out, "    no roles held");
        }
        for r in &c.roles {
            let last = match &r.last_used {
                Some(at) => format!("{}, last used {}", count(r.uses, "use", "uses"), clean(at)),
                None => "never used".to_owned(),
            };
            let how = if r.bindings.is_empty() && !r.included_by.is_empty() {
                format!("included by {}", list(&r.included_by))
            } else {
                format!("via {}", list(&r.bindings))
            };
            ln!(out, "    {} {how}: {last}", clean(&r.role));
        }
        if !c.roles_complete {
            ln!(
                out,
                "    (may be incomplete: the last decision did not record every group the reviewed policy reads)"
            );
        }
    }
}

fn suggestion(out: &mut String, s: &Suggestion) {
    ln!(out, "\nSuggested policy");
    if s.changes.is_empty() {
        ln!(out, "  changes: none");
    } else {
        ln!(out, "  changes:");
        for change in &s.changes {
            ln!(out, "    {}", clean(change));
        }
    }
    match (&s.loads, &s.load_error) {
        (true, _) => ln!(out, "  loads: yes"),
        (false, Some(error)) => ln!(out, "  loads: no: {}", clean(error)),
        (false, None) => ln!(out, "  loads: no"),
    }
    if s.lint_warnings.is_empty() {
        ln!(out, "  lint warnings: none");
    } else {
        ln!(out, "  lint warnings:");
        for warning in &s.lint_warnings {
            ln!(out, "    {}", clean(warning));
        }
    }
    match &s.replay {
        Some(r) => {
            ln!(
                out,
                "  replay over the same window: {}, {} changed (allow_to_deny {}, \
                 deny_to_allow {}, other {}), inexact {}, not_replayable {}",
                count(r.decisions, "decision", "decisions"),
                r.changed,
                r.allow_to_deny,
                r.deny_to_allow,
                r.other,
                r.inexact,
                r.not_replayable
            );
            if r.keeps_every_allow() {
                ln!(out, "  every allow of the window is kept");
            }
            if r.deny_to_allow > 0 {
                ln!(
                    out,
                    "  WARNING: it would allow {} the reviewed policy refused",
                    count(r.deny_to_allow, "request", "requests")
                );
            }
        }
        None => ln!(out, "  replay: not replayed"),
    }
    if s.diff.is_empty() {
        ln!(out, "  diff: none (the suggestion is the reviewed policy)");
    } else {
        ln!(out, "  diff:");
        // Unindented, as a unified diff is written (between the normalised forms).
        for l in s.diff.lines() {
            ln!(out, "{}", clean(l));
        }
    }
}
