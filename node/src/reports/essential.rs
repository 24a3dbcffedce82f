//! Essential-medicine (基本药物) usage per facility against its level's target, from the
//! dispensing summaries of the period and the catalog's essential flags as they stood at the
//! end of each month dispensed (a drug reclassified later does not rewrite past usage).
//! Targets are set per level and measured by amount (default) or by quantity, in `[reports]`
//! of the configuration.
//!
//! Shares are compared with their target unrounded, and shown truncated to one decimal (never
//! rounded up): with targets of at most one decimal, a share shown at or above its target
//! meets it and one shown below misses it (79.95% of an 80% target shows as 79.9, below).

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::{Period, Tabular, opt};
use crate::documents::catalog::CatalogEntry;
use crate::documents::dispensing::{Level, Summary, yuan};

/// How usage is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Share of the amount dispensed.
    Amount,
    /// Share of the units dispensed.
    Quantity,
}

/// Report settings, from `[reports]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// This facility's level when it differs from its kind's (a tertiary county hospital).
    pub level: Option<Level>,
    /// Which share the targets apply to.
    pub essential_metric: Metric,
    /// Minimum essential-medicine share per level, percent.
    pub essential_targets: BTreeMap<Level, f64>,
    /// Referrals waiting longer than this for a decision are reported, hours.
    pub waiting_limit_hours: u64,
}

impl ReportsConfig {
    /// Checks the settings: targets are percentages with at most one decimal, so that a share
    /// shown with one decimal never seems to contradict its flag.
    pub fn validate(&self) -> Result<(), String> {
        for (level, t) in &self.essential_targets {
            let tenths = t * 10.0;
            if !(0.0..=100.0).contains(t) || (tenths - tenths.round()).abs() > 1e-6 {
                return Err(format!(
                    "reports.essential_targets.{}: {t} must be a percentage from 0 to 100 with at most one decimal",
                    level.as_str()
                ));
            }
        }
        Ok(())
    }
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            level: None,
            essential_metric: Metric::Amount,
            essential_targets: [
                (Level::Primary, 80.0),
                (Level::Secondary, 30.0),
                (Level::Tertiary, 15.0),
            ]
            .into(),
            waiting_limit_hours: 48,
        }
    }
}

/// Usage at one facility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EssentialRow {
    /// Facility.
    pub facility: String,
    /// Its level.
    pub level: Level,
    /// Months with a summary.
    pub months: u64,
    /// Amount dispensed, fen.
    pub amount_fen: u64,
    /// Of which essential medicines, fen.
    pub essential_amount_fen: u64,
    /// Share by amount, percent.
    pub amount_pct: Option<f64>,
    /// Units dispensed.
    pub quantity: u64,
    /// Of which essential medicines.
    pub essential_quantity: u64,
    /// Share by quantity, percent.
    pub quantity_pct: Option<f64>,
    /// The level's target, percent.
    pub target_pct: f64,
    /// Below the target on the configured metric.
    pub below_target: bool,
    /// Codes dispensed that the catalog does not hold (counted as not essential).
    pub unknown_codes: u64,
}

/// The essential-medicine report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EssentialReport {
    /// The period.
    pub period: Period,
    /// Only this facility, if set.
    pub facility: Option<String>,
    /// The metric targets apply to.
    pub metric: Metric,
    /// Per facility.
    pub rows: Vec<EssentialRow>,
}

