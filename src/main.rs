//! The `powchain` binary: parse the command line, run, exit with 0 (ok),
//! 1 (the check or work failed) or 2 (bad usage or input).

use std::process::ExitCode;

use clap::Parser;
use powchain::cli::{run, Cli, CliError};

/// mimalloc keeps freed megabyte buffers for reuse. With glibc's malloc,
/// every 1 MB block that crosses the node (gossip frame, noise buffers,
/// decoded copy) was a fresh `mmap`, page-faulted in and unmapped again:
/// about a third of a 1 MB block's relay time (see README, P2P).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The simulator runs thousands of cores: their per-block logs would
    // drown the report (RUST_LOG still turns them on).
    let default_level = match cli.command {
        powchain::cli::Command::Node(_) => "info",
        powchain::cli::Command::Sim(_) => "error",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!("{default_level},libp2p=warn"))
            }),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let CliError::Failed { json: Some(v), .. } = &e {
                println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
            }
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
