//! `withhold-every:N`: the example of the README's "Write your own
//! traitor". Every Nth own block is kept private and published together
//! with the next own block; the others are published at once. A held block
//! that the public chain overtakes meanwhile is given up (it is stale).

use libp2p::PeerId;

use super::{
    cut_hidden, hide_in_handshake, Action, ArgsError, Entry, PublishReason, Strategy,
    StrategyContext,
};
use crate::consensus::{Block, BlockHash};
use crate::protocol::messages::Handshake;

pub(super) const ENTRY: Entry = Entry {
    name: "withhold-every",
    usage: "withhold-every:N",
    check: |a| parse(a).map(|_| ()),
    build: |a, _tip, _height| {
        Box::new(WithholdEvery {
            n: parse(a).expect("checked"),
            found: 0,
            held: None,
        })
    },
};

/// `N` from 2 to 1,000.
fn parse(args: Option<&str>) -> Result<u32, ArgsError> {
    args.and_then(|a| a.parse::<u32>().ok())
        .filter(|n| (2..=1000).contains(n))
        .ok_or(ArgsError {
            expected: "withhold-every:N with N from 2 to 1000",
        })
}

/// The state: how many blocks it found, and the one it holds.
#[derive(Debug)]
pub struct WithholdEvery {
    n: u32,
    found: u32,
    held: Option<BlockHash>,
}

impl Strategy for WithholdEvery {
    fn on_mined(&mut self, _ctx: &StrategyContext<'_>, block: Block) -> Vec<Action> {
        self.found += 1;
        if self.found.is_multiple_of(self.n) {
            self.held = Some(block.block_hash());
            return vec![Action::KeepPrivate(block)];
        }
        let mut actions = Vec::new();
        if let Some(held) = self.held.take() {
            // The parent first, then its child.
            actions.push(Action::Publish {
                blocks: vec![held],
                reason: PublishReason::Other,
            });
        }
        actions.push(Action::PublishOwn(block));
        actions
    }

    fn on_public_block(
        &mut self,
        ctx: &StrategyContext<'_>,
        _hash: BlockHash,
        _height: u32,
    ) -> Vec<Action> {
        // Overtaken: the held block left the best chain.
        if let Some(h) = self.held {
            if ctx.chain.block_info(&h).is_none_or(|i| !i.in_best_chain) {
                self.held = None;
            }
        }
        Vec::new()
    }

    fn handshake(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, hs: &mut Handshake) {
        hide_in_handshake(ctx, hs, |h, _| self.held == Some(*h));
    }

    fn serve(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, blocks: &mut Vec<Vec<u8>>) {
        cut_hidden(ctx, blocks, |h, _| self.held == Some(*h));
    }
}
