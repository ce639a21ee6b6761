//! Per-caller evidence as RFC 4180 CSV, guarded against formula injection.

use std::borrow::Cow;

use crate::governance::review::ReviewReport;

/// The header row.
const HEADER: [&str; 14] = [
    "tenant_id",
    "object_id",
    "kind",
    "guest",
    "role",
    "bindings",
    "uses",
    "last_used",
    "first_seen",
    "last_seen",
    "decisions",
    "allows",
    "refusals",
    "roles_complete",
];

pub(super) fn render(report: &ReviewReport) -> String {
    let mut out = String::with_capacity(256 + 160 * report.callers.len());
    row(&mut out, &HEADER.map(Cow::Borrowed));
    for c in &report.callers {
        let caller = |role: &str, bindings: String, uses: String, last_used: &str| {
            [
                Cow::Borrowed(c.tenant_id.as_str()),
                Cow::Borrowed(c.object_id.as_str()),
                Cow::Borrowed(c.kind.as_str()),
                Cow::Borrowed(if c.guest { "true" } else { "false" }),
                Cow::Owned(role.to_owned()),
                Cow::Owned(bindings),
                Cow::Owned(uses),
                Cow::Owned(last_used.to_owned()),
                Cow::Borrowed(c.first_seen.as_str()),
                Cow::Borrowed(c.last_seen.as_str()),
                Cow::Owned(c.decisions.to_string()),
                Cow::Owned(c.allows.to_string()),
                Cow::Owned(c.refusals.to_string()),
                Cow::Borrowed(if c.roles_complete { "true" } else { "false" }),
            ]
        };
        if c.roles.is_empty() {
            row(&mut out, &caller("", String::new(), String::new(), ""));
        }
        for r in &c.roles {
            let fields = caller(
                &r.role,
                held_via(r),
                r.uses.to_string(),
                r.last_used.as_deref().unwrap_or(""),
            );
            row(&mut out, &fields);
        }
    }
    out
}

/// Appends one record and its CRLF.
fn row(out: &mut String, fields: &[Cow<'_, str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

/// Appends one field: the injection guard's `'` where due, then RFC 4180 quoting.
pub(super) fn field(out: &mut String, value: &str) {
    let guard = value.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']);
    let quote = value.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if guard {
        out.push('\'');
    }
    if quote {
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// How a role is held: its bindings, then `included_by:<role>` for each held role that
/// includes it, joined with `;`.
fn held_via(r: &super::super::HeldRole) -> String {
    let included = r.included_by.iter().map(|i| format!("included_by:{i}"));
    r.bindings
        .iter()
        .cloned()
        .chain(included)
        .collect::<Vec<_>>()
        .join(";")
}
