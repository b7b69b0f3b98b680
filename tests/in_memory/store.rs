//! A damaged `chain.redb` (issue 22, item 7): random overwrites and a
//! changed block record. Each reopen either refuses the store with a
//! [`ChainError`] that says it is damaged, or comes back with the very same
//! tip and height: never a panic, never a silent start on a shorter chain.

use std::path::Path;
use std::sync::Arc;

use crate::util::{regtest_block, NOW_MS};
use powchain::chain::{BlockStore, ChainError, ChainStore, MemStore, RedbStore, StoredBlock};
use powchain::consensus::{Block, BlockHash, Params};

/// A regtest chain of `n` blocks, each with two 200-byte transactions so
/// block bodies fill most of the file.
fn chain_with_bodies(p: &Params, n: u32) -> Vec<Block> {
    let mut prev = p.genesis_hash;
    (0..n)
        .map(|i| {
            let txs = (0..2u8).map(|k| vec![k ^ (i as u8); 200]).collect();
            let b = regtest_block(p, prev, i + 1, p.genesis.header.time + 1 + i, 0, txs);
            prev = b.block_hash();
            b
        })
        .collect()
}

/// What a reopen gave: `Ok((tip, height, blocks read back unchanged))`,
/// the error's text, or a panic's.
fn reopen(p: &Arc<Params>, path: &Path, blocks: &[Block]) -> Reopened {
    let p = Arc::clone(p);
    let path = path.to_path_buf();
    let blocks = blocks.to_vec();
    std::panic::catch_unwind(move || {
        let store = RedbStore::open(&path).map_err(ChainError::from);
        let cs = store
            .and_then(|s| ChainStore::open(p, Box::new(s)))
            .map_err(|e| e.to_string())?;
        let mut unchanged = 0;
        for b in &blocks {
            match cs.block(&b.block_hash()) {
                Ok(Some(read)) if read == *b => unchanged += 1,
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok((cs.tip(), cs.height(), unchanged))
    })
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_default()
    })
}

type Reopened = Result<Result<(BlockHash, u32, usize), String>, String>;

#[track_caller]
fn assert_refused_or_whole(what: &str, got: Reopened, whole: (BlockHash, u32, usize)) {
    eprintln!("{what}: {got:?}");
    match got {
        Err(panic) => panic!("{what}: the reopen panicked: {panic}"),
        Ok(Ok(opened)) => assert_eq!(
            opened, whole,
            "{what}: opened on another chain (tip, height, blocks read back unchanged)"
        ),
        Ok(Err(e)) => assert!(
            e.contains("damaged") && e.contains("chain.redb"),
            "{what}: the error does not say the store is damaged and which file: {e}"
        ),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_damaged_store_is_refused_or_reopened_whole_never_panicked_on_nor_shortened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let p = Arc::new(Params::regtest());
    let blocks = chain_with_bodies(&p, 600);
    let whole = {
        let mut cs =
            ChainStore::open(Arc::clone(&p), Box::new(RedbStore::open(&path).unwrap())).unwrap();
        for b in &blocks {
            cs.accept_block(b.clone(), None, NOW_MS).unwrap();
        }
        (cs.tip(), cs.height(), blocks.len())
    };
    assert_eq!(whole.1, 600);
    let pristine = std::fs::read(&path).unwrap();
    assert_eq!(
        reopen(&p, &path, &blocks),
        Ok(Ok(whole)),
        "the undamaged store reopens"
    );

    // 4 KiB of noise at six offsets spread over the file (xorshift, fixed seed).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for k in 1..=6 {
        let mut bytes = pristine.clone();
        let at = (bytes.len() * k / 7) & !4095;
        for b in &mut bytes[at..(at + 4096).min(pristine.len())] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        assert_refused_or_whole(
            &format!("4 KiB of noise at {at}"),
            reopen(&p, &path, &blocks),
            whole,
        );
    }

    // Overwrites `with` at `offset` bytes into the stored copy of `needle`,
    // then reopens.
    let overwrite = |what: &str, needle: &[u8], offset: usize, with: &[u8]| {
        let at = find(&pristine, needle).expect("stored verbatim") + offset;
        let mut bytes = pristine.clone();
        bytes[at..at + with.len()].copy_from_slice(with);
        std::fs::write(&path, &bytes).unwrap();
        assert_refused_or_whole(what, reopen(&p, &path, &blocks), whole);
    };
    // 16 bytes inside one block's header (in its merkle root): the block's
    // hash changes, so every later block loses its parent.
    overwrite(
        "16 bytes in block 301's header",
        &blocks[300].header.encode(),
        40,
        &[0xA5; 16],
    );
    // 16 bytes inside one block's body: the header still links.
    overwrite(
        "16 bytes in block 451's body",
        &blocks[450].txdata[1],
        50,
        &[0x5A; 16],
    );
    // The bits of one header (a different target changes the chainwork).
    overwrite(
        "bits of block 101",
        &blocks[100].header.encode(),
        72,
        &0x1f7f_ffffu32.to_le_bytes(),
    );
}

/// Edits block `i`'s encoding; `false` leaves the block out.
type Edit = dyn Fn(usize, &mut Vec<u8>) -> bool;

