//! Single-thread hot loop of each miner backend: 65,536 nonces per
//! iteration against an unreachable target (`powchain bench` measures the
//! threaded figures).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use powchain::consensus::Target;
use powchain::miner::{Backend, ScanInput};

fn hashrate(c: &mut Criterion) {
    let input = ScanInput::new([0x5a; 80], Target(ruint::aliases::U256::ZERO));
    let mut g = c.benchmark_group("scan_65536_nonces");
    g.throughput(Throughput::Elements(65_536));
    for b in Backend::available() {
        g.bench_function(b.name(), |bench| bench.iter(|| b.scan(&input, 0, 65_536)));
    }
    g.finish();
}

criterion_group!(benches, hashrate);
criterion_main!(benches);
