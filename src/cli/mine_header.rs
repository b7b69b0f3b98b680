//! `powchain mine-header`.

use std::sync::atomic::AtomicU64;

use clap::Args;

use super::{default_threads, print_json, with_live_rate, BackendArg, CliError};
use crate::api::types::MineHeaderResult;
use crate::consensus::{BlockHeader, Target};
use crate::miner::worker::search_header;

/// `powchain mine-header` flags.
#[derive(Debug, Args, Clone)]
pub struct MineHeaderArgs {
    /// The header, 160 hex digits.
    pub hex80: String,
    /// First nonce to try.
    #[arg(long, default_value_t = 0)]
    pub start_nonce: u32,
    /// Threads (default: all cores).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub threads: Option<usize>,
    /// Backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Searches nonces `start ..= u32::MAX` for the lowest that meets the
/// header's own bits.
///
/// # Errors
/// [`CliError::Usage`] for bad input; [`CliError::Failed`] when no nonce
/// from the start solves it.
pub fn run(a: &MineHeaderArgs) -> Result<(), CliError> {
    let header =
        BlockHeader::from_hex(&a.hex80).map_err(|e| CliError::Usage(format!("bad header: {e}")))?;
    let target =
        Target::from_compact(header.bits).map_err(|e| CliError::Usage(format!("bad bits: {e}")))?;
    let backend = a.backend.resolve()?;
    let threads = a.threads.unwrap_or_else(default_threads);
    let progress = AtomicU64::new(0);
    let r = with_live_rate(&progress, "mining", || {
        search_header(backend, &header, target, a.start_nonce, threads, &progress)
    });
    let out = MineHeaderResult {
        nonce: r.solution.map(|(n, _)| n),
        hash: r.solution.map(|(_, h)| h.to_string()),
        hashes: r.hashes,
        seconds: r.seconds,
        hashes_per_sec: r.hashes as f64 / r.seconds.max(1e-9),
        backend: backend.name().to_string(),
        threads,
    };
    match r.solution {
        Some((nonce, hash)) => {
            if a.json {
                print_json(&out);
            } else {
                println!(
                    "nonce {nonce}\nhash  {hash}\n{} hashes in {:.3} s ({:.2} MH/s, {backend})",
                    r.hashes,
                    r.seconds,
                    out.hashes_per_sec / 1e6
                );
            }
            Ok(())
        }
        None => Err(CliError::Failed {
            message: format!(
                "no nonce from {} to 4294967295 meets bits {}",
                a.start_nonce, header.bits
            ),
            json: a
                .json
                .then(|| serde_json::to_value(&out).unwrap_or_default()),
        }),
    }
}
