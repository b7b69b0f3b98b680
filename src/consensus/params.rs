//! Network parameters: `mainnet` (Bitcoin's genesis and rules), `testnet`
//! (local multi-node, per-block ASERT aimed at a configurable block time)
//! and `regtest` (minimum difficulty, no retarget).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::block::{bitcoin_block_from_bytes, Block, Coinbase};
use super::hash::BlockHash;
use super::merkle::merkle_root;
use super::pow::{CompactTarget, Target};
use super::time::MAX_FUTURE_BLOCK_TIME_SECS;
use super::{hash::sha256d, header::BlockHeader};

/// Which network a node runs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Bitcoin mainnet rules; header validation only, no mining.
    Mainnet,
    /// Local multi-node network with an ASERT difficulty rule.
    Testnet,
    /// Single-node or scripted tests: minimum difficulty, no retarget.
    Regtest,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Regtest => "regtest",
        })
    }
}

impl FromStr for Network {
    type Err = crate::value::ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mainnet" | "main" | "bitcoin" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "regtest" => Ok(Network::Regtest),
            other => Err(crate::value::ValueError::form(
                other,
                "a network: mainnet, testnet or regtest",
            )),
        }
    }
}

/// How the next block's `bits` are chosen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DifficultyRule {
    /// Bitcoin's window retarget every `interval` blocks.
    Bitcoin {
        /// blocks per window (2016 on mainnet)
        interval: u32,
        /// intended window duration, seconds (1,209,600 = two weeks)
        target_timespan_secs: u32,
    },
    /// Per-block exponential rule (see [`super::difficulty::asert_next_bits`]).
    Asert {
        /// seconds of schedule lag that double the target
        half_life_secs: u32,
    },
    /// The pow limit forever (regtest).
    Fixed,
}

/// Everything that makes one network's rules.
#[derive(Clone, Debug)]
pub struct Params {
    /// Which network.
    pub network: Network,
    /// Network id exchanged in the handshake: the name plus the values that
    /// change consensus (`testnet-bt5` for a 5 s testnet).
    pub network_id: String,
    /// Easiest allowed target.
    pub pow_limit: Target,
    /// The pow limit in compact form (also the genesis bits).
    pub pow_limit_bits: CompactTarget,
    /// The difficulty rule.
    pub difficulty: DifficultyRule,
    /// Intended seconds between blocks.
    pub block_time_secs: u32,
    /// Bits of blocks 1 and 2 (the per-block rule starts from them): the
    /// pow limit unless a testnet is started at a measured difficulty.
    pub start_bits: CompactTarget,
    /// How far a header's time may be ahead of node time, seconds (Core's
    /// `MAX_FUTURE_BLOCK_TIME`, 2 h; a testnet scales it with its block
    /// time, see [`Params::testnet_at`]).
    pub max_future_block_time_secs: u64,
    /// Largest serialized block, bytes.
    pub max_block_bytes: usize,
    /// Largest single transaction, bytes.
    pub max_tx_bytes: usize,
    /// BIP94 time-warp rule at retarget boundaries.
    pub enforce_bip94: bool,
    /// Whether blocks on this network carry powchain's coinbase and may be mined.
    pub mining_allowed: bool,
    /// The genesis block.
    pub genesis: Block,
    /// Its hash.
    pub genesis_hash: BlockHash,
}

/// Bitcoin's genesis block, serialized (a published constant; the same
/// bytes as `tests/data/block-000000.hex`).
const MAINNET_GENESIS_HEX: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c0101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";

/// Genesis time of powchain's own networks: 2026-01-01T00:00:00Z.
pub const POWCHAIN_GENESIS_TIME: u32 = 1_767_225_600;

/// Default testnet block time, seconds.
pub const DEFAULT_TESTNET_BLOCK_TIME_SECS: u32 = 2;

impl Params {
    /// Parameters for `network`; `block_time_secs` matters for testnet only
    /// (`None` = [`DEFAULT_TESTNET_BLOCK_TIME_SECS`]).
    #[must_use]
    pub fn for_network(network: Network, block_time_secs: Option<u32>) -> Params {
        match network {
            Network::Mainnet => Params::mainnet(),
            Network::Testnet => {
                Params::testnet(block_time_secs.unwrap_or(DEFAULT_TESTNET_BLOCK_TIME_SECS))
            }
            Network::Regtest => Params::regtest(),
        }
    }

    /// Bitcoin mainnet: pow limit `0x1d00ffff`, 2016-block retarget over two
    /// weeks (Core's `CMainParams`).
    #[must_use]
    pub fn mainnet() -> Params {
        let bytes = hex::decode(MAINNET_GENESIS_HEX).expect("the mainnet genesis constant is hex");
        let genesis =
            bitcoin_block_from_bytes(&bytes).expect("the mainnet genesis constant parses");
        let bits = CompactTarget::from_consensus(0x1d00ffff);
        Params {
            network: Network::Mainnet,
            network_id: "mainnet".into(),
            pow_limit: Target::from_compact(bits).expect("valid pow limit"),
            pow_limit_bits: bits,
            difficulty: DifficultyRule::Bitcoin {
                interval: 2016,
                target_timespan_secs: 14 * 24 * 60 * 60,
            },
            block_time_secs: 600,
            start_bits: bits,
            max_future_block_time_secs: MAX_FUTURE_BLOCK_TIME_SECS,
            max_block_bytes: 1_000_000,
            max_tx_bytes: 100_000,
            enforce_bip94: false,
            mining_allowed: false,
            genesis_hash: genesis.block_hash(),
            genesis,
        }
    }

