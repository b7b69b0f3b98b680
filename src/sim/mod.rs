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

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use libp2p::PeerId;

use crate::chain::{ChainStore, MemStore};
use crate::consensus::{Block, BlockHash, Params, Target};
use crate::miner::sha256d::{Backend, ScanInput};
use crate::miner::worker::assemble_at;
use crate::protocol::{
    Command, CoreConfig, CoreError, GossipId, InboundId, Input, NodeCore, NodeEvent, Output,
    RequestId, SyncRequest, SyncResponse, Topic, Verdict,
};

/// Virtual time at which a simulation starts, Unix ms (2026-06-01).
pub const SIM_EPOCH_MS: u64 = 1_780_272_000_000;

/// A message in flight to node `to`.
#[derive(Clone, Debug)]
enum Delivery {
    Connected {
        from: usize,
        outbound: bool,
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
    /// Events the core emitted, with their time (Unix ms).
    pub events: Vec<(u64, NodeEvent)>,
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Messages delivered (gossip, requests, responses).
    pub messages: u64,
    /// Events processed from the queue.
    pub events: u64,
}

/// A network of protocol cores in virtual time.
pub struct Network {
    params: Arc<Params>,
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    index: HashMap<PeerId, usize>,
    links: BTreeSet<(usize, usize)>,
    /// Links cut by a partition, restored by [`Network::heal`].
    cut: BTreeSet<(usize, usize)>,
    now_ms: u64,
    latency_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    payloads: HashMap<u64, Delivery>,
    /// Inbound requests waiting for their answer: (responder, inbound id)
    /// -> (asker, the asker's request id).
    inbound: HashMap<(usize, InboundId), (usize, RequestId)>,
    next_inbound: u64,
    extranonce: u64,
    /// Counters.
    pub stats: SimStats,
    /// Keep every node's events in [`SimNode::events`].
    pub record_events: bool,
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

impl Network {
    /// `n` nodes on `params` with no links yet, each link `latency_ms`
    /// one way; `seed` fixes the peer ids.
    ///
    /// # Panics
    /// If the in-memory store cannot store the genesis block (it always can).
    #[must_use]
    pub fn new(params: Params, n: usize, latency_ms: u64, seed: u64) -> Network {
        let params = Arc::new(params);
        let mut nodes = Vec::with_capacity(n);
        let mut index = HashMap::new();
        for i in 0..n {
            let peer_id = sim_peer_id(seed, i);
            let chain = ChainStore::open(Arc::clone(&params), Box::new(MemStore::default()))
                .expect("in-memory store");
            let config = CoreConfig {
                miner_id: format!("node{i}"),
                ..CoreConfig::new(peer_id)
            };
            index.insert(peer_id, i);
            nodes.push(SimNode {
                core: NodeCore::new(chain, config),
                peer_id,
                seen: HashSet::new(),
                pending: HashMap::new(),
                events: Vec::new(),
            });
        }
        let mut net = Network {
            params,
            nodes,
            index,
            links: BTreeSet::new(),
            cut: BTreeSet::new(),
            now_ms: SIM_EPOCH_MS,
            latency_ms,
            seq: 0,
            queue: BinaryHeap::new(),
            payloads: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: 0,
            extranonce: 0,
            stats: SimStats::default(),
            record_events: true,
        };
        for i in 0..n {
            net.schedule(1000, i, Delivery::Tick);
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
        self.now_ms
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
        self.seq += 1;
        self.queue
            .push(Reverse((self.now_ms + delay_ms, self.seq, to)));
        self.payloads.insert(self.seq, d);
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    /// Connects nodes `a` (dialling) and `b`.
    pub fn connect(&mut self, a: usize, b: usize) {
        if a == b || !self.links.insert((a.min(b), a.max(b))) {
            return;
        }
        self.schedule(
            0,
            a,
            Delivery::Connected {
                from: b,
                outbound: true,
            },
        );
        self.schedule(
            0,
            b,
            Delivery::Connected {
                from: a,
                outbound: false,
            },
        );
    }

    /// Closes the link between `a` and `b`.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        if self.links.remove(&(a.min(b), a.max(b))) {
            self.schedule(0, a, Delivery::Disconnected { from: b });
            self.schedule(0, b, Delivery::Disconnected { from: a });
        }
    }

    /// Cuts every link between `side` and the other nodes, until
    /// [`Network::heal`].
    pub fn partition(&mut self, side: &[usize]) {
        let side: HashSet<usize> = side.iter().copied().collect();
        let cut: Vec<(usize, usize)> = self
            .links
            .iter()
            .filter(|(a, b)| side.contains(a) != side.contains(b))
            .copied()
            .collect();
        for (a, b) in cut {
            self.disconnect(a, b);
            self.cut.insert((a, b));
        }
    }

