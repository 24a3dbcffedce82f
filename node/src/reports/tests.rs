//! Every report against figures computed by hand on a small fixed data set (time zone UTC).
#![allow(clippy::type_complexity)] // tuples of expected figures read best inline

use std::collections::BTreeMap;

use jiff::civil::date;
use jiff::tz::TimeZone;

use super::*;
use crate::config::FacilityKind;
use crate::documents::catalog::{CatalogEntry, EntryStatus, InsuranceClass};
use crate::documents::dispensing::{DispensedRow, Level, Summary};
use crate::documents::outreach::{self as ev, Outreach};
use crate::documents::referral::{self, ActInput, ActKind, Referral, Urgency};
use crate::documents::result::{self as res, ItemClass, QcCert, Retest, RetestReason, TestResult};

fn june() -> Period {
    Period::new(date(2026, 6, 1), date(2026, 6, 30)).unwrap()
}

/// ms since the epoch of a UTC time in 2026.
fn ms(month: i8, day: i8, hour: i8) -> u64 {
    date(2026, month, day)
        .at(hour, 0, 0, 0)
        .to_zoned(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond() as u64
}

fn referral(
    from: &str,
    kind: FacilityKind,
    to: &str,
    urgency: Urgency,
    created: u64,
    decision: Option<(ActKind, u64)>,
) -> Referral {
    let mut input = referral::tests::input();
    input.to = to.into();
    input.urgency = urgency;
    input.care_plan = Some("rehabilitation".into());
    input.follow_up = Some("weekly".into());
    let me = from.parse().unwrap();
    let mut r = referral::build(
        input,
        &me,
        kind,
        format!("{from}-{created}"),
        created,
        &TimeZone::UTC,
    )
    .unwrap();
    if let Some((k, at)) = decision {
        let receiver = to.parse().unwrap();
        let rkind = if to.starts_with("CH") {
            FacilityKind::CountyHospital
        } else {
            FacilityKind::TownshipCenter
        };
        let act = ActInput {
            kind: k,
            slot: (k == ActKind::Accept).then(|| "2026-07-01T09:00".into()),
            department: (k == ActKind::Accept).then(|| "Surgery".into()),
            reason: (k == ActKind::Reject).then(|| "no beds".into()),
            keep: None,
        };
        let a =
            referral::make_act(&r, &receiver, rkind, "node", at, format!("a{at}"), act).unwrap();
        r.acts.push(a);
    }
    r
}

#[test]
fn referral_figures_match_the_hand_count() {
    use FacilityKind::{CountyHospital as Ch, TownshipCenter as Tc};
    use Urgency::{GreenChannel as G, Routine as R};
    let data = vec![
        referral(
            "TC-01",
            Tc,
            "CH-01",
            R,
            ms(6, 2, 8),
            Some((ActKind::Accept, ms(6, 2, 10))),
        ),
        referral(
            "TC-01",
            Tc,
            "CH-01",
            G,
            ms(6, 3, 8),
            Some((ActKind::Reject, ms(6, 3, 14))),
        ),
        referral("TC-02", Tc, "CH-01", G, ms(6, 10, 0), None),
        referral(
            "CH-01",
            Ch,
            "TC-01",
            R,
            ms(6, 15, 0),
            Some((ActKind::Accept, ms(6, 16, 0))),
        ),
        referral("TC-01", Tc, "CH-01", R, ms(5, 31, 12), None),
        referral("TC-02", Tc, "CH-01", R, ms(6, 29, 12), None),
    ];
    let as_of = june().end_ms(&TimeZone::UTC) as u64;
    assert_eq!(as_of, ms(7, 1, 0));
    let r = referrals::report(&data, june(), None, 48, as_of, &TimeZone::UTC);
    let t = &r.total;
    assert_eq!((t.up, t.down), (4, 1));
    assert_eq!(
        (t.accepted, t.rejected, t.pending, t.cancelled),
        (2, 1, 2, 0)
    );
    assert_eq!(t.acceptance_pct, Some(66.7));
    assert_eq!(t.median_decision_hours, Some(6.0)); // of 2, 6 and 24 hours
    assert_eq!(t.green_channel_pct, Some(40.0));
    assert_eq!(t.waiting_over_limit, 1); // 504 h; the other waits 36 h
    assert_eq!(r.waiting.len(), 1);
    assert_eq!(r.waiting[0].hours, 504.0);
    assert!(r.waiting[0].green_channel);
    let rows: Vec<(&str, &str, u64, u64)> = r
        .rows
        .iter()
        .map(|x| (x.month.as_str(), x.facility.as_str(), x.up, x.down))
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-06", "CH-01", 0, 1),
            ("2026-06", "TC-01", 2, 0),
            ("2026-06", "TC-02", 2, 0)
        ]
    );
    assert_eq!(r.rows[1].acceptance_pct, Some(50.0));
    assert_eq!(r.rows[1].median_decision_hours, Some(4.0));
    assert_eq!(r.rows[2].acceptance_pct, None);
    // Only referrals sent or received by TC-02.
    let r = referrals::report(&data, june(), Some("TC-02"), 48, as_of, &TimeZone::UTC);
    assert_eq!((r.total.up, r.total.down), (2, 0));
    assert_eq!(r.tabular_rows_len(), 2);
}

