//! Honest documents built by the real document code, the way the service writes them, on
//! several nodes with concurrent edits and merges: every change passes the shadow and the rules
//! with its author's claims (change by change and as a whole document), and the same changes
//! judged with a wrong facility or role are refused. Then forgeries made with the same document
//! code by a node that skips its own checks.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ROOT, ReadDoc};

use super::*;
use crate::documents::catalog::{self, StockRow};
use crate::documents::dispensing::{self, DispensedRow, Level};
use crate::documents::note;
use crate::documents::outreach::{self, LectureInput, OutreachInput, VisitInput};
use crate::documents::referral::{self, ActInput, ActKind, Referral};
use crate::documents::result::{self, ItemClass, QcInput, ResultInput, RetestReason, TestResult};
use crate::trust::header::WellKnown;
use crate::trust::rules::{self, RuleViolation};
use crate::trust::verify::verify_whole;

const NOW: u64 = 1_795_000_000_000;

fn key() -> String {
    let k: [u8; 8] = crate::identity::random_bytes();
    k.iter().map(|b| format!("{b:02x}")).collect()
}

/// A document under test: its id, header, verified facts, and every change made, in order.
struct Case {
    id: DocId,
    header: Header,
    facts: DocFacts,
    log: Vec<Change>,
}

impl Case {
    fn new(a: &Alliance, id: DocId, header: Header) -> Case {
        Case {
            facts: facts(a, &header, &id),
            id,
            header,
            log: Vec::new(),
        }
    }

    /// A created document: `first` runs on `doc` (written by `creator`), and the header, signed
    /// by `creator`, names the change it made as the document's first.
    #[allow(clippy::too_many_arguments)]
    fn created(
        a: &Alliance,
        creator: &Node,
        id: DocId,
        kind: DocKind,
        audience: &[&str],
        parties: Parties,
        doc: &mut Automerge,
        first: impl FnOnce(&mut Automerge),
    ) -> Case {
        let ((), log) = edit(doc, first);
        assert_eq!(log.len(), 1);
        let header = signed_header(creator, id, kind, audience, parties, log[0].hash());
        let mut case = Case::new(a, id, header);
        case.log = log;
        case
    }

    /// Runs a write on `doc` and logs the changes it made.
    fn write(&mut self, doc: &mut Automerge, f: impl FnOnce(&mut Automerge)) -> Vec<Change> {
        let ((), new) = edit(doc, f);
        assert!(!new.is_empty(), "the write made no change");
        self.log.extend(new.iter().cloned());
        new
    }

    /// A document holding every change made so far.
    fn doc(&self) -> Automerge {
        let mut d = Automerge::new();
        d.apply_changes(self.log.clone()).unwrap();
        d
    }

    /// Every change passes, commit by commit, and the whole document passes and rebuilds to
    /// the same heads.
    fn passes(&self, a: &Alliance) {
        let mut sh = Shadow::new();
        for c in &self.log {
            let v = verify(
                a,
                &self.facts,
                &mut sh,
                a.signed(&self.id, std::slice::from_ref(c)),
            );
            assert_eq!(
                accepted(&v),
                vec![c.hash()],
                "{} refused {:?}",
                a.author(c).code(),
                v.refused
                    .iter()
                    .map(|r| r.reason.to_string())
                    .collect::<Vec<_>>()
            );
        }
        let mut doc = Automerge::new();
        doc.apply_changes(self.log.clone()).unwrap();
        let sigs: Vec<_> = self
            .log
            .iter()
            .map(|c| {
                (
                    c.hash(),
                    a.author(c).signer.sign_change(&self.id, &c.hash()),
                )
            })
            .collect();
        let w = verify_whole(&self.id, &doc.save(), &sigs, &self.header, a).unwrap();
        assert!(w.verdict.refused.is_empty(), "{:?}", w.verdict.refused);
        assert_eq!(w.doc.get_heads(), doc.get_heads());
        assert_eq!(w.shadow.len(), self.log.len());
        assert_eq!(w.doc.hydrate(None), doc.hydrate(None));
    }

