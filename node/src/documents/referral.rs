//! Two-way referrals (双向转诊): a township center sends a patient up to the county hospital, or
//! the county hospital sends one down for rehabilitation and continuing care.
//!
//! # Layout (schema 1, mapped with autosurgeon)
//!
//! `{ schema, request: {...}, acts: [Act], notes: [Note] }`. The sending facility writes the
//! `request` once. Every later decision is an [`Act`] appended to `acts`: the receiving facility
//! accepts (slot and department), rejects, records arrival and completion; the sender cancels;
//! the receiver or the county hospital resolves conflicts. Each act lists the acts its author had
//! seen (`seen`), so concurrent acts — made on different nodes without knowledge of each other —
//! are recognisable after sync. Both sides append `notes`.
//!
//! The status is never stored: [`derive()`] computes it from the acts. Contradictory concurrent acts
//! (cancel vs accept, two different slots, accept vs reject, a terminal act vs anything else) are
//! reported as conflicts and keep the referral in "needs reconciliation" until a `resolve` act that
//! has seen them keeps one; no act is ever silently dropped.
//!
//! Migration path: `schema` is 1. A later layout adds a `schema: 2` reader that hydrates version 1
//! documents into the new types and writes version 2 on the next edit; nodes refuse to edit a
//! referral with a schema newer than they know (it stays readable as plain JSON).

use std::collections::{BTreeSet, HashSet};

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::validate::{self, FieldError};
use crate::config::FacilityKind;
use crate::ids::FacilityCode;

/// The schema version this build writes.
pub const SCHEMA: u64 = 1;

/// Which way the patient goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Township center or village clinic to the county hospital (上转).
    Up,
    /// County hospital to a township center or village clinic (下转).
    Down,
}

/// How fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    /// Routine.
    Routine,
    /// Green channel (绿色通道): treated first, paperwork follows.
    GreenChannel,
}

/// A decision recorded on a referral.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Reconcile,
    Hydrate,
)]
#[serde(rename_all = "kebab-case")]
pub enum ActKind {
    /// The receiver accepts, with an appointment slot and department.
    Accept,
    /// The receiver rejects, with a reason.
    Reject,
    /// The patient arrived at the receiver.
    Arrive,
    /// Treatment at the receiver is complete.
    Complete,
    /// The sender cancels (before arrival).
    Cancel,
    /// A conflict is resolved by keeping one act.
    Resolve,
}

impl ActKind {
    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ActKind::Accept => "accept",
            ActKind::Reject => "reject",
            ActKind::Arrive => "arrive",
            ActKind::Complete => "complete",
            ActKind::Cancel => "cancel",
            ActKind::Resolve => "resolve",
        }
    }
}

/// Where a referral stands, derived from its acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Sent, no decision yet.
    Requested,
    /// Accepted with a slot.
    Accepted,
    /// Rejected (terminal).
    Rejected,
    /// The patient arrived.
    Arrived,
    /// Completed (terminal).
    Completed,
    /// Cancelled by the sender (terminal).
    Cancelled,
}

impl Status {
    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Arrived => "arrived",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether nothing may follow.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Rejected | Status::Completed | Status::Cancelled
        )
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Status::Requested,
            Status::Accepted,
            Status::Rejected,
            Status::Arrived,
            Status::Completed,
            Status::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| {
            format!(
                "unknown status {s:?}: requested, accepted, rejected, arrived, completed, cancelled"
            )
        })
    }
}

/// The patient (sensitive: never logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Patient {
    /// Name.
    pub name: String,
    /// `M`, `F` or `U`.
    pub sex: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Resident identity card number (GB 11643), if known.
    pub id_number: Option<String>,
    /// Medical record number at the sender.
    pub record_number: Option<String>,
    /// Insurance card number.
    pub insurance_card: Option<String>,
    /// Known allergies.
    pub allergies: Option<String>,
}

/// A facility and department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Party {
    /// Facility code.
    pub facility: String,
    /// Department.
    pub department: String,
}

