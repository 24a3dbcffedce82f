//! Outreach free-clinic figures: per event, visits per day against the event's target,
//! lectures, referrals generated and the team's titles; and the township centers no event
//! visited in the period.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Period, Tabular};
use crate::documents::outreach::Outreach;

/// One day of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    /// The day.
    pub date: String,
    /// Visits logged.
    pub visits: u64,
    /// Whether the target was met.
    pub met: bool,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// Document id.
    pub id: String,
    /// Event number.
    pub number: String,
    /// Title.
    pub title: String,
    /// Host facility.
    pub host: String,
    /// Township visited.
    pub township: String,
    /// First day.
    pub start: String,
    /// Last day.
    pub end: String,
    /// Visits logged.
    pub visits: u64,
    /// Visits per event day (one decimal).
    pub visits_per_day: f64,
    /// Target per day.
    pub target_per_day: u32,
    /// Days on which the target was met.
    pub days_met: u64,
    /// Each day of the event.
    pub days: Vec<DayRow>,
    /// Lectures given.
    pub lectures: u64,
    /// People attending lectures.
    pub lecture_attendees: u64,
    /// Visits that led to a referral.
    pub referrals: u64,
    /// Team members below the mid-level title the policy asks for.
    pub below_mid_level: u64,
}

/// The outreach report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutreachReport {
    /// The period.
    pub period: Period,
    /// Only events hosted by or visiting this facility, if set.
    pub facility: Option<String>,
    /// Events overlapping the period.
    pub events: Vec<EventRow>,
    /// Visits in all events.
    pub visits: u64,
    /// Township centers visited.
    pub townships_visited: Vec<String>,
    /// Township centers known to this node that no event visited.
    pub townships_not_visited: Vec<String>,
}

/// Computes the report over `events` (id, event) against the known `townships`.
pub fn report(
    events: &[(String, Outreach)],
    townships: &[String],
    period: Period,
    facility: Option<&str>,
) -> OutreachReport {
    let mut rows = Vec::new();
    let mut visited = BTreeSet::new();
    for (id, e) in events {
        let (Ok(start), Ok(end)) = (e.start.parse(), e.end.parse()) else {
            continue;
        };
        if end < period.from || start > period.to {
            continue;
        }
        if facility.is_some_and(|f| e.host != f && e.township != f) {
            continue;
        }
        visited.insert(e.township.clone());
        let by_day = e.visits_by_day();
        let mut days = Vec::new();
        let mut d: jiff::civil::Date = start;
        while d <= end {
            let n = by_day.get(&d.to_string()).copied().unwrap_or(0) as u64;
            days.push(DayRow {
                date: d.to_string(),
                visits: n,
                met: n >= u64::from(e.target_per_day),
            });
            let Ok(next) = d.tomorrow() else { break };
            d = next;
        }
        let visits = e.visits.len() as u64;
        rows.push(EventRow {
            id: id.clone(),
            number: e.number.clone(),
            title: e.title.clone(),
            host: e.host.clone(),
            township: e.township.clone(),
            start: e.start.clone(),
            end: e.end.clone(),
            visits,
            visits_per_day: (visits as f64 * 10.0 / days.len().max(1) as f64).round() / 10.0,
            target_per_day: e.target_per_day,
            days_met: days.iter().filter(|d| d.met).count() as u64,
            days,
            lectures: e.lectures.len() as u64,
            lecture_attendees: e.lectures.values().map(|l| u64::from(l.attendees)).sum(),
            referrals: e.visits.values().filter(|v| v.referral.is_some()).count() as u64,
            below_mid_level: e.below_mid_level().len() as u64,
        });
    }
    rows.sort_by(|a, b| (&a.start, &a.number).cmp(&(&b.start, &b.number)));
    // A township asking about itself sees only itself; the host or county sees every township.
    let asked_township = facility.filter(|f| townships.iter().any(|t| t == f));
    let not_visited = townships
        .iter()
        .filter(|t| !visited.contains(*t))
        .filter(|t| asked_township.is_none_or(|f| f == t.as_str()))
        .cloned()
        .collect();
    OutreachReport {
        period,
        facility: facility.map(str::to_string),
        visits: rows.iter().map(|r| r.visits).sum(),
        events: rows,
        townships_visited: visited.into_iter().collect(),
        townships_not_visited: not_visited,
    }
}

impl OutreachReport {
    /// Findings in words.
    pub fn findings(&self) -> Vec<String> {
        let days: u64 = self.events.iter().map(|e| e.days.len() as u64).sum();
        let met: u64 = self.events.iter().map(|e| e.days_met).sum();
        let mut out = vec![format!(
            "{} events, {} visits; the daily target was met on {met} of {days} event days",
            self.events.len(),
            self.visits
        )];
        if !self.townships_not_visited.is_empty() {
            out.push(format!(
                "township centers not yet visited: {}",
                self.townships_not_visited.join(", ")
            ));
        }
        out
    }
}

impl Tabular for OutreachReport {
    fn header(&self) -> Vec<&'static str> {
        vec![
            "number",
            "host",
            "township",
            "start",
            "end",
            "visits",
            "visits_per_day",
            "target_per_day",
            "days_met",
            "lectures",
            "referrals",
            "below_mid_level",
        ]
    }

    fn rows(&self) -> Vec<Vec<String>> {
        self.events
            .iter()
            .map(|e| {
                vec![
                    e.number.clone(),
                    e.host.clone(),
                    e.township.clone(),
                    e.start.clone(),
                    e.end.clone(),
                    e.visits.to_string(),
                    format!("{:.1}", e.visits_per_day),
                    e.target_per_day.to_string(),
                    format!("{}/{}", e.days_met, e.days.len()),
                    e.lectures.to_string(),
                    e.referrals.to_string(),
                    e.below_mid_level.to_string(),
                ]
            })
            .collect()
    }
}
