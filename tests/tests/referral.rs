//! Referrals through the real binary and real sync (issue 5): the workflow, refused
//! transitions and field errors, and an offline conflict that both nodes show and that a
//! resolution on one node clears on both.

use std::path::Path;
use std::time::Duration;

use yilian_tests::*;

const WAIT: Duration = Duration::from_secs(60);

/// `referral create` arguments for a valid upward referral, with some flags replaced.
fn create_args(replace: &[(&str, &str)]) -> Vec<String> {
    let base = [
        ("--to", "CH-01"),
        ("--to-department", "General surgery"),
        ("--from-department", "Outpatient"),
        ("--patient-name", "王五"),
        ("--sex", "F"),
        ("--birth-date", "1949-12-31"),
        ("--id-number", "11010519491231002X"),
        ("--reason", "RLQ pain 12 h, fever 38.2"),
        ("--icd10", "K35.800"),
        ("--diagnosis", "acute appendicitis, suspected"),
        ("--urgency", "green-channel"),
        ("--treatment", "IV fluids"),
        ("--doctor", "Dr. Li"),
    ];
    let mut args = vec!["referral".to_string(), "create".to_string()];
    for (flag, value) in base {
        let value = replace
            .iter()
            .find(|(f, _)| *f == flag)
            .map_or(value, |(_, v)| *v);
        args.extend([flag.to_string(), value.to_string()]);
    }
    args
}

fn create(tc: &Path, replace: &[(&str, &str)]) -> String {
    let mut args = create_args(replace);
    args.push("--json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json(tc, &args)["id"].as_str().unwrap().to_string()
}

fn create_fails(tc: &Path, replace: &[(&str, &str)]) -> (i32, String) {
    let args = create_args(replace);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(tc, &args)
}

fn show(dir: &Path, id: &str) -> serde_json::Value {
    json(dir, &["referral", "show", id, "--json"])
}

#[test]
fn a_referral_goes_up_is_accepted_arrives_and_completes_with_refusals_on_the_way() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Referral A");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let _c = NodeProcess::start(&ch);
    let t = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);

    // Field errors name the field; identifiers are not echoed.
    let (code, err) = create_fails(&tc, &[("--id-number", "110105194912310021")]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("id_number")
            && err.contains("check character")
            && !err.contains("110105194912310021"),
        "{err}"
    );
    let (_, err) = create_fails(&tc, &[("--icd10", "appendix")]);
    assert!(err.contains("icd10"), "{err}");

    // Once the township has met the county, a mistyped target is caught.
    wait_until(WAIT, "the township to meet the county", || {
        connected_to(&tc, "CH-01")
    });
    let facilities = json(&tc, &["facility", "list", "--json"]);
    assert_eq!(facilities[0]["code"], "CH-01");
    assert_eq!(facilities[0]["kind"], "county-hospital");
    let (code, err) = create_fails(&tc, &[("--to", "CH-10")]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("to: CH-10 is not a facility of the alliance"),
        "{err}"
    );

    let id = create(&tc, &[]);
    assert_eq!(show(&tc, &id)["status"], "requested");
    assert!(
        !t.log_text().contains("王五") && !t.log_text().contains("11010519491231002X"),
        "patient data in the log"
    );

    // The sender may not accept its own request.
    let (code, err) = fails(
        &tc,
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-12-01T09:30",
            "--department",
            "Surgery",
        ],
    );
    assert_eq!(code, 4);
    assert!(err.contains("only the receiving facility CH-01"), "{err}");

    wait_until(WAIT, "the referral to reach the county", || {
        heads_of(&ch, &id).is_some()
    });
    let (_, err) = fails(&ch, &["referral", "arrive", &id]);
    assert!(err.contains("it is requested"), "{err}");
    ok(
        &ch,
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-12-01T09:30",
            "--department",
            "General surgery",
        ],
    );
    ok(
        &ch,
        &["referral", "note", &id, "--text", "bring previous CT"],
    );
    wait_until(WAIT, "the acceptance to reach the township", || {
        show(&tc, &id)["status"] == "accepted"
    });
    assert_eq!(show(&tc, &id)["slot"], "2026-12-01T09:30");
    ok(&ch, &["referral", "arrive", &id]);
    ok(
        &ch,
        &[
            "referral",
            "complete",
            &id,
            "--outcome",
            "appendectomy, discharged day 3",
        ],
    );
    wait_until(WAIT, "completion to reach the township", || {
        show(&tc, &id)["status"] == "completed"
    });
    let (_, err) = fails(&tc, &["referral", "cancel", &id, "--reason", "too late"]);
    assert!(err.contains("already completed"), "{err}");

    let up = json(&ch, &["referral", "list", "--direction", "up", "--json"]);
    assert_eq!(up.as_array().unwrap().len(), 1);
    assert!(
        json(
            &ch,
            &["referral", "list", "--status", "requested", "--json"]
        )
        .as_array()
        .unwrap()
        .is_empty()
    );
}

