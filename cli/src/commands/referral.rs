//! `yilian referral ...`: two-way referrals.

use std::path::Path;

use anyhow::{Result, bail};
use yilian_node::control::proto::{ReferralSummary, ReferralView, Unreadable};
use yilian_node::control::{Request, Response};
use yilian_node::documents::referral::{ActInput, ActKind, Direction, ReferralInput, Urgency};

use crate::cli::{ExportFormat, ReferralCommand, ReferralCreateArgs};
use crate::connect::one;
use crate::output;
use yilian_node::documents::fhir;

fn act(kind: ActKind) -> ActInput {
    ActInput {
        kind,
        slot: None,
        department: None,
        reason: None,
        keep: None,
    }
}

pub(crate) async fn run(dir: &Path, cmd: ReferralCommand) -> Result<()> {
    let (req, json) = match cmd {
        ReferralCommand::Create(a) => {
            let json = a.json.json;
            (
                Request::ReferralCreate {
                    input: Box::new(input(*a)),
                },
                json,
            )
        }
        ReferralCommand::Accept {
            id,
            slot,
            department,
            json,
        } => (
            Request::ReferralAct {
                id,
                act: ActInput {
                    slot: Some(slot),
                    department: Some(department),
                    ..act(ActKind::Accept)
                },
            },
            json.json,
        ),
        ReferralCommand::Reject { id, reason, json } => (
            Request::ReferralAct {
                id,
                act: ActInput {
                    reason: Some(reason),
                    ..act(ActKind::Reject)
                },
            },
            json.json,
        ),
        ReferralCommand::Arrive { id, json } => (
            Request::ReferralAct {
                id,
                act: act(ActKind::Arrive),
            },
            json.json,
        ),
        ReferralCommand::Complete { id, outcome, json } => (
            Request::ReferralAct {
                id,
                act: ActInput {
                    reason: outcome,
                    ..act(ActKind::Complete)
                },
            },
            json.json,
        ),
        ReferralCommand::Cancel { id, reason, json } => (
            Request::ReferralAct {
                id,
                act: ActInput {
                    reason: Some(reason),
                    ..act(ActKind::Cancel)
                },
            },
            json.json,
        ),
        ReferralCommand::Resolve { id, keep, json } => (
            Request::ReferralAct {
                id,
                act: ActInput {
                    keep: Some(keep),
                    ..act(ActKind::Resolve)
                },
            },
            json.json,
        ),
        ReferralCommand::Note { id, text, json } => (Request::ReferralNote { id, text }, json.json),
        ReferralCommand::Show { id, json } => (Request::ReferralShow { id }, json.json),
        ReferralCommand::List {
            status,
            direction,
            json,
        } => (
            Request::ReferralList {
                status,
                direction,
                conflicts_only: false,
            },
            json.json,
        ),
        ReferralCommand::Conflicts { json } => {
            return conflicts(dir, json.json).await;
        }
        ReferralCommand::Export { id, format, out } => {
            let Response::Referral(v) = one(dir, Request::ReferralShow { id }).await? else {
                bail!("unexpected answer from the node");
            };
            let doc = match format {
                ExportFormat::Fhir => {
                    fhir::referral_bundle(&v.info.id, &v.referral, &v.derived, output::zone())
                }
                ExportFormat::Json => view_json(&v),
            };
            return output::write_json(&doc, out.as_deref());
        }
    };
    match one(dir, req).await? {
        Response::Referral(view) if json => output::json(&view_json(&view)),
        Response::Referral(view) => {
            print_view(&view);
            Ok(())
        }
        Response::Referrals { list, unreadable } => {
            warn_unreadable(&unreadable);
            if json {
                return output::json_timed(&list);
            }
            print_list(&list);
            Ok(())
        }
        _ => bail!("unexpected answer from the node"),
    }
}

fn input(a: ReferralCreateArgs) -> ReferralInput {
    ReferralInput {
        direction: a.direction,
        to: a.to,
        to_department: a.to_department,
        from_department: a.from_department,
        patient_name: a.patient_name,
        sex: a.sex,
        birth_date: a.birth_date,
        id_number: a.id_number,
        record_number: a.record_number,
        insurance_card: a.insurance_card,
        allergies: a.allergies,
        reason: a.reason,
        icd10: a.icd10,
        diagnosis: a.diagnosis,
        urgency: a.urgency,
        treatment: a.treatment,
        results: a.results,
        care_plan: a.care_plan,
        follow_up: a.follow_up,
        doctor: a.doctor,
        phone: a.phone,
    }
}

/// The stable JSON of a referral (documented in docs/cli.md), with RFC 3339 times in the
/// facility's zone beside the millisecond ones.
fn view_json(v: &ReferralView) -> serde_json::Value {
    let mut j = serde_json::json!({
        "id": v.info.id.to_string(),
        "heads": v.info.heads_hex(),
        "status": v.derived.status,
        "slot": v.derived.slot,
        "department": v.derived.department,
        "needs_reconciliation": v.derived.needs_reconciliation(),
        "conflicts": v.derived.conflicts,
        "voided": v.derived.voided,
        "ignored": v.derived.ignored,
        "referral": v.referral,
        "time_zone": output::zone_name(),
    });
    output::add_times(&mut j);
    j
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}

