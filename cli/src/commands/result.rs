//! `yilian result ...` and `yilian qc ...`: results and their mutual recognition.

use std::path::Path;

use anyhow::{Result, bail};
use yilian_node::control::proto::ResultView;
use yilian_node::control::{Request, Response};
use yilian_node::documents::result::{QcInput, ResultInput};

use crate::cli::{ExportFormat, FacilityCommand, QcCommand, ResultArgs, ResultCommand};
use crate::connect::one;
use crate::output;
use yilian_node::documents::fhir;

fn input(a: ResultArgs) -> Box<ResultInput> {
    Box::new(ResultInput {
        patient_name: a.patient_name,
        sex: a.sex,
        birth_date: a.birth_date,
        id_number: a.id_number,
        item_code: a.item_code,
        item_system: a.item_system,
        item_name: a.item_name,
        class: a.class,
        value: a.value,
        unit: a.unit,
        text: a.text,
        reference_range: a.reference_range,
        abnormal: a.abnormal,
        taken_at: a.taken_at,
        clinician: a.clinician,
    })
}

fn view_json(v: &ResultView) -> serde_json::Value {
    let mut j = serde_json::json!({
        "id": v.info.id.to_string(),
        "heads": v.info.heads_hex(),
        "superseded_by": v.superseded_by.map(|d| d.to_string()),
        "result": v.result,
        "time_zone": output::zone_name(),
    });
    output::add_times(&mut j);
    j
}

fn print(v: &ResultView) {
    let r = &v.result;
    output::line(format_args!(
        "result {} at {} ({}): {} {} [{} {}] = {}{} {}",
        v.info.id,
        r.facility,
        r.taken_at,
        r.item.class.as_str(),
        r.item.name,
        r.item.system,
        r.item.code,
        r.value
            .clone()
            .or_else(|| r.text.clone())
            .unwrap_or_default(),
        r.unit.as_ref().map(|u| format!(" {u}")).unwrap_or_default(),
        r.abnormal.clone().unwrap_or_default()
    ));
    output::line(format_args!(
        "patient: {} {} born {}",
        r.patient.name, r.patient.sex, r.patient.birth_date
    ));
    if let Some(s) = &r.supersedes {
        output::line(format_args!("corrects {s}"));
    }
    if let Some(by) = v.superseded_by {
        output::line(format_args!("SUPERSEDED by {by}"));
    }
    for t in &r.retests {
        output::line(format_args!(
            "re-tested by {} on {}: {:?}{}",
            t.by,
            output::time(t.at),
            t.reason,
            t.text
                .as_ref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        ));
    }
}

