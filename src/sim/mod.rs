//! A deterministic network of real protocol cores in virtual time.
//!
//! [`Network`] holds N [`NodeCore`]s over in-memory chain stores, joined by
//! simulated links with a latency. It is the driver the in-memory protocol
//! tests use, and the base of `powchain sim`: the same inputs and outputs
//! that the libp2p driver maps to sockets are here delivered through an
//! event queue ordered by (virtual time, sequence number), so one set of
//! calls always gives the same run — no threads, no sockets, no sleeps.
//!
//! Gossip follows gossipsub's rules as far as they matter to consensus: a
//! node forwards a message only after its core's `Accept` verdict, to
//! every neighbour but the one it came from, and drops a message it has
//! seen (by [`GossipId`]). Requests are matched to responses per link.
//!
//! Links have a one-way latency (one figure for all, a per-link draw from
//! a [`LatencyModel`], or a directional override), an optional bandwidth
//! and a loss rate; randomness comes from one ChaCha8 stream seeded by the
//! run's seed. [`Network::mine_next`] draws block discoveries as a Poisson
//! process over the nodes' hashrate shares; the block is a real block on
//! the node's own mining template, handed to its core as the miner's find.

pub mod experiments;
mod latency;
mod links;
mod miner;
pub mod plot;
mod queue;
mod recorder;
pub mod stats;

pub use latency::{LatencyModel, BITCOIN_ACCESS_MEDIAN_MS, BITCOIN_ACCESS_SIGMA};
pub use recorder::{MinedBlock, Recorder, SimStats};

use queue::EventQueue;

use std::collections::BTreeSet;
use std::sync::Arc;

use libp2p::PeerId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The simulator's maps: foldhash with a fixed seed (fast, and no map is
/// iterated where order could reach the output).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

use crate::chain::{ChainStore, MemStore};
use crate::consensus::BlockTemplate;
use crate::consensus::{BlockHash, Params};
use crate::protocol::{
    Command, CoreConfig, CoreError, GossipId, InboundId, Input, NodeCore, NodeEvent, Output,
    RequestId, SyncRequest, SyncResponse, Topic, Verdict,
};
use crate::protocol::{Link, StrategySpec};

/// Virtual time at which a simulation starts, Unix ms (2026-06-01).
pub const SIM_EPOCH_MS: u64 = 1_780_272_000_000;

/// A message in flight to node `to`.
#[derive(Clone, Debug)]
enum Delivery {
    Connected {
        from: usize,
        link: Link,
    },
    Disconnected {
        from: usize,
    },
    Gossip {
        from: usize,
        id: GossipId,
        topic: Topic,
        data: Arc<Vec<u8>>,
    },
    Request {
        from: usize,
        id: RequestId,
        request: SyncRequest,
    },
    Response {
        from: usize,
        id: RequestId,
        response: SyncResponse,
    },
    Tick,
}

/// One simulated node.
pub struct SimNode {
    /// The real protocol core.
    pub core: NodeCore,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Gossip ids seen (gossipsub's duplicate cache).
    seen: HashSet<GossipId>,
    /// Gossip waiting for the core's verdict: id -> (topic, data).
    pending: HashMap<GossipId, (Topic, Arc<Vec<u8>>)>,
    /// Events the core emitted, with their time (Unix ms), when
    /// [`Recorder::keep_events`] is on.
    pub events: Vec<(u64, NodeEvent)>,
    /// Share of the network's hashrate (for [`Network::mine_next`]).
    pub hashrate_share: f64,
    /// The job its core handed the miner last (`None`: not mining).
    pub job: Option<BlockTemplate>,
    /// When its core's next tick is queued, virtual Unix ms.
    timer: Option<u64>,
}

/// A network of protocol cores in virtual time.
pub struct Network {
    params: Arc<Params>,
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    index: HashMap<PeerId, usize>,
    links: BTreeSet<(usize, usize)>,
    /// Neighbours of each node, ascending.
    adj: Vec<Vec<usize>>,
    /// One-way latency of each link, ms, by (from, to).
    link_ms: HashMap<(usize, usize), u64>,
    latency_model: LatencyModel,
    /// Per-node access delay added to every message it receives, ms
    /// ([`LatencyModel::Bitcoin`]; zeros otherwise).
    access_ms: Vec<u64>,
    /// Bytes per second of every link (`None`: unlimited).
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Probability that a message is lost.
    pub loss: f64,
    rng: ChaCha8Rng,
    /// Links cut by a partition, restored by [`Network::heal`].
    cut: BTreeSet<(usize, usize)>,
    /// Messages and ticks in flight, with the virtual clock.
    queue: EventQueue<Delivery>,
    /// Inbound requests waiting for their answer: (responder, inbound id)
    /// -> (asker, the asker's request id).
    inbound: HashMap<(usize, InboundId), (usize, RequestId)>,
    next_inbound: u64,
    extranonce: u64,
    /// What the run measured.
    pub record: Recorder,
    /// Block requests the cores sent to peers outside the simulation (a
    /// test's hand-played peer), as `(node, output)`, for
    /// [`Network::take_outside`].
    outside: Vec<(usize, Output)>,
}

/// Settings of a [`Network`] beyond its size.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Link latency model.
    pub latency: LatencyModel,
    /// Each node's strategy (missing ones are honest).
    pub strategies: Vec<StrategySpec>,
    /// Each node's hashrate share (missing ones share the rest equally).
    pub shares: Vec<Option<f64>>,
    /// Seed of the ids and of every draw.
    pub seed: u64,
}

