//! `yilian catalog ...` and `yilian dispensing ...`: the county drug catalog, this facility's
//! stock rows, and dispensing summaries.

use std::path::Path;

use anyhow::{Context, Result, bail};
use yilian_node::control::proto::CatalogLine;
use yilian_node::control::{Request, Response};
use yilian_node::documents::catalog::{self, CatalogEntry, ImportReport, StockRow};
use yilian_node::documents::csvfile::{self, LineError};
use yilian_node::documents::dispensing::{self, DispensingLine, DispensingReport, Summary};

use crate::cli::{CatalogCommand, DispensingCommand, StockCommand};
use crate::connect::one;
use crate::output::{self, NodeRefused};

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Prints problems with lines of `file` on stderr as `FILE:LINE: [prefix]reason`.
fn line_notes(file: &Path, prefix: &str, lines: &[LineError]) {
    for e in lines {
        output::note(format_args!(
            "{}:{}: {prefix}{}",
            file.display(),
            e.line,
            e.reason
        ));
    }
}

/// Prints an import's report (JSON or `print`), every cell a spreadsheet would run as a formula
/// and every rejected line on stderr, and fails with exit code 4 when any row was rejected
/// (nothing was imported then).
fn finish_import<R: serde::Serialize>(
    file: &Path,
    json: bool,
    report: &R,
    (formula_cells, rejected): (&[LineError], &[LineError]),
    print: impl FnOnce(),
) -> Result<()> {
    if json {
        output::json(report)?;
    } else {
        print();
    }
    line_notes(file, "warning: ", formula_cells);
    line_notes(file, "", rejected);
    if rejected.is_empty() {
        return Ok(());
    }
    Err(NodeRefused {
        kind: yilian_node::control::ErrorKind::InvalidInput,
        message: format!(
            "nothing imported: {} rows rejected (listed above)",
            rejected.len()
        ),
    }
    .into())
}

fn print_import(file: &Path, r: &ImportReport, dry_run: bool) {
    let mut t = output::table(&[
        "rows",
        "added",
        "changed",
        "withdrawn",
        "unchanged",
        "rejected",
    ]);
    t.add_row(vec![
        r.rows.to_string(),
        r.added.len().to_string(),
        r.changed.len().to_string(),
        r.withdrawn.len().to_string(),
        r.unchanged.to_string(),
        r.rejected.len().to_string(),
    ]);
    output::line(t);
    for (what, rows) in [("changed", &r.changed), ("withdrawn", &r.withdrawn)] {
        for x in rows.iter().take(20) {
            output::line(format_args!("  line {}: {} {what}", x.line, x.code));
        }
        if rows.len() > 20 {
            output::line(format_args!("  ... {} more {what}", rows.len() - 20));
        }
    }
    for w in &r.warnings {
        output::line(format_args!("warning: {w}"));
    }
    output::line(format_args!(
        "{} ({}): {}",
        file.display(),
        r.encoding.as_str(),
        match (r.applied, dry_run, r.rejected.is_empty()) {
            (true, _, _) => "imported",
            (false, true, true) => "dry run: nothing written; the file would import cleanly",
            (false, true, false) => "dry run: nothing written",
            (false, false, true) => "nothing to change",
            (false, false, false) => "NOTHING imported",
        }
    ));
}

fn entry_row(e: &CatalogEntry, stock: Option<&StockRow>) -> Vec<String> {
    vec![
        e.code.clone(),
        e.generic_name.clone(),
        e.dosage_form.clone(),
        e.strength.clone(),
        e.package.clone(),
        e.manufacturer.clone(),
        e.insurance_class.as_cn().to_string(),
        output::yes(e.essential).to_string(),
        output::yes(e.long_prescription).to_string(),
        e.status.as_cn().to_string(),
        stock_text(stock),
    ]
}

fn stock_text(s: Option<&StockRow>) -> String {
    match s {
        None => "-".into(),
        Some(s) => format!(
            "{}{}",
            if s.available { "available" } else { "OUT" },
            s.quantity.map(|q| format!(" ({q})")).unwrap_or_default()
        ),
    }
}

const ENTRY_HEADER: [&str; 11] = [
    "code",
    "generic name",
    "form",
    "strength",
    "package",
    "manufacturer",
    "class",
    "essential",
    "long rx",
    "status",
    "stock",
];

