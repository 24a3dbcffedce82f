//! Every hostile case of the research note (`automerge-trust.md`, section 4), as received by a
//! verifying node: each is refused with the right reason, nothing hostile is accepted, and
//! nothing panics. The forged changes are validly signed by the node whose actor they use (a
//! hostile or compromised author), so only the structural checks stand between them and
//! Automerge. Cases the probe found to panic or corrupt Automerge are also applied to a copy
//! of the document after verification to show the copy stays usable.

use automerge::legacy as lg;
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, Change, ExpandedChange, ObjId, ObjType, ROOT, ReadDoc};

use super::*;
use crate::trust::chunk::ChunkError;
use crate::trust::shadow::ShadowError;
use crate::trust::verify::apply_accepted;

/// A change like `c` with `f` applied to its decoded form (hash recomputed).
fn forge(c: &Change, f: impl FnOnce(&mut ExpandedChange)) -> Change {
    let mut e = c.decode();
    f(&mut e);
    e.hash = None;
    Change::from(e)
}

/// Genesis by TC-01 (`request: {reason, doctor}`, `acts: []`) and two county changes on it.
struct Base {
    a: Alliance,
    id: DocId,
    facts: DocFacts,
    doc: Automerge,
    req: ObjId,
    acts: ObjId,
    genesis: Change,
    c1: Change,
    c2: Change,
}

fn base() -> Base {
    let a = Alliance::new();
    let id = DocId::random();
    let mut doc = a.tc.doc();
    let ((req, acts), g) = edit(&mut doc, |d| {
        d.transact::<_, _, AutomergeError>(|tx| {
            let req = tx.put_object(ROOT, "request", ObjType::Map)?;
            tx.put(&req, "reason", "chest pain")?;
            tx.put(&req, "doctor", "Li")?;
            let acts = tx.put_object(ROOT, "acts", ObjType::List)?;
            Ok((req, acts))
        })
        .unwrap()
        .result
    });
    let mut county = a.ch.fork(&doc);
    let ((), c1) = edit(&mut county, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&req, "status", "received"))
            .unwrap();
    });
    let ((), c2) = edit(&mut county, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&req, "status", "accepted"))
            .unwrap();
    });
    Base {
        facts: permissive(id),
        id,
        doc,
        req,
        acts,
        genesis: g[0].clone(),
        c1: c1[0].clone(),
        c2: c2[0].clone(),
        a: {
            let mut a = a;
            // Every node may write anything here: only structure is under test.
            for n in [&mut a.tc, &mut a.ch, &mut a.tc2] {
                n.claims.roles.push(Role::Pharmacy);
            }
            a
        },
    }
}

impl Base {
    /// A shadow holding the genesis (and `more`).
    fn shadow(&self, more: &[&Change]) -> Shadow {
        let mut all = vec![self.genesis.clone()];
        all.extend(more.iter().map(|c| (*c).clone()));
        Shadow::from_changes(&all).unwrap()
    }

    /// A document holding the genesis (and `more`).
    fn document(&self, more: &[&Change]) -> Automerge {
        let mut d = Automerge::new();
        d.apply_changes([self.genesis.clone()]).unwrap();
        d.apply_changes(more.iter().map(|c| (*c).clone())).unwrap();
        d
    }

    /// Signed by the author of its actor.
    fn signed(&self, c: &Change) -> Incoming {
        self.a.author(c).incoming(&self.id, c)
    }

    /// Verifies `c` against a document holding the genesis and `more`; checks that nothing is
    /// accepted and that the document, given what was accepted, still saves and loads.
    fn refuse(&self, more: &[&Change], c: &Change) -> Refusal {
        let mut sh = self.shadow(more);
        let v = verify(&self.a, &self.facts, &mut sh, vec![self.signed(c)]);
        let mut doc = self.document(more);
        apply_accepted(&mut doc, &v.accepted).unwrap();
        Automerge::load(&doc.save()).unwrap();
        only_refusal(&v).clone()
    }
}