impl SimConfig {
    /// Honest nodes, fixed latency. The cores run on their own timers (each
    /// is ticked at the deadline it asks for, [`NodeCore::next_deadline`]).
    #[must_use]
    pub fn new(latency_ms: u64, seed: u64) -> SimConfig {
        SimConfig {
            latency: LatencyModel::Fixed(latency_ms),
            strategies: Vec::new(),
            shares: Vec::new(),
            seed,
        }
    }
}

/// A key for node `i` of a simulation seeded `seed`: deterministic, so
/// peer ids (and so every ordering by peer id) repeat run to run.
#[must_use]
pub fn sim_peer_id(seed: u64, i: usize) -> PeerId {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(i as u64).to_le_bytes());
    bytes[31] = 1;
    let key = libp2p::identity::ed25519::SecretKey::try_from_bytes(bytes)
        .expect("32 bytes make an ed25519 secret key");
    libp2p::identity::Keypair::from(libp2p::identity::ed25519::Keypair::from(key))
        .public()
        .to_peer_id()
}

/// Requests to outside peers kept for [`Network::take_outside`] (a test
/// that never takes them does not grow without bound).
const MAX_OUTSIDE: usize = 10_000;

impl Network {
    /// The block requests the cores sent, while the network ran, to peers
    /// that are not simulated nodes (a hand-played peer of a test), as
    /// `(node, Output::SendRequest)`, oldest first; taking them empties
    /// the list. Outputs of [`Network::input`] are returned by it instead.
    pub fn take_outside(&mut self) -> Vec<(usize, Output)> {
        std::mem::take(&mut self.outside)
    }

    /// `n` nodes on `params` with no links yet, each link `latency_ms`
    /// one way; `seed` fixes the peer ids.
    ///
    /// # Panics
    /// If the in-memory store cannot store the genesis block (it always can).
    #[must_use]
    pub fn new(params: Params, n: usize, latency_ms: u64, seed: u64) -> Network {
        Network::with_config(params, n, &SimConfig::new(latency_ms, seed))
    }

