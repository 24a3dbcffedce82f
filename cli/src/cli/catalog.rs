//! Arguments of `yilian catalog ...` and `yilian dispensing ...`.

use std::path::PathBuf;

use clap::Subcommand;
use yilian_node::documents::csvfile::TextEncoding;
use yilian_node::ids::FacilityCode;

use super::JsonFlag;

#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Import a catalog CSV (pharmacy role). Every row is checked first; if any is rejected,
    /// nothing is imported and every bad line is listed.
    Import {
        /// The CSV file (UTF-8, UTF-8 with BOM, GBK or UTF-16 of either byte order; headers in
        /// docs/operations.md). An Excel workbook must be saved as CSV first.
        file: PathBuf,
        /// Check and report only; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Write the whole catalog (withdrawn entries too) as CSV.
    Export {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// utf-8-bom (opens correctly in Excel), utf-8 or gbk.
        #[arg(long, default_value = "utf-8-bom")]
        encoding: TextEncoding,
    },
    /// Catalog entries with this facility's stock.
    List {
        /// Only essential medicines (基本药物).
        #[arg(long)]
        essential: bool,
        /// Only entries whose code, generic name or manufacturer contains this text.
        #[arg(long)]
        search: Option<String>,
        /// Include withdrawn entries.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// One entry and every facility's stock row for it.
    Show {
        /// Drug code.
        code: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// This facility's stock rows.
    #[command(subcommand)]
    Stock(StockCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum StockCommand {
    /// Set this facility's availability (and optionally quantity) of a drug.
    Set {
        /// Drug code.
        code: String,
        /// Can it be dispensed now: yes or no.
        #[arg(long, value_parser = parse_yes_no, action = clap::ArgAction::Set)]
        available: bool,
        /// Units on hand.
        #[arg(long)]
        qty: Option<u64>,
        /// Whose row (default this facility; another facility's row is refused).
        #[arg(long)]
        facility: Option<FacilityCode>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" | "y" | "是" => Ok(true),
        "no" | "n" | "否" => Ok(false),
        _ => Err(format!("{s:?}: use yes or no")),
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum DispensingCommand {
    /// Record this facility's total for one drug and month (replaces an earlier total).
    Add {
        /// Month, YYYY-MM.
        #[arg(long)]
        period: String,
        /// Drug code.
        #[arg(long)]
        code: String,
        /// Units dispensed.
        #[arg(long)]
        quantity: u64,
        /// Amount in yuan (e.g. 1234.50).
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Import this facility's totals from CSV (统计期间, 医保药品代码, 数量, 金额).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Check and report only; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Summaries held by this node.
    List {
        /// Only this month.
        #[arg(long)]
        period: Option<String>,
        /// Only this facility.
        #[arg(long)]
        facility: Option<FacilityCode>,
        #[command(flatten)]
        json: JsonFlag,
    },
}
