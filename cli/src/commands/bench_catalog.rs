//! `yilian bench catalog`: the county drug catalog at realistic size. A county node with the
//! pharmacy role imports a GBK catalog through its control socket; the stock rows of every
//! facility and six months of their dispensing are written into its store (as a county node
//! holds them after sync); then list, search, show, stock writes and the essential-drug report
//! are timed.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use yilian_node::config::FacilityKind;
use yilian_node::control::{ControlClient, Request, Response};
use yilian_node::datadir::DataDir;
use yilian_node::documents::catalog::{self, StockRow};
use yilian_node::documents::csvfile::{TextEncoding, encode};
use yilian_node::documents::dispensing::{self, DispensedRow, Level};
use yilian_node::documents::{Audience, DocKind};
use yilian_node::identity::cert::Role;
use yilian_node::ids::FacilityCode;
use yilian_node::reexports::automerge::Automerge;
use yilian_node::reports::ReportKind;

use super::alliance::enroll_with_roles;
use super::bench::{ms, percentile};
use super::demo::{InProcessNode, ask};
use crate::output;

/// Writes `facilities` stock documents (a row per entry) and their dispensing for six months.
fn fill_facilities(dir: &std::path::Path, codes: &[String], facilities: usize) -> Result<()> {
    let dd = DataDir::new(dir);
    let (cfg, key) = dd.load()?;
    let mut store = dd.open_store(key.node_id(), &cfg)?;
    for f in 0..facilities {
        let facility = format!("TC-{f:02}");
        let mut b = store.batch()?;
        let mut doc = Automerge::new().with_actor(b.actor().clone());
        let rows: Vec<StockRow> = (0..codes.len())
            .map(|i| StockRow {
                available: i % 7 != 0,
                quantity: Some((i % 300) as u64),
                updated_ms: 0,
            })
            .collect();
        yilian_node::documents::keyed::put_all(
            &mut doc,
            &[
                ("schema", 1u64.into()),
                ("facility", facility.as_str().into()),
            ],
            codes.iter().map(String::as_str).zip(rows.iter()),
        )
        .map_err(anyhow::Error::msg)?;
        b.insert_new(
            catalog::stock_id(&facility),
            DocKind::Stock,
            Audience::new([FacilityCode::everyone()]),
            doc,
        )?;
        for month in 1..=6 {
            let period = format!("2026-{month:02}");
            let rows: Vec<(String, DispensedRow)> = codes
                .iter()
                .enumerate()
                .filter(|(i, _)| (i + f) % 5 == 0)
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
            let mut doc = Automerge::new().with_actor(b.actor().clone());
            dispensing::write(&mut doc, &facility, Level::Primary, &period, &rows)
                .map_err(anyhow::Error::msg)?;
            b.insert_new(
                dispensing::summary_id(&facility, &period),
                DocKind::Dispensing,
                Audience::new([FacilityCode::everyone()]),
                doc,
            )?;
        }
        b.commit()?;
    }
    Ok(())
}

async fn timed(dir: &std::path::Path, req: Request) -> Result<(Duration, Response)> {
    let mut c = ControlClient::connect(&DataDir::new(dir).socket_path()).await?;
    let t = Instant::now();
    let r = ask(&mut c, req).await?;
    Ok((t.elapsed(), r))
}

pub(crate) async fn run(entries: usize, facilities: usize, json: bool) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("yilian-catalog-")
        .tempdir()?;
    let members = enroll_with_roles(
        tmp.path(),
        "Bench Alliance",
        &[("CH-01", "county", FacilityKind::CountyHospital)],
        &[Role::Pharmacy],
    )?;
    let dir = members[0].dir.clone();
    let csv =
        encode(&catalog::sample_csv(entries), TextEncoding::Gbk).map_err(anyhow::Error::msg)?;
    let file_bytes = csv.len();
    let mut node = InProcessNode::start(&dir).await?;
    let mut figures: Vec<(String, f64)> = Vec::new();

    let (t, r) = timed(
        &dir,
        Request::CatalogImport {
            bytes: csv.clone(),
            dry_run: false,
        },
    )
    .await?;
    let Response::CatalogImported(rep) = r else {
        bail!("unexpected answer to the import");
    };
    if !rep.applied || rep.added.len() != entries {
        bail!("the import did not add {entries} entries: {rep:?}");
    }
    figures.push(("import (GBK, all new), ms".to_string(), ms(t)));
    let (t, _) = timed(
        &dir,
        Request::CatalogImport {
            bytes: csv,
            dry_run: false,
        },
    )
    .await?;
    figures.push(("re-import (all unchanged), ms".to_string(), ms(t)));
    node.stop().await?;

    let codes: Vec<String> = {
        let text = catalog::sample_csv(entries);
        text.lines()
            .skip(1)
            .filter_map(|l| l.split(',').next().map(str::to_string))
            .collect()
    };
    let t = Instant::now();
    fill_facilities(&dir, &codes, facilities)?;
    figures.push((
        "writing all facilities' stock + dispensing, ms".to_string(),
        ms(t.elapsed()),
    ));

    let t = Instant::now();
    node = InProcessNode::start(&dir).await?;
    figures.push(("node start, ms".to_string(), ms(t.elapsed())));
    let list = Request::CatalogList {
        essential_only: false,
        search: None,
        include_withdrawn: true,
    };
    let (t, r) = timed(&dir, list.clone()).await?;
    let Response::CatalogEntries(lines) = r else {
        bail!("unexpected answer to the list");
    };
    figures.push(("first list (cold), ms".to_string(), ms(t)));
    let (t, _) = timed(&dir, list).await?;
    figures.push((
        format!("list all {} entries (warm), ms", lines.len()),
        ms(t),
    ));
    let (t, _) = timed(
        &dir,
        Request::CatalogList {
            essential_only: true,
            search: Some("阿莫西林".into()),
            include_withdrawn: false,
        },
    )
    .await?;
    figures.push(("search (essential, 阿莫西林), ms".to_string(), ms(t)));
    let (t, r) = timed(
        &dir,
        Request::CatalogShow {
            code: codes[0].clone(),
        },
    )
    .await?;
    let Response::CatalogItem { stock, .. } = r else {
        bail!("unexpected answer to show");
    };
    figures.push((
        format!("show one entry with {} stock rows, ms", stock.len()),
        ms(t),
    ));
    let mut lat = Vec::new();
    for (i, code) in codes.iter().take(100).enumerate() {
        let (t, _) = timed(
            &dir,
            Request::StockSet {
                code: code.clone(),
                facility: None,
                available: i % 2 == 0,
                quantity: Some(i as u64),
            },
        )
        .await?;
        lat.push(t);
    }
    lat.sort();
    figures.push(("stock set p50, ms".to_string(), ms(percentile(&lat, 0.5))));
    figures.push(("stock set p99, ms".to_string(), ms(percentile(&lat, 0.99))));
    let (t, r) = timed(
        &dir,
        Request::Report {
            kind: ReportKind::EssentialDrugs,
            from: "2026-01-01".into(),
            to: "2026-06-30".into(),
            facility: None,
        },
    )
    .await?;
    let Response::Report(_) = r else {
        bail!("unexpected answer to the report");
    };
    figures.push((
        format!(
            "essential-drug report, {} facilities x 6 months, ms",
            facilities
        ),
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
        return output::json(&serde_json::Value::Object(m));
    }
    let mut t = output::table(&["catalog benchmark", "value"]);
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
    output::line(t);
    Ok(())
}
