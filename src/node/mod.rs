//! The node: chain store + miner + p2p on tokio, with the HTTP API.
//!
//! One event loop (the only `tokio::select!`) owns the swarm and the miner.
//! Blocks from the miner and from peers go through the chain store; what it
//! reports changed (a new tip, a re-org, a missing parent) is passed on to
//! gossip, the miner (a new job) and the logs. The API reads shared state
//! and sends commands into the loop.

pub mod api;
pub mod mempool;
pub mod metrics;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use serde_json::json;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::chain::{BlockStatus, ChainError, ChainStore, ChainUpdate, Precheck, RedbStore};
use crate::config::NodeConfig;
use crate::consensus::difficulty::next_work_required;
use crate::consensus::{Block, BlockHash, Params, Target, Txid};
use crate::miner::worker::{assemble, search_header, BlockTemplate, FoundBlock, Miner};
use crate::p2p::protocol::{MAX_BLOCKS_PER_RESPONSE, MAX_LOCATOR};
use crate::p2p::{
    build_swarm, Behaviour, BehaviourEvent, Handshake, PeerAction, PeerScores, SyncRequest,
    SyncResponse,
};
use mempool::Mempool;
use metrics::Metrics;

/// A node failure (start-up or fatal at run time).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Data dir or key file trouble.
    #[error("{0}")]
    Io(String),
    /// The chain store failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// libp2p set-up failed.
    #[error("p2p: {0}")]
    P2p(String),
    /// The API could not bind.
    #[error("api: {0}")]
    Api(String),
}

/// Unix time in milliseconds.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Commands from the API into the event loop.
#[derive(Debug)]
pub enum Command {
    /// `POST /tx`.
    SubmitTx(Vec<u8>, oneshot::Sender<Result<Txid, String>>),
    /// `POST /generate` (regtest).
    Generate(u32, oneshot::Sender<Result<Vec<BlockHash>, String>>),
    /// `POST /admin/mining`.
    SetMining(bool),
    /// `POST /admin/partition`: drop and refuse these peers.
    Partition(Vec<PeerId>),
    /// `POST /admin/heal`: lift the partition.
    Heal,
}

/// Live, API-visible facts that are not in the chain store.
#[derive(Debug, Default, Clone)]
pub struct NodeInfo {
    /// Our peer id.
    pub peer_id: String,
    /// Dialable listen addresses, `/p2p/<id>` included.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: Vec<String>,
    /// Mining now?
    pub mining: bool,
    /// H/s over the last seconds.
    pub hashrate: f64,
    /// Miner backend.
    pub backend: String,
    /// Miner threads.
    pub threads: usize,
    /// Miner id.
    pub miner_id: String,
    /// Peers banned now.
    pub banned: usize,
    /// Mempool size.
    pub mempool: usize,
}

/// State shared between the event loop and the API.
pub struct Shared {
    /// Network parameters.
    pub params: Arc<Params>,
    /// The chain.
    pub chain: Mutex<ChainStore>,
    /// Live facts.
    pub info: Mutex<NodeInfo>,
    /// Metrics.
    pub metrics: Metrics,
    /// Command channel into the loop.
    pub commands: mpsc::Sender<Command>,
}

impl Shared {
    /// The `/status` object (SPEC: `powchain status --json`).
    #[must_use]
    pub fn status_json(&self) -> serde_json::Value {
        let chain = self.chain.lock().expect("chain lock");
        let info = self.info.lock().expect("info lock").clone();
        json!({
            "network": self.params.network.to_string(),
            "network_id": self.params.network_id,
            "genesis": self.params.genesis_hash.to_string(),
            "peer_id": info.peer_id,
            "listen": info.listen,
            "height": chain.height(),
            "tip": chain.tip().to_string(),
            "chainwork": chain.chainwork().to_hex(),
            "bits": chain.tip_header().bits.to_string(),
            "peers": info.peers.len(),
            "peer_ids": info.peers,
            "mining": info.mining,
            "hashrate": info.hashrate,
            "backend": info.backend,
            "threads": info.threads,
            "miner_id": info.miner_id,
            "orphans": chain.orphans().len(),
            "stale": chain.stale_count(),
            "reorgs": chain.reorg_count(),
            "invalid": chain.invalid_count(),
            "banned": info.banned,
            "mempool": info.mempool,
            "blocks": chain.block_count(),
            "block_time": self.params.block_time_secs,
        })
    }
}

