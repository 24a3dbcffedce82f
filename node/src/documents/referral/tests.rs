//! Referral rules: each path, each refusal, conflicts, and convergence of the derived status.

use automerge::{ActorId, Automerge};
use proptest::prelude::*;

use super::*;

fn tc() -> FacilityCode {
    "TC-01".parse().unwrap()
}
fn ch() -> FacilityCode {
    "CH-01".parse().unwrap()
}

pub(crate) fn input() -> ReferralInput {
    ReferralInput {
        direction: None,
        to: "CH-01".into(),
        to_department: "General surgery".into(),
        from_department: "Outpatient".into(),
        patient_name: "张三".into(),
        sex: "m".into(),
        birth_date: "1949-12-31".into(),
        id_number: Some("11010519491231002X".into()),
        record_number: None,
        insurance_card: None,
        allergies: Some("penicillin".into()),
        reason: "RLQ pain 12 h, fever".into(),
        icd10: "k35.800".into(),
        diagnosis: "acute appendicitis, suspected".into(),
        urgency: Urgency::GreenChannel,
        treatment: "IV fluids".into(),
        results: vec![],
        care_plan: None,
        follow_up: None,
        doctor: "Dr. Li".into(),
        phone: None,
    }
}

fn utc() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::UTC
}

fn new_referral() -> Referral {
    build(
        input(),
        &tc(),
        FacilityKind::TownshipCenter,
        "TC-01-20261122-0001".into(),
        1_795_000_000_000,
        &utc(),
    )
    .unwrap()
}

