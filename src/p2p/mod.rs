//! Peer-to-peer transport: the libp2p swarm and the wire codec.
//!
//! - [`behaviour`]: the swarm (TCP + noise + yamux; gossipsub, identify,
//!   ping, request-response sync, connection limits) and its configuration.
//! - [`protocol`]: the size-checked bincode codec of the sync messages
//!   (the messages themselves are [`crate::protocol::messages`]); gossip
//!   payloads are Bitcoin block serializations.
//!
//! What a peer's messages *mean* is decided by the protocol core
//! ([`crate::protocol::NodeCore`]); this module only moves bytes.

pub mod behaviour;
pub mod protocol;

pub use crate::protocol::messages::{Handshake, SyncRequest, SyncResponse};
pub use behaviour::{build_swarm, connection_limits, Behaviour, BehaviourEvent};
