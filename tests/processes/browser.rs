//! The fork-observer page in a real browser: a 3-node testnet with a
//! partition, its `--ui` page opened in Debian's headless Chromium through
//! chromedriver (WebDriver, driven with fantoccini), and the *rendered
//! DOM* checked: blocks drawn against `/tree`, a stale branch, each node's
//! tip label on the block its `/status` names, a new block drawn within
//! 2 s without a reload, and the playback slider moving the tips. A
//! screenshot is saved as `observer-testnet.png` in Cargo's per-test
//! scratch dir (`CARGO_TARGET_TMPDIR`, under the target dir wherever it
//! is).
//!
//! Needs `chromium` and `chromium-driver` (apt; `.ci/run` installs them).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::BIN;
use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};

/// Stops a child process when dropped (also while a failed assert
/// unwinds): SIGINT first (a testnet then stops its nodes), SIGKILL after
/// 20 s.
struct Reaper(Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills a process group when dropped (chromedriver and its Chromium).
struct GroupReaper(u32);
impl Drop for GroupReaper {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0 as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// The TCP port a process listens on, read from /proc (its socket inodes
/// against /proc/net/tcp): chromedriver does not report a port 0 choice.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let s = l.to_string_lossy().to_string();
            s.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // state 0A = LISTEN
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            u16::from_str_radix(f[1].split(':').nth(1)?, 16).ok()
        } else {
            None
        }
    })
}

fn get_json(url: &str) -> Option<Value> {
    ureq::get(url).call().ok()?.body_mut().read_json().ok()
}

