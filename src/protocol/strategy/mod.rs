//! Traitor strategies as plug-ins: how a node mines and what it tells its
//! peers.
//!
//! A strategy lives inside the protocol core ([`crate::protocol::NodeCore`]),
//! so the same code runs in `powchain node --strategy`, on a testnet
//! (`--adversary NODE:NAME`) and in `powchain sim`. The core asks it at a
//! few decision points (the methods of [`Strategy`]); the strategy reads the
//! node through a read-only [`StrategyContext`] and answers with
//! [`Action`]s, which the core carries out. Nothing outside this folder
//! matches on a strategy.
//!
//! | name | file | source |
//! |---|---|---|
//! | `honest` | `honest.rs` | mine on the best tip, publish at once |
//! | `selfish` | `selfish.rs` | Eyal & Sirer, FC 2014, Algorithm 1 (SM1) |
//! | `stubborn:LFTj` | `stubborn.rs` | Nayak, Kumar, Miller, Shi, EuroS&P 2016 |
//! | `optimal-selfish:ALPHA[:GAMMA]` | `optimal.rs` | Sapirshtein, Sompolinsky, Zohar, FC 2016 |
//! | `double-spend:Z[:D]` | `double_spend.rs` | Nakamoto 2008 §11, Rosenfeld 2014 |
//! | `withhold` | `withhold.rs` | mine, never publish |
//! | `equivocate` | `equivocate.rs` | two blocks at one height, one per half of the peers |
//! | `spam-invalid` | `spam.rs` | valid proof of work, one broken rule |
//! | `withhold-every:N` | `withhold_every.rs` | the README's plug-in example: every Nth block held back one block |
//!
//! # Adding a strategy
//! Write one file with a type that implements [`Strategy`] and a
//! `pub(super) const ENTRY: Entry`, then add `mod NAME;` and `NAME::ENTRY`
//! to [`REGISTRY`] below. The README's "Write your own traitor" section has
//! a complete example.

use std::fmt;
use std::str::FromStr;

use libp2p::PeerId;
use serde::Serialize;

use crate::chain::ChainStore;
use crate::consensus::difficulty::next_work_required;
use crate::consensus::BlockTemplate;
use crate::consensus::{Block, BlockHash, ChainView, Params, Txid};
use crate::protocol::mempool::Mempool;
use crate::protocol::messages::Handshake;
use crate::protocol::peers::PeerBook;

mod double_spend;
mod equivocate;
mod honest;
pub mod mdp;
mod optimal;
mod race;
mod selfish;
mod spam;
mod stubborn;
mod withhold;
mod withhold_every;

pub use double_spend::DEFAULT_GIVE_UP_BEHIND;

/// What the node can see when a strategy decides: the chain, the peers,
/// the parameters and the time of the input being handled. Read only: a
/// strategy changes the node through the [`Action`]s it returns.
pub struct StrategyContext<'a> {
    /// The chain store (the private branch's blocks are stored in it).
    pub chain: &'a ChainStore,
    /// The network's parameters.
    pub params: &'a Params,
    /// The connected peers.
    pub peers: &'a PeerBook,
    /// The mempool (for the templates).
    pub mempool: &'a Mempool,
    /// The miner id written in coinbases.
    pub miner_id: &'a str,
    /// The time of the input being handled, Unix ms.
    pub now_ms: u64,
}

impl StrategyContext<'_> {
    /// The honest template: the next block on the best tip, bits from the
    /// difficulty rule, time at least median-time-past + 1, the mempool's
    /// oldest transactions.
    #[must_use]
    pub fn best_template(&self) -> BlockTemplate {
        let mut t = self
            .template_on(&self.chain.tip())
            .expect("the best tip is stored");
        t.transactions = self.mempool.select(self.params.max_block_bytes - 1024);
        t
    }

    /// The next block's template on any stored block `parent` (a private
    /// branch), with no transactions; `None` if `parent` is not stored.
    #[must_use]
    pub fn template_on(&self, parent: &BlockHash) -> Option<BlockTemplate> {
        let info = self.chain.block_info(parent)?;
        let view = self.chain.view_at(parent)?;
        let bits = next_work_required(self.params, &view).unwrap_or(self.params.pow_limit_bits);
        Some(BlockTemplate {
            height: info.height + 1,
            version: 1,
            prev_blockhash: *parent,
            bits,
            min_time: view.median_time_past() + 1,
            transactions: Vec::new(),
            miner_id: self.miner_id.to_string(),
        })
    }

    /// The template on `parent`, or the honest one if `parent` is unknown.
    #[must_use]
    pub fn template_on_or_best(&self, parent: &BlockHash) -> BlockTemplate {
        self.template_on(parent)
            .unwrap_or_else(|| self.best_template())
    }

    /// The height of a stored block.
    #[must_use]
    pub fn height_of(&self, hash: &BlockHash) -> Option<u32> {
        self.chain.block_info(hash).map(|i| i.height)
    }
}

