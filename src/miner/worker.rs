//! Mining threads (plain OS threads, not tokio tasks).
//!
//! - [`Miner`]: mines blocks for the node. Each thread builds its own
//!   coinbase with a distinct extranonce (thread index + k * threads), so
//!   threads never hash the same header; when a thread's 2^32 nonces are
//!   spent it rolls its extranonce (new merkle root) and refreshes the time.
//!   A generation counter is checked every [`CHUNK_NONCES`] nonces, so a new
//!   tip stops stale work within about a millisecond.
//! - [`search_header`]: `mine-header`'s search over one fixed header, chunks
//!   interleaved across threads; returns the lowest solution at or above
//!   the start nonce.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::consensus::block::{Block, Coinbase};
use crate::consensus::merkle::merkle_root;
use crate::consensus::pow::Target;
use crate::consensus::{sha256d, BlockHash, BlockHeader};

use super::sha256d::{Backend, ScanInput};

/// Nonces scanned between two looks at the job generation.
pub const CHUNK_NONCES: u32 = 16_384;

pub use crate::consensus::template::BlockTemplate;

/// A block found by the miner, with the job generation it belongs to.
#[derive(Clone, Debug)]
pub struct FoundBlock {
    /// The job generation it was mined for.
    pub generation: u64,
    /// The block.
    pub block: Block,
    /// When the job was handed to the miner.
    pub job_started: Instant,
}

struct Shared {
    job: Mutex<Option<(u64, Arc<BlockTemplate>, Instant)>>,
    wake: Condvar,
    generation: AtomicU64,
    hashes: AtomicU64,
    shutdown: AtomicBool,
    /// Per thread: the job generation it is hashing now (0 = idle).
    working_on: Vec<AtomicU64>,
    /// Per-thread cap, H/s (`None`: flat out).
    cap_per_thread: Option<f64>,
}

/// A pool of mining threads fed with [`BlockTemplate`]s.
pub struct Miner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    backend: Backend,
}

impl Miner {
    /// Starts `threads` idle mining threads using `backend`; found blocks
    /// go to `on_found` (called on a mining thread: keep it cheap, e.g. a
    /// channel send).
    pub fn start(
        backend: Backend,
        threads: usize,
        on_found: impl Fn(FoundBlock) + Send + Sync + 'static,
    ) -> Miner {
        Miner::start_capped(backend, threads, None, on_found)
    }

    /// [`Miner::start`] with the total hashrate held under `max_hashrate`
    /// H/s: each thread sleeps when it is ahead of its share, so a node
    /// gets a stated share of a shared machine (testnet `--hashrate-share`).
    pub fn start_capped(
        backend: Backend,
        threads: usize,
        max_hashrate: Option<f64>,
        on_found: impl Fn(FoundBlock) + Send + Sync + 'static,
    ) -> Miner {
        let shared = Arc::new(Shared {
            cap_per_thread: max_hashrate.map(|h| h / threads.max(1) as f64),
            job: Mutex::new(None),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            hashes: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            working_on: (0..threads.max(1)).map(|_| AtomicU64::new(0)).collect(),
        });
        let on_found = Arc::new(on_found);
        let threads = threads.max(1);
        let handles = (0..threads)
            .map(|idx| {
                let shared = Arc::clone(&shared);
                let on_found = Arc::clone(&on_found);
                std::thread::Builder::new()
                    .name(format!("miner-{idx}"))
                    .spawn(move || {
                        mine_loop(&shared, backend, idx as u64, threads as u64, &*on_found)
                    })
                    .expect("spawn a miner thread")
            })
            .collect();
        Miner {
            shared,
            threads: handles,
            backend,
        }
    }

    /// Replaces the current job; threads drop the old one within one chunk.
    /// Returns the new generation.
    pub fn set_job(&self, template: BlockTemplate) -> u64 {
        let mut job = self.shared.job.lock().expect("miner job lock");
        let gen = self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *job = Some((gen, Arc::new(template), Instant::now()));
        self.shared.wake.notify_all();
        gen
    }