pub(crate) async fn run(dir: &Path, cmd: ResultCommand) -> Result<()> {
    let (req, json) = match cmd {
        ResultCommand::Add {
            result,
            audience,
            json,
        } => (
            Request::ResultAdd {
                input: input(*result),
                audience,
            },
            json.json,
        ),
        ResultCommand::Correct { id, result, json } => (
            Request::ResultCorrect {
                id,
                input: input(*result),
            },
            json.json,
        ),
        ResultCommand::Check { id, at, json } => (Request::ResultCheck { id, on: at }, json.json),
        ResultCommand::Retest {
            id,
            reason,
            text,
            json,
        } => (Request::ResultRetest { id, reason, text }, json.json),
        ResultCommand::Show { id, json } => (Request::ResultShow { id }, json.json),
        ResultCommand::List { json } => (Request::ResultList, json.json),
        ResultCommand::Export { id, format, out } => {
            let Response::Result(v) = one(dir, Request::ResultShow { id }).await? else {
                bail!("unexpected answer from the node");
            };
            let doc = match format {
                ExportFormat::Fhir => fhir::result_bundle(
                    &v.info.id,
                    &v.result,
                    v.superseded_by.as_ref(),
                    output::zone(),
                ),
                ExportFormat::Json => view_json(&v),
            };
            return output::write_json(&doc, out.as_deref());
        }
    };
    match one(dir, req).await? {
        Response::Result(v) if json => output::json(&view_json(&v)),
        Response::Result(v) => {
            print(&v);
            Ok(())
        }
        Response::Results(list) if json => {
            output::json(&list.iter().map(view_json).collect::<Vec<_>>())
        }
        Response::Results(list) => {
            let mut t = output::table(&["id", "taken", "facility", "item", "value", "status"]);
            for v in &list {
                t.add_row(vec![
                    v.info.id.to_string()[..8].to_string(),
                    v.result.taken_at.clone(),
                    v.result.facility.clone(),
                    format!("{} ({})", v.result.item.name, v.result.item.code),
                    v.result.value.clone().unwrap_or_else(|| "report".into()),
                    if v.superseded_by.is_some() {
                        "superseded".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            output::line(t);
            Ok(())
        }
        Response::Recognition {
            result,
            decision,
            on,
        } if json => output::json(&serde_json::json!({
            "id": result.info.id.to_string(),
            "on": on,
            "recognised": decision.recognised,
            "mark": decision.mark.map(|(label, scope)| serde_json::json!({"label": label, "scope": scope})),
            "certification": decision.certification,
            "reasons": decision.reasons,
        })),
        Response::Recognition {
            result,
            decision,
            on,
        } => {
            print(&result);
            match &decision.mark {
                Some((label, scope)) => {
                    output::line(format_args!("RECOGNISED on {on}: mark {label} ({scope})"))
                }
                None => output::line(format_args!("NOT RECOGNISED on {on}")),
            }
            for r in &decision.reasons {
                output::line(format_args!("  - {r}"));
            }
            Ok(())
        }
        _ => bail!("unexpected answer from the node"),
    }
}

pub(crate) async fn qc(dir: &Path, cmd: QcCommand) -> Result<()> {
    let (req, json) = match cmd {
        QcCommand::Add {
            number,
            facility,
            items,
            classes,
            issuer,
            level,
            valid_from,
            valid_to,
            json,
        } => (
            Request::QcAdd {
                input: Box::new(QcInput {
                    number,
                    facility,
                    items,
                    classes,
                    issuer,
                    level,
                    valid_from,
                    valid_to,
                }),
            },
            json.json,
        ),
        QcCommand::List { json } => (Request::QcList, json.json),
    };
    let Response::QcCerts(certs) = one(dir, req).await? else {
        bail!("unexpected answer from the node");
    };
    if json {
        return output::json(
            &certs
                .iter()
                .map(|(id, c)| serde_json::json!({"id": id.to_string(), "certification": c}))
                .collect::<Vec<_>>(),
        );
    }
    let mut t = output::table(&["number", "facility", "covers", "issuer", "valid"]);
    for (_, c) in &certs {
        let mut covers: Vec<String> = c.items.clone();
        covers.extend(c.classes.iter().map(|k| format!("all {}", k.as_str())));
        t.add_row(vec![
            c.number.clone(),
            c.facility.clone(),
            covers.join(", "),
            format!("{} ({})", c.issuer, c.level),
            format!("{} .. {}", c.valid_from, c.valid_to),
        ]);
    }
    output::line(t);
    Ok(())
}

pub(crate) async fn facilities(dir: &Path, cmd: FacilityCommand) -> Result<()> {
    let FacilityCommand::List { json } = cmd;
    let Response::Facilities(list) = one(dir, Request::FacilityList).await? else {
        bail!("unexpected answer from the node");
    };
    if json.json {
        return output::json_timed(&list);
    }
    let mut t = output::table(&["code", "name", "kind", "node", "last met"]);
    for f in &list {
        t.add_row(vec![
            f.code.clone(),
            f.name.clone(),
            f.kind.to_string(),
            f.node.to_string()[..12].to_string(),
            output::time(f.seen_ms),
        ]);
    }
    output::line(t);
    Ok(())
}
