//! Running `yilian` commands on a data directory, and reading what a node reports.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use yilian_node::config::NodeConfig;
use yilian_node::datadir::DataDir;

use crate::bin::yilian_bin;

/// A command for the `yilian` binary on a data directory (`--dir DIR`, `RUST_LOG=info`,
/// `YILIAN_DIR` cleared).
pub fn yilian(dir: &Path) -> Command {
    let mut c = Command::new(yilian_bin());
    c.arg("--dir")
        .arg(dir)
        .env_remove("YILIAN_DIR")
        .env("RUST_LOG", "info");
    c
}

/// Runs `yilian --dir DIR ARGS...` to completion.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    yilian(dir).args(args).output().expect("run yilian")
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "yilian {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs a command that must print JSON and parses it.
pub fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let text = ok(dir, args);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("yilian {args:?} printed invalid JSON ({e}): {text}"))
}

/// Runs a command that must fail; returns (exit code, stderr).
pub fn fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = run(dir, args);
    assert!(
        !out.status.success(),
        "yilian {args:?} succeeded but should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Initialises a data directory for a facility (`yilian init`, no network address).
pub fn init(dir: &Path, code: &str, kind: &str) {
    ok(
        dir,
        &[
            "init",
            "--facility",
            code,
            "--name",
            &format!("{code} test facility"),
            "--kind",
            kind,
        ],
    );
}

/// Edits a data directory's configuration (`yilian.toml`) through the library's own reader
/// and writer, e.g. to set the listen address, peers or congestion controller before a node
/// starts.
pub fn configure(dir: &Path, edit: impl FnOnce(&mut NodeConfig)) {
    let path = DataDir::new(dir).config_path();
    let mut cfg = NodeConfig::load(&path).expect("configuration");
    edit(&mut cfg);
    cfg.save(&path).expect("write configuration");
}

/// Sets the facility's time zone (`[facility] time_zone`) in a data directory's
/// configuration, so a test reads dates the same on any machine.
pub fn set_time_zone(dir: &Path, zone: &str) {
    let zone = zone.parse().expect("a time zone name");
    configure(dir, |cfg| cfg.facility.time_zone = Some(zone));
}

/// Makes a node listen on a fixed loopback port (a free one, chosen now), so that it keeps its
/// address across restarts as a county server does, and peers that dial it find it again.
/// Returns the address.
pub fn fixed_port(dir: &Path) -> SocketAddr {
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free loopback port");
    configure(dir, |cfg| cfg.network.listen = addr);
    addr
}

/// The UDP address a running node listens on, from `yilian status --json`.
pub fn node_addr(dir: &Path) -> SocketAddr {
    let s = json(dir, &["status", "--json"]);
    s["network"]["listen"]
        .as_str()
        .unwrap_or_else(|| panic!("node has no network: {s}"))
        .parse()
        .expect("socket address")
}

/// The peers of a running node, from `yilian peer list --json`.
pub fn peers(dir: &Path) -> Vec<serde_json::Value> {
    json(dir, &["peer", "list", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Whether a node lists `facility` as a connected peer.
pub fn connected_to(dir: &Path, facility: &str) -> bool {
    peers(dir)
        .iter()
        .any(|p| p["state"] == "connected" && p["peer"]["facility"] == facility)
}

/// The heads of a document on a node, or None if it does not hold it.
pub fn heads_of(dir: &Path, id: &str) -> Option<serde_json::Value> {
    let out = run(dir, &["doc", "show", id, "--json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .map(|v| v["heads"].clone())
}

/// Document id -> heads, for every document a node holds.
pub fn all_heads(dir: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    json(dir, &["doc", "list", "--json"])
        .as_array()
        .expect("doc list --json prints an array")
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap_or_default().to_string(),
                d["heads"].clone(),
            )
        })
        .collect()
}
