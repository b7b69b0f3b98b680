//! Peer scores: penalties by severity, exponential decay, temporary bans.
//!
//! Every peer-facing failure maps to a [`PeerAction`]; a peer whose score
//! falls to [`BAN_THRESHOLD`] is banned for [`BAN_SECS`]. Scores decay
//! towards zero with a half-life of [`HALF_LIFE_SECS`]. Time is passed in
//! (`now_secs`), never read here, so tests move it freely.

use std::collections::HashMap;

use libp2p::PeerId;

/// Score at or below which a peer is banned.
pub const BAN_THRESHOLD: f64 = -100.0;
/// Ban duration, seconds.
pub const BAN_SECS: u64 = 600;
/// Score half-life, seconds.
pub const HALF_LIFE_SECS: f64 = 300.0;

/// What a peer did wrong, by tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAction {
    /// Provably malicious: invalid proof of work, wrong network. Ban at once.
    Fatal,
    /// Invalid block or malformed message: a few of these ban.
    HighTolerance,
    /// Useless but maybe honest: orphan floods, duplicate junk.
    LowTolerance,
}

impl PeerAction {
    /// Score change.
    #[must_use]
    pub fn penalty(self) -> f64 {
        match self {
            PeerAction::Fatal => -100.0,
            PeerAction::HighTolerance => -25.0,
            PeerAction::LowTolerance => -5.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Score {
    value: f64,
    updated_secs: u64,
}

/// Scores and bans of all peers.
#[derive(Default, Debug)]
pub struct PeerScores {
    scores: HashMap<PeerId, Score>,
    banned_until: HashMap<PeerId, u64>,
}

impl PeerScores {
    /// Applies `action` to `peer` at `now_secs`; returns true when this
    /// bans the peer.
    pub fn penalise(&mut self, peer: PeerId, action: PeerAction, now_secs: u64) -> bool {
        let s = self.scores.entry(peer).or_insert(Score {
            value: 0.0,
            updated_secs: now_secs,
        });
        s.value = decay(s.value, now_secs.saturating_sub(s.updated_secs)) + action.penalty();
        s.updated_secs = now_secs;
        if s.value <= BAN_THRESHOLD && !self.is_banned(&peer, now_secs) {
            self.banned_until.insert(peer, now_secs + BAN_SECS);
            return true;
        }
        false
    }

    /// The current (decayed) score.
    #[must_use]
    pub fn score(&self, peer: &PeerId, now_secs: u64) -> f64 {
        self.scores.get(peer).map_or(0.0, |s| {
            decay(s.value, now_secs.saturating_sub(s.updated_secs))
        })
    }

    /// Whether `peer` is banned at `now_secs`.
    #[must_use]
    pub fn is_banned(&self, peer: &PeerId, now_secs: u64) -> bool {
        self.banned_until.get(peer).is_some_and(|&t| t > now_secs)
    }

    /// Number of peers banned now.
    #[must_use]
    pub fn banned_count(&self, now_secs: u64) -> usize {
        self.banned_until
            .values()
            .filter(|&&t| t > now_secs)
            .count()
    }
}

fn decay(value: f64, elapsed_secs: u64) -> f64 {
    value * 0.5f64.powf(elapsed_secs as f64 / HALF_LIFE_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_bans_at_once_and_bans_expire() {
        let mut s = PeerScores::default();
        let p = PeerId::random();
        assert!(s.penalise(p, PeerAction::Fatal, 1000));
        assert!(s.is_banned(&p, 1000));
        assert!(!s.is_banned(&p, 1000 + BAN_SECS));
    }

    #[test]
    fn small_penalties_decay() {
        let mut s = PeerScores::default();
        let p = PeerId::random();
        for _ in 0..3 {
            assert!(!s.penalise(p, PeerAction::HighTolerance, 0));
        }
        assert!((s.score(&p, 0) + 75.0).abs() < 1e-9);
        assert!((s.score(&p, 300) + 37.5).abs() < 1e-9);
        assert!(!s.penalise(p, PeerAction::HighTolerance, 300));
        // A fourth at once would have banned.
        let q = PeerId::random();
        for _ in 0..3 {
            s.penalise(q, PeerAction::HighTolerance, 0);
        }
        assert!(s.penalise(q, PeerAction::HighTolerance, 0));
    }
}
