//! A Stratum v1 server (SPEC "Stratum v1"), so the field's mining programs
//! (cpuminer, cgminer, BFGMiner, ASIC firmware) mine on a powchain node
//! unchanged: newline-delimited JSON-RPC over TCP.
//!
//! - [`job`]: a template cut into `mining.notify`'s fields, and the header
//!   a `mining.submit` describes.
//! - [`difficulty`]: share targets and the variable difficulty.
//! - [`request`]: a request line and `mining.submit` decoded, and the
//!   reasons a request is refused ([`Reject`]).
//!
//! One task makes templates (on every new tip of the node's strategy, and
//! every [`REFRESH`] so `ntime` and the transactions stay fresh) and
//! publishes them on a `watch` channel; each connection has a task that
//! turns them into its own jobs (its extranonce1, its worker's coinbase,
//! its difficulty) and judges its shares. A share that meets the block
//! target is a block: it enters the core as `Input::Mined`, as the node's
//! own miner's blocks do (through the strategy).
//!
//! Bounds: [`MAX_CLIENTS`] connections, [`MAX_LINE`] bytes a line,
//! [`MAX_BAD_LINES`] lines that are not requests, [`AUTHORIZE_WITHIN`] to
//! authorize and [`IDLE`] between two lines, [`WRITE_TIMEOUT`] for a
//! client that does not read; [`MAX_JOBS`] jobs and
//! [`MAX_SHARES_PER_JOB`] shares remembered per connection.

pub mod difficulty;
pub mod job;
pub mod request;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::config::StratumConfig;
use crate::node::{CoreMsg, NodeError, Shared};
use difficulty::{max_difficulty, meets, Difficulty};
use job::{Job, Template, EXTRANONCE2_LEN};
pub use request::{parse_request, parse_submit, Reject, Request, Submit};
use request::{Refusal, SUBMIT_SHAPE};

/// Most simultaneous connections; one more gets an error line and is closed.
pub const MAX_CLIENTS: usize = 256;
/// Longest request line, bytes (a `mining.submit` is about 150); a longer
/// one gets an error and the connection is closed.
pub const MAX_LINE: usize = 8 * 1024;
/// Lines that are not JSON-RPC requests before the connection is closed.
pub const MAX_BAD_LINES: u32 = 16;
/// A connection that has not authorized a worker by then is closed.
pub const AUTHORIZE_WITHIN: Duration = Duration::from_secs(60);
/// A connection silent this long is closed.
pub const IDLE: Duration = Duration::from_secs(600);
/// A client that does not read its jobs within this is closed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A new job at least this often, so `ntime` stays fresh (SPEC: 30 s).
pub const REFRESH: Duration = Duration::from_secs(30);
/// Jobs a connection keeps (shares for older ones are stale).
pub const MAX_JOBS: usize = 8;
/// Shares remembered per job for the duplicate check; one more is refused
/// (code 20) until the next job.
pub const MAX_SHARES_PER_JOB: usize = 65_536;
/// Window of the hashrate estimate.
pub const ESTIMATE_WINDOW: Duration = Duration::from_secs(300);

/// What every connection shares.
struct Hub {
    shared: Arc<Shared>,
    config: StratumConfig,
    next_extranonce1: AtomicU32,
    next_job: AtomicU64,
    /// Accepted shares' difficulties in the last [`ESTIMATE_WINDOW`].
    accepted: Mutex<VecDeque<(Instant, f64)>>,
    started: Instant,
}

impl Hub {
    /// Records an accepted share and refreshes the estimate.
    fn record(&self, d: f64) {
        let mut a = self.accepted.lock().expect("estimate lock");
        a.push_back((Instant::now(), d));
        drop(a);
        self.refresh_estimate();
    }

    /// The workers' hashrate estimated from accepted share difficulty:
    /// `Σ D · 2^32` over the window, H/s (pools' estimate; the node's own
    /// miner keeps counting the hashes it does).
    fn refresh_estimate(&self) {
        let now = Instant::now();
        let mut a = self.accepted.lock().expect("estimate lock");
        while a
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > ESTIMATE_WINDOW)
        {
            a.pop_front();
        }
        let sum: f64 = a.iter().map(|(_, d)| d).sum();
        drop(a);
        let window = now
            .duration_since(self.started)
            .min(ESTIMATE_WINDOW)
            .as_secs_f64()
            .max(1.0);
        self.shared
            .metrics
            .stratum
            .hashrate_estimate
            .set(sum * 4_294_967_296.0 / window);
    }
}

