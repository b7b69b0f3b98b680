//! `powchain status`.

use clap::Args;

use super::{failed, print_json, CliError};
use crate::api::ApiClient;

/// `powchain status` flags.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// The node's HTTP API address.
    #[arg(long, default_value = "127.0.0.1:18632")]
    pub api: String,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Asks a node for its state.
///
/// # Errors
/// [`CliError::Failed`] when the node does not answer.
pub fn run(a: &StatusArgs) -> Result<(), CliError> {
    let st = ApiClient::new(&a.api)
        .status()
        .map_err(|e| failed(e.to_string()))?;
    if a.json {
        print_json(&st);
        return Ok(());
    }
    let rows: [(&str, String); 17] = [
        ("network", st.network.clone()),
        ("network_id", st.network_id.clone()),
        ("genesis", st.genesis.clone()),
        ("peer_id", st.peer_id.clone()),
        ("api", st.api.clone()),
        ("height", st.height.to_string()),
        ("tip", st.tip.clone()),
        ("chainwork", st.chainwork.clone()),
        ("bits", st.bits.clone()),
        ("peers", st.peers.to_string()),
        ("mining", st.mining.to_string()),
        ("hashrate", format!("{:.2} MH/s", st.hashrate / 1e6)),
        ("orphans", st.orphans.to_string()),
        ("stale", st.stale.to_string()),
        ("reorgs", st.reorgs.to_string()),
        ("banned", st.banned.to_string()),
        ("mempool", st.mempool.to_string()),
    ];
    for (k, v) in rows {
        println!("{k:>11}  {}", crate::value::printable(&v));
    }
    for a in &st.listen {
        println!("{:>11}  {}", "listen", crate::value::printable(a));
    }
    Ok(())
}
