//! Testnet topologies and the partition flag.

use crate::value::{self, ValueError};
use clap::ValueEnum;
use rand::{Rng, SeedableRng};

/// How the nodes are linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Topology {
    /// node i dials node i-1.
    Line,
    /// A line closed into a ring.
    Ring,
    /// Everyone dials everyone before it.
    Full,
    /// A random tree plus random extra links (seeded).
    Random,
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Topology::Line => "line",
            Topology::Ring => "ring",
            Topology::Full => "full",
            Topology::Random => "random",
        })
    }
}

impl Topology {
    /// The links for `n` nodes: pairs (dialer, listener); every topology
    /// connects all nodes.
    #[must_use]
    pub fn edges(self, n: usize, seed: u64) -> Vec<(usize, usize)> {
        let mut edges = Vec::new();
        match self {
            Topology::Line => edges.extend((1..n).map(|i| (i, i - 1))),
            Topology::Ring => {
                edges.extend((1..n).map(|i| (i, i - 1)));
                if n > 2 {
                    edges.push((0, n - 1));
                }
            }
            Topology::Full => {
                for i in 0..n {
                    for j in 0..i {
                        edges.push((i, j));
                    }
                }
            }
            Topology::Random => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                for i in 1..n {
                    edges.push((i, rng.random_range(0..i)));
                }
                for i in 0..n {
                    let j = rng.random_range(0..n);
                    if i != j && !edges.contains(&(i, j)) && !edges.contains(&(j, i)) {
                        edges.push((i, j));
                    }
                }
            }
        }
        edges
    }
}

/// `--partition START:END`, seconds after mining starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// When the network is cut, seconds.
    pub start: u64,
    /// When it heals, seconds.
    pub end: u64,
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.start, self.end)
    }
}

impl std::str::FromStr for Partition {
    type Err = ValueError;

    /// `START:END` seconds since the testnet's start, `START < END`.
    fn from_str(s: &str) -> Result<Partition, ValueError> {
        let (a, b) = s
            .split_once(':')
            .ok_or_else(|| ValueError::form(s, "START:END seconds, e.g. 20:35"))?;
        let (start, end): (u64, u64) = (value::int(a)?, value::int(b)?);
        if start >= end {
            return Err(ValueError::range(s, "a partition needs START < END"));
        }
        Ok(Partition { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_connect_everyone() {
        for t in [
            Topology::Line,
            Topology::Ring,
            Topology::Full,
            Topology::Random,
        ] {
            for n in 1..8 {
                let e = t.edges(n, 3);
                let mut seen = vec![false; n];
                seen[0] = true;
                for _ in 0..n {
                    for &(a, b) in &e {
                        if seen[a] || seen[b] {
                            seen[a] = true;
                            seen[b] = true;
                        }
                    }
                }
                assert!(seen.iter().all(|&s| s), "{t} {n}");
            }
        }
        assert_eq!(
            "20:35".parse::<Partition>().unwrap(),
            Partition { start: 20, end: 35 }
        );
        assert!("35:20".parse::<Partition>().is_err());
        assert!("20".parse::<Partition>().is_err());
    }
}
