//! `entra-governor lint <policy>`: does the policy load, and what would a reviewer
//! question? A thin shell over [`Policy::from_path`] and [`Policy::lint_for`].
//!
//! Exit status: 0 when the policy loads (and, with `--deny-warnings`, has no warning);
//! 1 when it does not load, or has warnings under `--deny-warnings`.
//!
//! Text output: the load error (`policy.toml: roles.x.include[0]: unknown role "y"`),
//! or one `warning: <key path>: <message> [<code>]` line a warning, then a summary.
//!
//! `--format json` prints one document instead:
//!
//! ```json
//! {
//!   "format": "entra-governor.lint/1",
//!   "policy": "examples/policy.toml",
//!   "tenants": "single",
//!   "ok": true,
//!   "policy_version": "<sha-256 of the file>",
//!   "error": null,
//!   "warnings": [{ "code": "unused_role", "key_path": "roles.x", "message": "…" }]
//! }
//! ```
//!
//! `ok` is the exit status as a boolean. When the policy does not load, `policy_version`
//! is `null`, `warnings` is empty and `error` is `{ "key_path": "…", "message": "…" }`
//! (`key_path` empty for syntax errors; `message` the whole line text output shows). A
//! policy file that cannot be read is an error of the command: no document, exit 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use entra_governor::policy::{LintWarning, Policy, PolicyError, PolicyErrorKind, TenantScope};
use serde::Serialize;

/// The output format of every governance subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document (its `format` field names the schema and its version).
    Json,
}

/// How many tenants the governor serving the policy accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tenants {
    /// Exactly one: unqualified claim-value bindings mean that tenant.
    Single,
    /// An allow-list of several, or any tenant.
    Multiple,
}

impl Tenants {
    fn scope(self) -> TenantScope {
        match self {
            Self::Single => TenantScope::Single,
            Self::Multiple => TenantScope::Multiple,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Multiple => "multiple",
        }
    }
}

/// The arguments of `lint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file (TOML, or JSON when it ends in .json).
    policy: PathBuf,
    /// How many tenants the governor accepts.
    #[arg(long, value_enum, default_value_t = Tenants::Single)]
    tenants: Tenants,
    /// Exit 1 when there are warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The `entra-governor.lint/1` document.
#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    policy: String,
    tenants: &'static str,
    ok: bool,
    policy_version: Option<&'a str>,
    error: Option<ErrorView<'a>>,
    warnings: &'a [LintWarning],
}

#[derive(Serialize)]
struct ErrorView<'a> {
    key_path: &'a str,
    message: String,
}

/// Runs `lint`.
pub fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let loaded = Policy::from_path(&args.policy);
    if let Err(e) = &loaded
        && matches!(e.kind(), PolicyErrorKind::Io { .. })
    {
        return Err(e.clone().into());
    }
    let report = loaded
        .as_ref()
        .ok()
        .map(|p| p.lint_for(args.tenants.scope()));
    let warnings = report.as_ref().map_or(&[][..], |r| &r.warnings[..]);
    let ok = loaded.is_ok() && (warnings.is_empty() || !args.deny_warnings);
    let document = Document {
        format: "entra-governor.lint/1",
        policy: args.policy.display().to_string(),
        tenants: args.tenants.as_str(),
        ok,
        policy_version: loaded.as_ref().ok().map(Policy::version_hash),
        error: loaded.as_ref().err().map(error_view),
        warnings,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&document)?),
        Format::Text => print!("{}", text(&document)),
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn error_view(e: &PolicyError) -> ErrorView<'_> {
    ErrorView {
        key_path: e.key_path(),
        message: e.to_string(),
    }
}

fn text(d: &Document<'_>) -> String {
    let mut out = String::new();
    if let Some(e) = &d.error {
        out.push_str(&format!("error: {}\n", e.message));
    }
    for w in d.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let (errors, warnings) = (usize::from(d.error.is_some()), d.warnings.len());
    out.push_str(&format!(
        "{}: {errors} error{}, {warnings} warning{}\n",
        d.policy,
        plural(errors),
        plural(warnings)
    ));
    out
}