    /// `n` nodes on `params` with no links yet, as `config` says. Every
    /// core has a miner attached and switched on; blocks come only from
    /// [`Network::mine_next`] and [`Network::mine`].
    ///
    /// # Panics
    /// If the in-memory store cannot store the genesis block (it always can).
    #[must_use]
    pub fn with_config(params: Params, n: usize, config: &SimConfig) -> Network {
        let params = Arc::new(params);
        let mut nodes = Vec::with_capacity(n);
        let mut index = HashMap::default();
        let given: f64 = config.shares.iter().flatten().sum();
        let unset = (0..n)
            .filter(|&i| config.shares.get(i).copied().flatten().is_none())
            .count();
        let rest = if unset > 0 {
            (1.0 - given).max(0.0) / unset as f64
        } else {
            0.0
        };
        for i in 0..n {
            let peer_id = sim_peer_id(config.seed, i);
            let chain = ChainStore::open(Arc::clone(&params), Box::new(MemStore::default()))
                .expect("in-memory store");
            let core_config = CoreConfig {
                miner_id: format!("node{i}"),
                has_miner: true,
                mining: true,
                strategy: config.strategies.get(i).cloned().unwrap_or_default(),
                ..CoreConfig::new(peer_id)
            };
            index.insert(peer_id, i);
            nodes.push(SimNode {
                core: NodeCore::new(chain, core_config),
                peer_id,
                seen: HashSet::default(),
                pending: HashMap::default(),
                events: Vec::new(),
                hashrate_share: config.shares.get(i).copied().flatten().unwrap_or(rest),
                job: None,
                timer: None,
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let access_ms = (0..n)
            .map(|_| {
                if config.latency == LatencyModel::Bitcoin {
                    LatencyModel::LogNormal {
                        median_ms: BITCOIN_ACCESS_MEDIAN_MS,
                        sigma: BITCOIN_ACCESS_SIGMA,
                    }
                    .sample(&mut rng)
                } else {
                    0
                }
            })
            .collect();
        let mut net = Network {
            params,
            nodes,
            index,
            links: BTreeSet::new(),
            adj: vec![Vec::new(); n],
            link_ms: HashMap::default(),
            latency_model: config.latency,
            bandwidth_bytes_per_sec: None,
            loss: 0.0,
            access_ms,
            rng,
            cut: BTreeSet::new(),
            queue: EventQueue::new(SIM_EPOCH_MS),
            inbound: HashMap::default(),
            next_inbound: 0,
            extranonce: 0,
            record: Recorder::default(),
            outside: Vec::new(),
        };
        for i in 0..n {
            let mut out = Vec::new();
            net.nodes[i]
                .core
                .handle(SIM_EPOCH_MS, Input::Start, &mut out)
                .expect("in-memory store never fails");
            net.process(i, out);
        }
        net
    }

    /// The network parameters.
    #[must_use]
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    /// Virtual time now, Unix ms.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.queue.now_ms()
    }

    /// Node `i`'s best tip.
    #[must_use]
    pub fn tip(&self, i: usize) -> BlockHash {
        self.nodes[i].core.chain().tip()
    }

    /// Node `i`'s best height.
    #[must_use]
    pub fn height(&self, i: usize) -> u32 {
        self.nodes[i].core.chain().height()
    }

    /// Whether every node has the same tip.
    #[must_use]
    pub fn agreed(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.core.chain().tip() == self.tip(0))
    }

    fn schedule(&mut self, delay_ms: u64, to: usize, d: Delivery) {
        self.queue.schedule(delay_ms, to, d);
    }

    /// Sends an operator command to node `i`.
    ///
    /// # Errors
    /// [`CoreError`] on a storage failure.
    pub fn command(&mut self, i: usize, c: Command) -> Result<(), CoreError> {
        let mut out = Vec::new();
        self.nodes[i]
            .core
            .handle(self.queue.now_ms(), Input::Command(c), &mut out)?;
        self.process(i, out);
        Ok(())
    }

    /// Hands node `i` an input directly (as a hostile or scripted peer would).
    ///
    /// # Errors
    /// [`CoreError`] on a storage failure.
    pub fn input(&mut self, i: usize, input: Input) -> Result<Vec<Output>, CoreError> {
        let mut out = Vec::new();
        self.nodes[i]
            .core
            .handle(self.queue.now_ms(), input, &mut out)?;
        let copy = out.clone();
        self.process(i, out);
        Ok(copy)
    }

    /// Runs the queue for `ms` of virtual time.
    ///
    /// # Panics
    /// On a storage failure of the in-memory store (never).
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms() + ms;
        while let Some((to, d)) = self.queue.pop_until(until) {
            self.record.stats.events += 1;
            self.deliver(to, d);
        }
    }

    fn deliver(&mut self, to: usize, d: Delivery) {
        let input = match d {
            Delivery::Tick => {
                // Only the tick the node's timer stands at (an earlier
                // deadline may have replaced it).
                if self.nodes[to].timer != Some(self.now_ms()) {
                    return;
                }
                self.nodes[to].timer = None;
                Input::Tick
            }
            Delivery::Connected { from, link } => {
                if !self.linked(to, from) {
                    return;
                }
                Input::PeerConnected {
                    peer: self.nodes[from].peer_id,
                    link,
                    address: (link == Link::Outbound).then(|| self.address(from)),
                }
            }
            Delivery::Disconnected { from } => Input::PeerDisconnected {
                peer: self.nodes[from].peer_id,
            },
            Delivery::Gossip {
                from,
                id,
                topic,
                data,
            } => {
                if !self.linked(to, from) || !self.nodes[to].seen.insert(id) {
                    return;
                }
                self.record.stats.messages += 1;
                self.nodes[to]
                    .pending
                    .insert(id, (topic, Arc::clone(&data)));
                Input::Gossip {
                    peer: self.nodes[from].peer_id,
                    id,
                    topic,
                    data: data.as_ref().clone(),
                }
            }
            Delivery::Request { from, id, request } => {
                if !self.linked(to, from) {
                    return;
                }
                self.record.stats.messages += 1;
                self.next_inbound += 1;
                let iid = InboundId(self.next_inbound);
                self.inbound.insert((to, iid), (from, id));
                Input::Request {
                    peer: self.nodes[from].peer_id,
                    id: iid,
                    request,
                }
            }
            Delivery::Response { from, id, response } => {
                if !self.linked(to, from) {
                    return;
                }
                self.record.stats.messages += 1;
                Input::Response {
                    peer: self.nodes[from].peer_id,
                    id,
                    response,
                }
            }
        };
        let mut out = Vec::new();
        self.nodes[to]
            .core
            .handle(self.queue.now_ms(), input, &mut out)
            .expect("in-memory store never fails");
        self.process(to, out);
    }

