//! The private-branch race that SM1, the stubborn strategies and the
//! optimal policy share: a base block both sides agree on, the attacker's
//! branch on it (a published prefix and a withheld rest) and the honest
//! branch's length. Its state is Sapirshtein, Sompolinsky and Zohar's
//! `(a, h, fork)` (FC 2016, §4): `a` own blocks and `h` honest blocks since
//! the base, and whether the last block was the attacker's (`irrelevant`),
//! the honest network's (`relevant`: a match is possible) or the network is
//! split by a match (`active`). The strategies differ only in the policy
//! that picks an action after each block.

use libp2p::PeerId;

use super::{
    cut_hidden, hide_in_handshake, Action, PublishReason, Strategy, StrategyContext, TraitorEvent,
};
use crate::consensus::BlockTemplate;
use crate::consensus::{Block, BlockHash};
use crate::protocol::messages::Handshake;

/// SSZ's fork label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fork {
    /// The last block was the attacker's (or none since the base).
    Irrelevant,
    /// The last block was honest: a match can still split the network.
    Relevant,
    /// The attacker matched: honest miners are split between the branches.
    Active,
}

/// SSZ's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Move {
    /// Give up the private branch; mine on the honest tip.
    Adopt,
    /// Publish `h + 1` blocks: one more than the honest branch.
    Override,
    /// Publish `h` blocks: as long as the honest branch.
    Match,
    /// Publish nothing.
    Wait,
}

/// A private branch racing the public one.
#[derive(Clone, Debug)]
pub struct Race {
    base: BlockHash,
    base_height: u32,
    branch: Vec<BlockHash>,
    revealed: usize,
    h: u32,
    honest_tip: BlockHash,
    fork: Fork,
}

impl Race {
    /// No race: the base is the node's best tip.
    pub fn new(tip: BlockHash, height: u32) -> Race {
        Race {
            base: tip,
            base_height: height,
            branch: Vec::new(),
            revealed: 0,
            h: 0,
            honest_tip: tip,
            fork: Fork::Irrelevant,
        }
    }

    /// Own blocks since the base.
    pub fn a(&self) -> u32 {
        self.branch.len() as u32
    }

    /// Honest blocks since the base.
    pub fn h(&self) -> u32 {
        self.h
    }

    /// The fork label.
    pub fn fork(&self) -> Fork {
        self.fork
    }

    /// The tip of the private branch (the base when it is empty).
    pub fn private_tip(&self) -> BlockHash {
        self.branch.last().copied().unwrap_or(self.base)
    }

    /// The template on the private tip.
    pub fn template(&self, ctx: &StrategyContext<'_>) -> BlockTemplate {
        let parent = self.private_tip();
        if parent == ctx.chain.tip() {
            ctx.best_template()
        } else {
            ctx.template_on_or_best(&parent)
        }
    }

    /// Whether `hash` is a withheld block of the branch.
    pub fn is_hidden(&self, hash: &BlockHash) -> bool {
        self.branch[self.revealed..].contains(hash)
    }

    /// The miner found `hash` on the private tip.
    pub fn on_own(&mut self, hash: BlockHash) {
        self.branch.push(hash);
        if self.fork != Fork::Active {
            self.fork = Fork::Irrelevant;
        }
    }

    /// A peer's block at `height` on `parent` was stored; false when it
    /// does not grow the public chain (an old height).
    pub fn on_public(&mut self, hash: BlockHash, height: u32, parent: BlockHash) -> bool {
        if height <= self.base_height + self.h {
            return false;
        }
        match self.branch[..self.revealed]
            .iter()
            .position(|b| *b == parent)
        {
            Some(k) => {
                // Honest miners built on our published block: the branch up
                // to it is everyone's now (SSZ's γ transition).
                self.base = self.branch[k];
                self.base_height += k as u32 + 1;
                self.branch.drain(..=k);
                self.revealed -= k + 1;
                self.h = height - self.base_height;
            }
            None => self.h = height - self.base_height,
        }
        self.honest_tip = hash;
        self.fork = Fork::Relevant;
        true
    }

