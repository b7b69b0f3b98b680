//! Traitor strategies: how a node mines and what it tells its peers.
//!
//! A strategy lives in the protocol core ([`super::NodeCore`]), so the same
//! code runs in `powchain node --strategy` and in `powchain sim`. The honest
//! node mines on its best tip and publishes at once; the others are the
//! attacks the literature measures:
//!
//! - [`Strategy::Selfish`]: Eyal & Sirer, "Majority is not Enough: Bitcoin
//!   Mining is Vulnerable" (FC 2014), Algorithm 1 (SM1).
//! - [`Strategy::DoubleSpend`]: the race of Nakamoto 2008 §11 as Rosenfeld,
//!   "Analysis of Hashrate-Based Double Spending" (2014) models it, with one
//!   block pre-mined before the payment.
//! - [`Strategy::Withhold`]: mines and never publishes (pure hashrate loss).
//! - [`Strategy::Equivocate`]: two blocks at one height, one to each half of
//!   its peers.
//! - [`Strategy::SpamInvalid`]: blocks with valid proof of work that break
//!   one other rule.

use std::fmt;
use std::str::FromStr;

use crate::consensus::{BlockHash, Txid};

/// Blocks behind the public chain at which a double-spender gives up when
/// `double-spend:Z` names no other depth.
pub const DEFAULT_GIVE_UP_BEHIND: u32 = 10;

/// A node's strategy (`--strategy`, `--adversary NODE:STRATEGY`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Mine on the best tip, publish at once.
    #[default]
    Honest,
    /// Eyal–Sirer SM1: keep found blocks private and publish them to match
    /// or override the public chain.
    Selfish,
    /// Rosenfeld's double-spend race.
    DoubleSpend {
        /// Confirmations the merchant waits for (the block holding the
        /// payment counts as the first).
        confirmations: u32,
        /// Blocks behind the public chain at which the attacker abandons
        /// the round.
        give_up_behind: u32,
    },
    /// Mine, never publish.
    Withhold,
    /// Two blocks at one height, one to each half of the peers.
    Equivocate,
    /// Valid proof of work, one broken rule (merkle root, bits, time,
    /// coinbase height), to every peer.
    SpamInvalid,
}

impl Strategy {
    /// Whether this is the honest strategy.
    #[must_use]
    pub fn is_honest(self) -> bool {
        self == Strategy::Honest
    }
}

/// A strategy name that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown strategy {0:?}: expected honest, selfish, double-spend:Z[:GIVE_UP], withhold, equivocate or spam-invalid")]
pub struct StrategyParseError(pub String);

impl FromStr for Strategy {
    type Err = StrategyParseError;

    /// `honest`, `selfish`, `double-spend:Z` (or `double-spend:Z:D` to give
    /// up D blocks behind), `withhold`, `equivocate`, `spam-invalid`.
    fn from_str(s: &str) -> Result<Strategy, StrategyParseError> {
        let bad = || StrategyParseError(s.chars().take(64).collect());
        Ok(match s {
            "honest" => Strategy::Honest,
            "selfish" => Strategy::Selfish,
            "withhold" => Strategy::Withhold,
            "equivocate" => Strategy::Equivocate,
            "spam-invalid" => Strategy::SpamInvalid,
            _ => {
                let rest = s.strip_prefix("double-spend:").ok_or_else(bad)?;
                let mut parts = rest.split(':');
                let confirmations = parts
                    .next()
                    .and_then(|z| z.parse::<u32>().ok())
                    .filter(|&z| z <= 1000)
                    .ok_or_else(bad)?;
                let give_up_behind = match parts.next() {
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
                Strategy::DoubleSpend {
                    confirmations,
                    give_up_behind,
                }
            }
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Honest => f.write_str("honest"),
            Strategy::Selfish => f.write_str("selfish"),
            Strategy::DoubleSpend {
                confirmations,
                give_up_behind,
            } => {
                if *give_up_behind == DEFAULT_GIVE_UP_BEHIND {
                    write!(f, "double-spend:{confirmations}")
                } else {
                    write!(f, "double-spend:{confirmations}:{give_up_behind}")
                }
            }
            Strategy::Withhold => f.write_str("withhold"),
            Strategy::Equivocate => f.write_str("equivocate"),
            Strategy::SpamInvalid => f.write_str("spam-invalid"),
        }
    }
}

/// The rule a spam-invalid block breaks (cycled in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        /// `match`, `override`, `lead` (SM1's cases), `stop` (mining
        /// switched off: a private lead is cashed in) or `double-spend`
        why: &'static str,
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
        ] {
            let parsed: Strategy = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
        }
        assert_eq!(
            "double-spend:6".parse::<Strategy>().unwrap(),
            Strategy::DoubleSpend {
                confirmations: 6,
                give_up_behind: DEFAULT_GIVE_UP_BEHIND
            }
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
        ] {
            assert!(bad.parse::<Strategy>().is_err(), "{bad}");
        }
    }
}