    /// Restores the links a partition cut.
    pub fn heal(&mut self) {
        let cut = std::mem::take(&mut self.cut);
        for (a, b) in cut {
            self.connect(a, b);
        }
    }

    /// Sends an operator command to node `i`.
    ///
    /// # Errors
    /// [`CoreError`] on a storage failure.
    pub fn command(&mut self, i: usize, c: Command) -> Result<(), CoreError> {
        let mut out = Vec::new();
        self.nodes[i]
            .core
            .handle(self.now_ms, Input::Command(c), &mut out)?;
        self.process(i, out);
        Ok(())
    }

    /// Node `i` mines one block on its best tip now and handles it as its
    /// miner's block (published at once). Returns its hash.
    ///
    /// # Panics
    /// If no nonce solves the template (impossible at regtest difficulty)
    /// or the core refuses its own block.
    pub fn mine(&mut self, i: usize) -> BlockHash {
        let block = self.make_block(i);
        let hash = block.block_hash();
        let mut out = Vec::new();
        self.nodes[i]
            .core
            .accept_own_block(self.now_ms, block, &mut out)
            .expect("own block accepted");
        self.process(i, out);
        hash
    }

    /// A valid block on node `i`'s tip at the current virtual time, not
    /// yet handed to anyone.
    ///
    /// # Panics
    /// If no nonce in 2^32 solves it.
    #[must_use]
    pub fn make_block(&mut self, i: usize) -> Block {
        let template = self.nodes[i].core.template();
        self.extranonce += 1;
        let (mut header, coinbase) = assemble_at(&template, self.extranonce, self.now_ms / 1000);
        let target = Target::from_compact(template.bits).expect("template bits decode");
        let input = ScanInput::new(header.encode(), target);
        let mut start = 0u32;
        let nonce = loop {
            let r = Backend::Scalar.scan(&input, start, 4096);
            if let Some(&n) = r.solutions.first() {
                break n;
            }
            start = start.checked_add(4096).expect("a nonce below 2^32");
        };
        header.nonce = nonce;
        let mut txdata = vec![coinbase];
        txdata.extend(template.transactions);
        Block { header, txdata }
    }

    /// Hands node `i` an input directly (as a hostile or scripted peer would).
    ///
    /// # Errors
    /// [`CoreError`] on a storage failure.
    pub fn input(&mut self, i: usize, input: Input) -> Result<Vec<Output>, CoreError> {
        let mut out = Vec::new();
        self.nodes[i].core.handle(self.now_ms, input, &mut out)?;
        let copy = out.clone();
        self.process(i, out);
        Ok(copy)
    }

    /// Runs the queue for `ms` of virtual time.
    ///
    /// # Panics
    /// On a storage failure of the in-memory store (never).
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms + ms;
        while let Some(&Reverse((t, seq, to))) = self.queue.peek() {
            if t > until {
                break;
            }
            self.queue.pop();
            self.now_ms = t;
            let d = self
                .payloads
                .remove(&seq)
                .expect("payload of a queued event");
            self.stats.events += 1;
            self.deliver(to, d);
        }
        self.now_ms = until;
    }

    fn deliver(&mut self, to: usize, d: Delivery) {
        let input = match d {
            Delivery::Tick => {
                self.schedule(1000, to, Delivery::Tick);
                Input::Tick
            }
            Delivery::Connected { from, outbound } => {
                if !self.linked(to, from) {
                    return;
                }
                Input::PeerConnected {
                    peer: self.nodes[from].peer_id,
                    outbound,
                    address: None,
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
                self.stats.messages += 1;
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
                self.stats.messages += 1;
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
                self.stats.messages += 1;
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
            .handle(self.now_ms, input, &mut out)
            .expect("in-memory store never fails");
        self.process(to, out);
    }

    fn neighbours(&self, i: usize) -> Vec<usize> {
        self.links
            .iter()
            .filter_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
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
        for n in self.neighbours(from) {
            if Some(n) != except {
                let d = Delivery::Gossip {
                    from,
                    id,
                    topic,
                    data: Arc::clone(data),
                };
                self.schedule(self.latency_ms, n, d);
            }
        }
    }

    fn process(&mut self, from: usize, outputs: Vec<Output>) {
        let lat = self.latency_ms;
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
                        self.schedule(lat, to, Delivery::Request { from, id, request });
                    }
                }
                Output::Respond { id, response, .. } => {
                    if let Some((asker, rid)) = self.inbound.remove(&(from, id)) {
                        self.schedule(
                            lat,
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
                Output::Dial(_) | Output::MiningJob(_) => {}
                Output::Event(e) => {
                    if self.record_events {
                        self.nodes[from].events.push((self.now_ms, e));
                    }
                }
            }
        }
    }
}
