//! Store tests against real redb files in temporary directories.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc};
use proptest::prelude::*;

use super::*;
use crate::documents::{self, Audience, DocKind};
use crate::ids::{DocId, NodeId};

fn node() -> NodeId {
    NodeId([7; 16])
}

fn opts(cache_docs: usize, compact_min_bytes: u64) -> StoreOptions {
    StoreOptions {
        cache_docs,
        compact_min_bytes,
    }
}

fn new_doc(actor: &ActorId, title: &str) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor.clone());
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "title", title)?;
        tx.put_object(ROOT, "items", ObjType::List)?;
        Ok(())
    })
    .unwrap();
    doc
}

fn run<R>(
    store: &mut Store,
    f: impl FnOnce(&mut Batch<'_>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let mut b = store.batch()?;
    let r = f(&mut b);
    match r {
        Ok(v) => {
            b.commit()?;
            Ok(v)
        }
        Err(e) => {
            b.rollback();
            Err(e)
        }
    }
}

#[test]
fn documents_survive_reopen_with_identical_heads_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut store = Store::create(&path, node(), opts(16, 64)).unwrap();
    let actor = store.actor().clone();
    let mut expected = Vec::new();
    for i in 0..20 {
        let info = run(&mut store, |b| {
            b.create(
                DocKind::Note,
                Audience::default(),
                new_doc(&actor, &format!("doc {i}")),
            )
        })
        .unwrap();
        for j in 0..i {
            run(&mut store, |b| {
                b.edit(&info.id, |d| {
                    d.transact::<_, _, automerge::AutomergeError>(|tx| {
                        tx.put(ROOT, format!("k{j}"), j as i64)?;
                        Ok(())
                    })
                    .map(|_| ())
                    .map_err(|f| StoreError::Invalid(f.error.to_string()))
                })
            })
            .unwrap();
        }
        let (json, heads) = run(&mut store, |b| {
            b.read(&info.id, |d| (documents::to_json(d), d.get_heads()))
        })
        .unwrap();
        expected.push((info.id, json, heads));
    }
    drop(store);
    let mut store = Store::open(&path, node(), opts(4, 64)).unwrap();
    for (id, json, heads) in &expected {
        let (j, h) = run(&mut store, |b| {
            b.read(id, |d| (documents::to_json(d), d.get_heads()))
        })
        .unwrap();
        assert_eq!(&j, json);
        assert_eq!(&h, heads);
        let info = run(&mut store, |b| b.info(id)).unwrap();
        let mut sorted: Vec<[u8; 32]> = heads.iter().map(|h| h.0).collect();
        sorted.sort();
        assert_eq!(
            info.heads, sorted,
            "stored heads disagree with the document"
        );
    }
    let stats = run(&mut store, |b| b.stats()).unwrap();
    assert_eq!(stats.docs_total, 20);
    assert_eq!(stats.docs_by_kind.get("note"), Some(&20));
}

#[test]
fn change_sequence_keeps_one_entry_per_document_in_change_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::create(&dir.path().join("s.redb"), node(), StoreOptions::default()).unwrap();
    let actor = store.actor().clone();
    let a = run(&mut store, |b| {
        b.create(DocKind::Note, Audience::default(), new_doc(&actor, "a"))
    })
    .unwrap();
    let b_ = run(&mut store, |b| {
        b.create(DocKind::Note, Audience::default(), new_doc(&actor, "b"))
    })
    .unwrap();
    run(&mut store, |b| {
        b.edit(&a.id, |d| {
            d.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "x", 1))
                .map(|_| ())
                .map_err(|f| StoreError::Invalid(f.error.to_string()))
        })
    })
    .unwrap();
    let changes = run(&mut store, |b| b.changes_since(0, 100)).unwrap();
    let ids: Vec<DocId> = changes.iter().map(|c| c.1).collect();
    assert_eq!(
        ids,
        vec![b_.id, a.id],
        "a changed last, so it comes last, once"
    );
    let after_first = run(&mut store, |b| b.changes_since(changes[0].0, 100)).unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(run(&mut store, |b| b.stats()).unwrap().last_seq, 3);
}

