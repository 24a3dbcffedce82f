//! `live`: two connected nodes; the county appends to a shared document and the township is
//! polled (every millisecond) until it holds the same heads.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use yilian_node::control::{Request, Response};

use crate::nodes::{Pair, ask};
use crate::report::{self, Spread, ms};

pub(crate) async fn run(edits: usize, json: bool) -> Result<()> {
    let (p, ids) = Pair::start(10).await?;
    p.connect_and_wait(10, 0, Duration::from_secs(60)).await?;
    let mut lat = Vec::with_capacity(edits);
    for i in 0..edits {
        let id = ids[i % ids.len()].to_string();
        let append = Request::NoteAppend {
            id: id.clone(),
            text: format!("live edit {i}"),
        };
        let Response::Written(info) = ask(&p.ch, append).await? else {
            bail!("unexpected answer to note append");
        };
        let t0 = Instant::now();
        loop {
            if let Response::Doc { info: there, .. } =
                ask(&p.tc, Request::DocShow { id: id.clone() }).await?
                && there.heads == info.heads
            {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("edit {i} did not arrive within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.push(t0.elapsed());
    }
    p.stop().await?;
    let s = Spread::of(lat);
    if json {
        return report::json(&serde_json::json!({
            "scenario": "live", "edits": edits, "p50_ms": ms(s.p50), "p99_ms": ms(s.p99), "max_ms": ms(s.max),
        }));
    }
    let mut t = report::table(&["live edits", "p50", "p99", "max"]);
    t.add_row(vec![
        edits.to_string(),
        format!("{:.1} ms", ms(s.p50)),
        format!("{:.1} ms", ms(s.p99)),
        format!("{:.1} ms", ms(s.max)),
    ]);
    report::line(t);
    Ok(())
}