impl ReferralReport {
    fn tabular_rows_len(&self) -> usize {
        Tabular::rows(self).len()
    }
}

fn result(facility: &str, code: &str, class: ItemClass, taken: &str) -> TestResult {
    res::build(
        res::ResultInput {
            patient_name: "张三".into(),
            sex: "M".into(),
            birth_date: "1950-01-01".into(),
            id_number: None,
            item_code: code.into(),
            item_system: "ws-t-886".into(),
            item_name: "item".into(),
            class,
            value: Some("5.1".into()),
            unit: None,
            text: None,
            reference_range: None,
            abnormal: None,
            taken_at: taken.into(),
            clinician: "Dr. Wu".into(),
        },
        facility,
        None,
    )
    .unwrap()
}

fn cert(facility: &str, items: &[&str], classes: &[ItemClass], to: &str) -> QcCert {
    QcCert {
        schema: 1,
        number: format!("QC-{facility}"),
        facility: facility.into(),
        items: items.iter().map(|s| s.to_string()).collect(),
        classes: classes.to_vec(),
        issuer: "Provincial center".into(),
        level: "province".into(),
        valid_from: "2026-01-01".into(),
        valid_to: to.into(),
    }
}

fn retest(reason: RetestReason, at: u64) -> Retest {
    Retest {
        at,
        by: "CH-01".into(),
        reason,
        text: None,
    }
}