    /// Every change is refused by the rules when judged with `wrong(author)`'s claims.
    fn refused_as(&self, a: &Alliance, wrong: impl Fn(&Node) -> SignerClaims) {
        let mut sh = Shadow::new();
        for c in &self.log {
            let k = sh.check(c).unwrap();
            let claims = wrong(a.author(c));
            let r = rules::check_change(&self.facts, &claims, &c.hash(), k.touches());
            assert!(
                r.is_err(),
                "{}'s change passed as {}",
                a.author(c).code(),
                claims.facility
            );
            sh.add(k).unwrap();
        }
    }

    /// Verifies one forged change on top of the logged ones: the rule's refusal.
    fn forged(&self, a: &Alliance, c: &Change) -> RuleViolation {
        let mut sh = Shadow::from_changes(&self.log).unwrap();
        let v = verify(
            a,
            &self.facts,
            &mut sh,
            a.signed(&self.id, std::slice::from_ref(c)),
        );
        match only_refusal(&v) {
            Refusal::Rule(r) => r.clone(),
            other => panic!("expected a rule violation, got {other}"),
        }
    }
}

fn outsider(facility: &str) -> impl Fn(&Node) -> SignerClaims + '_ {
    move |n: &Node| n.claims_as(facility, FacilityKind::TownshipCenter, &[])
}

// --- referrals -------------------------------------------------------------------------

fn create_referral(n: &Node, to: &str) -> Referral {
    let mut input = referral::tests::input();
    input.to = to.into();
    referral::build(
        input,
        &n.code(),
        n.claims.kind,
        format!("{}-20261122-0001", n.code()),
        NOW,
        &jiff::tz::TimeZone::UTC,
    )
    .unwrap()
}

/// `referral act`, as the service does it.
fn act(n: &Node, d: &mut Automerge, kind: ActKind, keep: Option<String>) {
    let mut r = referral::read(d).unwrap();
    let input = ActInput {
        kind,
        slot: Some("2026-12-01T09:30".into()),
        department: Some("普外科".into()),
        reason: Some("patient asked".into()),
        keep,
    };
    let a = referral::make_act(
        &r,
        &n.code(),
        n.claims.kind,
        &n.id().to_string(),
        NOW,
        key(),
        input,
    )
    .unwrap();
    r.acts.push(a);
    referral::write(d, &r).unwrap();
}

/// `referral note`, as the service does it.
fn ref_note(n: &Node, d: &mut Automerge, text: &str) {
    let mut r = referral::read(d).unwrap();
    r.notes.push(referral::Note {
        at: NOW,
        by: n.code().to_string(),
        text: text.into(),
    });
    referral::write(d, &r).unwrap();
}

fn referral_case(a: &Alliance, from: &Node, to: &str) -> (Case, Automerge) {
    let mut doc = from.doc();
    let r = create_referral(from, to);
    let case = Case::created(
        a,
        from,
        DocId::random(),
        DocKind::Referral,
        &[from.code().as_str(), to],
        Parties::Referral {
            from: from.code(),
            to: to.parse().unwrap(),
        },
        &mut doc,
        |d| referral::write(d, &r).unwrap(),
    );
    (case, doc)
}

#[test]
fn a_referral_s_whole_life_on_two_nodes_passes() {
    let a = Alliance::new();
    let (mut case, mut tc) = referral_case(&a, &a.tc, "CH-01");
    let mut ch = a.ch.fork(&tc);
    // Concurrently: the county accepts, the township adds a note.
    let accept = case.write(&mut ch, |d| act(&a.ch, d, ActKind::Accept, None));
    let note = case.write(&mut tc, |d| ref_note(&a.tc, d, "家属陪同"));
    sync(&mut tc, &accept);
    sync(&mut ch, &note);
    case.write(&mut ch, |d| ref_note(&a.ch, d, "床位已安排"));
    let arrive = case.write(&mut ch, |d| act(&a.ch, d, ActKind::Arrive, None));
    sync(&mut tc, &arrive);
    sync(&mut tc, &case.log[case.log.len() - 2..]);
    case.write(&mut tc, |d| ref_note(&a.tc, d, "已到达"));
    case.write(&mut ch, |d| act(&a.ch, d, ActKind::Complete, None));
    assert_eq!(
        referral::derive(&referral::read(&ch).unwrap()).status,
        referral::Status::Completed
    );
    case.passes(&a);
    case.refused_as(&a, outsider("TC-02"));
}

