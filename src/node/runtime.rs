//! The tokio/libp2p driver of the protocol core.
//!
//! Two loops, one way through:
//! - the **swarm task** (the only `tokio::select!`) runs the
//!   [`SwarmDriver`] (`node/swarm.rs`): swarm events become [`Input`]s for
//!   the core thread, and the network [`Output`]s the core sends back are
//!   executed; it decides nothing.
//! - the **core thread** owns the lock on [`NodeCore`] while it handles one
//!   input (including the durable block write), hands mining jobs to the
//!   miner and sends network outputs to the swarm task as they are
//!   decided, so gossip relays a block while the core is still writing it
//!   and the swarm never waits for an fsync. It also runs `/generate` and
//!   the one-second tick.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::metrics::Metrics;
use super::swarm::{SwarmDriver, Topics, BAN_CHECK};
use super::{load_or_create_key, now_ms, CoreMsg, NodeError, NodeInfo, Shared};
use crate::chain::{ChainStore, RedbStore};
use crate::config::NodeConfig;
use crate::consensus::{Block, BlockHash, Network, Params, Target};
use crate::miner::worker::{assemble_at, search_header, Miner};
use crate::p2p::build_swarm;
use crate::protocol::{CoreConfig, Input, NodeCore, NodeEvent, Outbox, Output};

