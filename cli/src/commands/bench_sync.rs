//! Sync benchmarks: two nodes (county hospital, township center) run as separate `yilian node
//! run` processes on loopback, so each one's peak memory can be read; figures come from the
//! township's `status` (bytes and frames counted on the sync stream, QUIC handshake excluded).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use yilian_node::config::FacilityKind;
use yilian_node::control::{ControlClient, Request, Response, StatusReport};
use yilian_node::datadir::DataDir;
use yilian_node::documents::{Audience, DocKind};
use yilian_node::ids::{DocId, FacilityCode};
use yilian_node::reexports::automerge::transaction::Transactable;
use yilian_node::reexports::automerge::{ActorId, Automerge, ChangeHash, ObjType, ROOT};
use yilian_node::sync::PeerSyncStatus;

use super::alliance::enroll_all;
use super::bench::ms;
use super::demo::ask;
use crate::output;

/// A node running as a child process.
struct ChildNode {
    dir: PathBuf,
    child: Child,
}

impl ChildNode {
    async fn start(dir: &Path) -> Result<ChildNode> {
        let log = std::fs::File::create(dir.with_extension("log"))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("--dir")
            .arg(dir)
            .args(["node", "run"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start a node process")?;
        let node = ChildNode {
            dir: dir.to_path_buf(),
            child,
        };
        let sock = DataDir::new(dir).socket_path();
        for _ in 0..1000 {
            if ControlClient::connect(&sock).await.is_ok() {
                return Ok(node);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("node {} did not start", dir.display())
    }

    async fn ask(&self, req: Request) -> Result<Response> {
        ask(
            &mut ControlClient::connect(&DataDir::new(&self.dir).socket_path()).await?,
            req,
        )
        .await
    }

    async fn status(&self) -> Result<StatusReport> {
        match self.ask(Request::Status).await? {
            Response::Status(s) => Ok(*s),
            _ => bail!("unexpected answer"),
        }
    }

    /// A memory figure from /proc (VmHWM: peak, VmRSS: now), KiB.
    fn proc_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }

    /// Peak resident memory, KiB.
    fn peak_kib(&self) -> u64 {
        self.proc_kib("VmHWM:")
    }

    /// Resident memory now, KiB.
    fn rss_kib(&self) -> u64 {
        self.proc_kib("VmRSS:")
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// SIGKILL: the process gets no chance to close its connections.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A referral-sized document (about 17 fields and a 5-entry history), shaped as a note so the
/// node's note commands can edit it.
fn referral_doc(actor: ActorId, i: usize) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor);
    let _ = doc.transact::<_, _, yilian_node::reexports::automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "schema", 1u64)?;
        tx.put(ROOT, "title", format!("转诊 referral {i}"))?;
        tx.put(ROOT, "patient_name", format!("患者{i:05}"))?;
        tx.put(ROOT, "sex", if i.is_multiple_of(2) { "F" } else { "M" })?;
        tx.put(
            ROOT,
            "birth_date",
            format!("19{:02}-0{}-1{}", 40 + i % 50, 1 + i % 9, i % 10),
        )?;
        tx.put(ROOT, "id_number", format!("4301021960{:08}", i))?;
        tx.put(ROOT, "from", "TC-01")?;
        tx.put(ROOT, "to", "CH-01")?;
        tx.put(ROOT, "department", "普外科 General surgery")?;
        tx.put(ROOT, "icd10", "K35.800")?;
        tx.put(
            ROOT,
            "diagnosis",
            "急性阑尾炎 acute appendicitis, suspected",
        )?;
        tx.put(
            ROOT,
            "urgency",
            if i.is_multiple_of(7) {
                "green-channel"
            } else {
                "routine"
            },
        )?;
        tx.put(
            ROOT,
            "reason",
            "Right lower quadrant pain for 12 h, fever 38.2, WBC 13.1; needs surgical evaluation",
        )?;
        tx.put(
            ROOT,
            "treatment",
            "IV fluids, ceftriaxone 2 g, analgesia withheld pending exam",
        )?;
        tx.put(ROOT, "doctor", "Dr. Wang, attending")?;
        tx.put(ROOT, "phone", "0731-8888-1234")?;
        tx.put(ROOT, "created_ms", 1_790_000_000_000u64 + i as u64)?;
        let entries = tx.put_object(ROOT, "entries", ObjType::List)?;
        for (k, act) in [
            "requested",
            "viewed",
            "accepted",
            "slot 2026-12-01 09:30",
            "arrived",
        ]
        .iter()
        .enumerate()
        {
            let e = tx.insert_object(&entries, k, ObjType::Map)?;
            tx.put(&e, "at", 1_790_000_000_000u64 + k as u64 * 60_000)?;
            tx.put(
                &e,
                "by",
                if k.is_multiple_of(2) {
                    "TC-01"
                } else {
                    "CH-01"
                },
            )?;
            tx.put(&e, "text", *act)?;
        }
        Ok(())
    });
    doc
}

