//! `lossy`: a county and two townships; each township reaches the county only through a
//! [`relay`](crate::relay) adding delay, loss and a rate limit. Both townships update their
//! documents (whose audience is all three) until every node agrees, compared with the time the
//! busiest link's bytes alone need; then the county is killed (SIGKILL) and restarted on the
//! same address, and the time until both townships have a session with it again is measured.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use yilian_node::config::Congestion;
use yilian_node::control::{Request, Response};
use yilian_node::ids::DocId;
use yilian_testkit::{Alliance, NodeProcess};

use crate::nodes::{self, ask, fill, listen_addr, status};
use crate::relay::{LinkSpec, Relay};
use crate::report;

/// Document id -> heads on a node.
async fn heads(node: &NodeProcess) -> Result<HashMap<DocId, Vec<[u8; 32]>>> {
    let list = Request::DocList {
        kind: None,
        titles: false,
    };
    let Response::Docs(docs) = ask(node, list).await? else {
        bail!("unexpected answer to doc list");
    };
    Ok(docs
        .into_iter()
        .map(|d| (d.info.id, d.info.heads))
        .collect())
}

/// Whether every node holds at least `expect` documents, all with the same heads.
async fn agree(nodes: &[&NodeProcess], expect: usize) -> Result<bool> {
    let first = heads(nodes[0]).await?;
    if first.len() < expect {
        return Ok(false);
    }
    for n in &nodes[1..] {
        if heads(n).await? != first {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn wait_agree(nodes: &[&NodeProcess], expect: usize, timeout: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    while !agree(nodes, expect).await? {
        if t0.elapsed() > timeout {
            bail!("the nodes did not converge within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(t0.elapsed())
}

/// Appends one update to each of `ids` on `node`, one after the other.
async fn update_all(node: &NodeProcess, ids: &[DocId], text: &str) -> Result<()> {
    for id in ids {
        let append = Request::NoteAppend {
            id: id.to_string(),
            text: text.into(),
        };
        ask(node, append).await?;
    }
    Ok(())
}

pub(crate) async fn run(
    updates: usize,
    spec: LinkSpec,
    congestion: Option<Congestion>,
    json: bool,
) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("yilian-lossy-").tempdir()?;
    let congestion = congestion.unwrap_or_default();
    let root = tmp.path().to_path_buf();
    let dirs = tokio::task::spawn_blocking(move || {
        let alliance = Alliance::new(&root, "Lossy Alliance");
        let dirs = [
            alliance.node("CH-01", "county-hospital", ""),
            alliance.node("TC-0A", "township-center", ""),
            alliance.node("TC-0B", "township-center", ""),
        ];
        for d in &dirs {
            yilian_testkit::configure(d, |cfg| cfg.network.congestion = congestion);
        }
        dirs
    })
    .await?;
    let everyone = ["CH-01", "TC-0A", "TC-0B"];
    let ids_a = fill(&dirs[1], updates, &everyone).await?;
    let ids_b = fill(&dirs[2], updates, &everyone).await?;
    let ch = nodes::start(&dirs[0]).await?;
    let county = listen_addr(&ch).await?;
    let relays = [
        Relay::start(county, spec, 0x5eed_0001).await?,
        Relay::start(county, spec, 0x5eed_0002).await?,
    ];
    let ta = nodes::start(&dirs[1]).await?;
    let tb = nodes::start(&dirs[2]).await?;
    for (t, r) in [(&ta, &relays[0]), (&tb, &relays[1])] {
        let addr = r.addr.to_string();
        ask(t, Request::PeerAdd { addr }).await?;
    }
    let nodes = [&ch, &ta, &tb];
    // Generous for the full run, short enough that a stalled smoke run fails in minutes.
    let limit = Duration::from_secs(60 + 10 * updates as u64);
    let initial = wait_agree(&nodes, 2 * updates, limit).await?;
    let before: Vec<[u64; 2]> = relays.iter().map(|r| r.stats.bytes_now()).collect();
    let t0 = Instant::now();
    let (a, b) = tokio::join!(
        update_all(&ta, &ids_a, "follow-up visit done, BP 130/85"),
        update_all(&tb, &ids_b, "discharged to home care"),
    );
    a?;
    b?;
    let converge = t0.elapsed() + wait_agree(&nodes, 2 * updates, limit).await?;
    let mut busiest = 0u64;
    let mut total = 0u64;
    for (r, start) in relays.iter().zip(&before) {
        for (now, start) in r.stats.bytes_now().iter().zip(start) {
            let d = now - start;
            busiest = busiest.max(d);
            total += d;
        }
    }
    let dropped: u64 = relays
        .iter()
        .flat_map(|r| r.stats.dropped.iter())
        .map(|d| d.load(Ordering::Relaxed))
        .sum();
    let bytes_time = busiest as f64 * 8.0 / spec.rate_bps as f64;
    let ratio = converge.as_secs_f64() / bytes_time.max(f64::EPSILON);

    // The county crashes (SIGKILL) and comes back on the same address: how long until both
    // townships have a session with it again, over the lossy links.
    yilian_testkit::configure(&dirs[0], |cfg| cfg.network.listen = county);
    nodes::kill9(ch).await?;
    let ch = nodes::start(&dirs[0]).await?;
    let t1 = Instant::now();
    loop {
        let sessions = status(&ch)
            .await?
            .network
            .sync
            .iter()
            .filter(|s| s.connected)
            .count();
        if sessions == 2 {
            break;
        }
        if t1.elapsed() > limit {
            bail!("the townships did not reconnect to the restarted county within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let recognised = t1.elapsed();
    for n in [tb, ta, ch] {
        nodes::stop(n).await?;
    }
    if json {
        return report::json(&serde_json::json!({
            "scenario": "lossy", "updates_per_township": updates, "congestion": congestion, "rtt_ms": spec.one_way.as_millis() * 2,
            "loss": spec.loss, "rate_bps": spec.rate_bps, "initial_sync_s": initial.as_secs_f64(),
            "converge_s": converge.as_secs_f64(), "busiest_link_bytes": busiest, "total_link_bytes": total,
            "bytes_alone_s": bytes_time, "ratio": ratio, "datagrams_dropped": dropped,
            "restart_reconnect_s": recognised.as_secs_f64(),
        }));
    }
    let mut t = report::table(&[
        "updates",
        "link",
        "controller",
        "converged in",
        "bytes on busiest link",
        "bytes alone need",
        "ratio (target <= 2)",
        "county restart: both back in",
    ]);
    t.add_row(vec![
        format!("{updates} on each of 2 townships"),
        format!(
            "{} ms RTT, {:.0}% loss, {} kbit/s",
            spec.one_way.as_millis() * 2,
            spec.loss * 100.0,
            spec.rate_bps / 1000
        ),
        format!("{congestion:?}"),
        format!("{:.2} s", converge.as_secs_f64()),
        busiest.to_string(),
        format!("{bytes_time:.2} s"),
        format!("{ratio:.2}"),
        format!("{:.2} s", recognised.as_secs_f64()),
    ]);
    report::line(t);
    Ok(())
}
