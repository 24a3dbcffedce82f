//! `yilian sync wait`: block until caught up with peers, with a progress bar.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use yilian_node::control::{ClientError, ControlClient, Request, Response, StatusReport};
use yilian_node::datadir::DataDir;
use yilian_node::sync::{PeerSyncStatus, RefusalDirection};

use crate::cli::SyncCommand;
use crate::output::{self, DocumentsRefused, NodeRefused};

/// How often `sync wait` polls the node.
const POLL: Duration = Duration::from_millis(200);

pub(crate) async fn run(dir: &Path, cmd: SyncCommand) -> Result<()> {
    match cmd {
        SyncCommand::Wait { peer, timeout } => {
            wait(dir, peer.as_deref(), Duration::from_secs(timeout)).await
        }
    }
}

async fn status(client: &mut ControlClient) -> Result<StatusReport> {
    match client.call(&Request::Status).await? {
        Response::Status(s) => Ok(*s),
        Response::Error { kind, message } => Err(NodeRefused { kind, message }.into()),
        _ => bail!("the node answered status with something else"),
    }
}

fn matches(s: &PeerSyncStatus, sel: &str) -> bool {
    s.facility.as_str().eq_ignore_ascii_case(sel)
        || s.node_id.to_string().starts_with(&sel.to_ascii_lowercase())
}

/// Changes still to exchange with a peer, in change-sequence units.
fn remaining(s: &PeerSyncStatus) -> u64 {
    s.backlog + s.peer_last_seq.saturating_sub(s.incoming_checkpoint) + u64::from(!s.scan_complete)
}

/// Every refused document of the selected peers, one clause each.
fn refusals_text(peers: &[&PeerSyncStatus]) -> String {
    let mut parts = Vec::new();
    for s in peers {
        for r in &s.refusals {
            let way = match r.direction {
                RefusalDirection::Sent => format!("{} refused it", s.facility),
                RefusalDirection::Received => format!("refused from {}", s.facility),
            };
            let repairing = if r.repairing {
                ", repair under way"
            } else {
                ""
            };
            parts.push(format!(
                "document {} ({way}{repairing}: {})",
                r.doc, r.reason
            ));
        }
    }
    parts.join("; ")
}

async fn wait(dir: &Path, peer: Option<&str>, timeout: Duration) -> Result<()> {
    let sock = DataDir::new(dir).socket_path();
    let mut client = match ControlClient::connect(&sock).await {
        Ok(c) => c,
        Err(e @ ClientError::NotRunning(_)) => {
            return Err(e).context("sync wait needs a running node");
        }
        Err(e) => return Err(e.into()),
    };
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} changes  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut most = 0u64;
    loop {
        let st = status(&mut client).await?;
        if !st.network.enabled {
            bar.finish_and_clear();
            bail!(
                "the node is not on the network: {}",
                st.network
                    .disabled_reason
                    .unwrap_or_else(|| "unknown reason".into())
            );
        }
        let selected: Vec<&PeerSyncStatus> = st
            .network
            .sync
            .iter()
            .filter(|s| peer.is_none_or(|p| matches(s, p)))
            .collect();
        // Every configured peer must have a session (when no peer is named).
        let configured_missing = peer.is_none()
            && st.network.peers.iter().any(|p| {
                p.addr.is_some()
                    && !p.peer.as_ref().is_some_and(|id| {
                        selected
                            .iter()
                            .any(|s| s.node_id == id.node_id && s.connected)
                    })
            });
        let pending: u64 = selected.iter().map(|s| remaining(s)).sum();
        most = most.max(pending);
        bar.set_length(most);
        bar.set_position(most - pending);
        let waiting: Vec<String> = selected
            .iter()
            .filter(|s| !(s.connected && s.caught_up))
            .map(|s| {
                if !s.connected {
                    format!("{} (not connected)", s.facility)
                } else if s.settled {
                    format!("{} ({} document(s) refused)", s.facility, s.refusals.len())
                } else {
                    format!("{} ({} to go)", s.facility, remaining(s))
                }
            })
            .collect();
        // Nothing moves any more and a refusal stands that no repair will lift: say so now.
        let refused = !selected.is_empty()
            && selected.iter().all(|s| s.connected && s.settled)
            && selected
                .iter()
                .any(|s| s.refusals.iter().any(|r| !r.repairing));
        if refused {
            bar.finish_and_clear();
            return Err(anyhow::Error::new(DocumentsRefused(format!(
                "not caught up: documents were refused: {}",
                refusals_text(&selected)
            ))));
        }
        bar.set_message(if waiting.is_empty() {
            "settling".to_string()
        } else {
            waiting.join(", ")
        });
        bar.tick();
        let done = !selected.is_empty() && waiting.is_empty() && !configured_missing;
        if done {
            bar.finish_and_clear();
            for s in &selected {
                output::line(format_args!(
                    "caught up with {} ({}): {} document(s) sent, {} received, {} bytes out, {} bytes in",
                    s.facility,
                    s.node_id,
                    s.docs_sent,
                    s.docs_received,
                    s.bytes_sent,
                    s.bytes_received
                ));
            }
            return Ok(());
        }
        if started.elapsed() >= timeout {
            bar.finish_and_clear();
            if selected.iter().any(|s| !s.refusals.is_empty()) {
                return Err(anyhow::Error::new(DocumentsRefused(format!(
                    "not caught up after {} s: {}; documents were refused: {}",
                    timeout.as_secs(),
                    waiting.join(", "),
                    refusals_text(&selected)
                ))));
            }
            let who = if waiting.is_empty() {
                match peer {
                    Some(p) => format!("no connected peer matches {p:?}"),
                    None if selected.is_empty() && st.network.peers.is_empty() => {
                        "this node has no peers (yilian peer add --addr HOST:PORT)".to_string()
                    }
                    None => "not every configured peer is connected".to_string(),
                }
            } else {
                waiting.join(", ")
            };
            return Err(anyhow::Error::new(NodeRefused {
                kind: yilian_node::control::ErrorKind::Unavailable,
                message: format!("not caught up after {} s: {who}", timeout.as_secs()),
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}
