//! `powchain bench`.

use std::sync::atomic::AtomicU64;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::{default_threads, print_json, with_live_rate, BackendArg, CliError};
use crate::api::types::BenchResult;
use crate::miner::bench::{measure_hashrate, openssl_sha256d_rate, reference_sha2_rate};
use crate::miner::Backend;

/// Which backends to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// The one `auto` picks.
    Auto,
    /// Every backend this CPU runs.
    All,
    /// SHA-NI, two streams.
    #[value(name = "sha-ni", alias = "shani", alias = "sha-ni-2")]
    ShaNi,
    /// SHA-NI, three streams.
    #[value(name = "sha-ni-3")]
    ShaNi3,
    /// SHA-NI, four streams.
    #[value(name = "sha-ni-4")]
    ShaNi4,
    /// AVX2.
    Avx2,
    /// AVX-512F (builds with the `avx512` feature only).
    Avx512,
    /// Portable Rust.
    Scalar,
}

/// `powchain bench` flags.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// auto, all, or a backend name.
    #[arg(long, value_enum, default_value_t = BenchBackend::Auto)]
    pub backend: BenchBackend,
    /// Comma-separated thread counts (default: 1 and all cores).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    pub threads: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Measures the miner's hot loop.
///
/// # Errors
/// [`CliError::Usage`] for a backend this CPU lacks or a bad duration.
pub fn run(a: &BenchArgs) -> Result<(), CliError> {
    // `auto` is the backend this run's own planner picks (below), so that
    // the rate measured and the choice printed are the same backend's.
    let forced = match a.backend {
        BenchBackend::All => Backend::available(),
        BenchBackend::Auto => Vec::new(),
        BenchBackend::ShaNi => vec![BackendArg::ShaNi.resolve()?],
        BenchBackend::ShaNi3 => vec![BackendArg::ShaNi3.resolve()?],
        BenchBackend::ShaNi4 => vec![BackendArg::ShaNi4.resolve()?],
        BenchBackend::Avx2 => vec![BackendArg::Avx2.resolve()?],
        BenchBackend::Avx512 => vec![BackendArg::Avx512.resolve()?],
        BenchBackend::Scalar => vec![BackendArg::Scalar.resolve()?],
    };
    let cores = default_threads();
    let thread_list = if !a.threads.is_empty() {
        a.threads.clone()
    } else if cores > 1 {
        vec![1, cores]
    } else {
        vec![1]
    };
    let seconds = a.seconds;
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
        let m = crate::miner::sha256d::shani::OP_MIX;
        eprintln!(
            "op mix: {} rnds2, {} msg1, {} msg2, {} paddd, {} shuffles, {} palignr per nonce, \
             dependency-free: {:.2} ns -> ceiling {:.2} MH/s per thread",
            m.rnds2,
            m.msg1,
            m.msg2,
            m.paddd,
            m.shuffle,
            m.palignr,
            u.op_mix_ns,
            u.op_mix_ceiling_hashes_per_sec() / 1e6
        );
    }
    let plan = crate::miner::Backend::plan(
        &crate::miner::ScanInput::new(
            [0x5a; 80],
            crate::consensus::Target::from_u256(ruint::aliases::U256::ZERO),
        ),
        0.03,
    );
    eprintln!(
        "auto: {} (timed {})",
        plan.chosen,
        plan.timings
            .iter()
            .map(|(b, r)| format!("{b} {:.2}", r / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
            + " MH/s, best of 3 x 10 ms each"
    );
    let backends = if a.backend == BenchBackend::Auto {
        vec![plan.chosen]
    } else {
        forced
    };
    let mut results = Vec::new();
    for b in &backends {
        for &t in &thread_list {
            let counter = AtomicU64::new(0);
            let label = format!("{b} x{t}");
            let rate = with_live_rate(&counter, &label, || {
                measure_hashrate(*b, t, seconds, &counter)
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
            let sha_ni = matches!(b, Backend::ShaNi | Backend::ShaNi3 | Backend::ShaNi4);
            let of_ceiling = sha_unit
                .filter(|_| sha_ni)
                .map(|u| rate / (u.ceiling_hashes_per_sec() * t as f64));
            let of_op_mix = sha_unit
                .filter(|_| sha_ni)
                .map(|u| rate / (u.op_mix_ceiling_hashes_per_sec() * t as f64));
            if let (Some(c), Some(o)) = (of_ceiling, of_op_mix) {
                line += &format!(
                    ", {:.0}% of the rnds2 ceiling, {:.0}% of the op-mix ceiling",
                    c * 100.0,
                    o * 100.0
                );
            }
            if *b == plan.chosen {
                line += ", auto's choice";
            }
            eprintln!("{line})");
            results.push(BenchResult {
                backend: b.name().to_string(),
                threads: t,
                hashes_per_sec: rate,
                ratio_to_reference: rate / reference,
                ratio_to_openssl: openssl.map(|o| rate / o),
                fraction_of_sha_unit_ceiling: of_ceiling,
                fraction_of_op_mix_ceiling: of_op_mix,
            });
        }
    }
    if a.json {
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
                "op_mix": {
                    "rnds2": crate::miner::sha256d::shani::OP_MIX.rnds2,
                    "msg1": crate::miner::sha256d::shani::OP_MIX.msg1,
                    "msg2": crate::miner::sha256d::shani::OP_MIX.msg2,
                    "paddd": crate::miner::sha256d::shani::OP_MIX.paddd,
                    "shuffle": crate::miner::sha256d::shani::OP_MIX.shuffle,
                    "palignr": crate::miner::sha256d::shani::OP_MIX.palignr,
                    "ns_per_nonce": u.op_mix_ns,
                },
                "op_mix_ceiling_hashes_per_sec_per_thread": u.op_mix_ceiling_hashes_per_sec(),
            })),
            "auto": plan.chosen.name(),
            "auto_timings": plan.timings.iter().map(|(b, r)| json!({
                "backend": b.name(), "hashes_per_sec": r,
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(())
}
