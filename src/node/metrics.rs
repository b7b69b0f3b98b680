//! Prometheus metrics (`GET /metrics`), via `prometheus-client`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    /// Best height.
    pub height: Gauge,
    /// Best chainwork (as a float).
    pub chainwork: Gauge<f64, AtomicU64>,
    /// Hashrate, H/s.
    pub hashrate: Gauge<f64, AtomicU64>,
    /// Connected peers.
    pub peers: Gauge,
    /// Orphan pool size.
    pub orphans: Gauge,
    /// Stale blocks known.
    pub stale: Gauge,
    /// Re-orgs since start.
    pub reorgs: Gauge,
    /// Blocks received from peers (gossip and sync).
    pub blocks_received: Counter,
    /// Blocks relayed (accepted for gossip forwarding or published).
    pub blocks_relayed: Counter,
    /// Blocks rejected as invalid.
    pub blocks_rejected: Counter,
    /// Blocks this node mined.
    pub blocks_mined: Counter,
    /// Connections denied by the swarm's block list (banned peer ids
    /// reconnecting), before they reach the core.
    pub connections_denied: Counter,
    /// Peers' gossip messages and requests dropped because the core's
    /// input queue was full ([`super::gate`]), by `kind`.
    pub inputs_dropped: Family<Vec<(String, String)>, Counter>,
    /// Peers' `GetBlocks` refused for now: the serving allowance was spent
    /// ([`crate::protocol::budget`]).
    pub requests_deferred: Counter,
    /// Delay from a gossiped block's first sighting anywhere to its arrival
    /// here, seconds (see `node::NodeState::on_block_message`).
    pub propagation: Histogram,
    /// The Stratum server's figures (zero when it is off).
    pub stratum: StratumMetrics,
}

/// Stratum v1 figures (SPEC "Stratum v1": `status.stratum` reads them).
#[derive(Default)]
pub struct StratumMetrics {
    /// Connected Stratum clients.
    pub clients: Gauge,
    /// Shares accepted.
    pub shares_accepted: Counter,
    /// Shares (and other requests) refused, by reason.
    pub shares_rejected: Family<Vec<(String, String)>, Counter>,
    /// Blocks found through Stratum (shares that met the block target).
    pub blocks: Counter,
    /// The workers' hashrate estimated from accepted share difficulty
    /// (`Σ D · 2^32` over 5 minutes), H/s: an estimate, as pools give it.
    pub hashrate_estimate: Gauge<f64, AtomicU64>,
}

impl StratumMetrics {
    /// The counter of one reason.
    #[must_use]
    pub fn rejected(&self, why: crate::node::stratum::Reject) -> Counter {
        self.shares_rejected
            .get_or_create(&vec![("reason".to_string(), why.as_str().to_string())])
            .clone()
    }

    fn register(&self, r: &mut Registry) {
        for why in crate::node::stratum::Reject::ALL {
            let _ = self.rejected(why);
        }
        let r = r.sub_registry_with_prefix("stratum");
        r.register("clients", "Connected Stratum clients", self.clients.clone());
        r.register(
            "shares_accepted",
            "Stratum shares accepted",
            self.shares_accepted.clone(),
        );
        r.register(
            "shares_rejected",
            "Stratum shares refused, by reason",
            self.shares_rejected.clone(),
        );
        r.register(
            "blocks",
            "Blocks found through Stratum",
            self.blocks.clone(),
        );
        r.register(
            "hashrate_estimate_hashes_per_second",
            "Stratum workers' hashrate estimated from accepted share difficulty, H/s",
            self.hashrate_estimate.clone(),
        );
    }
}

impl Metrics {
    /// Registers everything under the `powchain_` prefix.
    #[must_use]
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("powchain");
        let m = Metrics {
            height: Gauge::default(),
            chainwork: Gauge::default(),
            hashrate: Gauge::default(),
            peers: Gauge::default(),
            orphans: Gauge::default(),
            stale: Gauge::default(),
            reorgs: Gauge::default(),
            blocks_received: Counter::default(),
            blocks_relayed: Counter::default(),
            blocks_rejected: Counter::default(),
            blocks_mined: Counter::default(),
            connections_denied: Counter::default(),
            inputs_dropped: Family::default(),
            requests_deferred: Counter::default(),
            propagation: Histogram::new([
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ]),
            stratum: StratumMetrics::default(),
            registry: Registry::default(),
        };
        m.stratum.register(&mut registry);
        registry.register("height", "Best chain height", m.height.clone());
        registry.register(
            "chainwork",
            "Best chain cumulative work (expected hashes)",
            m.chainwork.clone(),
        );
        registry.register(
            "hashrate_hashes_per_second",
            "Local miner hashrate, H/s",
            m.hashrate.clone(),
        );
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register("orphans", "Blocks in the orphan pool", m.orphans.clone());
        registry.register(
            "stale_blocks",
            "Valid blocks not on the best chain",
            m.stale.clone(),
        );
        registry.register("reorgs", "Re-orgs since start", m.reorgs.clone());
        registry.register(
            "blocks_received",
            "Blocks received from peers",
            m.blocks_received.clone(),
        );
        registry.register(
            "blocks_relayed",
            "Blocks relayed or published",
            m.blocks_relayed.clone(),
        );
        registry.register(
            "blocks_rejected",
            "Blocks rejected as invalid",
            m.blocks_rejected.clone(),
        );
        registry.register(
            "blocks_mined",
            "Blocks mined by this node",
            m.blocks_mined.clone(),
        );
        registry.register(
            "connections_denied",
            "Connections of banned peer ids denied by the swarm's block list",
            m.connections_denied.clone(),
        );
        registry.register(
            "inputs_dropped",
            "Peers' gossip messages and requests dropped: the core's input queue was full",
            m.inputs_dropped.clone(),
        );
        registry.register(
            "sync_requests_deferred",
            "Peers' block requests refused for now: the serving allowance was spent",
            m.requests_deferred.clone(),
        );
        registry.register(
            "block_propagation_seconds",
            "Block propagation delay: header time to arrival, seconds",
            m.propagation.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