fn structure(r: &Refusal) -> &ShadowError {
    match r {
        Refusal::Structure(e) => e,
        other => panic!("expected a structural refusal, got {other:?}"),
    }
}

fn opid(ctr: u64, actor: &automerge::ActorId) -> lg::OpId {
    lg::OpId::new(ctr, actor)
}

fn obj_opid(o: &ObjId) -> lg::OpId {
    match o {
        ObjId::Id(c, a, _) => lg::OpId::new(*c, a),
        ObjId::Root => unreachable!("not the root"),
    }
}

#[test]
fn a_unknown_actor_at_seq_50_is_a_sequence_gap() {
    let b = base();
    let f = forge(&b.c1, |e| e.seq = 50);
    let r = b.refuse(&[], &f);
    assert_eq!(structure(&r), &ShadowError::SeqGap { seq: 50, last: 0 });
}

#[test]
fn b_a_gap_in_a_known_actor_s_sequence_is_refused() {
    let b = base();
    let f = forge(&b.c2, |e| e.seq = 5);
    let r = b.refuse(&[&b.c1], &f);
    assert_eq!(structure(&r), &ShadowError::SeqGap { seq: 5, last: 1 });
}

#[test]
fn c_a_second_change_at_a_held_sequence_number_is_equivocation_evidence() {
    let b = base();
    let dup = forge(&b.c1, |e| {
        e.operations[0].action = lg::OpType::Put("rejected".into());
    });
    let mut sh = b.shadow(&[&b.c1]);
    let v = verify(&b.a, &b.facts, &mut sh, vec![b.signed(&dup)]);
    assert_eq!(
        only_refusal(&v),
        &Refusal::Equivocation {
            actor: b.a.ch.actor.clone(),
            seq: 1,
            other: b.c1.hash()
        }
    );
    assert_eq!(v.evidence.len(), 1);
    let ev = &v.evidence[0];
    assert_eq!((ev.first.hash, ev.second.hash), (b.c1.hash(), dup.hash()));
    assert_eq!(ev.second.signed.as_ref().unwrap().0, dup.raw_bytes());
}

#[test]
fn c_prime_an_honest_change_in_the_same_batch_as_a_duplicate_still_applies() {
    let b = base();
    let dup = forge(&b.c1, |e| {
        e.operations[0].action = lg::OpType::Put("rejected".into());
    });
    let mut other = b.a.tc2.fork(&b.document(&[]));
    let ((), good) = edit(&mut other, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&b.req, "other", 1))
            .unwrap();
    });
    let mut sh = b.shadow(&[&b.c1]);
    let v = verify(
        &b.a,
        &b.facts,
        &mut sh,
        vec![b.signed(&good[0]), b.signed(&dup)],
    );
    assert_eq!(accepted(&v), vec![good[0].hash()]);
    assert!(matches!(
        reasons(&v)[&Some(dup.hash())],
        Refusal::Equivocation { .. }
    ));
    let mut doc = b.document(&[&b.c1]);
    apply_accepted(&mut doc, &v.accepted).unwrap();
    assert!(doc.get_change_meta_by_hash(&good[0].hash()).is_some());
}

#[test]
fn c_second_a_squatting_duplicate_with_a_missing_dependency_never_takes_the_genuine_slot() {
    let b = base();
    let dup = forge(&b.c1, |e| {
        e.operations[0].action = lg::OpType::Put("rejected".into());
    });
    let mut sh = Shadow::new();
    // The forgery arrives first, before the genesis it depends on: it waits, nothing queues.
    let v = verify(&b.a, &b.facts, &mut sh, vec![b.signed(&dup)]);
    let r = only_refusal(&v);
    assert_eq!(r, &Refusal::MissingDependency(b.genesis.hash()));
    assert!(r.retriable());
    // The genuine changes arrive and apply.
    let v = verify(
        &b.a,
        &b.facts,
        &mut sh,
        vec![b.signed(&b.c1), b.signed(&b.genesis)],
    );
    assert_eq!(accepted(&v), vec![b.genesis.hash(), b.c1.hash()]);
    // Retrying the forgery now proves equivocation instead of squatting.
    let v = verify(&b.a, &b.facts, &mut sh, vec![b.signed(&dup)]);
    assert!(matches!(only_refusal(&v), Refusal::Equivocation { .. }));
    assert_eq!(v.evidence.len(), 1);
    // The genuine author's next change still applies.
    let v = verify(&b.a, &b.facts, &mut sh, vec![b.signed(&b.c2)]);
    assert_eq!(accepted(&v), vec![b.c2.hash()]);
}

