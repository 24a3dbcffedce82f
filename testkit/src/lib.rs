//! # yilian-testkit
//!
//! The one harness that starts and enrolls yilian nodes, for the integration tests in `tests/`
//! and the benchmarks in `bench/`. Everything here is real: the `yilian` binary of this
//! workspace, data directories in temporary folders, `yilian node run` child processes, QUIC on
//! 127.0.0.1. Nothing is mocked.
//!
//! Helpers whose job is to set something up or to check that it worked (run a command that
//! must succeed, start a node, enroll one, wait for a condition) **panic** with a message naming
//! what failed and showing the command's output or the node's log: a failed setup ends a test
//! or a benchmark run, and the message is what the reader needs. Helpers that talk to a node
//! over its control socket from async code ([`control`], [`fill`]) return errors instead, for
//! callers that report them.
//!
//! # Layout
//!
//! | module | owns |
//! | --- | --- |
//! | [`bin`] | finding (and if need be building) the workspace's binaries: `yilian`, `yilian-bench` |
//! | [`cli`] | running `yilian` commands on a data directory (`run`, `ok`, `json`, `fails`), `init`, editing `yilian.toml`, reading status, peers and heads |
//! | [`process`] | `yilian node run` as a child process: start (optionally wrapped, e.g. in `prlimit`), stop, SIGKILL, log, pid, memory |
//! | [`alliance`] | an alliance CA and nodes enrolled with kinds and roles, through the real CLI |
//! | [`wait`] | waiting until a condition holds: polling, peers connected, caught up, documents converged |
//! | [`control`] | requests over a node's control socket from async code |
//! | [`fill`] | filling a node with many documents fast (concurrent imports over the control socket, which group-commit) |
//! | [`quic`] | raw QUIC clients for hostile-peer tests: a handshake attempt, an enrolled client, TLS configs |
//!
//! Tests usually `use yilian_testkit::*`: the items below are re-exported at the root.
//!
//! # Example
//!
//! A county and a township, enrolled, started, connected, with a note that reaches the
//! township (how `tests/tests/` use the harness):
//!
//! ```no_run
//! use std::time::Duration;
//! use yilian_testkit::*;
//!
//! let tmp = tempdir();
//! let alliance = Alliance::new(tmp.path(), "Example Alliance");
//! let ch = alliance.node("CH-01", "county-hospital", "");
//! let tc = alliance.node("TC-01", "township-center", "pharmacy");
//! let _county = NodeProcess::start(&ch);
//! let _township = NodeProcess::start(&tc);
//! ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);
//! wait_connected(&tc, "CH-01", Duration::from_secs(30));
//! let note = json(&ch, &["note", "add", "--title", "例会", "--audience", "TC-01", "--json"]);
//! let id = note["id"].as_str().unwrap();
//! wait_caught_up(&tc, Duration::from_secs(30));
//! wait_converged(&[&ch, &tc], id, Duration::from_secs(30));
//! ```

pub mod alliance;
pub mod bin;
pub mod cli;
pub mod control;
pub mod fill;
pub mod process;
pub mod quic;
pub mod wait;

pub use alliance::Alliance;
pub use bin::{bench_bin, bench_command, yilian_bin};
pub use cli::{
    all_heads, configure, connected_to, fails, fixed_port, heads_of, init, json, node_addr, ok,
    peers, run, set_time_zone, yilian,
};
pub use fill::{bulk_notes, pseudo_random_bytes};
pub use process::{NodeProcess, dir_socket, signal};
pub use quic::{client_tls, enrolled_client, quic_attempt};
pub use wait::{wait_caught_up, wait_connected, wait_converged, wait_until};

/// A fresh temporary directory (prefix `yl-`), removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("yl-")
        .tempdir()
        .expect("tempdir")
}
