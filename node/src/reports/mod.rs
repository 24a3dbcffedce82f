//! Alliance reports for the health commission, computed from typed documents: referrals,
//! result recognition, essential-medicine usage and outreach. Pure functions over data and a
//! period, so every figure is tested against hand-computed values; the service gathers the
//! documents and the CLI prints tables, CSV and JSON (whose field names are stable and
//! documented in docs/cli.md).

pub mod essential;
pub mod outreach;
pub mod recognition;
pub mod referrals;

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

pub use essential::{EssentialReport, ReportsConfig};
pub use outreach::OutreachReport;
pub use recognition::RecognitionReport;
pub use referrals::ReferralReport;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// Two-way referrals.
    Referrals,
    /// Result mutual recognition.
    Recognition,
    /// Essential-medicine usage.
    EssentialDrugs,
    /// Outreach free clinics.
    Outreach,
}

impl ReportKind {
    /// Every report, in the order the semiannual summary shows them.
    pub const ALL: [ReportKind; 4] = [
        ReportKind::Referrals,
        ReportKind::Recognition,
        ReportKind::EssentialDrugs,
        ReportKind::Outreach,
    ];

    /// The name used on the command line and as a file name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Referrals => "referrals",
            ReportKind::Recognition => "recognition",
            ReportKind::EssentialDrugs => "essential-drugs",
            ReportKind::Outreach => "outreach",
        }
    }
}

/// The reporting period, both days included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First day.
    pub from: Date,
    /// Last day.
    pub to: Date,
}

impl Period {
    /// A period; `from` after `to` is an error naming both.
    pub fn new(from: Date, to: Date) -> Result<Period, String> {
        if from > to {
            return Err(format!("--from {from} is after --to {to}"));
        }
        Ok(Period { from, to })
    }

    /// Half `half` (1: January-June, 2: July-December) of `year`.
    pub fn half_year(year: i16, half: u8) -> Result<Period, String> {
        let (a, b) = match half {
            1 => ((1, 1), (6, 30)),
            2 => ((7, 1), (12, 31)),
            _ => {
                return Err(format!(
                    "--half {half}: use 1 (January-June) or 2 (July-December)"
                ));
            }
        };
        let d = |(m, d): (i8, i8)| Date::new(year, m, d).map_err(|e| format!("--year {year}: {e}"));
        Period::new(d(a)?, d(b)?)
    }

    /// Whether a day is inside.
    pub fn contains(&self, d: Date) -> bool {
        self.from <= d && d <= self.to
    }

    /// Whether the month `YYYY-MM` overlaps the period.
    pub fn overlaps_month(&self, period: &str) -> bool {
        let Some(first) = format!("{period}-01").parse::<Date>().ok() else {
            return false;
        };
        first <= self.to && first.last_of_month() >= self.from
    }

    /// The end of the last day, in ms since the Unix epoch, in `tz`.
    pub fn end_ms(&self, tz: &TimeZone) -> i64 {
        self.to
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(tz.clone()).ok())
            .map_or(i64::MAX, |z| z.timestamp().as_millisecond())
    }
}

/// The end of the month `YYYY-MM` (the first instant of the next), in ms since the Unix epoch,
/// in `tz`; None if `month` is not a month.
pub fn month_end_ms(month: &str, tz: &TimeZone) -> Option<i64> {
    let first: Date = format!("{month}-01").parse().ok()?;
    let next = first.last_of_month().tomorrow().ok()?;
    Some(next.to_zoned(tz.clone()).ok()?.timestamp().as_millisecond())
}

/// The local day of a time in ms since the Unix epoch.
pub fn day_of_ms(ms: u64, tz: &TimeZone) -> Option<Date> {
    jiff::Timestamp::from_millisecond(ms as i64)
        .ok()
        .map(|t| t.to_zoned(tz.clone()).date())
}

/// A share as a percentage with one decimal, `None` when the denominator is zero.
pub fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A report as rows of text: for terminal tables and CSV files.
pub trait Tabular {
    /// Column names.
    fn header(&self) -> Vec<&'static str>;
    /// Rows, as text.
    fn rows(&self) -> Vec<Vec<String>>;
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

/// Any report. On the control socket it travels as a plain (externally tagged) enum; its
/// JSON for people and files is [`Report::to_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Report {
    /// Referrals.
    Referrals(ReferralReport),
    /// Recognition.
    Recognition(RecognitionReport),
    /// Essential-medicine usage.
    EssentialDrugs(EssentialReport),
    /// Outreach.
    Outreach(OutreachReport),
}

impl Report {
    /// The report as a table.
    pub fn tabular(&self) -> &dyn Tabular {
        match self {
            Report::Referrals(r) => r,
            Report::Recognition(r) => r,
            Report::EssentialDrugs(r) => r,
            Report::Outreach(r) => r,
        }
    }

    /// Which report it is.
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Referrals(_) => ReportKind::Referrals,
            Report::Recognition(_) => ReportKind::Recognition,
            Report::EssentialDrugs(_) => ReportKind::EssentialDrugs,
            Report::Outreach(_) => ReportKind::Outreach,
        }
    }

    /// The report as JSON: its fields plus `"report": "<kind>"` (the stable, documented form).
    pub fn to_json(&self) -> serde_json::Value {
        let inner = match self {
            Report::Referrals(r) => serde_json::to_value(r),
            Report::Recognition(r) => serde_json::to_value(r),
            Report::EssentialDrugs(r) => serde_json::to_value(r),
            Report::Outreach(r) => serde_json::to_value(r),
        };
        let mut v = inner.unwrap_or(serde_json::Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert("report".into(), self.kind().as_str().into());
        }
        v
    }

    /// Plain-language findings for the summary (targets missed, waits, gaps).
    pub fn findings(&self) -> Vec<String> {
        match self {
            Report::Referrals(r) => r.findings(),
            Report::Recognition(r) => r.findings(),
            Report::EssentialDrugs(r) => r.findings(),
            Report::Outreach(r) => r.findings(),
        }
    }
}

/// Counts by key, in key order.
pub(crate) fn count_by<K: Ord>(items: impl IntoIterator<Item = K>) -> BTreeMap<K, u64> {
    let mut m = BTreeMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests;