#[test]
fn c_two_changes_at_one_sequence_number_in_one_batch_are_both_refused() {
    let b = base();
    let dup = forge(&b.c1, |e| {
        e.operations[0].action = lg::OpType::Put("rejected".into());
    });
    let mut sh = b.shadow(&[]);
    let v = verify(
        &b.a,
        &b.facts,
        &mut sh,
        vec![b.signed(&b.c1), b.signed(&dup), b.signed(&b.c2)],
    );
    assert!(v.accepted.is_empty());
    let r = reasons(&v);
    assert!(matches!(
        r[&Some(b.c1.hash())],
        Refusal::Equivocation { .. }
    ));
    assert!(matches!(r[&Some(dup.hash())], Refusal::Equivocation { .. }));
    assert_eq!(
        r[&Some(b.c2.hash())],
        Refusal::DependsOnRefused {
            hash: b.c1.hash(),
            retriable: false
        }
    );
    assert_eq!(v.evidence.len(), 1);
}

#[test]
fn d_missing_dependencies_wait_and_are_never_queued() {
    let b = base();
    let r = b.refuse(&[], &b.c2);
    assert_eq!(r, Refusal::MissingDependency(b.c1.hash()));
    assert!(r.retriable());
}

#[test]
fn e_a_corrupt_change_after_a_good_one_is_named_not_dropped() {
    let b = base();
    let mut tail = b.c2.raw_bytes().to_vec();
    let n = tail.len();
    tail[n - 2] ^= 0x55;
    let mut sh = b.shadow(&[]);
    let v = verify(
        &b.a,
        &b.facts,
        &mut sh,
        vec![
            b.signed(&b.c1),
            Incoming {
                bytes: tail,
                sig: b.a.ch.signer.sign_change(&b.id, &b.c2.hash()),
            },
        ],
    );
    assert_eq!(accepted(&v), vec![b.c1.hash()]);
    assert_eq!(v.refused.len(), 1);
    assert!(matches!(v.refused[0].reason, Refusal::BadBytes(_)), "{v:?}");
    // A blob with garbage after a good change is not split silently either.
    let mut blob = b.c1.raw_bytes().to_vec();
    blob.extend(b"garbage");
    assert!(matches!(
        crate::trust::chunk::split_chunks(&blob),
        Err(ChunkError::BadMagic { .. })
    ));
}

#[test]
fn f_an_author_footer_is_refused_as_extra_bytes() {
    let b = base();
    let f = forge(&b.c2, |e| e.extra_bytes = vec![1, 3, 1, 2, 3]);
    let r = b.refuse(&[&b.c1], &f);
    assert!(
        matches!(r, Refusal::BadBytes(ChunkError::ExtraBytes { .. })),
        "{r:?}"
    );
    // The shadow refuses it too, for changes that skip the byte checks (whole documents).
    let mut sh = b.shadow(&[&b.c1]);
    assert_eq!(sh.check_and_add(&f), Err(ShadowError::ExtraBytes));
}

#[test]
fn g1_op_counters_at_u32_max_are_refused() {
    let b = base();
    let mut e = b.c1.decode();
    e.start_op = std::num::NonZeroU64::new(u32::MAX as u64).unwrap();
    e.operations.push(e.operations[0].clone());
    e.operations[1].key = lg::Key::Map("status2".into());
    e.hash = None;
    let f = Change::from(e);
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::StartOp { start, .. } if *start == u32::MAX as u64),
        "{r:?}"
    );
}