/// The sender's section, written once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Request {
    /// Human-readable referral number.
    pub number: String,
    /// Up or down.
    pub direction: Direction,
    /// Sender.
    pub from: Party,
    /// Receiver.
    pub to: Party,
    /// The patient.
    pub patient: Patient,
    /// History and reason for transfer.
    pub reason: String,
    /// Working diagnosis, ICD-10 code.
    pub icd10: String,
    /// Working diagnosis, text.
    pub diagnosis: String,
    /// Routine or green channel.
    pub urgency: Urgency,
    /// Treatment so far.
    pub treatment: String,
    /// Linked result document ids.
    pub results: Vec<String>,
    /// Downward: care and rehabilitation plan.
    pub care_plan: Option<String>,
    /// Downward: follow-up instructions.
    pub follow_up: Option<String>,
    /// Referring doctor.
    pub doctor: String,
    /// Referring doctor's phone.
    pub phone: Option<String>,
    /// When it was written (ms since the Unix epoch).
    pub created_ms: u64,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Act {
    /// Random id (16 hex characters).
    #[key]
    pub id: String,
    /// What was decided.
    pub kind: ActKind,
    /// Facility that acted.
    pub by: String,
    /// Node that wrote it.
    pub node: String,
    /// When (ms since the Unix epoch, the author's clock).
    pub at: u64,
    /// Ids of every act the author had seen.
    pub seen: Vec<String>,
    /// Accept: appointment slot `YYYY-MM-DDTHH:MM`.
    pub slot: Option<String>,
    /// Accept: department.
    pub department: Option<String>,
    /// Reject, cancel: reason; complete: outcome.
    pub reason: Option<String>,
    /// Resolve: the act kept.
    pub keep: Option<String>,
}

/// A note from either side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Note {
    /// When.
    pub at: u64,
    /// Facility.
    pub by: String,
    /// Text.
    pub text: String,
}

/// A referral document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Referral {
    /// Schema version.
    pub schema: u64,
    /// The sender's section.
    pub request: Request,
    /// Decisions, append-only.
    pub acts: Vec<Act>,
    /// Notes, append-only.
    pub notes: Vec<Note>,
}

/// Acts that contradict each other and were made without knowledge of each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// What contradicts what, in words.
    pub what: String,
    /// The acts, each with its author and time.
    pub acts: Vec<Act>,
}

/// What the acts add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derived {
    /// Status from the acts that are not in conflict or voided.
    pub status: Status,
    /// Appointment slot, if accepted.
    pub slot: Option<String>,
    /// Receiving department, if accepted.
    pub department: Option<String>,
    /// When the first accept or reject was made (for time-to-decision reports).
    pub decided_ms: Option<u64>,
    /// Unresolved conflicts.
    pub conflicts: Vec<Conflict>,
    /// Acts voided by a resolution.
    pub voided: Vec<String>,
    /// Acts that did not fit the state they followed (recorded, not applied).
    pub ignored: Vec<String>,
}

impl Derived {
    /// Whether county staff must reconcile the referral.
    pub fn needs_reconciliation(&self) -> bool {
        !self.conflicts.is_empty()
    }
}

fn concurrent(a: &Act, b: &Act) -> bool {
    !a.seen.contains(&b.id) && !b.seen.contains(&a.id)
}

/// Whether two concurrent decisions contradict each other.
fn contradict(a: &Act, b: &Act) -> Option<String> {
    use ActKind::*;
    if a.kind == Resolve || b.kind == Resolve || !concurrent(a, b) {
        return None;
    }
    match (a.kind, b.kind) {
        (Accept, Accept) if a.slot != b.slot || a.department != b.department => Some(format!(
            "two different appointments: {} at {} ({}) vs {} at {} ({})",
            a.by,
            a.slot.as_deref().unwrap_or("?"),
            a.department.as_deref().unwrap_or("?"),
            b.by,
            b.slot.as_deref().unwrap_or("?"),
            b.department.as_deref().unwrap_or("?")
        )),
        (x, y) if x == y => None,
        (x, y) => Some(format!(
            "{} by {} and {} by {} were made without seeing each other",
            x.as_str(),
            a.by,
            y.as_str(),
            b.by
        )),
    }
}

