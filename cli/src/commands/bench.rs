//! `yilian bench ...`: measurements recorded in docs/benchmarks.md. Each prints a table or
//! `--json`; none asserts a target (targets are judged by reading the figures).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use yilian_node::config::{FacilityConfig, FacilityKind, NetworkConfig};
use yilian_node::control::{ControlClient, Request, Response};
use yilian_node::datadir::DataDir;
use yilian_node::documents::{Audience, DocKind, note};
use yilian_node::reexports::automerge::Automerge;
use yilian_node::storage::worker;

use super::demo::{InProcessNode, ask};
use crate::cli::BenchCommand;
use crate::output;

pub(crate) async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Writes {
            count,
            clients,
            json,
        } => writes(count, clients.max(1), json.json).await,
        BenchCommand::Load { docs, json } => load(docs, json.json).await,
        BenchCommand::FirstSync { docs, json } => {
            super::bench_sync::first_sync(&docs, json.json).await
        }
        BenchCommand::Reconnect { docs, json } => {
            super::bench_sync::reconnect(docs, json.json).await
        }
        BenchCommand::Catchup { changed, json } => {
            super::bench_sync::catchup(&changed, json.json).await
        }
        BenchCommand::Catalog {
            entries,
            facilities,
            json,
        } => super::bench_catalog::run(entries, facilities, json.json).await,
        BenchCommand::Live { edits, json } => super::bench_sync::live(edits, json.json).await,
        BenchCommand::Scale { docs, json } => super::bench_sync::scale(docs, json.json).await,
        BenchCommand::VsPeers { docs, json } => super::bench_sync::vs_peers(&docs, json.json).await,
        BenchCommand::Lossy {
            updates,
            rtt_ms,
            loss_percent,
            kbit,
            congestion,
            json,
        } => {
            let spec = super::relay::LinkSpec {
                one_way: Duration::from_millis(rtt_ms / 2),
                loss: loss_percent / 100.0,
                rate_bps: kbit * 1000,
            };
            super::bench_sync::lossy(updates, spec, congestion, json.json).await
        }
    }
}

fn fresh_node(tmp: &tempfile::TempDir) -> Result<std::path::PathBuf> {
    let dir = tmp.path().join("node");
    DataDir::new(&dir).init(
        FacilityConfig {
            code: "CH-01".parse()?,
            name: "bench".into(),
            kind: FacilityKind::CountyHospital,
            time_zone: None,
        },
        NetworkConfig {
            listen: "127.0.0.1:0".parse()?,
            ..NetworkConfig::default()
        },
    )?;
    Ok(dir)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn writes(count: usize, clients: usize, json: bool) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = fresh_node(&tmp)?;
    let node = InProcessNode::start(&dir).await?;
    let sock = DataDir::new(&dir).socket_path();
    let per_client = count.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let sock = sock.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = ControlClient::connect(&sock).await?;
            let Response::Written(info) = ask(
                &mut conn,
                Request::NoteAdd {
                    title: format!("bench {c}"),
                    text: None,
                    audience: vec![],
                },
            )
            .await?
            else {
                bail!("unexpected answer");
            };
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let t = Instant::now();
                ask(
                    &mut conn,
                    Request::NoteAppend {
                        id: info.id.to_string(),
                        text: format!("entry {i}: blood pressure 130/85, follow up in 2 weeks"),
                    },
                )
                .await?;
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
    lat.sort();
    let p50 = percentile(&lat, 0.50);
    let p99 = percentile(&lat, 0.99);
    let max = lat.last().copied().unwrap_or_default();
    let rate = lat.len() as f64 / wall.as_secs_f64();
    if json {
        return output::json(&serde_json::json!({
            "scenario": "writes", "writes": lat.len(), "clients": clients,
            "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max), "writes_per_s": rate,
        }));
    }
    let mut t = output::table(&["durable writes", "clients", "p50", "p99", "max", "writes/s"]);
    t.add_row(vec![
        lat.len().to_string(),
        clients.to_string(),
        format!("{:.2} ms", ms(p50)),
        format!("{:.2} ms", ms(p99)),
        format!("{:.2} ms", ms(max)),
        format!("{rate:.0}"),
    ]);
    output::line(t);
    Ok(())
}

async fn load(docs: usize, json: bool) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = fresh_node(&tmp)?;
    let dd = DataDir::new(&dir);
    let (cfg, key) = dd.load()?;
    let fill_started = Instant::now();
    {
        let (handle, thread) = worker::spawn(dd.open_store(key.node_id(), &cfg)?);
        let mut pending = Vec::new();
        for i in 0..docs {
            let h = handle.clone();
            pending.push(tokio::spawn(async move {
                h.call(move |b| {
                    let mut doc = Automerge::new().with_actor(b.actor().clone());
                    note::init(&mut doc, &format!("referral-sized note {i}"), None)
                        .map_err(|e| yilian_node::storage::StoreError::Invalid(e.to_string()))?;
                    b.create(DocKind::Note, Audience::default(), doc)
                })
                .await
            }));
            if pending.len() >= 512 {
                for p in pending.drain(..) {
                    p.await??;
                }
            }
        }
        for p in pending {
            p.await??;
        }
        drop(handle);
        tokio::task::spawn_blocking(move || thread.join()).await?;
    }
    let fill = fill_started.elapsed();

    let open_started = Instant::now();
    let (handle, thread) = worker::spawn(dd.open_store(key.node_id(), &cfg)?);
    let ids: Vec<_> = handle
        .call(|b| b.list(None))
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let list = open_started.elapsed();
    let read_started = Instant::now();
    let loaded = handle
        .call(move |b| {
            let mut n = 0usize;
            for id in &ids {
                n += b.read(id, |d| d.get_heads().len())?;
            }
            Ok(n)
        })
        .await?;
    let read = read_started.elapsed();
    drop(handle);
    tokio::task::spawn_blocking(move || thread.join()).await?;
    let per_doc_us = read.as_secs_f64() * 1e6 / docs.max(1) as f64;
    if json {
        return output::json(&serde_json::json!({
            "scenario": "load", "docs": docs, "fill_s": fill.as_secs_f64(),
            "open_and_list_ms": ms(list), "load_all_ms": ms(read), "per_doc_us": per_doc_us, "heads": loaded,
        }));
    }
    let mut t = output::table(&[
        "documents",
        "create (batched)",
        "open + list",
        "load every doc",
        "per doc",
    ]);
    t.add_row(vec![
        docs.to_string(),
        format!("{:.2} s", fill.as_secs_f64()),
        format!("{:.1} ms", ms(list)),
        format!("{:.1} ms", ms(read)),
        format!("{per_doc_us:.0} µs"),
    ]);
    output::line(t);
    Ok(())
}
