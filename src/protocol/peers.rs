//! The peer book: who is connected, what each peer claims about its chain,
//! the sync request in flight to each, and scores and bans.
//!
//! Misbehaviour is graded the way Lighthouse grades it
//! (`lighthouse_network::peer_manager::peerdb::score`): a
//! [`PeerAction`] says how much tolerance an offence deserves, the *low*
//! tolerance one being the most severe short of [`PeerAction::Fatal`].
//! Every offence the node can see — each [`ChainError`], each
//! [`ProtocolFault`], each [`TxError`] — maps to one action in
//! [`peer_action`], one exhaustive `match` with no catch-all arm, so a new
//! error variant does not compile until somebody decides what it costs.
//!
//! Scores decay towards zero with a half-life of [`HALF_LIFE`]; a
//! peer at or below [`BAN_THRESHOLD`] is banned for [`BAN`]. Time is
//! passed in (Unix ms), never read here.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use super::mempool::TxError;
use crate::chain::{ChainError, OrphanReject};
use crate::clock::{after, elapsed};
use crate::consensus::{BlockError, DecodeError, HeaderError};
use crate::protocol::budget::{
    ByteBucket, SERVED_BYTES_PER_SEC_PER_PEER, SERVED_BYTES_PER_SEC_TOTAL,
};

/// Score at or below which a peer is banned.
pub const BAN_THRESHOLD: f64 = -100.0;
/// Ban duration.
pub const BAN: Duration = Duration::from_secs(600);
/// Score half-life.
pub const HALF_LIFE: Duration = Duration::from_secs(300);
/// Sync responses in a row that bring nothing before a peer's claimed
/// chainwork is no longer believed (for this connection).
pub const MAX_FRUITLESS_SYNCS: u32 = 3;
/// How long a sync request may stay unanswered.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Scores kept for disconnected peers at most; the closest to zero go first.
pub const MAX_REMEMBERED_SCORES: usize = 10_000;

/// How much tolerance an offence deserves (Lighthouse's names). The
/// penalty of each is [`PeerAction::penalty`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAction {
    /// Provably malicious or useless at once (invalid proof of work, another
    /// network): banned at once.
    Fatal,
    /// Severe: a few ban the peer (an invalid block, a malformed message).
    LowToleranceError,
    /// Worth a warning: a dozen ban the peer (a sync that never delivers,
    /// an unsolicited response).
    MidToleranceError,
    /// Mild, may be honest: only a flood bans the peer (orphans, stale
    /// re-sends, timeouts).
    HighToleranceError,
}

impl PeerAction {
    /// Score change.
    #[must_use]
    pub fn penalty(self) -> f64 {
        match self {
            PeerAction::Fatal => BAN_THRESHOLD,
            PeerAction::LowToleranceError => -34.0,
            PeerAction::MidToleranceError => -10.0,
            PeerAction::HighToleranceError => -1.0,
        }
    }
}

/// Offences that are about the protocol rather than about a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolFault {
    /// A gossip block that is not a block.
    MalformedBlock(DecodeErrorKind),
    /// A sync batch that does not decode.
    MalformedBatch,
    /// A handshake of another network or genesis.
    WrongNetwork,
    /// A handshake of an unknown protocol version.
    UnknownVersion,
    /// A locator longer than [`super::messages::MAX_LOCATOR`].
    OversizedLocator,
    /// A response to a request this node did not send (or no longer waits for).
    UnsolicitedResponse,
    /// Sync responses that repeatedly brought nothing while the peer claims
    /// more chainwork.
    FruitlessSync,
    /// A sync request left unanswered for [`SYNC_TIMEOUT`].
    SyncTimeout,
    /// A gossip message on a topic this node does not serve.
    UnknownTopic,
    /// More requests than the per-peer rate allows.
    RequestFlood,
}

/// The class of a [`DecodeError`], enough to choose a peer action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Shorter than it claims.
    Truncated,
    /// Anything else: bad lengths, non-canonical sizes, trailing bytes.
    Malformed,
}

impl From<&DecodeError> for DecodeErrorKind {
    fn from(e: &DecodeError) -> Self {
        match e {
            DecodeError::Truncated { .. } => DecodeErrorKind::Truncated,
            DecodeError::Length { .. }
            | DecodeError::BadHex(_)
            | DecodeError::BadCompactSize(_)
            | DecodeError::TrailingBytes(_)
            | DecodeError::TooLarge { .. } => DecodeErrorKind::Malformed,
        }
    }
}

