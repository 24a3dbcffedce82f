//! `vs-peers`: the first-sync and reconnect workloads with PouchDB and automerge-repo beside
//! yilian, in the same run on this machine. Pinned versions of both are installed from the npm
//! registry (`npm install`, so Node.js and npm must be present) into a temporary directory,
//! where `vs_peers/peers.mjs` runs them on 127.0.0.1.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::report;

/// Installs automerge-repo and PouchDB from the npm registry into `dir` and runs the comparison
/// script there; returns the JSON object it prints.
fn run_peers(dir: &Path, counts: &[usize]) -> Result<serde_json::Value> {
    std::fs::write(
        dir.join("package.json"),
        include_str!("../vs_peers/package.json"),
    )?;
    std::fs::write(dir.join("peers.mjs"), include_str!("../vs_peers/peers.mjs"))?;
    let install = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .context("vs-peers needs npm (Node.js) on this machine")?;
    if !install.status.success() {
        bail!(
            "cannot install automerge-repo and PouchDB from the npm registry: {}",
            String::from_utf8_lossy(&install.stderr)
                .lines()
                .last()
                .unwrap_or("npm failed")
        );
    }
    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    let mut cmd = Command::new("node");
    cmd.arg("peers.mjs").arg(&work).current_dir(dir);
    for c in counts {
        cmd.arg(c.to_string());
    }
    let out = cmd.output().context("cannot run node")?;
    if !out.status.success() {
        bail!(
            "the comparison script failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).context("the comparison script printed no JSON")
}

pub(crate) async fn run(counts: &[usize], json: bool) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("yilian-vs-peers-")
        .tempdir()?;
    let dir = tmp.path().to_path_buf();
    let owned = counts.to_vec();
    let peers = tokio::task::spawn_blocking(move || run_peers(&dir, &owned)).await??;
    let ours = crate::first_sync::rows(counts).await?;
    let largest = counts.iter().copied().max().unwrap_or(1000);
    let (re, _) = crate::reconnect::once(largest).await?;
    let mut rows = Vec::new();
    for (n, y) in counts.iter().zip(&ours) {
        let key = n.to_string();
        let ys = y["seconds"].as_f64().unwrap_or(0.0);
        let ps = peers["pouchdb"][&key]["first_sync_s"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let am = peers["automerge_repo"][&key]["first_sync_s"]
            .as_f64()
            .unwrap_or(f64::NAN);
        rows.push(serde_json::json!({
            "docs": n, "yilian_s": ys, "pouchdb_s": ps, "automerge_repo_s": am,
            "pouchdb_over_yilian": ps / ys, "automerge_repo_over_yilian": am / ys,
        }));
    }
    let key = largest.to_string();
    let reconnect = serde_json::json!({
        "docs": largest,
        "yilian": { "round_trips": re.frames_sent.max(re.frames_received), "bytes": re.bytes_sent + re.bytes_received },
        "pouchdb": peers["pouchdb"][&key]["reconnect"],
        "automerge_repo": peers["automerge_repo"][&key]["reconnect"],
    });
    if json {
        return report::json(
            &serde_json::json!({"scenario": "vs-peers", "first_sync": rows, "reconnect": reconnect}),
        );
    }
    let mut t = report::table(&[
        "first sync",
        "yilian",
        "PouchDB",
        "automerge-repo",
        "PouchDB / yilian",
        "automerge-repo / yilian",
    ]);
    for r in &rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        t.add_row(vec![
            format!("{} docs", r["docs"]),
            format!("{:.2} s", f("yilian_s")),
            format!("{:.2} s", f("pouchdb_s")),
            format!("{:.2} s", f("automerge_repo_s")),
            format!("{:.2}x", f("pouchdb_over_yilian")),
            format!("{:.1}x", f("automerge_repo_over_yilian")),
        ]);
    }
    report::line(t);
    let mut t = report::table(&["no-op reconnect", "yilian", "PouchDB", "automerge-repo"]);
    t.add_row(vec![
        format!("{largest} docs"),
        format!(
            "{} round trip(s), {} B",
            reconnect["yilian"]["round_trips"], reconnect["yilian"]["bytes"]
        ),
        format!(
            "{} HTTP requests, {} B",
            reconnect["pouchdb"]["requests"], reconnect["pouchdb"]["bytes"]
        ),
        format!(
            "{} messages, {} B",
            reconnect["automerge_repo"]["messages"], reconnect["automerge_repo"]["bytes"]
        ),
    ]);
    report::line(t);
    Ok(())
}