fn urgency(u: Urgency) -> &'static str {
    match u {
        Urgency::Routine => "routine",
        Urgency::GreenChannel => "GREEN CHANNEL",
    }
}

fn print_list(list: &[ReferralSummary]) {
    let mut t = output::table(&[
        "number",
        "id",
        "dir",
        "from -> to",
        "patient",
        "urgency",
        "status",
        "slot",
    ]);
    for r in list {
        t.add_row(vec![
            r.number.clone(),
            r.id.to_string()[..8].to_string(),
            direction(r.direction).to_string(),
            format!("{} -> {}", r.from, r.to),
            r.patient.clone(),
            urgency(r.urgency).to_string(),
            if r.needs_reconciliation {
                format!("{} (NEEDS RECONCILIATION)", r.status.as_str())
            } else {
                r.status.as_str().to_string()
            },
            r.slot.clone().unwrap_or_default(),
        ]);
    }
    output::line(t);
    output::note(format_args!("{} referral(s)", list.len()));
}

fn print_view(v: &ReferralView) {
    let r = &v.referral.request;
    output::line(format_args!("referral {}  ({})", r.number, v.info.id));
    output::line(format_args!(
        "{} {} ({}) -> {} ({}), {}",
        direction(r.direction),
        r.from.facility,
        r.from.department,
        r.to.facility,
        r.to.department,
        urgency(r.urgency)
    ));
    output::line(format_args!(
        "patient: {} {} born {}; diagnosis {} {}",
        r.patient.name, r.patient.sex, r.patient.birth_date, r.icd10, r.diagnosis
    ));
    output::line(format_args!(
        "status: {}{}",
        v.derived.status.as_str(),
        match (&v.derived.slot, &v.derived.department) {
            (Some(s), Some(d)) => format!(", appointment {s} in {d}"),
            _ => String::new(),
        }
    ));
    if !v.referral.acts.is_empty() {
        let mut t = output::table(&["act", "kind", "by", "at", "detail", ""]);
        for a in &v.referral.acts {
            let detail = a
                .slot
                .as_ref()
                .map(|s| format!("{s} {}", a.department.clone().unwrap_or_default()))
                .or_else(|| a.reason.clone())
                .or_else(|| {
                    a.keep
                        .as_ref()
                        .map(|k| format!("keeps {}", &k[..k.len().min(8)]))
                })
                .unwrap_or_default();
            let mark = if v.derived.voided.contains(&a.id) {
                "voided"
            } else if v
                .derived
                .conflicts
                .iter()
                .any(|c| c.acts.iter().any(|x| x.id == a.id))
            {
                "IN CONFLICT"
            } else {
                ""
            };
            t.add_row(vec![
                a.id[..8.min(a.id.len())].to_string(),
                a.kind.as_str().to_string(),
                a.by.clone(),
                output::time(a.at),
                detail,
                mark.to_string(),
            ]);
        }
        output::line(t);
    }
    for c in &v.derived.conflicts {
        output::line(format_args!("NEEDS RECONCILIATION: {}", c.what));
    }
    if v.derived.needs_reconciliation() {
        output::line(format_args!(
            "settle it with: yilian referral resolve {} --keep ACT",
            &v.info.id.to_string()[..8]
        ));
    }
    for n in &v.referral.notes {
        output::line(format_args!(
            "note {} {}: {}",
            output::time(n.at),
            n.by,
            n.text
        ));
    }
}

/// Names, on stderr, the referral documents the node could not read (the list, on stdout,
/// keeps its shape).
fn warn_unreadable(unreadable: &[Unreadable]) {
    if unreadable.is_empty() {
        return;
    }
    output::note(format_args!(
        "warning: {} document(s) of kind referral could not be read and are not listed:",
        unreadable.len()
    ));
    for u in unreadable {
        output::note(format_args!("  {}: {}", u.id, u.reason));
    }
    output::note("  (see the content with: yilian doc show ID)");
}

async fn conflicts(dir: &Path, json: bool) -> Result<()> {
    let Response::Referrals { list, unreadable } = one(
        dir,
        Request::ReferralList {
            status: None,
            direction: None,
            conflicts_only: true,
        },
    )
    .await?
    else {
        bail!("unexpected answer from the node");
    };
    warn_unreadable(&unreadable);
    let mut views = Vec::new();
    for r in &list {
        if let Response::Referral(v) = one(
            dir,
            Request::ReferralShow {
                id: r.id.to_string(),
            },
        )
        .await?
        {
            views.push(v);
        }
    }
    if json {
        return output::json(&views.iter().map(|v| view_json(v)).collect::<Vec<_>>());
    }
    if views.is_empty() {
        output::line("no referral needs reconciliation");
    }
    for v in &views {
        print_view(v);
        output::line("");
    }
    Ok(())
}
