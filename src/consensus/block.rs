//! Blocks: a header plus opaque transactions, in Bitcoin's serialization,
//! and powchain's coinbase (transaction 0).
//!
//! Serialization (SPEC "On the wire"): the 80-byte header, a CompactSize
//! transaction count, then each transaction as a CompactSize length and its
//! bytes. The block hash is recomputable from the first 80 bytes.

use super::error::{BlockError, DecodeError};
use super::hash::{sha256d, BlockHash, Txid};
use super::header::{BlockHeader, HEADER_SIZE};
use super::merkle::merkle_root;

/// A full block.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Block {
    /// The 80-byte header.
    pub header: BlockHeader,
    /// Opaque transactions; `txdata[0]` is the coinbase.
    pub txdata: Vec<Vec<u8>>,
}

/// Transactions reserved up front when decoding a block, whatever count
/// it claims.
const MAX_RESERVED_TXS: usize = 1024;

/// Appends Bitcoin's CompactSize encoding of `n`.
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Reads a canonical CompactSize at `*pos`, advancing it.
///
/// # Errors
/// [`DecodeError::Truncated`] or [`DecodeError::BadCompactSize`] for a
/// non-shortest encoding (as Core's `ReadCompactSize` rejects).
pub fn read_compact_size(bytes: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let start = *pos;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], DecodeError> {
        let end =
            pos.checked_add(n)
                .filter(|&e| e <= bytes.len())
                .ok_or(DecodeError::Truncated {
                    offset: *pos,
                    needed: (*pos + n).saturating_sub(bytes.len()),
                })?;
        let s = &bytes[*pos..end];
        *pos = end;
        Ok(s)
    };
    let first = take(pos, 1)?[0];
    let (value, min) = match first {
        0xfd => {
            let b = take(pos, 2)?;
            (u64::from(u16::from_le_bytes([b[0], b[1]])), 0xfd)
        }
        0xfe => {
            let b = take(pos, 4)?;
            (
                u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                0x1_0000,
            )
        }
        0xff => {
            let b = take(pos, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            (u64::from_le_bytes(a), 0x1_0000_0000)
        }
        n => return Ok(u64::from(n)),
    };
    if value < min {
        return Err(DecodeError::BadCompactSize(start));
    }
    Ok(value)
}

impl Block {
    /// The block hash (sha256d of the header).
    #[must_use]
    pub fn block_hash(&self) -> BlockHash {
        self.header.block_hash()
    }

    /// Txids of all transactions, in order.
    #[must_use]
    pub fn txids(&self) -> Vec<Txid> {
        self.txdata.iter().map(|tx| Txid(sha256d(tx))).collect()
    }

    /// Merkle root of the transactions and whether the list is mutated.
    #[must_use]
    pub fn compute_merkle_root(&self) -> super::merkle::MerkleRoot {
        let leaves: Vec<[u8; 32]> = self.txdata.iter().map(|tx| sha256d(tx)).collect();
        merkle_root(&leaves)
    }

    /// Serialized size in bytes.
    #[must_use]
    pub fn serialized_size(&self) -> usize {
        let mut n = HEADER_SIZE + compact_size_len(self.txdata.len() as u64);
        for tx in &self.txdata {
            n += compact_size_len(tx.len() as u64) + tx.len();
        }
        n
    }