/// Computes the status, conflicts and slot from the acts.
pub fn derive(r: &Referral) -> Derived {
    let acts = &r.acts;
    // Resolutions void every act that contradicts the one they keep, among the acts they saw.
    let mut voided: BTreeSet<String> = BTreeSet::new();
    for res in acts.iter().filter(|a| a.kind == ActKind::Resolve) {
        let Some(kept) = res
            .keep
            .as_ref()
            .and_then(|k| acts.iter().find(|a| &a.id == k))
        else {
            continue;
        };
        for other in acts
            .iter()
            .filter(|a| res.seen.contains(&a.id) && a.id != kept.id)
        {
            if contradict(kept, other).is_some() {
                voided.insert(other.id.clone());
            }
        }
    }
    let live: Vec<&Act> = acts
        .iter()
        .filter(|a| a.kind != ActKind::Resolve && !voided.contains(&a.id))
        .collect();
    let mut conflicts = Vec::new();
    let mut in_conflict: HashSet<&str> = HashSet::new();
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            if let Some(what) = contradict(a, b) {
                in_conflict.insert(&a.id);
                in_conflict.insert(&b.id);
                let mut pair = vec![(*a).clone(), (*b).clone()];
                pair.sort_by(|x, y| (x.at, &x.id).cmp(&(y.at, &y.id)));
                conflicts.push(Conflict { what, acts: pair });
            }
        }
    }
    // An act that has seen more acts comes later in causal order; ties by time, then id.
    let mut ordered: Vec<&Act> = live
        .iter()
        .copied()
        .filter(|a| !in_conflict.contains(a.id.as_str()))
        .collect();
    ordered.sort_by(|x, y| (x.seen.len(), x.at, &x.id).cmp(&(y.seen.len(), y.at, &y.id)));
    let mut d = Derived {
        status: Status::Requested,
        slot: None,
        department: None,
        decided_ms: acts
            .iter()
            .filter(|a| matches!(a.kind, ActKind::Accept | ActKind::Reject))
            .map(|a| a.at)
            .min(),
        conflicts,
        voided: voided.into_iter().collect(),
        ignored: Vec::new(),
    };
    for a in ordered {
        let next = match (d.status, a.kind) {
            (Status::Requested | Status::Accepted, ActKind::Accept) => Some(Status::Accepted),
            (Status::Requested, ActKind::Reject) => Some(Status::Rejected),
            (Status::Accepted, ActKind::Arrive) => Some(Status::Arrived),
            (Status::Arrived, ActKind::Complete) => Some(Status::Completed),
            (Status::Requested | Status::Accepted, ActKind::Cancel) => Some(Status::Cancelled),
            _ => None,
        };
        match next {
            Some(s) => {
                if a.kind == ActKind::Accept {
                    d.slot = a.slot.clone();
                    d.department = a.department.clone();
                }
                d.status = s;
            }
            None => d.ignored.push(a.id.clone()),
        }
    }
    d
}

/// An act (or note) that may not be made now, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// A field is missing or malformed.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// This facility may not make this act.
    #[error("{0}")]
    NotYours(String),
    /// The referral's state does not allow it.
    #[error("{0}")]
    State(String),
}

/// What an operator asks to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActInput {
    /// The decision.
    pub kind: ActKind,
    /// Accept: slot.
    pub slot: Option<String>,
    /// Accept: department.
    pub department: Option<String>,
    /// Reject, cancel: reason; complete: outcome.
    pub reason: Option<String>,
    /// Resolve: id (or unique prefix) of the act to keep.
    pub keep: Option<String>,
}