#[test]
fn g2_op_counters_near_u32_max_are_refused() {
    let b = base();
    let f = forge(&b.c1, |e| {
        e.start_op = std::num::NonZeroU64::new(u32::MAX as u64 - 5).unwrap()
    });
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::StartOp { .. }),
        "{r:?}"
    );
}

#[test]
fn h_an_op_on_an_object_that_does_not_exist_is_refused() {
    let b = base();
    let tc = b.a.tc.actor.clone();
    let f = forge(&b.c1, |e| {
        e.operations[0].obj = lg::ObjectId::Id(opid(99, &tc))
    });
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::UnknownObject { op: 0, .. }),
        "{r:?}"
    );
    // h2: an op "into" a scalar value.
    let f = forge(&b.c1, |e| {
        e.operations[0].obj = lg::ObjectId::Id(opid(2, &tc))
    });
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::NotAnObject { op: 0, .. }),
        "{r:?}"
    );
}

#[test]
fn i_an_insert_after_an_unknown_element_is_refused() {
    let b = base();
    let acts = obj_opid(&b.acts);
    let tc = b.a.tc.actor.clone();
    let f = forge(&b.c1, |e| {
        e.operations[0].obj = lg::ObjectId::Id(acts);
        e.operations[0].key = lg::Key::Seq(lg::ElementId::Id(opid(77, &tc)));
        e.operations[0].insert = true;
    });
    let r = b.refuse(&[], &f);
    assert_eq!(structure(&r), &ShadowError::UnknownElement { op: 0 });
}

#[test]
fn i2_a_map_key_on_a_list_and_an_insert_into_a_map_are_refused() {
    let b = base();
    let acts = obj_opid(&b.acts);
    let f = forge(&b.c1, |e| e.operations[0].obj = lg::ObjectId::Id(acts));
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::KeyKind { op: 0, .. }),
        "{r:?}"
    );
    // i3
    let f = forge(&b.c1, |e| {
        e.operations[0].insert = true;
        e.operations[0].key = lg::Key::Seq(lg::ElementId::Head);
    });
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::KeyKind { op: 0, .. }),
        "{r:?}"
    );
}

#[test]
fn j_a_put_whose_pred_sits_at_another_key_is_refused() {
    let b = base();
    let reason = opid(2, &b.a.tc.actor);
    let f = forge(&b.c1, move |e| e.operations[0].pred = vec![reason].into());
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::BadPred { op: 0, .. }),
        "{r:?}"
    );
}

#[test]
fn k_a_delete_whose_pred_sits_at_another_key_is_refused() {
    let b = base();
    let reason = opid(2, &b.a.tc.actor);
    let f = forge(&b.c1, move |e| {
        e.operations[0].action = lg::OpType::Delete;
        e.operations[0].pred = vec![reason].into();
    });
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::BadPred { op: 0, .. }),
        "{r:?}"
    );
    // The document keeps its reason.
    let doc = b.document(&[]);
    assert!(doc.get(&b.req, "reason").unwrap().is_some());
}

#[test]
fn l_a_pred_that_does_not_exist_is_refused() {
    let b = base();
    let tc = b.a.tc.actor.clone();
    let f = forge(&b.c1, |e| e.operations[0].pred = vec![opid(50, &tc)].into());
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::BadPred { op: 0, .. }),
        "{r:?}"
    );
}

#[test]
fn l2_a_delete_without_pred_is_refused() {
    let b = base();
    let f = forge(&b.c1, |e| e.operations[0].action = lg::OpType::Delete);
    let r = b.refuse(&[], &f);
    assert_eq!(structure(&r), &ShadowError::MissingPred { op: 0 });
}