/// Loads the node key from `<data_dir>/node.key`, creating it if absent,
/// so the peer id survives restarts. New keys are secp256k1 (one of the
/// key types every libp2p implementation supports): gossipsub signs each
/// message with the author's key, and secp256k1 signatures hash the
/// message with SHA-256, which SHA-NI speeds up, where ed25519 needs three
/// SHA-512 passes per 1 MB block (sign twice, verify once): about 12 ms
/// here against about 2 ms. Key files of any type are still loaded.
///
/// # Errors
/// [`NodeError::Io`] when the file cannot be read, written or decoded.
pub fn load_or_create_key(data_dir: &Path) -> Result<Keypair, NodeError> {
    let path = data_dir.join("node.key");
    if let Ok(bytes) = std::fs::read(&path) {
        return Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| NodeError::Io(format!("bad key file {}: {e}", path.display())));
    }
    let key = Keypair::generate_secp256k1();
    write_key(data_dir, &key)?;
    Ok(key)
}

/// Writes `key` to `<data_dir>/node.key`.
///
/// # Errors
/// [`NodeError::Io`].
pub fn write_key(data_dir: &Path, key: &Keypair) -> Result<(), NodeError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| NodeError::Io(format!("create {}: {e}", data_dir.display())))?;
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| NodeError::Io(e.to_string()))?;
    std::fs::write(data_dir.join("node.key"), bytes)
        .map_err(|e| NodeError::Io(format!("write node.key: {e}")))
}

struct PeerState {
    address: Option<Multiaddr>,
    handshake: Option<Handshake>,
}

/// The event loop's state.
struct NodeState {
    config: NodeConfig,
    shared: Arc<Shared>,
    swarm: Swarm<Behaviour>,
    blocks_topic: IdentTopic,
    tx_topic: IdentTopic,
    miner: Option<Miner>,
    mining: bool,
    job_generation: u64,
    mempool: Mempool,
    scores: PeerScores,
    peers: HashMap<PeerId, PeerState>,
    blocked: HashSet<PeerId>,
    sync_in_flight: Option<(PeerId, OutboundRequestId, Instant)>,
    last_hashes: (u64, Instant),
    started: Instant,
    last_dial: HashMap<Multiaddr, Instant>,
}

/// Runs a node until `shutdown` resolves (or a fatal error).
///
/// # Errors
/// [`NodeError`] at start-up (data dir, store, bind) or on a fatal storage error.
pub async fn run(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let params = Arc::new(Params::for_network(config.network, config.block_time_secs));
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        NodeError::Io(format!(
            "create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let key = load_or_create_key(&config.data_dir)?;
    let store = RedbStore::open(&config.data_dir.join("chain.redb")).map_err(ChainError::from)?;
    let chain = ChainStore::open(Arc::clone(&params), Box::new(store))?;
    tracing::info!(
        network = %params.network_id, genesis = %params.genesis_hash, height = chain.height(),
        tip = %chain.tip(), blocks = chain.block_count(), "chain store opened"
    );
    let mut swarm = build_swarm(key.clone(), &params, config.mdns).map_err(NodeError::P2p)?;
    let blocks_topic = IdentTopic::new(params.blocks_topic());
    let tx_topic = IdentTopic::new(params.tx_topic());
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&blocks_topic)
        .map_err(|e| NodeError::P2p(e.to_string()))?;
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&tx_topic)
        .map_err(|e| NodeError::P2p(e.to_string()))?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::P2p(format!("listen on {addr}: {e}")))?;
    }
    let (cmd_tx, mut cmd_rx) = mpsc::channel(64);
    let peer_id = *swarm.local_peer_id();
    let shared = Arc::new(Shared {
        params: Arc::clone(&params),
        chain: Mutex::new(chain),
        info: Mutex::new(NodeInfo {
            peer_id: peer_id.to_string(),
            miner_id: config.miner_id.clone(),
            backend: config.backend.to_string(),
            threads: if config.mine { config.threads } else { 0 },
            ..NodeInfo::default()
        }),
        metrics: Metrics::new(),
        commands: cmd_tx,
    });
    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|e| NodeError::Api(format!("bind {}: {e}", config.api)))?;
    tracing::info!(api = %config.api, %peer_id, "HTTP API listening");
    let api_task = tokio::spawn(api::serve(listener, Arc::clone(&shared)));

    let (found_tx, mut found_rx) = mpsc::unbounded_channel::<FoundBlock>();
    let miner = config.mine.then(|| {
        Miner::start(config.backend, config.threads, move |f| {
            let _ = found_tx.send(f);
        })
    });
    let mut node = NodeState {
        mining: config.mine,
        config,
        shared,
        swarm,
        blocks_topic,
        tx_topic,
        miner,
        job_generation: 0,
        mempool: Mempool::new(16 * 1024 * 1024, 50_000, params.max_tx_bytes),
        scores: PeerScores::default(),
        peers: HashMap::new(),
        blocked: HashSet::new(),
        sync_in_flight: None,
        last_hashes: (0, Instant::now()),
        started: Instant::now(),
        last_dial: HashMap::new(),
    };
    node.dial_peers();
    node.refresh_job();
    node.update_gauges();

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            ev = node.swarm.select_next_some() => {
                if let Err(e) = node.on_swarm_event(ev) { break Err(e); }
            }
            Some(found) = found_rx.recv() => {
                if let Err(e) = node.on_found(found) { break Err(e); }
            }
            Some(cmd) = cmd_rx.recv() => {
                if let Err(e) = node.on_command(cmd) { break Err(e); }
            }
            _ = tick.tick() => node.on_tick(),
            () = &mut shutdown => break Ok(()),
        }
    };
    tracing::info!("shutting down");
    if let Some(m) = node.miner.take() {
        m.shutdown();
    }
    api_task.abort();
    result
}

