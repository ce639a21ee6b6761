//! `entra-governor test <policy> <cases>`: runs a policy test file against a policy, for
//! CI. A thin shell over [`CaseFile::from_path`] and [`run_cases_at`]; the file format is
//! documented in [`entra_governor::governance::cases`].
//!
//! Exit status: 0 when every case holds, 1 when one does not. A policy or case file that
//! does not load is an error of the command (its message, with the key path, on standard
//! error; exit 1; no document).
//!
//! Text output, one line a case, the failing ones followed by the expectation, the
//! decision actually made and its explanation, then a summary:
//!
//! ```text
//! ok   engineers submit training jobs
//! FAIL guests never read personal data
//!        expected: deny, reason denied_by_rule
//!        actual:   allow, grant ml-engineer#3
//!        why:      allowed: datasets.read on datasets/pii/x by grant ml-engineer#3 (…)
//! 2 cases, 1 passed, 1 failed
//! ```
//!
//! `--format json` prints one document instead:
//!
//! ```json
//! {
//!   "format": "entra-governor.test/1",
//!   "policy": "examples/policy.toml",
//!   "cases_file": "examples/policy.cases.toml",
//!   "at": "2026-12-01T12:00:00Z",
//!   "policy_version": "<sha-256 of the policy file>",
//!   "cases": 2,
//!   "passed": 1,
//!   "failed": 1,
//!   "results": [
//!     { "name": "…", "passed": true, "expected": "allow", "actual": "allow, grant ml-engineer#0",
//!       "explanation": "allowed: …", "decision": { "effect": "allow", … } }
//!   ]
//! }
//! ```
//!
//! `at` is the time cases without their own `at` were decided at; `decision` is the
//! library's `Decision` as JSON, absent when the case's caller could not be built (then
//! `actual` is `"no decision"` and `explanation` says why).

use std::path::PathBuf;
use std::process::ExitCode;

use entra_governor::governance::caller::Timestamp;
use entra_governor::governance::cases::{CaseFile, CaseReport, run_cases_at};
use entra_governor::policy::Policy;
use serde::Serialize;

use crate::lint::Format;

/// The arguments of `test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file.
    policy: PathBuf,
    /// The policy test file (TOML).
    cases: PathBuf,
    /// Decide cases without their own `at` at this time (RFC 3339 or Unix seconds)
    /// instead of now.
    #[arg(long)]
    at: Option<Timestamp>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The `entra-governor.test/1` document.
#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    policy: String,
    cases_file: String,
    at: Timestamp,
    #[serde(flatten)]
    report: &'a CaseReport,
}

/// Runs `test`.
pub fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let policy = Policy::from_path(&args.policy)?;
    let cases = CaseFile::from_path(&args.cases)?;
    let at = args.at.unwrap_or_else(Timestamp::now);
    let report = run_cases_at(&policy, &cases, at);
    match args.format {
        Format::Json => {
            let document = Document {
                format: "entra-governor.test/1",
                policy: args.policy.display().to_string(),
                cases_file: args.cases.display().to_string(),
                at,
                report: &report,
            };
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        Format::Text => print!("{}", text(&report)),
    }
    Ok(if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn text(report: &CaseReport) -> String {
    let mut out = String::new();
    for r in &report.results {
        if r.passed {
            out.push_str(&format!("ok   {}\n", r.name));
        } else {
            out.push_str(&format!(
                "FAIL {}\n       expected: {}\n       actual:   {}\n       why:      {}\n",
                r.name, r.expected, r.actual, r.explanation
            ));
        }
    }
    out.push_str(&format!(
        "{} cases, {} passed, {} failed\n",
        report.cases, report.passed, report.failed
    ));
    out
}
