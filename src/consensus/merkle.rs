//! Bitcoin's merkle root over txids, with Core's mutation check.
//!
//! Mirrors `ComputeMerkleRoot` in Bitcoin Core's src/consensus/merkle.cpp:
//! hashes are paired and sha256d'ed level by level; an odd level duplicates
//! its last hash. A level where two paired hashes are equal marks the tree
//! as *mutated* (CVE-2012-2459): such a transaction list hashes to the same
//! root as a shorter one, so the block is rejected.

use super::hash::sha256d;

/// Result of a merkle computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerkleRoot {
    /// The root, internal byte order. All zeros for an empty list.
    pub root: [u8; 32],
    /// True when some level paired two identical hashes (CVE-2012-2459).
    pub mutated: bool,
}

/// Computes the merkle root of `leaves` (txids, internal order).
#[must_use]
pub fn merkle_root(leaves: &[[u8; 32]]) -> MerkleRoot {
    if leaves.is_empty() {
        return MerkleRoot {
            root: [0u8; 32],
            mutated: false,
        };
    }
    let mut level: Vec<[u8; 32]> = leaves.to_vec();
    let mut mutated = false;
    let mut buf = [0u8; 64];
    while level.len() > 1 {
        for pair in level.chunks_exact(2) {
            if pair[0] == pair[1] {
                mutated = true;
            }
        }
        if level.len() % 2 == 1 {
            let last = level[level.len() - 1];
            level.push(last);
        }
        let next: Vec<[u8; 32]> = level
            .chunks_exact(2)
            .map(|pair| {
                buf[..32].copy_from_slice(&pair[0]);
                buf[32..].copy_from_slice(&pair[1]);
                sha256d(&buf)
            })
            .collect();
        level = next;
    }
    MerkleRoot {
        root: level[0],
        mutated,
    }
}

/// The merkle branch of the first leaf (the coinbase) over `rest`, the
/// txids after it (internal order): at each level of the tree, the hash
/// the coinbase's path is paired with, bottom first. This is what a
/// Stratum `mining.notify` carries, so a miner can compute the root for
/// any coinbase with [`root_from_branch`] without the other transactions.
/// An odd level duplicates its last hash, as [`merkle_root`] does.
#[must_use]
pub fn coinbase_branch(rest: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut branch = Vec::new();
    // `level` holds a level's hashes after the coinbase path's own one.
    let mut level: Vec<[u8; 32]> = rest.to_vec();
    let mut buf = [0u8; 64];
    while let Some(&sibling) = level.first() {
        branch.push(sibling);
        level = level[1..]
            .chunks(2)
            .map(|pair| {
                buf[..32].copy_from_slice(&pair[0]);
                buf[32..].copy_from_slice(pair.get(1).unwrap_or(&pair[0]));
                sha256d(&buf)
            })
            .collect();
    }
    branch
}

/// The merkle root of a tree whose first leaf is `coinbase_txid`, from
/// its [`coinbase_branch`]: `sha256d(acc || step)` up the branch.
#[must_use]
pub fn root_from_branch(coinbase_txid: [u8; 32], branch: &[[u8; 32]]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    branch.iter().fold(coinbase_txid, |acc, step| {
        buf[..32].copy_from_slice(&acc);
        buf[32..].copy_from_slice(step);
        sha256d(&buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coinbase_branch_gives_the_root_for_every_tree_size() {
        let leaf = |i: u32| sha256d(&i.to_le_bytes());
        for n in 1..=33u32 {
            let leaves: Vec<[u8; 32]> = (0..n).map(leaf).collect();
            let branch = coinbase_branch(&leaves[1..]);
            assert_eq!(
                root_from_branch(leaves[0], &branch),
                merkle_root(&leaves).root,
                "{n} leaves"
            );
            // One step per level above the leaves.
            let levels = (n as f64).log2().ceil() as usize;
            assert_eq!(branch.len(), levels, "{n} leaves");
        }
    }

    #[test]
    fn single_leaf_is_its_own_root() {
        let leaf = sha256d(b"coinbase");
        let r = merkle_root(&[leaf]);
        assert_eq!(r.root, leaf);
        assert!(!r.mutated);
    }

    #[test]
    fn duplicated_last_pair_is_flagged() {
        // [a, b, c] and [a, b, c, c] give the same root; the second is mutated.
        let (a, b, c) = (sha256d(b"a"), sha256d(b"b"), sha256d(b"c"));
        let three = merkle_root(&[a, b, c]);
        let four = merkle_root(&[a, b, c, c]);
        assert_eq!(three.root, four.root);
        assert!(!three.mutated);
        assert!(four.mutated);
        // Six leaves [a..f] equal eight leaves [a..f, e, f]: the eight are mutated.
        let (d, e, f) = (sha256d(b"d"), sha256d(b"e"), sha256d(b"f"));
        let six = merkle_root(&[a, b, c, d, e, f]);
        let eight = merkle_root(&[a, b, c, d, e, f, e, f]);
        assert_eq!(six.root, eight.root);
        assert!(!six.mutated);
        assert!(eight.mutated);
    }
}
