//! A damaged `chain.redb` reopened (issue 22, item 7): a 30-block regtest
//! store is built once; each input is a list of patches
//! (`offset: u32 LE, len: u8, bytes`) written over a copy of it, which is
//! then opened as the node opens it (`RedbStore::open`, with redb's
//! integrity check, then `ChainStore::open`, which re-checks every stored
//! header) and read back. Any outcome but a panic is fine: refusal with
//! `StoreError::Damaged`, or a chain whose blocks read back.
//!
//! Run it with `-rss_limit_mb=8192`: redb allocates a page buffer of the
//! size a damaged page pointer claims before it reads (512 MiB was seen
//! for this 53 KB file, `redb::tree_store::page_store::cached_file`, page
//! orders reach 2^20 pages of 4 KiB), which libFuzzer's default 2 GiB
//! limit reports as an out-of-memory.
#![no_main]
#[path = "common/chain.rs"]
mod common;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use powchain::chain::{ChainStore, RedbStore};
use powchain::consensus::{BlockHash, Params};

struct Base {
    params: Arc<Params>,
    pristine: Vec<u8>,
    hashes: Vec<BlockHash>,
    path: PathBuf,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        // libfuzzer-sys's panic hook aborts on every panic, even one the
        // store catches on purpose (`guarded` turns redb's panics on
        // damaged pages into `StoreError::Damaged`). A silent hook
        // instead: a panic that escapes still aborts, at libfuzzer-sys's
        // `catch_unwind` around each input.
        std::panic::set_hook(Box::new(|_| {}));
        let params = Arc::new(Params::regtest());
        let root = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // Directories of fuzz processes that have ended are removed.
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("powchain-fuzz-store-") {
                    if !std::path::Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = root.join(format!("powchain-fuzz-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("chain.redb");
        let _ = std::fs::remove_file(&path);
        let hashes: Vec<BlockHash> = {
            let store = RedbStore::open(&path).expect("new store");
            let mut cs = ChainStore::open(Arc::clone(&params), Box::new(store)).expect("open");
            common::mine_into(&mut cs, 30)
                .iter()
                .map(powchain::consensus::Block::block_hash)
                .collect()
        };
        let pristine = std::fs::read(&path).expect("read store");
        Base {
            params,
            pristine,
            hashes,
            path,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let mut file = base.pristine.clone();
    let mut rest = data;
    while rest.len() >= 5 {
        let offset = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let len = usize::from(rest[4]);
        rest = &rest[5..];
        let take = len.min(rest.len());
        let at = offset % file.len();
        for (i, b) in rest[..take].iter().enumerate() {
            if let Some(slot) = file.get_mut(at + i) {
                *slot = *b;
            }
        }
        rest = &rest[take..];
    }
    std::fs::write(&base.path, &file).expect("write store copy");
    let Ok(store) = RedbStore::open(&base.path) else {
        return;
    };
    let Ok(cs) = ChainStore::open(Arc::clone(&base.params), Box::new(store)) else {
        return;
    };
    assert!(cs.height() <= 30, "a reopened store grew: {}", cs.height());
    for h in &base.hashes {
        let _ = cs.block(h);
    }
    let _ = cs.locator();
});
