//! Real-process integration tests: `powchain` nodes started as child
//! processes on 127.0.0.1, libp2p peers (honest and hostile) against them,
//! multi-node testnets, `watch`/`tree`/`replay`, and the fork-observer page
//! in headless Chromium.

#[path = "../util/mod.rs"]
mod util;

mod browser;
mod core_rpc;
mod discovery;
mod multiprocess;
mod observer;
mod p2p;
mod service;
mod stratum;