#[test]
fn a_conflict_and_its_resolution_pass_by_the_receiver_and_by_a_county_hospital() {
    let a = Alliance::new();
    // Receiver resolves.
    let (mut case, mut tc) = referral_case(&a, &a.tc, "CH-01");
    let mut ch = a.ch.fork(&tc);
    let accept = case.write(&mut ch, |d| act(&a.ch, d, ActKind::Accept, None));
    let cancel = case.write(&mut tc, |d| act(&a.tc, d, ActKind::Cancel, None));
    sync(&mut tc, &accept);
    sync(&mut ch, &cancel);
    let r = referral::read(&ch).unwrap();
    assert!(referral::derive(&r).needs_reconciliation());
    let keep = r
        .acts
        .iter()
        .find(|x| x.kind == ActKind::Accept)
        .unwrap()
        .id
        .clone();
    case.write(&mut ch, |d| act(&a.ch, d, ActKind::Resolve, Some(keep)));
    case.passes(&a);
    case.refused_as(&a, outsider("TC-02"));

    // Between two townships, the county hospital (not a party) resolves and adds a note.
    let (mut case, mut tc) = referral_case(&a, &a.tc, "TC-02");
    let mut tc2 = a.tc2.fork(&tc);
    let accept = case.write(&mut tc2, |d| act(&a.tc2, d, ActKind::Accept, None));
    let cancel = case.write(&mut tc, |d| act(&a.tc, d, ActKind::Cancel, None));
    let mut ch = a.ch.fork(&tc);
    sync(&mut ch, &accept);
    let keep = referral::read(&ch)
        .unwrap()
        .acts
        .iter()
        .find(|x| x.kind == ActKind::Cancel)
        .unwrap()
        .id
        .clone();
    case.write(&mut ch, |d| act(&a.ch, d, ActKind::Resolve, Some(keep)));
    case.write(&mut ch, |d| ref_note(&a.ch, d, "协调完成"));
    sync(&mut tc2, &cancel);
    case.write(&mut tc2, |d| ref_note(&a.tc2, d, "收到"));
    case.passes(&a);
    case.refused_as(&a, outsider("TC-09"));
}

