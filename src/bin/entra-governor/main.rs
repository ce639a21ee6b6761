//! `entra-governor`: the governor as a decision service for gateways (Envoy `ext_authz`,
//! nginx `auth_request`, Traefik `forwardAuth`, AuthZEN), and the home of the CLI.
//!
//! ```sh
//! entra-governor serve --config service.toml
//! ```
//!
//! The binary is a thin shell over the library: the configuration is
//! [`entra_governor::config`], the decisions [`entra_governor::http::Gate`]. Every
//! subcommand lives in its own module.

mod serve;

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
        Command::Serve { config } => serve::run(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
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