/// Why withheld blocks were published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishReason {
    /// As long as the public chain: a race (SM1's state 0', SSZ's `match`).
    Match,
    /// Longer than the public chain: the public blocks become stale
    /// (SM1's win, SSZ's `override`).
    Override,
    /// Blocks up to the public height while a lead is kept (SM1's "publish
    /// the first unpublished block", a lead-stubborn miner's reveal).
    Lead,
    /// Mining switched off: a private lead is cashed in, so a finite run
    /// counts what the long-run analysis counts.
    Stop,
    /// A double-spender's branch outgrew the public chain after the
    /// payment's confirmations.
    DoubleSpend,
    /// A plug-in's own reason.
    Other,
}

impl fmt::Display for PublishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PublishReason::Match => "match",
            PublishReason::Override => "override",
            PublishReason::Lead => "lead",
            PublishReason::Stop => "stop",
            PublishReason::DoubleSpend => "double-spend",
            PublishReason::Other => "other",
        })
    }
}

/// What a strategy asks the core to do, carried out in order.
#[derive(Clone, Debug)]
pub enum Action {
    /// Store an own block and publish it at once (the honest path).
    PublishOwn(Block),
    /// Store an own block without publishing it; the core emits
    /// [`TraitorEvent::Withheld`].
    KeepPrivate(Block),
    /// Store an own block, no publication and no event (the strategy
    /// announces it its own way).
    Store(Block),
    /// Publish stored blocks (read back from the chain store), lowest
    /// first; the core emits [`TraitorEvent::Published`].
    Publish {
        /// the blocks, in the order to send
        blocks: Vec<BlockHash>,
        /// why
        reason: PublishReason,
    },
    /// Publish a block's bytes without storing it (it breaks a rule).
    PublishUnstored(Block),
    /// Publish a transaction.
    PublishTx(Vec<u8>),
    /// Drop a transaction from the mempool.
    DropTx(Txid),
    /// Tell subscribers.
    Event(TraitorEvent),
    /// Hand the miner a new job (the template changed).
    NewJob,
    /// Send every peer a new handshake (what [`Strategy::handshake`] shows
    /// changed).
    Handshake,
}

/// A traitor strategy: the decision points of a node's mining and
/// announcing. Every method but [`Strategy::on_mined`] has the honest
/// answer as its default.
pub trait Strategy: fmt::Debug + Send {
    /// Whether the node is honest (the core skips the other decision
    /// points then).
    fn is_honest(&self) -> bool {
        false
    }

    /// What to mine on: the template handed to the miner.
    fn template(&self, ctx: &StrategyContext<'_>) -> BlockTemplate {
        ctx.best_template()
    }