#[test]
fn ids_resolve_from_unique_prefixes_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::create(&dir.path().join("s.redb"), node(), StoreOptions::default()).unwrap();
    let actor = store.actor().clone();
    let mk = |n: u8| DocId([n, 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, n]);
    for n in [0xab, 0xac] {
        run(&mut store, |b| {
            b.insert_new(
                mk(n),
                DocKind::Note,
                Audience::default(),
                new_doc(&actor, "x"),
            )
        })
        .unwrap();
    }
    run(&mut store, |b| {
        assert_eq!(b.resolve("ab11")?, mk(0xab));
        assert_eq!(b.resolve("AC11")?, mk(0xac));
        assert_eq!(b.resolve(&mk(0xab).to_string())?, mk(0xab));
        assert!(matches!(b.resolve("a"), Err(StoreError::Invalid(_))));
        assert!(matches!(b.resolve("abz1"), Err(StoreError::Invalid(_))));
        assert!(matches!(b.resolve("ffff"), Err(StoreError::NotFound(_))));
        assert!(
            matches!(b.resolve("ab1"), Err(StoreError::Invalid(_))),
            "3 chars is too short"
        );
        // "ab" + "1" matches both? No: both start with ab/ac; "a" prefixes are too short, so
        // check ambiguity with a shared 4-char prefix instead.
        Ok(())
    })
    .unwrap();
    run(&mut store, |b| {
        b.insert_new(
            DocId([0xab, 0x11, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]),
            DocKind::Note,
            Audience::default(),
            new_doc(&actor, "y"),
        )
    })
    .unwrap();
    let err = run(&mut store, |b| b.resolve("ab11")).unwrap_err();
    assert!(matches!(err, StoreError::Ambiguous { .. }), "{err}");
    assert!(err.to_string().contains("more than one"));
}

#[test]
fn garbage_and_truncated_imports_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::create(&dir.path().join("s.redb"), node(), StoreOptions::default()).unwrap();
    let actor = store.actor().clone();
    let good = new_doc(&actor, "good").save();
    let kept = run(&mut store, |b| {
        b.import(&good, DocKind::Note, Audience::default())
    })
    .unwrap();
    for bad in [
        &good[..good.len() / 2],
        b"not automerge at all".as_slice(),
        &[],
    ] {
        let err = run(&mut store, |b| {
            b.import(bad, DocKind::Note, Audience::default())
        })
        .unwrap_err();
        assert!(matches!(err, StoreError::InvalidDocument(_)), "{err}");
    }
    let list = run(&mut store, |b| b.list(None)).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, kept.id);
    let heads = run(&mut store, |b| b.read(&kept.id, |d| d.get_heads())).unwrap();
    assert_eq!(heads, Automerge::load(&good).unwrap().get_heads());
}

#[test]
fn a_damaged_store_file_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    drop(Store::create(&path, node(), StoreOptions::default()).unwrap());
    std::fs::write(
        &path,
        b"this is not a redb file, just text that got copied over it",
    )
    .unwrap();
    let err = Store::open(&path, node(), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt { .. } | StoreError::Io(_) | StoreError::Database(_)
        ),
        "{err}"
    );
    let missing = Store::open(
        &dir.path().join("none.redb"),
        node(),
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(missing.to_string().contains("yilian init"), "{missing}");
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, i64),
    Text(u8, String),
    Push(i64),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, any::<i64>()).prop_map(|(k, v)| Op::Put(k, v)),
        (0u8..6, "[a-z转诊 ]{0,40}").prop_map(|(k, v)| Op::Text(k, v)),
        any::<i64>().prop_map(Op::Push),
        (0u8..6).prop_map(Op::Delete),
    ]
}