#[test]
fn m_ops_naming_an_unknown_actor_are_refused() {
    let b = base();
    let stranger = Node::new("TC-09", FacilityKind::TownshipCenter, &[]).actor;
    let s = stranger.clone();
    let f = forge(&b.c1, move |e| {
        e.operations[0].pred = vec![opid(2, &s)].into()
    });
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::UnknownActor { .. }),
        "{r:?}"
    );
    // m2: an object id by an unknown actor.
    let f = forge(&b.c1, move |e| {
        e.operations[0].obj = lg::ObjectId::Id(opid(1, &stranger))
    });
    let r = b.refuse(&[], &f);
    assert!(
        matches!(structure(&r), ShadowError::UnknownActor { .. }),
        "{r:?}"
    );
}

#[test]
fn o_a_change_reusing_its_predecessor_s_op_ids_is_refused() {
    let b = base();
    let start = b.c1.start_op();
    let f = forge(&b.c2, move |e| e.start_op = start);
    let r = b.refuse(&[&b.c1], &f);
    assert!(
        matches!(structure(&r), ShadowError::StartOp { .. }),
        "{r:?}"
    );
}

#[test]
fn p_a_negative_time_is_refused_and_the_message_is_covered_by_the_signature() {
    let b = base();
    let f = forge(&b.c1, |e| e.time = -1);
    let r = b.refuse(&[], &f);
    assert_eq!(r, Refusal::BadBytes(ChunkError::NegativeTime { time: -1 }));
    // A relay that rewrites the author's message changes the hash: the signature fails.
    let f = forge(&b.c1, |e| e.message = Some("by someone else".into()));
    let mut sh = b.shadow(&[]);
    let v = verify(
        &b.a,
        &b.facts,
        &mut sh,
        vec![Incoming {
            bytes: f.raw_bytes().to_vec(),
            sig: b.a.ch.signer.sign_change(&b.id, &b.c1.hash()),
        }],
    );
    assert!(matches!(only_refusal(&v), Refusal::BadSignature(_)));
}

#[test]
fn a_change_squatting_another_facility_s_actor_is_refused_and_its_owner_goes_on() {
    // The attack: TC-01 writes seq 50 under the county's actor id. It cannot sign as
    // the county, so the signature refuses it before anything else; and signed by TC-01 it is
    // still refused (the signer is the actor's node).
    let b = base();
    let squat = forge(&b.c1, |e| e.seq = 50);
    for sig in [
        b.a.tc.signer.sign_change(&b.id, &squat.hash()),
        b.a.ch.signer.sign_change(&DocId::random(), &squat.hash()),
    ] {
        let mut sh = b.shadow(&[]);
        let v = verify(
            &b.a,
            &b.facts,
            &mut sh,
            vec![Incoming {
                bytes: squat.raw_bytes().to_vec(),
                sig,
            }],
        );
        assert!(matches!(only_refusal(&v), Refusal::BadSignature(_)));
        // The county's genuine changes still apply.
        let v = verify(
            &b.a,
            &b.facts,
            &mut sh,
            vec![b.signed(&b.c1), b.signed(&b.c2)],
        );
        assert_eq!(accepted(&v), vec![b.c1.hash(), b.c2.hash()]);
        let mut doc = b.document(&[]);
        apply_accepted(&mut doc, &v.accepted).unwrap();
    }
}

