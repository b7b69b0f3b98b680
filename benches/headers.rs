//! Header validation against the bare sha256d it must contain: the goal is
//! validation <= 1.2x the hash alone (no allocation per header).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use powchain::consensus::validation::{check_header, SliceView};
use powchain::consensus::{sha256d, BlockHeader, Params};

fn headers(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mainnet-headers-0-39999.bin");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{} is part of the repository: {e}", path.display()));
    let headers: Vec<BlockHeader> = bytes
        .chunks_exact(80)
        .map(|c| BlockHeader::decode(c.try_into().unwrap()))
        .collect();
    let params = Params::mainnet();
    let mut g = c.benchmark_group("headers_1000");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("sha256d_only", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for h in &headers[30_000..31_000] {
                acc ^= sha256d(&h.encode())[0];
            }
            acc
        });
    });
    g.bench_function("check_header", |b| {
        b.iter(|| {
            for i in 30_000..31_000 {
                let view = SliceView {
                    headers: &headers[..i],
                    base_height: 0,
                };
                check_header(&params, &headers[i], &view, 1_800_000_000).unwrap();
            }
        });
    });
    g.finish();
}

criterion_group!(benches, headers);
criterion_main!(benches);
