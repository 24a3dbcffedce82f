//! Essential-medicine (基本药物) usage per facility against its level's target, from the
//! dispensing summaries of the period and the catalog's essential flags. Targets are set per
//! level and measured by amount (default) or by quantity, in `[reports]` of the configuration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Period, Tabular, opt, percent};
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
/// the catalog's essential flag by code.
pub fn report(
    summaries: &[Summary],
    essential: &BTreeMap<String, bool>,
    cfg: &ReportsConfig,
    period: Period,
    facility: Option<&str>,
) -> EssentialReport {
    let mut rows: BTreeMap<String, EssentialRow> = BTreeMap::new();
    for s in summaries {
        if !period.overlaps_month(&s.period) || facility.is_some_and(|f| s.facility != f) {
            continue;
        }
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
            match essential.get(code) {
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
            r.amount_pct = percent(r.essential_amount_fen, r.amount_fen);
            r.quantity_pct = percent(r.essential_quantity, r.quantity);
            r.target_pct = cfg.essential_targets.get(&r.level).copied().unwrap_or(0.0);
            let measured = match cfg.essential_metric {
                Metric::Amount => r.amount_pct,
                Metric::Quantity => r.quantity_pct,
            };
            r.below_target = measured.is_some_and(|m| m < r.target_pct);
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