    fn publish(&mut self, upto: usize, reason: PublishReason, out: &mut Vec<Action>) {
        let upto = upto.min(self.branch.len());
        if upto > self.revealed {
            out.push(Action::Publish {
                blocks: self.branch[self.revealed..upto].to_vec(),
                reason,
            });
            self.revealed = upto;
        }
    }

    /// Carries out `m` (a move that is not feasible in this state is a
    /// wait).
    pub fn play(&mut self, m: Move, out: &mut Vec<Action>) {
        let (a, h) = (self.a(), self.h);
        match m {
            Move::Adopt => {
                self.branch.clear();
                self.revealed = 0;
                self.base = self.honest_tip;
                self.base_height += h;
                self.h = 0;
                self.fork = Fork::Irrelevant;
                out.push(Action::Event(TraitorEvent::Adopted {
                    height: self.base_height,
                }));
            }
            Move::Override if a > h => {
                let n = h as usize + 1;
                self.publish(n, PublishReason::Override, out);
                self.base = self.branch[n - 1];
                self.base_height += n as u32;
                self.branch.drain(..n);
                self.revealed = 0;
                self.h = 0;
                self.honest_tip = self.base;
                self.fork = Fork::Irrelevant;
            }
            Move::Match if a >= h && h > 0 => {
                let reason = if a == h {
                    PublishReason::Match
                } else {
                    PublishReason::Lead
                };
                self.publish(h as usize, reason, out);
                self.fork = Fork::Active;
            }
            Move::Override | Move::Match | Move::Wait => {}
        }
    }

    /// Mining stops: a lead is cashed in (it would win anyway: no more
    /// public blocks are coming).
    pub fn stop(&mut self, out: &mut Vec<Action>) {
        if self.a() > self.h {
            self.publish(self.branch.len(), PublishReason::Stop, out);
        }
    }
}

/// The rule that picks a move after each block.
pub trait Policy: std::fmt::Debug + Send {
    /// After the attacker found a block (already counted in `race.a()`).
    fn after_own(&self, race: &Race) -> Move;
    /// After an honest block grew the public chain (counted in `race.h()`).
    fn after_public(&self, race: &Race) -> Move;
}

/// A strategy that races a private branch under a [`Policy`].
#[derive(Debug)]
pub struct Racer<P> {
    race: Race,
    policy: P,
}

impl<P: Policy> Racer<P> {
    /// No race yet; `tip` at `height` is the base.
    pub fn new(policy: P, tip: BlockHash, height: u32) -> Racer<P> {
        Racer {
            race: Race::new(tip, height),
            policy,
        }
    }
}

impl<P: Policy> Strategy for Racer<P> {
    fn template(&self, ctx: &StrategyContext<'_>) -> BlockTemplate {
        self.race.template(ctx)
    }

    fn on_mined(&mut self, _ctx: &StrategyContext<'_>, block: Block) -> Vec<Action> {
        self.race.on_own(block.block_hash());
        let mut out = vec![Action::KeepPrivate(block)];
        let m = self.policy.after_own(&self.race);
        self.race.play(m, &mut out);
        out.push(Action::NewJob);
        out
    }

    fn on_public_block(
        &mut self,
        ctx: &StrategyContext<'_>,
        hash: BlockHash,
        height: u32,
    ) -> Vec<Action> {
        let Some(info) = ctx.chain.block_info(&hash) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let parent = self.race.private_tip();
        if self
            .race
            .on_public(hash, height, info.header.prev_blockhash)
        {
            let m = self.policy.after_public(&self.race);
            self.race.play(m, &mut out);
            // A new job only when the block to mine on changed: restarting
            // the miner on every public block would waste its time.
            if self.race.private_tip() != parent {
                out.push(Action::NewJob);
            }
        }
        out
    }

    fn on_stop(&mut self, _ctx: &StrategyContext<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        self.race.stop(&mut out);
        out
    }

    fn handshake(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, hs: &mut Handshake) {
        hide_in_handshake(ctx, hs, |h, _| self.race.is_hidden(h));
    }