async fn drawn(c: &fantoccini::Client, js: &str) -> Value {
    c.execute(js, vec![]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // the lock is held for the whole test, on purpose
async fn the_testnet_page_draws_forks_tips_live_blocks_and_playback() {
    let _serial = crate::util::one_at_a_time();
    for tool in ["chromium", "chromedriver"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is not installed: `apt-get install -y chromium chromium-driver` (.ci/run does)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("testnet.err");
    // Partition 5..25 s at one block a second: both sides mine, the heal
    // re-orgs one side, leaving a stale branch.
    let mut testnet = Reaper(
        Command::new(BIN)
            .args([
                "testnet",
                "--nodes",
                "3",
                "--duration",
                "60",
                "--block-time",
                "1",
                "--topology",
                "full",
                "--partition",
                "5:25",
                "--ui",
                "127.0.0.1:0",
                "--json",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let ui = tokio::task::block_in_place(|| {
        powchain::testnet::wait_for_line(
            &err_path,
            &mut testnet.0,
            powchain::observer::server::OBSERVER_LINE,
            "testnet",
            "serve its page",
            Duration::from_secs(60),
        )
    })
    .unwrap();
    let ui = ui.trim_end_matches('/').to_string();

    let profile = tempfile::tempdir().unwrap();
    // chromedriver in a process group of its own: the Chromium it starts
    // joins it, and the guard below kills the whole group, so a failed
    // assert leaves no browser behind.
    let mut driver = {
        use std::os::unix::process::CommandExt;
        Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let out = driver.stdout.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
    let _browser_group = GroupReaper(driver.id());
    let driver = Reaper(driver);
    let mut port = None;
    for _ in 0..100 {
        port = listening_port(driver.0.id());
        if port.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let port = port.expect("chromedriver listens");
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1400,700",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");

    // After the heal (25 s) and a few blocks more.
    let wait = Duration::from_secs(33).saturating_sub(started.elapsed());
    tokio::time::sleep(wait).await;
    c.goto(&format!("{ui}/")).await.unwrap();

    // 1. The blocks drawn are /tree's blocks (retried: blocks keep coming).
    let mut last = String::new();
    let mut matched = false;
    for _ in 0..40 {
        let tree = get_json(&format!("{ui}/tree")).unwrap();
        let want: Vec<String> = tree["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["hash"].as_str().unwrap().to_string())
            .collect();
        let got = drawn(
            &c,
            "return [...document.querySelectorAll('g.block[data-hash]')].map(e => e.dataset.hash)",
        )
        .await;
        let got: Vec<String> = serde_json::from_value(got).unwrap();
        let (mut w, mut g) = (want.clone(), got.clone());
        w.sort();
        g.sort();
        if w == g && !w.is_empty() {
            matched = true;
            break;
        }
        last = format!("tree {} blocks, page {}", want.len(), got.len());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(matched, "the page never drew /tree's blocks: {last}");

    // 2. A stale branch is drawn.
    let stale = drawn(
        &c,
        "return document.querySelectorAll('g.block.status-stale').length",
    )
    .await;
    assert!(stale.as_u64().unwrap() >= 1, "no stale block drawn");

    // 3. Each node's tip label sits on the block its /status names.
    let tree = get_json(&format!("{ui}/tree")).unwrap();
    let nodes = tree["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3);
    let mut tips_ok = false;
    let mut why = String::new();
    for _ in 0..40 {
        tips_ok = true;
        for n in &nodes {
            let name = n["name"].as_str().unwrap();
            let api = n["api"].as_str().unwrap();
            let st = get_json(&format!("http://{api}/status")).unwrap();
            let label = drawn(
                &c,
                &format!("const t = document.querySelector('g.tip[data-node=\"{name}\"]'); \
                          if (!t) return null; \
                          const b = document.querySelector(`g.block[data-hash=\"${{t.dataset.hash}}\"]`); \
                          return b ? t.dataset.hash : 'no block under the label';"),
            )
            .await;
            if label != st["tip"] {
                tips_ok = false;
                why = format!("{name}: label on {label}, /status tip {}", st["tip"]);
            }
        }
        if tips_ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(tips_ok, "tip labels: {why}");

    // 4. A new block appears within 2 s, without a reload.
    c.execute("window.__sameDocument = true; return 1;", vec![])
        .await
        .unwrap();
    let before: Vec<String> = serde_json::from_value(
        drawn(
            &c,
            "return [...document.querySelectorAll('g.block[data-hash]')].map(e => e.dataset.hash)",
        )
        .await,
    )
    .unwrap();
    let mut new_tip = None;
    for _ in 0..200 {
        let t = get_json(&format!("{ui}/tree")).unwrap();
        let tip = t["tip"].as_str().unwrap().to_string();
        if !before.contains(&tip) {
            new_tip = Some((tip, Instant::now()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (tip, seen_at) = new_tip.expect("a new block within 10 s");
    let mut drawn_in = None;
    while seen_at.elapsed() < Duration::from_secs(5) {
        let n = drawn(
            &c,
            &format!("return document.querySelectorAll('g.block[data-hash=\"{tip}\"]').length"),
        )
        .await;
        if n.as_u64() == Some(1) {
            drawn_in = Some(seen_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drawn_in = drawn_in.unwrap_or_else(|| panic!("block {tip} not drawn within 5 s"));
    assert!(
        drawn_in < Duration::from_secs(2),
        "new block drawn after {drawn_in:?}"
    );
    let same = drawn(&c, "return window.__sameDocument === true").await;
    assert_eq!(same, json!(true), "the page reloaded");

    // Screenshot (live view after the partition and heal).
    let png = c.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(target).unwrap();
    std::fs::write(target.join("observer-testnet.png"), &png).unwrap();

    // 5. The playback slider moves the tips: to the start (Home), the tip
    // labels move to early blocks; back to the end (End), live again.
    let tips_js = "return [...document.querySelectorAll('g.tip')].map(t => t.dataset.node + '=' + t.dataset.hash).sort().join(',')";
    let live_tips = drawn(&c, tips_js).await;
    let slider = c.find(Locator::Css("#slider")).await.unwrap();
    slider.send_keys("\u{E011}").await.unwrap(); // Home
    let early_tips = drawn(&c, tips_js).await;
    let playtime = drawn(&c, "return document.getElementById('playtime').textContent").await;
    assert_ne!(playtime, json!("live"));
    assert_ne!(early_tips, live_tips, "the slider did not move the tips");
    let early_height = drawn(&c, "return Math.max(...[...document.querySelectorAll('g.block')].map(b => +b.dataset.height || 0))").await;
    let png = c.screenshot().await.unwrap();
    std::fs::write(target.join("observer-testnet-playback.png"), &png).unwrap();
    slider.send_keys("\u{E010}").await.unwrap(); // End
    let playtime = drawn(&c, "return document.getElementById('playtime').textContent").await;
    assert_eq!(playtime, json!("live"));
    let live_height = drawn(&c, "return Math.max(...[...document.querySelectorAll('g.block')].map(b => +b.dataset.height || 0))").await;
    assert!(
        early_height.as_u64() < live_height.as_u64(),
        "{early_height} vs {live_height}"
    );

    c.close().await.unwrap();
    drop(testnet);
}
