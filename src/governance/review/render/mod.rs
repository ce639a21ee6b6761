//! Renderings of a [`ReviewReport`]: [`text`] for a terminal, [`csv`] for the evidence an
//! Entra access reviewer attaches, [`html`] for one self-contained page.
//!
//! ```
//! use entra_governor::governance::review::{render, Review, ReviewOptions};
//! use entra_governor::policy::Policy;
//!
//! let policy = Policy::from_toml_str(r#"
//! version = 1
//! [roles.reader]
//! grants = [{ actions = ["models.read"], resources = ["models/**"] }]
//! [[bindings]]
//! group = "0b1f2e3d-4c5b-4a69-8877-665544332211"
//! roles = ["reader"]
//! "#)?;
//! let mut review = Review::new(&policy, ReviewOptions::default());
//! review.read_trail(std::io::Cursor::new(""))?;
//! let report = review.finish();
//!
//! assert!(render::text(&report).contains("reader#0: models.read on models/**"));
//! assert!(render::csv(&report).starts_with("tenant_id,object_id,kind,guest,role,"));
//! let page = render::html(&report);
//! assert!(page.contains(r#"<table id="unused-grants">"#) && !page.contains("<script"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every rendering keeps the report's order (its lists are sorted), so the same report
//! always renders to the same bytes. Report text comes from callers (resources) and
//! policies (role and binding names), so each rendering neutralises it for its reader:
//! the text escapes control and bidirectional-override characters (no terminal escape
//! sequences, no reordered lines), the CSV guards against formula injection, the HTML
//! escapes everything.

mod csv;
mod html;
mod text;

use std::borrow::Cow;

use super::{ReviewReport, ReviewWindow};

/// The report for a terminal: totals, unused roles, grants and bindings, grant usage, wide
/// grants, one block per caller and the suggested policy with its diff.
///
/// Control characters and bidirectional overrides in report text are shown escaped
/// (`\u{1b}`), so a resource name cannot move the cursor or reorder what a reviewer reads.
pub fn text(report: &ReviewReport) -> String {
    text::render(report)
}

/// Per-caller evidence as CSV (RFC 4180, CRLF line ends): one row per caller and role
/// held, a caller without roles on one row with an empty `role`.
///
/// The columns are `tenant_id,object_id,kind,guest,role,bindings,uses,last_used,`
/// `first_seen,last_seen,decisions,allows,refusals,roles_complete`; `bindings` joins the
/// bindings that confer the role and `included_by:<role>` for each held role that
/// includes it with `;`, `last_used` is empty for a role never used in
/// the window.
///
/// Fields holding `,`, `"`, CR or LF are quoted, quotes doubled. **Formula injection
/// guard**: a field that starts with `=`, `+`, `-`, `@`, TAB or CR (which spreadsheets
/// evaluate as a formula) gets a leading `'`, and so does a field that already starts with
/// `'`; so a field starting with `'` always had exactly one `'` added, and removing it
/// gives the value in the report back.
pub fn csv(report: &ReviewReport) -> String {
    csv::render(report)
}

/// The report as one self-contained HTML5 page: tables, an inline SVG chart of allows and
/// refusals per day, the suggested policy's diff.
///
/// The page fetches nothing (no scripts, styles, fonts or images from anywhere: its
/// Content Security Policy is `default-src 'none'; style-src 'unsafe-inline'; img-src
/// data:`) and runs no JavaScript. All report text is HTML-escaped (`&`, `<`, `>`, `"`,
/// `'`). The tables have the ids `summary`, `unused-roles`, `unused-grants`,
/// `unused-bindings`, `grant-usage`, `wide-grants`, `callers` and `suggestion`; the chart
/// is `usage-chart` (a sentence with that id when the window holds no decisions).
pub fn html(report: &ReviewReport) -> String {
    html::render(report)
}

/// The first 12 characters of a policy version (a hex hash), as `git` shortens commits.
fn short_version(version: &str) -> &str {
    match version.char_indices().nth(12) {
        Some((end, _)) => &version[..end],
        None => version,
    }
}

/// The window in words: `since … until …`, `all events`.
fn window_words(window: &ReviewWindow) -> String {
    match (&window.since, &window.until) {
        (Some(since), Some(until)) => format!("since {since} until {until}"),
        (Some(since), None) => format!("since {since}"),
        (None, Some(until)) => format!("until {until}"),
        (None, None) => "all events".to_owned(),
    }
}

/// `1 allow`, `2 allows`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `s` with control characters and bidirectional controls escaped (`\n`, `\u{202e}`),
/// for text from a trail (actions, resources, names) shown on a terminal: no escape
/// sequence runs and no line is reordered.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    clean(s)
}

