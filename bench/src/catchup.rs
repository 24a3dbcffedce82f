//! `catchup`: a township caught up with a county disconnects; the county edits K documents;
//! the township dials again. Bytes on the wire (both ways) against the edits' own Automerge
//! bytes, and the design's budget of 1.5 x those bytes + 200 B per document.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use yilian_node::control::{Request, Response};
use yilian_node::ids::DocId;
use yilian_node::reexports::automerge::{Automerge, ChangeHash};

use crate::nodes::{Pair, ask};
use crate::report;

pub(crate) async fn run(ks: &[usize], json: bool) -> Result<()> {
    let total: usize = ks.iter().sum::<usize>().max(1);
    let n = total.max(1000);
    let (p, ids) = Pair::start(n).await?;
    p.connect_and_wait(n as u64, 0, Duration::from_secs(600))
        .await?;
    let mut rounds = Vec::new();
    let mut next = 0usize;
    for &k in ks {
        p.disconnect().await?;
        let chosen = &ids[next..next + k];
        next += k;
        // Heads before the edits, from the county.
        let mut before: Vec<(DocId, Vec<ChangeHash>)> = Vec::with_capacity(k);
        for id in chosen {
            let Response::Doc { info, .. } =
                ask(&p.ch, Request::DocShow { id: id.to_string() }).await?
            else {
                bail!("unexpected answer to doc show");
            };
            before.push((*id, info.heads.iter().map(|h| ChangeHash(*h)).collect()));
            ask(
                &p.ch,
                Request::NoteAppend {
                    id: id.to_string(),
                    text: "follow-up: discharged home, review in 2 weeks".into(),
                },
            )
            .await?;
        }
        let mark = yilian_node::documents::now_ms();
        let t0 = Instant::now();
        p.connect_and_wait(n as u64, mark, Duration::from_secs(300))
            .await?;
        let took = t0.elapsed();
        let s = p.settled_session(None).await?;
        rounds.push((k, before, s, took));
    }
    let mut rows = Vec::new();
    for (k, before, s, took) in rounds {
        // The changes' own Automerge bytes, from the county's copy of each document.
        let mut change_bytes = 0u64;
        for (id, heads) in &before {
            let Response::Exported { bytes, .. } =
                ask(&p.ch, Request::DocExport { id: id.to_string() }).await?
            else {
                bail!("unexpected answer to doc export");
            };
            change_bytes += Automerge::load(&bytes)?.save_after(heads).len() as u64;
        }
        let wire = s.bytes_sent + s.bytes_received;
        let budget = change_bytes * 3 / 2 + 200 * k as u64;
        rows.push(serde_json::json!({
            "changed_docs": k, "change_bytes": change_bytes, "wire_bytes": wire,
            "bytes_to_township": s.bytes_received, "bytes_to_county": s.bytes_sent,
            "budget_bytes": budget, "within_budget": wire <= budget, "seconds": took.as_secs_f64(),
        }));
    }
    p.stop().await?;
    if json {
        return report::json(
            &serde_json::json!({"scenario": "catchup", "shared_docs": n, "runs": rows}),
        );
    }
    let mut t = report::table(&[
        "changed docs",
        "change bytes",
        "wire bytes (both ways)",
        "budget 1.5x + 200 B/doc",
        "seconds",
    ]);
    for r in &rows {
        let verdict = if r["within_budget"] == true {
            "met"
        } else {
            "MISSED"
        };
        t.add_row(vec![
            r["changed_docs"].to_string(),
            r["change_bytes"].to_string(),
            r["wire_bytes"].to_string(),
            format!("{} ({verdict})", r["budget_bytes"]),
            format!("{:.3}", r["seconds"].as_f64().unwrap_or(0.0)),
        ]);
    }
    report::line(t);
    Ok(())
}
