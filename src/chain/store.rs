//! Block storage: the [`BlockStore`] trait, an in-memory store for tests
//! and benchmarks, and [`RedbStore`], the crash-safe one the node uses.
//!
//! Records are keyed by arrival sequence number (`seq`, u64), so a reopen
//! replays blocks in the order they were accepted: every block's parent
//! comes before it, and equal-work ties resolve to the same first-seen tip.
//! Value layout: `received_ms` u64 LE, then the block's serialization.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

use crate::consensus::block::Coinbase;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");

/// A storage failure. The node treats these as fatal: it cannot promise
/// durability any more. redb's own errors are kept as sources.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened.
    #[error("block store: open: {0}")]
    Database(#[from] redb::DatabaseError),
    /// A transaction could not begin.
    #[error("block store: transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    /// The table could not be opened.
    #[error("block store: table: {0}")]
    Table(#[from] redb::TableError),
    /// A read or write failed.
    #[error("block store: storage: {0}")]
    Storage(#[from] redb::StorageError),
    /// The commit failed: the batch is not durable.
    #[error("block store: commit: {0}")]
    Commit(#[from] redb::CommitError),
    /// Durability could not be set.
    #[error("block store: durability: {0}")]
    Durability(#[from] redb::SetDurabilityError),
    /// The store is damaged: a page fails redb's checksum, a record does
    /// not decode, or a stored header breaks a consensus rule it passed
    /// when it was stored (proof of work, `bits`, linkage, time). The node
    /// refuses to start on it rather than run on a shorter or altered chain.
    #[error(
        "block store {store} is damaged: {what}; it cannot be trusted: move it aside \
         and start again to download the chain from peers"
    )]
    Damaged {
        /// the store's file (or "memory")
        store: String,
        /// what is wrong, and where
        what: String,
    },
    /// The data dir holds another network's chain.
    #[error(
        "block store: the data dir belongs to another network: genesis {found}, expected {expected}"
    )]
    WrongNetwork {
        /// genesis found
        found: String,
        /// genesis of this network
        expected: String,
    },
    /// The batch this block was part of failed to commit (the first
    /// block's result carries the cause).
    #[error("block store: the batch failed to commit: {0}")]
    BatchFailed(String),
}

/// One stored block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    /// Arrival sequence number (0 = genesis).
    pub seq: u64,
    /// When it was received, Unix milliseconds.
    pub received_ms: u64,
    /// Bitcoin block serialization.
    pub bytes: Vec<u8>,
}

/// What a reopen needs of one stored block: its sequence number, arrival
/// time, 80-byte header and its coinbase's miner id (the rest of the body
/// stays on disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHeader {
    /// Arrival sequence number (0 = genesis).
    pub seq: u64,
    /// When it was received, Unix milliseconds.
    pub received_ms: u64,
    /// The header's 80 bytes, or `None` for a record too short to hold one.
    pub header: Option<[u8; 80]>,
    /// The miner id in the block's coinbase, when it has our coinbase.
    pub miner_id: Option<String>,
}

fn header_prefix(bytes: &[u8]) -> Option<[u8; 80]> {
    bytes.get(..80).map(|h| {
        let mut a = [0u8; 80];
        a.copy_from_slice(h);
        a
    })
}

/// Where accepted blocks live.
pub trait BlockStore: Send {
    /// Writes `blocks` atomically and durably: when this returns `Ok`, a
    /// crash cannot lose them.
    ///
    /// # Errors
    /// [`StoreError`] if the write or commit failed.
    fn put_blocks(&mut self, blocks: &[StoredBlock]) -> Result<(), StoreError>;
    /// The block stored under `seq`.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure.
    fn get_block(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every stored block in `seq` order.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure.
    fn load_headers(&self, visit: &mut dyn FnMut(StoredHeader)) -> Result<(), StoreError>;
    /// Where the blocks live, for error messages: a file's path or
    /// `"memory"`.
    fn location(&self) -> String;
}

/// Blocks in memory (tests, benchmarks, `verify` tools).
#[derive(Default)]
pub struct MemStore {
    blocks: BTreeMap<u64, (u64, Vec<u8>)>,
}

impl BlockStore for MemStore {
    fn put_blocks(&mut self, blocks: &[StoredBlock]) -> Result<(), StoreError> {
        for b in blocks {
            self.blocks.insert(b.seq, (b.received_ms, b.bytes.clone()));
        }
        Ok(())
    }
    fn get_block(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blocks.get(&seq).map(|(_, b)| b.clone()))
    }
    fn load_headers(&self, visit: &mut dyn FnMut(StoredHeader)) -> Result<(), StoreError> {
        for (&seq, (ms, bytes)) in &self.blocks {
            visit(StoredHeader {
                seq,
                received_ms: *ms,
                header: header_prefix(bytes),
                miner_id: Coinbase::of_block_bytes(bytes).map(|c| c.miner_id),
            });
        }
        Ok(())
    }
    fn location(&self) -> String {
        "memory".into()
    }
}

