//! The testnet's node processes: spawning helpers, reading a process's
//! announced address from its log, and stopping everything on drop.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::TestnetError;
use crate::api::ApiClient;

/// One node process of the testnet.
pub(crate) struct NodeProc {
    pub(crate) child: Child,
    /// Its API client (with its cookie's token).
    pub(crate) client: ApiClient,
    /// Its peer id.
    pub(crate) peer_id: String,
    /// Its dialable address.
    pub(crate) listen: String,
    /// How outside tools reach it (`nodes_info`).
    pub(crate) info: crate::api::types::NodeAccess,
}

/// Sends SIGTERM to a child process (ignoring one that already exited).
pub fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}

/// Owns the processes and the temp dir; stops and removes them on drop.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<NodeProc>,
    pub(crate) starting: Vec<Child>,
    pub(crate) dir: PathBuf,
    pub(crate) keep: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let children: Vec<&mut Child> = self
            .nodes
            .iter_mut()
            .map(|n| &mut n.child)
            .chain(self.starting.iter_mut())
            .collect();
        for c in &children {
            // SIGTERM: the node stops its miner and closes its store.
            terminate(c);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in children {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The line a node prints on stderr once its API is bound.
pub const API_LINE: &str = "powchain: HTTP API on ";

/// Waits until the log at `log` names the node's bound API address.
///
/// # Errors
/// [`TestnetError::Start`] when the process exits or `timeout` passes.
pub fn wait_for_api_line(
    log: &Path,
    child: &mut Child,
    timeout: Duration,
) -> Result<String, TestnetError> {
    wait_for_line(log, child, API_LINE, "node", "bind its API", timeout)
}

/// Waits until the log at `log` (a process's stderr) has a line starting
/// with `prefix`, and returns the rest of that line, trimmed: how a
/// node's API address ([`API_LINE`]) and an observer's page address
/// ([`crate::observer::server::OBSERVER_LINE`]) are read without probing
/// ports.
///
/// # Errors
/// [`TestnetError::Start`] naming `what` when the process exits or
/// `timeout` passes first.
pub fn wait_for_line(
    log: &Path,
    child: &mut Child,
    prefix: &str,
    what: &str,
    waiting_for: &str,
    timeout: Duration,
) -> Result<String, TestnetError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(log) {
            let _ = f.read_to_string(&mut text);
        }
        if let Some(rest) = text
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
        {
            return Ok(rest.to_string());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(TestnetError::Start(format!(
                "{what} exited ({st}); see {}",
                log.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(TestnetError::Start(format!(
                "{what} did not {waiting_for} in {timeout:?}; see {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How outside tools reach node `i` (`nodes_info`): its API, its Core RPC
/// and cookie and its Stratum port when it serves them; printed on stderr
/// as it starts.
pub(crate) fn node_access(
    i: usize,
    api: &str,
    status: &crate::api::types::Status,
    dir: &std::path::Path,
) -> crate::api::types::NodeAccess {
    let info = crate::api::types::NodeAccess {
        name: format!("node{i}"),
        api: api.to_string(),
        cookie: status.rpc.as_ref().map(|_| {
            dir.join(format!("node{i}"))
                .join(crate::node::rpc::RPC_COOKIE_FILE)
                .display()
                .to_string()
        }),
        rpc: status.rpc.clone(),
        stratum: status.stratum.as_ref().map(|s| s.addr.clone()),
    };
    if info.rpc.is_some() || info.stratum.is_some() {
        let mut line = format!("testnet: {} api {}", info.name, info.api);
        if let (Some(rpc), Some(cookie)) = (&info.rpc, &info.cookie) {
            line += &format!(" rpc {rpc} cookie {cookie}");
        }
        if let Some(stratum) = &info.stratum {
            line += &format!(" stratum stratum+tcp://{stratum}");
        }
        eprintln!("{line}");
    }
    info
}
