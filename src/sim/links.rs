//! The simulated network's links: addresses the cores dial, latencies,
//! connections, partitions and heals.

use rand::Rng;

use super::{Delivery, HashSet, Network};
use crate::protocol::{Command, Link};

impl Network {
    /// Node `i`'s address, as the cores dial it: `/memory/<i>/p2p/<id>`.
    #[must_use]
    pub fn address(&self, i: usize) -> libp2p::Multiaddr {
        libp2p::Multiaddr::empty()
            .with(libp2p::multiaddr::Protocol::Memory(i as u64))
            .with(libp2p::multiaddr::Protocol::P2p(self.nodes[i].peer_id))
    }

    /// Configures node `a` to dial `b` and keep it dialled (its core's
    /// [`Command::AddPeer`]): the link comes up when the core's dial is
    /// carried out, and is redialled by the core after a cut heals.
    pub fn add_peer(&mut self, a: usize, b: usize) {
        let addr = self.address(b);
        self.command(a, Command::AddPeer(addr))
            .expect("in-memory store never fails");
    }

    /// Sets the one-way latency from `from` to `to` (ms), overriding the
    /// model (directional: the other way keeps its own).
    pub fn set_latency(&mut self, from: usize, to: usize, ms: u64) {
        self.link_ms.insert((from, to), ms);
    }

    pub(super) fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    /// Delay of a message of `bytes` from `from` to `to`, or `None` when
    /// the loss rate drops it.
    pub(super) fn delay(&mut self, from: usize, to: usize, bytes: usize) -> Option<u64> {
        if self.loss > 0.0 && self.rng.random::<f64>() < self.loss {
            self.record.stats.lost += 1;
            return None;
        }
        let base = match self.link_ms.get(&(from, to)) {
            Some(&ms) => ms,
            None => {
                let link = self.latency_model.sample(&mut self.rng);
                self.link_ms.insert((from, to), link + self.access_ms[to]);
                self.link_ms
                    .entry((to, from))
                    .or_insert(link + self.access_ms[from]);
                link + self.access_ms[to]
            }
        };
        let transfer = self
            .bandwidth_bytes_per_sec
            .map_or(0, |bw| (bytes as u64 * 1000).div_ceil(bw.max(1)));
        Some(base + transfer)
    }

    /// Connects nodes `a` (dialling) and `b`.
    pub fn connect(&mut self, a: usize, b: usize) {
        if a == b || !self.links.insert((a.min(b), a.max(b))) {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            if let Err(pos) = self.adj[x].binary_search(&y) {
                self.adj[x].insert(pos, y);
            }
        }
        self.schedule(
            0,
            a,
            Delivery::Connected {
                from: b,
                link: Link::Outbound,
            },
        );
        self.schedule(
            0,
            b,
            Delivery::Connected {
                from: a,
                link: Link::Inbound,
            },
        );
    }

    /// Closes the link between `a` and `b`.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        if self.links.remove(&(a.min(b), a.max(b))) {
            for (x, y) in [(a, b), (b, a)] {
                if let Ok(pos) = self.adj[x].binary_search(&y) {
                    self.adj[x].remove(pos);
                }
            }
            self.schedule(0, a, Delivery::Disconnected { from: b });
            self.schedule(0, b, Delivery::Disconnected { from: a });
        }
    }

    /// Cuts every link between `side` and the other nodes, until
    /// [`Network::heal`].
    pub fn partition(&mut self, side: &[usize]) {
        let side: HashSet<usize> = side.iter().copied().collect();
        let cut: Vec<(usize, usize)> = self
            .links
            .iter()
            .filter(|(a, b)| side.contains(a) != side.contains(b))
            .copied()
            .collect();
        for (a, b) in cut {
            self.disconnect(a, b);
            self.cut.insert((a, b));
        }
    }

    /// Restores the links a partition cut.
    pub fn heal(&mut self) {
        let cut = std::mem::take(&mut self.cut);
        for (a, b) in cut {
            self.connect(a, b);
        }
    }

    /// Carries out a dial: the link comes up unless a partition cuts it.
    pub(super) fn dial(&mut self, from: usize, addr: &libp2p::Multiaddr) {
        let to = addr.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => self.index.get(&id).copied(),
            _ => None,
        });
        let Some(to) = to else { return };
        if self.cut.contains(&(from.min(to), from.max(to))) {
            return;
        }
        self.connect(from, to);
    }
}
