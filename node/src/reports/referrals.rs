//! Two-way referral figures: counts up and down per sending facility and month, the share
//! accepted among decided referrals, the median time from request to decision, the
//! green-channel share, and referrals waiting for a decision longer than the limit.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::{Period, Tabular, day_of_ms, median, opt, percent};
use crate::documents::referral::{Direction, Referral, Status, Urgency, derive};

/// Figures for one sending facility and month (or the total).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferralRow {
    /// `YYYY-MM`, or `all` for the total.
    pub month: String,
    /// Sending facility, or `all`.
    pub facility: String,
    /// Upward referrals sent.
    pub up: u64,
    /// Downward referrals sent.
    pub down: u64,
    /// Accepted (including those since arrived or completed).
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Cancelled by the sender.
    pub cancelled: u64,
    /// Still waiting for a decision.
    pub pending: u64,
    /// Accepted / (accepted + rejected), percent.
    pub acceptance_pct: Option<f64>,
    /// Median hours from request to first decision.
    pub median_decision_hours: Option<f64>,
    /// Green-channel referrals.
    pub green_channel: u64,
    /// Green-channel share of all, percent.
    pub green_channel_pct: Option<f64>,
    /// Waiting for a decision longer than the limit at the end of the period.
    pub waiting_over_limit: u64,
}

/// A referral still waiting too long (numbers only: no patient data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// Referral number.
    pub number: String,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Hours waited by the end of the period.
    pub hours: f64,
    /// Green channel?
    pub green_channel: bool,
}

/// The referral report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferralReport {
    /// The period.
    pub period: Period,
    /// Only referrals sent or received by this facility, if set.
    pub facility: Option<String>,
    /// The waiting limit, hours.
    pub waiting_limit_hours: u64,
    /// Per month and sending facility.
    pub rows: Vec<ReferralRow>,
    /// All together.
    pub total: ReferralRow,
    /// Referrals waiting longer than the limit, longest first.
    pub waiting: Vec<Waiting>,
}

#[derive(Default)]
struct Acc {
    up: u64,
    down: u64,
    accepted: u64,
    rejected: u64,
    cancelled: u64,
    pending: u64,
    green: u64,
    waiting: u64,
    decision_hours: Vec<f64>,
}

impl Acc {
    fn row(self, month: String, facility: String) -> ReferralRow {
        ReferralRow {
            month,
            facility,
            up: self.up,
            down: self.down,
            accepted: self.accepted,
            rejected: self.rejected,
            cancelled: self.cancelled,
            pending: self.pending,
            acceptance_pct: percent(self.accepted, self.accepted + self.rejected),
            median_decision_hours: median(self.decision_hours).map(|h| (h * 10.0).round() / 10.0),
            green_channel: self.green,
            green_channel_pct: percent(self.green, self.up + self.down),
            waiting_over_limit: self.waiting,
        }
    }
}

/// Computes the report over referrals created in the period, each in the state it had at the
/// end of the period: acts recorded later are not counted, so a report for a closed period
/// comes out the same whenever it is run. Waiting is measured up to `as_of_ms` (the end of the
/// period, or now if that is earlier).
pub fn report(
    referrals: &[Referral],
    period: Period,
    facility: Option<&str>,
    waiting_limit_hours: u64,
    as_of_ms: u64,
    tz: &TimeZone,
) -> ReferralReport {
    let mut groups: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut total = Acc::default();
    let mut waiting = Vec::new();
    let end = period.end_ms(tz).max(0) as u64;
    for r in referrals {
        let q = &r.request;
        let Some(day) = day_of_ms(q.created_ms, tz) else {
            continue;
        };
        if !period.contains(day) {
            continue;
        }
        if let Some(f) = facility
            && q.from.facility != f
            && q.to.facility != f
        {
            continue;
        }
        let d = &derive(&as_of(r, end));
        let month = day.strftime("%Y-%m").to_string();
        let hours_waited = as_of_ms.saturating_sub(q.created_ms) as f64 / 3_600_000.0;
        let over = d.status == Status::Requested && hours_waited > waiting_limit_hours as f64;
        if over {
            waiting.push(Waiting {
                number: q.number.clone(),
                from: q.from.facility.clone(),
                to: q.to.facility.clone(),
                hours: (hours_waited * 10.0).round() / 10.0,
                green_channel: q.urgency == Urgency::GreenChannel,
            });
        }
        for acc in [
            groups
                .entry((month.clone(), q.from.facility.clone()))
                .or_default(),
            &mut total,
        ] {
            match q.direction {
                Direction::Up => acc.up += 1,
                Direction::Down => acc.down += 1,
            }
            match d.status {
                Status::Accepted | Status::Arrived | Status::Completed => acc.accepted += 1,
                Status::Rejected => acc.rejected += 1,
                Status::Cancelled => acc.cancelled += 1,
                Status::Requested => acc.pending += 1,
            }
            if q.urgency == Urgency::GreenChannel {
                acc.green += 1;
            }
            if over {
                acc.waiting += 1;
            }
            if let Some(at) = d.decided_ms {
                acc.decision_hours
                    .push(at.saturating_sub(q.created_ms) as f64 / 3_600_000.0);
            }
        }
    }
    waiting.sort_by(|a, b| b.hours.total_cmp(&a.hours));
    ReferralReport {
        period,
        facility: facility.map(str::to_string),
        waiting_limit_hours,
        rows: groups
            .into_iter()
            .map(|((m, f), acc)| acc.row(m, f))
            .collect(),
        total: total.row("all".into(), "all".into()),
        waiting,
    }
}

/// The referral as it stood at `ms`: only the acts recorded before then.
fn as_of(r: &Referral, ms: u64) -> Referral {
    Referral {
        acts: r.acts.iter().filter(|a| a.at < ms).cloned().collect(),
        ..r.clone()
    }
}

impl ReferralReport {
    /// Findings in words.
    pub fn findings(&self) -> Vec<String> {
        let t = &self.total;
        let mut out = vec![format!(
            "{} referrals: {} up, {} down; {} accepted{}; median {} h to a decision; green channel {}%",
            t.up + t.down,
            t.up,
            t.down,
            t.accepted,
            t.acceptance_pct
                .map(|p| format!(" ({p:.1}% of decided)"))
                .unwrap_or_default(),
            opt(t.median_decision_hours),
            opt(t.green_channel_pct)
        )];
        if !self.waiting.is_empty() {
            out.push(format!(
                "{} referrals waited more than {} h for a decision",
                self.waiting.len(),
                self.waiting_limit_hours
            ));
        }
        out
    }
}

impl Tabular for ReferralReport {
    fn header(&self) -> Vec<&'static str> {
        vec![
            "month",
            "facility",
            "up",
            "down",
            "accepted",
            "rejected",
            "cancelled",
            "pending",
            "acceptance_pct",
            "median_decision_hours",
            "green_channel",
            "green_channel_pct",
            "waiting_over_limit",
        ]
    }

    fn rows(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .chain(std::iter::once(&self.total))
            .map(|r| {
                vec![
                    r.month.clone(),
                    r.facility.clone(),
                    r.up.to_string(),
                    r.down.to_string(),
                    r.accepted.to_string(),
                    r.rejected.to_string(),
                    r.cancelled.to_string(),
                    r.pending.to_string(),
                    opt(r.acceptance_pct),
                    opt(r.median_decision_hours),
                    r.green_channel.to_string(),
                    opt(r.green_channel_pct),
                    r.waiting_over_limit.to_string(),
                ]
            })
            .collect()
    }
}