#[test]
fn unknown_signers_wait_revoked_signers_are_refused_and_dependents_follow() {
    let mut b = base();
    b.a.hidden.insert(b.a.ch.id());
    let mut sh = b.shadow(&[]);
    let v = verify(
        &b.a,
        &b.facts,
        &mut sh,
        vec![b.signed(&b.c1), b.signed(&b.c2)],
    );
    let r = reasons(&v);
    assert_eq!(r[&Some(b.c1.hash())], Refusal::UnknownSigner(b.a.ch.id()));
    assert!(r[&Some(b.c1.hash())].retriable());
    assert!(v.accepted.is_empty());
    b.a.hidden.clear();
    b.a.revoked.insert(b.a.ch.id());
    let v = verify(&b.a, &b.facts, &mut sh, vec![b.signed(&b.c1)]);
    let r = only_refusal(&v);
    assert_eq!(r, &Refusal::SignerRevoked(b.a.ch.id()));
    assert!(!r.retriable());
    // A certificate that does not hold the signer's key is refused, not trusted.
    b.a.revoked.clear();
    let mut other = b.a.tc2.fork(&b.document(&[]));
    let ((), c) = edit(&mut other, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "x", 1))
            .unwrap();
    });
    struct Liar<'a>(&'a Alliance);
    impl Resolver for Liar<'_> {
        fn lookup(&self, node: &NodeId) -> SignerLookup {
            match self.0.lookup(node) {
                SignerLookup::Known(mut k) => {
                    k.public_key = self.0.tc.signer.public_key();
                    SignerLookup::Known(k)
                }
                other => other,
            }
        }
    }
    let v = verify_batch(&b.facts, &mut sh, &Liar(&b.a), vec![b.signed(&c[0])]);
    assert_eq!(only_refusal(&v), &Refusal::SignerKeyMismatch(b.a.tc2.id()));
}

#[test]
fn a_put_that_leaves_a_visible_value_unnamed_is_refused() {
    // Honest transactions name every value visible at the key as replaced. A forged put that
    // names none (or only some) creates a conflict its higher op counter wins: it would hide
    // the other value without the rules ever seeing it replaced.
    let b = base();
    let mut county = b.a.ch.fork(&b.document(&[]));
    let ((), c) = edit(&mut county, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&b.req, "reason", "hidden"))
            .unwrap();
    });
    let f = forge(&c[0], |e| e.operations[0].pred = Vec::new().into());
    let r = b.refuse(&[], &f);
    assert_eq!(structure(&r), &ShadowError::PartialPreds { op: 0 });
    // The honest one names the value it replaces, and passes.
    let mut sh = b.shadow(&[]);
    let v = verify(&b.a, &b.facts, &mut sh, vec![b.signed(&c[0])]);
    assert_eq!(accepted(&v), vec![c[0].hash()]);
}

#[test]
fn honest_conflicts_and_their_resolution_pass() {
    // Two writers put the same key without seeing each other (a conflict: both values stay
    // visible); after merging, re-putting the winner makes Automerge delete only the loser, and
    // a new value replaces both. All of it is what honest transactions do.
    let b = base();
    let doc = b.document(&[]);
    let mut x = b.a.ch.fork(&doc);
    let mut y = b.a.tc2.fork(&doc);
    let ((), cx) = edit(&mut x, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&b.req, "doctor", "Wang"))
            .unwrap();
    });
    let ((), cy) = edit(&mut y, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&b.req, "doctor", "Zhao"))
            .unwrap();
    });
    x.merge(&mut y).unwrap();
    assert_eq!(x.get_all(&b.req, "doctor").unwrap().len(), 2);
    let winner = x.get(&b.req, "doctor").unwrap().unwrap().0.to_string();
    let winner = winner.trim_matches('"').to_string();
    let ((), resolve) = edit(&mut x, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&b.req, "doctor", winner.as_str()))
            .unwrap();
    });
    let e = resolve[0].decode();
    assert!(matches!(e.operations[0].action, lg::OpType::Delete));
    assert_eq!(e.operations[0].pred.len(), 1);
    let ((), replace) = edit(&mut y, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(&b.req, "doctor", "Li"))
            .unwrap();
    });
    let mut sh = b.shadow(&[]);
    let all: Vec<Incoming> = [&cx[0], &cy[0], &resolve[0], &replace[0]]
        .into_iter()
        .map(|c| b.signed(c))
        .collect();
    let v = verify(&b.a, &b.facts, &mut sh, all);
    assert!(v.refused.is_empty(), "{:?}", v.refused);
    assert_eq!(v.accepted.len(), 4);
}
