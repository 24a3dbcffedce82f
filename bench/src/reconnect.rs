//! `reconnect`: a township caught up with a county that holds N shared documents disconnects
//! and dials again with nothing changed: frames and bytes each way, time until caught up.

use std::time::{Duration, Instant};

use anyhow::Result;
use yilian_node::sync::PeerSyncStatus;

use crate::nodes::Pair;
use crate::report::{self, ms};

/// A no-op reconnect with `n` shared documents: (session figures, time until caught up).
pub(crate) async fn once(n: usize) -> Result<(PeerSyncStatus, Duration)> {
    let (p, _) = Pair::start(n).await?;
    p.connect_and_wait(n as u64, 0, Duration::from_secs(600))
        .await?;
    p.disconnect().await?;
    let mark = yilian_node::documents::now_ms();
    let t0 = Instant::now();
    let s = p
        .connect_and_wait(n as u64, mark, Duration::from_secs(60))
        .await?;
    let took = t0.elapsed();
    let s = p.settled_session(Some(s.node_id)).await?;
    p.stop().await?;
    Ok((s, took))
}

pub(crate) async fn run(n: usize, json: bool) -> Result<()> {
    let (s, took) = once(n).await?;
    let round_trips = s.frames_sent.max(s.frames_received);
    if json {
        return report::json(&serde_json::json!({
            "scenario": "reconnect", "docs": n, "frames_out": s.frames_sent, "frames_in": s.frames_received,
            "round_trips": round_trips, "bytes_out": s.bytes_sent, "bytes_in": s.bytes_received,
            "ms_until_caught_up": ms(took),
        }));
    }
    let mut t = report::table(&[
        "shared docs",
        "frames out / in",
        "round trips",
        "bytes out / in",
        "caught up after",
    ]);
    t.add_row(vec![
        n.to_string(),
        format!("{} / {}", s.frames_sent, s.frames_received),
        round_trips.to_string(),
        format!("{} / {}", s.bytes_sent, s.bytes_received),
        format!("{:.0} ms", ms(took)),
    ]);
    report::line(t);
    Ok(())
}
