//! `yilian init`, `yilian node run`, `yilian status`.

use std::path::Path;

use anyhow::{Context, Result};
use yilian_node::config::FacilityConfig;
use yilian_node::control::{Request, Response};
use yilian_node::datadir::DataDir;

use crate::cli::{InitArgs, NodeCommand};
use crate::connect::connect;
use crate::output;

pub(crate) fn init(dir: &Path, args: InitArgs) -> Result<()> {
    if args.name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    let node_id = DataDir::new(dir)
        .init(FacilityConfig {
            code: args.facility.clone(),
            name: args.name.trim().to_string(),
            kind: args.kind,
        })
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

/// Installs the stderr log subscriber (RUST_LOG, default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
        return output::json(&s);
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
    output::line(t);
    Ok(())
}

fn humanize_secs(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86400, s / 3600 % 24),
    }
}
