//! `entra-governor replay`: decide a candidate policy against a recorded audit trail and
//! say what would change ([`entra_governor::governance::replay`]).
//!
//! ```sh
//! entra-governor replay --trail audit.jsonl --policy candidate.toml [--since 30d]
//! ```
//!
//! `--format json` prints the `entra-governor.replay/1` document
//! ([`ReplayReport`](entra_governor::governance::replay::ReplayReport)):
//! `{"format", "candidate_version", "totals": {"decisions", "changed", "allow_to_deny",
//! "deny_to_allow", "other", "inexact", "not_replayable", "unreadable_lines",
//! "skipped"}, "changes": [{"change", "cause", "count", "callers", "caller_ids",
//! "bindings", "examples": [...]}]}`.
//!
//! Exit status 0 with the report; with `--fail-on-change`, 1 when a decision changed or
//! when some could not be replayed exactly (`inexact`, `not_replayable`,
//! `unreadable_lines`), unless `--dangerous-allow-incomplete-replay`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use entra_governor::Policy;
use entra_governor::governance::replay::{Replay, ReplayReport};
use entra_governor::governance::review::render::terminal_safe as safe;

use crate::progress;
use crate::review::window;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recorded audit trail (JSON Lines, schema v1 or v2).
    #[arg(long)]
    trail: PathBuf,
    /// The candidate policy to decide the trail's requests with.
    #[arg(long)]
    policy: PathBuf,
    /// A policy that recorded (part of) the trail, when it is not the candidate: events
    /// it decided replay exactly. Repeatable.
    #[arg(long)]
    baseline: Vec<PathBuf>,
    /// Only events of the last <duration> (`30d`, `12h`) ...
    #[arg(long)]
    since: Option<String>,
    /// ... or since an RFC 3339 time (`2026-11-01T00:00:00Z`).
    #[arg(long, conflicts_with = "since")]
    from: Option<String>,
    /// Examples kept per cause of change.
    #[arg(long, default_value_t = 5)]
    examples: usize,
    /// Exit 1 when any decision changed, or when some could not be replayed exactly
    /// (inexact, not replayable, unreadable lines): a gate for CI.
    #[arg(long)]
    fail_on_change: bool,
    /// With --fail-on-change: pass although some decisions could not be replayed exactly.
    #[arg(long, requires = "fail_on_change")]
    dangerous_allow_incomplete_replay: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// How `replay` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// The `entra-governor.replay/1` document.
    Json,
}

/// Runs `replay`.
pub fn run(args: &Args) -> Result<ExitCode, BoxError> {
    let candidate = load(&args.policy)?;
    let mut replay = Replay::new(&candidate)
        .window(window(args.since.as_deref(), args.from.as_deref())?)
        .examples_per_change(args.examples);
    for path in &args.baseline {
        replay = replay.baseline(&load(path)?);
    }
    let clock = progress::Stopwatch::start();
    replay.learn_trail(progress::open(&args.trail, "reading (1/2)")?)?;
    replay.read_trail(progress::open(&args.trail, "replaying (2/2)")?)?;
    let report = replay.finish();
    let t = &report.totals;
    clock.summary("replay", t.decisions + t.skipped, &args.trail);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", text(&report, args)),
    }
    let t = &report.totals;
    let incomplete = t.inexact + t.not_replayable + t.unreadable_lines > 0;
    let failed = args.fail_on_change
        && (t.changed > 0 || (incomplete && !args.dangerous_allow_incomplete_replay));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads a policy file, its errors naming the file.
pub fn load(path: &std::path::Path) -> Result<Policy, BoxError> {
    Policy::from_path(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn text(report: &ReplayReport, args: &Args) -> String {
    let t = &report.totals;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replayed {} (version {}) over {}",
        args.policy.display(),
        &report.candidate_version[..12.min(report.candidate_version.len())],
        args.trail.display()
    );
    let rows = [
        ("decisions", t.decisions),
        ("changed", t.changed),
        ("  allow_to_deny", t.allow_to_deny),
        ("  deny_to_allow", t.deny_to_allow),
        ("  other", t.other),
        ("inexact", t.inexact),
        ("not_replayable", t.not_replayable),
        ("unreadable_lines", t.unreadable_lines),
        ("skipped", t.skipped),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "{name:<18}{value:>10}");
    }
    if t.inexact > 0 {
        out.push_str(
            "note: inexact decisions needed group memberships the trail did not record; \
             record them with [audit] groups = \"all\" or pass the recording policy as --baseline\n",
        );
    }
    for change in &report.changes {
        let _ = writeln!(
            out,
            "\n{} {}: {} decisions, {} callers",
            change.change,
            safe(&change.cause),
            change.count,
            change.callers
        );
        if !change.bindings.is_empty() {
            let _ = writeln!(out, "  through {}", safe(&change.bindings.join(", ")));
        }
        let _ = writeln!(out, "  callers: {}", safe(&change.caller_ids.join(", ")));
        for e in &change.examples {
            let _ = writeln!(
                out,
                "  {} {} {} {}: {} -> {}",
                safe(&e.time),
                safe(&e.caller),
                safe(&e.action),
                safe(&e.resource),
                safe(&e.recorded),
                safe(&e.candidate)
            );
        }
    }
    out
}
