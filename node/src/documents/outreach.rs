//! Outreach free clinics (义诊): an event, its team, and the visits and lectures logged during
//! it, often on several devices with no network.
//!
//! # Layout (schema 1, mapped with autosurgeon)
//!
//! One document per event (`kind = outreach`, random id, audience: the host facility and the
//! township visited; the county hospital holds everything): `{ schema, number, title, host,
//! township, start, end, team: [Member], services, target_per_day, created_ms, visits: {id:
//! Visit}, lectures: {id: Lecture} }`. The `visits` and `lectures` maps are made when the event
//! is created; every device adds records under fresh random keys, so visits logged offline on
//! several devices merge without loss and without duplicates.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};

use super::validate::{self, FieldError};

/// The schema version this build writes.
pub const SCHEMA: u64 = 1;
/// Visits a day a center is expected to see unless the event says otherwise.
pub const DEFAULT_TARGET_PER_DAY: u32 = 100;
/// Longest event, days.
pub const MAX_DAYS: i32 = 31;

/// Professional title (职称) grade.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Reconcile,
    Hydrate,
)]
#[serde(rename_all = "kebab-case")]
pub enum Title {
    /// 初级 (住院医师, 医师, 护师...).
    Junior,
    /// 中级 (主治医师, 主管护师, 主管药师...): the policy's minimum.
    Intermediate,
    /// 副高 (副主任医师...).
    AssociateSenior,
    /// 正高 (主任医师...).
    Senior,
}

impl Title {
    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Title::Junior => "junior",
            Title::Intermediate => "intermediate",
            Title::AssociateSenior => "associate-senior",
            Title::Senior => "senior",
        }
    }
}

impl std::str::FromStr for Title {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        Ok(match t.to_lowercase().as_str() {
            "senior" | "chief" | "正高" => Title::Senior,
            "associate-senior" | "associate-chief" | "副高" => Title::AssociateSenior,
            "intermediate" | "attending" | "中级" => Title::Intermediate,
            "junior" | "resident" | "初级" => Title::Junior,
            _ if t.starts_with('副') && t.contains("主任") => Title::AssociateSenior,
            _ if t.contains("主任") => Title::Senior,
            _ if t.contains("主治") || t.contains("主管") => Title::Intermediate,
            _ if t.contains("住院") || t.ends_with("师") || t.ends_with('士') => Title::Junior,
            _ => {
                return Err(format!(
                    "title: {t:?} is not a title: 主任医师/senior, 副主任医师/associate-senior, \
                     主治医师/intermediate, 住院医师/junior"
                ));
            }
        })
    }
}

/// What the event offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// 义诊咨询.
    Consultation,
    /// 健康筛查 (blood pressure, glucose, ECG...).
    Screening,
    /// 健康讲座.
    Lecture,
    /// Free medicines.
    Medicine,
    /// Follow-up of chronic patients.
    FollowUp,
}

impl std::str::FromStr for ServiceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "consultation" | "咨询" | "义诊" => ServiceKind::Consultation,
            "screening" | "筛查" => ServiceKind::Screening,
            "lecture" | "讲座" => ServiceKind::Lecture,
            "medicine" | "送药" => ServiceKind::Medicine,
            "follow-up" | "随访" => ServiceKind::FollowUp,
            other => {
                return Err(format!(
                    "service: {other:?} is not a service: consultation, screening, lecture, medicine, follow-up"
                ));
            }
        })
    }
}

/// A team member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Member {
    /// Name.
    pub name: String,
    /// Title grade.
    pub title: Title,
    /// Title as written (主治医师...).
    pub title_text: String,
    /// Department.
    pub department: String,
}

/// Parses `NAME,TITLE,DEPARTMENT` (e.g. `李明,主治医师,心内科`).
pub fn parse_member(text: &str) -> Result<Member, String> {
    let parts: Vec<&str> = text.split([',', '，']).map(str::trim).collect();
    let [name, title, department] = parts.as_slice() else {
        return Err(format!(
            "member: {text:?} must be NAME,TITLE,DEPARTMENT (e.g. 李明,主治医师,心内科)"
        ));
    };
    if name.is_empty() || department.is_empty() {
        return Err(format!("member: {text:?} needs a name and a department"));
    }
    Ok(Member {
        name: name.to_string(),
        title: title.parse()?,
        title_text: title.to_string(),
        department: department.to_string(),
    })
}

/// The patient of a visit: often anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct VisitPatient {
    /// Name, if given (sensitive: never logged).
    pub name: Option<String>,
    /// M, F or U.
    pub sex: String,
    /// Age band (`60-69`, `80+`).
    pub age_band: String,
}

/// A screening result (`血压` = `150/95`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Screening {
    /// What was measured.
    pub item: String,
    /// The result.
    pub value: String,
}

