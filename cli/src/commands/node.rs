//! `yilian init`, `yilian node run`, `yilian status`.

use std::path::Path;

use anyhow::{Context, Result};
use yilian_node::config::{FacilityConfig, NetworkConfig};
use yilian_node::control::{Request, Response};
use yilian_node::datadir::DataDir;
use yilian_node::sync::RefusalDirection;
use yilian_node::transport::{PeerState, PeerStatus};

use crate::cli::{InitArgs, NodeCommand, PeerCommand};
use crate::connect::connect;
use crate::output;

pub(crate) fn init(dir: &Path, args: InitArgs) -> Result<()> {
    if args.name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    let node_id = DataDir::new(dir)
        .init(
            FacilityConfig {
                code: args.facility.clone(),
                name: args.name.trim().to_string(),
                kind: args.kind,
                time_zone: args.time_zone.clone(),
            },
            NetworkConfig {
                listen: args.listen,
                ..NetworkConfig::default()
            },
        )
        .with_context(|| format!("cannot initialise {}", dir.display()))?;
    output::line(format_args!(
        "initialised {} for {} ({}, {})\nnode id: {node_id}",
        dir.display(),
        args.facility,
        args.name.trim(),
        args.kind
    ));
    Ok(())
}

/// Installs the stderr log subscriber (RUST_LOG, default `info`). Colours only when stderr is
/// a terminal (and `NO_COLOR` is not set): a log redirected to a file or read by journald stays
/// plain text.
pub(crate) fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

pub(crate) async fn run(dir: &Path, cmd: NodeCommand) -> Result<()> {
    match cmd {
        NodeCommand::Run => {
            init_logging();
            yilian_node::daemon::run(dir, yilian_node::daemon::shutdown_signal())
                .await
                .context("the node stopped with an error")
        }
    }
}

pub(crate) async fn status(dir: &Path, json: bool) -> Result<()> {
    let mut conn = connect(dir).await?;
    let resp = conn.call(Request::Status).await;
    conn.close().await;
    let Response::Status(s) = resp? else {
        anyhow::bail!("the node answered status with something else");
    };
    if json {
        let mut v = serde_json::to_value(&s)?;
        if let Some(id) = v.get_mut("identity").and_then(|i| i.as_object_mut()) {
            for k in ["not_before", "not_after"] {
                let at = id
                    .get(k)
                    .and_then(|x| x.as_i64())
                    .map(|secs| output::rfc3339((secs.max(0) as u64) * 1000, output::zone()));
                id.insert(format!("{k}_at"), at.into());
            }
        }
        return output::json_timed(&v);
    }
    let mut t = output::table(&["", ""]);
    t.add_row(vec!["node id".to_string(), s.node_id.to_string()]);
    t.add_row(vec![
        "facility".to_string(),
        format!(
            "{} {} ({})",
            s.facility.code, s.facility.name, s.facility.kind
        ),
    ]);
    t.add_row(vec![
        "state".to_string(),
        match s.uptime_secs {
            Some(up) => format!("running, up {}", humanize_secs(up)),
            None => "not running (read from the files)".to_string(),
        },
    ]);
    t.add_row(vec!["version".to_string(), s.version.clone()]);
    t.add_row(vec!["time zone".to_string(), output::zone_name()]);
    let kinds: Vec<String> = s
        .store
        .docs_by_kind
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    t.add_row(vec![
        "documents".to_string(),
        format!(
            "{} ({})",
            s.store.docs_total,
            if kinds.is_empty() {
                "none".into()
            } else {
                kinds.join(", ")
            }
        ),
    ]);
    t.add_row(vec![
        "store size".to_string(),
        format!("{} KiB", s.store.file_bytes / 1024),
    ]);
    t.add_row(vec![
        "change sequence".to_string(),
        s.store.last_seq.to_string(),
    ]);
    identity_rows(&mut t, &s);
    output::line(t);
    if let Some(w) = s.identity.as_ref().and_then(|i| i.warning.as_ref()) {
        output::note(format_args!("WARNING: {w}"));
    }
    if !s.network.peers.is_empty() {
        output::line(peer_table(&s.network.peers));
    }
    if !s.network.sync.is_empty() {
        let mut t = output::table(&[
            "sync peer",
            "session",
            "last caught up",
            "docs out / in",
            "bytes out / in",
            "backlog",
        ]);
        for p in &s.network.sync {
            t.add_row(vec![
                p.facility.to_string(),
                match (p.connected, p.caught_up, p.settled) {
                    (true, true, _) => "caught up".to_string(),
                    (true, false, true) => format!("{} document(s) refused", p.refusals.len()),
                    (true, false, false) => "syncing".to_string(),
                    (false, _, _) => {
                        format!("ended: {}", p.last_error.clone().unwrap_or_default())
                    }
                },
                p.last_synced_ms
                    .map(output::time)
                    .unwrap_or_else(|| "never".into()),
                format!("{} / {}", p.docs_sent, p.docs_received),
                format!("{} / {}", p.bytes_sent, p.bytes_received),
                p.backlog.to_string(),
            ]);
        }
        output::line(t);
        let refusals: Vec<_> = s
            .network
            .sync
            .iter()
            .flat_map(|p| p.refusals.iter().map(move |r| (p, r)))
            .collect();
        if !refusals.is_empty() {
            let mut t = output::table(&["refused document", "peer", "way", "since", "reason"]);
            for (p, r) in refusals {
                t.add_row(vec![
                    r.doc.to_string(),
                    p.facility.to_string(),
                    match (r.direction, r.repairing) {
                        (RefusalDirection::Sent, false) => "refused by the peer",
                        (RefusalDirection::Sent, true) => "refused by the peer (repair under way)",
                        (RefusalDirection::Received, false) => "refused from the peer",
                        (RefusalDirection::Received, true) => {
                            "refused from the peer (repair under way)"
                        }
                    }
                    .to_string(),
                    output::time(r.at_ms),
                    r.reason.clone(),
                ]);
            }
            output::line(t);
        }
    }
    Ok(())
}

