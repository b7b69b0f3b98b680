//! Single-thread hot loop of each miner backend: 65,536 nonces per
//! iteration against an unreachable target (`powchain bench` measures the
//! threaded figures).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use powchain::consensus::Target;
use powchain::miner::{Backend, ScanInput};

fn hashrate(c: &mut Criterion) {
    let input = ScanInput::new([0x5a; 80], Target::from_u256(ruint::aliases::U256::ZERO));
    let mut g = c.benchmark_group("scan_65536_nonces");
    g.throughput(Throughput::Elements(65_536));
    for b in Backend::available() {
        g.bench_function(b.name(), |bench| bench.iter(|| b.scan(&input, 0, 65_536)));
    }
    g.finish();
}

/// Job-switch latency: from `set_job` (a new tip) until every mining
/// thread hashes the new template. Threads check the generation every
/// `CHUNK_NONCES` nonces, so this is about one chunk's time.
fn job_switch(c: &mut Criterion) {
    use powchain::consensus::pow::CompactTarget;
    use powchain::miner::worker::{BlockTemplate, Miner};
    use std::time::{Duration, Instant};
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let miner = Miner::start(Backend::auto(), threads, |_| {});
    let template = |h: u32| BlockTemplate {
        height: h,
        version: 1,
        prev_blockhash: powchain::consensus::BlockHash([h as u8; 32]),
        bits: CompactTarget::from_consensus(0x0300_0001), // target 1: never solved
        min_time: 0,
        transactions: vec![],
        miner_id: "bench".into(),
    };
    let g0 = miner.set_job(template(0));
    miner
        .wait_switched(g0, Duration::from_secs(5))
        .expect("threads start");
    let mut h = 1;
    c.bench_function("miner_job_switch", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_millis(2));
                let t = Instant::now();
                let g = miner.set_job(template(h));
                h += 1;
                miner
                    .wait_switched(g, Duration::from_secs(5))
                    .expect("switch");
                total += t.elapsed();
            }
            total
        });
    });
    miner.shutdown();
}

criterion_group!(benches, hashrate, job_switch);
criterion_main!(benches);