#[test]
fn recognition_figures_match_the_hand_count() {
    let certs = [
        cert("TC-01", &[], &[ItemClass::Lab], "2026-06-15"),
        cert("TC-02", &["0100101A"], &[], "2026-12-31"),
    ];
    let mut c = result("TC-01", "0100201A", ItemClass::Imaging, "2026-06-05T09:00");
    c.retests.push(retest(RetestReason::Emergency, ms(6, 6, 0)));
    let mut e = result("TC-02", "0100101A", ItemClass::Lab, "2026-06-02T09:00");
    e.retests
        .push(retest(RetestReason::ConditionChanged, ms(6, 3, 0)));
    e.retests.push(retest(RetestReason::TooOld, ms(7, 2, 0)));
    let data = vec![
        (
            result("TC-01", "0100102A", ItemClass::Lab, "2026-06-10T09:00"),
            false,
        ),
        (
            result("TC-01", "0100102A", ItemClass::Lab, "2026-06-20T09:00"),
            false,
        ),
        (c, false),
        (
            result("TC-02", "0100101A", ItemClass::Lab, "2026-06-01T09:00"),
            true,
        ),
        (e, false),
        (
            result("TC-02", "0100101A", ItemClass::Lab, "2026-05-30T09:00"),
            false,
        ),
    ];
    let r = recognition::report(
        &data,
        &certs,
        &res::RecognitionConfig::default(),
        june(),
        None,
        &TimeZone::UTC,
    );
    let rows: Vec<(&str, &str, u64, u64, Option<f64>, u64)> = r
        .rows
        .iter()
        .map(|x| {
            (
                x.facility.as_str(),
                x.class.as_str(),
                x.results,
                x.recognised,
                x.recognition_pct,
                x.retested,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("TC-01", "imaging", 1, 0, Some(0.0), 1),
            ("TC-01", "lab", 2, 1, Some(50.0), 0),
            ("TC-02", "lab", 1, 1, Some(100.0), 1),
        ]
    );
    assert_eq!(
        (r.total.results, r.total.recognised, r.total.recognition_pct),
        (4, 2, Some(50.0))
    );
    let reasons: Vec<(&str, u64)> = r
        .retest_reasons
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(reasons, [("condition-changed", 1), ("emergency", 1)]);
}

fn summary(facility: &str, level: Level, period: &str, rows: &[(&str, u64, u64)]) -> Summary {
    Summary {
        facility: facility.into(),
        level,
        period: period.into(),
        rows: rows
            .iter()
            .map(|(c, q, a)| {
                (
                    c.to_string(),
                    DispensedRow {
                        quantity: *q,
                        amount_fen: *a,
                        updated_ms: 0,
                    },
                )
            })
            .collect(),
    }
}

/// A catalog entry whose essential flag never changed.
fn entry(code: &str, essential: bool) -> CatalogEntry {
    CatalogEntry {
        code: code.into(),
        generic_name: "药".into(),
        dosage_form: "片剂".into(),
        strength: "0.25g".into(),
        package: String::new(),
        manufacturer: String::new(),
        insurance_class: InsuranceClass::A,
        essential,
        long_prescription: false,
        status: EntryStatus::Active,
        updated_ms: 0,
        updated_by: "CH-01".into(),
        essential_history: Vec::new(),
    }
}

fn catalog_of(flags: &[(&str, bool)]) -> BTreeMap<String, CatalogEntry> {
    flags
        .iter()
        .map(|(c, e)| (c.to_string(), entry(c, *e)))
        .collect()
}

#[test]
fn essential_drug_usage_and_target_flags_match_the_hand_count() {
    let catalog = catalog_of(&[("C1", true), ("C2", false), ("C3", true)]);
    let data = vec![
        summary(
            "TC-01",
            Level::Primary,
            "2026-06",
            &[("C1", 100, 8000), ("C2", 50, 2000)],
        ),
        summary("TC-01", Level::Primary, "2026-07", &[("C2", 1000, 100_000)]),
        summary(
            "TC-02",
            Level::Primary,
            "2026-06",
            &[("C1", 70, 7000), ("C2", 30, 3000), ("C9", 10, 1000)],
        ),
        summary(
            "CH-01",
            Level::Secondary,
            "2026-06",
            &[("C3", 30, 3000), ("C2", 70, 7000)],
        ),
    ];
    let cfg = ReportsConfig::default();
    let r = essential::report(&data, &catalog, &cfg, june(), None, &TimeZone::UTC);
    let rows: Vec<(&str, Option<f64>, Option<f64>, f64, bool, u64)> = r
        .rows
        .iter()
        .map(|x| {
            (
                x.facility.as_str(),
                x.amount_pct,
                x.quantity_pct,
                x.target_pct,
                x.below_target,
                x.unknown_codes,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("CH-01", Some(30.0), Some(30.0), 30.0, false, 0),
            ("TC-01", Some(80.0), Some(66.6), 80.0, false, 0),
            ("TC-02", Some(63.6), Some(63.6), 80.0, true, 1),
        ]
    );
    assert_eq!(r.rows[1].months, 1);
    assert_eq!(r.rows[1].amount_fen, 10_000);
    assert!(
        r.findings()[1].contains("TC-02 63.6% < 80%"),
        "{:?}",
        r.findings()
    );
    // Measured by quantity, TC-01 falls below too; a tertiary target of 35% flags the county.
    let mut cfg = ReportsConfig {
        essential_metric: essential::Metric::Quantity,
        ..ReportsConfig::default()
    };
    cfg.essential_targets.insert(Level::Secondary, 35.0);
    let r = essential::report(&data, &catalog, &cfg, june(), None, &TimeZone::UTC);
    let below: Vec<&str> = r
        .rows
        .iter()
        .filter(|x| x.below_target)
        .map(|x| x.facility.as_str())
        .collect();
    assert_eq!(below, ["CH-01", "TC-01", "TC-02"]);
}

fn visit(at: &str, referral: bool) -> ev::Visit {
    ev::Visit {
        at: at.into(),
        by: "CH-01".into(),
        device: "d".into(),
        patient: ev::VisitPatient {
            name: None,
            sex: "F".into(),
            age_band: "60-69".into(),
        },
        complaint: "头晕".into(),
        screenings: vec![],
        advice: "rest".into(),
        referral: referral.then(|| "ref".into()),
    }
}

fn event(township: &str, start: &str, end: &str, visits: &[(&str, usize)]) -> Outreach {
    let mut e = ev::build(
        ev::OutreachInput {
            title: "义诊".into(),
            township: township.into(),
            start: start.into(),
            end: Some(end.into()),
            team: vec![
                ev::parse_member("李明,主治医师,心内科").unwrap(),
                ev::parse_member("王芳,住院医师,内科").unwrap(),
            ],
            services: vec![],
            target_per_day: None,
        },
        "CH-01",
        format!("YZ-{township}"),
        0,
    )
    .unwrap();
    let mut n = 0;
    for (day, count) in visits {
        for i in 0..*count {
            e.visits.insert(
                format!("v{n}"),
                visit(&format!("{day}T{:02}:00", 8 + i % 10), n < 3),
            );
            n += 1;
        }
    }
    e.lectures.insert(
        "l".into(),
        ev::Lecture {
            at: format!("{start}T15:00"),
            topic: "高血压".into(),
            speaker: "李明".into(),
            attendees: 60,
        },
    );
    e
}

#[test]
fn outreach_figures_match_the_hand_count() {
    let data = vec![
        (
            "e1".to_string(),
            event(
                "TC-01",
                "2026-06-10",
                "2026-06-11",
                &[("2026-06-10", 120), ("2026-06-11", 80)],
            ),
        ),
        (
            "e2".to_string(),
            event("TC-02", "2026-07-05", "2026-07-05", &[("2026-07-05", 10)]),
        ),
    ];
    let towns: Vec<String> = ["TC-01", "TC-02", "TC-03"].map(String::from).to_vec();
    let r = outreach::report(&data, &towns, june(), None);
    assert_eq!(r.events.len(), 1);
    let e = &r.events[0];
    assert_eq!((e.visits, e.visits_per_day, e.days_met), (200, 100.0, 1));
    assert_eq!(
        e.days.iter().map(|d| (d.visits, d.met)).collect::<Vec<_>>(),
        [(120, true), (80, false)]
    );
    assert_eq!(
        (
            e.lectures,
            e.lecture_attendees,
            e.referrals,
            e.below_mid_level
        ),
        (1, 60, 3, 1)
    );
    assert_eq!(r.townships_not_visited, ["TC-02", "TC-03"]);
    assert_eq!(r.visits, 200);
    // TC-03 asking about itself sees only itself as not visited.
    let r = outreach::report(&data, &towns, june(), Some("TC-03"));
    assert!(r.events.is_empty());
    assert_eq!(r.townships_not_visited, ["TC-03"]);
}

#[test]
fn periods_halves_months_and_medians() {
    let h1 = Period::half_year(2026, 1).unwrap();
    assert_eq!((h1.from, h1.to), (date(2026, 1, 1), date(2026, 6, 30)));
    assert_eq!(Period::half_year(2026, 2).unwrap().to, date(2026, 12, 31));
    assert!(Period::half_year(2026, 3).is_err());
    assert!(Period::new(date(2026, 2, 1), date(2026, 1, 1)).is_err());
    assert!(june().overlaps_month("2026-06"));
    assert!(!june().overlaps_month("2026-07"));
    assert!(!june().overlaps_month("garbage"));
    assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(vec![]), None);
    assert_eq!(percent(2, 3), Some(66.7));
    assert_eq!(percent(1, 0), None);
}

#[test]
fn reports_cross_the_control_socket_and_carry_their_kind_in_json() {
    use crate::control::proto::{Response, decode, encode};
    let data = vec![(
        "e1".to_string(),
        event("TC-01", "2026-06-10", "2026-06-10", &[("2026-06-10", 3)]),
    )];
    let r = Report::Outreach(outreach::report(&data, &[], june(), None));
    let back: Response = decode(&encode(&Response::Report(Box::new(r.clone())))).unwrap();
    assert_eq!(back, Response::Report(Box::new(r.clone())));
    let j = r.to_json();
    assert_eq!(j["report"], "outreach");
    assert_eq!(j["period"]["from"], "2026-06-01");
    assert_eq!(j["events"][0]["visits"], 3);
}

#[test]
fn reports_settings_read_from_toml_as_documented() {
    let cfg: ReportsConfig = toml::from_str(
        "level = \"tertiary\"\nessential_metric = \"quantity\"\nwaiting_limit_hours = 24\n\
         [essential_targets]\nprimary = 85.0\nsecondary = 30.0\ntertiary = 20.0\n",
    )
    .unwrap();
    assert_eq!(cfg.level, Some(Level::Tertiary));
    assert_eq!(cfg.essential_metric, essential::Metric::Quantity);
    assert_eq!(cfg.essential_targets[&Level::Primary], 85.0);
    assert_eq!(cfg.waiting_limit_hours, 24);
    assert!(toml::from_str::<ReportsConfig>("levle = \"x\"").is_err());
    assert_eq!(
        toml::from_str::<ReportsConfig>("").unwrap(),
        ReportsConfig::default()
    );
}

/// Issue 13, item 10: 1,599.00 of 2,000.00 yuan is 79.95%, below an 80% target; the share must
/// not be shown as 80.0 beside the flag, nor counted as meeting it.
#[test]
fn a_share_just_below_its_target_is_below_and_never_shown_at_the_target() {
    let catalog = catalog_of(&[("C1", true), ("C2", false)]);
    let cfg = ReportsConfig::default(); // primary: 80% by amount
    let data = vec![summary(
        "TC-01",
        Level::Primary,
        "2026-06",
        &[("C1", 1599, 159_900), ("C2", 401, 40_100)],
    )];
    let r = essential::report(&data, &catalog, &cfg, june(), None, &TimeZone::UTC);
    let row = &r.rows[0];
    assert_eq!(
        (row.essential_amount_fen, row.amount_fen),
        (159_900, 200_000)
    );
    assert!(row.below_target, "79.95% does not meet 80%");
    assert_eq!(row.amount_pct, Some(79.9));
    let cells = &Tabular::rows(&r)[0];
    assert_eq!(cells[5], "79.9");
    assert_eq!(cells[10], "BELOW");
    assert!(
        r.findings()[1].contains("TC-01 79.9% < 80%"),
        "{:?}",
        r.findings()
    );
    // Exactly at the target meets it.
    let data = vec![summary(
        "TC-01",
        Level::Primary,
        "2026-06",
        &[("C1", 1600, 160_000), ("C2", 400, 40_000)],
    )];
    let r = essential::report(&data, &catalog, &cfg, june(), None, &TimeZone::UTC);
    assert_eq!(
        (r.rows[0].amount_pct, r.rows[0].below_target),
        (Some(80.0), false)
    );
    // Targets with more than one decimal are refused, so the rule above always holds.
    let mut bad = ReportsConfig::default();
    bad.essential_targets.insert(Level::Primary, 79.95);
    assert!(bad.validate().unwrap_err().contains("at most one decimal"));
    assert!(ReportsConfig::default().validate().is_ok());
}

/// Issue 13, item 9: acts recorded after the period (a late acceptance) do not change the
/// report of a closed period: it was waiting at the end of June, and stays so.
#[test]
fn a_closed_period_s_referral_figures_do_not_change_with_later_acts() {
    use FacilityKind::TownshipCenter as Tc;
    let pending = referral("TC-01", Tc, "CH-01", Urgency::Routine, ms(6, 20, 8), None);
    let decided = referral(
        "TC-02",
        Tc,
        "CH-01",
        Urgency::Routine,
        ms(6, 2, 8),
        Some((ActKind::Accept, ms(6, 2, 10))),
    );
    let as_of = june().end_ms(&TimeZone::UTC) as u64;
    let before = referrals::report(
        &[pending.clone(), decided.clone()],
        june(),
        None,
        48,
        as_of,
        &TimeZone::UTC,
    );
    assert_eq!(
        (before.total.pending, before.total.waiting_over_limit),
        (1, 1)
    );
    // The county accepts the waiting referral on 2 July, and rejects... nothing else changes.
    let mut late = pending.clone();
    let act = ActInput {
        kind: ActKind::Accept,
        slot: Some("2026-07-03T09:00".into()),
        department: Some("Surgery".into()),
        reason: None,
        keep: None,
    };
    late.acts.push(
        referral::make_act(
            &late,
            &"CH-01".parse().unwrap(),
            FacilityKind::CountyHospital,
            "node",
            ms(7, 2, 9),
            "late".into(),
            act,
        )
        .unwrap(),
    );
    assert_eq!(referral::derive(&late).status, referral::Status::Accepted);
    let after = referrals::report(&[late, decided], june(), None, 48, as_of, &TimeZone::UTC);
    assert_eq!(after, before);
}

/// Issue 13, item 9: reclassifying a drug later does not rewrite the usage of months already
/// reported; months after the change count it by its new flag.
#[test]
fn reclassifying_a_drug_keeps_past_usage_rates() {
    let mut catalog = catalog_of(&[("C1", true), ("C2", false)]);
    let data = vec![
        summary(
            "TC-01",
            Level::Primary,
            "2026-06",
            &[("C1", 80, 8000), ("C2", 20, 2000)],
        ),
        summary(
            "TC-01",
            Level::Primary,
            "2026-08",
            &[("C1", 50, 5000), ("C2", 50, 5000)],
        ),
    ];
    let cfg = ReportsConfig::default();
    let h1 = Period::new(date(2026, 1, 1), date(2026, 6, 30)).unwrap();
    let before = essential::report(&data, &catalog, &cfg, h1, None, &TimeZone::UTC);
    assert_eq!(before.rows[0].amount_pct, Some(80.0));
    // C1 stops being an essential medicine on 15 July (an import at that time).
    let mut changed = entry("C1", false);
    changed.updated_ms = ms(7, 15, 0);
    changed.carry_history(catalog.get("C1"));
    assert_eq!(changed.essential_history.len(), 2);
    assert!(changed.essential_at(ms(7, 14, 0)) && !changed.essential_at(ms(7, 15, 0)));
    catalog.insert("C1".into(), changed);
    let again = essential::report(&data, &catalog, &cfg, h1, None, &TimeZone::UTC);
    assert_eq!(again, before);
    // August counts C1 as it was then: not essential.
    let h2 = Period::new(date(2026, 7, 1), date(2026, 12, 31)).unwrap();
    let r = essential::report(&data, &catalog, &cfg, h2, None, &TimeZone::UTC);
    assert_eq!(r.rows[0].amount_pct, Some(0.0));
}

/// Days and month ends are the facility's: a summary month ends at local midnight.
#[test]
fn month_ends_are_local() {
    let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
    let end = month_end_ms("2026-06", &shanghai).unwrap();
    // 1 July 00:00 in Beijing is 30 June 16:00 UTC.
    assert_eq!(end as u64, ms(6, 30, 16));
    assert_eq!(month_end_ms("2026-13", &shanghai), None);
}
