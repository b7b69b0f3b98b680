//! `spam-invalid`: blocks with valid proof of work that break one other
//! rule (merkle root, bits, time, coinbase height), in turn, to every peer.

use super::{no_args, Action, Entry, SpamKind, Strategy, StrategyContext, TraitorEvent};
use crate::consensus::BlockTemplate;
use crate::consensus::{Block, CompactTarget};

pub(super) const ENTRY: Entry = Entry {
    name: "spam-invalid",
    usage: "spam-invalid",
    check: no_args,
    build: |_, _, _| Box::new(SpamInvalid::default()),
};

/// Cycles through [`SpamKind::ALL`].
#[derive(Debug, Default)]
pub struct SpamInvalid {
    sent: usize,
}

impl SpamInvalid {
    fn kind(&self) -> SpamKind {
        SpamKind::ALL[self.sent % SpamKind::ALL.len()]
    }
}

/// Bits for half of `bits`' target: valid proof of work for it is valid
/// for `bits` too, but the difficulty rule asked for `bits`.
fn harder(bits: CompactTarget) -> CompactTarget {
    let raw = bits.to_consensus();
    let exponent = raw >> 24;
    let mantissa = raw & 0x007f_ffff;
    CompactTarget::from_consensus(if mantissa >= 0x0001_0000 {
        (exponent << 24) | (mantissa >> 1)
    } else {
        ((exponent - 1) << 24) | ((mantissa << 7) & 0x007f_ffff)
    })
}

impl Strategy for SpamInvalid {
    fn template(&self, ctx: &StrategyContext<'_>) -> BlockTemplate {
        let mut tpl = ctx.best_template();
        match self.kind() {
            SpamKind::MerkleRoot => {}
            SpamKind::Bits => tpl.bits = harder(tpl.bits),
            SpamKind::TimeTooNew => {
                let limit =
                    crate::clock::unix_secs(ctx.now_ms) + ctx.params.max_future_block_time_secs;
                tpl.min_time = u32::try_from(limit + 3600).unwrap_or(u32::MAX);
            }
            SpamKind::CoinbaseHeight => tpl.height += 1,
        }
        tpl
    }

    fn on_mined(&mut self, _ctx: &StrategyContext<'_>, mut block: Block) -> Vec<Action> {
        let kind = self.kind();
        if kind == SpamKind::MerkleRoot {
            block
                .txdata
                .push(b"powchain spam: not in the merkle root".to_vec());
        }
        let hash = block.block_hash();
        self.sent += 1;
        vec![
            Action::PublishUnstored(block),
            Action::Event(TraitorEvent::Spam { hash, kind }),
            Action::NewJob,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Target;

    #[test]
    fn harder_bits_halve_the_target() {
        for bits in [0x207f_ffffu32, 0x1d00_ffff, 0x1e0f_ffff] {
            let c = CompactTarget::from_consensus(bits);
            let t = Target::from_compact(c).unwrap();
            let h = Target::from_compact(harder(c)).unwrap();
            assert!(h < t, "{bits:08x}");
            assert!(
                h.to_u256() >= t.to_u256() / ruint::aliases::U256::from(4u8),
                "{bits:08x}"
            );
        }
    }
}
