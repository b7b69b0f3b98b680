//! The HTTP API's JSON shapes and a client for them.
//!
//! - [`types`]: every object SPEC names (status, header, block, tip, stale,
//!   orphan, re-org, tree, bench, mine-header, verify-headers, testnet
//!   report) as `Serialize + Deserialize` structs. The server
//!   (`node::api`) writes them, `powchain status`, `testnet` and the tests
//!   read them: one definition of each field name.
//! - [`client`]: [`ApiClient`], one reused HTTP agent with typed errors and
//!   the cookie token for POSTs.

pub mod client;
pub mod cookie;
pub mod host;
pub mod types;

pub use client::{ApiClient, ApiError};
pub use cookie::{read_cookie, COOKIE_FILE};
