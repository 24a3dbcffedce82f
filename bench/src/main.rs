//! # yilian-bench
//!
//! The measurements recorded in `docs/benchmarks.md`, one subcommand per scenario:
//! `cargo run --release -p yilian-bench -- <scenario> [options] [--json]`. Each prints a table,
//! or one JSON object with `--json`; none asserts a target (targets are judged by reading the
//! figures; `tests/tests/bench_smoke.rs` runs every scenario at a tiny size).
//!
//! Benchmarks use only the node's public API: `yilian node run` processes started through
//! `yilian-testkit`, nodes started in this process with `yilian_node::daemon::start`, and
//! requests over the control socket. The nodes run the `yilian` binary of the same build
//! profile; under `cargo run` it is built first, so it always matches the source tree
//! (`YILIAN_BIN` names another binary instead).
//!
//! # Layout
//!
//! | module | scenario or part |
//! | --- | --- |
//! | [`writes`] | durable writes through the control socket: latency percentiles, writes/s |
//! | [`load`] | opening a store of N documents and loading every one |
//! | [`first_sync`] | first sync of referral-sized documents to an empty township |
//! | [`reconnect`] | a reconnect with nothing changed: round trips and bytes |
//! | [`catchup`] | catch-up after K changed documents, against the changes' own bytes |
//! | [`live`] | a live edit until a connected peer holds it |
//! | [`scale`] | a node holding 100,000 documents: start-up, memory, a full sync pass |
//! | [`lossy`] | three nodes over lossy links through [`relay`]; a county restart |
//! | [`vs_peers`] | first sync and reconnect with PouchDB and automerge-repo beside yilian |
//! | [`catalog`] | the county drug catalog at realistic size |
//! | [`nodes`] | node processes, the county-township pair, filling a node with documents |
//! | [`relay`] | the lossy-link UDP relay |
//! | [`report`] | tables, JSON, percentiles |

mod catalog;
mod catchup;
mod first_sync;
mod live;
mod load;
mod lossy;
mod nodes;
mod reconnect;
mod relay;
mod report;
mod scale;
mod vs_peers;
mod writes;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// yilian's benchmarks (figures in docs/benchmarks.md).
#[derive(Debug, Parser)]
#[command(name = "yilian-bench", version)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

/// `--json`: one JSON object instead of a table.
#[derive(Debug, Clone, Copy, Args)]
struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Durable writes through the control socket: latency percentiles and writes/s.
    Writes {
        /// Number of writes.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Load time for stored documents (opening the store and reading each one).
    Load {
        /// Number of documents.
        #[arg(long, default_value_t = 10_000)]
        docs: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// First sync of referral-sized documents to an empty node over QUIC on loopback.
    FirstSync {
        /// Document counts to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        docs: Vec<usize>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Reconnect with nothing changed: round trips and bytes each way.
    Reconnect {
        /// Shared documents.
        #[arg(long, default_value_t = 10_000)]
        docs: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Catch-up after K changed documents: wire bytes against the changes' own bytes.
    Catchup {
        /// Values of K, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        changed: Vec<usize>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Live edits between connected nodes: time from a write on one node until the other holds it.
    Live {
        /// Number of edits.
        #[arg(long, default_value_t = 50)]
        edits: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// A node holding many documents: start-up time and resident memory after a full sync pass.
    Scale {
        /// Documents held.
        #[arg(long, default_value_t = 100_000)]
        docs: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Three nodes over lossy links (a relay adding delay, loss and a rate limit): updates on both
    /// townships until every node agrees, against the time the bytes alone need.
    Lossy {
        /// Updates on each township.
        #[arg(long, default_value_t = 100)]
        updates: usize,
        /// Round-trip time added by the relay, ms.
        #[arg(long, default_value_t = 300)]
        rtt_ms: u64,
        /// Datagrams lost, percent.
        #[arg(long, default_value_t = 5.0)]
        loss_percent: f64,
        /// Link rate each way, kbit/s.
        #[arg(long, default_value_t = 256)]
        kbit: u64,
        /// QUIC congestion controller on every node: cubic, new-reno or bbr (default: the
        /// node's default).
        #[arg(long)]
        congestion: Option<yilian_node::config::Congestion>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The same first-sync and reconnect workloads with automerge-repo and PouchDB, installed from
    /// the npm registry into a temporary directory, run on this machine in this run.
    VsPeers {
        /// Document counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        docs: Vec<usize>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The county drug catalog at realistic size: import, list, show and stock writes with
    /// every facility's stock rows, and the essential-drug report over their dispensing.
    Catalog {
        /// Catalog entries.
        #[arg(long, default_value_t = 3000)]
        entries: usize,
        /// Facilities with stock rows for every entry (and six months of dispensing).
        #[arg(long, default_value_t = 30)]
        facilities: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Runs one scenario on a multi-threaded async runtime.
#[tokio::main]
async fn run(scenario: Scenario) -> anyhow::Result<()> {
    match scenario {
        Scenario::Writes {
            count,
            clients,
            json,
        } => writes::run(count, clients.max(1), json.json).await,
        Scenario::Load { docs, json } => load::run(docs, json.json).await,
        Scenario::FirstSync { docs, json } => first_sync::run(&docs, json.json).await,
        Scenario::Reconnect { docs, json } => reconnect::run(docs, json.json).await,
        Scenario::Catchup { changed, json } => catchup::run(&changed, json.json).await,
        Scenario::Live { edits, json } => live::run(edits, json.json).await,
        Scenario::Scale { docs, json } => scale::run(docs, json.json).await,
        Scenario::Lossy {
            updates,
            rtt_ms,
            loss_percent,
            kbit,
            congestion,
            json,
        } => {
            let spec = relay::LinkSpec {
                one_way: std::time::Duration::from_millis(rtt_ms / 2),
                loss: loss_percent / 100.0,
                rate_bps: kbit * 1000,
            };
            lossy::run(updates, spec, congestion, json.json).await
        }
        Scenario::VsPeers { docs, json } => vs_peers::run(&docs, json.json).await,
        Scenario::Catalog {
            entries,
            facilities,
            json,
        } => catalog::run(entries, facilities, json.json).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    nodes::prepare_node_binary();
    match run(cli.scenario) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::error(&e);
            ExitCode::FAILURE
        }
    }
}