/// Computes the report from summaries (any months; those outside the period are skipped) and
/// the catalog by code: each month's rows count a drug as essential if its flag was set at the
/// end of that month (or of the period, if it ends sooner), in the facility's time zone `tz`.
pub fn report(
    summaries: &[Summary],
    catalog: &BTreeMap<String, CatalogEntry>,
    cfg: &ReportsConfig,
    period: Period,
    facility: Option<&str>,
    tz: &TimeZone,
) -> EssentialReport {
    let mut rows: BTreeMap<String, EssentialRow> = BTreeMap::new();
    let period_end = period.end_ms(tz);
    for s in summaries {
        if !period.overlaps_month(&s.period) || facility.is_some_and(|f| s.facility != f) {
            continue;
        }
        let as_of = super::month_end_ms(&s.period, tz)
            .unwrap_or(period_end)
            .min(period_end)
            .saturating_sub(1)
            .max(0) as u64;
        let row = rows
            .entry(s.facility.clone())
            .or_insert_with(|| EssentialRow {
                facility: s.facility.clone(),
                level: s.level,
                months: 0,
                amount_fen: 0,
                essential_amount_fen: 0,
                amount_pct: None,
                quantity: 0,
                essential_quantity: 0,
                quantity_pct: None,
                target_pct: 0.0,
                below_target: false,
                unknown_codes: 0,
            });
        row.months += 1;
        row.level = row.level.max(s.level);
        for (code, r) in &s.rows {
            row.amount_fen += r.amount_fen;
            row.quantity += r.quantity;
            match catalog.get(code).map(|e| e.essential_at(as_of)) {
                Some(true) => {
                    row.essential_amount_fen += r.amount_fen;
                    row.essential_quantity += r.quantity;
                }
                Some(false) => {}
                None => row.unknown_codes += 1,
            }
        }
    }
    let rows = rows
        .into_values()
        .map(|mut r| {
            r.amount_pct = share_floor(r.essential_amount_fen, r.amount_fen);
            r.quantity_pct = share_floor(r.essential_quantity, r.quantity);
            r.target_pct = cfg.essential_targets.get(&r.level).copied().unwrap_or(0.0);
            let (part, whole) = match cfg.essential_metric {
                Metric::Amount => (r.essential_amount_fen, r.amount_fen),
                Metric::Quantity => (r.essential_quantity, r.quantity),
            };
            r.below_target = whole > 0 && below(part, whole, r.target_pct);
            r
        })
        .collect();
    EssentialReport {
        period,
        facility: facility.map(str::to_string),
        metric: cfg.essential_metric,
        rows,
    }
}

/// `part / whole` as a percentage truncated to one decimal (79.95 -> 79.9), None for nothing.
pub fn share_floor(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (u128::from(part) * 1000 / u128::from(whole)) as f64 / 10.0)
}

/// Whether `part / whole` is below `target` percent, compared exactly (not on rounded shares).
/// The target is taken in tenths of a percent, as validated in the configuration.
fn below(part: u64, whole: u64, target: f64) -> bool {
    let target_tenths = (target * 10.0).round().max(0.0) as u128;
    u128::from(part) * 1000 < target_tenths * u128::from(whole)
}

impl EssentialReport {
    /// Findings in words.
    pub fn findings(&self) -> Vec<String> {
        let below: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.below_target)
            .map(|r| {
                let m = match self.metric {
                    Metric::Amount => r.amount_pct,
                    Metric::Quantity => r.quantity_pct,
                };
                format!("{} {}% < {}%", r.facility, opt(m), r.target_pct)
            })
            .collect();
        let mut out = vec![format!(
            "{} facilities reported dispensing; {} below their level's essential-medicine target",
            self.rows.len(),
            below.len()
        )];
        if !below.is_empty() {
            out.push(format!("below target: {}", below.join(", ")));
        }
        out
    }
}

impl Tabular for EssentialReport {
    fn header(&self) -> Vec<&'static str> {
        vec![
            "facility",
            "level",
            "months",
            "amount_yuan",
            "essential_amount_yuan",
            "amount_pct",
            "quantity",
            "essential_quantity",
            "quantity_pct",
            "target_pct",
            "below_target",
            "unknown_codes",
        ]
    }

    fn rows(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                vec![
                    r.facility.clone(),
                    r.level.as_str().to_string(),
                    r.months.to_string(),
                    yuan(r.amount_fen),
                    yuan(r.essential_amount_fen),
                    opt(r.amount_pct),
                    r.quantity.to_string(),
                    r.essential_quantity.to_string(),
                    opt(r.quantity_pct),
                    format!("{:.1}", r.target_pct),
                    if r.below_target { "BELOW" } else { "ok" }.to_string(),
                    r.unknown_codes.to_string(),
                ]
            })
            .collect()
    }
}
