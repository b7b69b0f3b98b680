//! `optimal-selfish:ALPHA[:GAMMA]`: plays the optimal policy of
//! Sapirshtein, Sompolinsky and Zohar's MDP ([`super::mdp`]), solved at
//! start-up for the attacker's hashrate share α and the tie-breaking share
//! γ (default 0), over the shared [`Race`].

use super::mdp::{SelfishMdp, DEFAULT_MAX_LEN};
use super::race::{Move, Policy, Race, Racer};
use super::{ArgsError, Entry};

pub(super) const ENTRY: Entry = Entry {
    name: "optimal-selfish",
    usage: "optimal-selfish:ALPHA[:GAMMA]",
    check: |a| parse(a).map(|_| ()),
    build: |a, tip, height| {
        let (alpha, gamma) = parse(a).expect("checked");
        Box::new(Racer::new(
            Optimal(SelfishMdp::solve(alpha, gamma, DEFAULT_MAX_LEN)),
            tip,
            height,
        ))
    },
};

/// α in (0, 0.5) and γ in [0, 1].
fn parse(args: Option<&str>) -> Result<(f64, f64), ArgsError> {
    let bad = || ArgsError {
        expected:
            "optimal-selfish:ALPHA or optimal-selfish:ALPHA:GAMMA, 0 < ALPHA < 0.5, 0 <= GAMMA <= 1",
    };
    let mut parts = args.ok_or_else(bad)?.split(':');
    let alpha = parts
        .next()
        .and_then(|x| x.parse::<f64>().ok())
        .filter(|x| *x > 0.0 && *x < 0.5)
        .ok_or_else(bad)?;
    let gamma = match parts.next() {
        None => 0.0,
        Some(g) => g
            .parse::<f64>()
            .ok()
            .filter(|x| (0.0..=1.0).contains(x))
            .ok_or_else(bad)?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((alpha, gamma))
}

/// The solved policy.
#[derive(Debug)]
pub struct Optimal(SelfishMdp);

impl Policy for Optimal {
    fn after_own(&self, race: &Race) -> Move {
        self.0.policy(race.a(), race.h(), race.fork())
    }

    fn after_public(&self, race: &Race) -> Move {
        self.0.policy(race.a(), race.h(), race.fork())
    }
}
