//! A bounded pool of opaque transactions waiting to be mined.

use std::collections::{HashMap, HashSet, VecDeque};

use thiserror::Error;

use crate::consensus::block::{Block, Coinbase};
use crate::consensus::{sha256d, Txid};

/// Why a transaction was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// Empty payload.
    #[error("empty transaction")]
    Empty,
    /// Larger than the network's limit.
    #[error("transaction is {got} bytes, limit {limit}")]
    TooLarge {
        /// bytes
        got: usize,
        /// limit
        limit: usize,
    },
    /// Looks like a coinbase: only miners make those.
    #[error("transaction has the coinbase layout; only blocks carry coinbases")]
    Coinbase,
    /// Already in the pool.
    #[error("transaction {0} is already in the mempool")]
    Duplicate(Txid),
}

/// The mempool: insertion-ordered, bounded by count and bytes; the oldest
/// transactions are dropped first when full.
#[derive(Debug)]
pub struct Mempool {
    txs: HashMap<Txid, Vec<u8>>,
    order: VecDeque<Txid>,
    bytes: usize,
    max_bytes: usize,
    max_count: usize,
    max_tx_bytes: usize,
}

impl Mempool {
    /// An empty pool.
    #[must_use]
    pub fn new(max_bytes: usize, max_count: usize, max_tx_bytes: usize) -> Mempool {
        Mempool {
            txs: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_count,
            max_tx_bytes,
        }
    }

    /// Checks a transaction without adding it.
    ///
    /// # Errors
    /// [`TxError`].
    pub fn check(&self, tx: &[u8]) -> Result<Txid, TxError> {
        if tx.is_empty() {
            return Err(TxError::Empty);
        }
        if tx.len() > self.max_tx_bytes {
            return Err(TxError::TooLarge {
                got: tx.len(),
                limit: self.max_tx_bytes,
            });
        }
        if Coinbase::decode(tx).is_ok() {
            return Err(TxError::Coinbase);
        }
        let txid = Txid(sha256d(tx));
        if self.txs.contains_key(&txid) {
            return Err(TxError::Duplicate(txid));
        }
        Ok(txid)
    }

    /// Adds a transaction.
    ///
    /// # Errors
    /// [`TxError`].
    pub fn add(&mut self, tx: Vec<u8>) -> Result<Txid, TxError> {
        let txid = self.check(&tx)?;
        while !self.order.is_empty()
            && (self.txs.len() >= self.max_count || self.bytes + tx.len() > self.max_bytes)
        {
            if let Some(old) = self.order.pop_front() {
                if let Some(t) = self.txs.remove(&old) {
                    self.bytes -= t.len();
                }
            }
        }
        self.bytes += tx.len();
        self.txs.insert(txid, tx);
        self.order.push_back(txid);
        Ok(txid)
    }

    /// Number of transactions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Oldest-first selection up to `max_bytes`.
    #[must_use]
    pub fn select(&self, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut used = 0;
        for id in &self.order {
            if let Some(tx) = self.txs.get(id) {
                if used + tx.len() + 5 > max_bytes {
                    break;
                }
                used += tx.len() + 5;
                out.push(tx.clone());
            }
        }
        out
    }

    /// Removes the transactions a connected block included.
    pub fn remove_block(&mut self, block: &Block) {
        let ids: HashSet<Txid> = block.txids().into_iter().skip(1).collect();
        for id in &ids {
            if let Some(t) = self.txs.remove(id) {
                self.bytes -= t.len();
            }
        }
        self.order.retain(|id| !ids.contains(id));
    }

    /// Returns a disconnected block's transactions (not its coinbase).
    pub fn readd_block(&mut self, block: &Block) {
        for tx in block.txdata.iter().skip(1) {
            let _ = self.add(tx.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorg_returns_disconnected_transactions() {
        let mut m = Mempool::new(1 << 20, 100, 1000);
        m.add(b"a".to_vec()).unwrap();
        m.add(b"b".to_vec()).unwrap();
        let cb = Coinbase {
            height: 1,
            extranonce: 0,
            miner_id: "x".into(),
        }
        .encode();
        let block = Block {
            header: crate::consensus::Params::regtest().genesis.header,
            txdata: vec![cb, b"a".to_vec(), b"c".to_vec()],
        };
        m.remove_block(&block);
        assert_eq!(m.select(1 << 20), vec![b"b".to_vec()]);
        // The block is disconnected by a re-org: its transactions (not its
        // coinbase) come back.
        m.readd_block(&block);
        let mut back = m.select(1 << 20);
        back.sort();
        assert_eq!(back, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn bounded_and_rejects_bad_input() {
        let mut m = Mempool::new(10, 100, 8);
        assert_eq!(m.add(vec![]), Err(TxError::Empty));
        assert!(matches!(m.add(vec![0; 9]), Err(TxError::TooLarge { .. })));
        let a = m.add(vec![1; 6]).unwrap();
        assert!(matches!(m.add(vec![1; 6]), Err(TxError::Duplicate(t)) if t == a));
        m.add(vec![2; 6]).unwrap(); // evicts the first: 12 > 10 bytes
        assert_eq!(m.len(), 1);
        let cb = Coinbase {
            height: 1,
            extranonce: 0,
            miner_id: String::new(),
        }
        .encode();
        let mut big = Mempool::new(1000, 100, 100);
        assert_eq!(big.add(cb), Err(TxError::Coinbase));
    }
}
