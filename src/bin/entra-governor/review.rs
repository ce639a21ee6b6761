//! `entra-governor review`: an access review of a policy over a recorded audit trail
//! ([`entra_governor::governance::review`]).
//!
//! ```sh
//! entra-governor review --trail audit.jsonl --policy policy.toml --since 30d --format html > review.html
//! ```
//!
//! Formats: `text` (for people), `json` (the `entra-governor.review/1` document,
//! [`ReviewReport`](entra_governor::governance::review::ReviewReport)), `csv` (one row
//! per caller and role held: the evidence an Entra access reviewer attaches) and `html`
//! (one self-contained page: tables and a chart of use over time, no network fetches).
//! `--suggested <file>` also writes the suggested narrower policy.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use entra_governor::governance::review::{ReviewOptions, ReviewPass, render, review_trail};
use entra_governor::governance::trail::{self, TrailWindow};

use crate::progress;
use crate::replay::load;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The arguments of `review`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recorded audit trail (JSON Lines).
    #[arg(long)]
    trail: PathBuf,
    /// The policy under review.
    #[arg(long)]
    policy: PathBuf,
    /// Only events of the last <duration> (`30d`, `12h`) ...
    #[arg(long)]
    since: Option<String>,
    /// ... or since an RFC 3339 time (`2026-11-01T00:00:00Z`).
    #[arg(long, conflicts_with = "since")]
    from: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the suggested narrower policy (TOML) to this file.
    #[arg(long)]
    suggested: Option<PathBuf>,
}

/// How `review` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// The `entra-governor.review/1` document.
    Json,
    /// Per-caller evidence, one row per caller and role.
    Csv,
    /// One self-contained HTML page.
    Html,
}

/// Runs `review`.
pub fn run(args: &Args) -> Result<ExitCode, BoxError> {
    let policy = load(&args.policy)?;
    let options =
        ReviewOptions::default().window(window(args.since.as_deref(), args.from.as_deref())?);
    let clock = progress::Stopwatch::start();
    let report = review_trail(&policy, options, |pass| {
        let label = match pass {
            ReviewPass::Review => "reviewing (1/2)",
            ReviewPass::ReplaySuggestion => "replaying the suggestion (2/2)",
        };
        progress::open(&args.trail, label)
    })?;
    let t = &report.totals;
    clock.summary("review", t.decisions + t.skipped, &args.trail);
    if let Some(path) = &args.suggested {
        std::fs::write(path, &report.suggestion.policy_toml)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let out = match args.format {
        Format::Text => render::text(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Csv => render::csv(&report),
        Format::Html => render::html(&report),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The window of `--since <duration>` or `--from <time>` (all events without either).
pub fn window(since: Option<&str>, from: Option<&str>) -> Result<TrailWindow, BoxError> {
    if let Some(age) = since {
        return Ok(TrailWindow::last(
            trail::parse_lookback(age)?,
            SystemTime::now(),
        ));
    }
    if let Some(time) = from {
        let at = trail::parse_time(time).ok_or_else(|| {
            format!("--from: `{time}` is not an RFC 3339 UTC time such as 2026-11-01T00:00:00Z")
        })?;
        return Ok(TrailWindow::since(at));
    }
    Ok(TrailWindow::all())
}
