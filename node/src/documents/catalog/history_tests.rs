//! The essential flag's history in the catalog document: entries written before it existed
//! still read, a change is recorded once, and two pharmacy nodes' changes merge.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};

use super::*;

fn entry(essential: bool, at: u64) -> CatalogEntry {
    let csv = sample_csv(1);
    let (_, mut w) = plan_import(csv.as_bytes(), &BTreeMap::new(), "CH-01", at).unwrap();
    let mut e = w.remove(0);
    e.essential = essential;
    e
}

#[test]
fn an_entry_written_before_the_history_existed_reads_with_none() {
    let e = entry(true, 1);
    let mut doc = Automerge::new();
    write_entries(&mut doc, std::slice::from_ref(&e)).unwrap();
    // Remove the field, as a catalog written by an earlier yilian lacks it.
    let obj = match doc.get(automerge::ROOT, e.code.as_str()).unwrap() {
        Some((_, id)) => id,
        None => panic!("entry not written"),
    };
    doc.transact::<_, _, automerge::AutomergeError>(|tx| tx.delete(&obj, "essential_history"))
        .unwrap();
    let read = read_catalog(&doc).unwrap();
    assert_eq!(read[&e.code].essential_history, vec![]);
    assert!(read[&e.code].essential_at(0) && read[&e.code].essential_at(u64::MAX));
}

#[test]
fn a_flag_change_is_recorded_once_and_other_edits_keep_the_history() {
    let old = entry(true, 1_000);
    let mut flip = entry(false, 5_000);
    flip.carry_history(Some(&old));
    assert_eq!(
        flip.essential_history,
        vec![
            EssentialSince {
                since_ms: 0,
                essential: true
            },
            EssentialSince {
                since_ms: 5_000,
                essential: false
            },
        ]
    );
    assert!(flip.essential_at(4_999) && !flip.essential_at(5_000));
    // A later edit of another field keeps the history as it is.
    let mut renamed = entry(false, 9_000);
    renamed.manufacturer = "另一家".into();
    renamed.carry_history(Some(&flip));
    assert_eq!(renamed.essential_history, flip.essential_history);
    assert!(renamed.same_content(&CatalogEntry {
        essential_history: vec![],
        ..renamed.clone()
    }));
    // New entries start without one.
    let mut new = entry(true, 1);
    new.carry_history(None);
    assert!(new.essential_history.is_empty());
}

#[test]
fn changes_from_two_pharmacy_nodes_merge_into_one_history() {
    let base = entry(true, 1);
    let mut a = Automerge::new();
    write_entries(&mut a, std::slice::from_ref(&base)).unwrap();
    let mut b = a.fork();
    let mut off = entry(false, 5_000);
    off.carry_history(Some(&base));
    write_entries(&mut a, std::slice::from_ref(&off)).unwrap();
    let mut off_b = entry(false, 6_000);
    off_b.carry_history(Some(&base));
    write_entries(&mut b, std::slice::from_ref(&off_b)).unwrap();
    a.merge(&mut b).unwrap();
    // The next import on either node carries the merged history and adds its change.
    let current = read_catalog(&a).unwrap()[&base.code].clone();
    assert_eq!(current.essential_history.len(), 4);
    let mut on_again = entry(true, 7_000);
    on_again.carry_history(Some(&current));
    write_entries(&mut a, std::slice::from_ref(&on_again)).unwrap();
    let merged = &read_catalog(&a).unwrap()[&base.code];
    assert_eq!(merged.essential_history.len(), 5);
    // Whatever order the merged list has, the flag at each time follows the changes.
    assert!(merged.essential_at(4_000));
    assert!(!merged.essential_at(5_500) && !merged.essential_at(6_500));
    assert!(merged.essential_at(7_000));
}
