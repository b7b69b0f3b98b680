//! In-memory integration tests: the chain store, real mainnet data, the
//! sans-io protocol core driven with a fake clock, the simulator and the
//! traitor strategies. Nothing here opens a socket or starts a process,
//! except the `sim` CLI checks that run the built binary once each.

#[path = "../util/mod.rs"]
mod util;

mod chain;
mod mainnet_data;
mod protocol;
mod serving;
mod sim;
mod store;
mod traitors;
