//! The simulated miners: Poisson discoveries by hashrate share, each a
//! real block on the job the node's core handed its miner.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{MinedBlock, Network};
use crate::consensus::{Block, BlockHash, BlockTemplate, Target};
use crate::miner::sha256d::{Backend, ScanInput};
use crate::miner::worker::assemble_at;
use crate::protocol::Input;

impl Network {
    /// Node `i` mines one block on its best tip now and hands it to its
    /// core as its miner's find ([`Input::Mined`]; an honest core publishes
    /// it at once). Returns its hash.
    ///
    /// # Panics
    /// If no nonce solves the template (impossible at regtest difficulty).
    pub fn mine(&mut self, i: usize) -> BlockHash {
        let block = self.make_block(i);
        self.hand_mined(i, block)
    }

    fn hand_mined(&mut self, i: usize, block: Block) -> BlockHash {
        let hash = block.block_hash();
        self.record_mined(i, &block);
        let mut out = Vec::new();
        self.nodes[i]
            .core
            .handle(self.queue.now_ms(), Input::Mined(block), &mut out)
            .expect("in-memory store never fails");
        self.process(i, out);
        hash
    }

    /// A valid block on node `i`'s tip at the current virtual time, not
    /// yet handed to anyone.
    ///
    /// # Panics
    /// If no nonce in 2^32 solves it.
    #[must_use]
    pub fn make_block(&mut self, i: usize) -> Block {
        let template = self.nodes[i].core.template();
        self.solve(template)
    }

    fn record_mined(&mut self, miner: usize, block: &Block) {
        let hash = block.block_hash();
        let height = self.nodes[miner]
            .core
            .chain()
            .block_info(&block.header.prev_blockhash)
            .map_or(0, |i| i.height + 1);
        let mined_ms = self.now_ms();
        self.record.mined(
            hash,
            MinedBlock {
                parent: block.header.prev_blockhash,
                height,
                miner,
                mined_ms,
            },
        );
    }

    /// Node `i`'s miner finds a block now on the job its core last handed
    /// it ([`Output::MiningJob`]: its strategy's template), handed back as
    /// [`Input::Mined`]. Returns its hash, or `None` when the core gave no
    /// job (mining is off).
    pub fn mine_job(&mut self, i: usize) -> Option<BlockHash> {
        let template = self.nodes[i].job.clone()?;
        let block = self.solve(template);
        Some(self.hand_mined(i, block))
    }

    /// Runs the network until the next block discovery of the Poisson
    /// process with mean spacing `block_time_ms` (exponential gaps), makes
    /// that block at the node drawn by hashrate share, and returns the
    /// node and the block.
    pub fn mine_next(&mut self, block_time_ms: f64) -> (usize, Option<BlockHash>) {
        let gap = self.draw_gap_ms(block_time_ms);
        self.run_for(gap);
        let who = self.draw_miner();
        let hash = self.mine_job(who);
        (who, hash)
    }

    /// The wait until the next block discovery of the Poisson process with
    /// mean spacing `block_time_ms`: an exponential draw, ms (at least 1).
    pub fn draw_gap_ms(&mut self, block_time_ms: f64) -> u64 {
        let u: f64 = 1.0 - self.rng.random::<f64>();
        (-u.ln() * block_time_ms).round().max(1.0) as u64
    }

    /// The node that finds the next block, drawn by hashrate share.
    pub fn draw_miner(&mut self) -> usize {
        let mut x: f64 = self.rng.random::<f64>();
        for (i, n) in self.nodes.iter().enumerate() {
            if x < n.hashrate_share {
                return i;
            }
            x -= n.hashrate_share;
        }
        self.nodes.len() - 1
    }

    /// Draws from the run's random stream (for experiment set-up that must
    /// repeat with the seed).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    fn solve(&mut self, template: BlockTemplate) -> Block {
        self.extranonce += 1;
        let (mut header, coinbase) = assemble_at(
            &template,
            self.extranonce,
            crate::clock::unix_secs(self.now_ms()),
        );
        let target = Target::from_compact(template.bits).expect("template bits decode");
        let input = ScanInput::new(header.encode(), target);
        let backend = Backend::auto();
        let mut start = 0u32;
        let nonce = loop {
            let r = backend.scan(&input, start, 2);
            if let Some(&n) = r.solutions.first() {
                break n;
            }
            start = start.checked_add(2).expect("a nonce below 2^32");
        };
        header.nonce = nonce;
        let mut txdata = vec![coinbase];
        txdata.extend(template.transactions);
        Block { header, txdata }
    }
}