fn apply(doc: &mut Automerge, op: &Op) {
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        match op {
            Op::Put(k, v) => tx.put(ROOT, format!("k{k}"), *v)?,
            Op::Text(k, v) => tx.put(ROOT, format!("k{k}"), v.as_str())?,
            Op::Push(v) => {
                let (_, items) = tx.get(ROOT, "items")?.expect("items list");
                let n = tx.length(&items);
                tx.insert(&items, n, *v)?;
            }
            Op::Delete(k) => tx.delete(ROOT, format!("k{k}"))?,
        }
        Ok(())
    })
    .expect("op applies");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Compaction (at any threshold) and reloading from disk keep content and heads identical
    /// to a document that received the same edits in memory.
    #[test]
    fn compaction_keeps_content_and_heads(
        ops in proptest::collection::vec(op(), 1..60),
        compact_min in prop_oneof![Just(0u64), Just(200), Just(1_000_000)],
        cache in 1usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let mut store = Store::create(&path, node(), opts(cache, compact_min)).unwrap();
        let actor = store.actor().clone();
        let mut reference = new_doc(&actor, "ref");
        let id = run(&mut store, |b| b.create(DocKind::Note, Audience::default(), reference.clone())).unwrap().id;
        // A second document competes for the cache so edits reload from disk.
        run(&mut store, |b| b.create(DocKind::Note, Audience::default(), new_doc(&actor, "other"))).unwrap();
        for (i, o) in ops.iter().enumerate() {
            apply(&mut reference, o);
            run(&mut store, |b| b.edit(&id, |d| { apply(d, o); Ok(()) })).unwrap();
            if i % 7 == 0 {
                let other = run(&mut store, |b| b.list(None)).unwrap();
                for d in other { run(&mut store, |b| b.read(&d.id, |_| ())).unwrap(); }
            }
        }
        drop(store);
        let mut store = Store::open(&path, node(), opts(cache, compact_min)).unwrap();
        let (json, heads, saved) = run(&mut store, |b| b.read(&id, |d| (documents::to_json(d), d.get_heads(), d.save()))).unwrap();
        prop_assert_eq!(json, documents::to_json(&reference));
        prop_assert_eq!(heads, reference.get_heads());
        prop_assert_eq!(saved, reference.save());
        // The whole document as sent to a new peer (the stored snapshot when there are no
        // increments, else encoded afresh), read cold and warm, is the reference document.
        drop(store);
        for warm in [false, true] {
            let mut store = Store::open(&path, node(), opts(cache, compact_min)).unwrap();
            if warm {
                run(&mut store, |b| b.read(&id, |_| ())).unwrap();
            }
            let (bytes, heads, whole) = run(&mut store, |b| b.changes_after(&id, &[])).unwrap();
            prop_assert!(whole);
            prop_assert_eq!(&heads, &reference.get_heads());
            let sent = Automerge::load(&bytes).unwrap();
            prop_assert_eq!(sent.get_heads(), reference.get_heads());
            prop_assert_eq!(documents::to_json(&sent), documents::to_json(&reference));
        }
    }
}

#[test]
fn every_opening_writes_with_an_actor_id_of_its_own_and_keeps_the_store_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut store = Store::create(&path, node(), opts(16, 64)).unwrap();
    let first = store.actor().clone();
    let store_id = store.store_id();
    let actor = first.clone();
    let id = run(&mut store, |b| {
        b.create(DocKind::Note, Audience::default(), new_doc(&actor, "x"))
    })
    .unwrap()
    .id;
    drop(store);
    // A copy of the file, as a backup would be.
    let copy = dir.path().join("copy.redb");
    std::fs::copy(&path, &copy).unwrap();
    let mut actors = vec![first];
    for (n, p) in [&path, &copy, &path].into_iter().enumerate() {
        let mut store = Store::open(p, node(), opts(16, 64)).unwrap();
        assert_eq!(store.store_id(), store_id, "a restart is not a reset");
        assert_eq!(crate::identity::node_of_actor(store.actor()), Some(node()));
        assert!(!actors.contains(store.actor()), "an actor id was reused");
        actors.push(store.actor().clone());
        // Edits made through the store use the opening's actor id.
        let author = run(&mut store, |b| {
            b.edit(&id, |d| {
                d.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "k", n as i64))
                    .map(|_| ())
                    .map_err(|f| StoreError::Invalid(f.error.to_string()))
            })?;
            b.read(&id, |d| {
                let h = d.get_heads();
                d.get_change_by_hash(&h[0]).unwrap().actor_id().clone()
            })
        })
        .unwrap();
        assert_eq!(&author, store.actor(), "opening of {}", p.display());
    }
}