/// Runs a node until `shutdown` resolves (or a fatal error).
///
/// # Errors
/// [`NodeError`] at start-up (data dir, store, bind) or on a fatal storage error.
pub async fn run(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let mut params =
        Params::for_network_at(config.network, config.block_time_secs, config.start_bits);
    if config.fixed_difficulty {
        params = params.with_fixed_difficulty();
    }
    let params = Arc::new(params);
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        NodeError::Io(format!(
            "create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let key = load_or_create_key(&config.data_dir)?;
    let store = RedbStore::open(&config.data_dir.join("chain.redb"))
        .map_err(crate::chain::ChainError::from)?;
    let chain = ChainStore::open(Arc::clone(&params), Box::new(store))?;
    tracing::info!(
        network = %params.network_id, genesis = %params.genesis_hash, height = chain.height(),
        tip = %chain.tip(), blocks = chain.block_count(), "chain store opened"
    );
    let limits = crate::p2p::connection_limits(config.max_peers, config.peers.len());
    let mut swarm = build_swarm(key.clone(), &params, config.mdns, limits)
        .map_err(|e| NodeError::P2p(e.to_string()))?;
    let topics = Topics::new(&params);
    for t in [&topics.blocks, &topics.tx] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .map_err(|e| NodeError::P2p(e.to_string()))?;
    }
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::P2p(format!("listen on {addr}: {e}")))?;
    }
    let peer_id = *swarm.local_peer_id();
    let core_config = CoreConfig {
        miner_id: config.miner_id.clone(),
        has_miner: config.mine,
        mining: config.mine && !config.paused,
        peers: config.peers.clone(),
        max_peers: config.max_peers,
        discovery: config.mdns,
        strategy: config.strategy,
        // The keep-alive handshake comes at least twice per libp2p idle
        // timeout, so a quiet network's connections are not closed as
        // idle between two blocks.
        keepalive_secs: Some(
            crate::protocol::core::keepalive_secs(params.block_time_secs)
                .min(crate::p2p::behaviour::IDLE_CONNECTION_SECS / 2),
        ),
        ..CoreConfig::new(peer_id)
    };
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<CoreMsg>();
    let shared = Arc::new(Shared {
        params: Arc::clone(&params),
        core: std::sync::Mutex::new(NodeCore::new(chain, core_config)),
        info: std::sync::Mutex::new(NodeInfo {
            peer_id: peer_id.to_string(),
            miner_id: config.miner_id.clone(),
            backend: config.backend.to_string(),
            threads: if config.mine { config.threads } else { 0 },
            ..NodeInfo::default()
        }),
        metrics: Metrics::new(),
        events: tokio::sync::broadcast::channel(super::EVENT_BUFFER).0,
        feed: super::events::EventFeed::default(),
        commands: cmd_tx.clone(),
        gate: super::gate::InputGate::default(),
        stop: tokio::sync::Notify::new(),
        started: Instant::now(),
    });
    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|e| NodeError::Api(format!("bind {}: {e}", config.api)))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| NodeError::Api(e.to_string()))?;
    shared.info.lock().expect("info lock").api = api_addr.to_string();
    let cookie = config.data_dir.join(crate::api::COOKIE_FILE);
    let token = hex::encode(rand::random::<[u8; 32]>());
    super::key::write_private_file(&cookie, token.as_bytes())?;
    tracing::info!(api = %api_addr, %peer_id, admin = config.admin, "HTTP API listening");
    eprintln!("powchain: HTTP API on {api_addr}");
    let access = super::api::ApiAccess {
        token,
        admin: config.admin,
        hosts: config.hosts.clone(),
    };
    let api_task = tokio::spawn(super::api::serve(listener, Arc::clone(&shared), access));
    let rpc_cookie = config.data_dir.join(super::rpc::RPC_COOKIE_FILE);
    let rpc_task = match &config.rpc {
        None => None,
        Some(rc) => Some(super::rpc::start(rc, &config.data_dir, &shared).await?),
    };

    let stratum_task = match &config.stratum {
        None => None,
        Some(sc) => Some(super::stratum::start(sc, &shared).await?),
    };

    let found_tx = cmd_tx.clone();
    let miner = config.mine.then(|| {
        Miner::start_capped(
            config.backend,
            config.threads,
            config.max_hashrate,
            move |f| {
                let _ = found_tx.send(CoreMsg::Input(Input::Mined(f.block)));
            },
        )
    });
    let (net_tx, net_rx) = unbounded_channel::<Output>();
    let core_shared = Arc::clone(&shared);
    let backend = config.backend;
    let mut core_task = tokio::task::spawn_blocking(move || {
        core_loop(&core_shared, &cmd_rx, &net_tx, miner, backend)
    });

    let mut driver = SwarmDriver::new(swarm, topics, Arc::clone(&shared));
    let mut ban_check = tokio::time::interval(BAN_CHECK);
    tokio::pin!(shutdown);
    let mut net_rx: UnboundedReceiver<Output> = net_rx;
    let result = loop {
        tokio::select! {
            ev = driver.swarm.select_next_some() => driver.on_swarm_event(ev),
            Some(o) = net_rx.recv() => driver.execute(o),
            _ = ban_check.tick() => driver.lift_bans(crate::clock::now_ms()),
            r = &mut core_task => {
                break match r {
                    Ok(r) => r,
                    Err(e) => Err(NodeError::Io(format!("core thread failed: {e}"))),
                };
            }
            () = &mut shutdown => {
                let _ = cmd_tx.send(CoreMsg::Stop);
                let _ = (&mut core_task).await;
                break Ok(());
            }
            () = shared.stop.notified() => {
                tracing::info!("stop requested over JSON-RPC");
                let _ = cmd_tx.send(CoreMsg::Stop);
                let _ = (&mut core_task).await;
                break Ok(());
            }
        }
    };
    tracing::info!("shutting down");
    api_task.abort();
    let _ = std::fs::remove_file(&cookie);
    if let Some(t) = stratum_task {
        t.abort();
    }
    if let Some(t) = rpc_task {
        t.abort();
        if config.rpc.as_ref().is_some_and(|r| r.user.is_none()) {
            let _ = std::fs::remove_file(&rpc_cookie);
        }
    }
    result
}

/// The core thread's outbox: mining jobs go to the miner at once, events
/// to metrics, everything else to the swarm task.
struct DriverOutbox<'a> {
    net: &'a UnboundedSender<Output>,
    miner: Option<&'a Miner>,
    metrics: &'a Metrics,
    events: &'a tokio::sync::broadcast::Sender<NodeEvent>,
    /// The answer to the last [`Input::SubmitTx`].
    tx_result: Option<Result<crate::consensus::Txid, crate::protocol::TxError>>,
}

