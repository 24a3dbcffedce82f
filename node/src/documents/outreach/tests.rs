use super::*;

pub(crate) fn event() -> Outreach {
    build(
        OutreachInput {
            title: "高血压义诊".into(),
            township: "tc-01".into(),
            start: "2026-06-10".into(),
            end: Some("2026-06-11".into()),
            team: vec![
                parse_member("李明,主治医师,心内科").unwrap(),
                parse_member("王芳,住院医师,内分泌科").unwrap(),
            ],
            services: vec![ServiceKind::Consultation, ServiceKind::Screening],
            target_per_day: None,
        },
        "CH-01",
        "CH-01-YZ-20260610-01".into(),
        1,
    )
    .unwrap()
}

fn visit(at: &str) -> VisitInput {
    VisitInput {
        at: at.into(),
        name: None,
        sex: "f".into(),
        age_band: "60-69".into(),
        complaint: "头晕".into(),
        screenings: vec!["血压=150/95".into()],
        advice: "low-salt diet, recheck in 2 weeks".into(),
        referral: None,
    }
}

#[test]
fn titles_members_and_the_event_are_checked() {
    let e = event();
    assert_eq!(e.township, "TC-01");
    assert_eq!(e.days(), 2);
    assert_eq!(e.target_per_day, DEFAULT_TARGET_PER_DAY);
    assert_eq!(
        e.below_mid_level()
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["王芳"]
    );
    assert_eq!(
        "副主任医师".parse::<Title>().unwrap(),
        Title::AssociateSenior
    );
    assert_eq!("主任医师".parse::<Title>().unwrap(), Title::Senior);
    assert_eq!("主管护师".parse::<Title>().unwrap(), Title::Intermediate);
    assert!("manager".parse::<Title>().is_err());
    assert!(parse_member("李明,主治医师").is_err());
    let mut bad = OutreachInput {
        title: "x".into(),
        township: "CH-01".into(),
        start: "2026-06-10".into(),
        end: None,
        team: e.team.clone(),
        services: vec![],
        target_per_day: None,
    };
    assert_eq!(
        build(bad.clone(), "CH-01", "n".into(), 0)
            .unwrap_err()
            .field,
        "township"
    );
    bad.township = "TC-02".into();
    bad.end = Some("2026-06-01".into());
    assert_eq!(
        build(bad.clone(), "CH-01", "n".into(), 0)
            .unwrap_err()
            .field,
        "end"
    );
    bad.end = None;
    bad.team.clear();
    assert_eq!(
        build(bad, "CH-01", "n".into(), 0).unwrap_err().field,
        "member"
    );
}

#[test]
fn visits_are_checked_against_the_event() {
    let e = event();
    let v = build_visit(visit("2026-06-10T09:05"), &e, "CH-01", "dev").unwrap();
    assert_eq!(v.patient.sex, "F");
    assert_eq!(v.screenings[0].item, "血压");
    let err = build_visit(visit("2026-06-12T09:00"), &e, "CH-01", "dev").unwrap_err();
    assert_eq!(err.field, "at");
    assert!(err.problem.contains("outside the event"));
    let mut bad = visit("2026-06-10T09:00");
    bad.age_band = "70-60".into();
    assert_eq!(
        build_visit(bad, &e, "CH-01", "dev").unwrap_err().field,
        "age_band"
    );
    let mut bad = visit("2026-06-10T09:00");
    bad.screenings = vec!["血压".into()];
    assert_eq!(
        build_visit(bad, &e, "CH-01", "dev").unwrap_err().field,
        "screening"
    );
    assert_eq!(check_age_band("80+").unwrap(), "80+");
}

#[test]
fn visits_logged_offline_on_two_devices_merge_without_loss_or_duplicates() {
    let e = event();
    let mut a = automerge::Automerge::new();
    write_new(&mut a, &e).unwrap();
    let mut b = a.fork();
    for (doc, dev) in [(&mut a, "a"), (&mut b, "b")] {
        for i in 0..50 {
            let v = build_visit(
                visit(&format!(
                    "2026-06-1{}T{:02}:{:02}",
                    i % 2,
                    8 + i / 10,
                    i % 60
                )),
                &e,
                "CH-01",
                dev,
            )
            .unwrap();
            add_record(doc, "visits", &format!("{dev}{i}"), &v).unwrap();
        }
    }
    add_record(
        &mut b,
        "lectures",
        "l1",
        &build_lecture(
            LectureInput {
                at: "2026-06-10T15:00".into(),
                topic: "高血压防治".into(),
                speaker: "李明".into(),
                attendees: 60,
            },
            &e,
        )
        .unwrap(),
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    let (ra, rb) = (read(&a).unwrap(), read(&b).unwrap());
    assert_eq!(ra, rb);
    assert_eq!(ra.visits.len(), 100);
    assert_eq!(ra.visits.values().filter(|v| v.device == "a").count(), 50);
    assert_eq!(ra.lectures.len(), 1);
    let by_day = ra.visits_by_day();
    assert_eq!(by_day["2026-06-10"], 50);
    assert_eq!(by_day["2026-06-11"], 50);
}

#[test]
fn an_event_of_a_newer_schema_is_refused_and_never_misread() {
    let mut e = event();
    let mut doc = automerge::Automerge::new();
    write_new(&mut doc, &e).unwrap();
    assert_eq!(read(&doc).unwrap(), e);
    e.schema = SCHEMA + 1;
    write_new(&mut doc, &e).unwrap();
    let err = read(&doc).unwrap_err();
    assert!(
        err.contains("outreach event has schema 2") && err.contains("upgrade yilian"),
        "{err}"
    );
    assert!(
        read(&automerge::Automerge::new())
            .unwrap_err()
            .contains("not a readable outreach event")
    );
}
