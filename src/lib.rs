//! # powchain
//!
//! A Nakamoto proof-of-work consensus node: Bitcoin-compatible headers and
//! sha256d proof of work, a SIMD multithreaded miner, a chain store that
//! follows the most chainwork through re-orgs, stale and orphan blocks,
//! libp2p gossip between peers, a one-command local testnet, and a
//! deterministic simulator that runs the node's own protocol code.
//!
//! # Layout
//! Data flows one way: inputs reach the protocol core, which consults the
//! consensus rules and the chain store and answers with outputs that the
//! drivers carry out.
//! - [`consensus`]: pure rules (header, block, merkle, targets and work,
//!   difficulty, time, network params, the [`consensus::ChainView`] of a
//!   branch). No I/O, no clock, no async.
//! - [`chain`]: the block tree, fork choice, re-orgs, orphan pool, tips,
//!   locators and the durable store (redb, or memory).
//! - [`protocol`]: the node as a sans-io state machine
//!   ([`protocol::NodeCore`]): sync messages, the peer book and the one
//!   peer-action table, the mempool. No tokio, no sockets, no clock reads.
//! - [`miner`]: sha256d kernels, mining threads, hashrate measurement.
//! - [`p2p`]: the libp2p swarm and the wire codec.
//! - [`node`]: the tokio/libp2p driver of the core, the HTTP API, metrics.
//! - [`api`]: the API's JSON shapes and a typed client.
//! - [`sim`]: a deterministic network of protocol cores in virtual time.
//! - [`testnet`]: N real node processes on loopback, and their report.
//! - [`cli`]: one file per subcommand; [`config`]: TOML and flags;
//!   [`clock`]: the one wall clock the drivers read.
pub mod api;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod miner;
pub mod node;
pub mod observer;
pub mod p2p;
pub mod protocol;
pub mod sim;
pub mod testnet;
pub mod value;
