//! `double-spend:Z[:D]`: the race of Nakamoto 2008 §11 as Rosenfeld,
//! "Analysis of Hashrate-Based Double Spending" (2014) models it. Mine one
//! block in private on the tip, holding a transaction that returns the coin
//! to the attacker; only then pay the merchant; extend the private branch
//! and publish it once it is longer than the public chain and the payment
//! has Z confirmations (the block holding it is the first); give up D
//! blocks behind.

use std::collections::BTreeMap;

use libp2p::PeerId;

use super::{
    cut_hidden, hide_in_handshake, Action, ArgsError, Entry, PublishReason, Strategy,
    StrategyContext, TraitorEvent,
};
use crate::consensus::BlockTemplate;
use crate::consensus::{sha256d, Block, BlockHash, Txid};
use crate::protocol::messages::Handshake;

/// Blocks behind the public chain at which a double-spender gives up when
/// `double-spend:Z` names no other depth.
pub const DEFAULT_GIVE_UP_BEHIND: u32 = 10;

pub(super) const ENTRY: Entry = Entry {
    name: "double-spend",
    usage: "double-spend:Z[:D]",
    check: |a| parse(a).map(|_| ()),
    build: |a, _, height| {
        let (confirmations, give_up_behind) = parse(a).expect("checked");
        Box::new(DoubleSpend {
            confirmations,
            give_up_behind,
            withheld: BTreeMap::new(),
            public_height: height,
            round: None,
            rounds: 0,
        })
    },
};

/// `Z` (at most 1,000) and `D` (1 to 100,000, default
/// [`DEFAULT_GIVE_UP_BEHIND`]).
fn parse(args: Option<&str>) -> Result<(u32, u32), ArgsError> {
    let bad = || ArgsError {
        expected: "double-spend:Z or double-spend:Z:D",
    };
    let mut parts = args.ok_or_else(bad)?.split(':');
    let z = parts
        .next()
        .and_then(|z| z.parse::<u32>().ok())
        .filter(|&z| z <= 1000)
        .ok_or_else(bad)?;
    let d = match parts.next() {
        None => DEFAULT_GIVE_UP_BEHIND,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|&d| (1..=100_000).contains(&d))
            .ok_or_else(bad)?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((z, d))
}

/// A double-spend round.
#[derive(Clone, Debug)]
struct Round {
    number: u64,
    fork_height: u32,
    conflict_block: BlockHash,
    private_tip: BlockHash,
    private_height: u32,
    payment: Txid,
    /// Height of the public block holding the payment, once seen.
    payment_height: Option<u32>,
}

/// Rosenfeld's attacker.
#[derive(Debug)]
pub struct DoubleSpend {
    confirmations: u32,
    give_up_behind: u32,
    /// The private branch, by height.
    withheld: BTreeMap<u32, BlockHash>,
    /// Height of the longest chain the public knows.
    public_height: u32,
    round: Option<Round>,
    rounds: u64,
}

impl DoubleSpend {
    fn conflict_tx(ctx: &StrategyContext<'_>, round: u64) -> Vec<u8> {
        format!(
            "powchain double-spend round {round} by {}: the coin goes back to the attacker",
            ctx.miner_id
        )
        .into_bytes()
    }

    fn payment_tx(ctx: &StrategyContext<'_>, round: u64) -> Vec<u8> {
        format!(
            "powchain double-spend round {round} by {}: payment to the merchant",
            ctx.miner_id
        )
        .into_bytes()
    }