/// Anything a peer can do wrong, for [`peer_action`].
#[derive(Debug)]
pub enum Offence<'a> {
    /// A block the chain store refused.
    Chain(&'a ChainError),
    /// A protocol fault.
    Protocol(ProtocolFault),
    /// A gossip transaction the mempool refused.
    Tx(&'a TxError),
}

/// The one table: what each offence costs the peer that sent it; `None`
/// when the peer is not at fault (a storage failure is ours; a block
/// "too new" is a clock difference, not malice, as Core's `time-too-new`
/// is not a `BLOCK_CONSENSUS` failure).
#[must_use]
pub fn peer_action(offence: &Offence<'_>) -> Option<PeerAction> {
    match offence {
        Offence::Chain(e) => match e {
            ChainError::Invalid { source, .. } => block_error_action(source),
            // Building on a block we found invalid: the peer followed it.
            ChainError::InvalidAncestor { .. } => Some(PeerAction::LowToleranceError),
            // Re-sending what we already refused: may be a slow honest
            // peer that has not heard yet.
            ChainError::KnownInvalid(_) => Some(PeerAction::HighToleranceError),
            ChainError::OrphanRefused { reason, .. } => match reason {
                OrphanReject::Duplicate => None,
                // Over its own per-peer share: a flood.
                OrphanReject::PeerLimit => Some(PeerAction::MidToleranceError),
                OrphanReject::TooLarge => Some(PeerAction::HighToleranceError),
            },
            ChainError::Store(_) => None,
        },
        Offence::Protocol(f) => Some(match f {
            ProtocolFault::WrongNetwork | ProtocolFault::UnknownVersion => PeerAction::Fatal,
            ProtocolFault::MalformedBlock(_) | ProtocolFault::MalformedBatch => {
                PeerAction::LowToleranceError
            }
            ProtocolFault::OversizedLocator
            | ProtocolFault::UnsolicitedResponse
            | ProtocolFault::FruitlessSync
            | ProtocolFault::UnknownTopic
            | ProtocolFault::RequestFlood => PeerAction::MidToleranceError,
            ProtocolFault::SyncTimeout => PeerAction::HighToleranceError,
        }),
        Offence::Tx(e) => match e {
            // A full share is no fault of the relayer: an honest relayer
            // of someone else's flood reaches it too.
            TxError::Duplicate(_) | TxError::PeerLimit(_) => None,
            TxError::Empty | TxError::TooLarge { .. } | TxError::Coinbase => {
                Some(PeerAction::MidToleranceError)
            }
        },
    }
}

fn block_error_action(e: &BlockError) -> Option<PeerAction> {
    match e {
        BlockError::Header(h) => match h {
            // Free to make: no work behind it.
            HeaderError::HighHash { .. }
            | HeaderError::BadCompact(_)
            | HeaderError::TargetAboveLimit { .. } => Some(PeerAction::Fatal),
            // Not yet valid on our clock; it may be later (Core: not cached).
            HeaderError::TimeTooNew { .. } => None,
            HeaderError::BadDiffBits { .. }
            | HeaderError::TimeTooOld { .. }
            | HeaderError::TimeWarp { .. }
            | HeaderError::BadPrevBlock { .. } => Some(PeerAction::LowToleranceError),
        },
        BlockError::Decode(_)
        | BlockError::NoTransactions
        | BlockError::TooLarge { .. }
        | BlockError::BadMerkleRoot { .. }
        | BlockError::MutatedMerkle
        | BlockError::BadCoinbase(_)
        | BlockError::BadCoinbaseHeight { .. } => Some(PeerAction::LowToleranceError),
    }
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// The peer dialled this node.
    Inbound,
    /// This node dialled the peer.
    Outbound,
}

/// Sync requests a peer may send per second before it is penalised and
/// refused (each may cost up to
/// [`RESPONSE_BLOCK_BYTES`](crate::protocol::messages::RESPONSE_BLOCK_BYTES)
/// of reads).
pub const MAX_REQUESTS_PER_SEC: u32 = 10;

/// What this node knows of one connected peer's connection (what sync
/// knows of it is [`crate::protocol::SyncState`]).
#[derive(Clone, Debug)]
pub struct Peer {
    /// Who dialled.
    pub link: Link,
    /// The address dialled (outbound only).
    pub address: Option<Multiaddr>,
    /// Requests received in the current one-second window, and its start
    /// (Unix ms).
    requests_in_window: (u32, u64),
    /// Bytes of blocks this connection may still be served
    /// ([`SERVED_BYTES_PER_SEC_PER_PEER`]).
    served: ByteBucket,
}

impl Peer {
    fn new(link: Link, address: Option<Multiaddr>) -> Peer {
        Peer {
            link,
            address,
            requests_in_window: (0, 0),
            served: ByteBucket::new(SERVED_BYTES_PER_SEC_PER_PEER, 0),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Score {
    value: f64,
    updated_ms: u64,
}

/// Connected peers, scores and bans. Ordered maps: the protocol core must
/// behave the same on every run of the same inputs (the simulator's
/// determinism).
#[derive(Debug, Default)]
pub struct PeerBook {
    peers: BTreeMap<PeerId, Peer>,
    scores: HashMap<PeerId, Score>,
    banned_until_ms: HashMap<PeerId, u64>,
    /// Bytes of blocks the node may still serve to all peers together
    /// ([`SERVED_BYTES_PER_SEC_TOTAL`]); `None` until the first answer.
    served_total: Option<ByteBucket>,
}

/// What [`PeerBook::admit_request`] makes of one inbound request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Serve it.
    Admitted,
    /// The peer asked more than [`MAX_REQUESTS_PER_SEC`]: refuse, penalise.
    Flood,
    /// Not a connected peer of the book: refuse without serving.
    NotAPeer,
}

impl PeerBook {
    /// Records a new connection (or returns the existing entry).
    pub fn connect(&mut self, peer: PeerId, link: Link, address: Option<Multiaddr>) -> &mut Peer {
        let p = self
            .peers
            .entry(peer)
            .or_insert_with(|| Peer::new(link, address.clone()));
        if link == Link::Outbound {
            p.link = Link::Outbound;
            if address.is_some() {
                p.address = address;
            }
        }
        p
    }

    /// Forgets a connection (its score and ban stay).
    pub fn disconnect(&mut self, peer: &PeerId) -> Option<Peer> {
        self.peers.remove(peer)
    }

    /// A connected peer.
    #[must_use]
    pub fn get(&self, peer: &PeerId) -> Option<&Peer> {
        self.peers.get(peer)
    }

    /// A connected peer, mutably.
    pub fn get_mut(&mut self, peer: &PeerId) -> Option<&mut Peer> {
        self.peers.get_mut(peer)
    }

    /// Connected peers, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.iter()
    }

    /// Connected peers, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&PeerId, &mut Peer)> {
        self.peers.iter_mut()
    }

    /// Number of connected peers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is connected.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Inbound connections.
    #[must_use]
    pub fn inbound_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.link == Link::Inbound)
            .count()
    }

    /// Counts a sync request from `peer` at `now_ms` in its one-second
    /// window. A peer not in the book (banned, refused a slot, cut off by
    /// a partition, or already disconnected while its requests queued) is
    /// not served at all: before, its queued `GetBlocks` were each
    /// answered with up to 500 blocks (issue 22, item 3).
    pub fn admit_request(&mut self, peer: &PeerId, now_ms: u64) -> Admission {
        let Some(p) = self.peers.get_mut(peer) else {
            return Admission::NotAPeer;
        };
        let (n, start) = p.requests_in_window;
        p.requests_in_window = if now_ms >= start + 1000 {
            (1, now_ms)
        } else {
            (n + 1, start)
        };
        if p.requests_in_window.0 <= MAX_REQUESTS_PER_SEC {
            Admission::Admitted
        } else {
            Admission::Flood
        }
    }

    /// The most bytes of blocks an answer to `peer` may hold at `now_ms`:
    /// the smaller of its connection's and the node's allowance
    /// ([`crate::protocol::budget`]), so an answer's cost is bounded before
    /// it is read. `Err(ms)`: nothing may be served now; ask again in `ms`.
    /// A peer not in the book has no allowance.
    pub fn serve_allowance(&mut self, peer: &PeerId, now_ms: u64) -> Result<usize, u64> {
        let total = self
            .served_total
            .get_or_insert_with(|| ByteBucket::new(SERVED_BYTES_PER_SEC_TOTAL, now_ms));
        let node = total.available(now_ms);
        let node_wait = total.ms_until_positive();
        let Some(p) = self.peers.get_mut(peer) else {
            return Err(1000);
        };
        let own = p.served.available(now_ms);
        match own.min(node) {
            0 => Err(p.served.ms_until_positive().max(node_wait).max(1)),
            n => Ok(n),
        }
    }

    /// Charges `bytes` of blocks served to `peer` at `now_ms` against its
    /// connection's and the node's allowance.
    pub fn charge_served(&mut self, peer: &PeerId, bytes: usize, now_ms: u64) {
        if let Some(t) = self.served_total.as_mut() {
            t.spend(bytes, now_ms);
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.served.spend(bytes, now_ms);
        }
    }

    /// Until when `peer` is banned, Unix ms, if it is or was.
    #[must_use]
    pub fn banned_until_ms(&self, peer: &PeerId) -> Option<u64> {
        self.banned_until_ms.get(peer).copied()
    }

    /// Applies `action` to `peer` at `now_ms`; returns true when this bans
    /// the peer.
    pub fn penalise(&mut self, peer: PeerId, action: PeerAction, now_ms: u64) -> bool {
        let s = self.scores.entry(peer).or_insert(Score {
            value: 0.0,
            updated_ms: now_ms,
        });
        s.value = decay(s.value, elapsed(now_ms, s.updated_ms)) + action.penalty();
        s.updated_ms = now_ms;
        if s.value <= BAN_THRESHOLD && !self.is_banned(&peer, now_ms) {
            self.banned_until_ms.insert(peer, after(now_ms, BAN));
            return true;
        }
        false
    }

    /// The current (decayed) score.
    #[must_use]
    pub fn score(&self, peer: &PeerId, now_ms: u64) -> f64 {
        self.scores
            .get(peer)
            .map_or(0.0, |s| decay(s.value, elapsed(now_ms, s.updated_ms)))
    }

    /// Whether `peer` is banned at `now_ms`.
    #[must_use]
    pub fn is_banned(&self, peer: &PeerId, now_ms: u64) -> bool {
        self.banned_until_ms.get(peer).is_some_and(|&t| t > now_ms)
    }

    /// Number of peers banned now.
    #[must_use]
    pub fn banned_count(&self, now_ms: u64) -> usize {
        self.banned_until_ms
            .values()
            .filter(|&&t| t > now_ms)
            .count()
    }

    /// Forgets expired bans and scores that decayed to almost nothing, and
    /// keeps at most [`MAX_REMEMBERED_SCORES`] scores of disconnected peers.
    pub fn prune(&mut self, now_ms: u64) {
        self.banned_until_ms.retain(|_, &mut t| t > now_ms);
        let peers = &self.peers;
        let bans = &self.banned_until_ms;
        self.scores.retain(|p, s| {
            peers.contains_key(p)
                || bans.contains_key(p)
                || decay(s.value, elapsed(now_ms, s.updated_ms)) < -0.5
        });
        if self.scores.len() > MAX_REMEMBERED_SCORES {
            let mut v: Vec<(PeerId, f64)> = self
                .scores
                .iter()
                .filter(|(p, _)| !peers.contains_key(p) && !bans.contains_key(p))
                .map(|(p, s)| (*p, decay(s.value, elapsed(now_ms, s.updated_ms))))
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
            let excess = self.scores.len() - MAX_REMEMBERED_SCORES;
            for (p, _) in v.into_iter().take(excess) {
                self.scores.remove(&p);
            }
        }
    }

    /// Scores and bans remembered (connected or not), for tests and metrics.
    #[must_use]
    pub fn remembered(&self) -> (usize, usize) {
        (self.scores.len(), self.banned_until_ms.len())
    }
}

