//! The swarm side of the node driver: the gossip topics, and the
//! [`SwarmDriver`] that turns swarm events into [`Input`]s for the core
//! thread and executes the network [`Output`]s it sends back (publish,
//! verdict, request, response, dial, disconnect, ban). It maps the core's
//! request ids to libp2p's, keeps the response channels and the swarm's
//! block list of banned ids; it decides nothing.

use std::collections::HashMap;
use std::sync::Arc;

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::Swarm;

use super::{CoreMsg, Shared};
use crate::consensus::Params;
use crate::p2p::{Behaviour, BehaviourEvent, SyncRequest, SyncResponse};
use crate::protocol::messages::BUSY_REASON;
use crate::protocol::{GossipId, InboundId, Input, Output, RequestId, Topic, Verdict};

/// The gossip topics of this network.
pub(super) struct Topics {
    pub(super) blocks: IdentTopic,
    pub(super) tx: IdentTopic,
}

impl Topics {
    pub(super) fn new(params: &Params) -> Topics {
        Topics {
            blocks: IdentTopic::new(params.blocks_topic()),
            tx: IdentTopic::new(params.tx_topic()),
        }
    }

    fn of(&self, hash: &gossipsub::TopicHash) -> Topic {
        if *hash == self.blocks.hash() {
            Topic::Blocks
        } else if *hash == self.tx.hash() {
            Topic::Transactions
        } else {
            Topic::Other
        }
    }
}

/// The swarm side: maps events to inputs and executes network outputs.
pub(super) struct SwarmDriver {
    pub(super) swarm: Swarm<Behaviour>,
    topics: Topics,
    shared: Arc<Shared>,
    /// libp2p's ids of requests the core sent, to the core's ids.
    outbound: HashMap<OutboundRequestId, RequestId>,
    /// Response channels of requests received, by the id the core echoes.
    channels: HashMap<InboundId, ResponseChannel<SyncResponse>>,
    next_inbound: u64,
    /// Peer ids on the swarm's block list, with the end of their ban
    /// (Unix ms).
    bans: HashMap<libp2p::PeerId, u64>,
}

/// How often the swarm task lifts ended bans from its block list.
pub(super) const BAN_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

impl SwarmDriver {
    /// A driver over `swarm`, with no request in flight and no ban.
    pub(super) fn new(swarm: Swarm<Behaviour>, topics: Topics, shared: Arc<Shared>) -> Self {
        SwarmDriver {
            swarm,
            topics,
            shared,
            outbound: HashMap::new(),
            channels: HashMap::new(),
            next_inbound: 0,
            bans: HashMap::new(),
        }
    }

    /// Takes the peers whose ban has ended off the swarm's block list.
    pub(super) fn lift_bans(&mut self, now_ms: u64) {
        let b = self.swarm.behaviour_mut();
        self.bans.retain(|peer, until| {
            let active = *until > now_ms;
            if !active {
                b.blocked.unblock_peer(*peer);
                tracing::info!(%peer, "ban ended; the peer may connect again");
            }
            active
        });
    }

    /// Sends `i` to the core thread. A peer's gossip or request that
    /// does not fit the input queue ([`super::gate`]) is dropped and
    /// counted, never waited for: a dropped gossip message is reported
    /// `Ignore` (not forwarded, no penalty), a dropped request is refused
    /// as busy (an honest asker waits and asks again).
    fn input(&mut self, i: Input) {
        if let Some((kind, bytes)) = super::gate::cost(&i) {
            if !self.shared.gate.admit(bytes) {
                self.shared
                    .metrics
                    .inputs_dropped
                    .get_or_create(&vec![("kind".to_string(), kind.as_str().to_string())])
                    .inc();
                tracing::debug!(
                    kind = kind.as_str(),
                    bytes,
                    "core input queue full; dropped"
                );
                self.drop_gated(i);
                return;
            }
        }
        let _ = self.shared.commands.send(CoreMsg::Input(i));
    }

    fn drop_gated(&mut self, i: Input) {
        let b = self.swarm.behaviour_mut();
        match i {
            Input::Gossip { peer, id, .. } => {
                let _ = b.gossipsub.report_message_validation_result(
                    &gossipsub::MessageId::from(id.0.to_vec()),
                    &peer,
                    MessageAcceptance::Ignore,
                );
            }
            Input::Request { id, .. } => {
                if let Some(ch) = self.channels.remove(&id) {
                    let busy = format!("{BUSY_REASON}: input queue full");
                    let _ = b.sync.send_response(ch, SyncResponse::Refused(busy));
                }
            }
            _ => {}
        }
    }

