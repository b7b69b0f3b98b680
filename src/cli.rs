//! Command-line interface (SPEC "Command line"): clap definitions and the
//! implementation of each subcommand. Exit codes: 0 success, 1 the check or
//! the work failed, 2 bad usage or bad input. With `--json`, stdout is
//! exactly one JSON document and human text goes to stderr.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use thiserror::Error;

use crate::consensus::pow::Work;
use crate::consensus::validation::{check_header, SliceView};
use crate::consensus::{BlockHeader, Network, Params, Target};
use crate::miner::worker::search_header;
use crate::miner::{Backend, ScanInput};

/// A failed command: `Usage` exits 2, `Failed` exits 1. `json` (when set)
/// is printed on stdout as the command's one JSON document.
#[derive(Debug, Error)]
pub enum CliError {
    /// Bad usage or bad input.
    #[error("{0}")]
    Usage(String),
    /// The check or the work failed.
    #[error("{message}")]
    Failed {
        /// one-line reason
        message: String,
        /// JSON document for `--json`
        json: Option<Value>,
    },
}

impl CliError {
    /// The process exit code.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed { .. } => 1,
        }
    }
}

fn failed(message: impl Into<String>) -> CliError {
    CliError::Failed {
        message: message.into(),
        json: None,
    }
}