/// The header checks on open, which a store without page checksums (or a
/// damaged record that still verifies) relies on: a changed `bits`, a
/// changed header (its hash moves, so its child's link breaks) and a
/// missing parent are each refused, naming the record.
#[test]
fn stored_headers_are_checked_again_on_open() {
    let p = Arc::new(Params::regtest());
    let blocks = chain_with_bodies(&p, 20);
    let records = |edit: &Edit| -> MemStore {
        let mut store = MemStore::default();
        let mut all = vec![StoredBlock {
            seq: 0,
            received_ms: NOW_MS,
            bytes: p.genesis.encode(),
        }];
        let mut seq = 1;
        for (i, b) in blocks.iter().enumerate() {
            let mut bytes = b.encode();
            if edit(i, &mut bytes) {
                all.push(StoredBlock {
                    seq,
                    received_ms: NOW_MS,
                    bytes,
                });
                seq += 1;
            }
        }
        store.put_blocks(&all).unwrap();
        store
    };
    let open = |store: MemStore| ChainStore::open(Arc::clone(&p), Box::new(store));

    let whole = open(records(&|_, _| true)).unwrap();
    assert_eq!(whole.height(), 20);

    // The error names the damaged record, or (for a changed hash that
    // still meets regtest's easy target) its child's broken link.
    let cases: [(&str, &Edit, &[&str]); 3] = [
        (
            "bits of block 8",
            &|i, b| {
                if i == 7 {
                    b[72..76].copy_from_slice(&0x1f7f_ffffu32.to_le_bytes());
                }
                true
            },
            &["record 8: "],
        ),
        (
            "the merkle root of block 11",
            &|i, b| {
                if i == 10 {
                    b[40] ^= 1;
                }
                true
            },
            &["record 11: ", "record 12: "],
        ),
        ("block 5 missing", &|i, _| i != 4, &["record 5: block"]),
    ];
    for (what, edit, expect) in cases {
        let err = match open(records(edit)) {
            Ok(cs) => panic!("{what}: opened at height {}", cs.height()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("block store memory is damaged") && expect.iter().any(|e| err.contains(e)),
            "{what}: {err}"
        );
    }
}

/// A [`MemStore`] that counts block reads.
struct CountingStore {
    inner: MemStore,
    reads: Arc<std::sync::atomic::AtomicUsize>,
}

impl BlockStore for CountingStore {
    fn put_blocks(&mut self, blocks: &[StoredBlock]) -> Result<(), powchain::chain::StoreError> {
        self.inner.put_blocks(blocks)
    }
    fn get_block(&self, seq: u64) -> Result<Option<Vec<u8>>, powchain::chain::StoreError> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.get_block(seq)
    }
    fn load_headers(
        &self,
        visit: &mut dyn FnMut(powchain::chain::StoredHeader),
    ) -> Result<(), powchain::chain::StoreError> {
        self.inner.load_headers(visit)
    }
    fn location(&self) -> String {
        "counting".into()
    }
}

/// Issue 22, item 5 (and the miner ids of item 4): the tree, the stale
/// list and the miner ids are answered from the block index, before and
/// after a reopen. Before, each block drawn cost a whole-block read under
/// the core lock (56 ms for a 10,000-block `/tree`; ~10 GB of reads for a
/// window of 990 KB blocks).
#[test]
fn tree_stale_and_miner_ids_read_no_block() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let p = Arc::new(Params::regtest());
    let reads = Arc::new(AtomicUsize::new(0));
    let store = CountingStore {
        inner: MemStore::default(),
        reads: Arc::clone(&reads),
    };
    let mut cs = ChainStore::open(Arc::clone(&p), Box::new(store)).unwrap();
    let main = chain_with_bodies(&p, 30);
    for b in &main {
        cs.accept_block(b.clone(), None, NOW_MS).unwrap();
    }
    // A stale block at height 11, by another miner.
    let stale = regtest_block(
        &p,
        main[9].block_hash(),
        11,
        p.genesis.header.time + 50,
        7,
        vec![],
    );
    cs.accept_block(stale.clone(), Some("peer"), NOW_MS)
        .unwrap();
    let check = |cs: &ChainStore| {
        reads.store(0, Ordering::Relaxed);
        let tree = cs.tree_with(Some(0), Some(40), false);
        assert_eq!(tree.blocks.len(), 32, "genesis, 30 active, 1 stale");
        let miners: Vec<_> = tree.blocks.iter().map(|b| b.miner.clone()).collect();
        assert!(miners[1..]
            .iter()
            .all(|m| m.as_deref() == Some("t0") || m.as_deref() == Some("t7")));
        let listed = cs.stale_blocks();
        assert_eq!(listed.len(), 1);
        assert_eq!(cs.miner_id(&listed[0].hash).as_deref(), Some("t7"));
        assert_eq!(cs.miner_id(&main[29].block_hash()).as_deref(), Some("t0"));
        assert_eq!(
            cs.tree_block(&stale.block_hash()).unwrap().miner.as_deref(),
            Some("t7")
        );
        assert_eq!(
            reads.load(Ordering::Relaxed),
            0,
            "block reads for the tree and stale list"
        );
    };
    check(&cs);
    // After a reopen the miner ids come from the stored records' coinbases.
    let records: Vec<StoredBlock> = std::iter::once(p.genesis.clone())
        .chain(main.iter().cloned())
        .chain([stale.clone()])
        .zip(0..)
        .map(|(b, seq)| StoredBlock {
            seq,
            received_ms: NOW_MS,
            bytes: b.encode(),
        })
        .collect();
    let mut inner = MemStore::default();
    inner.put_blocks(&records).unwrap();
    let reopened = ChainStore::open(
        Arc::clone(&p),
        Box::new(CountingStore {
            inner,
            reads: Arc::clone(&reads),
        }),
    )
    .unwrap();
    check(&reopened);
}