pub(crate) async fn run(dir: &Path, cmd: CatalogCommand) -> Result<()> {
    match cmd {
        CatalogCommand::Import {
            file,
            dry_run,
            json,
        } => {
            let bytes = read_file(&file)?;
            let Response::CatalogImported(r) =
                one(dir, Request::CatalogImport { bytes, dry_run }).await?
            else {
                bail!("unexpected answer from the node");
            };
            finish_import(
                &file,
                json.json,
                &*r,
                (&r.formula_cells, &r.rejected),
                || print_import(&file, &r, dry_run),
            )
        }
        CatalogCommand::Export { out, encoding } => {
            let Response::CatalogEntries(lines) = one(
                dir,
                Request::CatalogList {
                    essential_only: false,
                    search: None,
                    include_withdrawn: true,
                },
            )
            .await?
            else {
                bail!("unexpected answer from the node");
            };
            if lines.is_empty() {
                bail!("this node holds no drug catalog yet: nothing to export");
            }
            let entries = lines
                .into_iter()
                .map(|l| (l.entry.code.clone(), l.entry))
                .collect();
            let bytes = csvfile::encode(&catalog::export_csv(&entries), encoding)
                .map_err(|e| anyhow::anyhow!(e))?;
            output::write_file(&out, &bytes)?;
            output::note(format_args!(
                "wrote {} entries to {} ({})",
                entries.len(),
                out.display(),
                encoding.as_str()
            ));
            Ok(())
        }
        CatalogCommand::List {
            essential,
            search,
            all,
            json,
        } => {
            let Response::CatalogEntries(lines) = one(
                dir,
                Request::CatalogList {
                    essential_only: essential,
                    search,
                    include_withdrawn: all,
                },
            )
            .await?
            else {
                bail!("unexpected answer from the node");
            };
            if json.json {
                return output::json_timed(&lines);
            }
            if lines.is_empty() {
                output::note("no entries: this node holds no drug catalog yet, or none match");
                return Ok(());
            }
            let mut t = output::table(&ENTRY_HEADER);
            for CatalogLine { entry, stock } in &lines {
                t.add_row(entry_row(entry, stock.as_ref()));
            }
            output::line(t);
            output::note(format_args!("{} entries", lines.len()));
            Ok(())
        }
        CatalogCommand::Show { code, json } => {
            show(dir, Request::CatalogShow { code }, json.json).await
        }
        CatalogCommand::Stock(StockCommand::Set {
            code,
            available,
            qty,
            facility,
            json,
        }) => {
            show(
                dir,
                Request::StockSet {
                    code,
                    facility,
                    available,
                    quantity: qty,
                },
                json.json,
            )
            .await
        }
    }
}

async fn show(dir: &Path, req: Request, json: bool) -> Result<()> {
    let Response::CatalogItem { entry, stock } = one(dir, req).await? else {
        bail!("unexpected answer from the node");
    };
    if json {
        return output::json_timed(
            &serde_json::json!({ "entry": entry, "stock": stock.iter().map(|(f, s)| serde_json::json!({"facility": f, "available": s.available, "quantity": s.quantity, "updated_ms": s.updated_ms})).collect::<Vec<_>>() }),
        );
    }
    let mut t = output::table(&["field", "value"]);
    for (k, v) in [
        ("code", entry.code.clone()),
        ("generic name", entry.generic_name.clone()),
        ("dosage form", entry.dosage_form.clone()),
        ("strength", entry.strength.clone()),
        ("package", entry.package.clone()),
        ("manufacturer", entry.manufacturer.clone()),
        ("insurance class", entry.insurance_class.as_cn().to_string()),
        (
            "essential medicine",
            output::yes(entry.essential).to_string(),
        ),
        (
            "long prescription",
            output::yes(entry.long_prescription).to_string(),
        ),
        ("status", entry.status.as_cn().to_string()),
        (
            "last changed",
            format!("{} by {}", output::time(entry.updated_ms), entry.updated_by),
        ),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    output::line(t);
    let mut s = output::table(&["facility", "stock", "updated"]);
    for (f, row) in &stock {
        s.add_row(vec![
            f.clone(),
            stock_text(Some(row)),
            output::time(row.updated_ms),
        ]);
    }
    output::line(s);
    Ok(())
}

fn print_summaries(list: &[Summary]) {
    let mut t = output::table(&[
        "period",
        "facility",
        "level",
        "drugs",
        "quantity",
        "amount (yuan)",
    ]);
    for s in list {
        t.add_row(vec![
            s.period.clone(),
            s.facility.clone(),
            s.level.as_str().to_string(),
            s.rows.len().to_string(),
            s.rows.values().map(|r| r.quantity).sum::<u64>().to_string(),
            dispensing::yuan(s.rows.values().map(|r| r.amount_fen).sum()),
        ]);
    }
    output::line(t);
}

fn print_dispensing_import(file: &Path, r: &DispensingReport, dry_run: bool) {
    let mut t = output::table(&["rows", "recorded", "months", "rejected"]);
    t.add_row(vec![
        r.rows.to_string(),
        r.recorded.to_string(),
        r.periods.join(", "),
        r.rejected.len().to_string(),
    ]);
    output::line(t);
    output::line(format_args!(
        "{} ({}): {}",
        file.display(),
        r.encoding.as_str(),
        if r.applied {
            "imported"
        } else if dry_run {
            "dry run: nothing written"
        } else {
            "NOTHING imported"
        }
    ));
}

pub(crate) async fn dispensing_cmd(dir: &Path, cmd: DispensingCommand) -> Result<()> {
    match cmd {
        DispensingCommand::Add {
            period,
            code,
            quantity,
            amount,
            json,
        } => {
            let amount_fen = dispensing::parse_amount(&amount).map_err(|e| anyhow::anyhow!(e))?;
            let line = DispensingLine {
                period,
                code,
                quantity,
                amount_fen,
            };
            list_or_json(one(dir, Request::DispensingAdd { line }).await?, json.json)
        }
        DispensingCommand::Import {
            file,
            dry_run,
            json,
        } => {
            let bytes = read_file(&file)?;
            let Response::DispensingImported(r) =
                one(dir, Request::DispensingImport { bytes, dry_run }).await?
            else {
                bail!("unexpected answer from the node");
            };
            finish_import(
                &file,
                json.json,
                &*r,
                (&r.formula_cells, &r.rejected),
                || print_dispensing_import(&file, &r, dry_run),
            )
        }
        DispensingCommand::List {
            period,
            facility,
            json,
        } => list_or_json(
            one(dir, Request::DispensingList { period, facility }).await?,
            json.json,
        ),
    }
}

fn list_or_json(resp: Response, json: bool) -> Result<()> {
    let Response::Dispensing(list) = resp else {
        bail!("unexpected answer from the node");
    };
    if json {
        return output::json_timed(&list);
    }
    print_summaries(&list);
    Ok(())
}
