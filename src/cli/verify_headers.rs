//! `powchain verify-headers`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::{print_json, progress_bar, CliError};
use crate::api::types::VerifyHeadersReport;
use crate::chain::headers::verify_header_chain;
use crate::consensus::{BlockHeader, Network, Params};

/// `powchain verify-headers` flags.
#[derive(Debug, Args, Clone)]
pub struct VerifyHeadersArgs {
    /// The file of concatenated raw 80-byte headers.
    pub file: PathBuf,
    /// Network whose rules apply.
    #[arg(long, default_value = "mainnet")]
    pub network: Network,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Reads a file of concatenated 80-byte headers.
///
/// # Errors
/// [`CliError::Usage`] when unreadable or not a multiple of 80 bytes.
pub fn read_headers_file(path: &Path) -> Result<Vec<BlockHeader>, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() % 80 != 0 {
        return Err(CliError::Usage(format!(
            "{} is {} bytes: not a whole number of 80-byte headers",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(80)
        .map(|c| BlockHeader::decode(c.try_into().expect("80-byte chunk")))
        .collect())
}

/// Validates the file under the network's full rules.
///
/// # Errors
/// [`CliError::Usage`] for a bad file, [`CliError::Failed`] for an invalid
/// header (naming its height and rule).
pub fn run(a: &VerifyHeadersArgs) -> Result<(), CliError> {
    let params = Params::for_network(a.network, None);
    let headers = read_headers_file(&a.file)?;
    let pb = progress_bar(
        Some(headers.len() as u64),
        "{spinner} {msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        "verifying headers",
    );
    let started = Instant::now();
    let now = crate::clock::unix_secs(crate::clock::now_ms());
    let result = verify_header_chain(&params, &headers, now, |i| pb.set_position(i as u64));
    pb.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            let rate = r.headers as f64 / seconds.max(1e-9);
            let v = VerifyHeadersReport {
                headers: r.headers,
                tip_height: r.tip_height,
                tip: r.tip.clone(),
                chainwork: r.chainwork.to_hex(),
                seconds,
                headers_per_sec: rate,
                network: params.network.to_string(),
                valid: true,
            };
            if a.json {
                print_json(&v);
            } else {
                println!(
                    "valid: {} headers, tip height {} {}",
                    r.headers, r.tip_height, r.tip
                );
                println!(
                    "chainwork {} ({})",
                    r.chainwork.to_hex(),
                    r.chainwork.to_short_hex()
                );
                println!("{seconds:.3} s, {rate:.0} headers/s");
            }
            Ok(())
        }
        Err(f) => Err(CliError::Failed {
            message: f.to_string(),
            json: a.json.then(|| {
                json!({
                    "valid": false,
                    "headers": headers.len(),
                    "error": f.to_string(),
                    "height": f.height,
                    "hash": f.hash,
                    "rule": f.rule,
                    "seconds": seconds,
                })
            }),
        }),
    }
}