    /// Rosenfeld's rule: publish once the private branch is longer than the
    /// public chain and the payment has its confirmations; give up when
    /// `give_up_behind` blocks behind.
    fn decide(&mut self, ctx: &StrategyContext<'_>, actions: &mut Vec<Action>) {
        let Some(r) = self.round.clone() else { return };
        let public = self.public_height;
        let confirmed = match r.payment_height {
            Some(ph) if public >= ph => public - ph + 1,
            _ => 0,
        };
        let published = if r.private_height > public && confirmed >= self.confirmations {
            let blocks = std::mem::take(&mut self.withheld).into_values().collect();
            self.public_height = self.public_height.max(r.private_height);
            actions.push(Action::Publish {
                blocks,
                reason: PublishReason::DoubleSpend,
            });
            true
        } else if public >= r.private_height + self.give_up_behind {
            self.withheld.clear();
            // The conflicting transaction came back to the mempool when the
            // private branch lost the best chain; it is abandoned.
            let conflict = Txid(sha256d(&Self::conflict_tx(ctx, r.number)));
            actions.push(Action::DropTx(conflict));
            false
        } else {
            return;
        };
        self.round = None;
        actions.push(Action::Event(TraitorEvent::RoundEnded {
            round: r.number,
            conflict_block: r.conflict_block,
            published,
            private_len: r.private_height - r.fork_height,
            public_len: public.saturating_sub(r.fork_height),
        }));
        actions.push(Action::NewJob);
    }

    fn hidden(&self, hash: &BlockHash, height: u32) -> bool {
        self.withheld.get(&height) == Some(hash)
    }
}

impl Strategy for DoubleSpend {
    fn template(&self, ctx: &StrategyContext<'_>) -> BlockTemplate {
        match &self.round {
            // Pre-mining: the block that will hold the conflicting
            // transaction, on the best tip.
            None => {
                let mut tpl = ctx.template_on_or_best(&ctx.chain.tip());
                tpl.transactions = vec![Self::conflict_tx(ctx, self.rounds + 1)];
                tpl
            }
            Some(r) => ctx.template_on_or_best(&r.private_tip),
        }
    }

    fn on_mined(&mut self, ctx: &StrategyContext<'_>, block: Block) -> Vec<Action> {
        let parent_height = ctx.height_of(&block.header.prev_blockhash).unwrap_or(0);
        let hash = block.block_hash();
        self.withheld.insert(parent_height + 1, hash);
        let mut actions = vec![Action::KeepPrivate(block)];
        match &mut self.round {
            Some(r) => {
                r.private_tip = hash;
                r.private_height = parent_height + 1;
            }
            None => {
                self.rounds += 1;
                let number = self.rounds;
                let payment = Self::payment_tx(ctx, number);
                let txid = Txid(sha256d(&payment));
                self.round = Some(Round {
                    number,
                    fork_height: parent_height,
                    conflict_block: hash,
                    private_tip: hash,
                    private_height: parent_height + 1,
                    payment: txid,
                    payment_height: None,
                });
                // Pay the merchant only now (Rosenfeld's pre-mining).
                actions.push(Action::PublishTx(payment));
                actions.push(Action::Event(TraitorEvent::Paid {
                    round: number,
                    conflict_block: hash,
                    payment: txid,
                }));
            }
        }
        self.decide(ctx, &mut actions);
        // The private tip moved even when the best tip did not.
        actions.push(Action::NewJob);
        actions
    }

    fn on_public_block(
        &mut self,
        ctx: &StrategyContext<'_>,
        hash: BlockHash,
        height: u32,
    ) -> Vec<Action> {
        if let Some(r) = &mut self.round {
            if r.payment_height.is_none() && height > r.fork_height {
                let holds = ctx
                    .chain
                    .block(&hash)
                    .ok()
                    .flatten()
                    .is_some_and(|b| b.txdata.iter().any(|tx| Txid(sha256d(tx)) == r.payment));
                if holds {
                    r.payment_height = Some(height);
                }
            }
        }
        let mut actions = Vec::new();
        if height > self.public_height {
            self.public_height = height;
            self.decide(ctx, &mut actions);
        }
        actions
    }

    fn handshake(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, hs: &mut Handshake) {
        hide_in_handshake(ctx, hs, |h, height| self.hidden(h, height));
    }

    fn serve(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, blocks: &mut Vec<Vec<u8>>) {
        cut_hidden(ctx, blocks, |h, height| self.hidden(h, height));
    }

    fn relays_others(&self) -> bool {
        false
    }
}
