//! `first-sync`: a county holding N referral-sized documents, a township that has none; time
//! from the township dialing the county until its session has received every document, bytes
//! each way and both processes' peak memory.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::nodes::Pair;
use crate::report::{self, mib};

/// One run per document count: the figures as JSON rows.
pub(crate) async fn rows(counts: &[usize]) -> Result<Vec<serde_json::Value>> {
    let mut rows = Vec::new();
    for &n in counts {
        let (p, _) = Pair::start(n).await?;
        let t0 = Instant::now();
        let s = p
            .connect_and_wait(n as u64, 0, Duration::from_secs(600))
            .await?;
        let secs = t0.elapsed().as_secs_f64();
        rows.push(serde_json::json!({
            "docs": n, "seconds": secs, "docs_per_s": n as f64 / secs,
            "bytes_to_township": s.bytes_received, "bytes_to_county": s.bytes_sent,
            "peak_rss_county_mib": mib(p.ch.peak_rss_kib()),
            "peak_rss_township_mib": mib(p.tc.peak_rss_kib()),
        }));
        p.stop().await?;
    }
    Ok(rows)
}

pub(crate) async fn run(counts: &[usize], json: bool) -> Result<()> {
    let rows = rows(counts).await?;
    if json {
        return report::json(&serde_json::json!({"scenario": "first-sync", "runs": rows}));
    }
    let mut t = report::table(&[
        "documents",
        "seconds",
        "docs/s",
        "bytes to township",
        "peak RSS county",
        "peak RSS township",
    ]);
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(0.0);
    for r in &rows {
        t.add_row(vec![
            r["docs"].to_string(),
            format!("{:.2}", f(r, "seconds")),
            format!("{:.0}", f(r, "docs_per_s")),
            r["bytes_to_township"].to_string(),
            format!("{:.1} MiB", f(r, "peak_rss_county_mib")),
            format!("{:.1} MiB", f(r, "peak_rss_township_mib")),
        ]);
    }
    report::line(t);
    Ok(())
}