#[test]
fn a_birth_date_is_checked_against_the_facility_s_local_day() {
    // 00:40 on 1 April in Beijing is still 31 March in UTC: a baby born that night may be
    // referred at once from a facility in China Standard Time.
    let at: jiff::Timestamp = "2026-03-31T16:40:00Z".parse().unwrap();
    let ms = at.as_millisecond() as u64;
    let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let mut baby = input();
    baby.birth_date = "2026-04-01".into();
    baby.id_number = None;
    let number = "TC-01-20260401-000001".to_string();
    let r = build(
        baby.clone(),
        &tc(),
        FacilityKind::TownshipCenter,
        number.clone(),
        ms,
        &shanghai,
    );
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    let e = build(
        baby,
        &tc(),
        FacilityKind::TownshipCenter,
        number,
        ms,
        &utc(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("is in the future"), "{e}");
}

/// Issue 13, item 12: a document of kind referral that is not one says which part is wrong,
/// not autosurgeon's bare "unexpected None".
#[test]
fn an_unreadable_referral_says_what_is_wrong_with_it() {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let mut note = Automerge::new();
    crate::documents::note::init(&mut note, "库存盘点", None).unwrap();
    let e = read(&note).unwrap_err();
    assert_eq!(e, "not a readable referral: it has no `request`");
    assert_eq!(
        crate::documents::title(crate::documents::DocKind::Note, &note).as_deref(),
        Some("库存盘点")
    );

    let mut doc = Automerge::new();
    let r = new_referral();
    write(&mut doc, &r).unwrap();
    assert_eq!(
        crate::documents::title(crate::documents::DocKind::Referral, &doc),
        Some(r.request.number.clone())
    );
    let request = doc.get(automerge::ROOT, "request").unwrap().unwrap().1;
    doc.transact::<_, _, automerge::AutomergeError>(|tx| tx.delete(&request, "number"))
        .unwrap();
    let e = read(&doc).unwrap_err();
    assert_eq!(
        e,
        "not a readable referral: `request` lacks a field it must have"
    );
    assert!(!e.contains("unexpected None"));
}

fn act(kind: ActKind) -> ActInput {
    ActInput {
        kind,
        slot: (kind == ActKind::Accept).then(|| "2026-12-01T09:30".into()),
        department: (kind == ActKind::Accept).then(|| "General surgery".into()),
        reason: matches!(kind, ActKind::Reject | ActKind::Cancel).then(|| "bed shortage".into()),
        keep: None,
    }
}

fn apply(
    r: &mut Referral,
    who: &FacilityCode,
    kind: FacilityKind,
    input: ActInput,
) -> Result<(), Refused> {
    let id = format!(
        "{:016x}",
        r.acts.len() as u64 * 7919 + 1 + u64::from(who.as_str().as_bytes()[0])
    );
    let a = make_act(
        r,
        who,
        kind,
        "node",
        1_795_000_000_000 + r.acts.len() as u64,
        id,
        input,
    )?;
    r.acts.push(a);
    Ok(())
}

#[test]
fn creation_validates_and_normalises() {
    let r = new_referral();
    assert_eq!(r.request.direction, Direction::Up);
    assert_eq!(r.request.icd10, "K35.800");
    assert_eq!(r.request.patient.sex, "M");
    let mut bad = input();
    bad.icd10 = "appendicitis".into();
    let e = build(
        bad,
        &tc(),
        FacilityKind::TownshipCenter,
        "n".into(),
        0,
        &utc(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("icd10:"), "{e}");
    let mut bad = input();
    bad.birth_date = "1950-01-01".into();
    let e = build(
        bad,
        &tc(),
        FacilityKind::TownshipCenter,
        "n".into(),
        1_795_000_000_000,
        &utc(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not match birth_date"), "{e}");
    let mut bad = input();
    bad.direction = Some(Direction::Down);
    assert!(
        build(
            bad,
            &tc(),
            FacilityKind::TownshipCenter,
            "n".into(),
            0,
            &utc()
        )
        .unwrap_err()
        .to_string()
        .starts_with("direction:")
    );
    let mut down = input();
    down.to = "TC-01".into();
    let e = build(
        down.clone(),
        &ch(),
        FacilityKind::CountyHospital,
        "n".into(),
        1_795_000_000_000,
        &utc(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("care_plan:"), "{e}");
    down.care_plan = Some("daily dressing".into());
    down.follow_up = Some("review in 2 weeks".into());
    assert_eq!(
        build(
            down,
            &ch(),
            FacilityKind::CountyHospital,
            "n".into(),
            1_795_000_000_000,
            &utc()
        )
        .unwrap()
        .request
        .direction,
        Direction::Down
    );
    let mut me = input();
    me.to = "TC-01".into();
    assert!(
        build(
            me,
            &tc(),
            FacilityKind::TownshipCenter,
            "n".into(),
            0,
            &utc()
        )
        .unwrap_err()
        .to_string()
        .starts_with("to:")
    );
}

#[test]
fn each_workflow_path() {
    let county = FacilityKind::CountyHospital;
    let town = FacilityKind::TownshipCenter;
    // requested -> accepted -> arrived -> completed
    let mut r = new_referral();
    assert_eq!(derive(&r).status, Status::Requested);
    apply(&mut r, &ch(), county, act(ActKind::Accept)).unwrap();
    let d = derive(&r);
    assert_eq!(
        (d.status, d.slot.as_deref()),
        (Status::Accepted, Some("2026-12-01T09:30"))
    );
    apply(&mut r, &ch(), county, act(ActKind::Arrive)).unwrap();
    apply(&mut r, &ch(), county, act(ActKind::Complete)).unwrap();
    assert_eq!(derive(&r).status, Status::Completed);
    // requested -> rejected
    let mut r = new_referral();
    apply(&mut r, &ch(), county, act(ActKind::Reject)).unwrap();
    assert_eq!(derive(&r).status, Status::Rejected);
    // requested -> cancelled; accepted -> cancelled
    let mut r = new_referral();
    apply(&mut r, &tc(), town, act(ActKind::Cancel)).unwrap();
    assert_eq!(derive(&r).status, Status::Cancelled);
    let mut r = new_referral();
    apply(&mut r, &ch(), county, act(ActKind::Accept)).unwrap();
    apply(&mut r, &tc(), town, act(ActKind::Cancel)).unwrap();
    assert_eq!(
        derive(&r).status,
        Status::Cancelled,
        "cancel after seeing the accept is a plain transition"
    );
    assert!(!derive(&r).needs_reconciliation());
}

#[test]
fn refused_transitions_name_the_rule() {
    let county = FacilityKind::CountyHospital;
    let town = FacilityKind::TownshipCenter;
    let mut r = new_referral();
    let e = apply(&mut r, &tc(), town, act(ActKind::Accept)).unwrap_err();
    assert!(
        e.to_string().contains("TC-01 sent referral")
            && e.to_string().contains("only the receiving facility CH-01"),
        "{e}"
    );
    let e = apply(&mut r, &ch(), county, act(ActKind::Cancel)).unwrap_err();
    assert!(
        e.to_string().contains("only the sending facility TC-01"),
        "{e}"
    );
    let e = apply(&mut r, &ch(), county, act(ActKind::Arrive)).unwrap_err();
    assert!(e.to_string().contains("it is requested"), "{e}");
    let mut no_slot = act(ActKind::Accept);
    no_slot.slot = None;
    assert!(
        apply(&mut r, &ch(), county, no_slot)
            .unwrap_err()
            .to_string()
            .starts_with("slot:")
    );
    apply(&mut r, &ch(), county, act(ActKind::Reject)).unwrap();
    let e = apply(&mut r, &ch(), county, act(ActKind::Complete)).unwrap_err();
    assert!(
        e.to_string().contains("already rejected"),
        "completing a rejected referral: {e}"
    );
    let e = apply(&mut r, &tc(), town, act(ActKind::Cancel)).unwrap_err();
    assert!(e.to_string().contains("already rejected"), "{e}");
    let e = apply(
        &mut r,
        &ch(),
        county,
        ActInput {
            keep: Some("ab".into()),
            ..act(ActKind::Resolve)
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("no conflict"), "{e}");
}

/// Two copies of a referral document, as on two nodes.
fn fork(r: &Referral) -> (Automerge, Automerge) {
    let mut a = Automerge::new().with_actor(ActorId::from(vec![1u8; 24]));
    write(&mut a, r).unwrap();
    let b = a.fork().with_actor(ActorId::from(vec![2u8; 24]));
    (a, b)
}

fn act_on(
    doc: &mut Automerge,
    who: &FacilityCode,
    kind: FacilityKind,
    input: ActInput,
    id: &str,
    at: u64,
) -> Result<(), Refused> {
    let mut r = read(doc).unwrap();
    let a = make_act(&r, who, kind, "n", at, id.to_string(), input)?;
    r.acts.push(a);
    write(doc, &r).unwrap();
    Ok(())
}

fn merge_both(a: &mut Automerge, b: &mut Automerge) {
    a.merge(&mut b.clone()).unwrap();
    b.merge(&mut a.clone()).unwrap();
}

#[test]
fn offline_cancel_versus_accept_is_a_visible_conflict_until_resolved() {
    let (mut county_doc, mut town_doc) = fork(&new_referral());
    act_on(
        &mut county_doc,
        &ch(),
        FacilityKind::CountyHospital,
        act(ActKind::Accept),
        "aaaa000000000001",
        10,
    )
    .unwrap();
    act_on(
        &mut town_doc,
        &tc(),
        FacilityKind::TownshipCenter,
        act(ActKind::Cancel),
        "cccc000000000001",
        11,
    )
    .unwrap();
    merge_both(&mut county_doc, &mut town_doc);
    let (dc, dt) = (
        derive(&read(&county_doc).unwrap()),
        derive(&read(&town_doc).unwrap()),
    );
    assert_eq!(dc, dt, "both nodes show the same conflict");
    assert!(dc.needs_reconciliation());
    assert_eq!(dc.conflicts[0].acts.len(), 2);
    let kinds: Vec<ActKind> = dc.conflicts[0].acts.iter().map(|a| a.kind).collect();
    assert!(kinds.contains(&ActKind::Accept) && kinds.contains(&ActKind::Cancel));
    // Other acts wait for the resolution.
    let e = act_on(
        &mut county_doc,
        &ch(),
        FacilityKind::CountyHospital,
        act(ActKind::Arrive),
        "x",
        12,
    )
    .unwrap_err();
    assert!(e.to_string().contains("needs reconciliation"), "{e}");
    // County staff keep the cancellation; both nodes agree after sync.
    let keep = ActInput {
        keep: Some("cccc".into()),
        ..act(ActKind::Resolve)
    };
    act_on(
        &mut county_doc,
        &ch(),
        FacilityKind::CountyHospital,
        keep,
        "eeee000000000001",
        13,
    )
    .unwrap();
    merge_both(&mut county_doc, &mut town_doc);
    let (dc, dt) = (
        derive(&read(&county_doc).unwrap()),
        derive(&read(&town_doc).unwrap()),
    );
    assert_eq!(dc, dt);
    assert!(!dc.needs_reconciliation());
    assert_eq!(dc.status, Status::Cancelled);
    assert_eq!(dc.voided, vec!["aaaa000000000001".to_string()]);
    assert_eq!(
        read(&town_doc).unwrap().acts.len(),
        3,
        "no act was lost, the voided one is kept"
    );
}

#[test]
fn two_devices_booking_different_slots_conflict() {
    let (mut a, mut b) = fork(&new_referral());
    act_on(
        &mut a,
        &ch(),
        FacilityKind::CountyHospital,
        act(ActKind::Accept),
        "a1",
        1,
    )
    .unwrap();
    let mut other = act(ActKind::Accept);
    other.slot = Some("2026-12-02T14:00".into());
    act_on(&mut b, &ch(), FacilityKind::CountyHospital, other, "b1", 2).unwrap();
    merge_both(&mut a, &mut b);
    let d = derive(&read(&a).unwrap());
    assert!(
        d.conflicts[0].what.contains("two different appointments"),
        "{:?}",
        d.conflicts
    );
    // The same slot booked twice is no conflict.
    let (mut a, mut b) = fork(&new_referral());
    act_on(
        &mut a,
        &ch(),
        FacilityKind::CountyHospital,
        act(ActKind::Accept),
        "a1",
        1,
    )
    .unwrap();
    act_on(
        &mut b,
        &ch(),
        FacilityKind::CountyHospital,
        act(ActKind::Accept),
        "b1",
        2,
    )
    .unwrap();
    merge_both(&mut a, &mut b);
    assert!(!derive(&read(&a).unwrap()).needs_reconciliation());
}

#[derive(Debug, Clone)]
enum Step {
    Act {
        node: usize,
        kind: ActKind,
        slot: u8,
    },
    Sync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..2, prop_oneof![
            Just(ActKind::Accept), Just(ActKind::Reject), Just(ActKind::Arrive),
            Just(ActKind::Complete), Just(ActKind::Cancel), Just(ActKind::Resolve)
        ], 0u8..2).prop_map(|(node, kind, slot)| Step::Act { node, kind, slot }),
        1 => Just(Step::Sync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any interleaving of valid acts on two nodes converges to the same derived status on both,
    /// and no act is lost.
    #[test]
    fn any_interleaving_converges_to_the_same_status(steps in proptest::collection::vec(step(), 1..30)) {
        let (mut docs0, docs1) = fork(&new_referral());
        let mut docs = [std::mem::take(&mut docs0), docs1];
        let who = [(tc(), FacilityKind::TownshipCenter), (ch(), FacilityKind::CountyHospital)];
        let mut made = 0usize;
        for (i, s) in steps.into_iter().enumerate() {
            match s {
                Step::Sync => {
                    let [a, b] = &mut docs;
                    merge_both(a, b);
                }
                Step::Act { node, kind, slot } => {
                    // The county node resolves too (it may); pick the first conflicting act.
                    let mut input = act(kind);
                    if slot == 1 {
                        input.slot = Some("2026-12-03T08:00".into());
                    }
                    if kind == ActKind::Resolve {
                        let d = derive(&read(&docs[node]).unwrap());
                        input.keep = d.conflicts.first().map(|c| c.acts[0].id.clone());
                    }
                    let (f, k) = &who[node];
                    if act_on(&mut docs[node], f, *k, input, &format!("{i:04}{node}"), i as u64).is_ok() {
                        made += 1;
                    }
                }
            }
        }
        let [a, b] = &mut docs;
        merge_both(a, b);
        let (ra, rb) = (read(a).unwrap(), read(b).unwrap());
        prop_assert_eq!(ra.acts.len(), made, "an act was lost");
        prop_assert_eq!(derive(&ra), derive(&rb));
    }
}
