//! The review as one self-contained HTML page: no fetches, no scripts, everything escaped.

use std::fmt::Write as _;

use super::{count, short_version, window_words};
use crate::governance::review::{DailyUsage, ReviewReport, Suggestion};

/// The page's Content Security Policy: nothing may be fetched or run; inline styles and
/// `data:` images only.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The inline style sheet (system fonts: nothing to fetch).
const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;\
max-width:78rem;padding:0 1rem;color:#1b1f24;background:#fff}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de}\
h3{font-size:1rem;margin:1.2rem 0 .4rem}\
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:13px}\
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}\
td.none{color:#57606a;font-style:italic}\
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}\
.scroll{overflow-x:auto}pre{background:#f6f8fa;padding:.6rem;border:1px solid #d0d7de}\
.add{color:#116329;background:#dafbe1}.del{color:#82071e;background:#ffebe9}\
.hunk{color:#0550ae}.hdr{font-weight:bold}.never{color:#82071e}\
svg text{font:11px system-ui,sans-serif;fill:#1b1f24}\
svg .grid{stroke:#d0d7de}svg .axis{stroke:#57606a}\
svg .allow{fill:#2da44e}svg .refusal{fill:#cf222e}\
";

/// Appends formatted HTML (writing to a `String` cannot fail).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

pub(super) fn render(report: &ReviewReport) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let version = esc(short_version(&report.policy_version));
    put!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Access review: policy {version}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Access review</h1>\n<p>Policy version <code>{}</code>, {}.</p>\n",
        esc(&report.policy_version),
        esc(&window_words(&report.window)),
    );
    summary(&mut out, report);
    out.push_str("<h2>Usage over time</h2>\n");
    chart(&mut out, &report.daily);
    unused(&mut out, report);
    grant_usage(&mut out, report);
    wide_grants(&mut out, report);
    callers(&mut out, report);
    suggestion(&mut out, &report.suggestion);
    put!(
        out,
        "<footer><p>Report format <code>{}</code>.</p></footer>\n</body>\n</html>\n",
        esc(report.format)
    );
    out
}

/// `s` escaped for HTML text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A cell of text.
fn td(s: &str) -> String {
    format!("<td>{}</td>", esc(s))
}

/// A cell of a number.
fn td_num(n: u64) -> String {
    format!("<td class=\"num\">{n}</td>")
}

/// A cell of code items, one a line.
fn td_codes(items: &[String]) -> String {
    let mut out = String::from("<td>");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        put!(out, "<code>{}</code>", esc(item));
    }
    out.push_str("</td>");
    out
}

/// `yes` or `no`.
fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A table with a header row; `rows` are rows of cells (`<td>…</td>`); `empty` is shown
/// in a single row when there are none.
fn table(out: &mut String, id: &str, headers: &[&str], rows: &[String], empty: &str) {
    put!(
        out,
        "<div class=\"scroll\"><table id=\"{id}\">\n<thead><tr>"
    );
    for h in headers {
        put!(out, "<th scope=\"col\">{h}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if rows.is_empty() {
        put!(
            out,
            "<tr><td class=\"none\" colspan=\"{}\">{empty}</td></tr>\n",
            headers.len()
        );
    }
    for row in rows {
        put!(out, "<tr>{row}</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
}

fn summary(out: &mut String, report: &ReviewReport) {
    let (w, t) = (&report.window, &report.totals);
    out.push_str("<h2>Summary</h2>\n");
    let opt = |s: &Option<String>| s.as_deref().map_or_else(|| "open".to_owned(), esc);
    let rows = [
        ("Window starts", opt(&w.since)),
        ("Window ends (excluded)", opt(&w.until)),
        (
            "First decision",
            w.first_event
                .as_deref()
                .map_or_else(|| "none".to_owned(), esc),
        ),
        (
            "Last decision",
            w.last_event
                .as_deref()
                .map_or_else(|| "none".to_owned(), esc),
        ),
        ("Decisions", t.decisions.to_string()),
        ("Allows", t.allows.to_string()),
        ("Refusals", t.refusals.to_string()),
        ("Callers", t.callers.to_string()),
        (
            "Decided under another policy version",
            t.other_policy_versions.to_string(),
        ),
        (
            "Without recorded inputs (v1 events)",
            t.without_inputs.to_string(),
        ),
        (
            "Allows credited to no grant (another policy version)",
            t.uncredited_allows.to_string(),
        ),
        ("Unreadable lines", t.unreadable_lines.to_string()),
        (
            "Skipped (outside the window, not decisions)",
            t.skipped.to_string(),
        ),
    ];
    out.push_str("<table id=\"summary\">\n<tbody>\n");
    for (name, value) in rows {
        put!(
            out,
            "<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>\n"
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The y axis: a round step (1, 2 or 5 times a power of ten) and the top (a multiple of
/// it, at most four steps) for values up to `max`.
pub(super) fn scale(max: u64) -> (u64, u64) {
    let mut step: u64 = 1;
    let mut multipliers = [2u64, 5, 10].into_iter().cycle();
    let mut base: u64 = 1;
    while step.saturating_mul(4) < max {
        match multipliers.next() {
            Some(10) | None => {
                base = base.saturating_mul(10);
                step = base;
            }
            Some(m) => step = base.saturating_mul(m),
        }
    }
    let steps = max.div_ceil(step).max(1);
    (step, step.saturating_mul(steps))
}

/// Allows and refusals per day, side by side: an inline SVG, one `<rect>` per non-zero
/// value, each with a `<title>` (shown on hover).
fn chart(out: &mut String, daily: &[DailyUsage]) {
    if daily.is_empty() {
        out.push_str("<p id=\"usage-chart\">No decisions in the window: nothing to chart.</p>\n");
        return;
    }
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 30.0;
    const PLOT_H: f64 = 200.0;
    const BOTTOM: f64 = 48.0;
    let days = daily.len() as f64;
    let slot = (900.0 / days).clamp(6.0, 80.0);
    let plot_w = slot * days;
    // Wide enough for the legend and the axis title, however few the days.
    let width = (LEFT + plot_w + RIGHT).max(260.0);
    let height = TOP + PLOT_H + BOTTOM;
    let max = daily
        .iter()
        .map(|d| d.allows.max(d.refusals))
        .max()
        .unwrap_or(0);
    let (step, top) = scale(max);
    let y_of = |v: u64| TOP + PLOT_H - (v as f64 / top as f64) * PLOT_H;
    let base = TOP + PLOT_H;
    put!(
        out,
        "<div class=\"scroll\"><svg id=\"usage-chart\" role=\"img\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\n\
         <title>Allows and refusals per day (UTC)</title>\n"
    );
    // Grid lines and y labels.
    let mut tick = 0;
    while tick <= top {
        let y = y_of(tick);
        put!(
            out,
            "<line class=\"grid\" x1=\"{LEFT:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>\n",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0
        );
        match tick.checked_add(step) {
            Some(next) => tick = next,
            None => break,
        }
    }
    // Bars: allows on the left half of a day's slot, refusals on the right.
    let bar_w = slot * 0.4;
    for (i, d) in daily.iter().enumerate() {
        let x0 = LEFT + slot * i as f64;
        for (value, class, x, one, many) in [
            (d.allows, "allow", x0 + slot * 0.1, "allow", "allows"),
            (
                d.refusals,
                "refusal",
                x0 + slot * 0.5,
                "refusal",
                "refusals",
            ),
        ] {
            if value == 0 {
                continue;
            }
            // At least a pixel, so that a small count next to a large one stays visible.
            let h = (base - y_of(value)).max(1.0);
            put!(
                out,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" \
                 height=\"{h:.1}\"><title>{}: {}</title></rect>\n",
                base - h,
                esc(&d.day),
                count(value, one, many)
            );
        }
    }
    // Day labels, thinned so that they do not overlap (a date is about 60 px wide).
    let every = (64.0 / slot).ceil().max(1.0) as usize;
    for (i, d) in daily.iter().enumerate().step_by(every) {
        put!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            LEFT + slot * (i as f64 + 0.5),
            base + 16.0,
            esc(&d.day)
        );
    }
    put!(
        out,
        "<line class=\"axis\" x1=\"{LEFT:.1}\" x2=\"{LEFT:.1}\" y1=\"{TOP:.1}\" y2=\"{base:.1}\"/>\
         <line class=\"axis\" x1=\"{LEFT:.1}\" x2=\"{:.1}\" y1=\"{base:.1}\" y2=\"{base:.1}\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">Day (UTC)</text>\n\
         <text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">Decisions</text>\n\
         <circle class=\"allow\" cx=\"{:.1}\" cy=\"12\" r=\"5\"/><text x=\"{:.1}\" y=\"16\">allows</text>\n\
         <circle class=\"refusal\" cx=\"{:.1}\" cy=\"12\" r=\"5\"/><text x=\"{:.1}\" y=\"16\">refusals</text>\n\
         </svg></div>\n",
        LEFT + plot_w,
        LEFT + plot_w / 2.0,
        base + 40.0,
        TOP + PLOT_H / 2.0,
        LEFT + 6.0,
        LEFT + 14.0,
        LEFT + 76.0,
        LEFT + 84.0,
    );
}

fn unused(out: &mut String, report: &ReviewReport) {
    let u = &report.unused;
    out.push_str("<h2>Unused</h2>\n<h3>Roles</h3>\n");
    let rows: Vec<String> = u.roles.iter().map(|r| td(r)).collect();
    table(
        out,
        "unused-roles",
        &["Role"],
        &rows,
        "None: every role was used.",
    );
    out.push_str("<h3>Grants</h3>\n");
    let rows: Vec<String> = u
        .grants
        .iter()
        .map(|g| {
            format!(
                "{}{}{}",
                td(&g.grant),
                td_codes(&g.actions),
                td_codes(&g.resources)
            )
        })
        .collect();
    let headers = ["Grant", "Actions", "Resources"];
    table(
        out,
        "unused-grants",
        &headers,
        &rows,
        "None: every grant allowed something.",
    );
    out.push_str("<h3>Bindings</h3>\n");
    let rows: Vec<String> = u.bindings.iter().map(|b| td(b)).collect();
    let empty = "None: every binding conferred a role that was used.";
    table(out, "unused-bindings", &["Binding"], &rows, empty);
}

fn grant_usage(out: &mut String, report: &ReviewReport) {
    out.push_str("<h2>Grant usage</h2>\n");
    let rows: Vec<String> = report
        .grants
        .iter()
        .map(|g| {
            let reached = if g.reached_truncated {
                format!("<td class=\"num\">at least {}</td>", g.resources_reached)
            } else {
                td_num(g.resources_reached)
            };
            format!(
                "{}{}{}{}{reached}{}",
                td(&g.grant),
                td_num(g.uses),
                td_num(g.callers),
                td(&g.last_used),
                td_codes(&g.reached_sample)
            )
        })
        .collect();
    let headers = [
        "Grant",
        "Allows",
        "Callers",
        "Last used",
        "Resources reached",
        "First resources reached",
    ];
    table(
        out,
        "grant-usage",
        &headers,
        &rows,
        "No grant allowed anything.",
    );
}

fn wide_grants(out: &mut String, report: &ReviewReport) {
    out.push_str("<h2>Wide grants</h2>\n");
    let rows: Vec<String> = report
        .wide_grants
        .iter()
        .map(|g| {
            format!(
                "{}{}{}{}{}",
                td(&g.grant),
                td_codes(&g.patterns),
                td_codes(&g.suggested),
                td_num(g.resources_reached),
                td_codes(&g.reached_sample)
            )
        })
        .collect();
    let headers = [
        "Grant",
        "Patterns",
        "Suggested",
        "Resources reached",
        "First resources reached",
    ];
    let empty = "None: no used grant is wider than what it reached.";
    table(out, "wide-grants", &headers, &rows, empty);
}

fn callers(out: &mut String, report: &ReviewReport) {
    out.push_str("<h2>Callers</h2>\n");
    let mut rows = Vec::new();
    for c in &report.callers {
        // The CSV's column order: who, the role and its use, then the caller's totals.
        let who = format!(
            "{}{}{}{}",
            td(&c.tenant_id),
            td(&c.object_id),
            td(&c.kind),
            td(yes_no(c.guest)),
        );
        let totals = format!(
            "{}{}{}{}{}{}",
            td_num(c.decisions),
            td_num(c.allows),
            td_num(c.refusals),
            td(&c.first_seen),
            td(&c.last_seen),
            td(yes_no(c.roles_complete)),
        );
        if c.roles.is_empty() {
            rows.push(format!(
                "{who}<td class=\"none\" colspan=\"4\">no roles held</td>{totals}"
            ));
        }
        for r in &c.roles {
            let last = match &r.last_used {
                Some(at) => td(at),
                None => "<td class=\"never\">never used</td>".to_owned(),
            };
            rows.push(format!(
                "{who}{}{}{}{last}{totals}",
                td(&r.role),
                td_codes(&held_via(r)),
                td_num(r.uses)
            ));
        }
    }
    let headers = [
        "Tenant (tid)",
        "Object (oid)",
        "Kind",
        "Guest",
        "Role",
        "Bindings",
        "Uses",
        "Last used",
        "Decisions",
        "Allows",
        "Refusals",
        "First seen",
        "Last seen",
        "Roles complete",
    ];
    table(out, "callers", &headers, &rows, "No callers in the window.");
}

fn suggestion(out: &mut String, s: &Suggestion) {
    out.push_str("<h2>Suggested policy</h2>\n");
    let mut rows = vec![
        ("Loads", yes_no(s.loads).to_owned()),
        ("Changes", s.changes.len().to_string()),
        ("Lint warnings", s.lint_warnings.len().to_string()),
    ];
    if let Some(error) = &s.load_error {
        rows.insert(1, ("Load error", esc(error)));
    }
    match &s.replay {
        Some(r) => rows.extend([
            ("Replay: decisions", r.decisions.to_string()),
            ("Replay: changed", r.changed.to_string()),
            ("Replay: allow to deny", r.allow_to_deny.to_string()),
            ("Replay: deny to allow", r.deny_to_allow.to_string()),
            ("Replay: other", r.other.to_string()),
            ("Replay: inexact", r.inexact.to_string()),
            ("Replay: not replayable", r.not_replayable.to_string()),
        ]),
        None => rows.push(("Replay", "not replayed".to_owned())),
    }
    out.push_str("<table id=\"suggestion\">\n<tbody>\n");
    for (name, value) in rows {
        put!(
            out,
            "<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>\n"
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if s.replay.as_ref().is_some_and(|r| r.keeps_every_allow()) {
        out.push_str("<p>Replayed over the same window, the suggestion keeps every allow.</p>\n");
    }
    if let Some(r) = s.replay.as_ref().filter(|r| r.deny_to_allow > 0) {
        put!(
            out,
            "<p class=\"warning\">Warning: it would allow {} request(s) the reviewed policy refused.</p>\n",
            r.deny_to_allow
        );
    }
    list(out, "Changes", &s.changes, "None.");
    list(out, "Lint warnings", &s.lint_warnings, "None.");
    out.push_str("<h3>Diff</h3>\n");
    if s.diff.is_empty() {
        out.push_str("<p>None: the suggestion is the reviewed policy.</p>\n");
    } else {
        out.push_str("<pre class=\"diff\">");
        for line in s.diff.lines() {
            let class = if line.starts_with("+++") || line.starts_with("---") {
                "hdr"
            } else if line.starts_with("@@") {
                "hunk"
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else {
                ""
            };
            if class.is_empty() {
                put!(out, "{}\n", esc(line));
            } else {
                put!(out, "<span class=\"{class}\">{}</span>\n", esc(line));
            }
        }
        out.push_str("</pre>\n");
    }
    if !s.policy_toml.is_empty() {
        put!(
            out,
            "<details><summary>The suggested policy (TOML)</summary>\n<pre>{}</pre>\n</details>\n",
            esc(&s.policy_toml)
        );
    }
}

/// A heading and a bulleted list.
fn list(out: &mut String, heading: &str, items: &[String], empty: &str) {
    put!(out, "<h3>{heading}</h3>\n");
    if items.is_empty() {
        put!(out, "<p>{empty}</p>\n");
        return;
    }
    out.push_str("<ul>\n");
    for item in items {
        put!(out, "<li>{}</li>\n", esc(item));
    }
    out.push_str("</ul>\n");
}

/// The bindings of a held role, then `included by <role>` for each held role including it.
fn held_via(r: &super::super::HeldRole) -> Vec<String> {
    let included = r.included_by.iter().map(|i| format!("included by {i}"));
    r.bindings.iter().cloned().chain(included).collect()
}