/// Adds `n` referral-sized documents to a stopped node's store.
fn fill(dir: &Path, n: usize, audience: &[&str]) -> Result<Vec<DocId>> {
    let dd = DataDir::new(dir);
    let (cfg, key) = dd.load()?;
    let mut store = dd.open_store(key.node_id(), &cfg)?;
    let mut codes: Vec<FacilityCode> = audience
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, _>>()?;
    codes.push(cfg.facility.code.clone());
    let mut ids = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let mut b = store.batch()?;
        for _ in 0..500.min(n - i) {
            let doc = referral_doc(b.actor().clone(), i);
            ids.push(
                b.create(DocKind::Note, Audience::new(codes.clone()), doc)?
                    .id,
            );
            i += 1;
        }
        b.commit()?;
    }
    Ok(ids)
}

impl Pair {
    async fn county_addr(&self) -> Result<String> {
        Ok(self
            .ch
            .status()
            .await?
            .network
            .listen
            .context("the county is not listening")?
            .to_string())
    }
}

struct Pair {
    _tmp: tempfile::TempDir,
    ch: ChildNode,
    tc: ChildNode,
}

async fn pair(docs: usize) -> Result<(Pair, Vec<DocId>)> {
    let tmp = tempfile::Builder::new().prefix("yilian-bench-").tempdir()?;
    let members = enroll_all(
        tmp.path(),
        "Bench Alliance",
        &[
            ("CH-01", "county", FacilityKind::CountyHospital),
            ("TC-01", "township", FacilityKind::TownshipCenter),
        ],
    )?;
    let ids = fill(&members[0].dir, docs, &["TC-01"])?;
    let ch = ChildNode::start(&members[0].dir).await?;
    let tc = ChildNode::start(&members[1].dir).await?;
    Ok((Pair { _tmp: tmp, ch, tc }, ids))
}

