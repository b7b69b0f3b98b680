//! Command-line interface (SPEC "Command line"): one file per subcommand.
//! Exit codes: 0 success, 1 the check or the work failed, 2 bad usage or
//! bad input. With `--json`, stdout is exactly one JSON document and human
//! text goes to stderr. Argument types are parsed by clap (`ValueEnum`,
//! `value_parser`), so a bad backend, network, thread list, topology or
//! partition is a usage error before any work starts.

pub mod bench;
pub mod header;
pub mod mine_header;
pub mod node;
pub mod sim;
pub mod status;
pub mod testnet;
pub mod verify_headers;
pub mod watch;

use std::io::IsTerminal;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::miner::Backend;

pub use node::NodeArgs;
pub use verify_headers::read_headers_file;

/// A failed command: `Usage` exits 2, `Failed` exits 1. `json` (when set)
/// is printed on stdout as the command's one JSON document.
#[derive(Debug, Error)]
pub enum CliError {
    /// Bad usage or bad input.
    #[error("{0}")]
    Usage(String),
    /// The check or the work failed.
    #[error("{message}")]
    Failed {
        /// one-line reason
        message: String,
        /// JSON document for `--json`
        json: Option<Value>,
    },
}

impl CliError {
    /// The process exit code.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed { .. } => 1,
        }
    }
}

impl From<crate::testnet::TestnetError> for CliError {
    fn from(e: crate::testnet::TestnetError) -> CliError {
        match e {
            crate::testnet::TestnetError::Usage(m) => CliError::Usage(m),
            // The report (JSON with --json) is already on stdout.
            crate::testnet::TestnetError::Disagreed(_) => {
                failed("the nodes did not agree on one tip by the end")
            }
            other => failed(other.to_string()),
        }
    }
}

pub(crate) fn failed(message: impl Into<String>) -> CliError {
    CliError::Failed {
        message: message.into(),
        json: None,
    }
}

/// powchain: a Nakamoto proof-of-work node, miner and local testnet.
#[derive(Debug, Parser)]
#[command(name = "powchain", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (flags override the TOML config file).
    Node(Box<NodeArgs>),
    /// Ask a running node for its state.
    Status(status::StatusArgs),
    /// Print a node's event stream (`GET /events`), one line an event.
    Watch(watch::WatchArgs),
    /// Print a node's fork tree near the tip (`GET /tree`), or draw it as SVG.
    Tree(watch::TreeArgs),
    /// Show a kept testnet run again: its fork-observer page with playback.
    Replay(watch::ReplayArgs),
    /// Hashrate of the miner's hot loop per backend and thread count.
    Bench(bench::BenchArgs),
    /// Search nonces of an 80-byte header (hex) for one that meets its own bits.
    MineHeader(mine_header::MineHeaderArgs),
    /// Decode one 80-byte header (hex).
    Header(header::HeaderArgs),
    /// Validate a file of concatenated raw 80-byte headers from genesis.
    VerifyHeaders(verify_headers::VerifyHeadersArgs),
    /// Spawn N real node processes on loopback, mine, optionally partition, and report.
    Testnet(testnet::TestnetArgs),
    /// Run the real protocol core in virtual time: double-spend, selfish, network.
    Sim(sim::SimArgs),
}

/// A miner backend on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The fastest present on this CPU.
    Auto,
    /// Two interleaved SHA-NI streams.
    #[value(name = "sha-ni", alias = "shani", alias = "sha-ni-2")]
    ShaNi,
    /// Three interleaved SHA-NI streams.
    #[value(name = "sha-ni-3")]
    ShaNi3,
    /// Four interleaved SHA-NI streams.
    #[value(name = "sha-ni-4")]
    ShaNi4,
    /// 8 lanes of AVX2.
    Avx2,
    /// 16 lanes of AVX-512F (builds with the `avx512` feature only).
    Avx512,
    /// Portable Rust.
    Scalar,
}

impl BackendArg {
    /// The backend, refused cleanly where this CPU lacks it.
    ///
    /// # Errors
    /// [`CliError::Usage`] for a backend this CPU cannot run.
    pub fn resolve(self) -> Result<Backend, CliError> {
        let b = match self {
            BackendArg::Auto => Backend::auto(),
            BackendArg::ShaNi => Backend::ShaNi,
            BackendArg::ShaNi3 => Backend::ShaNi3,
            BackendArg::ShaNi4 => Backend::ShaNi4,
            BackendArg::Avx2 => Backend::Avx2,
            BackendArg::Avx512 => Backend::Avx512,
            BackendArg::Scalar => Backend::Scalar,
        };
        b.require().map_err(|e| CliError::Usage(e.to_string()))
    }
}

/// Prints `v` as the one JSON document on stdout.
pub(crate) fn print_json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// All cores.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress_bar(len: Option<u64>, template: &str, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pb
}

/// Runs `work` while a spinner on stderr shows the hash rate of `counter`
/// (indicatif computes the rate), then clears it.
pub(crate) fn with_live_rate<R>(
    counter: &std::sync::atomic::AtomicU64,
    what: &str,
    work: impl FnOnce() -> R,
) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    let pb = progress_bar(None, "{spinner} {msg}: {human_pos} hashes, {per_sec}", what);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                pb.set_position(counter.load(Ordering::Relaxed));
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            pb.finish_and_clear();
        });
        let r = work();
        done.store(true, Ordering::Release);
        r
    })
}

/// Dispatches a parsed command line.
///
/// # Errors
/// The command's [`CliError`].
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Node(a) => node::run(*a),
        Command::Status(a) => status::run(&a),
        Command::Watch(a) => watch::run_watch(&a),
        Command::Tree(a) => watch::run_tree(&a),
        Command::Replay(a) => watch::run_replay(&a),
        Command::Bench(a) => bench::run(&a),
        Command::MineHeader(a) => mine_header::run(&a),
        Command::Header(a) => header::run(&a),
        Command::VerifyHeaders(a) => verify_headers::run(&a),
        Command::Testnet(a) => crate::testnet::run(&a.plan())
            .map(|_| ())
            .map_err(CliError::from),
        Command::Sim(a) => sim::run(&a),
    }
}