/// Binds `config.addr`, records the bound address in `status.stratum`,
/// announces it on stderr (`powchain: Stratum on ADDR`) and spawns
/// [`serve`]; the task runs until aborted.
///
/// # Errors
/// [`NodeError::Api`] when the address cannot be bound.
pub async fn start(
    config: &StratumConfig,
    shared: &Arc<Shared>,
) -> Result<tokio::task::JoinHandle<()>, NodeError> {
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| NodeError::Api(format!("bind Stratum {}: {e}", config.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Api(e.to_string()))?;
    shared.info.lock().expect("info lock").stratum = Some(addr.to_string());
    tracing::info!(stratum = %addr, difficulty = ?config.difficulty, "Stratum listening");
    eprintln!("powchain: Stratum on {addr}");
    Ok(tokio::spawn(serve(
        listener,
        Arc::clone(shared),
        config.clone(),
    )))
}

/// Serves Stratum v1 on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, config: StratumConfig) {
    let hub = Arc::new(Hub {
        shared,
        config,
        next_extranonce1: AtomicU32::new(rand::random()),
        next_job: AtomicU64::new(1),
        accepted: Mutex::new(VecDeque::new()),
        started: Instant::now(),
    });
    let (tx, rx) = watch::channel(None);
    tokio::spawn(make_templates(Arc::clone(&hub), tx));
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("stratum accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => {
                let hub = Arc::clone(&hub);
                let rx = rx.clone();
                tokio::spawn(async move {
                    connection(&hub, stream, peer, rx).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::debug!(%peer, "stratum: too many clients");
                tokio::spawn(refuse(stream));
            }
        }
    }
}

async fn refuse(mut stream: TcpStream) {
    let line = format!(
        "{}\n",
        json!({"id": null, "result": null, "error": [20, "too many Stratum clients", null]})
    );
    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(line.as_bytes())).await;
}

/// Makes a template on every new tip (or bits) of the node's strategy and
/// every [`REFRESH`]; keeps the hashrate estimate fresh.
async fn make_templates(hub: Arc<Hub>, tx: watch::Sender<Option<Arc<Template>>>) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let mut events = hub.shared.events.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut made = Instant::now();
    loop {
        tokio::select! {
            r = events.recv() => {
                if matches!(r, Err(RecvError::Closed)) {
                    return;
                }
                // Coalesce a burst (a sync batch) into one look.
                while !matches!(events.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
            }
            _ = tick.tick() => hub.refresh_estimate(),
        }
        let now = crate::clock::now_ms();
        let block = hub.shared.core().mining_template(now);
        let current = tx.borrow().clone();
        let clean = current.as_ref().is_none_or(|t| {
            t.block.prev_blockhash != block.prev_blockhash || t.block.bits != block.bits
        });
        if !clean && made.elapsed() < REFRESH {
            continue;
        }
        let seq = current.as_ref().map_or(0, |t| t.seq + 1);
        match Template::new(seq, block, crate::clock::unix_secs(now), clean) {
            Ok(t) => {
                made = Instant::now();
                tx.send_replace(Some(Arc::new(t)));
            }
            Err(e) => tracing::warn!("stratum: no template: {e}"),
        }
    }
}

/// A line from the client.
enum Line {
    Text(String),
    TooLong,
}

