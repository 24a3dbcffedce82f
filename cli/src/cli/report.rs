//! Arguments of `yilian report ...`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use yilian_node::ids::FacilityCode;

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Referrals up and down per facility and month: acceptance, time to decision, green
    /// channel, referrals waiting too long.
    Referrals(PeriodArgs),
    /// Result recognition per facility and item class, and re-test reasons.
    Recognition(PeriodArgs),
    /// Essential-medicine usage per facility against its level's target.
    EssentialDrugs(PeriodArgs),
    /// Outreach visits per event and day against targets; townships not yet visited.
    Outreach(PeriodArgs),
    /// Every report for a half year as CSV and JSON, plus summary.html, into a directory.
    Semiannual {
        /// Year.
        #[arg(long)]
        year: i16,
        /// 1 (January-June, due 30 June) or 2 (July-December, due 30 December).
        #[arg(long)]
        half: u8,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Only this facility.
        #[arg(long)]
        facility: Option<FacilityCode>,
    },
}

/// Output formats of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// An aligned table with findings.
    Table,
    /// JSON (fields documented in docs/cli.md).
    Json,
    /// CSV (UTF-8 with a byte-order mark when written to a file, for Excel).
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct PeriodArgs {
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub(crate) from: String,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    pub(crate) to: String,
    /// Only this facility.
    #[arg(long)]
    pub(crate) facility: Option<FacilityCode>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}
