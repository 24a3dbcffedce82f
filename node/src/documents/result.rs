//! Test-result mutual recognition (检查检验结果互认).
//!
//! # Layout (schema 1, mapped with autosurgeon)
//!
//! A result document (`kind = result`): `{ schema, patient, item, value, unit, text,
//! reference_range, abnormal, taken_at, facility, clinician, supersedes, retests: [Retest] }`.
//! Results are never edited in place: a correction is a new result document whose `supersedes`
//! names the old one. The only later writes are re-test records appended by the facilities that
//! re-test, with a coded reason.
//!
//! A quality-control certification (`kind = qc-cert`): `{ schema, number, facility, items,
//! classes, issuer, level, valid_from, valid_to }`, alliance-wide.
//!
//! [`recognise`] applies the rule (国卫医发〔2022〕6号): a result is recognised when its performing
//! facility held a certification covering the item (or its class) on the day of the test, the
//! result is inside the item's validity window on the day it is checked, and no corrected
//! version supersedes it. Windows are set per item class, with per-item overrides, in the node's
//! configuration (`[recognition]`), defaults [`DEFAULT_LAB_DAYS`] and [`DEFAULT_IMAGING_DAYS`].
//!
//! Migration path: as for referrals — a `schema: 2` reader will hydrate version 1 documents;
//! nodes refuse to write a schema newer than they know.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::validate::{self, FieldError};

/// The schema version this build writes.
pub const SCHEMA: u64 = 1;
/// Default validity window for lab results, days.
pub const DEFAULT_LAB_DAYS: u32 = 7;
/// Default validity window for imaging results, days.
pub const DEFAULT_IMAGING_DAYS: u32 = 30;

/// Lab test or imaging exam.
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
pub enum ItemClass {
    /// 检验: laboratory values.
    Lab,
    /// 检查: imaging (images and data, not the physician's conclusion).
    Imaging,
}

impl ItemClass {
    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemClass::Lab => "lab",
            ItemClass::Imaging => "imaging",
        }
    }
}

impl std::str::FromStr for ItemClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lab" => Ok(ItemClass::Lab),
            "imaging" => Ok(ItemClass::Imaging),
            _ => Err(format!("unknown item class {s:?}: use lab or imaging")),
        }
    }
}

/// Why a doctor re-tests instead of recognising a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "kebab-case")]
pub enum RetestReason {
    /// The patient's condition changed.
    ConditionChanged,
    /// The value changes fast with the disease.
    FastChanging,
    /// Critical: before surgery or transfusion.
    Critical,
    /// Emergency.
    Emergency,
    /// Forensic or disability assessment.
    Forensic,
    /// The patient asked.
    PatientRequest,
    /// The issuing lab failed quality assessment.
    LabFailedQa,
    /// Too much time has passed.
    TooOld,
    /// Other necessity (text required).
    Other,
}

impl std::str::FromStr for RetestReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "condition-changed" => RetestReason::ConditionChanged,
            "fast-changing" => RetestReason::FastChanging,
            "critical" => RetestReason::Critical,
            "emergency" => RetestReason::Emergency,
            "forensic" => RetestReason::Forensic,
            "patient-request" => RetestReason::PatientRequest,
            "lab-failed-qa" => RetestReason::LabFailedQa,
            "too-old" => RetestReason::TooOld,
            "other" => RetestReason::Other,
            _ => {
                return Err(format!(
                    "unknown re-test reason {s:?}: condition-changed, fast-changing, critical, emergency, \\
                     forensic, patient-request, lab-failed-qa, too-old, other"
                ));
            }
        })
    }
}

/// The patient (sensitive: never logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct ResultPatient {
    /// Name.
    pub name: String,
    /// M, F or U.
    pub sex: String,
    /// YYYY-MM-DD.
    pub birth_date: String,
    /// Resident identity card number.
    pub id_number: Option<String>,
}

/// The test or exam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Item {
    /// Code: WS/T 886 (8 characters), LOINC, or a local code.
    pub code: String,
    /// `ws-t-886`, `loinc` or `local`.
    pub system: String,
    /// Name.
    pub name: String,
    /// Lab or imaging.
    pub class: ItemClass,
}

