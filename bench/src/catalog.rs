//! `catalog`: the county drug catalog at realistic size. A county node with the pharmacy role
//! (running in this process) imports a GBK catalog through its control socket; the stock
//! documents of every facility (a row per entry) and six months of their dispensing are then
//! imported as the documents a county holds after sync; the node restarts and list, search,
//! show, stock writes and the essential-drug report are timed through the socket.
//!
//! The facilities' documents are imported with `doc import` (random ids, where a facility's
//! own node derives well-known ids): every timed operation finds stock and dispensing
//! documents by their kind, never by id, so it reads exactly what it would after sync.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use yilian_node::control::{Request, Response};
use yilian_node::documents::DocKind;
use yilian_node::documents::catalog::{self, StockRow};
use yilian_node::documents::csvfile::{TextEncoding, encode};
use yilian_node::documents::dispensing::{self, DispensedRow, Level};
use yilian_node::ids::FacilityCode;
use yilian_node::reexports::automerge::Automerge;
use yilian_node::reports::ReportKind;
use yilian_testkit::Alliance;
use yilian_testkit::control::ask;

use crate::report::{self, ms, percentile};

/// Facility `f`'s stock document: a row for every code.
fn stock_doc(facility: &str, codes: &[String]) -> Result<Vec<u8>> {
    let rows: Vec<StockRow> = (0..codes.len())
        .map(|i| StockRow {
            available: i % 7 != 0,
            quantity: Some((i % 300) as u64),
            updated_ms: 0,
        })
        .collect();
    let mut doc = Automerge::new();
    yilian_node::documents::keyed::put_all(
        &mut doc,
        &[("schema", 1u64.into()), ("facility", facility.into())],
        codes.iter().map(String::as_str).zip(rows.iter()),
    )
    .map_err(anyhow::Error::msg)?;
    Ok(doc.save())
}

/// Facility `f`'s dispensing summary of one month: every fifth code, shifted by `f`.
fn dispensing_doc(facility: &str, f: usize, period: &str, codes: &[String]) -> Result<Vec<u8>> {
    let rows: Vec<(String, DispensedRow)> = codes
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + f).is_multiple_of(5))
        .map(|(i, c)| {
            (
                c.clone(),
                DispensedRow {
                    quantity: (i % 50) as u64 + 1,
                    amount_fen: ((i % 50) as u64 + 1) * 1250,
                    updated_ms: 0,
                },
            )
        })
        .collect();
    let mut doc = Automerge::new();
    dispensing::write(&mut doc, facility, Level::Primary, period, &rows)
        .map_err(anyhow::Error::msg)?;
    Ok(doc.save())
}

/// Imports `facilities` stock documents and six months of their dispensing into the node.
async fn import_facilities(socket: &Path, codes: &[String], facilities: usize) -> Result<()> {
    let mut docs = Vec::new();
    for f in 0..facilities {
        let facility = format!("TC-{f:02}");
        docs.push((DocKind::Stock, stock_doc(&facility, codes)?));
        for month in 1..=6 {
            let period = format!("2026-{month:02}");
            docs.push((
                DocKind::Dispensing,
                dispensing_doc(&facility, f, &period, codes)?,
            ));
        }
    }
    let docs = Arc::new(docs);
    let count = docs.len();
    yilian_testkit::fill::concurrently(socket, count, move |i| Request::DocImport {
        bytes: docs[i].1.clone(),
        kind: docs[i].0,
        audience: vec![FacilityCode::everyone()],
    })
    .await?;
    Ok(())
}

async fn timed(socket: &Path, req: Request) -> Result<(Duration, Response)> {
    let t = Instant::now();
    let r = ask(socket, req).await?;
    Ok((t.elapsed(), r))
}