    /// Bitcoin's block serialization.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.serialized_size());
        out.extend_from_slice(&self.header.encode());
        write_compact_size(&mut out, self.txdata.len() as u64);
        for tx in &self.txdata {
            write_compact_size(&mut out, tx.len() as u64);
            out.extend_from_slice(tx);
        }
        out
    }

    /// Parses Bitcoin's block serialization. `max_bytes` bounds the whole
    /// input before anything is allocated, so hostile input cannot make it
    /// allocate more than the input's own size.
    ///
    /// # Errors
    /// [`DecodeError`] for truncated, oversized, non-canonical or trailing bytes.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Block, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                what: "block size",
                got: bytes.len() as u64,
                limit: max_bytes as u64,
            });
        }
        let mut pos = 0;
        let block = Self::decode_prefix(bytes, &mut pos, max_bytes)?;
        if pos != bytes.len() {
            return Err(DecodeError::TrailingBytes(bytes.len() - pos));
        }
        Ok(block)
    }

    /// Parses one block in Bitcoin's serialization starting at `*pos` and
    /// moves `*pos` past it, so a batch of concatenated blocks (a sync
    /// response) is read one by one. The block may take at most
    /// `max_bytes`; that bound is checked as the block is read, and the
    /// transaction list grows with the bytes actually read, never with a
    /// claimed count (a count of a million costs nothing until a million
    /// transactions are really there).
    ///
    /// # Errors
    /// [`DecodeError`] for truncated, oversized or non-canonical bytes.
    pub fn decode_prefix(
        bytes: &[u8],
        pos: &mut usize,
        max_bytes: usize,
    ) -> Result<Block, DecodeError> {
        let start = *pos;
        let avail = bytes.len().saturating_sub(start);
        if avail < HEADER_SIZE {
            return Err(DecodeError::Truncated {
                offset: bytes.len(),
                needed: HEADER_SIZE - avail,
            });
        }
        // The block may not run past `max_bytes` from its start.
        let bytes = &bytes[..bytes.len().min(start.saturating_add(max_bytes))];
        let header = BlockHeader::decode_slice(&bytes[start..start + HEADER_SIZE])?;
        let mut p = start + HEADER_SIZE;
        let count = read_compact_size(bytes, &mut p)?;
        // Each transaction takes at least one byte (its length prefix).
        let remaining = (bytes.len() - p) as u64;
        if count > remaining {
            return Err(DecodeError::TooLarge {
                what: "transaction count",
                got: count,
                limit: remaining,
            });
        }
        // Reserve for what a typical block holds; more grows with the
        // bytes really read.
        let mut txdata = Vec::with_capacity((count as usize).min(MAX_RESERVED_TXS));
        for _ in 0..count {
            let len = read_compact_size(bytes, &mut p)?;
            let remaining = (bytes.len() - p) as u64;
            if len > remaining {
                return Err(DecodeError::Truncated {
                    offset: p,
                    needed: (len - remaining) as usize,
                });
            }
            let end = p + len as usize;
            txdata.push(bytes[p..end].to_vec());
            p = end;
        }
        *pos = p;
        Ok(Block { header, txdata })
    }

    /// Parses hex text (as in `tests/data/block-*.hex`).
    ///
    /// # Errors
    /// [`DecodeError`] for bad hex or a bad serialization.
    pub fn from_hex(s: &str, max_bytes: usize) -> Result<Block, DecodeError> {
        let bytes = hex::decode(s.trim()).map_err(|e| DecodeError::BadHex(e.to_string()))?;
        Self::decode(&bytes, max_bytes)
    }

    /// Context-free body checks: at least one transaction, size limit, and
    /// a merkle root that matches and is not mutated (Core `CheckBlock`).
    ///
    /// # Errors
    /// The first [`BlockError`] found.
    pub fn check_body(&self, max_block_bytes: usize) -> Result<(), BlockError> {
        if self.txdata.is_empty() {
            return Err(BlockError::NoTransactions);
        }
        let size = self.serialized_size();
        if size > max_block_bytes {
            return Err(BlockError::TooLarge {
                got: size,
                limit: max_block_bytes,
            });
        }
        let m = self.compute_merkle_root();
        if m.root != self.header.merkle_root {
            let mut computed = m.root;
            computed.reverse();
            return Err(BlockError::BadMerkleRoot {
                header: self.header.merkle_root_hex(),
                computed: hex::encode(computed),
            });
        }
        if m.mutated {
            return Err(BlockError::MutatedMerkle);
        }
        Ok(())
    }
}