#[test]
fn forged_referral_acts_are_refused_with_a_plain_reason() {
    let a = Alliance::new();
    let (mut case, mut tc) = referral_case(&a, &a.tc, "CH-01");
    let mut ch = a.ch.fork(&tc);
    case.write(&mut tc, |d| ref_note(&a.tc, d, "家属陪同"));

    // The attack: the township writes the county's "accept" of its own referral.
    let forge_act = |kind: ActKind, by: &str| {
        let mut d = a.tc.fork(&case.doc());
        let ((), c) = edit(&mut d, |d| {
            let mut r = referral::read(d).unwrap();
            r.acts.push(referral::Act {
                id: key(),
                kind,
                by: by.into(),
                node: a.tc.id().to_string(),
                at: NOW,
                seen: vec![],
                slot: Some("2026-12-01T09:30".into()),
                department: Some("普外科".into()),
                reason: None,
                keep: None,
            });
            referral::write(d, &r).unwrap();
        });
        c.into_iter().next().unwrap()
    };
    let e = case.forged(&a, &forge_act(ActKind::Accept, "CH-01"));
    assert_eq!(
        e.to_string(),
        "only the receiving facility CH-01 may accept this referral; TC-01 signed it"
    );
    assert!(matches!(
        case.forged(&a, &forge_act(ActKind::Complete, "TC-01")),
        RuleViolation::NotAllowed { .. }
    ));
    // A cancel (the sender's own act) written in the county's name.
    let e = case.forged(&a, &forge_act(ActKind::Cancel, "CH-01"));
    assert!(matches!(e, RuleViolation::WrongValue { .. }), "{e}");

    // The county rewrites the township's note, or the request.
    sync(&mut ch, &case.log);
    let mut d = a.ch.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let mut r = referral::read(d).unwrap();
        r.notes[0].text = "nothing".into();
        referral::write(d, &r).unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::OthersRecord { .. }
    ));
    let mut d = a.ch.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let mut r = referral::read(d).unwrap();
        r.request.reason = "nothing".into();
        referral::write(d, &r).unwrap();
    });
    let e = case.forged(&a, &c[0]);
    assert_eq!(
        e.to_string(),
        "only the sending facility TC-01 may write the referral's request/reason; CH-01 signed it"
    );

    // The sender changes its own cancel into an accept, deletes the county's act, replaces
    // the list of acts.
    let cancel = case.write(&mut tc, |d| act(&a.tc, d, ActKind::Cancel, None));
    let mut d = a.tc.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let acts = d.get(ROOT, "acts").unwrap().unwrap().1;
        let first = d.get(&acts, 0).unwrap().unwrap().1;
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&first, "kind", "Accept"))
            .unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::NotAllowed { .. }
    ));
    let accept = case.write(&mut ch, |d| act(&a.ch, d, ActKind::Accept, None));
    sync(&mut tc, &accept);
    sync(&mut ch, &cancel);
    let mut d = a.tc.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let mut r = referral::read(d).unwrap();
        r.acts.retain(|x| x.kind != ActKind::Accept);
        referral::write(d, &r).unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::OthersRecord { .. }
    ));
    let mut d = a.tc.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put_object(ROOT, "acts", ObjType::List))
            .unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::Malformed(_)
    ));
    // The sender makes a second list of acts, in a change of its own that depends on nothing
    // (so it names nothing it replaces), padded so its list wins the conflict: every act would
    // disappear from view. Only the document's first change may make the list.
    let mut d = Automerge::new().with_actor(crate::identity::actor_id(a.tc.id(), [7; 8]));
    let ((), c) = edit(&mut d, |d| {
        d.transact::<_, _, AutomergeError>(|tx| {
            for i in 0..200 {
                tx.put(ROOT, "pad", i)?;
            }
            tx.put_object(ROOT, "acts", ObjType::List).map(|_| ())
        })
        .unwrap();
    });
    let mut hidden = case.doc();
    hidden.apply_changes(c.clone()).unwrap();
    assert!(referral::read(&hidden).unwrap().acts.is_empty());
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::Malformed(_)
    ));
    // A party records a note in the other party's name.
    let mut d = a.ch.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let mut r = referral::read(d).unwrap();
        r.notes.push(referral::Note {
            at: NOW,
            by: "TC-01".into(),
            text: "x".into(),
        });
        referral::write(d, &r).unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::WrongValue { .. }
    ));
    case.passes(&a);
}

// --- results and QC certifications ------------------------------------------------------

fn result_input() -> ResultInput {
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
        taken_at: "2026-11-20T08:00".into(),
        clinician: "Dr. Zhao".into(),
    }
}

fn write_typed<T: autosurgeon::Reconcile>(d: &mut Automerge, v: &T) {
    d.transact::<_, _, autosurgeon::ReconcileError>(|tx| autosurgeon::reconcile(tx, v))
        .unwrap();
}

/// `result retest`, as the service does it.
fn retest(n: &Node, d: &mut Automerge) {
    let mut r: TestResult = autosurgeon::hydrate(d).unwrap();
    r.retests.push(result::Retest {
        at: NOW,
        by: n.code().to_string(),
        reason: RetestReason::Emergency,
        text: None,
    });
    write_typed(d, &r);
}

fn result_case(a: &Alliance, audience: &[&str], supersedes: Option<String>) -> (Case, Automerge) {
    let mut doc = a.tc.doc();
    let r = result::build(result_input(), "TC-01", supersedes).unwrap();
    let case = Case::created(
        a,
        &a.tc,
        DocId::random(),
        DocKind::Result,
        audience,
        Parties::Result {
            performer: a.tc.code(),
        },
        &mut doc,
        |d| write_typed(d, &r),
    );
    (case, doc)
}

