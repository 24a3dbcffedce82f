//! Splitting and parsing untrusted chunks: what honest nodes send passes, everything else is
//! named.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, AutomergeError, Change, ObjType, ROOT};

use super::*;
use crate::trust::chunk::{
    self, CHUNK_CHANGE, CHUNK_COMPRESSED, CHUNK_DOCUMENT, ChunkError, MAX_DEPS, MAX_MESSAGE,
    MAX_OPS, MAX_OTHER_ACTORS, parse_change, split_chunks,
};

fn one_change(
    doc: &mut Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Change {
    let ((), c) = edit(doc, |d| {
        d.transact::<_, _, AutomergeError>(|tx| {
            f(tx);
            Ok(())
        })
        .unwrap();
    });
    assert_eq!(c.len(), 1);
    c.into_iter().next().unwrap()
}

#[test]
fn honest_chunks_split_and_parse_to_the_same_changes() {
    let n = Node::new("TC-01", FacilityKind::TownshipCenter, &[]);
    let mut doc = n.doc();
    for i in 0..3 {
        one_change(&mut doc, |tx| {
            tx.put(ROOT, "k", i).unwrap();
        });
    }
    let blob = doc.save_after(&[]);
    let chunks = split_chunks(&blob).unwrap();
    assert_eq!(chunks.len(), 3);
    let parsed: Vec<_> = chunks
        .iter()
        .map(|c| {
            assert_eq!(c.kind, CHUNK_CHANGE);
            parse_change(c.bytes).unwrap().hash()
        })
        .collect();
    let held: Vec<_> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
    assert_eq!(parsed, held);
    let saved = doc.save();
    let chunks = split_chunks(&saved).unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].kind, CHUNK_DOCUMENT);
    assert_eq!(
        parse_change(&saved),
        Err(ChunkError::WrongType {
            got: CHUNK_DOCUMENT
        })
    );
    assert!(split_chunks(&[]).unwrap().is_empty());
}

#[test]
fn damaged_chunks_are_named() {
    let n = Node::new("TC-01", FacilityKind::TownshipCenter, &[]);
    let mut doc = n.doc();
    let c = one_change(&mut doc, |tx| {
        tx.put(ROOT, "reason", "chest pain").unwrap();
    });
    let raw = c.raw_bytes().to_vec();
    // A flipped checksum leaves the hash alone: Automerge's parser does not look at it.
    let mut bad = raw.clone();
    bad[4] ^= 0xff;
    assert_eq!(Change::try_from(bad.as_slice()).unwrap().hash(), c.hash());
    assert_eq!(parse_change(&bad), Err(ChunkError::ChecksumMismatch));
    let mut trailing = raw.clone();
    trailing.push(0);
    assert!(matches!(
        parse_change(&trailing),
        Err(ChunkError::Unparsable(_))
    ));
    assert!(matches!(
        split_chunks(&trailing),
        Err(ChunkError::BadMagic { at }) if at == raw.len()
    ));
    assert!(matches!(
        parse_change(&raw[..raw.len() - 3]),
        Err(ChunkError::Unparsable(_))
    ));
    assert!(matches!(
        split_chunks(&raw[..raw.len() - 3]),
        Err(ChunkError::Truncated { at: 0, .. })
    ));
    assert_eq!(
        parse_change(b"not automerge"),
        Err(ChunkError::BadMagic { at: 0 })
    );
    let mut huge = raw.clone();
    huge.resize(chunk::MAX_CHANGE_BYTES + 1, 0);
    assert!(matches!(
        parse_change(&huge),
        Err(ChunkError::TooLarge { .. })
    ));
    // A length field that never ends.
    let mut endless = raw[..9].to_vec();
    endless.extend([0xff; 11]);
    assert_eq!(split_chunks(&endless), Err(ChunkError::BadLength { at: 0 }));
}

#[test]
fn compressed_changes_are_refused_before_inflating() {
    let n = Node::new("TC-01", FacilityKind::TownshipCenter, &[]);
    let mut doc = n.doc();
    let mut c = one_change(&mut doc, |tx| {
        for i in 0..40 {
            tx.put(
                ROOT,
                format!("field{i}"),
                "some longer value to make this change big",
            )
            .unwrap();
        }
    });
    let compressed = c.bytes().to_vec();
    assert_eq!(compressed[8], CHUNK_COMPRESSED);
    assert_eq!(
        parse_change(&compressed),
        Err(ChunkError::WrongType {
            got: CHUNK_COMPRESSED
        })
    );
    assert!(parse_change(c.raw_bytes()).is_ok());
}