/// A re-test decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Retest {
    /// When (ms since the Unix epoch).
    pub at: u64,
    /// Facility that re-tested.
    pub by: String,
    /// Coded reason.
    pub reason: RetestReason,
    /// Free text.
    pub text: Option<String>,
}

/// A lab or imaging result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct TestResult {
    /// Schema version.
    pub schema: u64,
    /// The patient.
    pub patient: ResultPatient,
    /// The item.
    pub item: Item,
    /// Value.
    pub value: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Report text (imaging findings).
    pub text: Option<String>,
    /// Reference range.
    pub reference_range: Option<String>,
    /// Abnormal flag (H, L, A, N).
    pub abnormal: Option<String>,
    /// Specimen or exam time, `YYYY-MM-DDTHH:MM`.
    pub taken_at: String,
    /// Performing facility.
    pub facility: String,
    /// Reporting clinician.
    pub clinician: String,
    /// The result this one corrects.
    pub supersedes: Option<String>,
    /// Re-test decisions.
    pub retests: Vec<Retest>,
}

/// A facility's quality-control certification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct QcCert {
    /// Schema version.
    pub schema: u64,
    /// Certificate number.
    pub number: String,
    /// Certified facility.
    pub facility: String,
    /// Item codes covered.
    pub items: Vec<String>,
    /// Item classes covered entirely.
    pub classes: Vec<ItemClass>,
    /// Issuing body.
    pub issuer: String,
    /// `province` or `city`.
    pub level: String,
    /// First valid day, YYYY-MM-DD.
    pub valid_from: String,
    /// Last valid day, YYYY-MM-DD.
    pub valid_to: String,
}

/// Validity windows and the recognition mark, from `[recognition]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecognitionConfig {
    /// The mark label (e.g. `HR`, or `鄂HR` for a province).
    pub mark: String,
    /// The mark's scope: national, province, city or alliance.
    pub scope: String,
    /// Window per item class, days.
    pub windows: BTreeMap<ItemClass, u32>,
    /// Window per item code, days (overrides the class).
    pub items: BTreeMap<String, u32>,
}

impl Default for RecognitionConfig {
    fn default() -> Self {
        RecognitionConfig {
            mark: "HR".into(),
            scope: "alliance".into(),
            windows: [
                (ItemClass::Lab, DEFAULT_LAB_DAYS),
                (ItemClass::Imaging, DEFAULT_IMAGING_DAYS),
            ]
            .into(),
            items: BTreeMap::new(),
        }
    }
}

impl RecognitionConfig {
    /// The window for an item, days.
    pub fn window(&self, item: &Item) -> u32 {
        self.items
            .get(&item.code)
            .copied()
            .or_else(|| self.windows.get(&item.class).copied())
            .unwrap_or(match item.class {
                ItemClass::Lab => DEFAULT_LAB_DAYS,
                ItemClass::Imaging => DEFAULT_IMAGING_DAYS,
            })
    }
}

/// The decision of [`recognise`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recognition {
    /// Recognised?
    pub recognised: bool,
    /// The mark, when recognised: `{label, scope}`.
    pub mark: Option<(String, String)>,
    /// The certification relied on.
    pub certification: Option<String>,
    /// Every reason, in words.
    pub reasons: Vec<String>,
}

