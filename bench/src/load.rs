//! `load`: a node stores N small notes (created by 32 clients at once, so the storage thread
//! commits many per transaction), stops, starts again and loads every document from disk (cold
//! cache; snapshot + increments). Loading is the node's own `doc list --titles` request, which
//! reads every document to take its title. The node runs in this process (`daemon::start`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use yilian_node::control::proto::ListedDoc;
use yilian_node::control::{Request, Response};
use yilian_testkit::control::ask;

use crate::report::{self, ms};

/// `doc list`, with every document's title (which loads it) when `titles` is set.
async fn doc_list(socket: &Path, titles: bool) -> Result<Vec<ListedDoc>> {
    match ask(socket, Request::DocList { kind: None, titles }).await? {
        Response::Docs(docs) => Ok(docs),
        other => bail!("unexpected answer to doc list: {other:?}"),
    }
}

pub(crate) async fn run(docs: usize, json: bool) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("yilian-bench-").tempdir()?;
    let dir = tmp.path().join("node");
    yilian_testkit::init(&dir, "CH-01", "county-hospital");

    let node = yilian_node::daemon::start(&dir).await?;
    let fill_started = Instant::now();
    yilian_testkit::fill::concurrently(node.socket_path(), docs, |i| Request::NoteAdd {
        title: format!("referral-sized note {i}"),
        text: None,
        audience: vec![],
    })
    .await?;
    let fill = fill_started.elapsed();
    node.stop().await?;

    let open_started = Instant::now();
    let node = yilian_node::daemon::start(&dir).await?;
    let listed = doc_list(node.socket_path(), false).await?;
    let open_and_list = open_started.elapsed();
    let read_started = Instant::now();
    let loaded = doc_list(node.socket_path(), true).await?;
    let read = read_started.elapsed();
    node.stop().await?;
    if listed.len() != docs || loaded.iter().any(|d| d.title.is_none()) {
        bail!(
            "the node listed {} of {docs} documents, {} without a title",
            listed.len(),
            loaded.iter().filter(|d| d.title.is_none()).count()
        );
    }
    let heads: usize = loaded.iter().map(|d| d.info.heads.len()).sum();
    let per_doc_us = read.as_secs_f64() * 1e6 / docs.max(1) as f64;
    if json {
        return report::json(&serde_json::json!({
            "scenario": "load", "docs": docs, "fill_s": fill.as_secs_f64(),
            "open_and_list_ms": ms(open_and_list), "load_all_ms": ms(read), "per_doc_us": per_doc_us,
            "heads": heads,
        }));
    }
    let mut t = report::table(&[
        "documents",
        "create (32 clients)",
        "start + list",
        "load every doc",
        "per doc",
    ]);
    t.add_row(vec![
        docs.to_string(),
        format!("{:.2} s", fill.as_secs_f64()),
        format!("{:.1} ms", ms(open_and_list)),
        format!("{:.1} ms", ms(read)),
        format!("{per_doc_us:.0} µs"),
    ]);
    report::line(t);
    Ok(())
}
