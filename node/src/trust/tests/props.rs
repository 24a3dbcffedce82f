//! Property tests.
//!
//! - Random honest multi-writer edit/merge histories (several nodes, restarts with fresh
//!   incarnations, maps, lists, nested objects, deletes) pass the shadow, and pass the whole
//!   pipeline whatever order and batching they arrive in.
//! - Random referral lives (acts and notes by both parties and the county, with merges in any
//!   order) pass the referral rules with the authors' claims.
//! - Random byte mutations of valid changes, presented with the original signature, never
//!   panic and are never accepted.
//! - Random structural mutations of valid changes, re-signed by their author (a hostile node
//!   signing whatever it likes), never panic; whatever is accepted applies to the document,
//!   which then still saves, loads and re-emits the accepted change under the same hash.

use automerge::legacy as lg;
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, Change, ObjId, ObjType, ROOT, ReadDoc, Value};
use proptest::prelude::*;

use super::*;
use crate::documents::referral::{self, ActInput, ActKind};
use crate::trust::guard;
use crate::trust::rules;
use crate::trust::verify::{apply_accepted, verify_whole};

fn pharmacy_alliance() -> Alliance {
    let mut a = Alliance::new();
    for n in [&mut a.tc, &mut a.tc_b, &mut a.tc2, &mut a.ch, &mut a.pharm] {
        n.claims.roles = vec![Role::Pharmacy];
    }
    a
}

/// One step of a random history: (writer, what, two parameters).
type Step = (u8, u8, u8, u8);

const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// The objects of a document: maps and lists, found by walking it.
fn objects(d: &Automerge) -> (Vec<ObjId>, Vec<ObjId>) {
    let mut maps = vec![ROOT];
    let mut lists = Vec::new();
    let mut todo = vec![ROOT];
    while let Some(o) = todo.pop() {
        let children: Vec<(Value<'_>, ObjId)> = match d.object_type(&o) {
            Ok(ObjType::List) => (0..d.length(&o))
                .filter_map(|i| d.get(&o, i).ok().flatten())
                .collect(),
            _ => d
                .keys(&o)
                .filter_map(|k| d.get(&o, k.as_str()).ok().flatten())
                .collect(),
        };
        for (v, id) in children {
            match v {
                Value::Object(ObjType::Map) => {
                    maps.push(id.clone());
                    todo.push(id);
                }
                Value::Object(ObjType::List) => {
                    lists.push(id.clone());
                    todo.push(id);
                }
                _ => {}
            }
        }
    }
    (maps, lists)
}

/// Plays a random honest history on three writers and returns every change made.
fn play(a: &Alliance, steps: &[Step]) -> (Vec<Change>, Automerge) {
    let nodes = [&a.tc, &a.ch, &a.tc2];
    let mut docs: Vec<Automerge> = nodes.iter().map(|n| n.doc()).collect();
    for &(w, what, x, y) in steps {
        let w = w as usize % docs.len();
        if what % 10 == 9 {
            // Sync another writer into this one.
            let from = (w + 1 + x as usize % 2) % docs.len();
            let mut other = docs[from].clone();
            docs[w].merge(&mut other).unwrap();
            continue;
        }
        if what % 10 == 8 {
            // The node restarts: a fresh incarnation, a new actor id.
            let node = nodes[w].id();
            docs[w].set_actor(actor_id(node, crate::identity::random_bytes()));
            continue;
        }
        let (maps, lists) = objects(&docs[w]);
        let key = KEYS[y as usize % KEYS.len()];
        docs[w]
            .transact::<_, _, AutomergeError>(|tx| {
                let m = &maps[x as usize % maps.len()];
                let l = (!lists.is_empty()).then(|| &lists[x as usize % lists.len()]);
                match (what % 10, l) {
                    (0, _) => tx.put(m, key, i64::from(y)).map(|_| ()),
                    (1, _) => tx.put_object(m, key, ObjType::Map).map(|_| ()),
                    (2, _) => tx.put_object(m, key, ObjType::List).map(|_| ()),
                    (3, _) => tx.delete(m, key),
                    (4, Some(l)) => {
                        let n = tx.length(l);
                        tx.insert(l, y as usize % (n + 1), i64::from(x))
                    }
                    (5, Some(l)) => {
                        let n = tx.length(l);
                        tx.insert_object(l, y as usize % (n + 1), ObjType::Map)
                            .map(|_| ())
                    }
                    (6, Some(l)) if tx.length(l) > 0 => {
                        let n = tx.length(l);
                        tx.delete(l, y as usize % n)
                    }
                    (7, Some(l)) if tx.length(l) > 0 => {
                        let n = tx.length(l);
                        tx.put(l, y as usize % n, "set")
                    }
                    _ => tx.put(ROOT, key, "x"),
                }
            })
            .unwrap();
    }
    let mut all = Automerge::new();
    for d in &mut docs {
        all.merge(d).unwrap();
    }
    (all.get_changes(&[]), all)
}

