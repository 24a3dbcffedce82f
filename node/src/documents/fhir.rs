//! Export to HL7 FHIR R4 JSON, so hospital information systems can take referrals and results
//! in: a referral becomes a `collection` Bundle of Patient + ServiceRequest + Task; a result a
//! Bundle of Patient + Observation + DiagnosticReport. Local clinic times (`YYYY-MM-DDTHH:MM`)
//! are written with the offset they have in the facility's time zone (+08:00 in China).
//! Resource ids are stable UUIDs derived from the document id.

use serde_json::{Value, json};

use super::referral::{Derived, Direction, Referral, Status, Urgency};
use super::result::{ItemClass, TestResult};
use crate::ids::DocId;

/// OID of the PRC resident identity card number (居民身份证号).
pub const RESIDENT_ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.3";
/// ICD-10 code system.
pub const ICD10_SYSTEM: &str = "http://hl7.org/fhir/sid/icd-10";

fn uuid(doc: &DocId, what: &str) -> String {
    let mut input = doc.as_bytes().to_vec();
    input.extend_from_slice(what.as_bytes());
    let d = ring::digest::digest(&ring::digest::SHA256, &input);
    let b = d.as_ref();
    let mut u = [0u8; 16];
    u.copy_from_slice(&b[..16]);
    u[6] = (u[6] & 0x0f) | 0x50; // name-based
    u[8] = (u[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h: String = u.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A local clinic time (`YYYY-MM-DDTHH:MM[:SS]`) as an RFC 3339 time with its offset in `tz`;
/// other text is returned as it is.
fn local_datetime(s: &str, tz: &jiff::tz::TimeZone) -> String {
    match s.parse::<jiff::civil::DateTime>() {
        Ok(dt) => match dt.to_zoned(tz.clone()) {
            Ok(z) => z.timestamp().display_with_offset(z.offset()).to_string(),
            Err(_) => s.to_string(),
        },
        Err(_) => s.to_string(),
    }
}

fn instant(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn gender(sex: &str) -> &'static str {
    match sex {
        "M" => "male",
        "F" => "female",
        _ => "unknown",
    }
}

fn patient(
    doc: &DocId,
    name: &str,
    sex: &str,
    birth: &str,
    id_number: Option<&str>,
) -> (String, Value) {
    let id = uuid(doc, "Patient");
    let mut p = json!({
        "resourceType": "Patient",
        "id": id,
        "name": [{ "text": name }],
        "gender": gender(sex),
        "birthDate": birth,
    });
    if let Some(n) = id_number {
        p["identifier"] = json!([{ "system": RESIDENT_ID_SYSTEM, "value": n }]);
    }
    (id, p)
}

fn entry(id: &str, resource: Value) -> Value {
    json!({ "fullUrl": format!("urn:uuid:{id}"), "resource": resource })
}

/// A referral as a FHIR R4 Bundle (Patient, ServiceRequest, Task); `tz` is the facility's time
/// zone, in which its appointment slots are written.
pub fn referral_bundle(doc: &DocId, r: &Referral, d: &Derived, tz: &jiff::tz::TimeZone) -> Value {
    let q = &r.request;
    let (pid, patient) = patient(
        doc,
        &q.patient.name,
        &q.patient.sex,
        &q.patient.birth_date,
        q.patient.id_number.as_deref(),
    );
    let sr_id = uuid(doc, "ServiceRequest");
    let task_id = uuid(doc, "Task");
    let sr_status = match d.status {
        Status::Completed => "completed",
        Status::Rejected | Status::Cancelled => "revoked",
        _ if d.needs_reconciliation() => "on-hold",
        _ => "active",
    };
    let task_status = if d.needs_reconciliation() {
        "on-hold"
    } else {
        match d.status {
            Status::Requested => "requested",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Arrived => "in-progress",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    };
    let direction = match q.direction {
        Direction::Up => "upward referral (上转)",
        Direction::Down => "downward referral (下转)",
    };
    let mut notes = vec![json!({ "text": q.reason })];
    if let Some(p) = &q.care_plan {
        notes.push(json!({ "text": format!("Care plan: {p}") }));
    }
    if let Some(f) = &q.follow_up {
        notes.push(json!({ "text": format!("Follow-up: {f}") }));
    }
    let mut sr = json!({
        "resourceType": "ServiceRequest",
        "id": sr_id,
        "identifier": [{ "system": "urn:yilian:referral-number", "value": q.number }],
        "status": sr_status,
        "intent": "order",
        "priority": if q.urgency == Urgency::GreenChannel { "urgent" } else { "routine" },
        "code": { "text": direction },
        "subject": { "reference": format!("urn:uuid:{pid}") },
        "authoredOn": instant(q.created_ms),
        "requester": { "display": format!("{} {} ({})", q.from.facility, q.from.department, q.doctor) },
        "performer": [{ "display": format!("{} {}", q.to.facility, q.to.department) }],
        "reasonCode": [{
            "coding": [{ "system": ICD10_SYSTEM, "code": q.icd10, "display": q.diagnosis }],
            "text": q.diagnosis,
        }],
        "note": notes,
    });
    if !q.results.is_empty() {
        sr["supportingInfo"] = Value::Array(
            q.results
                .iter()
                .map(|r| json!({ "display": format!("yilian result {r}") }))
                .collect(),
        );
    }
    let mut task = json!({
        "resourceType": "Task",
        "id": task_id,
        "status": task_status,
        "intent": "order",
        "focus": { "reference": format!("urn:uuid:{sr_id}") },
        "for": { "reference": format!("urn:uuid:{pid}") },
        "authoredOn": instant(q.created_ms),
        "requester": { "display": q.from.facility },
        "owner": { "display": q.to.facility },
        "businessStatus": { "text": d.status.as_str() },
    });
    if d.needs_reconciliation() {
        task["statusReason"] = json!({ "text": d.conflicts.iter().map(|c| c.what.clone()).collect::<Vec<_>>().join("; ") });
    }
    if let (Some(slot), Some(dept)) = (&d.slot, &d.department) {
        task["restriction"] = json!({ "period": { "start": local_datetime(slot, tz) } });
        task["note"] = json!([{ "text": format!("Appointment {slot} in {dept}") }]);
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(crate::documents::now_ms()),
        "entry": [entry(&pid, patient), entry(&sr_id, sr), entry(&task_id, task)],
    })
}

/// A result as a FHIR R4 Bundle (Patient, Observation, DiagnosticReport); `tz` is the
/// facility's time zone, in which the time taken is written.
pub fn result_bundle(
    doc: &DocId,
    r: &TestResult,
    superseded_by: Option<&DocId>,
    tz: &jiff::tz::TimeZone,
) -> Value {
    let (pid, patient) = patient(
        doc,
        &r.patient.name,
        &r.patient.sex,
        &r.patient.birth_date,
        r.patient.id_number.as_deref(),
    );
    let obs_id = uuid(doc, "Observation");
    let rep_id = uuid(doc, "DiagnosticReport");
    let status = if r.supersedes.is_some() {
        "corrected"
    } else {
        "final"
    };
    let (cat_code, cat_display, svc) = match r.item.class {
        ItemClass::Lab => ("laboratory", "Laboratory", "LAB"),
        ItemClass::Imaging => ("imaging", "Imaging", "RAD"),
    };
    let system = match r.item.system.as_str() {
        "loinc" => "http://loinc.org".to_string(),
        "ws-t-886" => "urn:yilian:ws-t-886".to_string(),
        _ => format!("urn:yilian:local:{}", r.facility),
    };
    let code = json!({
        "coding": [{ "system": system, "code": r.item.code, "display": r.item.name }],
        "text": r.item.name,
    });
    let category = json!([{
        "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": cat_code,
            "display": cat_display,
        }]
    }]);
    let when = local_datetime(&r.taken_at, tz);
    let mut obs = json!({
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "category": category,
        "code": code,
        "subject": { "reference": format!("urn:uuid:{pid}") },
        "effectiveDateTime": when,
        "performer": [{ "display": format!("{} ({})", r.facility, r.clinician) }],
    });
    match (
        r.value.as_deref().and_then(|v| v.parse::<f64>().ok()),
        &r.value,
    ) {
        (Some(n), _) => {
            obs["valueQuantity"] =
                json!({ "value": n, "unit": r.unit.clone().unwrap_or_default() });
        }
        (None, Some(v)) => obs["valueString"] = json!(v),
        (None, None) => obs["valueString"] = json!(r.text.clone().unwrap_or_default()),
    }
    if let Some(flag) = r
        .abnormal
        .as_deref()
        .filter(|f| ["H", "L", "A", "N", "HH", "LL"].contains(f))
    {
        obs["interpretation"] = json!([{
            "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag }]
        }]);
    }
    if let Some(range) = &r.reference_range {
        obs["referenceRange"] = json!([{ "text": range }]);
    }
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "id": rep_id,
        "status": status,
        "category": [{
            "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": svc }]
        }],
        "code": code,
        "subject": { "reference": format!("urn:uuid:{pid}") },
        "effectiveDateTime": when,
        "performer": [{ "display": r.facility }],
        "result": [{ "reference": format!("urn:uuid:{obs_id}") }],
    });
    if let Some(text) = &r.text {
        report["conclusion"] = json!(text);
    }
    if let Some(by) = superseded_by {
        report["extension"] = json!([{
            "url": "urn:yilian:superseded-by",
            "valueString": by.to_string(),
        }]);
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(crate::documents::now_ms()),
        "entry": [entry(&pid, patient), entry(&obs_id, obs), entry(&rep_id, report)],
    })
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    #[test]
    fn clinic_times_carry_the_offset_of_the_facility_s_zone() {
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(
            super::local_datetime("2026-11-20T08:00", &shanghai),
            "2026-11-20T08:00:00+08:00"
        );
        // Summer time where a zone has it.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            super::local_datetime("2026-07-01T09:30", &berlin),
            "2026-07-01T09:30:00+02:00"
        );
        assert_eq!(super::local_datetime("soon", &shanghai), "soon");
    }
}