    fn serve(&self, ctx: &StrategyContext<'_>, _peer: &PeerId, blocks: &mut Vec<Vec<u8>>) {
        cut_hidden(ctx, blocks, |h, _| self.race.is_hidden(h));
    }

    /// A miner racing a private branch does not help a competing block
    /// travel: it would carry the rival to the very nodes it wants to
    /// reach first.
    fn relays_others(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::selfish::Sm1;
    use super::super::stubborn::Stubborn;
    use super::*;

    fn h(i: u8) -> BlockHash {
        BlockHash([i; 32])
    }

    fn published(out: &[Action]) -> Vec<(Vec<BlockHash>, PublishReason)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Publish { blocks, reason } => Some((blocks.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    /// SM1 on a script: a block, an honest rival (match, the network
    /// splits), a second own block (override: both published, the base
    /// moves to it); then a race lost to honest miners who built on the
    /// pool's matched block (γ): that block is everyone's, the pool adopts.
    #[test]
    fn sm1_matches_overrides_and_commits_a_won_race() {
        let mut r = Race::new(h(0), 0);
        let mut out = Vec::new();
        r.on_own(h(1));
        r.play(Sm1.after_own(&r), &mut out);
        assert!(out.is_empty());
        assert!(r.on_public(h(101), 1, h(0)));
        assert_eq!((r.a(), r.h(), r.fork()), (1, 1, Fork::Relevant));
        r.play(Sm1.after_public(&r), &mut out);
        assert_eq!(published(&out), vec![(vec![h(1)], PublishReason::Match)]);
        assert_eq!(r.fork(), Fork::Active);
        out.clear();
        r.on_own(h(2));
        r.play(Sm1.after_own(&r), &mut out);
        assert_eq!(published(&out), vec![(vec![h(2)], PublishReason::Override)]);
        assert_eq!((r.a(), r.h(), r.private_tip()), (0, 0, h(2)));

        // A new race: match at height 3, then an honest block on ours.
        out.clear();
        r.on_own(h(3));
        assert!(r.on_public(h(103), 3, h(2)));
        r.play(Sm1.after_public(&r), &mut out);
        assert_eq!(published(&out), vec![(vec![h(3)], PublishReason::Match)]);
        assert!(r.on_public(h(104), 4, h(3)));
        assert_eq!((r.a(), r.h()), (0, 1), "h(3) is everyone's now");
        r.play(Sm1.after_public(&r), &mut out);
        assert_eq!(r.private_tip(), h(104), "adopted the honest tip");
        // An old height changes nothing.
        assert!(!r.on_public(h(105), 4, h(3)));
    }

    /// Lead-stubborn one ahead of an honest block reveals only to its
    /// height where SM1 overrides; trail-stubborn keeps a branch one behind
    /// and publishes it as a tie when it catches up.
    #[test]
    fn stubborn_parts_differ_from_sm1_where_the_paper_says() {
        let lead = Stubborn {
            lead: true,
            ..Stubborn::default()
        };
        let mut r = Race::new(h(0), 0);
        r.on_own(h(1));
        r.on_own(h(2));
        assert!(r.on_public(h(101), 1, h(0)));
        assert_eq!(Sm1.after_public(&r), Move::Override);
        assert_eq!(lead.after_public(&r), Move::Match);
        let mut out = Vec::new();
        r.play(lead.after_public(&r), &mut out);
        assert_eq!(published(&out), vec![(vec![h(1)], PublishReason::Lead)]);

        let trail = Stubborn {
            trail: 1,
            ..Stubborn::default()
        };
        let mut r = Race::new(h(0), 0);
        r.on_own(h(1));
        assert!(r.on_public(h(101), 1, h(0)));
        assert!(r.on_public(h(102), 2, h(101)));
        assert_eq!((r.a(), r.h()), (1, 2));
        assert_eq!(Sm1.after_public(&r), Move::Adopt);
        assert_eq!(trail.after_public(&r), Move::Wait);
        r.on_own(h(2));
        let mut out = Vec::new();
        r.play(trail.after_own(&r), &mut out);
        assert_eq!(
            published(&out),
            vec![(vec![h(1), h(2)], PublishReason::Match)]
        );
    }
}
