//! Peering: who is connected, whom to dial, the slots configured peers
//! keep, operator partitions, and penalties (the peer book's scores and
//! bans).

use std::collections::{BTreeSet, HashMap};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::{CoreConfig, NodeCore, REDIAL};
use crate::clock::after;
use crate::protocol::peers::{peer_action, Link, Offence, PeerAction, PeerBook, BAN};
use crate::protocol::{Command, NodeEvent, Outbox, Output};

/// Most outbound peers found by discovery (mDNS) rather than configured;
/// they share the slots that configured peers leave with inbound ones
/// (Core keeps a like split: 8 full-relay outbound slots besides its
/// manual `-addnode` peers, `MAX_OUTBOUND_FULL_RELAY_CONNECTIONS`).
pub const MAX_DISCOVERED_PEERS: usize = 8;

/// The peering manager's own state.
#[derive(Debug, Default)]
pub struct Peering {
    /// Peers dropped and refused by an operator partition.
    partitioned: BTreeSet<PeerId>,
    /// When each configured address was last dialled, Unix ms.
    last_dial_ms: HashMap<Multiaddr, u64>,
}

/// The peer id an address names (`/p2p/<id>`), if any.
fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

impl Peering {
    /// When configured address `addr` may be dialled next, Unix ms: after
    /// its redial pause and any ban of the peer it names; `None` while it
    /// is connected (matched by its `/p2p/<id>` when it has one: a DNS
    /// name never equals the IP a connection reports) or partitioned off.
    fn dial_due_ms(&self, addr: &Multiaddr, peers: &PeerBook) -> Option<u64> {
        let redial = self.last_dial_ms.get(addr).map_or(0, |&t| after(t, REDIAL));
        match peer_id_of(addr) {
            Some(id) if peers.get(&id).is_some() || self.partitioned.contains(&id) => None,
            Some(id) => Some(redial.max(peers.banned_until_ms(&id).unwrap_or(0))),
            None if peers.iter().any(|(_, p)| p.address.as_ref() == Some(addr)) => None,
            None => Some(redial),
        }
    }

    /// When a configured peer that is not connected may be dialled next,
    /// Unix ms (0: now); `None` when every one is connected or refused.
    pub fn next_dial_ms(&self, config: &CoreConfig, peers: &PeerBook) -> Option<u64> {
        config
            .peers
            .iter()
            .filter_map(|addr| self.dial_due_ms(addr, peers))
            .min()
    }
}

impl NodeCore {
    pub(super) fn on_connected(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        link: Link,
        address: Option<Multiaddr>,
        out: &mut impl Outbox,
    ) {
        if self.peers.is_banned(&peer, now_ms) || self.peering.partitioned.contains(&peer) {
            out.push(Output::Disconnect(peer));
            return;
        }
        let known = self.peers.get(&peer).is_some();
        // Inbound slots are what the configured (outbound) peers leave.
        let inbound_slots = self
            .config
            .max_peers
            .saturating_sub(self.config.peers.len());
        // Inbound and discovered peers share those slots.
        let others = self.peers.inbound_count() + self.discovered_count();
        if !known && link == Link::Inbound && others >= inbound_slots {
            tracing::info!(%peer, max = self.config.max_peers, "inbound slots full; closing");
            out.push(Output::Disconnect(peer));
            return;
        }
        if !known
            && link == Link::Outbound
            && self.config.discovery
            && !self.is_configured(&peer, address.as_ref())
        {
            // Discovered (mDNS), not configured: capped, and never in a
            // configured peer's slot (issue 22, item 10: before, mDNS
            // finds filled `max_peers` and a configured peer was refused).
            let discovered = self.discovered_count();
            if discovered >= MAX_DISCOVERED_PEERS || others >= inbound_slots {
                tracing::info!(%peer, discovered, "discovered-peer slots full; closing");
                out.push(Output::Disconnect(peer));
                return;
            }
        }
        self.peers.connect(peer, link, address);
        if !known {
            self.sync.connected(peer);
            Self::event(
                out,
                NodeEvent::Peer {
                    peer,
                    connected: true,
                },
            );
            self.send_handshake(now_ms, peer, out);
        }
    }

