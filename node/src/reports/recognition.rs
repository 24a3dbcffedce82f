//! Result mutual-recognition figures: per performing facility and item class, how many
//! results of the period were recognisable (certified on the test day, not superseded), how
//! many were re-tested anyway (by the end of the period), and the re-test reasons recorded in
//! the period.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::{Period, Tabular, count_by, day_of_ms, opt, percent};
use crate::documents::result::{self, QcCert, RecognitionConfig, RetestReason, TestResult};

/// Figures for one facility and item class (or the total).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecognitionRow {
    /// Performing facility, or `all`.
    pub facility: String,
    /// `lab`, `imaging` or `all`.
    pub class: String,
    /// Results taken in the period (corrected versions counted once).
    pub results: u64,
    /// Recognisable ones: certified on the test day.
    pub recognised: u64,
    /// recognised / results, percent.
    pub recognition_pct: Option<f64>,
    /// Results re-tested at least once.
    pub retested: u64,
}

/// The recognition report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecognitionReport {
    /// The period.
    pub period: Period,
    /// Only results performed by this facility, if set.
    pub facility: Option<String>,
    /// Per facility and class.
    pub rows: Vec<RecognitionRow>,
    /// All together.
    pub total: RecognitionRow,
    /// Re-tests recorded in the period, by coded reason.
    pub retest_reasons: BTreeMap<String, u64>,
}

fn reason_name(r: RetestReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Computes the report. `results` pairs each result with whether a correction supersedes it.
pub fn report(
    results: &[(TestResult, bool)],
    certs: &[QcCert],
    cfg: &RecognitionConfig,
    period: Period,
    facility: Option<&str>,
    tz: &TimeZone,
) -> RecognitionReport {
    let mut groups: BTreeMap<(String, String), RecognitionRow> = BTreeMap::new();
    let blank = |f: &str, c: &str| RecognitionRow {
        facility: f.into(),
        class: c.into(),
        results: 0,
        recognised: 0,
        recognition_pct: None,
        retested: 0,
    };
    let mut total = blank("all", "all");
    let mut reasons = Vec::new();
    let end = period.end_ms(tz);
    for (r, superseded) in results {
        if facility.is_some_and(|f| r.facility != f) {
            continue;
        }
        reasons.extend(
            r.retests
                .iter()
                .filter(|t| day_of_ms(t.at, tz).is_some_and(|d| period.contains(d)))
                .map(|t| reason_name(t.reason)),
        );
        let Some(day) =
            crate::documents::outreach::day_of(&r.taken_at).or_else(|| r.taken_at.parse().ok())
        else {
            continue;
        };
        if *superseded || !period.contains(day) {
            continue;
        }
        let recognised = result::recognise(r, None, certs, cfg, day).recognised;
        // Re-tests recorded after the period do not change a closed period's figures.
        let retested_in_time = r.retests.iter().any(|t| (t.at as i64) < end);
        let class = r.item.class.as_str();
        let g = groups
            .entry((r.facility.clone(), class.to_string()))
            .or_insert_with(|| blank(&r.facility, class));
        for row in [g, &mut total] {
            row.results += 1;
            row.recognised += u64::from(recognised);
            row.retested += u64::from(retested_in_time);
        }
    }
    let mut rows: Vec<RecognitionRow> = groups.into_values().collect();
    for row in rows.iter_mut().chain(std::iter::once(&mut total)) {
        row.recognition_pct = percent(row.recognised, row.results);
    }
    RecognitionReport {
        period,
        facility: facility.map(str::to_string),
        rows,
        total,
        retest_reasons: count_by(reasons),
    }
}

impl RecognitionReport {
    /// Findings in words.
    pub fn findings(&self) -> Vec<String> {
        let mut out = vec![format!(
            "{} results, {} recognisable ({}%), {} re-tested",
            self.total.results,
            self.total.recognised,
            opt(self.total.recognition_pct),
            self.total.retested
        )];
        if let Some((r, n)) = self.retest_reasons.iter().max_by_key(|(_, n)| **n) {
            out.push(format!("most frequent re-test reason: {r} ({n})"));
        }
        out
    }
}

impl Tabular for RecognitionReport {
    fn header(&self) -> Vec<&'static str> {
        vec![
            "facility",
            "class",
            "results",
            "recognised",
            "recognition_pct",
            "retested",
        ]
    }

    fn rows(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .chain(std::iter::once(&self.total))
            .map(|r| {
                vec![
                    r.facility.clone(),
                    r.class.clone(),
                    r.results.to_string(),
                    r.recognised.to_string(),
                    opt(r.recognition_pct),
                    r.retested.to_string(),
                ]
            })
            .collect()
    }
}
