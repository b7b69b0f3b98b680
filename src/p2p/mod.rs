//! Peer-to-peer: libp2p transport and behaviours, wire messages, peer scores.
//!
//! - [`behaviour`]: the swarm (TCP + noise + yamux; gossipsub, identify,
//!   ping, request-response sync) and its configuration.
//! - [`protocol`]: the sync/handshake messages and their size-checked
//!   bincode codec; gossip payloads are Bitcoin block serializations.
//! - [`peer_score`]: penalties, decay and temporary bans.

pub mod behaviour;
pub mod peer_score;
pub mod protocol;

pub use behaviour::{build_swarm, Behaviour, BehaviourEvent};
pub use peer_score::{PeerAction, PeerScores};
pub use protocol::{Handshake, SyncRequest, SyncResponse};