fn decay(value: f64, elapsed: Duration) -> f64 {
    value * 0.5f64.powf(elapsed.as_secs_f64() / HALF_LIFE.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_bans_at_once_and_bans_expire() {
        let mut s = PeerBook::default();
        let p = PeerId::random();
        assert!(s.penalise(p, PeerAction::Fatal, 1_000_000));
        assert!(s.is_banned(&p, 1_000_000));
        assert!(!s.is_banned(&p, after(1_000_000, BAN)));
    }

    #[test]
    fn low_tolerance_bans_after_three_and_scores_decay() {
        let mut s = PeerBook::default();
        let p = PeerId::random();
        assert!(!s.penalise(p, PeerAction::LowToleranceError, 0));
        assert!(!s.penalise(p, PeerAction::LowToleranceError, 0));
        assert!((s.score(&p, 0) + 68.0).abs() < 1e-9);
        assert!((s.score(&p, 300_000) + 34.0).abs() < 1e-9);
        assert!(!s.penalise(p, PeerAction::LowToleranceError, 300_000));
        let q = PeerId::random();
        for _ in 0..2 {
            s.penalise(q, PeerAction::LowToleranceError, 0);
        }
        assert!(s.penalise(q, PeerAction::LowToleranceError, 0));
    }

    #[test]
    fn prune_forgets_decayed_scores_and_expired_bans() {
        let mut s = PeerBook::default();
        let p = PeerId::random();
        let q = PeerId::random();
        s.penalise(p, PeerAction::Fatal, 0);
        s.penalise(q, PeerAction::HighToleranceError, 0);
        s.prune(1);
        assert_eq!(s.remembered(), (2, 1));
        // An hour later: the ban expired, both scores decayed away.
        s.prune(3_600_000);
        assert_eq!(s.remembered(), (0, 0));
    }

    #[test]
    fn time_too_new_costs_nothing_and_bad_pow_is_fatal() {
        let too_new = ChainError::Invalid {
            hash: crate::consensus::BlockHash([1; 32]),
            source: BlockError::Header(HeaderError::TimeTooNew { time: 1, now: 0 }),
        };
        assert_eq!(peer_action(&Offence::Chain(&too_new)), None);
        let high = ChainError::Invalid {
            hash: crate::consensus::BlockHash([1; 32]),
            source: BlockError::Header(HeaderError::HighHash {
                hash: String::new(),
                target: String::new(),
            }),
        };
        assert_eq!(peer_action(&Offence::Chain(&high)), Some(PeerAction::Fatal));
    }
}