fn identity_rows(t: &mut comfy_table::Table, s: &yilian_node::control::StatusReport) {
    match &s.identity {
        Some(id) => {
            t.add_row(vec!["alliance".to_string(), id.alliance.clone()]);
            let roles: Vec<&str> = id.roles.iter().map(|r| r.as_str()).collect();
            t.add_row(vec![
                "roles".to_string(),
                if roles.is_empty() {
                    "-".into()
                } else {
                    roles.join(", ")
                },
            ]);
            t.add_row(vec![
                "certificate".to_string(),
                format!(
                    "valid until {} ({} days)",
                    output::time((id.not_after.max(0) as u64) * 1000),
                    id.expires_in_days
                ),
            ]);
        }
        None => {
            t.add_row(vec!["alliance".to_string(), "not enrolled".to_string()]);
        }
    }
    t.add_row(vec![
        "network".to_string(),
        match (&s.network.listen, &s.network.disabled_reason) {
            (Some(a), _) => format!("listening on {a} (UDP, QUIC)"),
            (None, Some(r)) => format!("off: {r}"),
            (None, None) => "off".to_string(),
        },
    ]);
}

pub(crate) async fn peer(dir: &Path, cmd: PeerCommand) -> Result<()> {
    let (req, json) = match cmd {
        PeerCommand::Add { addr } => (Request::PeerAdd { addr }, false),
        PeerCommand::Remove { addr } => (Request::PeerRemove { addr }, false),
        PeerCommand::List { json } => (Request::PeerList, json.json),
    };
    let mut conn = connect(dir).await?;
    let resp = conn.call(req).await;
    conn.close().await;
    let Response::Peers(peers) = resp? else {
        anyhow::bail!("the node answered with something else");
    };
    if json {
        return output::json_timed(&peers);
    }
    if peers.is_empty() {
        output::line("no peers configured (yilian peer add --addr HOST:PORT)");
    } else {
        output::line(peer_table(&peers));
    }
    Ok(())
}

fn peer_table(peers: &[PeerStatus]) -> comfy_table::Table {
    let mut t = output::table(&[
        "peer address",
        "state",
        "facility",
        "node",
        "since / last seen",
        "note",
    ]);
    for p in peers {
        let state = match p.state {
            PeerState::Connected => "connected",
            PeerState::Connecting => "connecting",
            PeerState::Waiting => "waiting",
        };
        let addr = match (&p.addr, &p.remote) {
            (Some(a), _) => a.clone(),
            (None, Some(r)) => format!("{r} (inbound)"),
            _ => "-".into(),
        };
        let facility = p
            .peer
            .as_ref()
            .map(|i| format!("{} {} ({})", i.facility, i.name, i.kind))
            .unwrap_or_else(|| "-".into());
        let node = p
            .peer
            .as_ref()
            .map(|i| i.node_id.to_string()[..12].to_string())
            .unwrap_or_else(|| "-".into());
        let when = p
            .connected_since_ms
            .map(|t| format!("since {}", output::time(t)))
            .or_else(|| {
                p.last_seen_ms
                    .map(|t| format!("last seen {}", output::time(t)))
            })
            .unwrap_or_else(|| "never".into());
        let note = p
            .last_error
            .clone()
            .map(|e| match p.next_attempt_ms {
                Some(n) => format!("{e}; retry at {}", output::time(n)),
                None => e,
            })
            .unwrap_or_default();
        t.add_row(vec![addr, state.to_string(), facility, node, when, note]);
    }
    t
}

fn humanize_secs(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86400, s / 3600 % 24),
    }
}