/// See [`terminal_safe`].
fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the bidirectional embedding, override and isolate
/// characters that reorder a line when displayed ("Trojan Source").
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::replay::ReplayTotals;
    use crate::governance::review::{
        CallerEvidence, DailyUsage, GrantUsage, HeldRole, REVIEW_FORMAT, ReviewTotals, Suggestion,
        Unused, UnusedGrant, WideGrant,
    };

    const TID: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
    const ALICE: &str = "0a0a0a0a-1111-4222-8333-444444444444";
    const PIPELINE: &str = "0b0b0b0b-1111-4222-8333-555555555555";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Two callers (a guest user holding a role it never used, and an application), a
    /// wide grant reached by a `<script>` resource, unused items, three days, a diff.
    fn sample() -> ReviewReport {
        ReviewReport {
            format: REVIEW_FORMAT,
            policy_version: "0123456789abcdef0123456789abcdef".to_owned(),
            window: ReviewWindow {
                since: Some("2026-11-01T00:00:00Z".to_owned()),
                until: Some("2026-11-04T00:00:00Z".to_owned()),
                first_event: Some("2026-11-01T08:00:00Z".to_owned()),
                last_event: Some("2026-11-03T17:30:00Z".to_owned()),
            },
            totals: ReviewTotals {
                decisions: 12,
                allows: 9,
                refusals: 3,
                callers: 2,
                ..ReviewTotals::default()
            },
            unused: Unused {
                roles: strings(&["auditor"]),
                grants: vec![UnusedGrant {
                    grant: "auditor#0".to_owned(),
                    actions: strings(&["audit.read"]),
                    resources: strings(&["audit/**"]),
                }],
                bindings: strings(&["group:auditors"]),
            },
            grants: vec![GrantUsage {
                grant: "data-scientist#0".to_owned(),
                uses: 7,
                callers: 1,
                last_used: "2026-11-03T17:30:00Z".to_owned(),
                resources_reached: 2,
                reached_truncated: false,
                reached_sample: strings(&["models/exp-1", "models/exp-<script>alert(1)"]),
            }],
            wide_grants: vec![WideGrant {
                grant: "data-scientist#0".to_owned(),
                patterns: strings(&["models/**"]),
                suggested: strings(&["models/exp-*"]),
                resources_reached: 2,
                reached_sample: strings(&["models/exp-1", "models/exp-<script>alert(1)"]),
            }],
            callers: vec![
                CallerEvidence {
                    tenant_id: TID.to_owned(),
                    object_id: ALICE.to_owned(),
                    kind: "user".to_owned(),
                    guest: true,
                    first_seen: "2026-11-01T08:00:00Z".to_owned(),
                    last_seen: "2026-11-03T17:30:00Z".to_owned(),
                    decisions: 10,
                    allows: 7,
                    refusals: 3,
                    roles_complete: true,
                    roles: vec![
                        HeldRole {
                            role: "auditor".to_owned(),
                            bindings: strings(&["=cmd", "group:auditors"]),
                            included_by: Vec::new(),
                            uses: 0,
                            last_used: None,
                        },
                        HeldRole {
                            role: "data-scientist".to_owned(),
                            bindings: strings(&["group:data \"scientists\", all"]),
                            included_by: Vec::new(),
                            uses: 7,
                            last_used: Some("2026-11-03T17:30:00Z".to_owned()),
                        },
                    ],
                },
                CallerEvidence {
                    tenant_id: TID.to_owned(),
                    object_id: PIPELINE.to_owned(),
                    kind: "application".to_owned(),
                    guest: false,
                    first_seen: "2026-11-02T09:00:00Z".to_owned(),
                    last_seen: "2026-11-02T09:05:00Z".to_owned(),
                    decisions: 2,
                    allows: 2,
                    refusals: 0,
                    roles_complete: false,
                    roles: Vec::new(),
                },
            ],
            daily: vec![
                DailyUsage {
                    day: "2026-11-01".to_owned(),
                    allows: 4,
                    refusals: 1,
                },
                DailyUsage {
                    day: "2026-11-02".to_owned(),
                    allows: 3,
                    refusals: 0,
                },
                DailyUsage {
                    day: "2026-11-03".to_owned(),
                    allows: 2,
                    refusals: 2,
                },
            ],
            suggestion: Suggestion {
                changes: strings(&[
                    "remove grant auditor#0 (never used)",
                    "data-scientist#0: narrow models/** to models/exp-*",
                ]),
                policy_toml: "version = 1\n".to_owned(),
                diff: "--- reviewed\n+++ suggested\n@@ -1,3 +1,3 @@\n [roles.data-scientist]\n\
                       -grants = [{ resources = [\"models/**\"] }]\n\
                       +grants = [{ resources = [\"models/exp-*\"] }]\n"
                    .to_owned(),
                loads: true,
                load_error: None,
                lint_warnings: strings(&["role auditor: bound by nothing"]),
                replay: Some(ReplayTotals {
                    decisions: 12,
                    changed: 1,
                    other: 1,
                    ..ReplayTotals::default()
                }),
            },
        }
    }

    #[test]
    fn csv_has_the_header_and_one_row_per_caller_and_role() {
        let csv = csv(&sample());
        let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
        assert_eq!(
            rows,
            [
                "tenant_id,object_id,kind,guest,role,bindings,uses,last_used,first_seen,\
                 last_seen,decisions,allows,refusals,roles_complete",
                &format!(
                    "{TID},{ALICE},user,true,auditor,'=cmd;group:auditors,0,,\
                     2026-11-01T08:00:00Z,2026-11-03T17:30:00Z,10,7,3,true"
                ),
                &format!(
                    "{TID},{ALICE},user,true,data-scientist,\"group:data \"\"scientists\"\", all\",\
                     7,2026-11-03T17:30:00Z,2026-11-01T08:00:00Z,2026-11-03T17:30:00Z,10,7,3,true"
                ),
                &format!(
                    "{TID},{PIPELINE},application,false,,,,,\
                     2026-11-02T09:00:00Z,2026-11-02T09:05:00Z,2,2,0,false"
                ),
            ]
        );
        assert!(csv.ends_with("\r\n") && !csv.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn csv_guards_every_formula_lead_and_quotes_line_breaks() {
        let mut out = String::new();
        for value in ["-x", "+1", "@SUM(A1)", "\tx", "=1+1", "'quoted", "a-b", ""] {
            csv::field(&mut out, value);
            out.push('|');
        }
        assert_eq!(out, "'-x|'+1|'@SUM(A1)|'\tx|'=1+1|''quoted|a-b||");
        let mut out = String::new();
        csv::field(&mut out, "\r=x");
        csv::field(&mut out, "a\nb");
        assert_eq!(out, "\"'\r=x\"\"a\nb\"");
    }

    #[test]
    fn html_escapes_report_text_and_fetches_nothing() {
        let page = html(&sample());
        assert!(page.contains("<code>models/exp-&lt;script&gt;alert(1)</code>"));
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("group:data &quot;scientists&quot;, all"));
        assert!(page.contains(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        )));
        assert!(page.contains("<title>Access review: policy 0123456789ab</title>"));
        for forbidden in ["http://", "https://", "src=", "href=", "url(", "@import"] {
            assert!(!page.contains(forbidden), "the page holds {forbidden}");
        }
        assert!(page.starts_with("<!DOCTYPE html>\n") && page.ends_with("</html>\n"));
    }

    #[test]
    fn html_has_every_table_and_the_chart() {
        let page = html(&sample());
        for id in [
            "summary",
            "unused-roles",
            "unused-grants",
            "unused-bindings",
            "grant-usage",
            "wide-grants",
            "callers",
            "suggestion",
        ] {
            assert!(
                page.contains(&format!("<table id=\"{id}\">")),
                "no table {id}"
            );
        }
        assert!(page.contains("<svg id=\"usage-chart\""));
        // Callers: one row per caller and role, the unused role marked.
        assert!(page.contains("<td>auditor</td><td><code>=cmd</code><br><code>group:auditors</code></td><td class=\"num\">0</td><td class=\"never\">never used</td>"));
        assert!(page.contains("<td class=\"none\" colspan=\"4\">no roles held</td>"));
        // The diff's lines are coloured.
        assert!(page.contains(
            "<span class=\"del\">-grants = [{ resources = [&quot;models/**&quot;] }]</span>"
        ));
        assert!(page.contains(
            "<span class=\"add\">+grants = [{ resources = [&quot;models/exp-*&quot;] }]</span>"
        ));
        assert!(page.contains("<span class=\"hunk\">@@ -1,3 +1,3 @@</span>"));
        assert!(page.contains("<li>remove grant auditor#0 (never used)</li>"));
    }

    #[test]
    fn the_chart_has_one_bar_per_non_zero_value_with_a_title() {
        let page = html(&sample());
        // 4+1, 3+0, 2+2: five non-zero values.
        assert_eq!(page.matches("<rect").count(), 5);
        assert_eq!(page.matches("<rect class=\"allow\"").count(), 3);
        assert_eq!(page.matches("<rect class=\"refusal\"").count(), 2);
        assert!(page.contains("<title>2026-11-01: 4 allows</title>"));
        assert!(page.contains("<title>2026-11-01: 1 refusal</title>"));
        assert!(!page.contains("2026-11-02: 0 refusals"));
        for day in ["2026-11-01", "2026-11-02", "2026-11-03"] {
            assert!(page.contains(&format!("text-anchor=\"middle\">{day}</text>")));
        }
        assert!(page.contains(">Decisions</text>") && page.contains(">Day (UTC)</text>"));
    }

    #[test]
    fn an_empty_window_charts_a_sentence_and_empty_tables_say_so() {
        let mut report = sample();
        report.daily.clear();
        report.unused = Unused::default();
        let page = html(&report);
        assert!(!page.contains("<svg"));
        assert!(page.contains("<p id=\"usage-chart\">No decisions in the window"));
        assert!(page.contains("<table id=\"unused-roles\">"));
        assert!(page.contains("None: every role was used."));
    }

    #[test]
    fn the_scale_is_round_and_covers_the_maximum() {
        for (max, expected) in [
            (0, (1, 1)),
            (1, (1, 1)),
            (4, (1, 4)),
            (5, (2, 6)),
            (9, (5, 10)),
            (37, (10, 40)),
            (1000, (500, 1000)),
            (u64::MAX, (5_000_000_000_000_000_000, u64::MAX)),
        ] {
            assert_eq!(html::scale(max), expected, "max {max}");
        }
    }

    #[test]
    fn text_reports_each_section_and_never_used_roles() {
        let text = text(&sample());
        for piece in [
            "Access review of policy 0123456789ab\n",
            "Window: since 2026-11-01T00:00:00Z until 2026-11-04T00:00:00Z; decisions from \
             2026-11-01T08:00:00Z to 2026-11-03T17:30:00Z\n",
            "  decisions                     12\n",
            "  roles: auditor\n",
            "    auditor#0: audit.read on audit/**\n",
            "  bindings: group:auditors\n",
            "  data-scientist#0: 7 allows by 1 caller, last used 2026-11-03T17:30:00Z; 2 resources \
             reached: models/exp-1, models/exp-<script>alert(1)\n",
            "  data-scientist#0: models/** -> models/exp-*; 2 resources reached: models/exp-1, \
             models/exp-<script>alert(1)\n",
            &format!("  {TID}/{ALICE} (user, guest)\n"),
            "    10 decisions: 7 allows, 3 refusals; first seen 2026-11-01T08:00:00Z, last seen \
             2026-11-03T17:30:00Z\n",
            "    auditor via =cmd, group:auditors: never used\n",
            "    data-scientist via group:data \"scientists\", all: 7 uses, last used \
             2026-11-03T17:30:00Z\n",
            &format!("  {TID}/{PIPELINE} (application)\n"),
            "    no roles held\n    (may be incomplete",
            "    remove grant auditor#0 (never used)\n",
            "  loads: yes\n",
            "  lint warnings:\n    role auditor: bound by nothing\n",
            "  replay over the same window: 12 decisions, 1 changed (allow_to_deny 0, \
             deny_to_allow 0, other 1), inexact 0, not_replayable 0\n  every allow of the \
             window is kept\n",
            "  diff:\n--- reviewed\n+++ suggested\n@@ -1,3 +1,3 @@\n",
        ] {
            assert!(text.contains(piece), "missing {piece:?} in\n{text}");
        }
        let order = [
            "\nTotals",
            "\nUnused",
            "\nGrant usage",
            "\nWide grants",
            "\nCallers",
            "\nSuggested policy",
        ]
        .map(|h| text.find(h).unwrap_or(usize::MAX));
        assert!(order.is_sorted() && order[5] != usize::MAX, "{order:?}");
    }

    #[test]
    fn text_escapes_terminal_controls_and_bidi_overrides() {
        let mut report = sample();
        report.unused.roles = strings(&["evil\u{1b}[2J", "ab\u{202e}dc", "two\nlines"]);
        let text = text(&report);
        assert!(
            text.contains("  roles: evil\\u{1b}[2J, ab\\u{202e}dc, two\\nlines\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    }

    #[test]
    fn short_versions_never_split_a_character() {
        assert_eq!(short_version("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_version("abc"), "abc");
        assert_eq!(short_version("ééééééééééééé"), "éééééééééééé");
    }
}