#[test]
fn results_retests_and_corrections_pass() {
    let a = Alliance::new();
    // Alliance-wide: re-tested concurrently by the county and by another township.
    let (mut case, mut tc) = result_case(&a, &["*"], None);
    let mut ch = a.ch.fork(&tc);
    let mut tc2 = a.tc2.fork(&tc);
    let r1 = case.write(&mut ch, |d| retest(&a.ch, d));
    let r2 = case.write(&mut tc2, |d| retest(&a.tc2, d));
    sync(&mut tc, &r1);
    sync(&mut tc, &r2);
    case.write(&mut tc, |d| retest(&a.tc, d));
    case.passes(&a);
    case.refused_as(&a, |n| {
        if n.id() == a.tc.id() {
            n.claims_as("CH-01", FacilityKind::CountyHospital, &[])
        } else {
            n.claims_as("TC-09", FacilityKind::TownshipCenter, &[])
        }
    });
    // A correction by the performer.
    let (case2, _) = result_case(&a, &["*"], Some(case.id.to_string()));
    case2.passes(&a);

    // Held by TC-01 and CH-01 only: TC-02 may not re-test.
    let (mut case, tc) = result_case(&a, &["TC-01", "CH-01"], None);
    let mut ch = a.ch.fork(&tc);
    case.write(&mut ch, |d| retest(&a.ch, d));
    case.passes(&a);
    let mut tc2 = a.tc2.fork(&case.doc());
    let ((), c) = edit(&mut tc2, |d| retest(&a.tc2, d));
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::NotAllowed { .. }
    ));
    // The county changes the township's value; TC-01 rewrites the county's re-test.
    let mut d = a.ch.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let mut r: TestResult = autosurgeon::hydrate(d).unwrap();
        r.value = Some("5.0".into());
        write_typed(d, &r);
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::NotAllowed { .. }
    ));
    let mut d = a.tc.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let mut r: TestResult = autosurgeon::hydrate(d).unwrap();
        r.retests[0].reason = RetestReason::TooOld;
        write_typed(d, &r);
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::OthersRecord { .. }
    ));
    // A result whose content names another performer than its header.
    let id = DocId::random();
    let mut d = a.tc.doc();
    let ((), c) = edit(&mut d, |d| {
        write_typed(d, &result::build(result_input(), "CH-01", None).unwrap())
    });
    let header = signed_header(
        &a.tc,
        id,
        DocKind::Result,
        &["*"],
        Parties::Result {
            performer: a.tc.code(),
        },
        c[0].hash(),
    );
    let case = Case::new(&a, id, header);
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::WrongValue { .. }
    ));
}

#[test]
fn qc_certifications_pass_for_the_county_and_the_qc_role_only() {
    let mut a = Alliance::new();
    let id = DocId::random();
    let cert = result::build_qc(QcInput {
        number: "QC-2026-001".into(),
        facility: "TC-01".into(),
        items: vec!["0100101a".into()],
        classes: vec![],
        issuer: "Provincial clinical lab center".into(),
        level: "province".into(),
        valid_from: "2026-01-01".into(),
        valid_to: "2026-12-31".into(),
    })
    .unwrap();
    let mut doc = a.ch.doc();
    let case = Case::created(
        &a,
        &a.ch,
        id,
        DocKind::QcCert,
        &["*"],
        Parties::None,
        &mut doc,
        |d| write_typed(d, &cert),
    );
    case.passes(&a);
    case.refused_as(&a, outsider("TC-01"));
    // A township with the qc role may write it.
    a.tc.claims.roles.push(Role::Qc);
    let mut d = a.tc.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| {
        let mut c: result::QcCert = autosurgeon::hydrate(d).unwrap();
        c.valid_to = "2027-06-30".into();
        write_typed(d, &c);
    });
    let mut sh = Shadow::from_changes(&case.log).unwrap();
    let v = verify(&a, &case.facts, &mut sh, a.signed(&id, &c));
    assert_eq!(accepted(&v), vec![c[0].hash()]);
    a.tc.claims.roles.clear();
    let e = case.forged(&a, &c[0]);
    assert!(
        e.to_string()
            .contains("a county hospital or a node with the qc role"),
        "{e}"
    );
}

