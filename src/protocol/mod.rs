//! The node's protocol as a sans-io state machine.
//!
//! [`NodeCore`] owns the chain store, the orphan pool (inside the chain
//! store), the mempool, the peer book and the mining template state. It is
//! driven only by [`Input`]s, each with an explicit time (Unix ms), and it
//! answers by pushing [`Output`]s into an [`Outbox`]. It never reads a
//! clock, opens a socket or spawns a task, so the same code runs under
//! three drivers:
//! - `node::runtime`: the async runtime, libp2p, redb and the HTTP API
//!   (`powchain node`);
//! - [`crate::sim`]: an event queue in virtual time with simulated links
//!   (`powchain sim`, and the in-memory protocol tests);
//! - unit tests, which call [`NodeCore::handle`] directly.
//!
//! The block write stays synchronous inside the chain store (a block is
//! durable before it is accepted); the simulator uses the in-memory
//! [`crate::chain::MemStore`].
//!
//! Outputs are pushed as they are decided, not returned at the end: a
//! driver whose outbox forwards at once lets gossip relay a block (the
//! `Verdict`) while the core is still writing it to disk, as BIP152's
//! high-bandwidth mode relays before full validation completes.
//!
//! Shape after nakamoto's `p2p` crate (a protocol driven by received
//! messages and ticks, with an outbox of I/O actions) and the
//! deterministic-simulation style of FoundationDB and TigerBeetle.

pub mod budget;
pub mod core;
pub mod mempool;
pub mod messages;
pub mod peers;
pub mod strategy;

use libp2p::{Multiaddr, PeerId};

use crate::chain::ReorgEvent;
use crate::consensus::BlockTemplate;
use crate::consensus::{Block, BlockHash, Txid};

pub use self::core::{CoreConfig, CoreError, CoreStats, NodeCore, SyncState, MAX_DISCOVERED_PEERS};
pub use mempool::TxError;
pub use messages::{Handshake, SyncRequest, SyncResponse};
pub use peers::{peer_action, Link, Offence, PeerAction, PeerBook, ProtocolFault};
pub use strategy::{PublishReason, SpamKind, Strategy, StrategySpec, TraitorEvent};

/// Gossip topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `/powchain/<genesis>/blocks/1`.
    Blocks,
    /// `/powchain/<genesis>/tx/1`.
    Transactions,
    /// Any other topic (refused).
    Other,
}

/// A gossip message's id: SHA-256 of its whole data (SPEC: content
/// addressed, so a copy with a garbage body has another id than the
/// honest block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GossipId(pub [u8; 32]);

impl GossipId {
    /// The id of `data`.
    #[must_use]
    pub fn of(data: &[u8]) -> GossipId {
        use sha2::Digest;
        GossipId(sha2::Sha256::digest(data).into())
    }
}

/// The core's own id of a request it sent; the driver maps it to the
/// transport's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The driver's id of a request received, echoed in the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundId(pub u64);

/// What gossip should do with a received message (gossipsub's
/// `MessageAcceptance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Not forwarded, no fault (duplicate, orphan, not yet valid).
    Ignore,
    /// Invalid: not forwarded; gossipsub's own score drops too.
    Reject,
}

/// Everything that can happen to a node.
#[derive(Clone, Debug)]
pub enum Input {
    /// The driver starts the node: configured peers are dialled and the
    /// miner gets its first job.
    Start,
    /// A connection to `peer` is up (its first one).
    PeerConnected {
        /// the peer
        peer: PeerId,
        /// who dialled
        link: Link,
        /// the address dialled (outbound)
        address: Option<Multiaddr>,
    },
    /// The last connection to `peer` closed.
    PeerDisconnected {
        /// the peer
        peer: PeerId,
    },
    /// A gossip message, delivered by `peer` (gossipsub's propagation
    /// source: the neighbour that forwarded it).
    Gossip {
        /// the neighbour
        peer: PeerId,
        /// its id ([`GossipId::of`] its data)
        id: GossipId,
        /// its topic
        topic: Topic,
        /// its payload
        data: Vec<u8>,
    },
    /// A sync request from `peer`; answer with [`Output::Respond`].
    Request {
        /// the peer
        peer: PeerId,
        /// echo in the response
        id: InboundId,
        /// the request
        request: SyncRequest,
    },
    /// The answer to a request this node sent.
    Response {
        /// the peer
        peer: PeerId,
        /// the request it answers
        id: RequestId,
        /// the answer
        response: SyncResponse,
    },
    /// A request this node sent failed (timeout, closed stream, bad frame).
    RequestFailed {
        /// the peer
        peer: PeerId,
        /// the request
        id: RequestId,
        /// the transport's words
        error: String,
        /// whether the peer sent bytes that do not decode (its fault)
        malformed: bool,
    },
    /// A block this node's miner found (or `/generate`, or the
    /// simulator's miner): the strategy decides what becomes of it.
    Mined(Block),
    /// A transaction from the operator (`POST /tx`); answered by
    /// [`Output::TxResult`].
    SubmitTx(Vec<u8>),
    /// An operator command (HTTP API).
    Command(Command),
    /// Time passes: timers run (dialling, handshakes, timeouts, expiry).
    Tick,
}