fn fatal_if_store(e: &ChainError) -> Result<(), NodeError> {
    if let ChainError::Store(s) = e {
        return Err(NodeError::Io(format!("storage failure, stopping: {s}")));
    }
    Ok(())
}

impl NodeState {
    fn now_secs(&self) -> u64 {
        now_ms() / 1000
    }

    fn our_handshake(&self) -> Handshake {
        let chain = self.shared.chain.lock().expect("chain lock");
        Handshake {
            version: crate::p2p::protocol::PROTOCOL_VERSION,
            network_id: self.shared.params.network_id.clone(),
            genesis: self.shared.params.genesis_hash,
            tip: chain.tip(),
            height: chain.height(),
            chainwork: chain.chainwork().0.to_be_bytes::<32>(),
        }
    }

    fn our_chainwork(&self) -> [u8; 32] {
        self.shared
            .chain
            .lock()
            .expect("chain lock")
            .chainwork()
            .0
            .to_be_bytes::<32>()
    }

    fn penalise(&mut self, peer: PeerId, action: PeerAction, why: &str) {
        let now = self.now_secs();
        tracing::warn!(%peer, ?action, why, "peer penalised");
        if self.scores.penalise(peer, action, now) {
            tracing::warn!(%peer, "peer banned for {} s", crate::p2p::peer_score::BAN_SECS);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Counts an invalid block from `peer` and penalises the peer.
    fn reject_block(&mut self, peer: PeerId, action: PeerAction, why: &str) {
        self.shared.metrics.blocks_rejected.inc();
        self.penalise(peer, action, why);
    }

    fn dial_peers(&mut self) {
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        let connected_addrs: HashSet<Multiaddr> = self
            .peers
            .values()
            .filter_map(|p| p.address.clone())
            .collect();
        for addr in self.config.peers.clone() {
            let pid = addr.iter().find_map(|p| match p {
                Protocol::P2p(id) => Some(id),
                _ => None,
            });
            let is_connected = match pid {
                Some(id) => connected.contains(&id) || self.blocked.contains(&id),
                None => connected_addrs.contains(&addr),
            };
            if is_connected {
                continue;
            }
            if self
                .last_dial
                .get(&addr)
                .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
            {
                continue;
            }
            self.last_dial.insert(addr.clone(), Instant::now());
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, "dial failed: {e}");
            }
        }
    }

