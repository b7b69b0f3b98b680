//! `honest`: mine on the best tip, publish every block at once.

use super::{no_args, Action, Entry, Strategy, StrategyContext};
use crate::consensus::Block;

pub(super) const ENTRY: Entry = Entry {
    name: "honest",
    usage: "honest",
    check: no_args,
    build: |_, _, _| Box::new(Honest),
};

/// The protocol as written.
#[derive(Debug)]
pub struct Honest;

impl Strategy for Honest {
    fn is_honest(&self) -> bool {
        true
    }

    fn on_mined(&mut self, _ctx: &StrategyContext<'_>, block: Block) -> Vec<Action> {
        vec![Action::PublishOwn(block)]
    }

    fn sees_every_fork(&self) -> bool {
        false
    }
}