/// Feeds `changes` (in this order, in batches of `size`) until nothing more is accepted.
fn deliver(
    a: &Alliance,
    facts: &DocFacts,
    changes: &[Change],
    size: usize,
) -> (Shadow, Vec<Change>, Vec<Refusal>) {
    let mut sh = Shadow::new();
    let mut accepted = Vec::new();
    let mut pending: Vec<Change> = changes.to_vec();
    let mut hard = Vec::new();
    loop {
        let mut next = Vec::new();
        let before = accepted.len();
        for batch in pending.chunks(size.max(1)) {
            let v = verify(a, facts, &mut sh, a.signed(&facts.doc, batch));
            accepted.extend(v.accepted.into_iter().map(|s| s.change));
            for r in v.refused {
                if r.reason.retriable() {
                    next.extend(batch.iter().filter(|c| Some(c.hash()) == r.hash).cloned());
                } else {
                    hard.push(r.reason);
                }
            }
        }
        pending = next;
        if pending.is_empty() || accepted.len() == before {
            break;
        }
    }
    (sh, accepted, hard)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn honest_histories_pass_in_any_order_and_batching(
        steps in prop::collection::vec(any::<Step>(), 1..40),
        seed in any::<u64>(),
        size in 1usize..8,
    ) {
        let a = pharmacy_alliance();
        let (changes, all) = play(&a, &steps);
        let id = DocId::random();
        let facts = permissive(id);
        prop_assert!(Shadow::from_changes(&changes).is_ok());
        // Deterministically shuffled.
        let mut shuffled = changes.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let (_, accepted, hard) = deliver(&a, &facts, &shuffled, size);
        prop_assert!(hard.is_empty(), "{hard:?}");
        prop_assert_eq!(accepted.len(), changes.len());
        let mut rebuilt = Automerge::new();
        rebuilt.apply_changes(accepted).unwrap();
        prop_assert_eq!(rebuilt.get_heads(), all.get_heads());
        // And as a whole document.
        let sigs: Vec<_> = changes
            .iter()
            .map(|c| (c.hash(), a.author(c).signer.sign_change(&id, &c.hash())))
            .collect();
        let header = Header::WellKnown(crate::trust::header::WellKnown::catalog());
        let cat = crate::documents::catalog::catalog_id();
        let sigs_cat: Vec<_> = changes
            .iter()
            .map(|c| (c.hash(), a.author(c).signer.sign_change(&cat, &c.hash())))
            .collect();
        let w = verify_whole(&cat, &all.save(), &sigs_cat, &header, &a).unwrap();
        prop_assert!(w.verdict.refused.is_empty(), "{:?}", w.verdict.refused);
        prop_assert_eq!(w.doc.get_heads(), all.get_heads());
        // Signatures made for another document are all refused.
        let w = verify_whole(&cat, &all.save(), &sigs, &header, &a).unwrap();
        prop_assert!(w.verdict.accepted.is_empty());
    }

    #[test]
    fn random_referral_lives_pass_the_rules(
        steps in prop::collection::vec((0u8..3, 0u8..8, any::<u8>()), 1..30),
    ) {
        let a = Alliance::new();
        let id = DocId::random();
        let nodes = [&a.tc, &a.ch, &a.tc_b];
        let mut docs: Vec<Automerge> = nodes.iter().map(|n| n.doc()).collect();
        let r = referral::build(
            referral::tests::input(),
            &a.tc.code(),
            FacilityKind::TownshipCenter,
            "TC-01-20261122-0001".into(),
            1,
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap();
        referral::write(&mut docs[0], &r).unwrap();
        let first = docs[0].get_changes(&[]);
        let header = signed_header(
            &a.tc,
            id,
            DocKind::Referral,
            &["TC-01", "CH-01"],
            Parties::Referral { from: a.tc.code(), to: a.ch.code() },
            first[0].hash(),
        );
        let facts = facts(&a, &header, &id);
        for d in &mut docs[1..] {
            d.apply_changes(first.clone()).unwrap();
        }
        for (w, what, x) in steps {
            let w = w as usize;
            let n = nodes[w];
            if what == 7 {
                let from = (w + 1 + x as usize % 2) % docs.len();
                let mut other = docs[from].clone();
                docs[w].merge(&mut other).unwrap();
                continue;
            }
            let mut r = referral::read(&docs[w]).unwrap();
            if what == 6 {
                r.notes.push(referral::Note { at: 2, by: n.code().to_string(), text: format!("n{x}") });
            } else {
                let kind = [ActKind::Accept, ActKind::Reject, ActKind::Arrive, ActKind::Complete, ActKind::Cancel, ActKind::Resolve][what as usize];
                let keep = referral::derive(&r).conflicts.first().map(|c| c.acts[x as usize % 2].id.clone());
                let input = ActInput {
                    kind,
                    slot: Some(format!("2026-12-{:02}T09:30", 1 + x % 28)),
                    department: Some("普外科".into()),
                    reason: Some("r".into()),
                    keep,
                };
                let id: [u8; 8] = crate::identity::random_bytes();
                let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                match referral::make_act(&r, &n.code(), n.claims.kind, &n.id().to_string(), 2, hex, input) {
                    Ok(act) => r.acts.push(act),
                    Err(_) => continue,
                }
            }
            referral::write(&mut docs[w], &r).unwrap();
        }
        let mut all = Automerge::new();
        for d in &mut docs {
            all.merge(d).unwrap();
        }
        let changes = all.get_changes(&[]);
        let (_, accepted, hard) = deliver(&a, &facts, &changes, 3);
        prop_assert!(hard.is_empty(), "{:?}", hard.iter().map(|r| r.to_string()).collect::<Vec<_>>());
        prop_assert_eq!(accepted.len(), changes.len());
    }
}

/// A small honest history with maps, lists, nested objects, deletes and merges by three
/// nodes, in causal order.
fn seed_history(a: &Alliance) -> Vec<Change> {
    let steps: Vec<Step> = vec![
        (0, 1, 0, 0),
        (0, 2, 0, 1),
        (0, 0, 0, 2),
        (0, 4, 0, 0),
        (0, 5, 0, 1),
        (1, 9, 1, 0),
        (1, 4, 0, 3),
        (1, 7, 0, 0),
        (1, 0, 1, 3),
        (2, 9, 0, 0),
        (2, 6, 0, 0),
        (2, 3, 0, 2),
        (0, 9, 0, 0),
        (0, 0, 2, 4),
        (0, 1, 1, 1),
    ];
    play(a, &steps).0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_bytes_with_the_original_signature_are_never_accepted(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
        fix_checksum in any::<bool>(),
    ) {
        let a = pharmacy_alliance();
        let history = seed_history(&a);
        let k = pick.index(history.len());
        let c = &history[k];
        let mut bytes = c.raw_bytes().to_vec();
        for (at, b, how) in edits {
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] ^= b.max(1),
                1 => bytes[i] = b,
                2 => bytes.insert(i, b),
                _ => bytes.truncate(i.max(1)),
            }
        }
        if fix_checksum && bytes.len() > 8
            && let Ok(Ok(m)) = guard(|| Change::try_from(bytes.as_slice()))
        {
            let h = m.hash();
            bytes[4..8].copy_from_slice(&h.0[..4]);
        }
        prop_assume!(bytes != c.raw_bytes());
        let id = DocId::random();
        let facts = permissive(id);
        let mut sh = Shadow::from_changes(&history[..k]).unwrap();
        let v = verify(&a, &facts, &mut sh, vec![Incoming {
            bytes,
            sig: a.author(c).signer.sign_change(&id, &c.hash()),
        }]);
        prop_assert!(v.accepted.is_empty(), "a mutated change was accepted");
        prop_assert_eq!(v.refused.len() + v.known.len(), 1);
    }

    #[test]
    fn structurally_mutated_changes_signed_by_their_author_are_refused_or_safe(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec((0u8..12, any::<prop::sample::Index>(), any::<u16>(), any::<u8>()), 1..4),
    ) {
        let a = pharmacy_alliance();
        let history = seed_history(&a);
        let k = pick.index(history.len());
        let original = &history[k];
        let actors: Vec<automerge::ActorId> = {
            let mut v: Vec<_> = history.iter().map(|c| c.actor_id().clone()).collect();
            v.push(a.tc2.actor.clone());
            v.push(actor_id(a.tc_b.id(), [9; 8]));
            v.dedup();
            v
        };
        let mut e = original.decode();
        for (what, at, n, b) in muts {
            let n = u64::from(n % 40);
            let actor = actors[b as usize % actors.len()].clone();
            let opid = lg::OpId::new(n, &actor);
            let ops = e.operations.len();
            let op = (ops > 0).then(|| at.index(ops));
            match (what, op) {
                (0, _) => e.seq = e.seq.saturating_add(n).saturating_sub(20).max(1),
                (1, _) => e.start_op = std::num::NonZeroU64::new(n.max(1)).unwrap(),
                (2, _) => { e.deps.pop(); }
                (3, _) => e.deps.push(history[at.index(history.len())].hash()),
                (4, Some(i)) => e.operations[i].obj = if n == 0 { lg::ObjectId::Root } else { lg::ObjectId::Id(opid) },
                (5, Some(i)) => e.operations[i].key = match b % 3 {
                    0 => lg::Key::Map(KEYS[n as usize % KEYS.len()].into()),
                    1 => lg::Key::Seq(lg::ElementId::Head),
                    _ => lg::Key::Seq(lg::ElementId::Id(opid)),
                },
                (6, Some(i)) => e.operations[i].insert = !e.operations[i].insert,
                (7, Some(i)) => e.operations[i].action = match b % 6 {
                    0 => lg::OpType::Delete,
                    1 => lg::OpType::Put(automerge::ScalarValue::Int(n as i64)),
                    2 => lg::OpType::Make(ObjType::Map),
                    3 => lg::OpType::Make(ObjType::List),
                    4 => lg::OpType::Make(ObjType::Text),
                    _ => lg::OpType::Increment(1),
                },
                (8, Some(i)) => e.operations[i].pred = if b % 2 == 0 { Vec::new().into() } else { vec![opid].into() },
                (9, Some(i)) => { e.operations.remove(i); }
                (10, Some(i)) => { let o = e.operations[i].clone(); e.operations.insert(i, o); }
                (11, _) => e.actor_id = actor,
                _ => {}
            }
        }
        e.hash = None;
        let Ok(forged) = guard(|| Change::from(e)) else { return Ok(()) };
        let Some(author) = crate::identity::node_of_actor(forged.actor_id())
            .and_then(|n| a.nodes().into_iter().find(|x| x.id() == n)) else { return Ok(()) };
        let id = DocId::random();
        let facts = permissive(id);
        let mut sh = Shadow::from_changes(&history[..k]).unwrap();
        let v = verify(&a, &facts, &mut sh, vec![author.incoming(&id, &forged)]);
        // The rules never panic on whatever the shadow lets through.
        if let Ok(k2) = Shadow::from_changes(&history[..k]).unwrap().check(&forged) {
            for f in [
                permissive(id),
                facts_of(&a, DocKind::Referral),
                facts_of(&a, DocKind::Result),
                facts_of(&a, DocKind::Outreach),
                facts_of(&a, DocKind::Note),
            ] {
                for n in a.nodes() {
                    let _ = rules::check_change(&f, &n.claims, &forged.hash(), k2.touches());
                }
            }
        }
        if v.accepted.is_empty() {
            return Ok(());
        }
        prop_assert_eq!(accepted(&v), vec![forged.hash()]);
        let mut doc = Automerge::new();
        doc.apply_changes(history[..k].to_vec()).unwrap();
        let applied = apply_accepted(&mut doc, &v.accepted);
        prop_assert!(applied.is_ok(), "{applied:?}");
        let reemitted = guard(|| doc.get_change_by_hash(&forged.hash()).map(|c| c.hash()));
        prop_assert_eq!(reemitted, Ok(Some(forged.hash())));
        let saved = guard(|| doc.save());
        prop_assert!(saved.is_ok());
        let loaded = guard(|| Automerge::load(&saved.unwrap()));
        prop_assert!(matches!(&loaded, Ok(Ok(l)) if l.get_heads() == doc.get_heads()));
        let after = guard(|| doc.save_after(&history[..k].iter().map(|c| c.hash()).collect::<Vec<_>>()));
        prop_assert!(after.is_ok());
        // Later local edits still work.
        let edited = guard(|| {
            let mut d = doc.clone();
            d.set_actor(a.pharm.actor.clone());
            d.transact::<_, _, AutomergeError>(|tx| {
                for i in 0..10 {
                    tx.put(ROOT, format!("k{i}"), i)?;
                }
                Ok(())
            })
            .is_ok()
        });
        prop_assert_eq!(edited, Ok(true));
    }
}

/// Facts of a created document of `kind` with parties from the alliance.
fn facts_of(a: &Alliance, kind: DocKind) -> DocFacts {
    let parties = match kind {
        DocKind::Referral => Parties::Referral {
            from: a.tc.code(),
            to: a.ch.code(),
        },
        DocKind::Result => Parties::Result {
            performer: a.tc.code(),
        },
        DocKind::Outreach => Parties::Outreach {
            host: a.ch.code(),
            township: a.tc.code(),
        },
        _ => Parties::Owner {
            facility: a.tc.code(),
        },
    };
    DocFacts {
        doc: DocId::random(),
        kind,
        audience: Audience::new([a.tc.code(), a.ch.code()]),
        parties,
        well_known: None,
        creator: Some(a.tc.id()),
        genesis: None,
    }
}
