//! `writes`: durable writes through the control socket. A node runs in this process
//! (`daemon::start`); each client adds a note, then appends to it `count / clients` times, one
//! request at a time, timing each until the node has answered (it answers after the commit).

use std::time::Instant;

use anyhow::{Result, bail};
use yilian_node::control::{ControlClient, Request, Response};
use yilian_testkit::control::call;

use crate::report::{self, Spread, ms};

pub(crate) async fn run(count: usize, clients: usize, json: bool) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("yilian-bench-").tempdir()?;
    let dir = tmp.path().join("node");
    yilian_testkit::init(&dir, "CH-01", "county-hospital");
    let node = yilian_node::daemon::start(&dir).await?;
    let per_client = count.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let sock = node.socket_path().to_path_buf();
        tasks.push(tokio::spawn(async move {
            let mut conn = ControlClient::connect(&sock).await?;
            let add = Request::NoteAdd {
                title: format!("bench {c}"),
                text: None,
                audience: vec![],
            };
            let Response::Written(info) = call(&mut conn, add).await? else {
                bail!("unexpected answer to note add");
            };
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let append = Request::NoteAppend {
                    id: info.id.to_string(),
                    text: format!("entry {i}: blood pressure 130/85, follow up in 2 weeks"),
                };
                let t = Instant::now();
                call(&mut conn, append).await?;
                lat.push(t.elapsed());
            }
            Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let wall = started.elapsed();
    node.stop().await?;
    let writes = lat.len();
    let s = Spread::of(lat);
    let rate = writes as f64 / wall.as_secs_f64();
    if json {
        return report::json(&serde_json::json!({
            "scenario": "writes", "writes": writes, "clients": clients,
            "p50_ms": ms(s.p50), "p99_ms": ms(s.p99), "max_ms": ms(s.max), "writes_per_s": rate,
        }));
    }
    let mut t = report::table(&["durable writes", "clients", "p50", "p99", "max", "writes/s"]);
    t.add_row(vec![
        writes.to_string(),
        clients.to_string(),
        format!("{:.2} ms", ms(s.p50)),
        format!("{:.2} ms", ms(s.p99)),
        format!("{:.2} ms", ms(s.max)),
        format!("{rate:.0}"),
    ]);
    report::line(t);
    Ok(())
}