/// powchain: a Nakamoto proof-of-work node, miner and local testnet.
#[derive(Debug, Parser)]
#[command(name = "powchain", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (flags override the TOML config file).
    Node(NodeArgs),
    /// Ask a running node for its state.
    Status {
        /// The node's HTTP API address.
        #[arg(long, default_value = "127.0.0.1:18632")]
        api: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Hashrate of the miner's hot loop per backend and thread count.
    Bench {
        /// auto, all, or a backend name (sha-ni, avx2, scalar).
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Comma-separated thread counts (default: 1 and all cores).
        #[arg(long)]
        threads: Option<String>,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Search nonces of an 80-byte header (hex) for one that meets its own bits.
    MineHeader {
        /// The header, 160 hex digits.
        hex80: String,
        /// First nonce to try.
        #[arg(long, default_value_t = 0)]
        start_nonce: u32,
        /// Threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Backend (auto, sha-ni, avx2, scalar).
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Decode one 80-byte header (hex).
    Header {
        /// The header, 160 hex digits.
        hex80: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Validate a file of concatenated raw 80-byte headers from genesis.
    VerifyHeaders {
        /// The file.
        file: PathBuf,
        /// Network whose rules apply.
        #[arg(long, default_value = "mainnet")]
        network: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Spawn N real node processes on loopback, mine, optionally partition, and report.
    Testnet(crate::testnet::TestnetArgs),
}

/// `powchain node` flags.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// TOML config file (see config/).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// mainnet, testnet or regtest (default testnet).
    #[arg(long)]
    pub network: Option<String>,
    /// Testnet target block time, seconds (part of the network's identity).
    #[arg(long)]
    pub block_time: Option<u32>,
    /// Data directory (default ~/.powchain/<network id>).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen multiaddr (repeatable).
    #[arg(long)]
    pub listen: Vec<String>,
    /// Peer multiaddr to dial and keep dialling (repeatable).
    #[arg(long)]
    pub peer: Vec<String>,
    /// Mine blocks.
    #[arg(long)]
    pub mine: bool,
    /// Mining threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Name written into the coinbase of mined blocks.
    #[arg(long)]
    pub miner_id: Option<String>,
    /// HTTP API address (default 127.0.0.1:18632 on testnet).
    #[arg(long)]
    pub api: Option<String>,
    /// Miner backend (auto, sha-ni, avx2, scalar).
    #[arg(long)]
    pub backend: Option<String>,
    /// Discover peers on the LAN with mDNS (needs multicast).
    #[arg(long)]
    pub mdns: bool,
    /// Most connected peers (default 64).
    #[arg(long)]
    pub max_peers: Option<usize>,
    /// Serve the `/admin/*` routes (mining switch, partition, heal); off
    /// by default, `testnet` passes it.
    #[arg(long)]
    pub admin: bool,
}

/// Prints `v` as the one JSON document on stdout.
fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub use crate::node::api::header_json;

/// `powchain header`.
///
/// # Errors
/// [`CliError::Usage`] for bad hex.
pub fn cmd_header(hex80: &str, as_json: bool) -> Result<(), CliError> {
    let h =
        BlockHeader::from_hex(hex80).map_err(|e| CliError::Usage(format!("bad header: {e}")))?;
    let v = header_json(&h);
    if as_json {
        print_json(&v);
    } else {
        for key in [
            "hash",
            "version",
            "prev_blockhash",
            "merkle_root",
            "time",
            "bits",
            "nonce",
            "target",
            "work",
            "pow_valid",
        ] {
            println!("{key:>15}  {}", v[key].to_string().trim_matches('"'));
        }
    }
    Ok(())
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pb
}

/// Result of validating a header file.
#[derive(Debug, Clone)]
pub struct HeadersReport {
    /// Headers read.
    pub headers: usize,
    /// Height of the last header.
    pub tip_height: u32,
    /// Its hash.
    pub tip: String,
    /// Chainwork up to it.
    pub chainwork: Work,
}

/// A header that failed: its height and the error.
#[derive(Debug, Clone, Error)]
#[error("header at height {height} ({hash}) is invalid: {rule}: {message}")]
pub struct HeaderFailure {
    /// Height.
    pub height: u32,
    /// Hash.
    pub hash: String,
    /// Rule name (Core's reject reason).
    pub rule: &'static str,
    /// Detail.
    pub message: String,
}

/// Validates `headers` (from genesis) under `params` at node time
/// `now_secs`: genesis match, parent links, and [`check_header`] for each.
/// `progress` is called every 4096 headers.
///
/// # Errors
/// [`HeaderFailure`] for the first invalid header.
pub fn verify_header_chain(
    params: &Params,
    headers: &[BlockHeader],
    now_secs: u64,
    mut progress: impl FnMut(usize),
) -> Result<HeadersReport, HeaderFailure> {
    let first = headers.first().ok_or_else(|| HeaderFailure {
        height: 0,
        hash: String::new(),
        rule: "bad-genesis",
        message: "the file holds no headers".into(),
    })?;
    let gh = first.block_hash();
    if gh != params.genesis_hash {
        return Err(HeaderFailure {
            height: 0,
            hash: gh.to_string(),
            rule: "bad-genesis",
            message: format!("got {gh} but expected {}", params.genesis_hash),
        });
    }
    let mut chainwork = Target::from_compact(first.bits)
        .map(|t| t.to_work())
        .unwrap_or_default();
    let mut prev_hash = gh;
    for i in 1..headers.len() {
        let h = &headers[i];
        let fail = |e: crate::consensus::HeaderError| HeaderFailure {
            height: i as u32,
            hash: h.block_hash().to_string(),
            rule: e.rule(),
            message: e.to_string(),
        };
        if h.prev_blockhash != prev_hash {
            return Err(fail(crate::consensus::HeaderError::BadPrevBlock {
                got: h.prev_blockhash.to_string(),
                expected: prev_hash.to_string(),
            }));
        }
        let view = SliceView {
            headers: &headers[..i],
            base_height: 0,
        };
        let target = check_header(params, h, &view, now_secs).map_err(fail)?;
        chainwork = chainwork + target.to_work();
        prev_hash = h.block_hash();
        if i % 4096 == 0 {
            progress(i);
        }
    }
    Ok(HeadersReport {
        headers: headers.len(),
        tip_height: headers.len() as u32 - 1,
        tip: prev_hash.to_string(),
        chainwork,
    })
}

/// Reads a file of concatenated 80-byte headers.
///
/// # Errors
/// [`CliError::Usage`] when unreadable or not a multiple of 80 bytes.
pub fn read_headers_file(path: &std::path::Path) -> Result<Vec<BlockHeader>, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() % 80 != 0 {
        return Err(CliError::Usage(format!(
            "{} is {} bytes: not a whole number of 80-byte headers",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(80)
        .map(|c| BlockHeader::decode(c.try_into().expect("80-byte chunk")))
        .collect())
}

/// `powchain verify-headers`.
///
/// # Errors
/// [`CliError::Usage`] for a bad file or network, [`CliError::Failed`] for an invalid header.
pub fn cmd_verify_headers(
    file: &std::path::Path,
    network: &str,
    as_json: bool,
) -> Result<(), CliError> {
    let network: Network = network.parse().map_err(CliError::Usage)?;
    let params = Params::for_network(network, None);
    let headers = read_headers_file(file)?;
    let pb = progress_bar(headers.len() as u64, "verifying headers");
    let started = Instant::now();
    let now = crate::node::now_ms() / 1000;
    let result = verify_header_chain(&params, &headers, now, |i| pb.set_position(i as u64));
    pb.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            let rate = r.headers as f64 / seconds.max(1e-9);
            let v = json!({
                "headers": r.headers,
                "tip_height": r.tip_height,
                "tip": r.tip,
                "chainwork": r.chainwork.to_hex(),
                "seconds": seconds,
                "headers_per_sec": rate,
                "network": params.network.to_string(),
                "valid": true,
            });
            if as_json {
                print_json(&v);
            } else {
                println!(
                    "valid: {} headers, tip height {} {}",
                    r.headers, r.tip_height, r.tip
                );
                println!(
                    "chainwork {} ({})",
                    r.chainwork.to_hex(),
                    r.chainwork.to_short_hex()
                );
                println!("{seconds:.3} s, {rate:.0} headers/s");
            }
            Ok(())
        }
        Err(f) => {
            let v = json!({
                "valid": false,
                "headers": headers.len(),
                "error": f.to_string(),
                "height": f.height,
                "hash": f.hash,
                "rule": f.rule,
                "seconds": seconds,
            });
            Err(CliError::Failed {
                message: f.to_string(),
                json: as_json.then_some(v),
            })
        }
    }
}

/// `powchain mine-header`.
///
/// # Errors
/// [`CliError::Usage`] for bad input; [`CliError::Failed`] when no nonce from the start solves it.
pub fn cmd_mine_header(
    hex80: &str,
    start: u32,
    threads: Option<usize>,
    backend: &str,
    as_json: bool,
) -> Result<(), CliError> {
    let header =
        BlockHeader::from_hex(hex80).map_err(|e| CliError::Usage(format!("bad header: {e}")))?;
    let target =
        Target::from_compact(header.bits).map_err(|e| CliError::Usage(format!("bad bits: {e}")))?;
    let backend = parse_backend(backend)?;
    let threads = threads.unwrap_or_else(default_threads).max(1);
    let progress = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let result = std::thread::scope(|s| {
        s.spawn(|| live_rate(&progress, &done, started, "mining"));
        let r = search_header(backend, &header, target, start, threads, &progress);
        done.store(true, Ordering::Release);
        r
    });
    let rate = result.hashes as f64 / result.seconds.max(1e-9);
    match result.solution {
        Some((nonce, hash)) => {
            let v = json!({
                "nonce": nonce,
                "hash": hash.to_string(),
                "hashes": result.hashes,
                "seconds": result.seconds,
                "hashes_per_sec": rate,
                "backend": backend.name(),
                "threads": threads,
            });
            if as_json {
                print_json(&v);
            } else {
                println!("nonce {nonce}\nhash  {hash}\n{} hashes in {:.3} s ({:.2} MH/s)", result.hashes, result.seconds, rate / 1e6);
            }
            Ok(())
        }
        None => Err(CliError::Failed {
            message: format!("no nonce from {start} to 4294967295 meets bits {}", header.bits),
            json: as_json.then(|| json!({ "nonce": null, "hash": null, "hashes": result.hashes, "seconds": result.seconds })),
        }),
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn parse_backend(name: &str) -> Result<Backend, CliError> {
    let b: Backend = name.parse().map_err(CliError::Usage)?;
    if !b.is_available() {
        return Err(CliError::Usage(format!(
            "backend {b} is not supported by this CPU"
        )));
    }
    Ok(b)
}

/// A live "N MH/s" line on stderr until `done`.
fn live_rate(counter: &AtomicU64, done: &AtomicBool, started: Instant, what: &str) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(250));
        let secs = started.elapsed().as_secs_f64();
        let h = counter.load(Ordering::Relaxed);
        eprint!(
            "\r{what}: {:.2} MH/s, {h} hashes, {secs:.1} s   ",
            h as f64 / secs / 1e6
        );
        let _ = std::io::stderr().flush();
    }
    eprint!("\r{}\r", " ".repeat(70));
}

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
                let input = ScanInput::new(header, Target(ruint::aliases::U256::ZERO));
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
    let input = ScanInput::new([7u8; 80], Target(ruint::aliases::U256::ZERO));
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

/// `powchain bench`.
///
/// # Errors
/// [`CliError::Usage`] for a bad backend or thread list.
pub fn cmd_bench(
    backend: &str,
    threads: Option<&str>,
    seconds: f64,
    as_json: bool,
) -> Result<(), CliError> {
    let backends = if backend == "all" {
        Backend::available()
    } else {
        vec![parse_backend(backend)?]
    };
    let cores = default_threads();
    let thread_list: Vec<usize> = match threads {
        Some(s) => s
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| (1..=1024).contains(&n))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                CliError::Usage(format!("bad --threads list '{s}' (want e.g. 1,2,4)"))
            })?,
        None if cores > 1 => vec![1, cores],
        None => vec![1],
    };
    if !(0.1..=3600.0).contains(&seconds) {
        return Err(CliError::Usage(
            "--seconds must be between 0.1 and 3600".into(),
        ));
    }
    eprintln!("reference: sha2 crate, midstate + 2x compress256, 1 thread ...");
    let reference = reference_sha2_rate(seconds.min(2.0));
    eprintln!("reference: {:.2} MH/s", reference / 1e6);
    eprintln!("openssl speed -evp sha256 -bytes 16384 ...");
    let openssl = openssl_sha256d_rate(seconds.min(3.0).round() as u32);
    match openssl {
        Some(r) => eprintln!("openssl: {:.2} M sha256d/s (compressions/s / 2)", r / 1e6),
        None => eprintln!("openssl: not found or not understood; no OpenSSL ratio"),
    }
    #[cfg(target_arch = "x86_64")]
    let sha_unit = crate::miner::sha256d::shani::probe_sha_unit(2_000_000);
    #[cfg(not(target_arch = "x86_64"))]
    let sha_unit: Option<crate::miner::sha256d::shani::ShaUnitTiming> = None;
    if let Some(u) = sha_unit {
        eprintln!(
            "SHA unit: sha256rnds2 latency {:.2} ns, one per {:.2} ns ({} streams fill it); \
             {} per nonce -> ceiling {:.2} MH/s per thread",
            u.latency_ns,
            u.interval_ns,
            u.streams_to_saturate(),
            crate::miner::sha256d::shani::RNDS2_PER_NONCE,
            u.ceiling_hashes_per_sec() / 1e6
        );
    }
    let mut results = Vec::new();
    for b in &backends {
        for &t in &thread_list {
            let counter = AtomicU64::new(0);
            let done = AtomicBool::new(false);
            let started = Instant::now();
            let label = format!("{b} x{t}");
            let rate = std::thread::scope(|s| {
                s.spawn(|| live_rate(&counter, &done, started, &label));
                let r = measure_hashrate(*b, t, seconds, &counter);
                done.store(true, Ordering::Release);
                r
            });
            let mut line = format!(
                "{:>8} {:>3} threads  {:>8.2} MH/s  ({:.2}x sha2 reference",
                b.name(),
                t,
                rate / 1e6,
                rate / reference
            );
            if let Some(o) = openssl {
                line += &format!(", {:.2}x openssl", rate / o);
            }
            let of_ceiling = sha_unit
                .filter(|_| *b == Backend::ShaNi)
                .map(|u| rate / (u.ceiling_hashes_per_sec() * t as f64));
            if let Some(c) = of_ceiling {
                line += &format!(", {:.0}% of the SHA unit's ceiling", c * 100.0);
            }
            eprintln!("{line})");
            results.push(json!({
                "backend": b.name(),
                "threads": t,
                "hashes_per_sec": rate,
                "ratio_to_reference": rate / reference,
                "ratio_to_openssl": openssl.map(|o| rate / o),
                "fraction_of_sha_unit_ceiling": of_ceiling,
            }));
        }
    }
    if as_json {
        print_json(&json!({
            "results": results,
            "reference": { "name": "sha2-compress256", "threads": 1, "hashes_per_sec": reference },
            "openssl": openssl.map(|r| json!({
                "command": "openssl speed -evp sha256 -bytes 16384",
                "threads": 1,
                "sha256d_per_sec": r,
            })),
            "sha_unit": sha_unit.map(|u| json!({
                "rnds2_latency_ns": u.latency_ns,
                "rnds2_interval_ns": u.interval_ns,
                "rnds2_per_nonce": crate::miner::sha256d::shani::RNDS2_PER_NONCE,
                "ceiling_hashes_per_sec_per_thread": u.ceiling_hashes_per_sec(),
            })),
            "auto": Backend::auto().name(),
        }));
    }
    Ok(())
}

