//! A bounded pool of opaque transactions waiting to be mined.

use std::collections::{HashMap, HashSet, VecDeque};

use thiserror::Error;

use crate::consensus::block::{Block, Coinbase};
use libp2p::PeerId;

use crate::consensus::{sha256d, Txid};

/// Why a transaction was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
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
    /// The sending peer already has its share of the pool.
    #[error("the peer already has {0} transactions in the mempool")]
    PeerLimit(usize),
}

/// The mempool: insertion-ordered, bounded by count and bytes; the oldest
/// transactions are dropped first when full.
#[derive(Debug)]
pub struct Mempool {
    txs: HashMap<Txid, Vec<u8>>,
    origin: HashMap<Txid, PeerId>,
    per_peer: HashMap<PeerId, usize>,
    max_per_peer: usize,
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
            origin: HashMap::new(),
            per_peer: HashMap::new(),
            max_per_peer: (max_count / 8).max(1),
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
        self.add_from(tx, None)
    }

    /// Adds a transaction relayed by `from`: one peer may hold at most an
    /// eighth of the pool's count, so a flood from one peer cannot evict
    /// everybody else's transactions.
    ///
    /// # Errors
    /// [`TxError`].
    pub fn add_from(&mut self, tx: Vec<u8>, from: Option<PeerId>) -> Result<Txid, TxError> {
        let txid = self.check(&tx)?;
        if let Some(p) = from {
            let n = self.per_peer.get(&p).copied().unwrap_or(0);
            if n >= self.max_per_peer {
                return Err(TxError::PeerLimit(n));
            }
        }
        while !self.order.is_empty()
            && (self.txs.len() >= self.max_count || self.bytes + tx.len() > self.max_bytes)
        {
            if let Some(old) = self.order.pop_front() {
                self.forget(&old);
            }
        }
        self.bytes += tx.len();
        self.txs.insert(txid, tx);
        self.order.push_back(txid);
        if let Some(p) = from {
            *self.per_peer.entry(p).or_insert(0) += 1;
            self.origin.insert(txid, p);
        }
        Ok(txid)
    }

    fn forget(&mut self, id: &Txid) {
        if let Some(t) = self.txs.remove(id) {
            self.bytes -= t.len();
        }
        if let Some(p) = self.origin.remove(id) {
            if let Some(n) = self.per_peer.get_mut(&p) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer.remove(&p);
                }
            }
        }
    }

    /// Bytes of transactions held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The byte limit of the pool.
    #[must_use]
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The txids held, oldest first.
    #[must_use]
    pub fn txids(&self) -> Vec<Txid> {
        self.order
            .iter()
            .filter(|t| self.txs.contains_key(t))
            .copied()
            .collect()
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

    /// Drops one transaction (a traitor's own, abandoned); false if absent.
    pub fn remove(&mut self, id: &Txid) -> bool {
        if !self.txs.contains_key(id) {
            return false;
        }
        self.forget(id);
        self.order.retain(|t| t != id);
        true
    }

    /// Removes the transactions a connected block included.
    pub fn remove_block(&mut self, block: &Block) {
        let ids: HashSet<Txid> = block.txids().into_iter().skip(1).collect();
        for id in &ids {
            self.forget(id);
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

    #[test]
    fn one_peer_gets_an_eighth_of_the_pool() {
        let mut m = Mempool::new(1 << 20, 80, 100);
        let p = PeerId::random();
        for i in 0..10u8 {
            m.add_from(vec![i + 1], Some(p)).unwrap();
        }
        assert_eq!(m.add_from(vec![99], Some(p)), Err(TxError::PeerLimit(10)));
        // Others still get in, and a mined transaction frees the slot.
        m.add_from(vec![98], Some(PeerId::random())).unwrap();
        let block = Block {
            header: crate::consensus::Params::regtest().genesis.header,
            txdata: vec![vec![0xff; 20], vec![1]],
        };
        m.remove_block(&block);
        m.add_from(vec![99], Some(p)).unwrap();
    }
}