fn compact_size_len(n: u64) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// powchain's coinbase transaction (transaction 0 of every block on our
/// networks). Layout, 14 + len(miner_id) bytes:
/// `0x01` format byte, `height` u32 LE, `extranonce` u64 LE,
/// `miner_id` length u8, then `miner_id` UTF-8 (at most
/// [`Coinbase::MAX_MINER_ID`] bytes).
///
/// The height makes every block's coinbase unique, as BIP34 does for
/// Bitcoin; the extranonce gives the miner a fresh merkle root when the
/// 2^32 header nonces are spent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Coinbase {
    /// Height of the block this coinbase belongs to.
    pub height: u32,
    /// Rolled by the miner when the nonce space is exhausted.
    pub extranonce: u64,
    /// Who mined the block (the node's `--miner-id`).
    pub miner_id: String,
}

impl Coinbase {
    /// The coinbase of a block in our serialization, parsed from the
    /// block's bytes without decoding the rest: the header (80 bytes), the
    /// CompactSize transaction count, then the first transaction. `None`
    /// when the bytes hold no transaction or the first is not our
    /// coinbase (mainnet's, for instance).
    #[must_use]
    pub fn of_block_bytes(block: &[u8]) -> Option<Coinbase> {
        let mut p = HEADER_SIZE;
        if read_compact_size(block, &mut p).ok()? == 0 {
            return None;
        }
        let len = usize::try_from(read_compact_size(block, &mut p).ok()?).ok()?;
        // A coinbase is at most 14 + 64 bytes: look no further.
        if len > 14 + Self::MAX_MINER_ID {
            return None;
        }
        Coinbase::decode(block.get(p..p.checked_add(len)?)?).ok()
    }

    /// Format byte of the current layout.
    pub const FORMAT: u8 = 0x01;
    /// Longest miner id, bytes.
    pub const MAX_MINER_ID: usize = 64;

    /// Serializes the coinbase. Miner ids longer than
    /// [`Coinbase::MAX_MINER_ID`] bytes are truncated at a char boundary.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut id = self.miner_id.as_str();
        while id.len() > Self::MAX_MINER_ID {
            let mut cut = Self::MAX_MINER_ID;
            while !id.is_char_boundary(cut) {
                cut -= 1;
            }
            id = &id[..cut];
        }
        let mut out = Vec::with_capacity(14 + id.len());
        out.push(Self::FORMAT);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.extranonce.to_le_bytes());
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out
    }

    /// Parses a coinbase.
    ///
    /// # Errors
    /// [`BlockError::BadCoinbase`] naming what is wrong.
    pub fn decode(tx: &[u8]) -> Result<Coinbase, BlockError> {
        let bad = |s: &str| BlockError::BadCoinbase(s.to_string());
        if tx.len() < 14 {
            return Err(bad("coinbase shorter than 14 bytes"));
        }
        if tx[0] != Self::FORMAT {
            return Err(bad("unknown coinbase format byte"));
        }
        let height = u32::from_le_bytes([tx[1], tx[2], tx[3], tx[4]]);
        let mut en = [0u8; 8];
        en.copy_from_slice(&tx[5..13]);
        let id_len = tx[13] as usize;
        if id_len > Self::MAX_MINER_ID || tx.len() != 14 + id_len {
            return Err(bad("miner id length does not match the coinbase size"));
        }
        let miner_id = std::str::from_utf8(&tx[14..])
            .map_err(|_| bad("miner id is not UTF-8"))?
            .to_string();
        Ok(Coinbase {
            height,
            extranonce: u64::from_le_bytes(en),
            miner_id,
        })
    }
}