    /// Waits until every thread hashes generation `gen` or a newer one;
    /// returns how long that took from this call, or `None` after
    /// `timeout`. Used to measure the job-switch latency.
    #[must_use]
    pub fn wait_switched(
        &self,
        gen: u64,
        timeout: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self
                .shared
                .working_on
                .iter()
                .all(|g| g.load(Ordering::Acquire) >= gen)
            {
                return Some(start.elapsed());
            }
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        None
    }

    /// Stops work until the next [`Miner::set_job`].
    pub fn pause(&self) {
        let mut job = self.shared.job.lock().expect("miner job lock");
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        *job = None;
    }

    /// Total nonces hashed since start.
    #[must_use]
    pub fn hashes(&self) -> u64 {
        self.shared.hashes.load(Ordering::Relaxed)
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Number of threads.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Stops and joins every thread.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.pause();
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds the header (nonce 0, time max(now, min_time)) and coinbase of
/// `t` for one extranonce, at the wall clock's time.
pub fn assemble(t: &BlockTemplate, extranonce: u64) -> (BlockHeader, Vec<u8>) {
    assemble_at(t, extranonce, now_secs())
}

/// [`assemble`] at an explicit time `now_secs` (Unix s): the protocol core
/// and the simulator pass their own clock.
#[must_use]
pub fn assemble_at(t: &BlockTemplate, extranonce: u64, now_secs: u64) -> (BlockHeader, Vec<u8>) {
    let coinbase = Coinbase {
        height: t.height,
        extranonce,
        miner_id: t.miner_id.clone(),
    }
    .encode();
    let mut leaves = Vec::with_capacity(1 + t.transactions.len());
    leaves.push(sha256d(&coinbase));
    leaves.extend(t.transactions.iter().map(|tx| sha256d(tx)));
    let header = BlockHeader {
        version: t.version,
        prev_blockhash: t.prev_blockhash,
        merkle_root: merkle_root(&leaves).root,
        time: u32::try_from(now_secs).unwrap_or(u32::MAX).max(t.min_time),
        bits: t.bits,
        nonce: 0,
    };
    (header, coinbase)
}

fn mine_loop(
    shared: &Shared,
    backend: Backend,
    idx: u64,
    threads: u64,
    on_found: &(dyn Fn(FoundBlock) + Send + Sync),
) {
    let mut last_done: u64 = 0;
    // Hashrate cap: hashes done since `pace_start`, held under cap × time.
    let mut pace_start = Instant::now();
    let mut paced: u64 = 0;
    loop {
        let (gen, template, started) = {
            let mut job = shared.job.lock().expect("miner job lock");
            loop {
                if shared.shutdown.load(Ordering::Acquire) {
                    return;
                }
                match &*job {
                    Some((g, t, s)) if *g != last_done => break (*g, Arc::clone(t), *s),
                    _ => job = shared.wake.wait(job).expect("miner job lock"),
                }
            }
        };
        last_done = gen;
        shared.working_on[idx as usize].store(gen, Ordering::Release);
        let Ok(target) = Target::from_compact(template.bits) else {
            continue;
        };
        let mut round: u64 = 0;
        'job: loop {
            let extranonce = idx + round * threads;
            round += 1;
            let (header, coinbase) = assemble(&template, extranonce);
            let input = ScanInput::new(header.encode(), target);
            let mut nonce: u64 = 0;
            while nonce <= u64::from(u32::MAX) {
                if shared.generation.load(Ordering::Acquire) != gen {
                    break 'job;
                }
                let count = (u64::from(u32::MAX) + 1 - nonce).min(u64::from(CHUNK_NONCES)) as u32;
                let r = backend.scan(&input, nonce as u32, count);
                shared.hashes.fetch_add(r.hashes, Ordering::Relaxed);
                if let Some(cap) = shared.cap_per_thread {
                    paced += r.hashes;
                    loop {
                        let allowed = cap * pace_start.elapsed().as_secs_f64();
                        if allowed > paced as f64 + cap {
                            // More than a second of unused credit (idle
                            // time): start counting afresh, no burst.
                            pace_start = Instant::now();
                            paced = 0;
                            break;
                        }
                        if paced as f64 <= allowed
                            || shared.generation.load(Ordering::Acquire) != gen
                        {
                            break;
                        }
                        let wait = ((paced as f64 - allowed) / cap).min(0.005);
                        std::thread::sleep(std::time::Duration::from_secs_f64(wait));
                    }
                }
                if let Some(&n) = r.solutions.first() {
                    let mut header = header;
                    header.nonce = n;
                    let mut txdata = Vec::with_capacity(1 + template.transactions.len());
                    txdata.push(coinbase);
                    txdata.extend(template.transactions.iter().cloned());
                    on_found(FoundBlock {
                        generation: gen,
                        block: Block { header, txdata },
                        job_started: started,
                    });
                    // Wait for the next job: this one's tip is now stale.
                    break 'job;
                }
                nonce += u64::from(count);
            }
        }
    }
}

/// Outcome of [`search_header`].
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderSearchResult {
    /// The lowest solving nonce at or above the start, if any.
    pub solution: Option<(u32, BlockHash)>,
    /// Nonces hashed.
    pub hashes: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Searches nonces `start ..= u32::MAX` of `header` for one that meets its
/// own `bits`, on `threads` threads. Chunks of [`CHUNK_NONCES`] are handed
/// out in order, so the result is the lowest solution at or above `start`
/// regardless of thread timing. `progress` receives the running hash count.
#[must_use]
pub fn search_header(
    backend: Backend,
    header: &BlockHeader,
    target: Target,
    start: u32,
    threads: usize,
    progress: &AtomicU64,
) -> HeaderSearchResult {
    let input = ScanInput::new(header.encode(), target);
    let next_chunk = AtomicU64::new(0);
    let best = AtomicU64::new(u64::MAX);
    let began = Instant::now();
    let total_nonces = u64::from(u32::MAX) - u64::from(start) + 1;
    let chunks = total_nonces.div_ceil(u64::from(CHUNK_NONCES));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let c = next_chunk.fetch_add(1, Ordering::AcqRel);
                let lo = u64::from(start) + c * u64::from(CHUNK_NONCES);
                if c >= chunks || lo >= best.load(Ordering::Acquire) {
                    return;
                }
                let count = (u64::from(u32::MAX) + 1 - lo).min(u64::from(CHUNK_NONCES)) as u32;
                let r = backend.scan(&input, lo as u32, count);
                progress.fetch_add(r.hashes, Ordering::Relaxed);
                if let Some(&n) = r.solutions.first() {
                    best.fetch_min(u64::from(n), Ordering::AcqRel);
                }
            });
        }
    });
    let found = best.load(Ordering::Acquire);
    HeaderSearchResult {
        solution: (found != u64::MAX).then(|| {
            let mut h = *header;
            h.nonce = found as u32;
            (found as u32, h.block_hash())
        }),
        hashes: progress.load(Ordering::Relaxed),
        seconds: began.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Params;

    #[test]
    fn search_header_finds_genesis_nonce_from_below() {
        let g = Params::mainnet().genesis.header;
        let target = Target::from_compact(g.bits).unwrap();
        let progress = AtomicU64::new(0);
        let r = search_header(Backend::auto(), &g, target, g.nonce - 200_000, 2, &progress);
        assert_eq!(r.solution, Some((g.nonce, g.block_hash())));
        assert!(r.hashes >= 200_000);
    }

    #[test]
    fn miner_produces_valid_regtest_blocks_and_switches_jobs() {
        let params = Params::regtest();
        let (tx, rx) = std::sync::mpsc::channel();
        let miner = Miner::start(Backend::auto(), 2, move |f| {
            let _ = tx.send(f);
        });
        let template = BlockTemplate {
            height: 1,
            version: 1,
            prev_blockhash: params.genesis_hash,
            bits: params.pow_limit_bits,
            min_time: params.genesis.header.time + 1,
            transactions: vec![b"hello".to_vec()],
            miner_id: "test".into(),
        };
        let gen = miner.set_job(template);
        let found = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(found.generation, gen);
        let b = found.block;
        assert!(params.pow_limit.is_met_by(&b.block_hash()));
        crate::consensus::check_block(&params, &b, 1).unwrap();
        assert_eq!(b.txdata[1], b"hello".to_vec());
        miner.shutdown();
    }
}