// --- catalog, stock, dispensing ---------------------------------------------------------

/// `catalog import`, as the service does it.
fn import(n: &Node, d: &mut Automerge, csv: &str) {
    let current = catalog::read_catalog(d).unwrap();
    let (report, mut writes) =
        catalog::plan_import(csv.as_bytes(), &current, n.code().as_str(), NOW).unwrap();
    assert!(report.rejected.is_empty());
    for w in &mut writes {
        w.carry_history(current.get(&w.code));
    }
    catalog::write_entries(d, &writes).unwrap();
}

#[test]
fn catalog_imports_pass_for_the_pharmacy_role_only() {
    let mut a = Alliance::new();
    let id = catalog::catalog_id();
    let mut case = Case::new(&a, id, Header::WellKnown(WellKnown::catalog()));
    let mut pharm = a.pharm.doc();
    let csv = catalog::sample_csv(30);
    case.write(&mut pharm, |d| import(&a.pharm, d, &csv));
    // Re-import with five entries withdrawn, on a second copy.
    let changed = csv
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if (1..=5).contains(&i) {
                l.replace("在用", "停用")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(changed, csv.replace("\r\n", "\n"));
    let mut other = a.pharm.fork(&pharm);
    case.write(&mut other, |d| import(&a.pharm, d, &changed));
    case.passes(&a);
    case.refused_as(&a, |n| {
        n.claims_as("CH-01", FacilityKind::CountyHospital, &[])
    });
    // A township writes an entry: the forgery.
    let mut d = a.tc.fork(&case.doc());
    let ((), c) = edit(&mut d, |d| import(&a.tc, d, &catalog::sample_csv(31)));
    let e = case.forged(&a, &c[0]);
    assert!(
        e.to_string()
            .starts_with("only a node with the pharmacy role may edit the drug catalog"),
        "{e}"
    );
    // A pharmacy node writes an entry in another facility's name.
    a.tc.claims.roles.push(Role::Pharmacy);
    let ((), c) = edit(&mut a.tc.fork(&case.doc()), |d| {
        let mut e = catalog::read_catalog(d)
            .unwrap()
            .into_values()
            .next()
            .unwrap();
        e.updated_by = "TC-02".into();
        e.generic_name.push('X');
        catalog::write_entries(d, &[e]).unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::WrongValue { .. }
    ));
}

#[test]
fn stock_and_dispensing_pass_for_their_facility_only() {
    let a = Alliance::new();
    let tc = a.tc.code();
    let id = catalog::stock_id("TC-01");
    let mut case = Case::new(&a, id, Header::WellKnown(WellKnown::stock(&tc)));
    let row = |q| StockRow {
        available: true,
        quantity: Some(q),
        updated_ms: NOW,
    };
    // Two devices of TC-01 create the document independently, then merge and edit on.
    let mut d1 = a.tc.doc();
    let mut d2 = a.tc_b.doc();
    let c1 = case.write(&mut d1, |d| {
        catalog::write_stock(d, "TC-01", "A1", &row(40)).unwrap()
    });
    let c2 = case.write(&mut d2, |d| {
        catalog::write_stock(d, "TC-01", "B2", &row(3)).unwrap()
    });
    sync(&mut d1, &c2);
    sync(&mut d2, &c1);
    case.write(&mut d1, |d| {
        catalog::write_stock(d, "TC-01", "B2", &row(2)).unwrap()
    });
    case.passes(&a);
    case.refused_as(&a, outsider("TC-02"));
    // The county writes TC-01's stock rows: the forgery.
    let ((), c) = edit(&mut a.ch.fork(&case.doc()), |d| {
        catalog::write_stock(d, "TC-01", "A1", &row(0)).unwrap()
    });
    let e = case.forged(&a, &c[0]);
    assert!(
        e.to_string()
            .starts_with("only TC-01 itself may write TC-01's stock rows"),
        "{e}"
    );

    let period = "2026-06";
    let id = dispensing::summary_id("TC-01", period);
    let mut case = Case::new(
        &a,
        id,
        Header::WellKnown(WellKnown::dispensing(&tc, period)),
    );
    let rows = vec![(
        "A1".to_string(),
        DispensedRow {
            quantity: 10,
            amount_fen: 1000,
            updated_ms: NOW,
        },
    )];
    let mut d = a.tc.doc();
    case.write(&mut d, |d| {
        dispensing::write(d, "TC-01", Level::Primary, period, &rows).unwrap()
    });
    let mut d2 = a.tc_b.fork(&d);
    let more = vec![("B2".to_string(), rows[0].1.clone())];
    case.write(&mut d2, |d| {
        dispensing::write(d, "TC-01", Level::Primary, period, &more).unwrap()
    });
    case.passes(&a);
    case.refused_as(&a, outsider("TC-02"));
    // TC-01 writes another month's period or another facility into this summary.
    let ((), c) = edit(&mut a.tc.fork(&case.doc()), |d| {
        dispensing::write(d, "TC-01", Level::Primary, "2026-07", &rows).unwrap()
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::WrongValue { .. }
    ));
    let ((), c) = edit(&mut a.tc.fork(&case.doc()), |d| {
        dispensing::write(d, "TC-02", Level::Primary, period, &rows).unwrap()
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::WrongValue { .. }
    ));
}

// --- outreach events, notes -------------------------------------------------------------

fn visit(n: &Node, at: &str, e: &outreach::Outreach) -> outreach::Visit {
    outreach::build_visit(
        VisitInput {
            at: at.into(),
            name: None,
            sex: "f".into(),
            age_band: "60-69".into(),
            complaint: "头晕".into(),
            screenings: vec!["血压=150/95".into()],
            advice: "low-salt diet".into(),
            referral: None,
        },
        e,
        n.code().as_str(),
        &n.id().to_string(),
    )
    .unwrap()
}

#[test]
fn an_outreach_event_with_visits_on_two_devices_passes() {
    let a = Alliance::new();
    let id = DocId::random();
    let event = outreach::build(
        OutreachInput {
            title: "高血压义诊".into(),
            township: "tc-01".into(),
            start: "2026-06-10".into(),
            end: Some("2026-06-11".into()),
            team: vec![outreach::parse_member("李明,主治医师,心内科").unwrap()],
            services: vec![],
            target_per_day: None,
        },
        "CH-01",
        "CH-01-YZ-20260610-01".into(),
        NOW,
    )
    .unwrap();
    let mut ch = a.ch.doc();
    let mut case = Case::created(
        &a,
        &a.ch,
        id,
        DocKind::Outreach,
        &["CH-01", "TC-01"],
        Parties::Outreach {
            host: a.ch.code(),
            township: a.tc.code(),
        },
        &mut ch,
        |d| outreach::write_new(d, &event).unwrap(),
    );
    // Offline on two TC-01 devices and on the county's.
    let mut t1 = a.tc.fork(&ch);
    let mut t2 = a.tc_b.fork(&ch);
    let v1 = case.write(&mut t1, |d| {
        outreach::add_record(
            d,
            "visits",
            &key(),
            &visit(&a.tc, "2026-06-10T09:00", &event),
        )
        .unwrap()
    });
    let v2 = case.write(&mut t2, |d| {
        outreach::add_record(
            d,
            "visits",
            &key(),
            &visit(&a.tc_b, "2026-06-10T09:05", &event),
        )
        .unwrap()
    });
    let l = case.write(&mut ch, |d| {
        let lecture = outreach::build_lecture(
            LectureInput {
                at: "2026-06-10T14:00".into(),
                topic: "高血压防治".into(),
                speaker: "李明".into(),
                attendees: 40,
            },
            &event,
        )
        .unwrap();
        outreach::add_record(d, "lectures", &key(), &lecture).unwrap()
    });
    for c in [&v1, &v2, &l] {
        for d in [&mut t1, &mut t2, &mut ch] {
            sync(d, c);
        }
    }
    case.write(&mut t1, |d| {
        outreach::add_record(
            d,
            "visits",
            &key(),
            &visit(&a.tc, "2026-06-11T10:00", &event),
        )
        .unwrap()
    });
    assert_eq!(outreach::read(&t1).unwrap().visits.len(), 3);
    case.passes(&a);
    case.refused_as(&a, outsider("TC-02"));
    // Another township logs a visit; the township edits the event; a device rewrites
    // another's visit or logs one in another device's name.
    let ((), c) = edit(&mut a.tc2.fork(&case.doc()), |d| {
        outreach::add_record(
            d,
            "visits",
            &key(),
            &visit(&a.tc2, "2026-06-10T11:00", &event),
        )
        .unwrap()
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::NotAllowed { .. }
    ));
    let ((), c) = edit(&mut a.tc.fork(&case.doc()), |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "title", "改名"))
            .unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::NotAllowed { .. }
    ));
    let first_of_b = outreach::read(&t1)
        .unwrap()
        .visits
        .iter()
        .find(|(_, v)| v.device == a.tc_b.id().to_string())
        .map(|(k, _)| k.clone())
        .unwrap();
    let ((), c) = edit(&mut a.tc.fork(&case.doc()), |d| {
        let mut v = visit(&a.tc, "2026-06-10T09:05", &event);
        v.advice = "changed".into();
        v.device = a.tc_b.id().to_string();
        let visits = d.get(ROOT, "visits").unwrap().unwrap().1;
        d.transact::<_, _, autosurgeon::ReconcileError>(|tx| {
            autosurgeon::reconcile_prop(tx, &visits, first_of_b.as_str(), &v)
        })
        .unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::OthersRecord { .. }
    ));
    let ((), c) = edit(&mut a.tc.fork(&case.doc()), |d| {
        let mut v = visit(&a.tc, "2026-06-10T09:30", &event);
        v.device = a.tc_b.id().to_string();
        outreach::add_record(d, "visits", &key(), &v).unwrap()
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::WrongValue { .. }
    ));
}