/// Reads lines of at most [`MAX_LINE`] bytes (allocating no more).
async fn read_lines(read: tokio::net::tcp::OwnedReadHalf, tx: mpsc::Sender<Line>) {
    let mut reader = BufReader::with_capacity(4096, read);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let limit = MAX_LINE as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if buf.len() > MAX_LINE {
                    let _ = tx.send(Line::TooLong).await;
                    // Drain what the client is still sending (at most
                    // 64 KiB, 1 s), so closing does not reset the
                    // connection before it reads the error.
                    let mut scratch = [0u8; 4096];
                    let mut left = 64 * 1024usize;
                    let drain = async {
                        while left > 0 {
                            match reader.read(&mut scratch).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => left = left.saturating_sub(n),
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
                    return;
                }
                let text = String::from_utf8_lossy(&buf).trim().to_string();
                if !text.is_empty() && tx.send(Line::Text(text)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One job with the shares it received.
struct LiveJob {
    job: Job,
    shares: HashSet<[u8; 32]>,
}

/// A connection's state.
struct Conn {
    peer: SocketAddr,
    extranonce1: [u8; 4],
    subscribed: bool,
    /// The first authorized worker: the miner id in this connection's
    /// coinbases (a later `mining.authorize` adds a name that may submit,
    /// but the coinbases keep the first).
    miner_id: Option<String>,
    workers: HashSet<String>,
    difficulty: Difficulty,
    /// Difficulty last sent in `mining.set_difficulty`.
    sent_difficulty: Option<f64>,
    jobs: VecDeque<LiveJob>,
    /// Smallest job id this connection was given.
    first_job: Option<u64>,
    template: Option<Arc<Template>>,
    bad_lines: u32,
    /// Parents of the blocks this connection found lately: a share on
    /// one of them after its block is stale, though the new job may not
    /// have reached the miner yet.
    built_on: VecDeque<crate::consensus::BlockHash>,
}

/// Most worker names one connection may authorize.
const MAX_WORKERS: usize = 16;

impl Conn {
    fn reply(id: &Value, result: Value) -> Value {
        json!({"id": id, "result": result, "error": null})
    }

    fn error(id: &Value, r: &Refusal) -> Value {
        json!({"id": id, "result": null, "error": [r.0.code(), r.1, null]})
    }

    fn max_difficulty(&self) -> f64 {
        self.template
            .as_ref()
            .map_or(f64::MAX, |t| max_difficulty(&t.target))
    }

    /// A new job for the current template: `mining.set_difficulty` when the
    /// difficulty changed, then `mining.notify`.
    fn push_job(&mut self, hub: &Hub, clean: bool, out: &mut Vec<Value>) {
        let (Some(t), Some(miner_id)) = (self.template.clone(), self.miner_id.clone()) else {
            return;
        };
        let max = max_difficulty(&t.target);
        self.difficulty.cap(max);
        let d = self.difficulty.current();
        if self.sent_difficulty != Some(d) {
            out.push(json!({"id": null, "method": "mining.set_difficulty", "params": [d]}));
            self.sent_difficulty = Some(d);
        }
        let seq = hub.next_job.fetch_add(1, Ordering::Relaxed);
        self.first_job.get_or_insert(seq);
        let (coinb1, coinb2) = t.coinbase_parts(&miner_id);
        let job = Job {
            id: format!("{seq:x}"),
            template: t,
            difficulty: d,
            coinb1,
            coinb2,
        };
        out.push(
            json!({"id": null, "method": "mining.notify", "params": job.notify_params(clean)}),
        );
        if clean {
            self.jobs.clear();
        }
        self.jobs.push_back(LiveJob {
            job,
            shares: HashSet::new(),
        });
        while self.jobs.len() > MAX_JOBS {
            self.jobs.pop_front();
        }
    }

    /// Answers one line; server messages that follow go in `out` after the
    /// reply.
    fn handle(&mut self, hub: &Hub, line: &str, out: &mut Vec<Value>) {
        let req = match parse_request(line) {
            Ok(r) => r,
            Err((id, why)) => {
                self.bad_lines += 1;
                out.push(Conn::error(&id, &Refusal::new(Reject::Other, why)));
                return;
            }
        };
        let (id, method, params) = (&req.id, req.method.as_str(), req.params.as_slice());
        let answer = match method {
            "mining.subscribe" => {
                self.subscribed = true;
                let sub = hex::encode(self.extranonce1);
                Ok(json!([
                    [["mining.set_difficulty", sub], ["mining.notify", sub]],
                    hex::encode(self.extranonce1),
                    EXTRANONCE2_LEN
                ]))
            }
            "mining.authorize" => self.authorize(params),
            "mining.extranonce.subscribe" | "mining.suggest_difficulty" => Ok(json!(true)),
            // BIP 310: no version rolling here.
            "mining.configure" => Ok(json!({"version-rolling": false})),
            "mining.ping" => Ok(json!("pong")),
            "client.get_version" => Ok(json!(concat!("powchain/", env!("CARGO_PKG_VERSION")))),
            "mining.submit" => {
                let r = self.submit(hub, params);
                let metrics = &hub.shared.metrics.stratum;
                match &r {
                    Ok(_) => metrics.shares_accepted.inc(),
                    Err(e) => metrics.rejected(e.0).inc(),
                };
                r.map(|()| json!(true))
            }
            _ => Err(Refusal::new(
                Reject::Other,
                format!(
                    "Unknown method '{}'",
                    method.chars().take(40).collect::<String>()
                ),
            )),
        };
        let first_job = method == "mining.authorize" && answer.is_ok() && self.jobs.is_empty();
        out.push(match &answer {
            Ok(v) => Conn::reply(id, v.clone()),
            Err(e) => Conn::error(id, e),
        });
        if first_job {
            self.push_job(hub, true, out);
        }
    }

    fn authorize(&mut self, params: &[Value]) -> Result<Value, Refusal> {
        if !self.subscribed {
            return Err(Refusal::new(Reject::NotSubscribed, "Not subscribed"));
        }
        let name = params
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::new(Reject::Other, "authorize: [worker, password] expected"))?;
        let max = crate::consensus::block::Coinbase::MAX_MINER_ID;
        if name.is_empty() || name.len() > max {
            return Err(Refusal::new(
                Reject::Other,
                format!("worker name must be 1 to {max} bytes"),
            ));
        }
        if !self.workers.contains(name) {
            if self.workers.len() >= MAX_WORKERS {
                return Err(Refusal::new(
                    Reject::Other,
                    format!("at most {MAX_WORKERS} workers a connection"),
                ));
            }
            self.workers.insert(name.to_string());
        }
        self.miner_id.get_or_insert_with(|| name.to_string());
        Ok(json!(true))
    }

    /// Whether the core still mines on `t`'s parent (it drops a block on
    /// any other): the strategy's template is on it.
    fn tip_is_current(hub: &Hub, t: &Template) -> bool {
        hub.shared
            .core()
            .mining_template(crate::clock::now_ms())
            .prev_blockhash
            == t.block.prev_blockhash
    }

    /// Judges `mining.submit [worker, job_id, extranonce2, ntime, nonce]`.
    fn submit(&mut self, hub: &Hub, params: &[Value]) -> Result<(), Refusal> {
        if !self.subscribed {
            return Err(Refusal::new(Reject::NotSubscribed, "Not subscribed"));
        }
        let bad = |what: &str| Refusal::new(Reject::Other, what);
        let worker = params
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| bad(SUBMIT_SHAPE))?;
        if !self.workers.contains(worker) {
            return Err(Refusal::new(Reject::Unauthorized, "Unauthorized worker"));
        }
        let Submit {
            worker,
            job_id,
            extranonce2,
            ntime,
            nonce,
        } = parse_submit(params).map_err(bad)?;
        let (worker, job_id) = (worker.as_str(), job_id.as_str());
        let Some(live) = self.jobs.iter_mut().find(|j| j.job.id == job_id) else {
            let issued = u64::from_str_radix(job_id, 16).ok().is_some_and(|n| {
                self.first_job.is_some_and(|first| n >= first)
                    && n < hub.next_job.load(Ordering::Relaxed)
            });
            return Err(if issued {
                Refusal::new(Reject::Stale, "Stale job")
            } else {
                Refusal::new(Reject::UnknownJob, "Job not found")
            });
        };
        let t = Arc::clone(&live.job.template);
        if self.built_on.contains(&t.block.prev_blockhash) {
            return Err(Refusal::new(
                Reject::Stale,
                "Stale: a block of yours is on this job's tip",
            ));
        }
        let now = crate::clock::unix_secs(crate::clock::now_ms());
        let latest = now + hub.shared.params.max_future_block_time_secs;
        if ntime < t.block.min_time || u64::from(ntime) > latest {
            return Err(bad("ntime out of range"));
        }
        let (header, coinbase) = live.job.header(self.extranonce1, extranonce2, ntime, nonce);
        let hash = header.block_hash();
        if live.shares.contains(&hash.0) {
            return Err(Refusal::new(Reject::Duplicate, "Duplicate share"));
        }
        if !meets(&hash, live.job.difficulty, &t.target) {
            return Err(Refusal::new(Reject::LowDifficulty, "Low difficulty share"));
        }
        if live.shares.len() >= MAX_SHARES_PER_JOB {
            return Err(bad("too many shares for one job; wait for the next"));
        }
        let block = t.target.is_met_by(&hash);
        if block && !Conn::tip_is_current(hub, &t) {
            // The core takes a block only on its mining tip (the node's
            // own miner's blocks alike): this one would be dropped.
            return Err(Refusal::new(Reject::Stale, "Stale: the tip moved"));
        }
        live.shares.insert(hash.0);
        hub.record(live.job.difficulty);
        self.difficulty.on_share();
        if block {
            let block = live.job.block(header, coinbase);
            tracing::info!(%hash, height = t.block.height, worker, peer = %self.peer, "stratum: block found");
            self.built_on.push_back(t.block.prev_blockhash);
            if self.built_on.len() > MAX_JOBS {
                self.built_on.pop_front();
            }
            let shared = Arc::clone(&hub.shared);
            tokio::spawn(async move { submit_block(&shared, block).await });
        }
        Ok(())
    }
}

/// Hands a Stratum block to the core as the node's own mined blocks go
/// (`Input::Mined`, through the strategy) and counts it once the core
/// stored it.
async fn submit_block(shared: &Shared, block: crate::consensus::Block) {
    let hash = block.block_hash();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mined = CoreMsg::Input(crate::protocol::Input::Mined(block));
    if shared.commands.send(mined).is_err()
        || shared.commands.send(CoreMsg::Barrier(tx)).is_err()
        || rx.await.is_err()
    {
        return;
    }
    if shared.core().chain().contains(&hash) {
        shared.metrics.stratum.blocks.inc();
    } else {
        tracing::info!(%hash, "stratum: the core did not take the block (its tip moved)");
    }
}

/// Serves one connection until it closes, breaks a bound or goes idle.
async fn connection(
    hub: &Hub,
    stream: TcpStream,
    peer: SocketAddr,
    mut templates: watch::Receiver<Option<Arc<Template>>>,
) {
    let metrics = &hub.shared.metrics.stratum;
    metrics.clients.inc();
    let (read, mut write) = stream.into_split();
    let (line_tx, mut lines) = mpsc::channel(8);
    let mut reader = tokio::spawn(read_lines(read, line_tx));
    let now = Instant::now();
    let mut conn = Conn {
        peer,
        extranonce1: hub
            .next_extranonce1
            .fetch_add(1, Ordering::Relaxed)
            .to_be_bytes(),
        subscribed: false,
        miner_id: None,
        workers: HashSet::new(),
        difficulty: Difficulty::new(
            hub.config.difficulty,
            hub.config.shares_per_minute,
            f64::MAX,
            now,
        ),
        sent_difficulty: None,
        jobs: VecDeque::new(),
        first_job: None,
        template: templates.borrow_and_update().clone(),
        bad_lines: 0,
        built_on: VecDeque::new(),
    };
    tracing::debug!(%peer, "stratum: client connected");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_line = Instant::now();
    let why = loop {
        let mut out = Vec::new();
        tokio::select! {
            line = lines.recv() => match line {
                None => break "closed",
                Some(Line::TooLong) => {
                    out.push(Conn::error(&Value::Null, &Refusal::new(Reject::Other, format!("line longer than {MAX_LINE} bytes"))));
                    let _ = write_all(&mut write, &out).await;
                    let _ = write.shutdown().await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), &mut reader).await;
                    break "line too long";
                }
                Some(Line::Text(text)) => {
                    last_line = Instant::now();
                    conn.handle(hub, &text, &mut out);
                }
            },
            r = templates.changed(), if conn.miner_id.is_some() => {
                if r.is_err() {
                    break "node stopping";
                }
                conn.template = templates.borrow_and_update().clone();
                let clean = conn.template.as_ref().is_some_and(|t| t.clean);
                conn.push_job(hub, clean, &mut out);
            }
            _ = tick.tick() => {
                if conn.miner_id.is_none() && now.elapsed() > AUTHORIZE_WITHIN {
                    break "no worker authorized";
                }
                if last_line.elapsed() > IDLE {
                    break "idle";
                }
                let max = conn.max_difficulty();
                if conn.miner_id.is_some()
                    && conn.difficulty.retarget(Instant::now(), max).is_some()
                {
                    conn.push_job(hub, false, &mut out);
                }
            }
        }
        if !out.is_empty() && write_all(&mut write, &out).await.is_err() {
            break "write failed or timed out";
        }
        if conn.bad_lines >= MAX_BAD_LINES {
            break "too many bad lines";
        }
    };
    tracing::debug!(%peer, why, "stratum: client gone");
    reader.abort();
    metrics.clients.dec();
}

async fn write_all(w: &mut tokio::net::tcp::OwnedWriteHalf, msgs: &[Value]) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    for m in msgs {
        bytes.extend_from_slice(m.to_string().as_bytes());
        bytes.push(b'\n');
    }
    match tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