/// A redb database file. Each `put_blocks` is one write transaction
/// committed with `Durability::Immediate` (fsync), so a block is on disk
/// before the chain reports it accepted; redb repairs itself on reopen
/// after a crash and holds exactly the committed transactions.
///
/// A file damaged from outside (a bad disk, a stray write) is found on
/// open: redb's page checksums are verified (`Database::check_integrity`),
/// and every redb panic or `Corrupted` error is turned into
/// [`StoreError::Damaged`] naming the file, so a damaged store never
/// crashes the node.
pub struct RedbStore {
    db: Database,
    path: String,
}

impl RedbStore {
    /// Opens or creates the database at `path` and verifies every page's
    /// checksum. A file redb could repair (it rolls back to the last
    /// commit whose pages verify) opens with a warning; the chain then
    /// reopens on the blocks that survived, and its height is logged.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when the file fails the check and cannot be
    /// repaired; other [`StoreError`]s when it cannot be opened at all.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let location = path.display().to_string();
        let db = guarded(&location, || {
            let mut db = Database::create(path)?;
            if !db.check_integrity()? {
                tracing::warn!(
                    store = %location,
                    "block store was damaged and redb repaired it by going back to its last \
                     intact commit: blocks stored after that are lost and will be downloaded again"
                );
            }
            let txn = db.begin_write()?;
            txn.open_table(BLOCKS)?;
            txn.commit()?;
            Ok(db)
        })?;
        Ok(RedbStore { db, path: location })
    }
}

/// Runs a redb operation; a redb panic (its answer to some damaged pages)
/// or a `Corrupted` error becomes [`StoreError::Damaged`] naming `store`.
fn guarded<T>(store: &str, op: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let damaged = |what: String| StoreError::Damaged {
        store: store.to_string(),
        what,
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)) {
        Ok(Err(e)) => Err(match e {
            StoreError::Database(redb::DatabaseError::Storage(redb::StorageError::Corrupted(
                m,
            )))
            | StoreError::Storage(redb::StorageError::Corrupted(m))
            | StoreError::Transaction(redb::TransactionError::Storage(
                redb::StorageError::Corrupted(m),
            ))
            | StoreError::Table(redb::TableError::Storage(redb::StorageError::Corrupted(m))) => {
                damaged(format!("redb: {m}"))
            }
            e => e,
        }),
        Ok(ok) => ok,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "no message".into());
            Err(damaged(format!("redb stopped on a damaged page ({text})")))
        }
    }
}

impl BlockStore for RedbStore {
    fn put_blocks(&mut self, blocks: &[StoredBlock]) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        guarded(&self.path, || {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            {
                let mut table = txn.open_table(BLOCKS)?;
                let mut buf = Vec::new();
                for b in blocks {
                    buf.clear();
                    buf.extend_from_slice(&b.received_ms.to_le_bytes());
                    buf.extend_from_slice(&b.bytes);
                    table.insert(b.seq, buf.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    fn get_block(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        guarded(&self.path, || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(BLOCKS)?;
            Ok(table
                .get(seq)?
                .and_then(|v| v.value().get(8..).map(<[u8]>::to_vec)))
        })
    }

    fn load_headers(&self, visit: &mut dyn FnMut(StoredHeader)) -> Result<(), StoreError> {
        guarded(&self.path, || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(BLOCKS)?;
            for item in table.iter()? {
                let (k, v) = item?;
                let v = v.value();
                if v.len() < 8 {
                    return Err(StoreError::Damaged {
                        store: self.path.clone(),
                        what: format!("record {} is truncated ({} bytes)", k.value(), v.len()),
                    });
                }
                let mut ms = [0u8; 8];
                ms.copy_from_slice(&v[..8]);
                visit(StoredHeader {
                    seq: k.value(),
                    received_ms: u64::from_le_bytes(ms),
                    header: header_prefix(&v[8..]),
                    miner_id: Coinbase::of_block_bytes(&v[8..]).map(|c| c.miner_id),
                });
            }
            Ok(())
        })
    }

    fn location(&self) -> String {
        self.path.clone()
    }
}