/// Checks an act by facility `me` (of kind `my_kind`) against the referral and builds it.
pub fn make_act(
    r: &Referral,
    me: &FacilityCode,
    my_kind: FacilityKind,
    node: &str,
    at: u64,
    id: String,
    input: ActInput,
) -> Result<Act, Refused> {
    let d = derive(r);
    let number = &r.request.number;
    let sender = r.request.from.facility.as_str();
    let receiver = r.request.to.facility.as_str();
    let me_s = me.as_str();
    let kind = input.kind;
    match kind {
        ActKind::Accept | ActKind::Reject | ActKind::Arrive | ActKind::Complete
            if me_s != receiver =>
        {
            return Err(Refused::NotYours(if me_s == sender {
                format!(
                    "{me_s} sent referral {number}; only the receiving facility {receiver} can {} it",
                    kind.as_str()
                )
            } else {
                format!(
                    "only the receiving facility {receiver} can {} referral {number}",
                    kind.as_str()
                )
            }));
        }
        ActKind::Cancel if me_s != sender => {
            return Err(Refused::NotYours(format!(
                "only the sending facility {sender} can cancel referral {number}"
            )));
        }
        ActKind::Resolve if me_s != receiver && my_kind != FacilityKind::CountyHospital => {
            return Err(Refused::NotYours(format!(
                "only the receiving facility {receiver} or the county hospital can resolve referral {number}"
            )));
        }
        _ => {}
    }
    let mut act = Act {
        id,
        kind,
        by: me_s.to_string(),
        node: node.to_string(),
        at,
        seen: r.acts.iter().map(|a| a.id.clone()).collect(),
        slot: None,
        department: None,
        reason: None,
        keep: None,
    };
    if kind == ActKind::Resolve {
        let Some(prefix) = input
            .keep
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        else {
            return Err(FieldError {
                field: "keep",
                problem: "is required: the id of the act to keep".into(),
            }
            .into());
        };
        let candidates: Vec<&Act> = d
            .conflicts
            .iter()
            .flat_map(|c| &c.acts)
            .filter(|a| a.id.starts_with(prefix))
            .collect();
        let ids: BTreeSet<&str> = candidates.iter().map(|a| a.id.as_str()).collect();
        match ids.len() {
            0 if d.conflicts.is_empty() => {
                return Err(Refused::State(format!(
                    "referral {number} has no conflict to resolve"
                )));
            }
            0 => {
                return Err(Refused::State(format!(
                    "no conflicting act of referral {number} has an id starting with {prefix:?} (see yilian referral conflicts)"
                )));
            }
            1 => act.keep = ids.into_iter().next().map(str::to_string),
            _ => {
                return Err(Refused::State(format!(
                    "{prefix:?} matches more than one act: type more of the id"
                )));
            }
        }
        return Ok(act);
    }
    if d.needs_reconciliation() {
        return Err(Refused::State(format!(
            "referral {number} has contradictory acts and needs reconciliation first (yilian referral conflicts)"
        )));
    }
    if d.status.is_terminal() {
        return Err(Refused::State(format!(
            "referral {number} is already {}; nothing can follow",
            d.status.as_str()
        )));
    }
    let allowed = match kind {
        ActKind::Accept => matches!(d.status, Status::Requested | Status::Accepted),
        ActKind::Reject => d.status == Status::Requested,
        ActKind::Arrive => d.status == Status::Accepted,
        ActKind::Complete => d.status == Status::Arrived,
        ActKind::Cancel => matches!(d.status, Status::Requested | Status::Accepted),
        ActKind::Resolve => true,
    };
    if !allowed {
        return Err(Refused::State(format!(
            "cannot {} referral {number}: it is {}",
            kind.as_str(),
            d.status.as_str()
        )));
    }
    match kind {
        ActKind::Accept => {
            act.slot = Some(validate::datetime(
                "slot",
                input.slot.as_deref().unwrap_or(""),
            )?);
            act.department = Some(validate::text(
                "department",
                input.department.as_deref().unwrap_or(""),
                64,
            )?);
        }
        ActKind::Reject | ActKind::Cancel => {
            act.reason = Some(validate::text(
                "reason",
                input.reason.as_deref().unwrap_or(""),
                2000,
            )?);
        }
        ActKind::Complete => {
            act.reason = input
                .reason
                .as_deref()
                .map(|r| validate::text("outcome", r, 2000))
                .transpose()?;
        }
        _ => {}
    }
    Ok(act)
}

/// What the sender fills in to create a referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralInput {
    /// Up or down; derived from this facility's kind when absent.
    pub direction: Option<Direction>,
    /// Receiving facility code.
    pub to: String,
    /// Receiving department.
    pub to_department: String,
    /// Sending department.
    pub from_department: String,
    /// Patient name.
    pub patient_name: String,
    /// `M`, `F` or `U`.
    pub sex: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Resident identity card number.
    pub id_number: Option<String>,
    /// Medical record number.
    pub record_number: Option<String>,
    /// Insurance card number.
    pub insurance_card: Option<String>,
    /// Known allergies.
    pub allergies: Option<String>,
    /// History and reason for transfer.
    pub reason: String,
    /// Working diagnosis, ICD-10.
    pub icd10: String,
    /// Working diagnosis, text.
    pub diagnosis: String,
    /// Routine or green channel.
    pub urgency: Urgency,
    /// Treatment so far.
    pub treatment: String,
    /// Linked result document ids.
    pub results: Vec<String>,
    /// Downward: care plan.
    pub care_plan: Option<String>,
    /// Downward: follow-up instructions.
    pub follow_up: Option<String>,
    /// Referring doctor.
    pub doctor: String,
    /// Doctor's phone.
    pub phone: Option<String>,
}

