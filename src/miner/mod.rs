//! The miner: SHA-256d backends ([`sha256d`]) and the worker threads that
//! drive them ([`worker`]).

pub mod bench;
pub mod sha256d;
pub mod worker;

pub use sha256d::{Backend, BackendError, ScanInput, ScanResult};
