//! `entra-governor`: the governor as a decision service for gateways (Envoy `ext_authz`,
//! nginx `auth_request`, Traefik `forwardAuth`, AuthZEN), and the home of the CLI.
//!
//! ```sh
//! entra-governor serve --config service.toml
//! entra-governor lint policy.toml
//! entra-governor test policy.toml policy.cases.toml
//! entra-governor explain policy.toml --caller caller.json --action training.submit --resource models/x
//! entra-governor replay --trail audit.jsonl --policy candidate.toml
//! entra-governor review --trail audit.jsonl --policy policy.toml --since 30d --format html
//! ```
//!
//! Every governance subcommand takes `--format json` and then prints one JSON document
//! whose `format` field names its schema and version (`entra-governor.replay/1`).
//!
//! The binary is a thin shell over the library: the configuration is
//! [`entra_governor::config`], the decisions [`entra_governor::http::Gate`]. Every
//! subcommand lives in its own module.

mod explain;
mod lint;
mod progress;
mod replay;
mod review;
mod serve;
mod test_cases;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Govern who may train models and who may run inference, with Microsoft Entra ID.
#[derive(Debug, Parser)]
#[command(name = "entra-governor", version, about)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the decision service: Envoy ext_authz (gRPC and HTTP), forward-auth, AuthZEN.
    Serve {
        /// The configuration file (see examples/service.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a policy file: exit 1 when it does not load, print its lint warnings.
    Lint(lint::Args),
    /// Run a policy test file against a policy: exit 1 when a case does not hold.
    Test(test_cases::Args),
    /// Decide one request under a policy for a described caller, and say why.
    Explain(explain::Args),
    /// Decide a candidate policy against a recorded audit trail: what would change.
    Replay(replay::Args),
    /// An access review from a recorded audit trail: unused and over-wide grants, per-caller
    /// evidence, a suggested narrower policy.
    Review(review::Args),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let result = match cli.command {
        Command::Serve { config } => serve::run(&config).map(|()| ExitCode::SUCCESS),
        Command::Lint(args) => lint::run(&args),
        Command::Test(args) => test_cases::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Review(args) => review::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(&*e));
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG` filters (default `info`); logs go to standard error.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An error and each of its causes, as one line.
fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
