//! # powchain
//!
//! A Nakamoto proof-of-work consensus node: Bitcoin-compatible headers and
//! sha256d proof of work, a SIMD multithreaded miner, a chain store that
//! follows the most chainwork through re-orgs, stale and orphan blocks,
//! libp2p gossip between peers, and a one-command local testnet.
//!
//! # Layout
//! - [`consensus`]: pure rules (header, block, merkle, targets and work,
//!   difficulty, time, network params). No I/O, no clock, no async.
pub mod api;
pub mod chain;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod miner;
pub mod node;
pub mod p2p;
pub mod protocol;
pub mod sim;
pub mod testnet;