/// Connects the township to the county and waits until it holds `docs` documents and the
/// session (started after `after_ms`) is caught up. Returns the township's view of the session.
async fn connect_and_wait(
    p: &Pair,
    docs: u64,
    after_ms: u64,
    timeout: Duration,
) -> Result<PeerSyncStatus> {
    let addr = p.county_addr().await?;
    p.tc.ask(Request::PeerAdd { addr }).await?;
    let started = Instant::now();
    loop {
        let s = p.tc.status().await?;
        let done = s.network.sync.iter().find(|x| {
            x.connected
                && x.session_started_ms >= after_ms
                && x.caught_up
                && s.store.docs_total >= docs
        });
        if let Some(peer) = done {
            return Ok(peer.clone());
        }
        if started.elapsed() > timeout {
            bail!("no catch-up within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn disconnect(p: &Pair) -> Result<()> {
    let addr = p.county_addr().await?;
    p.tc.ask(Request::PeerRemove { addr }).await?;
    for _ in 0..500 {
        if p.tc
            .status()
            .await?
            .network
            .sync
            .iter()
            .all(|x| !x.connected)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("the session did not end")
}

async fn first_sync_rows(counts: &[usize]) -> Result<Vec<serde_json::Value>> {
    let mut rows = Vec::new();
    for &n in counts {
        let (p, _) = pair(n).await?;
        let t0 = Instant::now();
        let s = connect_and_wait(&p, n as u64, 0, Duration::from_secs(600)).await?;
        let secs = t0.elapsed().as_secs_f64();
        rows.push(serde_json::json!({
            "docs": n, "seconds": secs, "docs_per_s": n as f64 / secs,
            "bytes_to_township": s.bytes_received, "bytes_to_county": s.bytes_sent,
            "peak_rss_county_mib": p.ch.peak_kib() as f64 / 1024.0,
            "peak_rss_township_mib": p.tc.peak_kib() as f64 / 1024.0,
        }));
        p.tc.stop();
        p.ch.stop();
    }
    Ok(rows)
}

pub(crate) async fn first_sync(counts: &[usize], json: bool) -> Result<()> {
    let rows = first_sync_rows(counts).await?;
    if json {
        return output::json(&serde_json::json!({"scenario": "first-sync", "runs": rows}));
    }
    let mut t = output::table(&[
        "documents",
        "seconds",
        "docs/s",
        "bytes to township",
        "peak RSS county",
        "peak RSS township",
    ]);
    for r in &rows {
        t.add_row(vec![
            r["docs"].to_string(),
            format!("{:.2}", r["seconds"].as_f64().unwrap_or(0.0)),
            format!("{:.0}", r["docs_per_s"].as_f64().unwrap_or(0.0)),
            r["bytes_to_township"].to_string(),
            format!(
                "{:.1} MiB",
                r["peak_rss_county_mib"].as_f64().unwrap_or(0.0)
            ),
            format!(
                "{:.1} MiB",
                r["peak_rss_township_mib"].as_f64().unwrap_or(0.0)
            ),
        ]);
    }
    output::line(t);
    Ok(())
}

/// A no-op reconnect with `n` shared documents: (session figures, time until caught up).
async fn reconnect_once(n: usize) -> Result<(PeerSyncStatus, Duration)> {
    let (p, _) = pair(n).await?;
    connect_and_wait(&p, n as u64, 0, Duration::from_secs(600)).await?;
    disconnect(&p).await?;
    let mark = yilian_node::documents::now_ms();
    let t0 = Instant::now();
    let s = connect_and_wait(&p, n as u64, mark, Duration::from_secs(60)).await?;
    let took = t0.elapsed();
    // Let any trailing frame land before reading the counters.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s =
        p.tc.status()
            .await?
            .network
            .sync
            .into_iter()
            .find(|x| x.node_id == s.node_id)
            .unwrap_or(s);
    p.tc.stop();
    p.ch.stop();
    Ok((s, took))
}

pub(crate) async fn reconnect(n: usize, json: bool) -> Result<()> {
    let (s, took) = reconnect_once(n).await?;
    let round_trips = s.frames_sent.max(s.frames_received);
    if json {
        return output::json(&serde_json::json!({
            "scenario": "reconnect", "docs": n, "frames_out": s.frames_sent, "frames_in": s.frames_received,
            "round_trips": round_trips, "bytes_out": s.bytes_sent, "bytes_in": s.bytes_received,
            "ms_until_caught_up": ms(took),
        }));
    }
    let mut t = output::table(&[
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
    output::line(t);
    Ok(())
}

pub(crate) async fn catchup(ks: &[usize], json: bool) -> Result<()> {
    let total: usize = ks.iter().sum::<usize>().max(1);
    let n = total.max(1000);
    let (p, ids) = pair(n).await?;
    connect_and_wait(&p, n as u64, 0, Duration::from_secs(600)).await?;
    let mut rounds = Vec::new();
    let mut next = 0usize;
    for &k in ks {
        disconnect(&p).await?;
        let chosen: Vec<DocId> = ids[next..next + k].to_vec();
        next += k;
        // Heads before the edits, from the county.
        let mut before: Vec<(DocId, Vec<ChangeHash>)> = Vec::with_capacity(k);
        for id in &chosen {
            let Response::Doc { info, .. } =
                p.ch.ask(Request::DocShow { id: id.to_string() }).await?
            else {
                bail!("unexpected answer");
            };
            before.push((*id, info.heads.iter().map(|h| ChangeHash(*h)).collect()));
            p.ch.ask(Request::NoteAppend {
                id: id.to_string(),
                text: "follow-up: discharged home, review in 2 weeks".into(),
            })
            .await?;
        }
        let mark = yilian_node::documents::now_ms();
        let t0 = Instant::now();
        connect_and_wait(&p, n as u64, mark, Duration::from_secs(300)).await?;
        let took = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s =
            p.tc.status()
                .await?
                .network
                .sync
                .into_iter()
                .find(|x| x.connected)
                .context("no session")?;
        rounds.push((k, before, s, took));
    }
    p.tc.stop();
    let ch_dir = p.ch.dir.clone();
    p.ch.stop();
    // The changes' own Automerge bytes, read from the county's store.
    let dd = DataDir::new(&ch_dir);
    let (cfg, key) = dd.load()?;
    let mut store = dd.open_store(key.node_id(), &cfg)?;
    let mut rows = Vec::new();
    for (k, before, s, took) in rounds {
        let mut b = store.batch()?;
        let mut change_bytes = 0u64;
        for (id, heads) in &before {
            change_bytes += b.read(id, |d| d.save_after(heads).len() as u64)?;
        }
        b.rollback();
        let wire = s.bytes_sent + s.bytes_received;
        let budget = change_bytes * 3 / 2 + 200 * k as u64;
        rows.push(serde_json::json!({
            "changed_docs": k, "change_bytes": change_bytes, "wire_bytes": wire,
            "bytes_to_township": s.bytes_received, "bytes_to_county": s.bytes_sent,
            "budget_bytes": budget, "within_budget": wire <= budget, "seconds": took.as_secs_f64(),
        }));
    }
    if json {
        return output::json(
            &serde_json::json!({"scenario": "catchup", "shared_docs": n, "runs": rows}),
        );
    }
    let mut t = output::table(&[
        "changed docs",
        "change bytes",
        "wire bytes (both ways)",
        "budget 1.5x + 200 B/doc",
        "seconds",
    ]);
    for r in &rows {
        t.add_row(vec![
            r["changed_docs"].to_string(),
            r["change_bytes"].to_string(),
            r["wire_bytes"].to_string(),
            format!(
                "{} ({})",
                r["budget_bytes"],
                if r["within_budget"] == true {
                    "met"
                } else {
                    "MISSED"
                }
            ),
            format!("{:.3}", r["seconds"].as_f64().unwrap_or(0.0)),
        ]);
    }
    output::line(t);
    Ok(())
}

pub(crate) async fn live(edits: usize, json: bool) -> Result<()> {
    let (p, ids) = pair(10).await?;
    connect_and_wait(&p, 10, 0, Duration::from_secs(60)).await?;
    let mut lat = Vec::with_capacity(edits);
    for i in 0..edits {
        let id = ids[i % ids.len()].to_string();
        let Response::Written(info) =
            p.ch.ask(Request::NoteAppend {
                id: id.clone(),
                text: format!("live edit {i}"),
            })
            .await?
        else {
            bail!("unexpected answer");
        };
        let t0 = Instant::now();
        loop {
            if let Response::Doc { info: there, .. } =
                p.tc.ask(Request::DocShow { id: id.clone() }).await?
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
    p.tc.stop();
    p.ch.stop();
    lat.sort();
    let p50 = super::bench::percentile(&lat, 0.5);
    let p99 = super::bench::percentile(&lat, 0.99);
    let max = lat.last().copied().unwrap_or_default();
    if json {
        return output::json(&serde_json::json!({
            "scenario": "live", "edits": edits, "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max),
        }));
    }
    let mut t = output::table(&["live edits", "p50", "p99", "max"]);
    t.add_row(vec![
        edits.to_string(),
        format!("{:.1} ms", ms(p50)),
        format!("{:.1} ms", ms(p99)),
        format!("{:.1} ms", ms(max)),
    ]);
    output::line(t);
    Ok(())
}

pub(crate) async fn scale(n: usize, json: bool) -> Result<()> {
    let (p, _) = pair(n).await?;
    // Restart the county to time a cold start with all documents on disk.
    let ch_dir = p.ch.dir.clone();
    let Pair { _tmp, ch, tc } = p;
    ch.stop();
    let t0 = Instant::now();
    let ch = ChildNode::start(&ch_dir).await?;
    let startup = t0.elapsed();
    let idle_rss = ch.rss_kib();
    let p = Pair { _tmp, ch, tc };
    // A full sync pass: every document goes to the empty township.
    let t1 = Instant::now();
    connect_and_wait(&p, n as u64, 0, Duration::from_secs(3600)).await?;
    let pass = t1.elapsed();
    let (ch_rss, ch_peak, tc_rss, tc_peak) = (
        p.ch.rss_kib(),
        p.ch.peak_kib(),
        p.tc.rss_kib(),
        p.tc.peak_kib(),
    );
    p.tc.stop();
    p.ch.stop();
    let mib = |k: u64| k as f64 / 1024.0;
    if json {
        return output::json(&serde_json::json!({
            "scenario": "scale", "docs": n, "startup_ms": ms(startup), "rss_after_start_mib": mib(idle_rss),
            "sync_pass_s": pass.as_secs_f64(), "county_rss_mib": mib(ch_rss), "county_peak_mib": mib(ch_peak),
            "township_rss_mib": mib(tc_rss), "township_peak_mib": mib(tc_peak),
        }));
    }
    let mut t = output::table(&[
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
    output::line(t);
    Ok(())
}

/// Document id -> heads on a node.
async fn heads(node: &ChildNode) -> Result<std::collections::HashMap<DocId, Vec<[u8; 32]>>> {
    let Response::Docs(docs) = node
        .ask(Request::DocList {
            kind: None,
            titles: false,
        })
        .await?
    else {
        bail!("unexpected answer");
    };
    Ok(docs
        .into_iter()
        .map(|d| (d.info.id, d.info.heads))
        .collect())
}

async fn agree(nodes: &[&ChildNode], expect: usize) -> Result<bool> {
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

async fn wait_agree(nodes: &[&ChildNode], expect: usize, timeout: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    while !agree(nodes, expect).await? {
        if t0.elapsed() > timeout {
            bail!("the nodes did not converge within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(t0.elapsed())
}

pub(crate) async fn lossy(
    updates: usize,
    spec: super::relay::LinkSpec,
    congestion: Option<yilian_node::config::Congestion>,
    json: bool,
) -> Result<()> {
    use std::sync::atomic::Ordering;
    let tmp = tempfile::Builder::new().prefix("yilian-lossy-").tempdir()?;
    let members = enroll_all(
        tmp.path(),
        "Lossy Alliance",
        &[
            ("CH-01", "county", FacilityKind::CountyHospital),
            ("TC-0A", "township A", FacilityKind::TownshipCenter),
            ("TC-0B", "township B", FacilityKind::TownshipCenter),
        ],
    )?;
    let congestion = congestion.unwrap_or_default();
    for m in &members {
        let dd = DataDir::new(&m.dir);
        let (mut cfg, _) = dd.load()?;
        cfg.network.congestion = congestion;
        cfg.save(&dd.config_path())?;
    }
    let everyone = ["CH-01", "TC-0A", "TC-0B"];
    let ids_a = fill(&members[1].dir, updates, &everyone)?;
    let ids_b = fill(&members[2].dir, updates, &everyone)?;
    let ch = ChildNode::start(&members[0].dir).await?;
    let county = ch
        .status()
        .await?
        .network
        .listen
        .context("the county is not listening")?;
    let relays = [
        super::relay::Relay::start(county, spec, 0x5eed_0001).await?,
        super::relay::Relay::start(county, spec, 0x5eed_0002).await?,
    ];
    let ta = ChildNode::start(&members[1].dir).await?;
    let tb = ChildNode::start(&members[2].dir).await?;
    for (t, r) in [(&ta, &relays[0]), (&tb, &relays[1])] {
        t.ask(Request::PeerAdd {
            addr: r.addr.to_string(),
        })
        .await?;
    }
    let nodes = [&ch, &ta, &tb];
    // Generous for the full run, short enough that a stalled smoke run fails in minutes.
    let limit = Duration::from_secs(60 + 10 * updates as u64);
    let initial = wait_agree(&nodes, 2 * updates, limit).await?;
    let before: Vec<[u64; 2]> = relays
        .iter()
        .map(|r| {
            [
                r.stats.bytes[0].load(Ordering::Relaxed),
                r.stats.bytes[1].load(Ordering::Relaxed),
            ]
        })
        .collect();
    let t0 = Instant::now();
    let (a, b) = tokio::join!(
        async {
            for id in &ids_a {
                ta.ask(Request::NoteAppend {
                    id: id.to_string(),
                    text: "follow-up visit done, BP 130/85".into(),
                })
                .await?;
            }
            anyhow::Ok(())
        },
        async {
            for id in &ids_b {
                tb.ask(Request::NoteAppend {
                    id: id.to_string(),
                    text: "discharged to home care".into(),
                })
                .await?;
            }
            anyhow::Ok(())
        }
    );
    a?;
    b?;
    let converge = t0.elapsed() + wait_agree(&nodes, 2 * updates, limit).await?;
    let mut busiest = 0u64;
    let mut total = 0u64;
    for (r, b) in relays.iter().zip(&before) {
        for (counter, start) in r.stats.bytes.iter().zip(b) {
            let d = counter.load(Ordering::Relaxed) - start;
            busiest = busiest.max(d);
            total += d;
        }
    }
    let dropped: u64 = relays
        .iter()
        .map(|r| {
            r.stats.dropped[0].load(Ordering::Relaxed) + r.stats.dropped[1].load(Ordering::Relaxed)
        })
        .sum();
    let bytes_time = busiest as f64 * 8.0 / spec.rate_bps as f64;
    let ratio = converge.as_secs_f64() / bytes_time.max(f64::EPSILON);

    // The county crashes (SIGKILL) and comes back on the same address: how long until both
    // townships have a session with it again, over the lossy links.
    let county_dd = DataDir::new(&members[0].dir);
    let (mut cfg, _) = county_dd.load()?;
    cfg.network.listen = county;
    cfg.save(&county_dd.config_path())?;
    ch.kill9();
    let ch = ChildNode::start(&members[0].dir).await?;
    let t1 = Instant::now();
    loop {
        let sessions = ch
            .status()
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
    tb.stop();
    ta.stop();
    ch.stop();
    if json {
        return output::json(&serde_json::json!({
            "scenario": "lossy", "updates_per_township": updates, "congestion": congestion, "rtt_ms": spec.one_way.as_millis() * 2,
            "loss": spec.loss, "rate_bps": spec.rate_bps, "initial_sync_s": initial.as_secs_f64(),
            "converge_s": converge.as_secs_f64(), "busiest_link_bytes": busiest, "total_link_bytes": total,
            "bytes_alone_s": bytes_time, "ratio": ratio, "datagrams_dropped": dropped,
            "restart_reconnect_s": recognised.as_secs_f64(),
        }));
    }
    let mut t = output::table(&[
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
    output::line(t);
    Ok(())
}

/// Installs automerge-repo and PouchDB from the npm registry into `dir` and runs the comparison
/// script there.
fn run_peers(dir: &Path, counts: &[usize]) -> Result<serde_json::Value> {
    std::fs::write(
        dir.join("package.json"),
        include_str!("vs_peers/package.json"),
    )?;
    std::fs::write(dir.join("peers.mjs"), include_str!("vs_peers/peers.mjs"))?;
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

pub(crate) async fn vs_peers(counts: &[usize], json: bool) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("yilian-vs-peers-")
        .tempdir()?;
    let dir = tmp.path().to_path_buf();
    let owned = counts.to_vec();
    let peers = tokio::task::spawn_blocking(move || run_peers(&dir, &owned)).await??;
    let ours = first_sync_rows(counts).await?;
    let largest = counts.iter().copied().max().unwrap_or(1000);
    let (re, _) = reconnect_once(largest).await?;
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
        return output::json(
            &serde_json::json!({"scenario": "vs-peers", "first_sync": rows, "reconnect": reconnect}),
        );
    }
    let mut t = output::table(&[
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
    output::line(t);
    let mut t = output::table(&["no-op reconnect", "yilian", "PouchDB", "automerge-repo"]);
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
    output::line(t);
    Ok(())
}