/// Operator commands.
#[derive(Clone, Debug)]
pub enum Command {
    /// Start or stop mining.
    SetMining(bool),
    /// Drop and refuse these peers (testnet partitions).
    Partition(Vec<PeerId>),
    /// Lift the partition.
    Heal,
    /// Add a peer to dial and keep dialled (as `--peer` does at start).
    AddPeer(Multiaddr),
}

/// What the node wants done.
#[derive(Clone, Debug)]
pub enum Output {
    /// Publish a message this node authored.
    Publish {
        /// topic
        topic: Topic,
        /// payload
        data: Vec<u8>,
    },
    /// The verdict on a received gossip message.
    Verdict {
        /// who delivered it
        peer: PeerId,
        /// the message
        id: GossipId,
        /// forward or not
        verdict: Verdict,
    },
    /// Send a sync request.
    SendRequest {
        /// to
        peer: PeerId,
        /// the core's id for it
        id: RequestId,
        /// the request
        request: SyncRequest,
    },
    /// Answer a request.
    Respond {
        /// to
        peer: PeerId,
        /// the request answered
        id: InboundId,
        /// the answer
        response: SyncResponse,
    },
    /// Dial an address.
    Dial(Multiaddr),
    /// Close every connection to a peer.
    Disconnect(PeerId),
    /// Refuse a peer until `until_ms` (Unix ms); the core also disconnects it.
    Ban {
        /// the peer
        peer: PeerId,
        /// until, Unix ms
        until_ms: u64,
    },
    /// Mine on this template now (`None`: stop mining).
    MiningJob(Option<BlockTemplate>),
    /// The answer to [`Input::SubmitTx`]: its txid, or why the mempool
    /// refused it.
    TxResult(Result<Txid, TxError>),
    /// Something subscribers (logs, metrics, `/events`) may want.
    Event(NodeEvent),
}

/// Where a block came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockSource {
    /// This node's miner.
    Mined,
    /// Gossip, delivered by this neighbour.
    Gossip(PeerId),
    /// A sync response from this peer.
    Sync(PeerId),
}

/// Events for subscribers.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A valid block was stored.
    Block {
        /// hash
        hash: BlockHash,
        /// height
        height: u32,
        /// where it came from
        source: BlockSource,
        /// on the best chain after this step
        active: bool,
        /// seconds from its header time to its arrival (gossip only)
        delay_secs: Option<f64>,
    },
    /// The best tip moved.
    Tip {
        /// new tip
        hash: BlockHash,
        /// its height
        height: u32,
    },
    /// A re-org.
    Reorg(ReorgEvent),
    /// A block went into the orphan pool.
    Orphan {
        /// the orphan
        hash: BlockHash,
        /// its claimed parent's missing root
        missing: Option<BlockHash>,
    },
    /// A block was refused.
    Rejected {
        /// the block, when it decoded
        hash: Option<BlockHash>,
        /// who sent it
        peer: Option<PeerId>,
        /// why
        reason: String,
    },
    /// A peer came or went.
    Peer {
        /// the peer
        peer: PeerId,
        /// connected (true) or gone
        connected: bool,
    },
    /// A peer was penalised.
    Penalised {
        /// the peer
        peer: PeerId,
        /// how much
        action: PeerAction,
        /// why
        reason: String,
        /// whether this banned it
        banned: bool,
    },
    /// What a traitor strategy did (never emitted by an honest node).
    Traitor(TraitorEvent),
}

/// Receives a core's outputs as they are decided.
pub trait Outbox {
    /// Takes one output.
    fn push(&mut self, output: Output);
}

impl Outbox for Vec<Output> {
    fn push(&mut self, output: Output) {
        Vec::push(self, output);
    }
}