/// Validates the sender's input and builds a new referral, created at `now_ms`; `tz` is the
/// facility's time zone (a birth date is checked against its local day).
pub fn build(
    input: ReferralInput,
    me: &FacilityCode,
    my_kind: FacilityKind,
    number: String,
    now_ms: u64,
    tz: &jiff::tz::TimeZone,
) -> Result<Referral, Refused> {
    let to: FacilityCode = input
        .to
        .parse()
        .map_err(|e: crate::ids::IdError| FieldError {
            field: "to",
            problem: e.to_string(),
        })?;
    if &to == me {
        return Err(FieldError {
            field: "to",
            problem: "a facility cannot refer a patient to itself".into(),
        }
        .into());
    }
    let expected = if my_kind == FacilityKind::CountyHospital {
        Direction::Down
    } else {
        Direction::Up
    };
    let direction = input.direction.unwrap_or(expected);
    if direction != expected {
        return Err(FieldError {
            field: "direction",
            problem: match my_kind {
                FacilityKind::CountyHospital => {
                    "the county hospital refers down (to a township center or village clinic)"
                        .into()
                }
                _ => {
                    "a township center or village clinic refers up (to the county hospital)".into()
                }
            },
        }
        .into());
    }
    let sex = input.sex.trim().to_ascii_uppercase();
    if !matches!(sex.as_str(), "M" | "F" | "U") {
        return Err(FieldError {
            field: "sex",
            problem: "must be M, F or U".into(),
        }
        .into());
    }
    let birth = validate::date("birth_date", &input.birth_date)?;
    let today = super::local_date(now_ms, tz);
    if birth > today {
        return Err(FieldError {
            field: "birth_date",
            problem: "is in the future".into(),
        }
        .into());
    }
    let id_number = match input.id_number.filter(|s| !s.trim().is_empty()) {
        Some(id) => {
            let id = validate::national_id(&id)?;
            if id[6..14] != birth.strftime("%Y%m%d").to_string() {
                return Err(FieldError {
                    field: "id_number",
                    problem: "the birth date inside the number does not match birth_date".into(),
                }
                .into());
            }
            Some(id)
        }
        None => None,
    };
    let (care_plan, follow_up) = (
        validate::optional("care_plan", input.care_plan, 4000)?,
        validate::optional("follow_up", input.follow_up, 4000)?,
    );
    if direction == Direction::Down {
        if care_plan.is_none() {
            return Err(FieldError {
                field: "care_plan",
                problem: "is required for a downward referral".into(),
            }
            .into());
        }
        if follow_up.is_none() {
            return Err(FieldError {
                field: "follow_up",
                problem: "is required for a downward referral".into(),
            }
            .into());
        }
    }
    let results = input
        .results
        .iter()
        .map(|r| {
            r.trim()
                .parse::<crate::ids::DocId>()
                .map(|d| d.to_string())
                .map_err(|_| FieldError {
                    field: "results",
                    problem: format!("{r:?} is not a result document id"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Referral {
        schema: SCHEMA,
        request: Request {
            number,
            direction,
            from: Party {
                facility: me.to_string(),
                department: validate::text("from_department", &input.from_department, 64)?,
            },
            to: Party {
                facility: to.to_string(),
                department: validate::text("to_department", &input.to_department, 64)?,
            },
            patient: Patient {
                name: validate::text("patient_name", &input.patient_name, 64)?,
                sex,
                birth_date: birth.to_string(),
                id_number,
                record_number: validate::optional("record_number", input.record_number, 64)?,
                insurance_card: validate::optional("insurance_card", input.insurance_card, 64)?,
                allergies: validate::optional("allergies", input.allergies, 500)?,
            },
            reason: validate::text("reason", &input.reason, 4000)?,
            icd10: validate::icd10(&input.icd10)?,
            diagnosis: validate::text("diagnosis", &input.diagnosis, 500)?,
            urgency: input.urgency,
            treatment: validate::text("treatment", &input.treatment, 4000)?,
            results,
            care_plan,
            follow_up,
            doctor: validate::text("doctor", &input.doctor, 64)?,
            phone: validate::optional("phone", input.phone, 32)?,
            created_ms: now_ms,
        },
        acts: Vec::new(),
        notes: Vec::new(),
    })
}

/// Reads a referral from its document.
pub fn read(doc: &automerge::Automerge) -> Result<Referral, String> {
    super::read_versioned(doc, "referral", |r: &Referral| r.schema, SCHEMA).map_err(|e| {
        let part = super::part_problem::<u64>(doc, "schema")
            .or_else(|| super::part_problem::<Request>(doc, "request"))
            .or_else(|| super::part_problem::<Vec<Act>>(doc, "acts"))
            .or_else(|| super::part_problem::<Vec<Note>>(doc, "notes"));
        match part {
            Some(why) => format!("not a readable referral: {why}"),
            None => e,
        }
    })
}

/// Writes a referral into its document (only what changed becomes an Automerge change).
pub fn write(doc: &mut automerge::Automerge, r: &Referral) -> Result<(), String> {
    super::write_whole(doc, "referral", r)
}

#[cfg(test)]
pub(crate) mod tests;
