//! `withhold`: mine, never publish (pure hashrate loss for the network).

use std::collections::BTreeMap;

use libp2p::PeerId;

use super::{cut_hidden, hide_in_handshake, no_args, Action, Entry, Strategy, StrategyContext};
use crate::consensus::{Block, BlockHash};
use crate::protocol::messages::Handshake;

pub(super) const ENTRY: Entry = Entry {
    name: "withhold",
    usage: "withhold",
    check: no_args,
    build: |_, _, _| Box::new(Withhold::default()),
};

/// Every own block stored, none published or served.
#[derive(Debug, Default)]
pub struct Withhold {
    /// Own blocks by height.
    withheld: BTreeMap<u32, BlockHash>,
}

impl Strategy for Withhold {
    fn on_mined(&mut self, ctx: &StrategyContext<'_>, block: Block) -> Vec<Action> {
        let height = ctx
            .height_of(&block.header.prev_blockhash)
            .map_or(0, |h| h + 1);
        self.withheld.insert(height, block.block_hash());
        vec![Action::KeepPrivate(block)]
    }

    fn handshake(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, hs: &mut Handshake) {
        hide_in_handshake(ctx, hs, |h, height| self.withheld.get(&height) == Some(h));
    }

    fn serve(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, blocks: &mut Vec<Vec<u8>>) {
        cut_hidden(ctx, blocks, |h, height| {
            self.withheld.get(&height) == Some(h)
        });
    }

    fn relays_others(&self) -> bool {
        false
    }
}