    /// Whether an outbound connection to `peer` (dialled at `address`)
    /// is to a configured peer: matched by the `/p2p/<id>` of a configured
    /// address, or by the address itself when it names no id.
    fn is_configured(&self, peer: &PeerId, address: Option<&Multiaddr>) -> bool {
        self.config.peers.iter().any(|c| match peer_id_of(c) {
            Some(id) => id == *peer,
            None => address.is_some_and(|a| {
                a == c
                    || a.iter()
                        .filter(|p| !matches!(p, Protocol::P2p(_)))
                        .eq(c.iter())
            }),
        })
    }

    /// Connected outbound peers that are not configured, found by
    /// discovery (mDNS); 0 when discovery is off (then every outbound
    /// connection is one the operator or the simulator's topology made).
    fn discovered_count(&self) -> usize {
        if !self.config.discovery {
            return 0;
        }
        self.peers
            .iter()
            .filter(|(id, p)| {
                p.link == Link::Outbound && !self.is_configured(id, p.address.as_ref())
            })
            .count()
    }

    pub(super) fn on_disconnected(&mut self, now_ms: u64, peer: PeerId, out: &mut impl Outbox) {
        if self.forget_peer(peer, out) {
            self.start_syncs(now_ms, out);
        }
    }

    /// Drops a peer from the book and from sync; true if it was connected.
    fn forget_peer(&mut self, peer: PeerId, out: &mut impl Outbox) -> bool {
        self.sync.disconnected(&peer);
        if self.peers.disconnect(&peer).is_some() {
            Self::event(
                out,
                NodeEvent::Peer {
                    peer,
                    connected: false,
                },
            );
            true
        } else {
            false
        }
    }

    /// Applies the table's action for `offence` to `peer`; bans and
    /// disconnects when the score falls through the threshold.
    pub(super) fn offence(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        offence: &Offence<'_>,
        why: &str,
        out: &mut impl Outbox,
    ) {
        let Some(action) = peer_action(offence) else {
            return;
        };
        self.penalise(now_ms, peer, action, why, out);
    }

    fn penalise(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        action: PeerAction,
        why: &str,
        out: &mut impl Outbox,
    ) {
        let banned = self.peers.penalise(peer, action, now_ms);
        tracing::warn!(%peer, ?action, why, banned, "peer penalised");
        Self::event(
            out,
            NodeEvent::Penalised {
                peer,
                action,
                reason: why.to_string(),
                banned,
            },
        );
        if banned {
            out.push(Output::Ban {
                peer,
                until_ms: after(now_ms, BAN),
            });
            out.push(Output::Disconnect(peer));
            self.forget_peer(peer, out);
        }
    }

    /// Dials every configured peer that is not connected, not refused and
    /// not dialled in the last [`REDIAL`]. An address with a
    /// `/p2p/<id>` is matched by that id (a DNS name never equals the IP a
    /// connection reports).
    pub(super) fn dial_peers(&mut self, now_ms: u64, out: &mut impl Outbox) {
        let to_dial: Vec<Multiaddr> = self
            .config
            .peers
            .iter()
            .filter(|addr| {
                self.peering
                    .dial_due_ms(addr, &self.peers)
                    .is_some_and(|due| due <= now_ms)
            })
            .cloned()
            .collect();
        for addr in to_dial {
            self.peering.last_dial_ms.insert(addr.clone(), now_ms);
            out.push(Output::Dial(addr));
        }
    }

    pub(super) fn on_command(&mut self, now_ms: u64, c: Command, out: &mut impl Outbox) {
        match c {
            Command::SetMining(on) => self.set_mining(now_ms, on, out),
            Command::Partition(peers) => {
                tracing::warn!(
                    peers = peers.len(),
                    "partition: dropping and refusing peers"
                );
                for p in &peers {
                    out.push(Output::Disconnect(*p));
                }
                self.peering.partitioned = peers.into_iter().collect();
            }
            Command::AddPeer(addr) => {
                if !self.config.peers.contains(&addr) {
                    tracing::info!(%addr, "peer added");
                    self.config.peers.push(addr);
                }
                self.dial_peers(now_ms, out);
            }
            Command::Heal => {
                tracing::warn!("partition healed");
                self.peering.partitioned.clear();
                self.peering.last_dial_ms.clear();
                self.dial_peers(now_ms, out);
            }
        }
    }
}
