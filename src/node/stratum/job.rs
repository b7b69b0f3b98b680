//! Stratum jobs: a block template cut the way `mining.notify` carries it,
//! and the header a `mining.submit` describes.
//!
//! powchain's coinbase (SPEC "Block body") is `[format][height: 4 LE]
//! [extranonce: 8 LE][id length][miner id]`; Stratum splits it around the
//! extranonce: `coinb1` is the first 5 bytes, then the connection's
//! 4-byte extranonce1 and the miner's 4-byte extranonce2, then `coinb2`
//! (the id length and the worker name). The coinbase's txid and the
//! merkle branch give the root, so the miner needs no other transaction.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::consensus::block::Coinbase;
use crate::consensus::merkle::{coinbase_branch, root_from_branch};
use crate::consensus::{sha256d, Block, BlockHash, BlockHeader, BlockTemplate, Target};

/// Bytes of the coinbase before the extranonce (format and height).
const COINB1_LEN: usize = 5;
/// Bytes of the extranonce the server gives each connection (SPEC: 4).
pub const EXTRANONCE1_LEN: usize = 4;
/// Bytes of the extranonce the miner rolls (SPEC: 4; cpuminer-opt
/// refuses sizes outside 2..16).
pub const EXTRANONCE2_LEN: usize = 4;

/// One template as every connection's jobs share it.
#[derive(Debug)]
pub struct Template {
    /// Serial number of this template (jobs are named after it and the
    /// connection's difficulty changes).
    pub seq: u64,
    /// The template from the core (the strategy's tip: a selfish node's
    /// outside miners build on its private chain, as its own miner does).
    pub block: BlockTemplate,
    /// `ntime` of the job: `max(now, min_time)`, Unix seconds.
    pub time: u32,
    /// Merkle branch of the coinbase, internal order.
    pub branch: Vec<[u8; 32]>,
    /// The block target of `block.bits`.
    pub target: Target,
    /// Made on a new tip (`clean_jobs`): earlier jobs are stale.
    pub clean: bool,
}

impl Template {
    /// Cuts `block` into a Stratum template made at `now_secs`.
    ///
    /// # Errors
    /// A [`crate::consensus::CompactError`] when the template's bits are
    /// not a target (the core never makes such a template).
    pub fn new(
        seq: u64,
        block: BlockTemplate,
        now_secs: u64,
        clean: bool,
    ) -> Result<Template, crate::consensus::CompactError> {
        let txids: Vec<[u8; 32]> = block.transactions.iter().map(|t| sha256d(t)).collect();
        let target = Target::from_compact(block.bits)?;
        Ok(Template {
            seq,
            time: u32::try_from(now_secs)
                .unwrap_or(u32::MAX)
                .max(block.min_time),
            branch: coinbase_branch(&txids),
            target,
            clean,
            block,
        })
    }

    /// `coinb1` and `coinb2` for a worker's miner id: the coinbase's bytes
    /// before and after the 8-byte extranonce.
    #[must_use]
    pub fn coinbase_parts(&self, miner_id: &str) -> (Vec<u8>, Vec<u8>) {
        let full = Coinbase {
            height: self.block.height,
            extranonce: 0,
            miner_id: miner_id.to_string(),
        }
        .encode();
        let after = COINB1_LEN + EXTRANONCE1_LEN + EXTRANONCE2_LEN;
        (full[..COINB1_LEN].to_vec(), full[after..].to_vec())
    }
}

/// A job as one connection received it: the template, the worker name
/// its coinbase carries and the difficulty its shares are judged by.
#[derive(Debug, Clone)]
pub struct Job {
    /// `job_id` as sent (hex).
    pub id: String,
    /// The shared template.
    pub template: Arc<Template>,
    /// Share difficulty of this job (the `mining.set_difficulty` sent
    /// before its notify).
    pub difficulty: f64,
    /// `coinb1`.
    pub coinb1: Vec<u8>,
    /// `coinb2`.
    pub coinb2: Vec<u8>,
}

impl Job {
    /// The `mining.notify` params: `[job_id, prevhash, coinb1, coinb2,
    /// merkle_branch, version, nbits, ntime, clean_jobs]` in Stratum's byte
    /// orders: prevhash as the hash's internal bytes with each 4-byte word
    /// byte-swapped, branch hashes in internal order, version, nbits and
    /// ntime as 8 big-endian hex digits.
    #[must_use]
    pub fn notify_params(&self, clean: bool) -> Value {
        let t = &self.template;
        json!([
            self.id,
            stratum_prevhash(&t.block.prev_blockhash),
            hex::encode(&self.coinb1),
            hex::encode(&self.coinb2),
            t.branch.iter().map(hex::encode).collect::<Vec<_>>(),
            format!("{:08x}", t.block.version as u32),
            t.block.bits.to_string(),
            format!("{:08x}", t.time),
            clean,
        ])
    }