impl Outbox for DriverOutbox<'_> {
    fn push(&mut self, output: Output) {
        match output {
            Output::MiningJob(job) => {
                if let Some(m) = self.miner {
                    match job {
                        Some(t) => {
                            m.set_job(t);
                        }
                        None => m.pause(),
                    }
                }
            }
            Output::TxResult(r) => self.tx_result = Some(r),
            Output::Event(e) => {
                if let NodeEvent::Block {
                    delay_secs: Some(d),
                    ..
                } = e
                {
                    self.metrics.propagation.observe(d);
                }
                // No subscriber is not an error.
                let _ = self.events.send(e);
            }
            other => {
                let _ = self.net.send(other);
            }
        }
    }
}

fn core_loop(
    shared: &Shared,
    rx: &Receiver<CoreMsg>,
    net: &UnboundedSender<Output>,
    miner: Option<Miner>,
    backend: crate::miner::Backend,
) -> Result<(), NodeError> {
    let mut out = DriverOutbox {
        net,
        miner: miner.as_ref(),
        metrics: &shared.metrics,
        events: &shared.events,
        tx_result: None,
    };
    if let Err(e) = shared.core().handle(now_ms(), Input::Start, &mut out) {
        return Err(e.into());
    }
    let mut gauges = GaugeState::default();
    gauges.update(shared);
    // The gauges sample once a second; the core is ticked at the deadline
    // it asks for (never more often than every 10 ms).
    let mut next_sample = Instant::now() + Duration::from_secs(1);
    let result = loop {
        let deadline = shared.core().next_deadline();
        let until_core = deadline.map_or(Duration::MAX, |d| {
            Duration::from_millis(d.saturating_sub(now_ms())).max(Duration::from_millis(10))
        });
        let wait = next_sample
            .saturating_duration_since(Instant::now())
            .min(until_core);
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| now_ms() >= d) {
                    if let Err(e) = shared.core().handle(now_ms(), Input::Tick, &mut out) {
                        break Err(e.into());
                    }
                }
                if Instant::now() >= next_sample {
                    next_sample += Duration::from_secs(1);
                    gauges.sample_hashrate(shared, miner.as_ref());
                    gauges.update(shared);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        match msg {
            CoreMsg::Input(i) => {
                let gated = super::gate::cost(&i);
                let r = shared.core().handle(now_ms(), i, &mut out);
                if let Some((_, bytes)) = gated {
                    shared.gate.release(bytes);
                }
                if let Err(e) = r {
                    break Err(e.into());
                }
            }
            CoreMsg::Barrier(reply) => {
                let _ = reply.send(());
            }
            CoreMsg::SubmitTx(tx, reply) => {
                out.tx_result = None;
                if let Err(e) = shared
                    .core()
                    .handle(now_ms(), Input::SubmitTx(tx), &mut out)
                {
                    break Err(e.into());
                }
                let r = out
                    .tx_result
                    .take()
                    .unwrap_or(Err(crate::protocol::TxError::Empty));
                let _ = reply.send(r);
            }
            CoreMsg::Generate(n, miner_id, reply) => {
                let r = generate(shared, n, miner_id.as_deref(), backend, &mut out);
                let stop = matches!(&r, Err(GenerateError::Store(_)));
                let _ = reply.send(r);
                if stop {
                    break Err(NodeError::Io("storage failure during generate".into()));
                }
            }
            CoreMsg::Stop => break Ok(()),
        }
        gauges.update(shared);
    };
    if let Some(m) = miner {
        m.shutdown();
    }
    result
}

