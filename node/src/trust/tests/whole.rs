//! A whole document received on first sync: loaded into a scratch copy, every change verified,
//! and a new document rebuilt from the accepted ones only.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ROOT, ReadDoc};

use super::*;
use crate::documents::referral::{self, ActKind};
use crate::trust::rules::RuleViolation;
use crate::trust::verify::{WholeError, verify_whole};

/// A referral by TC-01 to CH-01 (first change, header) and a copy on each side.
fn referral(a: &Alliance) -> (DocId, Header, Automerge) {
    let id = DocId::random();
    let mut tc = a.tc.doc();
    let r = referral::build(
        referral::tests::input(),
        &a.tc.code(),
        FacilityKind::TownshipCenter,
        "TC-01-20261122-0001".into(),
        1,
        &jiff::tz::TimeZone::UTC,
    )
    .unwrap();
    referral::write(&mut tc, &r).unwrap();
    let header = signed_header(
        &a.tc,
        id,
        DocKind::Referral,
        &["TC-01", "CH-01"],
        Parties::Referral {
            from: a.tc.code(),
            to: a.ch.code(),
        },
        tc.get_changes(&[])[0].hash(),
    );
    (id, header, tc)
}

fn sigs(
    a: &Alliance,
    id: &DocId,
    doc: &Automerge,
) -> Vec<(ChangeHash, crate::trust::sign::Signature)> {
    doc.get_changes(&[])
        .iter()
        .map(|c| (c.hash(), a.author(c).signer.sign_change(id, &c.hash())))
        .collect()
}

#[test]
fn a_whole_document_with_one_forged_change_inside_is_rebuilt_without_it() {
    let a = Alliance::new();
    let (id, header, mut tc) = referral(&a);
    let first = tc.get_changes(&[])[0].clone();
    // The township forges the county's accept, then builds a note on top of it.
    let ((), forged) = edit(&mut tc, |d| {
        let mut r = referral::read(d).unwrap();
        r.acts.push(referral::Act {
            id: "00000000000000aa".into(),
            kind: ActKind::Accept,
            by: "TC-01".into(),
            node: a.tc.id().to_string(),
            at: 1,
            seen: vec![],
            slot: Some("2026-12-01T09:30".into()),
            department: Some("普外科".into()),
            reason: None,
            keep: None,
        });
        referral::write(d, &r).unwrap();
    });
    let ((), on_top) = edit(&mut tc, |d| {
        let mut r = referral::read(d).unwrap();
        r.notes.push(referral::Note {
            at: 1,
            by: "TC-01".into(),
            text: "accepted!".into(),
        });
        referral::write(d, &r).unwrap();
    });
    // Meanwhile the county adds an honest note concurrently.
    let mut ch = a.ch.doc();
    sync(&mut ch, &[first]);
    let ((), honest) = edit(&mut ch, |d| {
        let mut r = referral::read(d).unwrap();
        r.notes.push(referral::Note {
            at: 1,
            by: "CH-01".into(),
            text: "床位已安排".into(),
        });
        referral::write(d, &r).unwrap();
    });
    sync(&mut tc, &honest);
    let w = verify_whole(&id, &tc.save(), &sigs(&a, &id, &tc), &header, &a).unwrap();
    let r = reasons(&w.verdict);
    assert!(matches!(
        r[&Some(forged[0].hash())],
        Refusal::Rule(RuleViolation::NotAllowed { .. })
    ));
    assert_eq!(
        r[&Some(on_top[0].hash())],
        Refusal::DependsOnRefused {
            hash: forged[0].hash(),
            retriable: false
        }
    );
    assert_eq!(w.verdict.accepted.len(), 2);
    assert!(w.doc.get_change_meta_by_hash(&honest[0].hash()).is_some());
    assert!(w.doc.get_change_meta_by_hash(&forged[0].hash()).is_none());
    let rebuilt = referral::read(&w.doc).unwrap();
    assert!(rebuilt.acts.is_empty());
    assert_eq!(rebuilt.notes.len(), 1);
    assert_eq!(w.shadow.len(), 2);
}

#[test]
fn a_whole_document_is_refused_when_it_is_not_one_complete_signed_document() {
    let a = Alliance::new();
    let (id, header, tc) = referral(&a);
    let s = sigs(&a, &id, &tc);
    // Verifies as it is.
    assert!(verify_whole(&id, &tc.save(), &s, &header, &a).is_ok());
    // Another document's id: the header was made for this one.
    let other = DocId::random();
    assert!(matches!(
        verify_whole(&other, &tc.save(), &s, &header, &a),
        Err(WholeError::Header(_))
    ));
    // A change chunk instead of a document; a document followed by anything.
    let blob = tc.save_after(&[]);
    assert!(matches!(
        verify_whole(&id, &blob, &s, &header, &a),
        Err(WholeError::NotADocument(_))
    ));
    let mut more = tc.save();
    more.extend_from_slice(&blob);
    assert!(matches!(
        verify_whole(&id, &more, &s, &header, &a),
        Err(WholeError::NotADocument(_))
    ));
    // A document holding a change whose dependency it lacks (saved with its orphan).
    let mut later = a.ch.fork(&tc);
    let ((), c1) = edit(&mut later, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "x", 1))
            .unwrap();
    });
    let ((), c2) = edit(&mut later, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "x", 2))
            .unwrap();
    });
    let mut orphaned = Automerge::load(&tc.save()).unwrap();
    orphaned.apply_changes(c2.clone()).unwrap();
    assert_eq!(orphaned.get_missing_deps(&[]), vec![c1[0].hash()]);
    assert!(matches!(
        verify_whole(&id, &orphaned.save(), &s, &header, &a),
        Err(WholeError::NotADocument(_) | WholeError::MissingDependencies(_))
    ));
    // Corrupted bytes.
    let mut bad = tc.save();
    let n = bad.len();
    bad[n - 5] ^= 0x5a;
    assert!(matches!(
        verify_whole(&id, &bad, &s, &header, &a),
        Err(WholeError::Load(_) | WholeError::NotADocument(_))
    ));
    // A change without its signature is refused; what depends on it too.
    let mut ch = a.ch.fork(&tc);
    let ((), note) = edit(&mut ch, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "y", 1))
            .unwrap();
    });
    let w = verify_whole(&id, &ch.save(), &s, &header, &a).unwrap();
    assert_eq!(
        reasons(&w.verdict)[&Some(note[0].hash())],
        Refusal::Unsigned
    );
    assert_eq!(w.doc.get_heads(), tc.get_heads());
}
