//! Consensus rules: pure functions and types, no I/O, no clock reads, no
//! async. Everything that decides whether a header or block is valid lives
//! here, so the chain store, the miner and the network all apply one rule set.
//!
//! Time enters only as an argument (`now_secs`), and chain context enters
//! through the [`ChainView`] trait, so every rule is testable with real
//! mainnet data and with made-up chains alike.

pub mod block;
pub mod chain_view;
pub mod difficulty;
pub mod error;
pub mod hash;
pub mod header;
pub mod merkle;
pub mod params;
pub mod pow;
pub mod template;
pub mod time;
pub mod validation;

pub use block::{Block, Coinbase};
pub use error::{BlockError, CompactError, DecodeError, HeaderError};
pub use hash::{sha256d, BlockHash, Txid};
pub use header::BlockHeader;
pub use params::{DifficultyRule, Network, Params};
pub use pow::{CompactTarget, Target, Work};
pub use template::BlockTemplate;
pub use validation::{check_block, check_block_at_height, check_header, ChainView, SliceView};