#[test]
fn runs_name_each_opening_from_the_sequence_number_it_starts_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut store = Store::create(&path, node(), opts(16, 64)).unwrap();
    let actor = store.actor().clone();
    for i in 0..3 {
        run(&mut store, |b| {
            b.create(
                DocKind::Note,
                Audience::default(),
                new_doc(&actor, &format!("{i}")),
            )
        })
        .unwrap();
    }
    drop(store);
    // An opening that only reads records nothing (it commits nothing at all).
    let recorded = |path: &std::path::Path| -> Vec<(u64, [u8; 8])> {
        use redb::{ReadableDatabase, ReadableTable};
        let db = redb::Database::open(path).unwrap();
        let rtx = db.begin_read().unwrap();
        let t = rtx.open_table(tables::RUNS).unwrap();
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value())
            })
            .collect()
    };
    let before = recorded(&path);
    assert_eq!(before.len(), 1);
    {
        let mut store = Store::open(&path, node(), opts(16, 64)).unwrap();
        run(&mut store, |b| b.list(None)).unwrap();
    }
    assert_eq!(
        recorded(&path),
        before,
        "a read-only opening recorded a run"
    );
    let mut store = Store::open(&path, node(), opts(16, 64)).unwrap();
    let runs = run(&mut store, |b| b.runs()).unwrap();
    let starts: Vec<u64> = runs.0.iter().map(|(s, _)| *s).collect();
    // This process's own run starts where its first write will go.
    assert_eq!(starts, [1, 4]);
    assert_eq!(runs.at(0), None);
    assert_eq!(runs.at(3), Some(runs.0[0].1));
    assert_eq!(runs.at(4), Some(runs.0[1].1));
    assert_eq!(runs.at(900), Some(runs.0[1].1));
    assert_ne!(runs.0[0].1, runs.0[1].1);
    let mine = runs.0[1].1;
    // Once it writes, the run is on disk for the next process to see.
    let actor = store.actor().clone();
    run(&mut store, |b| {
        b.create(DocKind::Note, Audience::default(), new_doc(&actor, "3"))
    })
    .unwrap();
    drop(store);
    let mut store = Store::open(&path, node(), opts(16, 64)).unwrap();
    let runs = run(&mut store, |b| b.runs()).unwrap();
    assert_eq!(runs.0[1], (4, mine));
    assert_eq!(runs.0[2].0, 5);
}

#[test]
fn version_3_stores_get_runs_and_drop_checkpoints_that_name_none() {
    use redb::ReadableDatabase;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let peer = NodeId([9; 16]);
    {
        let mut store = Store::create(&path, node(), opts(16, 64)).unwrap();
        let actor = store.actor().clone();
        run(&mut store, |b| {
            b.create(DocKind::Note, Audience::default(), new_doc(&actor, "x"))
        })
        .unwrap();
        run(&mut store, |b| {
            b.set_peer_checkpoint(
                &peer,
                Checkpoint {
                    store_id: [1; 16],
                    seq: 5,
                    run: [2; 8],
                },
            )
        })
        .unwrap();
    }
    // Make it look like version 3: no runs table, a 24-byte checkpoint.
    {
        let db = redb::Database::create(&path).unwrap();
        let wtx = db.begin_write().unwrap();
        wtx.delete_table(tables::RUNS).unwrap();
        wtx.open_table(tables::META)
            .unwrap()
            .insert("schema_version", 3u32.to_be_bytes().as_slice())
            .unwrap();
        let mut old = vec![1u8; 16];
        old.extend_from_slice(&5u64.to_be_bytes());
        wtx.open_table(tables::PEER_CHECKPOINTS)
            .unwrap()
            .insert(peer.0, old.as_slice())
            .unwrap();
        wtx.commit().unwrap();
        let rtx = db.begin_read().unwrap();
        assert!(rtx.open_table(tables::RUNS).is_err());
    }
    let mut store = Store::open(&path, node(), opts(16, 64)).unwrap();
    let (runs, cp) = run(&mut store, |b| Ok((b.runs()?, b.peer_checkpoint(&peer)?))).unwrap();
    assert_eq!(runs.0.len(), 2, "{runs:?}");
    assert_eq!(runs.0[0].0, 1);
    assert_eq!(cp, None, "a checkpoint without a run cannot be checked");
}
