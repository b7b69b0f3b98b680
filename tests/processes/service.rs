//! Bounded service on a real node process (issue 22, items 4 and 5):
//! `GET /events` subscribers are capped and share one rendering of each
//! event; `/tree` and `/stale` answer from the block index.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{get, wait_for, Node};
use serde_json::json;

/// `GET /events` as a raw HTTP/1.1 stream (no client library: hundreds
/// of them are opened at once).
struct Subscriber {
    sock: TcpStream,
    got: Vec<u8>,
}

impl Subscriber {
    fn open(api: &str) -> Subscriber {
        let mut sock = TcpStream::connect(api).unwrap();
        write!(
            sock,
            "GET /events HTTP/1.1\r\nHost: {api}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        sock.set_nonblocking(true).unwrap();
        Subscriber {
            sock,
            got: Vec::new(),
        }
    }

    /// Reads what has arrived; `false` once the server closed the stream.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        loop {
            match self.sock.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.got).into_owned()
    }

    /// The status line's code, once it has arrived.
    fn status(&self) -> Option<u16> {
        let t = self.text();
        let line = t.lines().next()?;
        line.split(' ').nth(1)?.parse().ok()
    }

    fn block_events(&self) -> usize {
        self.text().matches("event: block\n").count()
    }
}

/// Threads of a process, from `/proc/<pid>/status`.
fn threads(pid: u32) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Before the fix, every event spawned one blocking task per subscriber,
/// each taking the core lock and reading a whole block for its miner id:
/// 2,000 subscribers made `/generate` of 300 blocks 3.6 times slower and
/// the node 516 threads and 392 MB. Now one task renders each event once,
/// streams share it, and stream 257 is answered 503.
#[test]
fn event_subscribers_are_capped_and_share_one_rendering_of_each_event() {
    let _serial = crate::util::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(
        &dir.path().join("n"),
        &["--network".into(), "regtest".into()],
    );
    let cap = powchain::node::events::MAX_EVENT_SUBSCRIBERS;
    let mut subs: Vec<Subscriber> = (0..cap).map(|_| Subscriber::open(&node.api)).collect();
    wait_for("every stream's 200", 30, || {
        subs.iter_mut().all(|s| {
            s.pump();
            s.status() == Some(200)
        })
    });
    let mut over = Subscriber::open(&node.api);
    wait_for("the refusal of one stream more", 10, || {
        over.pump();
        over.status().is_some()
    });
    assert_eq!(over.status(), Some(503), "{}", over.text());
    assert!(over.text().contains("too many event subscribers"));

    let blocks = 300;
    let started = Instant::now();
    let mined = node
        .post("/generate", &json!({ "blocks": blocks }))
        .unwrap();
    let generate_secs = started.elapsed().as_secs_f64();
    assert_eq!(mined.as_array().unwrap().len(), blocks);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak_threads = threads(node.child.id());
    while subs.iter().any(|s| s.block_events() < blocks) {
        assert!(
            Instant::now() < deadline,
            "streams short of {blocks} block events: {:?}",
            subs.iter()
                .map(Subscriber::block_events)
                .filter(|&n| n < blocks)
                .collect::<Vec<_>>()
        );
        for s in &mut subs {
            assert!(s.pump(), "a stream closed");
        }
        peak_threads = peak_threads.max(threads(node.child.id()));
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "{cap} subscribers: /generate of {blocks} blocks took {generate_secs:.2} s; \
         peak threads {peak_threads}"
    );
    // One renderer and the runtime's workers, not a blocking thread per
    // subscriber (256 of them before the fix).
    assert!(peak_threads < 64, "{peak_threads} threads");

    // A closed stream frees its slot (the server notices at its next write).
    drop(subs.pop());
    wait_for("a freed slot taken by a new stream", 30, || {
        node.post("/generate", &json!({ "blocks": 1 })).unwrap();
        let mut again = Subscriber::open(&node.api);
        let deadline = Instant::now() + Duration::from_secs(5);
        while again.status().is_none() && Instant::now() < deadline {
            again.pump();
            std::thread::sleep(Duration::from_millis(20));
        }
        again.status() == Some(200)
    });
    assert!(get(&node.api, "/status").is_some());
}
