//! Hashrate measurement: each backend on N threads, the `sha2` crate's
//! compression as a reference, and OpenSSL's SHA-256 as the figure miners
//! quote. Used by `powchain bench` and by `testnet` (to set its starting
//! difficulty).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Backend, ScanInput};
use crate::consensus::Target;

/// Hashes per second of `backend` on `threads` threads for `seconds`:
/// each thread scans its own header against an unreachable target.
#[must_use]
pub fn measure_hashrate(
    backend: Backend,
    threads: usize,
    seconds: f64,
    counter: &AtomicU64,
) -> f64 {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let stop = &stop;
            s.spawn(move || {
                let mut header = [0u8; 80];
                header[0] = t as u8;
                header[4] = 0x5a;
                let input = ScanInput::new(header, Target::from_u256(ruint::aliases::U256::ZERO));
                let mut nonce = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let r = backend.scan(&input, nonce, 1 << 16);
                    counter.fetch_add(r.hashes, Ordering::Relaxed);
                    nonce = nonce.wrapping_add(1 << 16) & 0xfff0_0000;
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    counter.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The reference for comparisons: the `sha2` crate's own compression
/// (which uses SHA-NI where present), midstate + two `compress256` calls
/// per nonce, one thread, no early exit.
#[must_use]
pub fn reference_sha2_rate(seconds: f64) -> f64 {
    use crate::miner::sha256d::IV;
    let input = ScanInput::new([7u8; 80], Target::from_u256(ruint::aliases::U256::ZERO));
    let mut block1 = [0u8; 64];
    block1[..16].copy_from_slice(&input.header[64..80]);
    block1[16] = 0x80;
    block1[62] = 0x02;
    block1[63] = 0x80;
    let mut block2 = [0u8; 64];
    block2[32] = 0x80;
    block2[62] = 0x01;
    let started = Instant::now();
    let mut n: u64 = 0;
    let mut sink = 0u32;
    while started.elapsed().as_secs_f64() < seconds {
        for _ in 0..65_536u32 {
            block1[12..16].copy_from_slice(&(n as u32).to_le_bytes());
            let mut s = input.midstate;
            sha2::block_api::compress256(&mut s, &[block1]);
            for (i, w) in s.iter().enumerate() {
                block2[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            let mut s2 = IV;
            sha2::block_api::compress256(&mut s2, &[block2]);
            sink ^= s2[7];
            n += 1;
        }
    }
    std::hint::black_box(sink);
    n as f64 / started.elapsed().as_secs_f64()
}

/// One-thread sha256d rate of OpenSSL's SHA-256 (its SHA-NI path where
/// present), as the miners' benchmarks quote it: `openssl speed -evp sha256
/// -bytes 16384` bytes/s, divided by 64 bytes per compression and by 2
/// compressions per sha256d. `None` when `openssl` is not on the PATH or
/// its output is not understood.
#[must_use]
pub fn openssl_sha256d_rate(seconds: u32) -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-evp", "sha256", "-bytes", "16384", "-seconds"])
        .arg(seconds.max(1).to_string())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    parse_openssl_speed(&String::from_utf8_lossy(&out.stdout))
}

/// sha256d/s from the text `openssl speed` prints, whose last line reads
/// e.g. `sha256   1198768.13k` (thousands of bytes/s for the one block
/// size asked).
#[must_use]
pub fn parse_openssl_speed(text: &str) -> Option<f64> {
    let line = text.lines().rev().find(|l| l.starts_with("sha256"))?;
    let kb = line.split_whitespace().last()?.strip_suffix('k')?;
    let bytes_per_sec = kb.parse::<f64>().ok()? * 1000.0;
    Some(bytes_per_sec / 64.0 / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_speed_output_is_read_as_sha256d_per_sec() {
        let text = "version: 3.0.17\nbuilt on: reproducible\n\
                    type             16384 bytes\n\
                    sha256         1198768.13k\n";
        let r = parse_openssl_speed(text).unwrap();
        // 1,198,768,130 B/s / 64 B per compression / 2 per sha256d.
        assert!((r - 9_365_376.015_625).abs() < 1e-3, "{r}");
        assert_eq!(parse_openssl_speed("sha256 fast\n"), None);
        assert_eq!(parse_openssl_speed(""), None);
    }
}