    /// Node `i`'s neighbours, ascending.
    #[must_use]
    pub fn neighbours(&self, i: usize) -> &[usize] {
        &self.adj[i]
    }

    /// Sends a gossip message from `from` to every neighbour but `except`
    /// (the one it came from), one link latency later.
    fn forward(
        &mut self,
        from: usize,
        except: Option<usize>,
        id: GossipId,
        topic: Topic,
        data: &Arc<Vec<u8>>,
    ) {
        for k in 0..self.adj[from].len() {
            let n = self.adj[from][k];
            if Some(n) != except {
                let Some(delay) = self.delay(from, n, data.len()) else {
                    continue;
                };
                let d = Delivery::Gossip {
                    from,
                    id,
                    topic,
                    data: Arc::clone(data),
                };
                self.schedule(delay, n, d);
            }
        }
    }

    /// Queues node `i`'s next tick at its core's deadline, unless one is
    /// queued at or before it.
    fn arm_timer(&mut self, i: usize) {
        let Some(at) = self.nodes[i].core.next_deadline() else {
            return;
        };
        let at = at.max(self.now_ms() + 1);
        if self.nodes[i].timer.is_some_and(|t| t <= at) {
            return;
        }
        self.nodes[i].timer = Some(at);
        self.schedule(at - self.now_ms(), i, Delivery::Tick);
    }

    fn process(&mut self, from: usize, outputs: Vec<Output>) {
        self.process_outputs(from, outputs);
        self.arm_timer(from);
    }

    fn process_outputs(&mut self, from: usize, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Publish { topic, data } => {
                    let id = GossipId::of(&data);
                    self.nodes[from].seen.insert(id);
                    self.forward(from, None, id, topic, &Arc::new(data));
                }
                Output::Verdict { peer, id, verdict } => {
                    let Some((topic, data)) = self.nodes[from].pending.remove(&id) else {
                        continue;
                    };
                    if verdict != Verdict::Accept {
                        continue;
                    }
                    let source = self.index.get(&peer).copied();
                    self.forward(from, source, id, topic, &data);
                }
                Output::SendRequest { peer, id, request } => {
                    if let Some(&to) = self.index.get(&peer) {
                        if let Some(delay) = self.delay(from, to, 128) {
                            self.schedule(delay, to, Delivery::Request { from, id, request });
                        }
                    } else if self.outside.len() < MAX_OUTSIDE {
                        self.outside
                            .push((from, Output::SendRequest { peer, id, request }));
                    }
                }
                Output::Respond { id, response, .. } => {
                    if let Some((asker, rid)) = self.inbound.remove(&(from, id)) {
                        let bytes = match &response {
                            SyncResponse::Blocks(b) => b.0.len(),
                            _ => 128,
                        };
                        let Some(delay) = self.delay(from, asker, bytes) else {
                            continue;
                        };
                        self.schedule(
                            delay,
                            asker,
                            Delivery::Response {
                                from,
                                id: rid,
                                response,
                            },
                        );
                    }
                }
                Output::Disconnect(peer) | Output::Ban { peer, .. } => {
                    if let Some(&other) = self.index.get(&peer) {
                        self.disconnect(from, other);
                    }
                }
                Output::Dial(addr) => self.dial(from, &addr),
                Output::MiningJob(job) => self.nodes[from].job = job,
                Output::TxResult(_) => {}
                Output::Event(e) => {
                    let now = self.now_ms();
                    self.record.observe(now, from, &e);
                    if self.record.keep_events {
                        self.nodes[from].events.push((now, e));
                    }
                }
            }
        }
    }
}
