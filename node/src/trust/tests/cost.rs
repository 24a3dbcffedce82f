//! What verification costs, measured (not asserted: speed targets live in benchmarks). Run
//! with `cargo test -p yilian-node --release trust::tests::cost -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use automerge::{Automerge, Change};

use super::*;
use crate::documents::catalog;
use crate::documents::referral::{self, ActInput, ActKind};
use crate::trust::chunk::{self, parse_change};
use crate::trust::rules;
use crate::trust::sign;
use crate::trust::verify::verify_whole;

fn act(n: &Node, d: &mut Automerge, kind: ActKind, i: usize) {
    let mut r = referral::read(d).unwrap();
    let input = ActInput {
        kind,
        slot: Some("2026-12-01T09:30".into()),
        department: Some("普外科".into()),
        reason: None,
        keep: None,
    };
    let a = referral::make_act(
        &r,
        &n.code(),
        n.claims.kind,
        &n.id().to_string(),
        1,
        format!("{i:016x}"),
        input,
    )
    .unwrap();
    r.acts.push(a);
    referral::write(d, &r).unwrap();
}

/// A referral as most are: created, noted by both sides, accepted, arrived, completed.
fn referral_doc(a: &Alliance, i: usize) -> (DocId, Header, Automerge) {
    let id = DocId::random();
    let mut tc = a.tc.doc();
    let r = referral::build(
        referral::tests::input(),
        &a.tc.code(),
        FacilityKind::TownshipCenter,
        format!("TC-01-20261122-{i:04}"),
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
    let mut ch = a.ch.fork(&tc);
    act(&a.ch, &mut ch, ActKind::Accept, 3 * i);
    act(&a.ch, &mut ch, ActKind::Arrive, 3 * i + 1);
    act(&a.ch, &mut ch, ActKind::Complete, 3 * i + 2);
    let mut r = referral::read(&ch).unwrap();
    r.notes.push(referral::Note {
        at: 1,
        by: "CH-01".into(),
        text: "床位已安排".into(),
    });
    referral::write(&mut ch, &r).unwrap();
    (id, header, ch)
}

fn per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

#[test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
#[allow(clippy::print_stderr)]
fn verification_costs() {
    let a = Alliance::new();
    let docs: Vec<_> = (0..200).map(|i| referral_doc(&a, i)).collect();
    let changes: usize = docs.iter().map(|d| d.2.get_changes(&[]).len()).sum();
    let bytes: usize = docs.iter().map(|d| d.2.save().len()).sum();

    // Step by step over every change of every document.
    let (mut t_parse, mut t_sig, mut t_shadow, mut t_rules) = Default::default();
    let mut incoming = Vec::new();
    for (id, header, doc) in &docs {
        let f = facts(&a, header, id);
        let mut sh = Shadow::new();
        for c in doc.get_changes(&[]) {
            let n = a.author(&c);
            let sig = n.signer.sign_change(id, &c.hash());
            incoming.push((f.clone(), a.signed(id, std::slice::from_ref(&c))));
            let t = Instant::now();
            let p = parse_change(c.raw_bytes()).unwrap();
            t_parse += t.elapsed();
            let t = Instant::now();
            sign::verify_change(n.id(), &n.signer.public_key(), id, &p.hash(), &sig).unwrap();
            t_sig += t.elapsed();
            let t = Instant::now();
            let k = sh.check(&p).unwrap();
            t_shadow += t.elapsed();
            let t = Instant::now();
            rules::check_change(&f, &n.claims, &p.hash(), k.touches()).unwrap();
            t_rules += t.elapsed();
            sh.add(k).unwrap();
        }
    }
    // The whole pipeline, change by change.
    let t = Instant::now();
    let mut shadows: std::collections::HashMap<DocId, Shadow> = Default::default();
    for (f, inc) in incoming {
        let sh = shadows.entry(f.doc).or_default();
        let v = verify(&a, &f, sh, inc);
        assert_eq!(v.accepted.len(), 1);
    }
    let t_batch = t.elapsed();
    // Whole documents on first sync (load, verify every change, rebuild).
    let prepared: Vec<_> = docs
        .iter()
        .map(|(id, header, doc)| {
            let sigs: Vec<_> = doc
                .get_changes(&[])
                .iter()
                .map(|c| (c.hash(), a.author(c).signer.sign_change(id, &c.hash())))
                .collect();
            (*id, header.clone(), doc.save(), sigs)
        })
        .collect();
    let t = Instant::now();
    for (id, header, saved, sigs) in &prepared {
        let w = verify_whole(id, saved, sigs, header, &a).unwrap();
        assert!(w.verdict.refused.is_empty());
    }
    let t_whole = t.elapsed();
    let t = Instant::now();
    for (_, _, saved, _) in &prepared {
        let d = Automerge::load(saved).unwrap();
        let mut r = Automerge::new();
        r.apply_changes(d.get_changes(&[])).unwrap();
    }
    let t_load_rebuild = t.elapsed();
    eprintln!(
        "{} referral documents, {changes} changes ({:.1} per document, {} B saved per document)",
        docs.len(),
        changes as f64 / docs.len() as f64,
        bytes / docs.len()
    );
    eprintln!(
        "per change: parse + canonical check {:.1} µs, signature {:.1} µs, shadow {:.1} µs, rules {:.1} µs; whole batch pipeline {:.1} µs",
        per(t_parse, changes),
        per(t_sig, changes),
        per(t_shadow, changes),
        per(t_rules, changes),
        per(t_batch, changes)
    );
    eprintln!(
        "per document on first sync: verify_whole {:.0} µs (of which load + get_changes + rebuild without checks {:.0} µs)",
        per(t_whole, docs.len()),
        per(t_load_rebuild, docs.len())
    );

    // How large a catalog import fits the per-change caps (one import is one change).
    let pharm = &a.pharm;
    for n in [100usize, 500, 700, 1000] {
        let mut d = pharm.doc();
        let (report, writes) = catalog::plan_import(
            catalog::sample_csv(n).as_bytes(),
            &Default::default(),
            "CH-01",
            1,
        )
        .unwrap();
        assert!(report.rejected.is_empty());
        let ((), c) = edit(&mut d, |d| catalog::write_entries(d, &writes).unwrap());
        let c: &Change = &c[0];
        eprintln!(
            "catalog import of {n} entries: one change of {} ops, {} B; within the caps: {:?}",
            c.len(),
            c.raw_bytes().len(),
            chunk::check_caps(c)
        );
    }
}