    pub(super) fn execute(&mut self, o: Output) {
        let b = self.swarm.behaviour_mut();
        match o {
            Output::Publish { topic, data } => {
                let t = match topic {
                    Topic::Blocks => self.topics.blocks.clone(),
                    Topic::Transactions | Topic::Other => self.topics.tx.clone(),
                };
                match b.gossipsub.publish(t, data) {
                    Ok(_)
                    | Err(
                        gossipsub::PublishError::Duplicate
                        | gossipsub::PublishError::NoPeersSubscribedToTopic,
                    ) => {}
                    Err(e) => tracing::warn!("publish failed: {e}"),
                }
            }
            Output::Verdict { peer, id, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                let _ = b.gossipsub.report_message_validation_result(
                    &gossipsub::MessageId::from(id.0.to_vec()),
                    &peer,
                    acceptance,
                );
            }
            Output::SendRequest { peer, id, request } => {
                let oid = b.sync.send_request(&peer, request);
                self.outbound.insert(oid, id);
            }
            Output::Respond { id, response, .. } => {
                if let Some(ch) = self.channels.remove(&id) {
                    let _ = b.sync.send_response(ch, response);
                }
            }
            Output::Dial(addr) => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::debug!(%addr, "dial failed: {e}");
                }
            }
            Output::Ban { peer, until_ms } => {
                // Below the core: the swarm denies the id's connections
                // until the ban ends (lifted by `lift_bans`).
                b.blocked.block_peer(peer);
                self.bans.insert(peer, until_ms);
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Output::Disconnect(peer) => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Output::MiningJob(_) | Output::Event(_) | Output::TxResult(_) => {}
        }
    }

    pub(super) fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::IncomingConnectionError {
                error: libp2p::swarm::ListenError::Denied { cause },
                send_back_addr,
                ..
            } if cause
                .downcast_ref::<libp2p::allow_block_list::Blocked>()
                .is_some() =>
            {
                tracing::debug!(%send_back_addr, "connection of a banned peer id denied");
                self.shared.metrics.connections_denied.inc();
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with(Protocol::P2p(*self.swarm.local_peer_id()));
                tracing::info!(%full, "listening");
                eprintln!("powchain: listening on {full}");
                self.shared
                    .info
                    .lock()
                    .expect("info lock")
                    .listen
                    .push(full.to_string());
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } if num_established.get() == 1 => {
                tracing::info!(peer = %peer_id, addr = %endpoint.get_remote_address(), "peer connected");
                self.input(Input::PeerConnected {
                    peer: peer_id,
                    link: if endpoint.is_dialer() {
                        crate::protocol::Link::Outbound
                    } else {
                        crate::protocol::Link::Inbound
                    },
                    address: endpoint
                        .is_dialer()
                        .then(|| endpoint.get_remote_address().clone()),
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::info!(peer = %peer_id, "peer disconnected");
                self.input(Input::PeerDisconnected { peer: peer_id });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let mut id = [0u8; 32];
                if message_id.0.len() == 32 {
                    id.copy_from_slice(&message_id.0);
                }
                self.input(Input::Gossip {
                    peer: propagation_source,
                    id: GossipId(id),
                    topic: self.topics.of(&message.topic),
                    data: message.data,
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(list))) => {
                for (peer, addr) in list {
                    if peer != *self.swarm.local_peer_id() && !self.swarm.is_connected(&peer) {
                        tracing::info!(%peer, %addr, "mDNS discovered a peer");
                        let _ = self.swarm.dial(addr.with(Protocol::P2p(peer)));
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, "dial error: {error}");
            }
            _ => {}
        }
    }

    fn on_sync_event(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event, Message, OutboundFailure};
        match ev {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                self.next_inbound += 1;
                let id = InboundId(self.next_inbound);
                self.channels.insert(id, channel);
                if self.channels.len() > 1024 {
                    self.channels.retain(|_, c| c.is_open());
                }
                self.input(Input::Request { peer, id, request });
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(id) = self.outbound.remove(&request_id) {
                    self.input(Input::Response { peer, id, response });
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(id) = self.outbound.remove(&request_id) {
                    let malformed = matches!(&error, OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData);
                    self.input(Input::RequestFailed {
                        peer,
                        id,
                        error: error.to_string(),
                        malformed,
                    });
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound request failed: {error}");
                self.channels.retain(|_, c| c.is_open());
            }
            Event::ResponseSent { .. } => {}
        }
    }
}
