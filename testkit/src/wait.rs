//! Waiting until something holds across nodes, polling through the CLI. Each wait panics with
//! what it waited for once its timeout passes.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::{connected_to, heads_of, ok};

/// Waits until `f` holds, polling every 50 ms; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Waits until the running node on `dir` lists `facility` as a connected peer.
pub fn wait_connected(dir: &Path, facility: &str, timeout: Duration) {
    wait_until(
        timeout,
        &format!("{} to be connected to {facility}", dir.display()),
        || connected_to(dir, facility),
    );
}

/// Waits until the running node on `dir` is caught up with every configured peer
/// (`yilian sync wait`, which fails if a peer stays unreachable or refuses documents).
pub fn wait_caught_up(dir: &Path, timeout: Duration) {
    let secs = timeout.as_secs().max(1).to_string();
    ok(dir, &["sync", "wait", "--timeout", &secs]);
}

/// Waits until every node holds document `id` with the same heads; returns them.
pub fn wait_converged(dirs: &[&Path], id: &str, timeout: Duration) -> serde_json::Value {
    let mut last = Vec::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        last = dirs.iter().map(|d| heads_of(d, id)).collect();
        if let Some(Some(first)) = last.first()
            && last.iter().all(|h| h.as_ref() == Some(first))
        {
            return first.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("document {id} did not converge within {timeout:?}: {last:?}");
}
