//! What a simulation measures: counters, the blocks its miners made, each
//! block's arrival delay at each node, re-org depths, traitors' events,
//! and (when kept) every node's events.

use crate::consensus::BlockHash;
use crate::protocol::{BlockSource, NodeEvent, TraitorEvent};

use super::HashMap;

/// A block the simulator's miners made: who, when, on what.
#[derive(Clone, Copy, Debug)]
pub struct MinedBlock {
    /// Its parent.
    pub parent: BlockHash,
    /// Its height.
    pub height: u32,
    /// The node whose miner found it.
    pub miner: usize,
    /// When, virtual Unix ms.
    pub mined_ms: u64,
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Messages delivered (gossip, requests, responses).
    pub messages: u64,
    /// Events processed from the queue.
    pub events: u64,
    /// Messages dropped by the loss rate.
    pub lost: u64,
}

/// The measurements of a [`super::Network`] run.
#[derive(Debug)]
pub struct Recorder {
    /// Counters.
    pub stats: SimStats,
    /// Keep every node's events in [`super::SimNode::events`] (on by
    /// default; experiments over many blocks turn it off).
    pub keep_events: bool,
    /// Every block [`super::Network::mine_next`] and
    /// [`super::Network::mine`] made.
    pub mined: HashMap<BlockHash, MinedBlock>,
    /// Order of [`Recorder::mined`], first mined first.
    pub mined_order: Vec<BlockHash>,
    /// Milliseconds from a block's discovery to its arrival at each other
    /// node (gossip or sync), one sample per (block, node).
    pub arrival_ms: Vec<u32>,
    /// Depth of every re-org at every node.
    pub reorg_depths: Vec<u32>,
    /// What traitors did: (time, node, event).
    pub traitor_events: Vec<(u64, usize, TraitorEvent)>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            stats: SimStats::default(),
            keep_events: true,
            mined: HashMap::default(),
            mined_order: Vec::new(),
            arrival_ms: Vec::new(),
            reorg_depths: Vec::new(),
            traitor_events: Vec::new(),
        }
    }
}

impl Recorder {
    /// Notes a block the simulator's miner at `node` made.
    pub(super) fn mined(&mut self, hash: BlockHash, block: MinedBlock) {
        self.mined.insert(hash, block);
        self.mined_order.push(hash);
    }

    /// Takes the measurements out of an event node `node` emitted at
    /// `now_ms`.
    pub(super) fn observe(&mut self, now_ms: u64, node: usize, e: &NodeEvent) {
        match e {
            NodeEvent::Block {
                hash,
                source: BlockSource::Gossip(_) | BlockSource::Sync(_),
                ..
            } => {
                if let Some(m) = self.mined.get(hash) {
                    let ms = now_ms.saturating_sub(m.mined_ms);
                    self.arrival_ms.push(u32::try_from(ms).unwrap_or(u32::MAX));
                }
            }
            NodeEvent::Reorg(r) => self.reorg_depths.push(r.depth),
            NodeEvent::Traitor(t) => self.traitor_events.push((now_ms, node, t.clone())),
            _ => {}
        }
    }
}