/// Applies the recognition rule on day `on`. `superseded_by` is the id of a correction, if one
/// exists; `certs` are the certifications known to this node.
pub fn recognise(
    r: &TestResult,
    superseded_by: Option<&str>,
    certs: &[QcCert],
    cfg: &RecognitionConfig,
    on: Date,
) -> Recognition {
    let mut reasons = Vec::new();
    let taken = r
        .taken_at
        .parse::<jiff::civil::DateTime>()
        .map(|t| t.date())
        .or_else(|_| r.taken_at.parse::<Date>());
    let Ok(taken) = taken else {
        return Recognition {
            recognised: false,
            mark: None,
            certification: None,
            reasons: vec![format!("the test time {:?} is unreadable", r.taken_at)],
        };
    };
    if let Some(by) = superseded_by {
        reasons.push(format!("superseded by a corrected result ({by})"));
    }
    let window = cfg.window(&r.item);
    let age = (on - taken).get_days();
    if age < 0 {
        reasons.push(format!(
            "the test is dated {taken}, after the check date {on}: is a clock wrong?"
        ));
    } else if age > window as i32 {
        reasons.push(format!(
            "outside the {} validity window: taken {taken}, {age} days before {on}; the window is {window} days",
            r.item.class.as_str()
        ));
    }
    let covering: Vec<&QcCert> = certs
        .iter()
        .filter(|c| {
            c.facility == r.facility
                && (c.items.contains(&r.item.code) || c.classes.contains(&r.item.class))
        })
        .collect();
    let valid = covering.iter().find(|c| {
        matches!((c.valid_from.parse::<Date>(), c.valid_to.parse::<Date>()), (Ok(f), Ok(t)) if f <= taken && taken <= t)
    });
    match (valid, covering.is_empty()) {
        (Some(_), _) => {}
        (None, true) => reasons.push(format!(
            "{} holds no quality-control certification for {} ({})",
            r.facility, r.item.name, r.item.code
        )),
        (None, false) => {
            let spans: Vec<String> = covering
                .iter()
                .map(|c| format!("{} {}..{}", c.number, c.valid_from, c.valid_to))
                .collect();
            reasons.push(format!(
                "{}'s certification for {} was not valid on the test day {taken} ({})",
                r.facility,
                r.item.code,
                spans.join("; ")
            ));
        }
    }
    let recognised = reasons.is_empty();
    if recognised {
        let c = valid.map(|c| format!("{} ({}, {} level)", c.number, c.issuer, c.level));
        reasons.push(format!(
            "certified ({}) on the test day and {age} of {window} days into the {} window",
            c.clone().unwrap_or_default(),
            r.item.class.as_str()
        ));
        return Recognition {
            recognised,
            mark: Some((cfg.mark.clone(), cfg.scope.clone())),
            certification: c,
            reasons,
        };
    }
    Recognition {
        recognised,
        mark: None,
        certification: None,
        reasons,
    }
}

/// What a reporting facility enters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultInput {
    /// Patient name.
    pub patient_name: String,
    /// M, F or U.
    pub sex: String,
    /// YYYY-MM-DD.
    pub birth_date: String,
    /// Resident identity card number.
    pub id_number: Option<String>,
    /// Item code.
    pub item_code: String,
    /// `ws-t-886`, `loinc` or `local`.
    pub item_system: String,
    /// Item name.
    pub item_name: String,
    /// Lab or imaging.
    pub class: ItemClass,
    /// Value.
    pub value: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Report text.
    pub text: Option<String>,
    /// Reference range.
    pub reference_range: Option<String>,
    /// Abnormal flag.
    pub abnormal: Option<String>,
    /// `YYYY-MM-DDTHH:MM`.
    pub taken_at: String,
    /// Reporting clinician.
    pub clinician: String,
}

/// Validates a new result (or correction) performed by `facility`.
pub fn build(
    input: ResultInput,
    facility: &str,
    supersedes: Option<String>,
) -> Result<TestResult, FieldError> {
    let sex = input.sex.trim().to_ascii_uppercase();
    if !matches!(sex.as_str(), "M" | "F" | "U") {
        return Err(FieldError {
            field: "sex",
            problem: "must be M, F or U".into(),
        });
    }
    let system = input.item_system.trim().to_ascii_lowercase();
    let code = input.item_code.trim().to_ascii_uppercase();
    match system.as_str() {
        "ws-t-886" if code.len() != 8 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            return Err(FieldError {
                field: "item_code",
                problem: "a WS/T 886 code has 8 characters (category 2, analyte 3, specimen 2, scale 1: e.g. 0100101A)".into(),
            });
        }
        "ws-t-886" | "loinc" | "local" => {}
        _ => {
            return Err(FieldError {
                field: "item_system",
                problem: "use ws-t-886, loinc or local".into(),
            });
        }
    }
    let value = validate::optional("value", input.value, 64)?;
    let text = validate::optional("text", input.text, 8000)?;
    if value.is_none() && text.is_none() {
        return Err(FieldError {
            field: "value",
            problem: "a result needs a value or a report text".into(),
        });
    }
    let birth = validate::date("birth_date", &input.birth_date)?;
    let id_number = input
        .id_number
        .filter(|s| !s.trim().is_empty())
        .map(|s| validate::national_id(&s))
        .transpose()?;
    Ok(TestResult {
        schema: SCHEMA,
        patient: ResultPatient {
            name: validate::text("patient_name", &input.patient_name, 64)?,
            sex,
            birth_date: birth.to_string(),
            id_number,
        },
        item: Item {
            code: validate::text("item_code", &code, 32)?,
            system,
            name: validate::text("item_name", &input.item_name, 128)?,
            class: input.class,
        },
        value,
        unit: validate::optional("unit", input.unit, 32)?,
        text,
        reference_range: validate::optional("reference_range", input.reference_range, 64)?,
        abnormal: validate::optional("abnormal", input.abnormal, 8)?,
        taken_at: validate::datetime("taken_at", &input.taken_at)?,
        facility: facility.to_string(),
        clinician: validate::text("clinician", &input.clinician, 64)?,
        supersedes,
        retests: Vec::new(),
    })
}