#[test]
fn offline_cancel_and_accept_show_as_one_conflict_on_both_nodes_until_resolved() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Referral B");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let _c = NodeProcess::start(&ch);
    let _t = NodeProcess::start(&tc);
    let county = node_addr(&ch).to_string();
    ok(&tc, &["peer", "add", "--addr", &county]);
    let id = create(&tc, &[]);
    wait_until(WAIT, "the referral to reach the county", || {
        heads_of(&ch, &id).is_some()
    });

    // The link goes down; both sides act.
    ok(&tc, &["peer", "remove", "--addr", &county]);
    wait_until(WAIT, "the link to drop", || !connected_to(&ch, "TC-01"));
    ok(
        &tc,
        &[
            "referral",
            "cancel",
            &id,
            "--reason",
            "patient chose another hospital",
        ],
    );
    ok(
        &ch,
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-12-01T09:30",
            "--department",
            "General surgery",
        ],
    );
    ok(&tc, &["peer", "add", "--addr", &county]);
    wait_converged(&[&ch, &tc], &id, WAIT);

    let on_ch = show(&ch, &id);
    let on_tc = show(&tc, &id);
    assert_eq!(on_ch["needs_reconciliation"], true);
    assert_eq!(
        on_ch["conflicts"], on_tc["conflicts"],
        "both nodes show the same conflict"
    );
    let acts = on_ch["conflicts"][0]["acts"].as_array().unwrap();
    let kinds: Vec<&str> = acts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"accept") && kinds.contains(&"cancel"),
        "{kinds:?}"
    );
    assert!(
        acts.iter().all(|a| a["by"].is_string() && a["at"].is_u64()),
        "author and time shown"
    );
    let listed = json(&tc, &["referral", "conflicts", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (_, err) = fails(&ch, &["referral", "arrive", &id]);
    assert!(err.contains("needs reconciliation"), "{err}");
    // The township may not resolve; the county may.
    let cancel_id = acts.iter().find(|a| a["kind"] == "cancel").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, err) = fails(&tc, &["referral", "resolve", &id, "--keep", &cancel_id]);
    assert!(err.contains("county hospital"), "{err}");
    ok(
        &ch,
        &["referral", "resolve", &id, "--keep", &cancel_id[..6]],
    );
    wait_converged(&[&ch, &tc], &id, WAIT);
    for d in [&ch, &tc] {
        let v = show(d, &id);
        assert_eq!(v["needs_reconciliation"], false);
        assert_eq!(v["status"], "cancelled");
        assert_eq!(
            v["referral"]["acts"].as_array().unwrap().len(),
            3,
            "no act lost"
        );
        assert!(
            json(d, &["referral", "conflicts", "--json"])
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}

fn result_args<'a>(taken: &'a str, value: &'a str) -> Vec<&'a str> {
    vec![
        "--patient-name",
        "赵六",
        "--sex",
        "M",
        "--birth-date",
        "1970-01-01",
        "--item-code",
        "0100101A",
        "--item-name",
        "White blood cell count",
        "--class",
        "lab",
        "--value",
        value,
        "--unit",
        "10^9/L",
        "--reference-range",
        "3.5-9.5",
        "--abnormal",
        "H",
        "--taken-at",
        taken,
        "--clinician",
        "Dr. Qian",
    ]
}

fn check(dir: &Path, id: &str, on: &str) -> serde_json::Value {
    json(dir, &["result", "check", id, "--at", on, "--json"])
}

#[test]
fn results_are_recognised_across_the_alliance_and_corrections_supersede() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Results");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let _c = NodeProcess::start(&ch);
    let _t = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);

    let mut add = vec!["result", "add", "--json"];
    add.extend(result_args("2026-11-20T08:00", "13.1"));
    let id = json(&tc, &add)["id"].as_str().unwrap().to_string();
    wait_until(WAIT, "the result to reach the county", || {
        heads_of(&ch, &id).is_some()
    });

    // A township may not record certifications.
    let (_, err) = fails(
        &tc,
        &[
            "qc",
            "add",
            "--number",
            "X",
            "--facility",
            "TC-01",
            "--items",
            "0100101A",
            "--issuer",
            "me",
            "--level",
            "city",
            "--valid-from",
            "2026-01-01",
            "--valid-to",
            "2026-12-31",
        ],
    );
    assert!(err.contains("qc role"), "{err}");
    // The only certification expired the day before the test.
    ok(
        &ch,
        &[
            "qc",
            "add",
            "--number",
            "QC-OLD",
            "--facility",
            "TC-01",
            "--items",
            "0100101A",
            "--issuer",
            "Provincial lab center",
            "--level",
            "province",
            "--valid-from",
            "2025-11-20",
            "--valid-to",
            "2026-11-19",
        ],
    );
    let d = check(&ch, &id, "2026-11-21");
    assert_eq!(d["recognised"], false);
    assert!(
        d["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not valid on the test day 2026-11-20"),
        "{d}"
    );
    // A renewed certification covering the test day: recognised inside the window, not a day after.
    ok(
        &ch,
        &[
            "qc",
            "add",
            "--number",
            "QC-NEW",
            "--facility",
            "TC-01",
            "--classes",
            "lab",
            "--issuer",
            "Provincial lab center",
            "--level",
            "province",
            "--valid-from",
            "2026-11-20",
            "--valid-to",
            "2027-11-19",
        ],
    );
    let d = check(&ch, &id, "2026-11-27");
    assert_eq!(d["recognised"], true, "{d}");
    assert_eq!(d["mark"]["label"], "HR");
    assert_eq!(
        check(&ch, &id, "2026-11-28")["recognised"],
        false,
        "one day outside the 7-day lab window"
    );
    // Certifications are alliance-wide: the township reaches the same decision.
    wait_until(WAIT, "the certifications to reach the township", || {
        json(&tc, &["qc", "list", "--json"])
            .as_array()
            .unwrap()
            .len()
            == 2
    });
    assert_eq!(check(&tc, &id, "2026-11-27")["recognised"], true);

    // Only the performing facility corrects; the correction supersedes the original.
    let mut correct = vec!["result", "correct", id.as_str(), "--json"];
    correct.extend(result_args("2026-11-20T08:00", "11.3"));
    let (_, err) = fails(&ch, &correct);
    assert!(err.contains("only the performing facility TC-01"), "{err}");
    let fixed = json(&tc, &correct)["id"].as_str().unwrap().to_string();
    assert_ne!(fixed, id);
    let d = check(&tc, &id, "2026-11-21");
    assert_eq!(d["recognised"], false);
    assert!(
        d["reasons"][0].as_str().unwrap().contains("superseded"),
        "{d}"
    );
    assert_eq!(check(&tc, &fixed, "2026-11-21")["recognised"], true);
    assert_eq!(
        json(&tc, &["result", "show", &id, "--json"])["result"]["value"],
        "13.1",
        "never edited in place"
    );

    // A re-test is recorded with its coded reason and reaches the performing facility.
    let (_, err) = fails(&ch, &["result", "retest", &fixed, "--reason", "other"]);
    assert!(err.contains("text"), "{err}");
    ok(
        &ch,
        &[
            "result",
            "retest",
            &fixed,
            "--reason",
            "condition-changed",
            "--text",
            "fever rose overnight",
        ],
    );
    wait_until(WAIT, "the re-test to reach the township", || {
        json(&tc, &["result", "show", &fixed, "--json"])["result"]["retests"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    });
    let shown = json(&tc, &["result", "show", &fixed, "--json"]);
    assert_eq!(shown["result"]["retests"][0]["reason"], "condition-changed");
    assert_eq!(shown["result"]["retests"][0]["by"], "CH-01");
}

/// Checks a FHIR R4 Bundle against the structure of the resources it claims: required
/// elements, the value sets used, references that resolve inside the bundle, and formats.
fn check_fhir_bundle(b: &serde_json::Value) -> Vec<String> {
    let mut errs = Vec::new();
    let mut need = |cond: bool, what: String| {
        if !cond {
            errs.push(what);
        }
    };
    need(b["resourceType"] == "Bundle", "Bundle.resourceType".into());
    need(
        [
            "document",
            "message",
            "transaction",
            "transaction-response",
            "batch",
            "batch-response",
            "history",
            "searchset",
            "collection",
        ]
        .contains(&b["type"].as_str().unwrap_or("")),
        "Bundle.type value set".into(),
    );
    let entries = b["entry"].as_array().cloned().unwrap_or_default();
    let urls: Vec<String> = entries
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap_or("").to_string())
        .collect();
    let kind_of = |reference: &serde_json::Value| -> Option<String> {
        let r = reference["reference"].as_str()?;
        entries.iter().find(|e| e["fullUrl"] == r).map(|e| {
            e["resource"]["resourceType"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
    };
    let id_ok = |v: &serde_json::Value| {
        v.as_str().is_some_and(|s| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        })
    };
    // FHIR dateTime: a date, or a date and time with seconds and a time zone.
    let datetime_ok = |v: &serde_json::Value| {
        v.as_str().is_some_and(|s| {
            s.parse::<jiff::Timestamp>().is_ok()
                || (s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok())
        })
    };
    for (e, url) in entries.iter().zip(&urls) {
        let r = &e["resource"];
        let t = r["resourceType"].as_str().unwrap_or("");
        need(url.starts_with("urn:uuid:"), format!("{t}: fullUrl"));
        need(id_ok(&r["id"]), format!("{t}.id format"));
        match t {
            "Patient" => {
                need(
                    ["male", "female", "other", "unknown"]
                        .contains(&r["gender"].as_str().unwrap_or("")),
                    "Patient.gender value set".into(),
                );
                need(
                    r["birthDate"]
                        .as_str()
                        .is_some_and(|d| d.parse::<jiff::civil::Date>().is_ok()),
                    "Patient.birthDate".into(),
                );
            }
            "ServiceRequest" => {
                need(
                    [
                        "draft",
                        "active",
                        "on-hold",
                        "revoked",
                        "completed",
                        "entered-in-error",
                        "unknown",
                    ]
                    .contains(&r["status"].as_str().unwrap_or("")),
                    "ServiceRequest.status".into(),
                );
                need(
                    [
                        "proposal",
                        "plan",
                        "directive",
                        "order",
                        "original-order",
                        "reflex-order",
                        "filler-order",
                        "instance-order",
                        "option",
                    ]
                    .contains(&r["intent"].as_str().unwrap_or("")),
                    "ServiceRequest.intent".into(),
                );
                need(
                    ["routine", "urgent", "asap", "stat"]
                        .contains(&r["priority"].as_str().unwrap_or("")),
                    "ServiceRequest.priority".into(),
                );
                need(
                    kind_of(&r["subject"]).as_deref() == Some("Patient"),
                    "ServiceRequest.subject -> Patient".into(),
                );
                need(
                    datetime_ok(&r["authoredOn"]),
                    "ServiceRequest.authoredOn".into(),
                );
                need(
                    r["reasonCode"][0]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10",
                    "ServiceRequest.reasonCode ICD-10".into(),
                );
            }
            "Task" => {
                need(
                    [
                        "draft",
                        "requested",
                        "received",
                        "accepted",
                        "rejected",
                        "ready",
                        "cancelled",
                        "in-progress",
                        "on-hold",
                        "failed",
                        "completed",
                        "entered-in-error",
                    ]
                    .contains(&r["status"].as_str().unwrap_or("")),
                    "Task.status".into(),
                );
                need(
                    [
                        "unknown",
                        "proposal",
                        "plan",
                        "order",
                        "original-order",
                        "reflex-order",
                        "filler-order",
                        "instance-order",
                        "option",
                    ]
                    .contains(&r["intent"].as_str().unwrap_or("")),
                    "Task.intent".into(),
                );
                need(
                    kind_of(&r["focus"]).as_deref() == Some("ServiceRequest"),
                    "Task.focus -> ServiceRequest".into(),
                );
                need(
                    kind_of(&r["for"]).as_deref() == Some("Patient"),
                    "Task.for -> Patient".into(),
                );
            }
            "Observation" => {
                need(
                    [
                        "registered",
                        "preliminary",
                        "final",
                        "amended",
                        "corrected",
                        "cancelled",
                        "entered-in-error",
                        "unknown",
                    ]
                    .contains(&r["status"].as_str().unwrap_or("")),
                    "Observation.status".into(),
                );
                need(
                    r["code"]["coding"][0]["code"].is_string(),
                    "Observation.code".into(),
                );
                need(
                    kind_of(&r["subject"]).as_deref() == Some("Patient"),
                    "Observation.subject -> Patient".into(),
                );
                need(
                    datetime_ok(&r["effectiveDateTime"]),
                    "Observation.effectiveDateTime".into(),
                );
                need(
                    r["valueQuantity"]["value"].is_number() || r["valueString"].is_string(),
                    "Observation.value[x]".into(),
                );
            }
            "DiagnosticReport" => {
                need(
                    [
                        "registered",
                        "partial",
                        "preliminary",
                        "final",
                        "amended",
                        "corrected",
                        "appended",
                        "cancelled",
                        "entered-in-error",
                        "unknown",
                    ]
                    .contains(&r["status"].as_str().unwrap_or("")),
                    "DiagnosticReport.status".into(),
                );
                need(
                    r["code"]["coding"][0]["code"].is_string(),
                    "DiagnosticReport.code".into(),
                );
                need(
                    kind_of(&r["subject"]).as_deref() == Some("Patient"),
                    "DiagnosticReport.subject -> Patient".into(),
                );
                need(
                    r["result"].as_array().is_some_and(|a| {
                        a.iter()
                            .all(|x| kind_of(x).as_deref() == Some("Observation"))
                    }),
                    "DiagnosticReport.result -> Observation".into(),
                );
            }
            other => need(false, format!("unexpected resource {other}")),
        }
    }
    errs
}

#[test]
fn fhir_exports_have_the_structure_of_the_r4_resources_they_claim() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "FHIR");
    let tc = alliance.node("TC-01", "township-center", "");
    // Clinic times carry the offset of the facility's zone.
    set_time_zone(&tc, "Asia/Shanghai");
    let id = create(&tc, &[]);
    let bundle = json(&tc, &["referral", "export", &id, "--format", "fhir"]);
    let types: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Patient", "ServiceRequest", "Task"]);
    assert_eq!(check_fhir_bundle(&bundle), Vec::<String>::new());
    assert_eq!(
        bundle["entry"][1]["resource"]["priority"], "urgent",
        "green channel"
    );
    assert_eq!(bundle["entry"][2]["resource"]["status"], "requested");
    assert_eq!(
        bundle["entry"][0]["resource"]["identifier"][0]["value"],
        "11010519491231002X"
    );
    // The checker itself catches a broken bundle.
    let mut broken = bundle.clone();
    broken["entry"][1]["resource"]["status"] = serde_json::json!("pending");
    broken["entry"][2]["resource"]["focus"]["reference"] = serde_json::json!("urn:uuid:nowhere");
    assert_eq!(check_fhir_bundle(&broken).len(), 2);

    let mut add = vec!["result", "add", "--json"];
    add.extend(result_args("2026-11-20T08:00", "13.1"));
    let rid = json(&tc, &add)["id"].as_str().unwrap().to_string();
    let out = tmp.path().join("result.fhir.json");
    ok(
        &tc,
        &[
            "result",
            "export",
            &rid,
            "--format",
            "fhir",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let rb: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let types: Vec<&str> = rb["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Patient", "Observation", "DiagnosticReport"]);
    assert_eq!(check_fhir_bundle(&rb), Vec::<String>::new());
    assert_eq!(rb["entry"][1]["resource"]["valueQuantity"]["value"], 13.1);
    assert_eq!(
        rb["entry"][1]["resource"]["effectiveDateTime"],
        "2026-11-20T08:00:00+08:00"
    );
}

/// A peer shows as connected a moment before its sync session records its facility; from
/// the moment `peer list` shows it, `facility list` and the target checks must know it too.
/// The client here connects and never opens a sync stream, so its session never gets as far
/// as recording it: only the live connection can make it known.
#[test]
fn a_facility_is_known_from_the_moment_its_node_shows_connected() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Referral C");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let _c = NodeProcess::start(&ch);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ep, _conn) = rt.block_on(enrolled_client(&alliance.ca, "TC-07", node_addr(&ch)));
    wait_until(WAIT, "the county to show TC-07 connected", || {
        connected_to(&ch, "TC-07")
    });
    let facilities = json(&ch, &["facility", "list", "--json"]);
    let codes: Vec<&str> = facilities
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"TC-07"), "{facilities}");
    ep.close(0u32.into(), b"done");
}