/// One visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Visit {
    /// `YYYY-MM-DDTHH:MM`.
    pub at: String,
    /// Facility of the device that logged it.
    pub by: String,
    /// Node id of the device.
    pub device: String,
    /// The patient.
    pub patient: VisitPatient,
    /// Chief complaint.
    pub complaint: String,
    /// Screening results.
    pub screenings: Vec<Screening>,
    /// Advice given.
    pub advice: String,
    /// A referral created from the visit (document id).
    pub referral: Option<String>,
}

/// A health lecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Lecture {
    /// `YYYY-MM-DDTHH:MM`.
    pub at: String,
    /// Topic.
    pub topic: String,
    /// Speaker.
    pub speaker: String,
    /// People attending.
    pub attendees: u32,
}

/// An outreach event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Outreach {
    /// Schema version.
    pub schema: u64,
    /// Event number.
    pub number: String,
    /// Title.
    pub title: String,
    /// Host facility (sends the team).
    pub host: String,
    /// Township center visited.
    pub township: String,
    /// First day, YYYY-MM-DD.
    pub start: String,
    /// Last day, YYYY-MM-DD.
    pub end: String,
    /// The team.
    pub team: Vec<Member>,
    /// Planned services.
    pub services: Vec<ServiceKind>,
    /// Visits a day expected.
    pub target_per_day: u32,
    /// Created (ms since the Unix epoch).
    pub created_ms: u64,
    /// Visits by key.
    pub visits: BTreeMap<String, Visit>,
    /// Lectures by key.
    pub lectures: BTreeMap<String, Lecture>,
}

impl Outreach {
    /// Days of the event (inclusive), or 1 if the dates are unreadable.
    pub fn days(&self) -> i32 {
        match (self.start.parse::<Date>(), self.end.parse::<Date>()) {
            (Ok(s), Ok(e)) => (e - s).get_days() + 1,
            _ => 1,
        }
    }

    /// Team members below the intermediate (mid-level) title the policy asks for.
    pub fn below_mid_level(&self) -> Vec<&Member> {
        self.team
            .iter()
            .filter(|m| m.title < Title::Intermediate)
            .collect()
    }

    /// Visits per day, by date.
    pub fn visits_by_day(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for v in self.visits.values() {
            *out.entry(v.at.get(..10).unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
        out
    }
}

/// What the host enters to create an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutreachInput {
    /// Title.
    pub title: String,
    /// Township center visited.
    pub township: String,
    /// First day.
    pub start: String,
    /// Last day (default: the first).
    pub end: Option<String>,
    /// Team members.
    pub team: Vec<Member>,
    /// Planned services (default consultation).
    pub services: Vec<ServiceKind>,
    /// Visits a day expected (default 100).
    pub target_per_day: Option<u32>,
}

fn err(field: &'static str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field,
        problem: problem.into(),
    }
}

/// Validates a new event hosted by `host`.
pub fn build(
    input: OutreachInput,
    host: &str,
    number: String,
    now: u64,
) -> Result<Outreach, FieldError> {
    let title = validate::text("title", &input.title, 200)?;
    let township = input.township.trim().to_ascii_uppercase();
    township
        .parse::<crate::ids::FacilityCode>()
        .map_err(|e| err("township", e.to_string()))?;
    if township == host {
        return Err(err(
            "township",
            "is the host itself; name the township visited",
        ));
    }
    let start = validate::date("start", &input.start)?;
    let end = match &input.end {
        Some(e) => validate::date("end", e)?,
        None => start,
    };
    let days = (end - start).get_days() + 1;
    if days < 1 {
        return Err(err("end", format!("{end} is before the start {start}")));
    }
    if days > MAX_DAYS {
        return Err(err(
            "end",
            format!("an event lasts at most {MAX_DAYS} days"),
        ));
    }
    if input.team.is_empty() {
        return Err(err(
            "member",
            "the team needs at least one member (--member NAME,TITLE,DEPARTMENT)",
        ));
    }
    let target = input.target_per_day.unwrap_or(DEFAULT_TARGET_PER_DAY);
    if !(1..=10_000).contains(&target) {
        return Err(err("target_per_day", "must be between 1 and 10000"));
    }
    let mut services = input.services;
    if services.is_empty() {
        services.push(ServiceKind::Consultation);
    }
    services.dedup();
    Ok(Outreach {
        schema: SCHEMA,
        number,
        title,
        host: host.to_string(),
        township,
        start: start.to_string(),
        end: end.to_string(),
        team: input.team,
        services,
        target_per_day: target,
        created_ms: now,
        visits: BTreeMap::new(),
        lectures: BTreeMap::new(),
    })
}

/// What a device logs for a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitInput {
    /// `YYYY-MM-DDTHH:MM`.
    pub at: String,
    /// Name, if the patient gives it.
    pub name: Option<String>,
    /// M, F or U.
    pub sex: String,
    /// `60-69` or `80+`.
    pub age_band: String,
    /// Chief complaint.
    pub complaint: String,
    /// `ITEM=VALUE` each.
    pub screenings: Vec<String>,
    /// Advice.
    pub advice: String,
    /// A referral created for the patient (document id).
    pub referral: Option<String>,
}

