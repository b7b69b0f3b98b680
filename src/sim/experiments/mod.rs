//! The experiments of `powchain sim`: Rosenfeld's double-spend race,
//! Eyal–Sirer selfish mining and a whole network's stale rate, chain
//! quality and common prefix, each run on the real protocol cores of a
//! [`Network`] in virtual time.
//!
//! Determinism: every random draw comes from a ChaCha8 stream seeded from
//! the run's seed and the point's position in the grid (never from the
//! thread that runs it), so a seed and arguments give the same results on
//! any number of threads.
//!
//! One file per experiment: `double_spend.rs`, `selfish.rs`, `network.rs`.

mod double_spend;
mod network;
mod selfish;

pub use double_spend::*;
pub use network::*;
pub use selfish::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::consensus::Params;

/// Mean block interval of the simulated miners, virtual ms (Bitcoin's).
pub const SIM_BLOCK_TIME_MS: f64 = 600_000.0;

/// Double-spend trials run on one [`Network`] before it is rebuilt (the
/// in-memory chains would otherwise grow without bound).
const TRIALS_PER_NETWORK: u64 = 2_000;

/// A derived seed for grid point `a, b` and chunk `c` of a run seeded
/// `seed` (SplitMix64 over the four numbers).
fn derive_seed(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    let mut x = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for v in [b, c] {
        x = x.wrapping_add(v.wrapping_mul(0xbf58_476d_1ce4_e5b9));
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x
}

/// Runs `jobs` on up to `threads` threads, results in job order.
fn parallel<T: Send>(jobs: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.max(1)) {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs {
                    return;
                }
                let r = f(j);
                results.lock().expect("results lock")[j] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// A kB field of `/proc/PID/status` (`/proc/self/status` for `None`),
/// e.g. `"VmHWM:"` (peak resident memory) or `"VmRSS:"`, in KiB; `None`
/// where the file or the field does not exist.
#[must_use]
pub fn proc_status_kb(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/status".to_string(),
        |p| format!("/proc/{p}/status"),
    );
    std::fs::read_to_string(path).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
    })
}

/// Peak resident memory of this process, bytes (`VmHWM`; 0 where
/// `/proc` does not exist).
#[must_use]
pub fn peak_rss_bytes() -> u64 {
    proc_status_kb(None, "VmHWM:").map_or(0, |kb| kb * 1024)
}

/// Regtest's rules (minimum difficulty, so a simulated block costs a few
/// hashes) with the block time the experiment simulates, so the cores'
/// own timers (keep-alive handshakes) run at the network's pace.
fn sim_params(block_time_secs: f64) -> Params {
    let mut p = Params::regtest();
    p.block_time_secs = block_time_secs.round().clamp(1.0, f64::from(u32::MAX)) as u32;
    p
}