#[test]
fn a_note_with_entries_from_its_audience_passes() {
    let a = Alliance::new();
    let id = DocId::random();
    let mut tc = a.tc.doc();
    let by = a.tc.code();
    let mut case = Case::created(
        &a,
        &a.tc,
        id,
        DocKind::Note,
        &["TC-01", "CH-01"],
        Parties::Owner {
            facility: a.tc.code(),
        },
        &mut tc,
        |d| note::init(d, "流感季通知", Some((&by, NOW, "第一条"))).unwrap(),
    );
    let mut ch = a.ch.fork(&tc);
    let c1 = case.write(&mut ch, |d| {
        note::append(d, &a.ch.code(), NOW, "收到").unwrap()
    });
    let c2 = case.write(&mut tc, |d| note::append(d, &by, NOW, "第二条").unwrap());
    sync(&mut tc, &c1);
    sync(&mut ch, &c2);
    case.write(&mut ch, |d| {
        note::append(d, &a.ch.code(), NOW, "再次收到").unwrap()
    });
    case.passes(&a);
    case.refused_as(&a, outsider("TC-02"));
    let ((), c) = edit(&mut a.ch.fork(&case.doc()), |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "title", "改名"))
            .unwrap();
    });
    let e = case.forged(&a, &c[0]);
    assert_eq!(
        e.to_string(),
        "only its author TC-01 may write the note's title; CH-01 signed it"
    );
    let ((), c) = edit(&mut a.tc2.fork(&case.doc()), |d| {
        note::append(d, &a.tc2.code(), NOW, "x").unwrap()
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::NotAllowed { .. }
    ));
    let ((), c) = edit(&mut a.ch.fork(&case.doc()), |d| {
        let entries = d.get(ROOT, "entries").unwrap().unwrap().1;
        d.transact::<_, _, AutomergeError>(|tx| tx.delete(&entries, 0))
            .unwrap();
    });
    assert!(matches!(
        case.forged(&a, &c[0]),
        RuleViolation::OthersRecord { .. }
    ));
}
