//! What a peer's `GetBlocks` may cost this node: the rate limit counts
//! requests, the serving allowance counts bytes (issue 22, item 3). Before
//! the allowance, ten requests a second of up to 8 MiB each were all
//! served: 80 MiB of block reads a second for one peer.

use powchain::consensus::Params;
use powchain::protocol::budget::SERVED_BYTES_PER_SEC_PER_PEER;
use powchain::protocol::messages::BUSY_REASON;
use powchain::protocol::{InboundId, Input, Link, Output, SyncRequest, SyncResponse};
use powchain::sim::{sim_peer_id, Network};

/// Node 0 of `n` regtest nodes with `blocks` blocks of about 900 KB each
/// (nine 100 KB transactions a block).
fn node_with_big_blocks(n: usize, blocks: u32) -> Network {
    let mut net = Network::new(Params::regtest(), n, 10, 7);
    for b in 0..blocks {
        for t in 0..9u32 {
            let mut tx = vec![0x5au8; 99_000];
            tx[..4].copy_from_slice(&b.to_le_bytes());
            tx[4..8].copy_from_slice(&t.to_le_bytes());
            let out = net.input(0, Input::SubmitTx(tx)).unwrap();
            assert!(
                out.iter().any(|o| matches!(o, Output::TxResult(Ok(_)))),
                "transaction refused: {out:?}"
            );
        }
        net.mine(0);
    }
    assert_eq!(net.height(0), blocks);
    net
}

/// The bytes of blocks in each answer of `out`, and the refusals.
fn answers(out: &[Output]) -> (usize, Vec<String>) {
    let mut bytes = 0;
    let mut refused = Vec::new();
    for o in out {
        match o {
            Output::Respond {
                response: SyncResponse::Blocks(b),
                ..
            } => bytes += b.0.len(),
            Output::Respond {
                response: SyncResponse::Refused(why),
                ..
            } => refused.push(why.clone()),
            _ => {}
        }
    }
    (bytes, refused)
}

#[test]
fn a_peer_asking_within_the_rate_limit_is_served_at_most_its_byte_allowance() {
    let mut net = node_with_big_blocks(1, 40);
    let greedy = sim_peer_id(666, 0);
    net.input(
        0,
        Input::PeerConnected {
            peer: greedy,
            link: Link::Inbound,
            address: None,
        },
    )
    .unwrap();
    let genesis = Params::regtest().genesis_hash;
    let (mut served, mut refused) = (0usize, 0usize);
    // Five seconds of nine requests a second (under the ten allowed), in
    // bursts, each for everything after genesis (8 MiB per answer at most).
    for i in 0..45u64 {
        let out = net
            .input(
                0,
                Input::Request {
                    peer: greedy,
                    id: InboundId(i),
                    request: SyncRequest::GetBlocks {
                        locator: vec![genesis],
                        max_blocks: 500,
                    },
                },
            )
            .unwrap();
        let (b, r) = answers(&out);
        served += b;
        assert!(r.iter().all(|w| w.starts_with(BUSY_REASON)), "{r:?}");
        refused += r.len();
        if i % 9 == 8 {
            net.run_for(1000);
        }
    }
    // Two seconds' worth to start with, five seconds of refill, and at
    // most one block past the allowance in the last answer.
    let bound = 7 * SERVED_BYTES_PER_SEC_PER_PEER as usize + 1_000_000;
    assert!(
        served <= bound,
        "served {served} bytes in 5 s, bound {bound}"
    );
    assert!(
        served >= 5 * SERVED_BYTES_PER_SEC_PER_PEER as usize,
        "served only {served} bytes"
    );
    assert!(refused > 0, "no request was deferred");
    assert_eq!(
        net.nodes[0].core.peers().banned_count(net.now_ms()),
        0,
        "a request under the rate limit is not an offence"
    );
}

#[test]
fn an_honest_node_syncing_past_the_allowance_waits_and_gets_every_block() {
    // 40 blocks of ~900 KB: 36 MB, four seconds and more of the
    // allowance; the syncing node is refused at times and must back off
    // (asking again at once would be a request flood) and finish.
    let mut net = node_with_big_blocks(2, 40);
    net.connect(0, 1);
    net.run_for(20_000);
    assert_eq!(net.height(1), 40);
    for i in 0..2 {
        assert_eq!(net.nodes[i].core.peers().banned_count(net.now_ms()), 0);
        assert_eq!(net.nodes[i].core.peers().len(), 1);
    }
}

/// Issue 22, item 10, in the core: with discovery on (`--mdns`), peers
/// found on the LAN are dialled and connect as outbound. Before, they
/// counted against `max_peers` like any outbound peer: ten of them filled
/// a ten-slot node and its configured peer was then refused. Now at most
/// `MAX_DISCOVERED_PEERS` are kept, they share the slots configured peers
/// leave, and a configured peer always gets its own.
#[test]
fn discovered_peers_cannot_take_a_configured_peers_slot() {
    use powchain::chain::{ChainStore, MemStore};
    use powchain::protocol::{CoreConfig, NodeCore, MAX_DISCOVERED_PEERS};
    use std::sync::Arc;
    let params = Arc::new(Params::regtest());
    let configured = sim_peer_id(77, 0);
    let configured_addr: libp2p::Multiaddr = format!("/ip4/10.0.1.1/tcp/8333/p2p/{configured}")
        .parse()
        .unwrap();
    let chain = ChainStore::open(Arc::clone(&params), Box::new(MemStore::default())).unwrap();
    let mut core = NodeCore::new(
        chain,
        CoreConfig {
            max_peers: 10,
            peers: vec![configured_addr.clone()],
            discovery: true,
            ..CoreConfig::new(sim_peer_id(1, 0))
        },
    );
    let connect = |core: &mut NodeCore, peer, link, address| {
        let mut out = Vec::new();
        core.handle(
            1_800_000_000_000,
            Input::PeerConnected {
                peer,
                link,
                address,
            },
            &mut out,
        )
        .unwrap();
        !out.iter()
            .any(|o| matches!(o, Output::Disconnect(p) if *p == peer))
    };
    let mut kept = 0;
    for i in 0..10u8 {
        let addr = format!("/ip4/10.0.0.{i}/tcp/8333").parse().ok();
        if connect(&mut core, sim_peer_id(500, i.into()), Link::Outbound, addr) {
            kept += 1;
        }
    }
    assert_eq!(kept, MAX_DISCOVERED_PEERS, "discovered peers kept");
    assert!(
        connect(&mut core, configured, Link::Outbound, Some(configured_addr)),
        "the configured peer was refused"
    );
    // One inbound slot is left of the nine the configured peer leaves.
    assert!(connect(&mut core, sim_peer_id(600, 0), Link::Inbound, None));
    assert!(!connect(
        &mut core,
        sim_peer_id(600, 1),
        Link::Inbound,
        None
    ));
    assert_eq!(core.peers().len(), MAX_DISCOVERED_PEERS + 2);
}
