//! The mining methods: BIP 22/23 `getblocktemplate` with long polling,
//! and BIP 22 `submitblock`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::convert::target_hex;
use super::methods::{stopping, MAX_WAIT_MS};
use super::{code, RpcError};
use crate::node::{CoreMsg, Shared};

/// The long-poll id of the current template (BIP 22): the tip and the
/// mempool's size, as Core joins the tip with its transaction counter.
pub(super) fn longpoll_id(shared: &Shared) -> String {
    let core = shared.core();
    format!("{}{}", core.chain().tip(), core.mempool_len())
}

/// BIP 22 long polling: waits while `id` is still the current template's
/// id — until a new tip, or a mempool change at least a minute old (Core
/// waits a minute for transaction updates) — at most [`MAX_WAIT_MS`].
pub(super) async fn long_poll(shared: &Arc<Shared>, id: &str) {
    let started = std::time::Instant::now();
    // The id starts with the tip it was made on.
    let tip = shared.core().chain().tip().to_string();
    if !id.starts_with(&tip) {
        // An id of an older tip: the template changed already.
        return;
    }
    loop {
        let waited = started.elapsed();
        let current = longpoll_id(shared);
        if !current.starts_with(&tip)
            || waited >= Duration::from_millis(MAX_WAIT_MS)
            || (waited >= Duration::from_secs(60) && current != id)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// BIP 22/23 `getblocktemplate`, with `coinbasetxn` (the node's coinbase
/// for this template, extranonce 0: a powchain-aware client varies the
/// extranonce and recomputes the merkle root) and Core's field set.
pub(super) fn block_template(shared: &Shared) -> Value {
    let now = crate::clock::now_ms();
    let template = shared.core().mining_template(now);
    let (header, coinbase) =
        crate::miner::worker::assemble_at(&template, 0, crate::clock::unix_secs(now));
    let tx_json = |tx: &[u8]| {
        let id = crate::consensus::Txid(crate::consensus::sha256d(tx)).to_string();
        json!({"data": hex::encode(tx), "txid": id, "hash": id, "depends": [],
               "fee": 0, "sigops": 0, "weight": tx.len() * 4})
    };
    let max = shared.params.max_block_bytes;
    json!({
        "capabilities": [],
        "version": template.version,
        "rules": [],
        "vbavailable": {},
        "vbrequired": 0,
        "previousblockhash": template.prev_blockhash.to_string(),
        "transactions": template.transactions.iter().map(|t| tx_json(t)).collect::<Vec<_>>(),
        "coinbasetxn": tx_json(&coinbase),
        "coinbaseaux": {},
        "coinbasevalue": 0,
        "longpollid": longpoll_id(shared),
        "target": target_hex(template.bits),
        "mintime": template.min_time,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": 0,
        "sizelimit": max,
        "weightlimit": max * 4,
        "curtime": header.time,
        "bits": template.bits.to_string(),
        "height": template.height,
    })
}

/// BIP 22 `submitblock`: the block enters the core as the node's own mined
/// blocks do (`Input::Mined`); the answer is `null` when it was stored, or
/// Core's reason: `duplicate`, `duplicate-invalid`, `inconclusive` (kept
/// as an orphan, or refused by the orphan pool), `bad-prevblk` (builds on
/// an invalid block) or the rule it broke (`high-hash`, `bad-txnmrklroot`,
/// `bad-diffbits`, `time-too-new`, ...).
pub(super) async fn submit_block(shared: &Arc<Shared>, hexdata: &str) -> Result<Value, RpcError> {
    use crate::chain::{ChainError, Precheck};
    let decode_failed = || RpcError::new(code::DESERIALIZATION, "Block decode failed");
    let max = shared.params.max_block_bytes;
    if hexdata.len() > 2 * max {
        return Err(decode_failed());
    }
    let bytes = hex::decode(hexdata).map_err(|_| decode_failed())?;
    let block = crate::consensus::Block::decode(&bytes, max).map_err(|_| decode_failed())?;
    let hash = block.block_hash();
    let pre = shared
        .core()
        .chain()
        .precheck(&block, crate::clock::now_ms());
    match &pre {
        Ok(Precheck::Known) => return Ok(json!("duplicate")),
        Err(ChainError::KnownInvalid(_)) => return Ok(json!("duplicate-invalid")),
        _ => {}
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    shared
        .commands
        .send(CoreMsg::Input(crate::protocol::Input::Mined(block)))
        .map_err(|_| stopping())?;
    shared
        .commands
        .send(CoreMsg::Barrier(tx))
        .map_err(|_| stopping())?;
    rx.await.map_err(|_| stopping())?;
    let stored = shared.core().chain().contains(&hash);
    Ok(match pre {
        Ok(Precheck::Valid) if stored => Value::Null,
        Ok(_) | Err(ChainError::OrphanRefused { .. }) => json!("inconclusive"),
        Err(ChainError::Invalid { source, .. }) => json!(source.rule()),
        Err(ChainError::InvalidAncestor { .. }) => json!("bad-prevblk"),
        Err(e) => json!(e.to_string()),
    })
}