    /// Local testnet: pow limit `0x1f00ffff` (about 65,536 hashes a block),
    /// ASERT with a half-life of two block times, so a fresh network climbs
    /// from the limit to its block time within a few dozen blocks. The block
    /// time is written into the genesis coinbase, so testnets with different
    /// block times have different genesis hashes and refuse each other.
    #[must_use]
    pub fn testnet(block_time_secs: u32) -> Params {
        Self::testnet_at(block_time_secs, None)
    }

    /// A testnet whose blocks 1 and 2 carry `start_bits` instead of the pow
    /// limit, so the first block already takes about one block time when
    /// `start_bits` comes from the network's measured hashrate (`powchain
    /// testnet` does that). The starting bits are part of the network's
    /// identity like the block time: the id becomes `testnet-bt2-s1e0a3c2f`,
    /// which changes the genesis hash. Bits easier than the pow limit are
    /// clamped to it.
    ///
    /// The future-time limit is scaled with the block time: 6 block times
    /// (at most Core's 2 h). The per-block ASERT rule has a half-life of 2
    /// block times, so one block dated at the limit makes the next target
    /// at most 2^3 = 8 times easier (and the block after it undoes that),
    /// where a 2 h limit would let one block reset the target to the pow
    /// limit.
    #[must_use]
    pub fn testnet_at(block_time_secs: u32, start_bits: Option<CompactTarget>) -> Params {
        let block_time_secs = block_time_secs.max(1);
        let bits = CompactTarget::from_consensus(TESTNET_POW_LIMIT_BITS);
        let start = testnet_start_bits(start_bits);
        let id = Params::testnet_id(block_time_secs, start_bits, false);
        let mut p = Self::powchain(
            Network::Testnet,
            id,
            bits,
            DifficultyRule::Asert {
                half_life_secs: 2 * block_time_secs,
            },
            block_time_secs,
        );
        p.start_bits = start.unwrap_or(bits);
        p.max_future_block_time_secs =
            (6 * u64::from(block_time_secs)).min(MAX_FUTURE_BLOCK_TIME_SECS);
        p
    }

    /// This testnet with its difficulty held at its start bits
    /// ([`DifficultyRule::Fixed`]) and `-fixed` appended to its network
    /// id (nodes with and without it refuse each other). For experiments
    /// that assume a constant difficulty, as Eyal & Sirer's and Rosenfeld's
    /// models do: a testnet whose miners are capped (`--hashrate-share`)
    /// has a known hashrate, so the start bits give the block time. Other
    /// networks are returned unchanged.
    #[must_use]
    pub fn with_fixed_difficulty(mut self) -> Params {
        if self.network == Network::Testnet {
            self.difficulty = DifficultyRule::Fixed;
            self.network_id.push_str("-fixed");
        }
        self
    }

    /// The network id [`Params::testnet_at`] (and, with `fixed`,
    /// [`Params::with_fixed_difficulty`]) would give, without building the
    /// genesis block (config validation needs only the id).
    #[must_use]
    pub fn testnet_id(
        block_time_secs: u32,
        start_bits: Option<CompactTarget>,
        fixed: bool,
    ) -> String {
        let block_time_secs = block_time_secs.max(1);
        let mut id = match testnet_start_bits(start_bits) {
            Some(s) => format!("testnet-bt{block_time_secs}-s{s}"),
            None => format!("testnet-bt{block_time_secs}"),
        };
        if fixed {
            id.push_str("-fixed");
        }
        id
    }

    /// [`Params::for_network`] with a testnet's starting bits.
    #[must_use]
    pub fn for_network_at(
        network: Network,
        block_time_secs: Option<u32>,
        start_bits: Option<CompactTarget>,
    ) -> Params {
        match network {
            Network::Testnet => Params::testnet_at(
                block_time_secs.unwrap_or(DEFAULT_TESTNET_BLOCK_TIME_SECS),
                start_bits,
            ),
            other => Params::for_network(other, block_time_secs),
        }
    }

    /// Regtest: pow limit `0x207fffff` (Core's regtest limit: about two
    /// hashes a block), no retarget.
    #[must_use]
    pub fn regtest() -> Params {
        Self::powchain(
            Network::Regtest,
            "regtest".into(),
            CompactTarget::from_consensus(0x207fffff),
            DifficultyRule::Fixed,
            1,
        )
    }