/// Checks an age band: `A-B` (A <= B <= 120) or `A+`.
pub fn check_age_band(text: &str) -> Result<String, FieldError> {
    let t = text.trim();
    let bad = || {
        err(
            "age_band",
            format!("{t:?} is not an age band (e.g. 60-69 or 80+)"),
        )
    };
    if let Some(a) = t.strip_suffix('+') {
        let a: u32 = a.parse().map_err(|_| bad())?;
        return if a <= 120 {
            Ok(format!("{a}+"))
        } else {
            Err(bad())
        };
    }
    let (a, b) = t.split_once('-').ok_or_else(bad)?;
    let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a <= b && b <= 120 {
        Ok(format!("{a}-{b}"))
    } else {
        Err(bad())
    }
}

fn event_time(field: &'static str, at: &str, e: &Outreach) -> Result<String, FieldError> {
    let t: DateTime = validate::datetime(field, at)?
        .parse()
        .map_err(|_| err(field, "is not a time (YYYY-MM-DDTHH:MM)"))?;
    let day = t.date().to_string();
    if day < e.start || day > e.end {
        return Err(err(
            field,
            format!("{day} is outside the event ({} to {})", e.start, e.end),
        ));
    }
    Ok(t.strftime("%Y-%m-%dT%H:%M").to_string())
}

/// Validates a visit for event `e`, logged by `facility` on device `device`.
pub fn build_visit(
    input: VisitInput,
    e: &Outreach,
    facility: &str,
    device: &str,
) -> Result<Visit, FieldError> {
    let at = event_time("at", &input.at, e)?;
    let sex = input.sex.trim().to_ascii_uppercase();
    if !matches!(sex.as_str(), "M" | "F" | "U") {
        return Err(err("sex", "must be M, F or U"));
    }
    let age_band = check_age_band(&input.age_band)?;
    let name = validate::optional("name", input.name, 50)?;
    let complaint = validate::text("complaint", &input.complaint, 1000)?;
    let advice = validate::text("advice", &input.advice, 2000)?;
    let mut screenings = Vec::new();
    for s in input.screenings {
        let (item, value) = s
            .split_once(['=', '='])
            .map(|(a, b)| (a.trim(), b.trim()))
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            .ok_or_else(|| {
                err(
                    "screening",
                    format!("{s:?} must be ITEM=VALUE (e.g. 血压=150/95)"),
                )
            })?;
        screenings.push(Screening {
            item: item.to_string(),
            value: value.to_string(),
        });
    }
    Ok(Visit {
        at,
        by: facility.to_string(),
        device: device.to_string(),
        patient: VisitPatient {
            name,
            sex,
            age_band,
        },
        complaint,
        screenings,
        advice,
        referral: input.referral,
    })
}

/// What a device logs for a lecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LectureInput {
    /// `YYYY-MM-DDTHH:MM`.
    pub at: String,
    /// Topic.
    pub topic: String,
    /// Speaker.
    pub speaker: String,
    /// People attending.
    pub attendees: u32,
}

/// Validates a lecture for event `e`.
pub fn build_lecture(input: LectureInput, e: &Outreach) -> Result<Lecture, FieldError> {
    Ok(Lecture {
        at: event_time("at", &input.at, e)?,
        topic: validate::text("topic", &input.topic, 200)?,
        speaker: validate::text("speaker", &input.speaker, 100)?,
        attendees: input.attendees,
    })
}

/// Reads an event.
pub fn read(doc: &automerge::Automerge) -> Result<Outreach, String> {
    super::read_versioned(doc, "outreach event", |e: &Outreach| e.schema, SCHEMA)
}

/// Writes a new event (creation only).
pub fn write_new(doc: &mut automerge::Automerge, e: &Outreach) -> Result<(), String> {
    super::write_whole(doc, "outreach event", e)
}

/// Adds one record under a fresh key to `visits` or `lectures`, touching nothing else.
pub fn add_record<T: Reconcile>(
    doc: &mut automerge::Automerge,
    map: &str,
    key: &str,
    value: &T,
) -> Result<(), String> {
    use automerge::ReadDoc;
    let obj = match doc.get(automerge::ROOT, map) {
        Ok(Some((automerge::Value::Object(automerge::ObjType::Map), id))) => id,
        _ => return Err(format!("the event has no {map} map")),
    };
    doc.transact::<_, _, autosurgeon::ReconcileError>(|tx| {
        autosurgeon::reconcile_prop(tx, &obj, key, value)
    })
    .map(|_| ())
    .map_err(|f| f.error.to_string())
}

/// The date part of an event time.
pub fn day_of(at: &str) -> Option<Date> {
    at.parse::<DateTime>().ok().map(|t| t.date())
}

#[cfg(test)]
mod tests;
