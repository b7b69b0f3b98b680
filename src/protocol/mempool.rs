//! A bounded pool of opaque transactions waiting to be mined.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// The relaying peer holds its share of the pool's bytes already (no
    /// fault of its own: an honest relayer of a flood reaches it too).
    #[error("the relaying peer holds {0} bytes of the mempool already, its share")]
    PeerLimit(usize),
}

/// The mempool: bounded by count and bytes, in arrival order.
///
/// Shares and eviction (SPEC "hostile peers"): each relaying peer may hold
/// at most an eighth of the pool's **bytes**; a transaction over that is
/// refused as [`TxError::PeerLimit`], which costs the relayer nothing (an
/// honest relayer of someone else's flood reaches it too). When the pool
/// is full, room is made by dropping the oldest transaction of the origin
/// holding the most bytes; the operator's own (`POST /tx`, no peer) go
/// last. Core evicts by fee rate; powchain's opaque transactions carry no
/// fee, so the rule is one a flood cannot turn against others: a peer that
/// fills the pool becomes the largest holder and evicts its own.
#[derive(Debug)]
pub struct Mempool {
    txs: HashMap<Txid, Entry>,
    /// Arrival number to txid, oldest first.
    order: BTreeMap<u64, Txid>,
    /// What each origin (a peer, or `None` for the operator) holds.
    shares: HashMap<Option<PeerId>, Share>,
    next_seq: u64,
    max_peer_bytes: usize,
    bytes: usize,
    max_bytes: usize,
    max_count: usize,
    max_tx_bytes: usize,
}

#[derive(Debug)]
struct Entry {
    tx: Vec<u8>,
    seq: u64,
    origin: Option<PeerId>,
}

#[derive(Debug, Default)]
struct Share {
    bytes: usize,
    /// Arrival numbers of its transactions, oldest first.
    seqs: BTreeSet<u64>,
}

impl Mempool {
    /// An empty pool of at most `max_bytes` and `max_count` transactions,
    /// each at most `max_tx_bytes`.
    #[must_use]
    pub fn new(max_bytes: usize, max_count: usize, max_tx_bytes: usize) -> Mempool {
        Mempool {
            txs: HashMap::new(),
            order: BTreeMap::new(),
            shares: HashMap::new(),
            next_seq: 0,
            max_peer_bytes: (max_bytes / 8).max(1),
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

    /// Adds the operator's transaction.
    ///
    /// # Errors
    /// [`TxError`].
    pub fn add(&mut self, tx: Vec<u8>) -> Result<Txid, TxError> {
        self.add_from(tx, None)
    }

    /// Adds a transaction relayed by `from` (`None`: the operator's).
    ///
    /// # Errors
    /// [`TxError`]; [`TxError::PeerLimit`] when `from` holds its eighth of
    /// the pool's bytes already.
    pub fn add_from(&mut self, tx: Vec<u8>, from: Option<PeerId>) -> Result<Txid, TxError> {
        let txid = self.check(&tx)?;
        if from.is_some() {
            let held = self.shares.get(&from).map_or(0, |s| s.bytes);
            if held + tx.len() > self.max_peer_bytes {
                return Err(TxError::PeerLimit(held));
            }
        }
        while !self.txs.is_empty()
            && (self.txs.len() >= self.max_count || self.bytes + tx.len() > self.max_bytes)
        {
            self.evict_one();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += tx.len();
        let share = self.shares.entry(from).or_default();
        share.bytes += tx.len();
        share.seqs.insert(seq);
        self.order.insert(seq, txid);
        self.txs.insert(
            txid,
            Entry {
                tx,
                seq,
                origin: from,
            },
        );
        Ok(txid)
    }

    /// Drops the oldest transaction of the peer holding the most bytes
    /// (the operator's only when no peer holds any).
    fn evict_one(&mut self) {
        let victim = self
            .shares
            .iter()
            .filter(|(o, s)| o.is_some() && !s.seqs.is_empty())
            // Ties go to the holder of the oldest transaction: the choice
            // does not depend on the map's order (runs are reproducible).
            .max_by_key(|(_, s)| (s.bytes, std::cmp::Reverse(s.seqs.first().copied())))
            .or_else(|| self.shares.get_key_value(&None))
            .and_then(|(_, s)| s.seqs.first())
            .and_then(|seq| self.order.get(seq))
            .copied();
        if let Some(id) = victim {
            self.forget(&id);
        }
    }

    fn forget(&mut self, id: &Txid) {
        let Some(e) = self.txs.remove(id) else {
            return;
        };
        self.bytes -= e.tx.len();
        self.order.remove(&e.seq);
        if let Some(share) = self.shares.get_mut(&e.origin) {
            share.bytes -= e.tx.len();
            share.seqs.remove(&e.seq);
            if share.seqs.is_empty() {
                self.shares.remove(&e.origin);
            }
        }
    }

    /// Bytes held by transactions `peer` relayed (`None`: the operator's).
    #[must_use]
    pub fn bytes_from(&self, peer: Option<PeerId>) -> usize {
        self.shares.get(&peer).map_or(0, |s| s.bytes)
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
        self.order.values().copied().collect()
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
        for id in self.order.values() {
            if let Some(e) = self.txs.get(id) {
                if used + e.tx.len() + 5 > max_bytes {
                    break;
                }
                used += e.tx.len() + 5;
                out.push(e.tx.clone());
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
        true
    }

    /// Removes the transactions a connected block included.
    pub fn remove_block(&mut self, block: &Block) {
        for id in block.txids().iter().skip(1) {
            self.forget(id);
        }
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
    fn one_peer_gets_an_eighth_of_the_bytes() {
        let mut m = Mempool::new(800, 1000, 100);
        let p = PeerId::random();
        for i in 0..10u8 {
            m.add_from(vec![i + 1; 10], Some(p)).unwrap();
        }
        assert_eq!(m.bytes_from(Some(p)), 100);
        assert_eq!(m.add_from(vec![99], Some(p)), Err(TxError::PeerLimit(100)));
        // Others still get in, and a mined transaction frees room.
        m.add_from(vec![98], Some(PeerId::random())).unwrap();
        let block = Block {
            header: crate::consensus::Params::regtest().genesis.header,
            txdata: vec![vec![0xff; 20], vec![1; 10]],
        };
        m.remove_block(&block);
        m.add_from(vec![99], Some(p)).unwrap();
    }

    #[test]
    fn a_full_pool_evicts_the_largest_holder_first_and_the_operators_last() {
        // 1,000 bytes; a peer's share is 125.
        let mut m = Mempool::new(1000, 10_000, 100);
        let own: Vec<Txid> = (0..50u16)
            .map(|i| {
                m.add([b'o', (i >> 8) as u8, i as u8, 0, 0, 0, 0, 0, 0, 0].to_vec())
                    .unwrap()
            })
            .collect();
        // Eight peers of 120 bytes each overfill it (500 + 960 > 1,000):
        // they evict one another, the operator's stay.
        for p in 0..8u8 {
            let peer = PeerId::random();
            for i in 0..4u8 {
                m.add_from(
                    vec![
                        p, i, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                        7, 7, 7, 7, 30,
                    ],
                    Some(peer),
                )
                .unwrap();
            }
        }
        assert!(m.bytes() <= 1000);
        for id in &own {
            assert!(
                m.txids().contains(id),
                "an operator's transaction was evicted"
            );
        }
        // The arrival order is kept, with no duplicates.
        let ids = m.txids();
        assert_eq!(ids.len(), m.len());
        assert_eq!(&ids[..50], &own[..]);
    }
}