    fn powchain(
        network: Network,
        network_id: String,
        bits: CompactTarget,
        difficulty: DifficultyRule,
        block_time_secs: u32,
    ) -> Params {
        let pow_limit = Target::from_compact(bits).expect("valid pow limit");
        let genesis = powchain_genesis(&network_id, bits, pow_limit);
        Params {
            network,
            network_id,
            pow_limit,
            pow_limit_bits: bits,
            difficulty,
            block_time_secs,
            start_bits: bits,
            max_future_block_time_secs: MAX_FUTURE_BLOCK_TIME_SECS,
            max_block_bytes: 1_000_000,
            max_tx_bytes: 100_000,
            enforce_bip94: matches!(difficulty, DifficultyRule::Bitcoin { .. }),
            mining_allowed: true,
            genesis_hash: genesis.block_hash(),
            genesis,
        }
    }

    /// Gossip topic for blocks: `/powchain/<genesis hash hex>/blocks/1`.
    #[must_use]
    pub fn blocks_topic(&self) -> String {
        format!("/powchain/{}/blocks/1", self.genesis_hash)
    }

    /// Gossip topic for transactions: `/powchain/<genesis hash hex>/tx/1`.
    #[must_use]
    pub fn tx_topic(&self) -> String {
        format!("/powchain/{}/tx/1", self.genesis_hash)
    }
}

/// A deterministic genesis: version 1, zero parent, [`POWCHAIN_GENESIS_TIME`],
/// a coinbase naming the network id, and the first nonce that meets `bits`.
fn powchain_genesis(network_id: &str, bits: CompactTarget, target: Target) -> Block {
    let coinbase = Coinbase {
        height: 0,
        extranonce: 0,
        miner_id: format!("powchain {network_id} genesis"),
    }
    .encode();
    let root = merkle_root(&[sha256d(&coinbase)]).root;
    let mut header = BlockHeader {
        version: 1,
        prev_blockhash: BlockHash::ZERO,
        merkle_root: root,
        time: POWCHAIN_GENESIS_TIME,
        bits,
        nonce: 0,
    };
    while !target.is_met_by(&header.block_hash()) {
        header.nonce = header.nonce.wrapping_add(1);
    }
    Block {
        header,
        txdata: vec![coinbase],
    }
}

/// The testnet's pow limit, compact.
const TESTNET_POW_LIMIT_BITS: u32 = 0x1f00_ffff;

/// Start bits that change a testnet: a valid target at or below the pow
/// limit, other than the pow limit itself.
fn testnet_start_bits(start_bits: Option<CompactTarget>) -> Option<CompactTarget> {
    let limit = Target::from_compact(CompactTarget::from_consensus(TESTNET_POW_LIMIT_BITS))
        .expect("valid pow limit");
    start_bits
        .filter(|b| Target::from_compact(*b).is_ok_and(|t| t <= limit))
        .filter(|b| b.to_consensus() != TESTNET_POW_LIMIT_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11, item 10: one block dated at the future limit must not
    /// reset a testnet's per-block ASERT target. The limit is 6 block
    /// times against a half-life of 2 block times: at most 2^3 = 8 times
    /// easier for one block. Mainnet and regtest keep Core's 2 h.
    #[test]
    fn testnet_future_limit_scales_with_its_block_time() {
        for bt in [1u32, 2, 10, 600, 3600] {
            let p = Params::testnet_at(bt, None);
            let DifficultyRule::Asert { half_life_secs } = p.difficulty else {
                panic!("testnet uses ASERT");
            };
            assert_eq!(half_life_secs, 2 * bt);
            assert_eq!(
                p.max_future_block_time_secs,
                (6 * u64::from(bt)).min(MAX_FUTURE_BLOCK_TIME_SECS)
            );
            assert!(p.max_future_block_time_secs / u64::from(half_life_secs) <= 3);
        }
        assert_eq!(Params::mainnet().max_future_block_time_secs, 7200);
        assert_eq!(Params::regtest().max_future_block_time_secs, 7200);
    }

    #[test]
    fn testnet_ids_without_building_the_genesis_match() {
        for (bt, start) in [
            (2, None),
            (1, Some(CompactTarget::from_consensus(0x1d3b_6d89))),
            (5, Some(CompactTarget::from_consensus(0x1f00_ffff))),
        ] {
            let p = Params::testnet_at(bt, start);
            assert_eq!(Params::testnet_id(bt, start, false), p.network_id);
            assert_eq!(
                Params::testnet_id(bt, start, true),
                p.with_fixed_difficulty().network_id
            );
        }
        assert_eq!(Params::regtest().network_id, "regtest");
        assert_eq!(Params::mainnet().network_id, "mainnet");
    }

    #[test]
    fn mainnet_genesis_hash() {
        let p = Params::mainnet();
        assert_eq!(
            p.genesis_hash.to_hex(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        p.genesis.check_body(p.max_block_bytes).unwrap();
    }

    #[test]
    fn own_networks_have_distinct_valid_genesis() {
        let a = Params::testnet(2);
        let b = Params::testnet(5);
        let r = Params::regtest();
        assert_ne!(a.genesis_hash, b.genesis_hash);
        assert_ne!(a.genesis_hash, r.genesis_hash);
        for p in [&a, &b, &r] {
            assert!(p.pow_limit.is_met_by(&p.genesis_hash));
            p.genesis.check_body(p.max_block_bytes).unwrap();
        }
        assert!(a.blocks_topic().starts_with("/powchain/"));
    }
}