/// Why `POST /generate` mined no block.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Only regtest's proof-of-work limit makes blocks this cheap.
    #[error("generate is for regtest only")]
    NotRegtest,
    /// The whole 32-bit nonce range missed the target.
    #[error("no nonce found")]
    NoNonce,
    /// The template's bits decode to no target.
    #[error("bad bits: {0}")]
    Bits(#[from] crate::consensus::CompactError),
    /// The chain store failed while storing the block.
    #[error("storage failure: {0}")]
    Store(#[from] crate::protocol::CoreError),
    /// The core refused the block (the log says why).
    #[error("own block {0} was not stored (see the log)")]
    Rejected(BlockHash),
}

/// Regtest `generate`: mines `n` blocks on the tip now, on the core
/// thread (regtest blocks take a few hashes each). The swarm keeps
/// running meanwhile.
fn generate(
    shared: &Shared,
    n: u32,
    miner_id: Option<&str>,
    backend: crate::miner::Backend,
    out: &mut DriverOutbox<'_>,
) -> Result<Vec<BlockHash>, GenerateError> {
    if shared.params.network != Network::Regtest {
        return Err(GenerateError::NotRegtest);
    }
    let mut hashes = Vec::with_capacity(n as usize);
    for i in 0..n {
        // The strategy's template: a `/generate`d block is the miner's
        // find like any other (a selfish node keeps it private).
        let mut template = shared.core().mining_template(now_ms());
        if let Some(id) = miner_id {
            // Core's generatetoaddress pays the address; powchain's coinbase
            // names the miner instead (at most the coinbase's limit).
            template.miner_id = id
                .chars()
                .take(crate::consensus::block::Coinbase::MAX_MINER_ID)
                .collect();
        }
        let target = Target::from_compact(template.bits)?;
        let now = now_ms();
        let (mut header, coinbase) =
            assemble_at(&template, u64::from(i), crate::clock::unix_secs(now));
        let progress = std::sync::atomic::AtomicU64::new(0);
        let r = search_header(backend, &header, target, 0, 1, &progress);
        let (nonce, _) = r.solution.ok_or(GenerateError::NoNonce)?;
        header.nonce = nonce;
        let mut txdata = vec![coinbase];
        txdata.extend(template.transactions);
        let block = Block { header, txdata };
        let hash = block.block_hash();
        let mut core = shared.core();
        core.handle(now, Input::Mined(block), out)?;
        if !core.chain().contains(&hash) {
            return Err(GenerateError::Rejected(hash));
        }
        hashes.push(hash);
    }
    Ok(hashes)
}

/// Copies the core's counters into Prometheus.
#[derive(Default)]
struct GaugeState {
    last: crate::protocol::CoreStats,
    hashes: (u64, Option<Instant>),
}

impl GaugeState {
    fn update(&mut self, shared: &Shared) {
        let m = &shared.metrics;
        let core = shared.core();
        let chain = core.chain();
        m.height.set(i64::from(chain.height()));
        m.chainwork.set(chain.chainwork().as_f64());
        m.orphans.set(chain.orphans().len() as i64);
        m.stale.set(chain.stale_count() as i64);
        m.reorgs.set(chain.reorg_count() as i64);
        m.peers.set(core.peers().len() as i64);
        let s = core.stats();
        m.blocks_received
            .inc_by(s.blocks_received - self.last.blocks_received);
        m.blocks_relayed
            .inc_by(s.blocks_relayed - self.last.blocks_relayed);
        m.blocks_rejected
            .inc_by(s.blocks_rejected - self.last.blocks_rejected);
        m.blocks_mined
            .inc_by(s.blocks_mined - self.last.blocks_mined);
        m.requests_deferred
            .inc_by(s.requests_deferred - self.last.requests_deferred);
        self.last = s;
    }

    fn sample_hashrate(&mut self, shared: &Shared, miner: Option<&Miner>) {
        let Some(miner) = miner else { return };
        let h1 = miner.hashes();
        let now = Instant::now();
        if let (h0, Some(t0)) = self.hashes {
            let dt = now.duration_since(t0).as_secs_f64();
            if dt > 0.0 {
                let rate = (h1 - h0) as f64 / dt;
                shared.info.lock().expect("info lock").hashrate = rate;
                shared.metrics.hashrate.set(rate);
            }
        }
        self.hashes = (h1, Some(now));
    }
}