pub(crate) async fn run(entries: usize, facilities: usize, json: bool) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("yilian-catalog-")
        .tempdir()?;
    let root = tmp.path().to_path_buf();
    let dir = tokio::task::spawn_blocking(move || {
        Alliance::new(&root, "Bench Alliance").node("CH-01", "county-hospital", "pharmacy")
    })
    .await?;
    let sample = catalog::sample_csv(entries);
    let csv = encode(&sample, TextEncoding::Gbk).map_err(anyhow::Error::msg)?;
    let file_bytes = csv.len();
    let mut node = yilian_node::daemon::start(&dir).await?;
    let sock = node.socket_path().to_path_buf();
    let mut figures: Vec<(String, f64)> = Vec::new();

    let import = Request::CatalogImport {
        bytes: csv.clone(),
        dry_run: false,
    };
    let (t, r) = timed(&sock, import).await?;
    let Response::CatalogImported(rep) = r else {
        bail!("unexpected answer to the import");
    };
    if !rep.applied || rep.added.len() != entries {
        bail!("the import did not add {entries} entries: {rep:?}");
    }
    figures.push(("import (GBK, all new), ms".to_string(), ms(t)));
    let again = Request::CatalogImport {
        bytes: csv,
        dry_run: false,
    };
    let (t, _) = timed(&sock, again).await?;
    figures.push(("re-import (all unchanged), ms".to_string(), ms(t)));

    let codes: Vec<String> = sample
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    let t = Instant::now();
    import_facilities(&sock, &codes, facilities).await?;
    figures.push((
        "writing all facilities' stock + dispensing, ms".to_string(),
        ms(t.elapsed()),
    ));
    node.stop().await?;

    let t = Instant::now();
    node = yilian_node::daemon::start(&dir).await?;
    figures.push(("node start, ms".to_string(), ms(t.elapsed())));
    let list = Request::CatalogList {
        essential_only: false,
        search: None,
        include_withdrawn: true,
    };
    let (t, r) = timed(&sock, list.clone()).await?;
    let Response::CatalogEntries(lines) = r else {
        bail!("unexpected answer to the list");
    };
    figures.push(("first list (cold), ms".to_string(), ms(t)));
    let (t, _) = timed(&sock, list).await?;
    figures.push((
        format!("list all {} entries (warm), ms", lines.len()),
        ms(t),
    ));
    let search = Request::CatalogList {
        essential_only: true,
        search: Some("阿莫西林".into()),
        include_withdrawn: false,
    };
    let (t, _) = timed(&sock, search).await?;
    figures.push(("search (essential, 阿莫西林), ms".to_string(), ms(t)));
    let show = Request::CatalogShow {
        code: codes[0].clone(),
    };
    let (t, r) = timed(&sock, show).await?;
    let Response::CatalogItem { stock, .. } = r else {
        bail!("unexpected answer to show");
    };
    figures.push((
        format!("show one entry with {} stock rows, ms", stock.len()),
        ms(t),
    ));
    let mut lat = Vec::new();
    for (i, code) in codes.iter().take(100).enumerate() {
        let set = Request::StockSet {
            code: code.clone(),
            facility: None,
            available: i % 2 == 0,
            quantity: Some(i as u64),
        };
        lat.push(timed(&sock, set).await?.0);
    }
    lat.sort();
    figures.push(("stock set p50, ms".to_string(), ms(percentile(&lat, 0.5))));
    figures.push(("stock set p99, ms".to_string(), ms(percentile(&lat, 0.99))));
    let essential = Request::Report {
        kind: ReportKind::EssentialDrugs,
        from: "2026-01-01".into(),
        to: "2026-06-30".into(),
        facility: None,
    };
    let (t, r) = timed(&sock, essential).await?;
    let Response::Report(_) = r else {
        bail!("unexpected answer to the report");
    };
    figures.push((
        format!("essential-drug report, {facilities} facilities x 6 months, ms"),
        ms(t),
    ));
    node.stop().await?;
    let stored: u64 = std::fs::metadata(dir.join("store.redb"))
        .map(|m| m.len())
        .unwrap_or(0);

    if json {
        let mut m = serde_json::Map::new();
        m.insert("entries".into(), entries.into());
        m.insert("facilities".into(), facilities.into());
        m.insert("csv_bytes".into(), file_bytes.into());
        m.insert("store_bytes".into(), stored.into());
        for (k, v) in &figures {
            m.insert(k.clone(), ((v * 100.0).round() / 100.0).into());
        }
        return report::json(&serde_json::Value::Object(m));
    }
    let mut t = report::table(&["catalog benchmark", "value"]);
    t.add_row(vec!["entries".to_string(), entries.to_string()]);
    t.add_row(vec![
        "facilities with stock rows".to_string(),
        facilities.to_string(),
    ]);
    t.add_row(vec!["GBK file, bytes".to_string(), file_bytes.to_string()]);
    for (k, v) in &figures {
        t.add_row(vec![k.clone(), format!("{v:.1}")]);
    }
    t.add_row(vec![
        "store file, MiB".to_string(),
        format!("{:.1}", stored as f64 / 1048576.0),
    ]);
    report::line(t);
    Ok(())
}
