//! `selfish`: Eyal & Sirer, "Majority is not Enough: Bitcoin Mining is
//! Vulnerable" (FC 2014), Algorithm 1 (SM1), as a policy over the shared
//! [`Race`].

use super::race::{Fork, Move, Policy, Race, Racer};
use super::{no_args, Entry};

pub(super) const ENTRY: Entry = Entry {
    name: "selfish",
    usage: "selfish",
    check: no_args,
    build: |_, tip, height| Box::new(Racer::new(Sm1, tip, height)),
};

/// SM1.
#[derive(Debug, Clone, Copy)]
pub struct Sm1;

impl Policy for Sm1 {
    /// A block found during a race (state 0') wins it: publish all.
    fn after_own(&self, race: &Race) -> Move {
        if race.fork() == Fork::Active && race.a() == race.h() + 1 {
            Move::Override
        } else {
            Move::Wait
        }
    }

    /// "Others found a block": behind, adopt; even, match (state 0'); one
    /// ahead of their new block, publish all; further ahead, publish the
    /// first unpublished block (reveal up to their height).
    fn after_public(&self, race: &Race) -> Move {
        let (a, h) = (race.a(), race.h());
        if a < h || a == 0 {
            Move::Adopt
        } else if a == h + 1 {
            Move::Override
        } else {
            Move::Match
        }
    }
}