    fn update_gauges(&mut self) {
        let m = &self.shared.metrics;
        {
            let chain = self.shared.chain.lock().expect("chain lock");
            m.height.set(i64::from(chain.height()));
            m.chainwork.set(chain.chainwork().as_f64());
            m.orphans.set(chain.orphans().len() as i64);
            m.stale.set(chain.stale_count() as i64);
            m.reorgs.set(chain.reorg_count() as i64);
        }
        let peers: Vec<String> = self
            .swarm
            .connected_peers()
            .map(ToString::to_string)
            .collect();
        m.peers.set(peers.len() as i64);
        let mut info = self.shared.info.lock().expect("info lock");
        info.peers = peers;
        info.mining = self.mining;
        info.banned = self.scores.banned_count(self.now_secs());
        info.mempool = self.mempool.len();
    }

    fn on_tick(&mut self) {
        if let Some(miner) = &self.miner {
            let (h0, t0) = self.last_hashes;
            let h1 = miner.hashes();
            let dt = t0.elapsed().as_secs_f64();
            if dt > 0.0 {
                let rate = (h1 - h0) as f64 / dt;
                self.shared.info.lock().expect("info lock").hashrate = rate;
                self.shared.metrics.hashrate.set(rate);
            }
            self.last_hashes = (h1, Instant::now());
        }
        self.dial_peers();
        let now = self.now_secs();
        self.shared
            .chain
            .lock()
            .expect("chain lock")
            .expire_orphans(now);
        if self
            .sync_in_flight
            .as_ref()
            .is_some_and(|(_, _, t)| t.elapsed() > Duration::from_secs(30))
        {
            self.sync_in_flight = None;
        }
        // Every 5 s re-exchange handshakes: catches up after lost requests
        // and after a partition heals.
        if self.started.elapsed().as_secs().is_multiple_of(5) {
            let hs = self.our_handshake();
            let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
            for p in peers {
                self.swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&p, SyncRequest::Handshake(hs.clone()));
            }
        }
        self.update_gauges();
    }

    /// A new mining job on the current tip (or none when not mining).
    fn refresh_job(&mut self) {
        let Some(miner) = &self.miner else { return };
        if !self.mining {
            miner.pause();
            return;
        }
        let template = self.template();
        self.job_generation = miner.set_job(template);
    }

    fn template(&self) -> BlockTemplate {
        let chain = self.shared.chain.lock().expect("chain lock");
        let params = &self.shared.params;
        let view = chain.tip_view();
        let bits = next_work_required(params, &view).unwrap_or(params.pow_limit_bits);
        let min_time = crate::consensus::ChainView::median_time_past(&view) + 1;
        BlockTemplate {
            height: chain.height() + 1,
            version: 1,
            prev_blockhash: chain.tip(),
            bits,
            min_time,
            transactions: self.mempool.select(params.max_block_bytes - 1024),
            miner_id: self.config.miner_id.clone(),
        }
    }

    /// Passes on what the chain store reported.
    fn apply_update(&mut self, update: &ChainUpdate, source: &str) {
        for (hash, peer, why) in &update.rejected_orphans {
            tracing::warn!(%hash, why, "orphan rejected once its parent arrived");
            self.shared.metrics.blocks_rejected.inc();
            if let Some(p) = peer.as_ref().and_then(|p| p.parse::<PeerId>().ok()) {
                self.penalise(p, PeerAction::HighTolerance, "sent an invalid orphan");
            }
        }
        let Some(change) = &update.tip_change else {
            if update.status == BlockStatus::SideBranch {
                tracing::info!(hash = %update.hash, source, "stale block stored on a side branch");
            }
            self.update_gauges();
            return;
        };
        // The mempool only cares when it holds transactions or a re-org
        // returns some: skip reading blocks back from the store otherwise.
        let mempool_affected = !self.mempool.is_empty() || !change.disconnected.is_empty();
        let blocks: Vec<(bool, Block)> = if !mempool_affected {
            Vec::new()
        } else {
            let chain = self.shared.chain.lock().expect("chain lock");
            change
                .disconnected
                .iter()
                .map(|h| (false, h))
                .chain(change.connected.iter().map(|h| (true, h)))
                .filter_map(|(c, h)| chain.block(h).ok().flatten().map(|b| (c, b)))
                .collect()
        };
        for (connected, b) in &blocks {
            if *connected {
                self.mempool.remove_block(b);
            } else {
                self.mempool.readd_block(b);
            }
        }
        if let Some(r) = &change.reorg {
            tracing::warn!(
                depth = r.depth, fork_height = r.fork_height, old_tip = %r.old_tip, new_tip = %r.new_tip,
                connected = r.connected.len(), "re-org"
            );
        }
        tracing::info!(height = change.new_height, tip = %change.new_tip, source, "new best tip");
        self.refresh_job();
        self.update_gauges();
    }

    fn on_found(&mut self, found: FoundBlock) -> Result<(), NodeError> {
        if found.generation != self.job_generation {
            tracing::debug!("discarding a block mined on an old job");
            return Ok(());
        }
        let block = found.block;
        let hash = block.block_hash();
        let height = self.shared.chain.lock().expect("chain lock").height() + 1;
        match self.accept_own_block(block) {
            Ok(update) => {
                tracing::info!(%hash, height, ms = found.job_started.elapsed().as_millis() as u64, "block found");
                self.apply_update(&update, "miner");
            }
            Err(e) => {
                fatal_if_store(&e)?;
                tracing::error!(%hash, "own block rejected: {e}");
                self.refresh_job();
            }
        }
        Ok(())
    }

    /// Stores and publishes a block this node made (miner or `/generate`).
    /// When [`ChainStore::precheck`] finds it valid it is published before
    /// the durable write, so peers receive it while the store commits;
    /// otherwise only once `accept_block` has taken it.
    ///
    /// # Errors
    /// `accept_block`'s [`ChainError`]; the block is then not published.
    fn accept_own_block(&mut self, block: Block) -> Result<ChainUpdate, ChainError> {
        let found_ms = now_ms();
        let bytes = block.encode();
        let valid = self
            .shared
            .chain
            .lock()
            .expect("chain lock")
            .precheck(&block, found_ms);
        let unpublished = if matches!(valid, Ok(Precheck::Valid)) {
            self.publish_block(bytes);
            None
        } else {
            Some(bytes)
        };
        let update = self
            .shared
            .chain
            .lock()
            .expect("chain lock")
            .accept_block(block, None, found_ms)?;
        self.shared.metrics.blocks_mined.inc();
        if let Some(bytes) = unpublished {
            self.publish_block(bytes);
        }
        Ok(update)
    }

    fn publish_block(&mut self, bytes: Vec<u8>) {
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.blocks_topic.clone(), bytes)
        {
            Ok(_) => {
                self.shared.metrics.blocks_relayed.inc();
            }
            Err(gossipsub::PublishError::Duplicate) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::debug!("no peers subscribed yet; sync will reconcile");
            }
            Err(e) => tracing::warn!("publish failed: {e}"),
        }
    }

    fn request_blocks(&mut self, peer: PeerId) {
        if self.sync_in_flight.is_some() {
            return;
        }
        let mut locator = self.shared.chain.lock().expect("chain lock").locator();
        locator.truncate(MAX_LOCATOR);
        let id = self.swarm.behaviour_mut().sync.send_request(
            &peer,
            SyncRequest::GetBlocks {
                locator,
                max_blocks: MAX_BLOCKS_PER_RESPONSE,
            },
        );
        self.sync_in_flight = Some((peer, id, Instant::now()));
    }

    fn on_block_message(
        &mut self,
        source: PeerId,
        id: gossipsub::MessageId,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let params = Arc::clone(&self.shared.params);
        let report = |s: &mut Self, a: MessageAcceptance| {
            let _ = s
                .swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, a);
        };
        let arrived_ms = now_ms();
        let block = match Block::decode(data, params.max_block_bytes) {
            Ok(b) => b,
            Err(e) => {
                report(self, MessageAcceptance::Reject);
                self.reject_block(
                    source,
                    PeerAction::HighTolerance,
                    &format!("malformed block: {e}"),
                );
                return Ok(());
            }
        };
        self.shared.metrics.blocks_received.inc();
        let delay = (arrived_ms as f64 / 1000.0 - f64::from(block.header.time)).max(0.0);
        self.shared.metrics.propagation.observe(delay);
        let hash = block.block_hash();
        let handling = Instant::now();
        // Relay before the durable write (as BIP152's high-bandwidth mode
        // relays once the header and proof of work check out): when every
        // rule passes on a known parent, gossipsub forwards the block on its
        // connection tasks while this loop writes it. Otherwise the verdict
        // waits for `accept_block`, which records why a block failed and
        // whether the orphan pool takes an orphan (a flood is not relayed).
        let precheck = self
            .shared
            .chain
            .lock()
            .expect("chain lock")
            .precheck(&block, arrived_ms);
        let relayed_early = matches!(precheck, Ok(Precheck::Valid));
        if relayed_early {
            report(self, MessageAcceptance::Accept);
        }
        let relay_ms = handling.elapsed().as_secs_f64() * 1000.0;
        let verdict = |s: &mut Self, a: MessageAcceptance| {
            if !relayed_early {
                report(s, a);
            }
        };
        let res = self.shared.chain.lock().expect("chain lock").accept_block(
            block,
            Some(&source.to_string()),
            arrived_ms,
        );
        let accept_ms = handling.elapsed().as_secs_f64() * 1000.0;
        match res {
            Ok(update) => {
                match update.status {
                    BlockStatus::Duplicate => verdict(self, MessageAcceptance::Ignore),
                    BlockStatus::Orphan => {
                        verdict(self, MessageAcceptance::Accept);
                        tracing::info!(%hash, missing = ?update.missing.map(|m| m.to_string()), "orphan block; fetching ancestors");
                        self.request_blocks(source);
                    }
                    BlockStatus::Connected | BlockStatus::SideBranch => {
                        verdict(self, MessageAcceptance::Accept);
                        self.shared.metrics.blocks_relayed.inc();
                        tracing::info!(%hash, %source, bytes = data.len(), relay_ms, accept_ms, "block received");
                    }
                }
                self.apply_update(&update, "gossip");
            }
            Err(e) => {
                fatal_if_store(&e)?;
                match e {
                    ChainError::OrphanRefused { .. } => {
                        verdict(self, MessageAcceptance::Ignore);
                        self.penalise(source, PeerAction::LowTolerance, "orphan flood");
                    }
                    ChainError::KnownInvalid(_) => {
                        verdict(self, MessageAcceptance::Reject);
                        self.penalise(
                            source,
                            PeerAction::LowTolerance,
                            "re-sent a known invalid block",
                        );
                    }
                    other => {
                        verdict(self, MessageAcceptance::Reject);
                        let action = match &other {
                            ChainError::Invalid {
                                source:
                                    crate::consensus::BlockError::Header(
                                        crate::consensus::HeaderError::HighHash { .. },
                                    ),
                                ..
                            } => PeerAction::Fatal,
                            _ => PeerAction::HighTolerance,
                        };
                        self.reject_block(source, action, &other.to_string());
                    }
                }
            }
        }
        Ok(())
    }

    fn on_tx_message(&mut self, source: PeerId, id: gossipsub::MessageId, data: Vec<u8>) {
        let acceptance = match self.mempool.add(data) {
            Ok(_) => MessageAcceptance::Accept,
            Err(mempool::TxError::Duplicate(_)) => MessageAcceptance::Ignore,
            Err(_) => {
                self.penalise(source, PeerAction::LowTolerance, "invalid transaction");
                MessageAcceptance::Reject
            }
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }

    fn on_handshake(&mut self, peer: PeerId, hs: Handshake) -> bool {
        let params = &self.shared.params;
        if hs.genesis != params.genesis_hash || hs.network_id != params.network_id {
            tracing::warn!(%peer, network = hs.network_id, genesis = %hs.genesis, "peer is on another network; disconnecting");
            let now = self.now_secs();
            self.scores.penalise(peer, PeerAction::Fatal, now);
            let _ = self.swarm.disconnect_peer_id(peer);
            return false;
        }
        let theirs = hs.chainwork;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.handshake = Some(hs);
        }
        if theirs > self.our_chainwork() {
            self.request_blocks(peer);
        }
        true
    }

    fn on_sync_event(
        &mut self,
        ev: request_response::Event<SyncRequest, SyncResponse>,
    ) -> Result<(), NodeError> {
        use request_response::{Event, Message};
        match ev {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = match request {
                    SyncRequest::Handshake(hs) => {
                        if self.on_handshake(peer, hs) {
                            SyncResponse::Handshake(self.our_handshake())
                        } else {
                            SyncResponse::Refused("wrong network".into())
                        }
                    }
                    SyncRequest::GetBlocks {
                        locator,
                        max_blocks,
                    } => {
                        if locator.len() > MAX_LOCATOR {
                            self.penalise(peer, PeerAction::LowTolerance, "oversized locator");
                            SyncResponse::Refused(format!("locator longer than {MAX_LOCATOR}"))
                        } else {
                            let max = max_blocks.min(MAX_BLOCKS_PER_RESPONSE) as usize;
                            let chain = self.shared.chain.lock().expect("chain lock");
                            match chain.blocks_after(&locator, max, 8 * 1024 * 1024) {
                                Ok(v) => SyncResponse::Blocks(v),
                                Err(e) => return Err(NodeError::Io(e.to_string())),
                            }
                        }
                    }
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => match response {
                SyncResponse::Handshake(hs) => {
                    self.on_handshake(peer, hs);
                }
                SyncResponse::Blocks(raw) => {
                    if self
                        .sync_in_flight
                        .as_ref()
                        .is_some_and(|(_, id, _)| *id == request_id)
                    {
                        self.sync_in_flight = None;
                    }
                    self.on_blocks_response(peer, raw)?;
                }
                SyncResponse::Refused(why) => {
                    tracing::warn!(%peer, why, "peer refused our request");
                }
            },
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "request failed: {error}");
                if self
                    .sync_in_flight
                    .as_ref()
                    .is_some_and(|(_, id, _)| *id == request_id)
                {
                    self.sync_in_flight = None;
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound request failed: {error}");
            }
            Event::ResponseSent { .. } => {}
        }
        Ok(())
    }

    fn on_blocks_response(&mut self, peer: PeerId, raw: Vec<Vec<u8>>) -> Result<(), NodeError> {
        let params = Arc::clone(&self.shared.params);
        if raw.len() > MAX_BLOCKS_PER_RESPONSE as usize {
            self.penalise(peer, PeerAction::HighTolerance, "oversized blocks response");
            return Ok(());
        }
        let full = raw.len() == MAX_BLOCKS_PER_RESPONSE as usize;
        let mut blocks = Vec::with_capacity(raw.len());
        for r in &raw {
            match Block::decode(r, params.max_block_bytes) {
                Ok(b) => blocks.push(b),
                Err(e) => {
                    self.penalise(
                        peer,
                        PeerAction::HighTolerance,
                        &format!("malformed block in sync: {e}"),
                    );
                    return Ok(());
                }
            }
        }
        if blocks.is_empty() {
            return Ok(());
        }
        let n = blocks.len();
        self.shared.metrics.blocks_received.inc_by(n as u64);
        let results = self.shared.chain.lock().expect("chain lock").accept_blocks(
            blocks,
            Some(&peer.to_string()),
            now_ms(),
        );
        let mut bad = None;
        for r in &results {
            match r {
                Ok(update) => self.apply_update(update, "sync"),
                Err(e) => {
                    fatal_if_store(e)?;
                    if !matches!(e, ChainError::KnownInvalid(_)) {
                        bad = Some(e.to_string());
                    }
                }
            }
        }
        if let Some(why) = bad {
            self.reject_block(
                peer,
                PeerAction::HighTolerance,
                &format!("invalid block in sync: {why}"),
            );
            return Ok(());
        }
        tracing::info!(%peer, blocks = n, height = self.shared.chain.lock().expect("chain lock").height(), "synced blocks");
        let behind = self
            .peers
            .get(&peer)
            .and_then(|p| p.handshake.as_ref())
            .is_some_and(|h| h.chainwork > self.our_chainwork());
        if full || behind {
            self.request_blocks(peer);
        }
        Ok(())
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) -> Result<(), NodeError> {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address
                    .clone()
                    .with(Protocol::P2p(*self.swarm.local_peer_id()));
                tracing::info!(%full, "listening");
                self.shared
                    .info
                    .lock()
                    .expect("info lock")
                    .listen
                    .push(full.to_string());
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                let now = self.now_secs();
                if self.scores.is_banned(&peer_id, now) || self.blocked.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return Ok(());
                }
                if !self.peers.contains_key(&peer_id) && self.peers.len() >= self.config.max_peers {
                    tracing::info!(peer = %peer_id, max = self.config.max_peers, "peer limit reached; closing");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return Ok(());
                }
                let address = endpoint
                    .is_dialer()
                    .then(|| endpoint.get_remote_address().clone());
                if !self.peers.contains_key(&peer_id) {
                    tracing::info!(peer = %peer_id, addr = %endpoint.get_remote_address(), "peer connected");
                }
                let entry = self.peers.entry(peer_id).or_insert(PeerState {
                    address: None,
                    handshake: None,
                });
                if address.is_some() {
                    entry.address = address;
                }
                let hs = self.our_handshake();
                self.swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer_id, SyncRequest::Handshake(hs));
                self.update_gauges();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.peers.remove(&peer_id);
                tracing::info!(peer = %peer_id, "peer disconnected");
                self.update_gauges();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                if message.topic == self.blocks_topic.hash() {
                    self.on_block_message(propagation_source, message_id, &message.data)?;
                } else if message.topic == self.tx_topic.hash() {
                    self.on_tx_message(propagation_source, message_id, message.data);
                } else {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Reject,
                        );
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev)?,
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(list))) => {
                for (peer, addr) in list {
                    if peer != *self.swarm.local_peer_id() && !self.swarm.is_connected(&peer) {
                        tracing::info!(%peer, %addr, "mDNS discovered a peer");
                        let _ = self.swarm.dial(addr.with(Protocol::P2p(peer)));
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, "dial error: {error}");
            }
            _ => {}
        }
        Ok(())
    }

    fn on_command(&mut self, cmd: Command) -> Result<(), NodeError> {
        match cmd {
            Command::SubmitTx(tx, reply) => {
                let r = self.mempool.add(tx.clone()).map_err(|e| e.to_string());
                if r.is_ok() {
                    match self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .publish(self.tx_topic.clone(), tx)
                    {
                        Ok(_)
                        | Err(
                            gossipsub::PublishError::Duplicate
                            | gossipsub::PublishError::NoPeersSubscribedToTopic,
                        ) => {}
                        Err(e) => tracing::warn!("tx publish failed: {e}"),
                    }
                    self.update_gauges();
                }
                let _ = reply.send(r);
            }
            Command::Generate(n, reply) => {
                let r = self.generate(n);
                let _ = reply.send(r);
            }
            Command::SetMining(on) => {
                tracing::info!(mining = on, "mining switched");
                self.mining = on && self.miner.is_some();
                self.refresh_job();
                self.update_gauges();
            }
            Command::Partition(peers) => {
                tracing::warn!(
                    peers = peers.len(),
                    "partition: dropping and refusing peers"
                );
                for p in &peers {
                    let _ = self.swarm.disconnect_peer_id(*p);
                }
                self.blocked = peers.into_iter().collect();
            }
            Command::Heal => {
                tracing::warn!("partition healed");
                self.blocked.clear();
                self.last_dial.clear();
                self.dial_peers();
            }
        }
        Ok(())
    }

    /// Regtest `generate`: mines `n` blocks on the tip, right now.
    fn generate(&mut self, n: u32) -> Result<Vec<BlockHash>, String> {
        if self.shared.params.network != crate::consensus::Network::Regtest {
            return Err("generate is for regtest only".into());
        }
        let mut out = Vec::new();
        for i in 0..n {
            let template = self.template();
            let target = Target::from_compact(template.bits).map_err(|e| e.to_string())?;
            let (header, coinbase) = assemble(&template, u64::from(i));
            let progress = std::sync::atomic::AtomicU64::new(0);
            let r = search_header(self.config.backend, &header, target, 0, 1, &progress);
            let (nonce, _) = r.solution.ok_or("no nonce found")?;
            let mut header = header;
            header.nonce = nonce;
            let mut txdata = vec![coinbase];
            txdata.extend(template.transactions);
            let block = Block { header, txdata };
            let update = self.accept_own_block(block).map_err(|e| e.to_string())?;
            out.push(update.hash);
            self.apply_update(&update, "generate");
        }
        Ok(out)
    }
}
