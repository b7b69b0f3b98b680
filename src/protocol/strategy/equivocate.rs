//! `equivocate`: two different blocks at one height, each announced to one
//! half of the peers (each half asks for the tip its handshake names and is
//! served its own block), so the network splits until one branch grows.

use std::collections::BTreeSet;

use libp2p::PeerId;

use super::{no_args, Action, Entry, Strategy, StrategyContext, TraitorEvent};
use crate::consensus::BlockTemplate;
use crate::consensus::{sha256d, Block, BlockHash};
use crate::protocol::messages::Handshake;

pub(super) const ENTRY: Entry = Entry {
    name: "equivocate",
    usage: "equivocate",
    check: no_args,
    build: |_, _, _| Box::new(Equivocate::default()),
};

/// Two blocks at one height and the peers that were given the second.
#[derive(Clone, Debug)]
struct Pair {
    first: BlockHash,
    second: BlockHash,
    second_bytes: Vec<u8>,
    second_half: BTreeSet<PeerId>,
}

/// Holds each found block until its twin (same parent, another body) is
/// found, then stores both.
#[derive(Debug, Default)]
pub struct Equivocate {
    held: Option<Block>,
    pair: Option<Pair>,
}

impl Strategy for Equivocate {
    fn template(&self, ctx: &StrategyContext<'_>) -> BlockTemplate {
        let mut tpl = ctx.best_template();
        if self.held.is_some() {
            // The twin: same parent and height, another body.
            tpl.transactions = vec![b"powchain equivocation twin".to_vec()];
        }
        tpl
    }

    fn on_mined(&mut self, ctx: &StrategyContext<'_>, block: Block) -> Vec<Action> {
        match self.held.take() {
            Some(first)
                if first.header.prev_blockhash == block.header.prev_blockhash
                    && first.block_hash() != block.block_hash() =>
            {
                let (a, b) = (first.block_hash(), block.block_hash());
                let height = ctx
                    .height_of(&first.header.prev_blockhash)
                    .map_or(0, |h| h + 1);
                let second_half = ctx
                    .peers
                    .iter()
                    .map(|(id, _)| *id)
                    .skip(1)
                    .step_by(2)
                    .collect();
                self.pair = Some(Pair {
                    first: a,
                    second: b,
                    second_bytes: block.encode(),
                    second_half,
                });
                vec![
                    Action::Store(first),
                    Action::Store(block),
                    Action::Event(TraitorEvent::Equivocated {
                        first: a,
                        second: b,
                        height,
                    }),
                    Action::Handshake,
                ]
            }
            _ => {
                // Hold it and mine its twin on the same parent.
                self.held = Some(block);
                vec![Action::NewJob]
            }
        }
    }

    fn handshake(&self, ctx: &StrategyContext<'_>, peer: &PeerId, hs: &mut Handshake) {
        let Some(p) = &self.pair else { return };
        if hs.tip == p.first && p.second_half.contains(peer) {
            if let Some(i) = ctx.chain.block_info(&p.second) {
                hs.tip = p.second;
                hs.height = i.height;
                hs.chainwork = i.chainwork.to_u256().to_be_bytes::<32>();
            }
        }
    }

    fn serve(&self, _ctx: &StrategyContext<'_>, peer: &PeerId, blocks: &mut Vec<Vec<u8>>) {
        let Some(p) = &self.pair else { return };
        if p.second_half.contains(peer) {
            if let Some(i) = blocks
                .iter()
                .position(|b| b.len() >= 80 && BlockHash(sha256d(&b[..80])) == p.first)
            {
                blocks.truncate(i);
                blocks.push(p.second_bytes.clone());
            }
        }
    }
}