    /// The miner found `block` on the current job.
    fn on_mined(&mut self, ctx: &StrategyContext<'_>, block: Block) -> Vec<Action>;

    /// A block from a peer (gossip or sync) was stored at `height`; called
    /// once per block, lowest height first.
    fn on_public_block(
        &mut self,
        _ctx: &StrategyContext<'_>,
        _hash: BlockHash,
        _height: u32,
    ) -> Vec<Action> {
        Vec::new()
    }

    /// Mining is being switched off.
    fn on_stop(&mut self, _ctx: &StrategyContext<'_>) -> Vec<Action> {
        Vec::new()
    }

    /// What the handshake to `peer` shows; `hs` holds the honest one.
    fn handshake(&self, _ctx: &StrategyContext<'_>, _peer: &PeerId, _hs: &mut Handshake) {}

    /// What a sync answer to `peer` serves; `blocks` holds the honest
    /// answer (serialized blocks, lowest first).
    fn serve(&self, _ctx: &StrategyContext<'_>, _peer: &PeerId, _blocks: &mut Vec<Vec<u8>>) {}

    /// Whether valid blocks of others are relayed.
    fn relays_others(&self) -> bool {
        true
    }

    /// Whether the honest refusal of deep low-work forks from gossip is
    /// skipped (a traitor must see the public chain grow while its private
    /// branch is far ahead).
    fn sees_every_fork(&self) -> bool {
        true
    }
}

/// One registered strategy: its name, the arguments it takes and how to
/// build it.
pub struct Entry {
    /// The name before the first `:`.
    pub name: &'static str,
    /// The form shown in errors and `--help`, e.g. `double-spend:Z[:D]`.
    pub usage: &'static str,
    /// Checks the arguments (the text after `name:`, if any).
    pub check: fn(Option<&str>) -> Result<(), ArgsError>,
    /// Builds the strategy from checked arguments, for a node whose best
    /// tip is `tip` at `height`.
    pub build: fn(Option<&str>, BlockHash, u32) -> Box<dyn Strategy>,
}

/// Every strategy a node can run.
pub const REGISTRY: &[Entry] = &[
    honest::ENTRY,
    selfish::ENTRY,
    stubborn::ENTRY,
    optimal::ENTRY,
    double_spend::ENTRY,
    withhold::ENTRY,
    equivocate::ENTRY,
    spam::ENTRY,
    withhold_every::ENTRY,
];

/// A checked strategy name with its arguments (`--strategy`,
/// `--adversary NODE:STRATEGY`, `CoreConfig::strategy`); [`StrategySpec::build`]
/// makes the strategy itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StrategySpec(String);

impl Default for StrategySpec {
    fn default() -> StrategySpec {
        StrategySpec::honest()
    }
}

impl StrategySpec {
    /// `honest`.
    #[must_use]
    pub fn honest() -> StrategySpec {
        StrategySpec("honest".into())
    }

    /// `double-spend:Z:D`.
    #[must_use]
    pub fn double_spend(confirmations: u32, give_up_behind: u32) -> StrategySpec {
        StrategySpec(if give_up_behind == DEFAULT_GIVE_UP_BEHIND {
            format!("double-spend:{confirmations}")
        } else {
            format!("double-spend:{confirmations}:{give_up_behind}")
        })
    }

    /// Whether this is `honest`.
    #[must_use]
    pub fn is_honest(&self) -> bool {
        self.0 == "honest"
    }

    /// The name (before the first `:`).
    #[must_use]
    pub fn name(&self) -> &str {
        self.0.split(':').next().unwrap_or("")
    }

    fn parts(&self) -> (&str, Option<&str>) {
        match self.0.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (self.0.as_str(), None),
        }
    }

    /// The strategy, for a node whose best tip is `tip` at `height`.
    #[must_use]
    pub fn build(&self, tip: BlockHash, height: u32) -> Box<dyn Strategy> {
        let (name, args) = self.parts();
        let entry = REGISTRY
            .iter()
            .find(|e| e.name == name)
            .expect("a StrategySpec names a registered strategy");
        (entry.build)(args, tip, height)
    }
}

impl fmt::Display for StrategySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StrategySpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A strategy that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StrategyParseError {
    /// No strategy of that name is registered.
    #[error("unknown strategy {given:?}: expected one of {expected}")]
    Unknown {
        /// What was given (at most 64 characters).
        given: String,
        /// The registered forms.
        expected: String,
    },
    /// The name is registered; its arguments are refused.
    #[error("strategy {given:?}: {source}")]
    Args {
        /// What was given (at most 64 characters).
        given: String,
        /// What the strategy accepts.
        #[source]
        source: ArgsError,
    },
}

impl FromStr for StrategySpec {
    type Err = StrategyParseError;

    /// A registered name, with its arguments after `:` where it takes
    /// some (see [`REGISTRY`]).
    fn from_str(s: &str) -> Result<StrategySpec, StrategyParseError> {
        let spec = StrategySpec(s.to_string());
        let (name, args) = spec.parts();
        let given = || s.chars().take(64).collect();
        let entry = REGISTRY.iter().find(|e| e.name == name).ok_or_else(|| {
            StrategyParseError::Unknown {
                given: given(),
                expected: REGISTRY
                    .iter()
                    .map(|e| e.usage)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?;
        (entry.check)(args).map_err(|source| StrategyParseError::Args {
            given: given(),
            source,
        })?;
        Ok(spec)
    }
}

/// The rule a spam-invalid block breaks (cycled in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpamKind {
    /// A transaction appended after mining: the merkle root no longer
    /// matches (`bad-txnmrklroot`).
    MerkleRoot,
    /// Bits for half the required target: more work, wrong difficulty
    /// (`bad-diffbits`).
    Bits,
    /// A timestamp past the future limit (`time-too-new`; Core does not
    /// punish it, nor do we).
    TimeTooNew,
    /// A coinbase that commits to another height (BIP34's
    /// `bad-cb-height`).
    CoinbaseHeight,
}

impl SpamKind {
    /// The kinds, in the order they are sent.
    pub const ALL: [SpamKind; 4] = [
        SpamKind::MerkleRoot,
        SpamKind::Bits,
        SpamKind::TimeTooNew,
        SpamKind::CoinbaseHeight,
    ];
}

/// What a traitor did, for logs, `/events` and the simulator's accounting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraitorEvent {
    /// An own block kept private.
    Withheld {
        /// the block
        hash: BlockHash,
        /// its height
        height: u32,
    },
    /// Private blocks published (lowest first).
    Published {
        /// the blocks
        hashes: Vec<BlockHash>,
        /// why
        why: PublishReason,
    },
    /// The selfish miner gave up its private branch for the public chain.
    Adopted {
        /// public height adopted
        height: u32,
    },
    /// A double-spend round began: the conflicting block is mined in
    /// private and the payment sent.
    Paid {
        /// round number, from 1
        round: u64,
        /// the private block holding the conflicting transaction
        conflict_block: BlockHash,
        /// the payment to the merchant
        payment: Txid,
    },
    /// A double-spend round ended.
    RoundEnded {
        /// round number
        round: u64,
        /// the private block holding the conflicting transaction
        conflict_block: BlockHash,
        /// true: the private branch was published while longer than the
        /// public chain, after the payment's confirmations; false: given up
        published: bool,
        /// private branch length at the end
        private_len: u32,
        /// public chain length after the fork at the end
        public_len: u32,
    },
    /// Two blocks at one height sent to two halves of the peers.
    Equivocated {
        /// sent to the first half
        first: BlockHash,
        /// sent to the second half
        second: BlockHash,
        /// their height
        height: u32,
    },
    /// An invalid block sent.
    Spam {
        /// its hash
        hash: BlockHash,
        /// the rule it breaks
        kind: SpamKind,
    },
}

/// Parses a whole argument list that must be absent.
pub(super) fn no_args(args: Option<&str>) -> Result<(), ArgsError> {
    match args {
        None => Ok(()),
        Some(_) => Err(ArgsError {
            expected: "no arguments",
        }),
    }
}

/// A strategy's arguments (the text after `name:`) that it refuses.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("expected {expected}")]
pub struct ArgsError {
    /// The accepted form with its ranges, e.g. `withhold-every:N with N
    /// from 2 to 1000`.
    pub expected: &'static str,
}

/// Hides the blocks `hidden` says are private from a handshake: it shows
/// the highest block of the best chain that is not hidden.
pub(super) fn hide_in_handshake(
    ctx: &StrategyContext<'_>,
    hs: &mut Handshake,
    hidden: impl Fn(&BlockHash, u32) -> bool,
) {
    let mut h = ctx.chain.height();
    while h > 0 {
        match ctx.chain.info_at_height(h) {
            Some(i) if hidden(&i.hash, h) => h -= 1,
            _ => break,
        }
    }
    if h == ctx.chain.height() {
        return;
    }
    if let Some(i) = ctx.chain.info_at_height(h) {
        hs.tip = i.hash;
        hs.height = i.height;
        hs.chainwork = i.chainwork.to_u256().to_be_bytes::<32>();
    }
}

/// Cuts a sync answer at the first hidden block: a traitor never serves
/// its private branch.
pub(super) fn cut_hidden(
    ctx: &StrategyContext<'_>,
    blocks: &mut Vec<Vec<u8>>,
    hidden: impl Fn(&BlockHash, u32) -> bool,
) {
    if let Some(cut) = blocks.iter().position(|b| {
        b.len() >= 80 && {
            let hash = BlockHash(crate::consensus::sha256d(&b[..80]));
            ctx.chain
                .block_info(&hash)
                .is_some_and(|i| hidden(&hash, i.height))
        }
    }) {
        blocks.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_round_trip_and_bad_names_are_refused() {
        for s in [
            "honest",
            "selfish",
            "withhold",
            "equivocate",
            "spam-invalid",
            "double-spend:6",
            "double-spend:0",
            "double-spend:3:25",
            "stubborn:L",
            "stubborn:F",
            "stubborn:T2",
            "stubborn:LFT1",
            "optimal-selfish:0.35",
            "optimal-selfish:0.4:0.5",
            "withhold-every:3",
        ] {
            let parsed: StrategySpec = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
        }
        assert_eq!(
            "double-spend:6".parse::<StrategySpec>().unwrap(),
            StrategySpec::double_spend(6, DEFAULT_GIVE_UP_BEHIND)
        );
        for bad in [
            "",
            "evil",
            "double-spend",
            "double-spend:",
            "double-spend:x",
            "double-spend:1:0",
            "double-spend:1:2:3",
            "double-spend:-1",
            "honest:1",
            "stubborn",
            "stubborn:X",
            "stubborn:LL",
            "stubborn:T",
            "optimal-selfish",
            "optimal-selfish:0.6",
            "optimal-selfish:0.3:2",
            "withhold-every:1",
        ] {
            assert!(bad.parse::<StrategySpec>().is_err(), "{bad}");
        }
    }
}
