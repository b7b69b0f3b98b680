//! `powchain header`.

use clap::Args;

use super::{print_json, CliError};
use crate::api::types::Header;
use crate::consensus::BlockHeader;

/// `powchain header` flags.
#[derive(Debug, Args, Clone)]
pub struct HeaderArgs {
    /// The header, 160 hex digits.
    pub hex80: String,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Decodes one header.
///
/// # Errors
/// [`CliError::Usage`] for bad hex.
pub fn run(a: &HeaderArgs) -> Result<(), CliError> {
    let h =
        BlockHeader::from_hex(&a.hex80).map_err(|e| CliError::Usage(format!("bad header: {e}")))?;
    let v = Header::of(&h);
    if a.json {
        print_json(&v);
    } else {
        let rows = [
            ("hash", v.hash.clone()),
            ("version", v.version.to_string()),
            ("prev_blockhash", v.prev_blockhash.clone()),
            ("merkle_root", v.merkle_root.clone()),
            ("time", v.time.to_string()),
            ("bits", v.bits.clone()),
            ("nonce", v.nonce.to_string()),
            ("target", v.target.clone()),
            ("work", v.work.clone()),
            ("pow_valid", v.pow_valid.to_string()),
        ];
        for (k, val) in rows {
            println!("{k:>15}  {val}");
        }
    }
    Ok(())
}
