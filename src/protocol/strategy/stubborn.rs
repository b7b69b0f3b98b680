//! `stubborn:LFTj`: the stubborn mining strategies of Nayak, Kumar, Miller
//! and Shi, "Stubborn Mining: Generalizing Selfish Mining and Combining
//! with an Eclipse Attack" (EuroS&P 2016), §3, alone and combined:
//!
//! - `L`, lead-stubborn: when the honest network finds a block while the
//!   attacker leads, reveal only up to its height (a tie), never override;
//! - `F`, equal-fork-stubborn: a block found during a tie is kept private
//!   instead of being published to win the race;
//! - `Tj`, trail-stubborn: when behind, keep mining on the private branch
//!   until `j` blocks behind (instead of adopting at once), and publish it
//!   as a tie when it catches up.
//!
//! Without letters the policy is SM1's (`selfish`).

use super::race::{Fork, Move, Policy, Race, Racer};
use super::{ArgsError, Entry};

pub(super) const ENTRY: Entry = Entry {
    name: "stubborn",
    usage: "stubborn:[L][F][Tj]",
    check: |a| parse(a).map(|_| ()),
    build: |a, tip, height| Box::new(Racer::new(parse(a).expect("checked"), tip, height)),
};

/// Which stubborn parts are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stubborn {
    /// Lead-stubborn.
    pub lead: bool,
    /// Equal-fork-stubborn.
    pub equal_fork: bool,
    /// Trail-stubborn's `j` (0: off).
    pub trail: u32,
}

/// `L`, `F` and `Tj` (j from 1 to 1,000), each at most once, in that
/// order; at least one.
fn parse(args: Option<&str>) -> Result<Stubborn, ArgsError> {
    let bad = || ArgsError {
        expected: "stubborn: followed by L, F and/or Tj, e.g. stubborn:LFT2",
    };
    let mut s = args.ok_or_else(bad)?;
    let mut st = Stubborn::default();
    if let Some(r) = s.strip_prefix('L') {
        st.lead = true;
        s = r;
    }
    if let Some(r) = s.strip_prefix('F') {
        st.equal_fork = true;
        s = r;
    }
    if let Some(r) = s.strip_prefix('T') {
        st.trail = r
            .parse::<u32>()
            .ok()
            .filter(|j| (1..=1000).contains(j))
            .ok_or_else(bad)?;
        s = "";
    }
    if !s.is_empty() || st == Stubborn::default() {
        return Err(bad());
    }
    Ok(st)
}

impl Policy for Stubborn {
    fn after_own(&self, race: &Race) -> Move {
        let (a, h) = (race.a(), race.h());
        if race.fork() == Fork::Active && a == h + 1 {
            // Found during a tie: SM1 publishes and wins; F keeps it.
            if self.equal_fork {
                Move::Wait
            } else {
                Move::Override
            }
        } else if self.trail > 0 && a == h && h > 0 && race.fork() != Fork::Active {
            // A trailing branch caught up: publish it as a tie.
            Move::Match
        } else {
            Move::Wait
        }
    }

    fn after_public(&self, race: &Race) -> Move {
        let (a, h) = (race.a(), race.h());
        if a == 0 {
            Move::Adopt
        } else if a < h {
            if h - a <= self.trail {
                Move::Wait
            } else {
                Move::Adopt
            }
        } else if a == h + 1 && !self.lead {
            Move::Override
        } else {
            Move::Match
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_parse_in_the_papers_order() {
        assert_eq!(
            parse(Some("LFT3")).unwrap(),
            Stubborn {
                lead: true,
                equal_fork: true,
                trail: 3
            }
        );
        assert_eq!(parse(Some("T1")).unwrap().trail, 1);
        for bad in ["", "FL", "T0", "LX", "T", "LT1F"] {
            assert!(parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
