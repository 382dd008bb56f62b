//! The `switchboard` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Switchboard: an event-driven customer-service engine.
#[derive(Parser)]
#[command(name = "switchboard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that the broker, its topics, ClickHouse and the models are reachable.
    Doctor,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Doctor => {
            let checks = runtime.block_on(switchboard_topology::doctor::run_checks());
            let mut failed = false;
            for check in checks {
                match check.outcome {
                    Ok(detail) => println!("ok    {:<24} {detail}", check.name),
                    Err(problem) => {
                        failed = true;
                        println!("FAIL  {:<24} {problem}", check.name)
                    }
                }
            }
            Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}