    /// The coinbase for `extranonce1 || extranonce2`.
    #[must_use]
    pub fn coinbase(&self, extranonce1: [u8; 4], extranonce2: [u8; 4]) -> Vec<u8> {
        let mut cb = Vec::with_capacity(self.coinb1.len() + 8 + self.coinb2.len());
        cb.extend_from_slice(&self.coinb1);
        cb.extend_from_slice(&extranonce1);
        cb.extend_from_slice(&extranonce2);
        cb.extend_from_slice(&self.coinb2);
        cb
    }

    /// The header a share describes, and its coinbase.
    #[must_use]
    pub fn header(
        &self,
        extranonce1: [u8; 4],
        extranonce2: [u8; 4],
        ntime: u32,
        nonce: u32,
    ) -> (BlockHeader, Vec<u8>) {
        let t = &self.template;
        let coinbase = self.coinbase(extranonce1, extranonce2);
        let header = BlockHeader {
            version: t.block.version,
            prev_blockhash: t.block.prev_blockhash,
            merkle_root: root_from_branch(sha256d(&coinbase), &t.branch),
            time: ntime,
            bits: t.block.bits,
            nonce,
        };
        (header, coinbase)
    }

    /// The block of a share that met the block target.
    #[must_use]
    pub fn block(&self, header: BlockHeader, coinbase: Vec<u8>) -> Block {
        let mut txdata = Vec::with_capacity(1 + self.template.block.transactions.len());
        txdata.push(coinbase);
        txdata.extend(self.template.block.transactions.iter().cloned());
        Block { header, txdata }
    }
}

/// Stratum's `prevhash`: the internal-order bytes with each 4-byte word
/// byte-swapped (the display hex's eight 8-digit groups in reverse order).
#[must_use]
pub fn stratum_prevhash(hash: &BlockHash) -> String {
    let mut b = hash.0;
    for word in b.chunks_exact_mut(4) {
        word.reverse();
    }
    hex::encode(b)
}

/// Parses exactly `2 * N` hex digits into `N` bytes.
#[must_use]
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Parses 8 hex digits, big-endian (ntime, nonce, version).
#[must_use]
pub fn parse_be32(text: &str) -> Option<u32> {
    parse_hex::<4>(text).map(u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::merkle::merkle_root;
    use crate::consensus::CompactTarget;

    fn template(txs: usize) -> Arc<Template> {
        let mut prev = [0u8; 32];
        for (i, b) in prev.iter_mut().enumerate() {
            *b = i as u8;
        }
        let block = BlockTemplate {
            height: 0x0102_0304,
            version: 0x2000_0000,
            prev_blockhash: BlockHash(prev),
            bits: CompactTarget::from_consensus(0x1e0b_aad0),
            min_time: 1_700_000_000,
            transactions: (0..txs).map(|i| vec![i as u8; 40 + i]).collect(),
            miner_id: "node".into(),
        };
        Arc::new(Template::new(7, block, 1_800_000_000, true).unwrap())
    }

    #[test]
    fn prevhash_swaps_each_word_of_the_internal_bytes() {
        let t = template(0);
        let p = stratum_prevhash(&t.block.prev_blockhash);
        assert_eq!(&p[..16], "0302010007060504");
        // The display hex's 8-digit groups in reverse order.
        let display = t.block.prev_blockhash.to_string();
        let groups: Vec<&str> = (0..8).map(|i| &display[i * 8..i * 8 + 8]).collect();
        let reversed: String = groups.iter().rev().copied().collect();
        assert_eq!(p, reversed);
    }

    #[test]
    fn a_share_rebuilds_the_block_the_template_makes() {
        for txs in [0, 1, 2, 5] {
            let t = template(txs);
            let (coinb1, coinb2) = t.coinbase_parts("alice");
            let job = Job {
                id: "1".into(),
                template: Arc::clone(&t),
                difficulty: 1.0,
                coinb1,
                coinb2,
            };
            let (en1, en2) = ([1, 2, 3, 4], [5, 6, 7, 8]);
            let (header, coinbase) = job.header(en1, en2, 1_800_000_001, 0xdead_beef);
            let cb = Coinbase::decode(&coinbase).unwrap();
            assert_eq!(cb.miner_id, "alice");
            assert_eq!(cb.height, 0x0102_0304);
            assert_eq!(cb.extranonce, u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]));
            let block = job.block(header, coinbase);
            let leaves: Vec<[u8; 32]> = block.txdata.iter().map(|t| sha256d(t)).collect();
            assert_eq!(block.header.merkle_root, merkle_root(&leaves).root);
            // The notify's fields are what a miner puts in the header.
            let n = job.notify_params(true);
            assert_eq!(n[5], "20000000");
            assert_eq!(n[6], "1e0baad0");
            assert_eq!(n[7], format!("{:08x}", 1_800_000_000u32));
            assert_eq!(n[4].as_array().unwrap().len(), t.branch.len());
        }
    }

    #[test]
    fn hex_fields_have_exact_lengths() {
        assert_eq!(parse_be32("0000abcd"), Some(0xabcd));
        assert_eq!(parse_be32("abcd"), None);
        assert_eq!(parse_be32("0000abcdff"), None);
        assert_eq!(parse_be32("zzzzzzzz"), None);
        assert_eq!(parse_hex::<4>("01020304"), Some([1, 2, 3, 4]));
    }
}