/// `powchain status`.
///
/// # Errors
/// [`CliError::Failed`] when the node does not answer.
pub fn cmd_status(api: &str, as_json: bool) -> Result<(), CliError> {
    let v = http_get_json(api, "/status")
        .map_err(|e| failed(format!("no answer from node at {api}: {e}")))?;
    if as_json {
        print_json(&v);
        return Ok(());
    }
    let keys = [
        "network",
        "network_id",
        "genesis",
        "peer_id",
        "height",
        "tip",
        "chainwork",
        "bits",
        "peers",
        "mining",
        "hashrate",
        "orphans",
        "stale",
        "reorgs",
        "invalid",
        "banned",
        "mempool",
    ];
    for k in keys {
        let val = &v[k];
        let text = match (k, val) {
            ("hashrate", Value::Number(n)) => {
                format!("{:.2} MH/s", n.as_f64().unwrap_or(0.0) / 1e6)
            }
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        println!("{k:>11}  {text}");
    }
    if let Some(list) = v["listen"].as_array() {
        for a in list {
            println!("{:>11}  {}", "listen", a.as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// GET `http://{api}{path}` as JSON (short timeout).
///
/// # Errors
/// A description of the failure.
pub fn http_get_json(api: &str, path: &str) -> Result<Value, String> {
    serde_json::from_str(&http_get_text(api, path)?).map_err(|e| e.to_string())
}

/// GET `http://{api}{path}` as text, e.g. `/metrics` (5 s timeout).
///
/// # Errors
/// A description of the failure.
pub fn http_get_text(api: &str, path: &str) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    agent
        .get(&format!("http://{api}{path}"))
        .call()
        .map_err(|e| e.to_string())?
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())
}

/// POST JSON to `http://{api}{path}` with `Authorization: Bearer <token>`
/// when a token is given (SPEC "API access": the node's `api.cookie`).
///
/// # Errors
/// A description of the failure; the node's `{"error"}` text for a refusal.
pub fn http_post_json(
    api: &str,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> Result<Value, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(&format!("http://{api}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send_json(body).map_err(|e| e.to_string())?;
    let status = resp.status();
    let v = resp
        .body_mut()
        .read_json::<Value>()
        .map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(v)
    } else {
        Err(v["error"].as_str().unwrap_or("request failed").to_string())
    }
}

/// Runs `powchain node` until SIGINT/SIGTERM.
///
/// # Errors
/// [`CliError::Usage`] for a bad config, [`CliError::Failed`] when the node fails.
pub fn cmd_node(a: NodeArgs) -> Result<(), CliError> {
    let overrides = crate::config::Overrides {
        network: a.network,
        block_time: a.block_time,
        data_dir: a.data_dir,
        listen: a.listen,
        peers: a.peer,
        mine: a.mine,
        threads: a.threads,
        miner_id: a.miner_id,
        api: a.api,
        backend: a.backend,
        mdns: a.mdns,
        max_peers: a.max_peers,
        admin: a.admin,
    };
    let config = crate::config::NodeConfig::resolve(a.config.as_deref(), overrides)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| failed(format!("tokio runtime: {e}")))?;
    rt.block_on(async move {
        let shutdown = async {
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        crate::node::run(config, shutdown).await.map_err(|e| failed(e.to_string()))
    })
}

/// Dispatches a parsed command line.
///
/// # Errors
/// The command's [`CliError`].
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Node(a) => cmd_node(a),
        Command::Status { api, json } => cmd_status(&api, json),
        Command::Bench {
            backend,
            threads,
            seconds,
            json,
        } => cmd_bench(&backend, threads.as_deref(), seconds, json),
        Command::MineHeader {
            hex80,
            start_nonce,
            threads,
            backend,
            json,
        } => cmd_mine_header(&hex80, start_nonce, threads, &backend, json),
        Command::Header { hex80, json } => cmd_header(&hex80, json),
        Command::VerifyHeaders {
            file,
            network,
            json,
        } => cmd_verify_headers(&file, &network, json),
        Command::Testnet(args) => crate::testnet::run(&args),
    }
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