/// Reads a block in *Bitcoin's own* serialization (self-delimiting legacy
/// transactions, no length prefix), as in `tests/data/block-*.hex`,
/// and returns it with each transaction's bytes as an opaque entry. Segwit
/// serialization (marker 0x00, flag 0x01) is refused: txids would need the
/// witness stripped.
///
/// # Errors
/// [`DecodeError`] for truncated or malformed bytes.
pub fn bitcoin_block_from_bytes(bytes: &[u8]) -> Result<Block, DecodeError> {
    if bytes.len() < HEADER_SIZE {
        return Err(DecodeError::Length {
            got: bytes.len(),
            expected: HEADER_SIZE,
        });
    }
    let header = BlockHeader::decode_slice(&bytes[..HEADER_SIZE])?;
    let mut pos = HEADER_SIZE;
    let count = read_compact_size(bytes, &mut pos)?;
    let mut txdata = Vec::new();
    for _ in 0..count {
        let start = pos;
        skip_bitcoin_tx(bytes, &mut pos)?;
        txdata.push(bytes[start..pos].to_vec());
    }
    if pos != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - pos));
    }
    Ok(Block { header, txdata })
}

/// Advances `pos` over one legacy Bitcoin transaction: version, inputs
/// (outpoint, script, sequence), outputs (value, script), lock time.
fn skip_bitcoin_tx(bytes: &[u8], pos: &mut usize) -> Result<(), DecodeError> {
    let skip = |pos: &mut usize, n: u64| -> Result<(), DecodeError> {
        let end = (*pos as u64).saturating_add(n);
        if end > bytes.len() as u64 {
            return Err(DecodeError::Truncated {
                offset: *pos,
                needed: (end - bytes.len() as u64) as usize,
            });
        }
        *pos = end as usize;
        Ok(())
    };
    skip(pos, 4)?; // version
    let inputs = read_compact_size(bytes, pos)?;
    if inputs == 0 {
        return Err(DecodeError::BadHex(
            "segwit serialization is not supported here".into(),
        ));
    }
    for _ in 0..inputs {
        skip(pos, 36)?; // previous outpoint
        let script = read_compact_size(bytes, pos)?;
        skip(pos, script)?;
        skip(pos, 4)?; // sequence
    }
    let outputs = read_compact_size(bytes, pos)?;
    for _ in 0..outputs {
        skip(pos, 8)?; // value
        let script = read_compact_size(bytes, pos)?;
        skip(pos, script)?;
    }
    skip(pos, 4) // lock time
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_size_round_trip_and_canonical() {
        for n in [
            0u64,
            1,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
        ] {
            let mut v = Vec::new();
            write_compact_size(&mut v, n);
            assert_eq!(v.len(), compact_size_len(n));
            let mut pos = 0;
            assert_eq!(read_compact_size(&v, &mut pos).unwrap(), n);
            assert_eq!(pos, v.len());
        }
        let mut pos = 0;
        assert!(matches!(
            read_compact_size(&[0xfd, 0x10, 0x00], &mut pos),
            Err(DecodeError::BadCompactSize(0))
        ));
    }

    #[test]
    fn coinbase_round_trip() {
        let cb = Coinbase {
            height: 42,
            extranonce: 7,
            miner_id: "alice".into(),
        };
        let bytes = cb.encode();
        assert_eq!(bytes.len(), 19);
        assert_eq!(Coinbase::decode(&bytes).unwrap(), cb);
        assert!(Coinbase::decode(&bytes[..10]).is_err());
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        let mut bytes = vec![0u8; 80];
        write_compact_size(&mut bytes, u64::MAX);
        assert!(Block::decode(&bytes, 1_000_000).is_err());
        assert!(Block::decode(&[0u8; 10], 1_000_000).is_err());
        let mut ok = vec![0u8; 80];
        ok.push(1);
        ok.push(3);
        ok.extend_from_slice(b"abc");
        let b = Block::decode(&ok, 1000).unwrap();
        assert_eq!(b.encode(), ok);
        ok.push(0);
        assert!(matches!(
            Block::decode(&ok, 1000),
            Err(DecodeError::TrailingBytes(1))
        ));
    }
}