#[test]
fn raw_bytes_with_unsorted_dependencies_are_not_canonical() {
    let a = Node::new("TC-01", FacilityKind::TownshipCenter, &[]);
    let b = Node::new("TC-02", FacilityKind::TownshipCenter, &[]);
    let mut x = a.doc();
    one_change(&mut x, |tx| {
        tx.put(ROOT, "a", 1).unwrap();
    });
    let mut y = b.doc();
    one_change(&mut y, |tx| {
        tx.put(ROOT, "b", 1).unwrap();
    });
    x.merge(&mut y).unwrap();
    let merge = one_change(&mut x, |tx| {
        tx.put(ROOT, "c", 1).unwrap();
    });
    assert_eq!(merge.deps().len(), 2);
    let mut raw = merge.raw_bytes().to_vec();
    let mut k = 9;
    while raw[k] & 0x80 != 0 {
        k += 1;
    }
    let n = k + 1;
    assert_eq!(raw[n], 2);
    let (first, second) = (raw[n + 1..n + 33].to_vec(), raw[n + 33..n + 65].to_vec());
    raw[n + 1..n + 33].copy_from_slice(&second);
    raw[n + 33..n + 65].copy_from_slice(&first);
    let unsorted = Change::try_from(raw.as_slice()).unwrap();
    raw[4..8].copy_from_slice(&unsorted.hash().0[..4]);
    assert_eq!(parse_change(&raw), Err(ChunkError::NotCanonical));
}

#[test]
fn the_caps_refuse_oversized_changes() {
    // An actor id that is not a yilian one.
    let mut doc = Automerge::new().with_actor(ActorId::random());
    let c = one_change(&mut doc, |tx| {
        tx.put(ROOT, "k", 1).unwrap();
    });
    assert_eq!(
        parse_change(c.raw_bytes()),
        Err(ChunkError::ActorLength { len: 16 })
    );

    let n = Node::new("TC-01", FacilityKind::TownshipCenter, &[]);
    // Too many operations.
    let mut doc = n.doc();
    let c = one_change(&mut doc, |tx| {
        for i in 0..=MAX_OPS {
            tx.put(ROOT, format!("k{i}"), i as u64).unwrap();
        }
    });
    assert_eq!(
        parse_change(c.raw_bytes()),
        Err(ChunkError::TooManyOps { n: MAX_OPS + 1 })
    );
    // Too long a message.
    let mut doc = n.doc();
    let ((), c) = edit(&mut doc, |d| {
        d.transact_with::<_, _, AutomergeError, _>(
            |_| CommitOptions::default().with_message("x".repeat(MAX_MESSAGE + 1)),
            |tx| tx.put(ROOT, "k", 1),
        )
        .unwrap();
    });
    assert_eq!(
        parse_change(c[0].raw_bytes()),
        Err(ChunkError::MessageTooLong {
            len: MAX_MESSAGE + 1
        })
    );
    // Too many dependencies: a change on top of 65 concurrent ones.
    let mut base = n.doc();
    one_change(&mut base, |tx| {
        tx.put(ROOT, "k", 0).unwrap();
    });
    let mut merged = n.fork(&base);
    for i in 0..=MAX_DEPS {
        let w = Node::new("TC-02", FacilityKind::TownshipCenter, &[]);
        let mut f = w.fork(&base);
        one_change(&mut f, |tx| {
            tx.put(ROOT, format!("w{i}"), 1).unwrap();
        });
        merged.merge(&mut f).unwrap();
    }
    let c = one_change(&mut merged, |tx| {
        tx.put(ROOT, "k", 2).unwrap();
    });
    // 65 heads, plus the author's own previous change.
    assert_eq!(
        parse_change(c.raw_bytes()),
        Err(ChunkError::TooManyDeps { n: MAX_DEPS + 2 })
    );
    // Too many other actors: delete 17 list elements inserted by 17 nodes.
    let mut base = n.doc();
    let list = {
        let ((), _) = edit(&mut base, |d| {
            d.transact::<_, _, AutomergeError>(|tx| {
                tx.put_object(ROOT, "l", ObjType::List).map(|_| ())
            })
            .unwrap();
        });
        automerge::ReadDoc::get(&base, ROOT, "l")
            .unwrap()
            .unwrap()
            .1
    };
    for _ in 0..=MAX_OTHER_ACTORS {
        let w = Node::new("TC-02", FacilityKind::TownshipCenter, &[]);
        let mut f = w.fork(&base);
        one_change(&mut f, |tx| {
            tx.insert(&list, 0, "x").unwrap();
        });
        base.merge(&mut f).unwrap();
    }
    let mut last = n.fork(&base);
    let c = one_change(&mut last, |tx| {
        for _ in 0..=MAX_OTHER_ACTORS {
            tx.delete(&list, 0).unwrap();
        }
    });
    assert_eq!(
        parse_change(c.raw_bytes()),
        Err(ChunkError::TooManyActors {
            n: MAX_OTHER_ACTORS + 1
        })
    );
}