/// What a QC office enters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QcInput {
    /// Certificate number.
    pub number: String,
    /// Certified facility.
    pub facility: String,
    /// Item codes covered.
    pub items: Vec<String>,
    /// Classes covered.
    pub classes: Vec<ItemClass>,
    /// Issuing body.
    pub issuer: String,
    /// province or city.
    pub level: String,
    /// YYYY-MM-DD.
    pub valid_from: String,
    /// YYYY-MM-DD.
    pub valid_to: String,
}

/// Validates a certification.
pub fn build_qc(input: QcInput) -> Result<QcCert, FieldError> {
    let facility: crate::ids::FacilityCode =
        input
            .facility
            .parse()
            .map_err(|e: crate::ids::IdError| FieldError {
                field: "facility",
                problem: e.to_string(),
            })?;
    let level = input.level.trim().to_ascii_lowercase();
    if !matches!(level.as_str(), "province" | "city") {
        return Err(FieldError {
            field: "level",
            problem: "certifications are issued at province or city level".into(),
        });
    }
    let from = validate::date("valid_from", &input.valid_from)?;
    let to = validate::date("valid_to", &input.valid_to)?;
    if to < from {
        return Err(FieldError {
            field: "valid_to",
            problem: "is before valid_from".into(),
        });
    }
    if input.items.is_empty() && input.classes.is_empty() {
        return Err(FieldError {
            field: "items",
            problem: "name the items or item classes covered".into(),
        });
    }
    Ok(QcCert {
        schema: SCHEMA,
        number: validate::text("number", &input.number, 64)?,
        facility: facility.to_string(),
        items: input
            .items
            .iter()
            .map(|i| i.trim().to_ascii_uppercase())
            .filter(|i| !i.is_empty())
            .collect(),
        classes: input.classes,
        issuer: validate::text("issuer", &input.issuer, 128)?,
        level,
        valid_from: from.to_string(),
        valid_to: to.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(taken: &str) -> TestResult {
        build(
            ResultInput {
                patient_name: "李四".into(),
                sex: "F".into(),
                birth_date: "1980-05-01".into(),
                id_number: None,
                item_code: "0100101A".into(),
                item_system: "ws-t-886".into(),
                item_name: "White blood cell count".into(),
                class: ItemClass::Lab,
                value: Some("13.1".into()),
                unit: Some("10^9/L".into()),
                text: None,
                reference_range: Some("3.5-9.5".into()),
                abnormal: Some("H".into()),
                taken_at: taken.into(),
                clinician: "Dr. Zhao".into(),
            },
            "TC-01",
            None,
        )
        .unwrap()
    }

    fn cert(from: &str, to: &str) -> QcCert {
        build_qc(QcInput {
            number: "QC-2026-001".into(),
            facility: "TC-01".into(),
            items: vec!["0100101a".into()],
            classes: vec![],
            issuer: "Provincial clinical lab center".into(),
            level: "province".into(),
            valid_from: from.into(),
            valid_to: to.into(),
        })
        .unwrap()
    }

    fn day(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn recognised_inside_the_window_with_a_valid_certification() {
        let d = recognise(
            &result("2026-11-20T08:00"),
            None,
            &[cert("2026-01-01", "2026-12-31")],
            &RecognitionConfig::default(),
            day("2026-11-27"),
        );
        assert!(d.recognised, "{:?}", d.reasons);
        assert_eq!(d.mark, Some(("HR".into(), "alliance".into())));
    }

    #[test]
    fn certification_expired_the_day_before_the_test() {
        let d = recognise(
            &result("2026-11-20T08:00"),
            None,
            &[cert("2025-11-20", "2026-11-19")],
            &RecognitionConfig::default(),
            day("2026-11-21"),
        );
        assert!(!d.recognised);
        assert!(
            d.reasons[0].contains("was not valid on the test day 2026-11-20"),
            "{:?}",
            d.reasons
        );
        // Valid through the test day itself: recognised.
        let d = recognise(
            &result("2026-11-20T08:00"),
            None,
            &[cert("2025-11-20", "2026-11-20")],
            &RecognitionConfig::default(),
            day("2026-11-21"),
        );
        assert!(d.recognised, "{:?}", d.reasons);
    }

    #[test]
    fn one_day_outside_the_window() {
        let certs = [cert("2026-01-01", "2026-12-31")];
        let cfg = RecognitionConfig::default();
        assert!(
            recognise(
                &result("2026-11-20T08:00"),
                None,
                &certs,
                &cfg,
                day("2026-11-27")
            )
            .recognised,
            "day 7 of 7"
        );
        let d = recognise(
            &result("2026-11-20T08:00"),
            None,
            &certs,
            &cfg,
            day("2026-11-28"),
        );
        assert!(!d.recognised);
        assert!(
            d.reasons[0].contains("8 days before 2026-11-28; the window is 7 days"),
            "{:?}",
            d.reasons
        );
        // A per-item override wins over the class window.
        let mut cfg = cfg;
        cfg.items.insert("0100101A".into(), 3);
        assert!(
            !recognise(
                &result("2026-11-20T08:00"),
                None,
                &certs,
                &cfg,
                day("2026-11-24")
            )
            .recognised
        );
    }

    #[test]
    fn superseded_and_uncertified_results_are_not_recognised() {
        let certs = [cert("2026-01-01", "2026-12-31")];
        let d = recognise(
            &result("2026-11-20T08:00"),
            Some("abcd"),
            &certs,
            &RecognitionConfig::default(),
            day("2026-11-21"),
        );
        assert!(!d.recognised);
        assert!(d.reasons[0].contains("superseded"), "{:?}", d.reasons);
        let d = recognise(
            &result("2026-11-20T08:00"),
            None,
            &[],
            &RecognitionConfig::default(),
            day("2026-11-21"),
        );
        assert!(
            d.reasons[0].contains("holds no quality-control certification"),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn inputs_are_validated_by_field() {
        let mut bad = cert("2026-01-01", "2026-12-31");
        bad.level = "county".into();
        let e = build_qc(QcInput {
            number: bad.number.clone(),
            facility: bad.facility.clone(),
            items: bad.items.clone(),
            classes: vec![],
            issuer: bad.issuer.clone(),
            level: "county".into(),
            valid_from: "2026-01-01".into(),
            valid_to: "2025-01-01".into(),
        })
        .unwrap_err();
        assert_eq!(e.field, "level");
        let mut r = ResultInput {
            patient_name: "x".into(),
            sex: "F".into(),
            birth_date: "1980-05-01".into(),
            id_number: None,
            item_code: "0101A".into(),
            item_system: "ws-t-886".into(),
            item_name: "WBC".into(),
            class: ItemClass::Lab,
            value: None,
            unit: None,
            text: None,
            reference_range: None,
            abnormal: None,
            taken_at: "2026-11-20T08:00".into(),
            clinician: "c".into(),
        };
        assert_eq!(
            build(r.clone(), "TC-01", None).unwrap_err().field,
            "item_code"
        );
        r.item_code = "0100101A".into();
        assert_eq!(build(r.clone(), "TC-01", None).unwrap_err().field, "value");
        r.value = Some("5".into());
        r.taken_at = "20/11/2026".into();
        assert_eq!(build(r, "TC-01", None).unwrap_err().field, "taken_at");
    }
}
