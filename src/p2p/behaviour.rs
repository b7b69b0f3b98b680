//! The libp2p swarm: TCP + noise + yamux, gossipsub (blocks and txs),
//! identify, ping, and the `/powchain/sync/1` request-response protocol.
//!
//! Gossipsub settings follow `../shared/LIBP2P-NOTES.md`: one identical
//! `max_transmit_size` on every node (largest block + 64 KiB for the signed
//! envelope), content-addressed message ids (SHA-256 of the payload, so
//! duplicates die and a garbage copy cannot shadow a block), `Strict` validation with signed messages, and
//! `validate_messages()` so nothing is forwarded before the node says so.

use std::time::Duration;

use libp2p::gossipsub::{self, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    connection_limits, identify, identity::Keypair, noise, ping, request_response, tcp, yamux,
    Swarm,
};

use super::protocol::{SyncCodec, SYNC_PROTOCOL};
use crate::consensus::Params;

/// Gossip envelope allowance on top of the largest block, bytes.
pub const GOSSIP_OVERHEAD_BYTES: usize = 64 * 1024;

/// Pending handshakes accepted at once, inbound.
pub const MAX_PENDING_INCOMING: u32 = 16;
/// Pending dials at once.
pub const MAX_PENDING_OUTGOING: u32 = 32;
/// Connections to one peer id (two allow a simultaneous dial both ways).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Seconds a connection with no stream open lives on. Honest peers
/// exchange a handshake every few seconds, so only idle strangers go.
pub const IDLE_CONNECTION_SECS: u64 = 120;

/// Connection limits for a node that keeps at most `max_peers` peers, of
/// which `configured` are its own outbound peers: inbound connections get
/// what the configured peers leave, so a flood of inbound connections
/// (from one key or many) cannot take the slots of the peers the operator
/// named; pending handshakes and connections per peer id are capped, as
/// `libp2p-connection-limits` enforces before a connection is established.
#[must_use]
pub fn connection_limits(
    max_peers: usize,
    configured: usize,
) -> connection_limits::ConnectionLimits {
    let max_peers = u32::try_from(max_peers).unwrap_or(u32::MAX).max(1);
    let configured = u32::try_from(configured).unwrap_or(u32::MAX);
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
        .with_max_pending_outgoing(Some(MAX_PENDING_OUTGOING))
        .with_max_established_incoming(Some(max_peers.saturating_sub(configured).max(1)))
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
        .with_max_established(Some(max_peers.saturating_mul(MAX_CONNECTIONS_PER_PEER)))
}

/// All behaviours of a powchain node.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Peer ids the core banned: their connections are denied as they are
    /// established, below the core (libp2p-allow-block-list), so a banned
    /// id's reconnect never reaches gossip or sync.
    pub blocked: libp2p::allow_block_list::Behaviour<libp2p::allow_block_list::BlockedPeers>,
    /// Connection limits (pending, established, per peer).
    pub limits: connection_limits::Behaviour,
    /// Block and transaction gossip.
    pub gossipsub: gossipsub::Behaviour,
    /// Peer identification (agent, listen addresses).
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Handshake and block sync.
    pub sync: request_response::Behaviour<SyncCodec>,
    /// LAN discovery (`--mdns`); off by default.
    pub mdns: Toggle<libp2p::mdns::tokio::Behaviour>,
}

/// Message id: SHA-256 of the whole payload (SPEC: content addressed), so
/// a copy of a fresh block with a garbage body has an id of its own and
/// cannot shadow the honest block in gossipsub's duplicate cache. The
/// protocol core computes the same id ([`crate::protocol::GossipId::of`]).
fn message_id(m: &gossipsub::Message) -> MessageId {
    MessageId::from(crate::protocol::GossipId::of(&m.data).0.to_vec())
}

/// The swarm could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// The TCP/noise/yamux transport.
    #[error("tcp transport: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// One behaviour refused its configuration (libp2p gives these as
    /// text: gossipsub's constructor errors are `&'static str`).
    #[error("{0}: {1}")]
    Part(&'static str, String),
    /// The behaviour builder failed.
    #[error("behaviour: {0}")]
    Behaviour(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Builds the swarm for `params` with identity `keypair` under `limits`
/// ([`connection_limits()`]); `mdns` turns on LAN discovery.
///
/// # Errors
/// [`SwarmError`] naming the failing part.
pub fn build_swarm(
    keypair: Keypair,
    params: &Params,
    mdns: bool,
    limits: connection_limits::ConnectionLimits,
) -> Result<Swarm<Behaviour>, SwarmError> {
    let max_transmit = params.max_block_bytes + GOSSIP_OVERHEAD_BYTES;
    let agent = format!("powchain/{}", env!("CARGO_PKG_VERSION"));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| SwarmError::Transport(Box::new(e)))?
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(max_transmit)
                .validation_mode(ValidationMode::Strict)
                .validate_messages()
                .heartbeat_interval(Duration::from_millis(500))
                .duplicate_cache_time(Duration::from_secs(120))
                .message_id_fn(message_id)
                .build()
                .map_err(|e| SwarmError::Part("gossipsub config", e.to_string()))?;
            let gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
                    .map_err(|e| SwarmError::Part("gossipsub", e.to_string()))?;
            let identify = identify::Behaviour::new(
                identify::Config::new("/powchain/id/1".into(), key.public())
                    .with_agent_version(agent),
            );
            let sync = request_response::Behaviour::with_codec(
                SyncCodec,
                [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
            );
            let mdns = if mdns {
                Some(
                    libp2p::mdns::tokio::Behaviour::new(
                        libp2p::mdns::Config::default(),
                        key.public().to_peer_id(),
                    )
                    .map_err(|e| SwarmError::Part("mdns", e.to_string()))?,
                )
            } else {
                None
            };
            Ok(Behaviour {
                blocked: libp2p::allow_block_list::Behaviour::default(),
                limits: connection_limits::Behaviour::new(limits),
                gossipsub,
                identify,
                ping: ping::Behaviour::new(ping::Config::new()),
                sync,
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| SwarmError::Behaviour(Box::new(e)))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(IDLE_CONNECTION_SECS))
        })
        .build();
    Ok(swarm)
}
