//! `scale`: a county holding N documents (100,000 by default): start-up time and resident
//! memory with every document on disk, then a full sync pass to an empty township and both
//! processes' memory afterwards.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::nodes::Pair;
use crate::report::{self, mib, ms};

pub(crate) async fn run(n: usize, json: bool) -> Result<()> {
    let (p, _) = Pair::start(n).await?;
    // Restart the county to time a cold start with all documents on disk.
    let (p, startup) = p.restart_county().await?;
    let idle_rss = p.ch.rss_kib();
    // A full sync pass: every document goes to the empty township.
    let t1 = Instant::now();
    p.connect_and_wait(n as u64, 0, Duration::from_secs(3600))
        .await?;
    let pass = t1.elapsed();
    let (ch_rss, ch_peak, tc_rss, tc_peak) = (
        p.ch.rss_kib(),
        p.ch.peak_rss_kib(),
        p.tc.rss_kib(),
        p.tc.peak_rss_kib(),
    );
    p.stop().await?;
    if json {
        return report::json(&serde_json::json!({
            "scenario": "scale", "docs": n, "startup_ms": ms(startup), "rss_after_start_mib": mib(idle_rss),
            "sync_pass_s": pass.as_secs_f64(), "county_rss_mib": mib(ch_rss), "county_peak_mib": mib(ch_peak),
            "township_rss_mib": mib(tc_rss), "township_peak_mib": mib(tc_peak),
        }));
    }
    let mut t = report::table(&[
        "documents",
        "start-up",
        "RSS after start",
        "full sync pass",
        "county RSS / peak",
        "township RSS / peak",
    ]);
    t.add_row(vec![
        n.to_string(),
        format!("{:.0} ms", ms(startup)),
        format!("{:.1} MiB", mib(idle_rss)),
        format!("{:.1} s", pass.as_secs_f64()),
        format!("{:.1} / {:.1} MiB", mib(ch_rss), mib(ch_peak)),
        format!("{:.1} / {:.1} MiB", mib(tc_rss), mib(tc_peak)),
    ]);
    report::line(t);
    Ok(())
}
