//! `yilian report ...`: alliance reports as tables, CSV or JSON, and the semiannual package for
//! the health commission (every report as CSV and JSON plus a one-page HTML summary).

mod html;
mod svg;

use std::path::Path;

use anyhow::{Context, Result, bail};
use yilian_node::control::{Request, Response};
use yilian_node::documents::csvfile::{self, TextEncoding};
use yilian_node::ids::FacilityCode;
use yilian_node::reports::{Period, Report, ReportKind};

use crate::cli::{Format, ReportCommand};
use crate::connect::one;
use crate::output;

async fn fetch(
    dir: &Path,
    kind: ReportKind,
    from: String,
    to: String,
    facility: Option<FacilityCode>,
) -> Result<Report> {
    match one(
        dir,
        Request::Report {
            kind,
            from,
            to,
            facility,
        },
    )
    .await?
    {
        Response::Report(r) => Ok(*r),
        _ => bail!("unexpected answer from the node"),
    }
}

fn csv_text(r: &Report) -> String {
    let t = r.tabular();
    csvfile::write(&t.header(), &t.rows())
}

fn json_text(r: &Report) -> Result<String> {
    Ok(serde_json::to_string_pretty(&r.to_json())? + "\n")
}

/// Details beyond the main table, for the terminal.
fn details(r: &Report) {
    match r {
        Report::Referrals(x) if !x.waiting.is_empty() => {
            let mut t =
                output::table(&["waiting referral", "from", "to", "hours", "green channel"]);
            for w in &x.waiting {
                t.add_row(vec![
                    w.number.clone(),
                    w.from.clone(),
                    w.to.clone(),
                    format!("{:.1}", w.hours),
                    output::yes(w.green_channel).to_string(),
                ]);
            }
            output::line(t);
        }
        Report::Recognition(x) if !x.retest_reasons.is_empty() => {
            let mut t = output::table(&["re-test reason", "count"]);
            for (k, v) in &x.retest_reasons {
                t.add_row(vec![k.clone(), v.to_string()]);
            }
            output::line(t);
        }
        _ => {}
    }
}

fn print_table(r: &Report) {
    let t = r.tabular();
    let mut table = output::table(&t.header());
    for row in t.rows() {
        table.add_row(row);
    }
    output::line(table);
    details(r);
    for f in r.findings() {
        output::line(format_args!("- {f}"));
    }
}

pub(crate) async fn run(dir: &Path, cmd: ReportCommand) -> Result<()> {
    let (kind, a) = match cmd {
        ReportCommand::Referrals(a) => (ReportKind::Referrals, a),
        ReportCommand::Recognition(a) => (ReportKind::Recognition, a),
        ReportCommand::EssentialDrugs(a) => (ReportKind::EssentialDrugs, a),
        ReportCommand::Outreach(a) => (ReportKind::Outreach, a),
        ReportCommand::Semiannual {
            year,
            half,
            out,
            facility,
        } => return semiannual(dir, year, half, &out, facility).await,
    };
    let r = fetch(dir, kind, a.from, a.to, a.facility).await?;
    let text = match a.format {
        Format::Table => {
            if a.out.is_some() {
                bail!("--out needs --format csv or json");
            }
            print_table(&r);
            return Ok(());
        }
        Format::Json => json_text(&r)?,
        Format::Csv => csv_text(&r),
    };
    match a.out {
        None => {
            output::line(text.trim_end());
            Ok(())
        }
        Some(path) => {
            let bytes = match a.format {
                Format::Csv => {
                    csvfile::encode(&text, TextEncoding::Utf8Bom).map_err(|e| anyhow::anyhow!(e))?
                }
                _ => text.into_bytes(),
            };
            output::write_file(&path, &bytes)?;
            output::note(format_args!("wrote {}", path.display()));
            Ok(())
        }
    }
}

async fn semiannual(
    dir: &Path,
    year: i16,
    half: u8,
    out: &Path,
    facility: Option<FacilityCode>,
) -> Result<()> {
    let period = Period::half_year(year, half).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut reports = Vec::new();
    for kind in ReportKind::ALL {
        let r = fetch(
            dir,
            kind,
            period.from.to_string(),
            period.to.to_string(),
            facility.clone(),
        )
        .await?;
        let csv = csvfile::encode(&csv_text(&r), TextEncoding::Utf8Bom)
            .map_err(|e| anyhow::anyhow!(e))?;
        output::write_file(&out.join(format!("{}.csv", kind.as_str())), &csv)?;
        output::write_file(
            &out.join(format!("{}.json", kind.as_str())),
            json_text(&r)?.as_bytes(),
        )?;
        reports.push(r);
    }
    let names = facility_names(dir).await?;
    let generated = format!(
        "{}（{}）",
        output::time(yilian_node::documents::now_ms()),
        output::zone_name()
    );
    let html = html::summary(
        &html::Page {
            year,
            half,
            period,
            facility: facility.as_ref(),
            names: &names,
            generated,
        },
        &reports,
    );
    output::write_file(&out.join("summary.html"), html.as_bytes())?;
    for r in &reports {
        for f in r.findings() {
            output::line(format_args!("{}: {f}", r.kind().as_str()));
        }
    }
    output::note(format_args!(
        "wrote {} (4 reports as CSV and JSON, and summary.html)",
        out.display()
    ));
    Ok(())
}

/// Facility names by code: this facility and every facility of the directory.
async fn facility_names(dir: &Path) -> Result<html::Names> {
    let Response::Status(status) = one(dir, Request::Status).await? else {
        bail!("unexpected answer from the node");
    };
    let Response::Facilities(met) = one(dir, Request::FacilityList).await? else {
        bail!("unexpected answer from the node");
    };
    Ok(html::Names::new(
        met.into_iter()
            .map(|f| (f.code, f.name))
            .chain(std::iter::once((
                status.facility.code.to_string(),
                status.facility.name.clone(),
            ))),
    ))
}
