//! A deterministic multi-node harness for the sync protocol: several nodes, each with a real
//! store in a temporary directory, connected by in-memory links that carry frames between
//! their sessions. `run_until_quiet` delivers frames and runs store operations until nothing
//! moves. No sockets, no threads, no clocks: a failing case replays exactly.
//!
//! By default a link delivers frames in the order they were sent. [`Sim::reordering`] models
//! the QUIC driver instead: session frames keep their order on the connection's one stream,
//! while document frames ([`Frame::own_stream`]) each ride a stream of their own and may
//! overtake, or fall behind, anything sent before or after them. The order is drawn from a
//! seed, so a failing case still replays exactly.

use std::collections::VecDeque;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use proptest::prelude::*;

use super::ops::{self, OpContext, StoreOp};
use super::proto::Frame;
use super::session::{Effect, LocalSummary, Session, SessionEvent};
use crate::config::FacilityKind;
use crate::documents::{Audience, DocKind};
use crate::ids::{DocId, FacilityCode, NodeId};
use crate::storage::{Batch, ChangeEvent, Store, StoreError, StoreOptions};
use crate::transport::PeerIdentity;

struct SimNode {
    facility: FacilityCode,
    kind: FacilityKind,
    id: NodeId,
    store: Store,
    _dir: tempfile::TempDir,
}

struct Side {
    node: usize,
    session: Session,
    ops: VecDeque<StoreOp>,
    inbox: VecDeque<Frame>,
    /// Change notifications from this side's store not yet given to the session.
    changes: VecDeque<(u64, DocId)>,
    /// Whether this side has received the peer's Hello (the driver reads it before any
    /// document stream).
    hello_in: bool,
}

struct Link {
    sides: [Side; 2],
    closed: Option<String>,
    frames: [u64; 2],
    bytes: [u64; 2],
    events: Vec<(usize, SessionEvent)>,
    crls: [Vec<String>; 2],
    /// Frames delivered ahead of one sent earlier (only when reordering).
    overtook: u64,
}

struct Sim {
    nodes: Vec<SimNode>,
    links: Vec<Link>,
    now: Instant,
    /// When set, the state of the generator that picks which in-flight frame arrives next.
    reorder: Option<u64>,
}

fn identity(n: &SimNode) -> PeerIdentity {
    PeerIdentity {
        node_id: n.id,
        facility: n.facility.clone(),
        name: n.facility.to_string(),
        kind: n.kind,
        roles: vec![],
        serial: String::new(),
        cert_not_after: 0,
    }
}

fn commit<R>(
    store: &mut Store,
    f: impl FnOnce(&mut Batch<'_>) -> Result<R, StoreError>,
) -> (Result<R, StoreError>, Vec<ChangeEvent>) {
    let mut b = store.batch().expect("batch");
    match f(&mut b) {
        Ok(r) => match b.commit() {
            Ok(events) => (Ok(r), events),
            Err(e) => (Err(e), vec![]),
        },
        Err(e) => {
            b.rollback();
            (Err(e), vec![])
        }
    }
}

impl Sim {
    fn new(spec: &[(&str, FacilityKind)]) -> Sim {
        let nodes = spec
            .iter()
            .enumerate()
            .map(|(i, (code, kind))| {
                let dir = tempfile::tempdir().unwrap();
                let id = NodeId([i as u8 + 1; 16]);
                let store =
                    Store::create(&dir.path().join("s.redb"), id, StoreOptions::default()).unwrap();
                SimNode {
                    facility: code.parse().unwrap(),
                    kind: *kind,
                    id,
                    store,
                    _dir: dir,
                }
            })
            .collect();
        Sim {
            nodes,
            links: vec![],
            now: Instant::now(),
            reorder: None,
        }
    }

    /// Delivers document frames in an order drawn from `seed` (see the module docs).
    fn reordering(mut self, seed: u64) -> Sim {
        self.reorder = Some(seed);
        self
    }

    /// splitmix64: a small, well-mixed generator, enough to pick delivery orders.
    fn next_random(&mut self) -> Option<u64> {
        let state = self.reorder.as_mut()?;
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Some(z ^ (z >> 31))
    }

    /// Takes the next frame to arrive at one side of a link: the oldest, or, when reordering,
    /// any document frame or the oldest session frame.
    fn next_frame(&mut self, li: usize, side: usize) -> Option<Frame> {
        let hello_in = self.links[li].sides[side].hello_in;
        let pick = if hello_in { self.next_random() } else { None };
        let inbox = &mut self.links[li].sides[side].inbox;
        let index = match pick {
            Some(r) => {
                let first_session = inbox.iter().position(|f| !f.own_stream());
                let candidates: Vec<usize> = (0..inbox.len())
                    .filter(|i| inbox[*i].own_stream() || Some(*i) == first_session)
                    .collect();
                if candidates.is_empty() {
                    return None;
                }
                candidates[(r % candidates.len() as u64) as usize]
            }
            None => 0,
        };
        let frame = inbox.remove(index)?;
        if index > 0 {
            self.links[li].overtook += 1;
        }
        if matches!(frame, Frame::Hello { .. }) {
            self.links[li].sides[side].hello_in = true;
        }
        Some(frame)
    }

    fn summary(&mut self, node: usize, peer: usize) -> LocalSummary {
        let pid = self.nodes[peer].id;
        commit(&mut self.nodes[node].store, |b| {
            Ok(LocalSummary {
                store_id: b.store_id(),
                last_seq: b.last_seq()?,
                have_theirs: b.peer_checkpoint(&pid)?,
                peer_store_seen: b.peer_store(&pid)?,
                crl: None,
                runs: b.runs()?,
                resend_whole: vec![],
            })
        })
        .0
        .unwrap()
    }

    fn connect(&mut self, a: usize, b: usize) -> usize {
        let sa = Session::new(self.summary(a, b), self.now);
        let sb = Session::new(self.summary(b, a), self.now);
        let mut link = Link {
            sides: [
                Side {
                    node: a,
                    session: sa,
                    ops: VecDeque::new(),
                    inbox: VecDeque::new(),
                    changes: VecDeque::new(),
                    hello_in: false,
                },
                Side {
                    node: b,
                    session: sb,
                    ops: VecDeque::new(),
                    inbox: VecDeque::new(),
                    changes: VecDeque::new(),
                    hello_in: false,
                },
            ],
            closed: None,
            frames: [0; 2],
            bytes: [0; 2],
            events: vec![],
            crls: [vec![], vec![]],
            overtook: 0,
        };
        for side in 0..2 {
            let fx = link.sides[side].session.start();
            Self::effects(&mut link, side, fx);
        }
        self.links.push(link);
        self.links.len() - 1
    }

    fn disconnect(&mut self, link: usize) {
        self.links[link]
            .closed
            .get_or_insert_with(|| "disconnected".into());
    }

    fn effects(link: &mut Link, side: usize, fx: Vec<Effect>) {
        for e in fx {
            match e {
                Effect::Send(f) => {
                    link.frames[side] += 1;
                    link.bytes[side] += f.encode().len() as u64 + 4;
                    link.sides[1 - side].inbox.push_back(f);
                }
                Effect::Store(op) => link.sides[side].ops.push_back(op),
                Effect::Event(e) => link.events.push((side, e)),
                Effect::InstallCrl(pem) => link.crls[side].push(pem),
                Effect::Close(reason) | Effect::End(reason) => {
                    link.closed.get_or_insert(reason);
                }
            }
        }
    }

    /// Queues change events of `node` for every open session on that node. As in the driver,
    /// a session hears of a change only later, possibly after store results and frames that
    /// were produced after the change.
    fn notify(&mut self, node: usize, events: Vec<ChangeEvent>) {
        for link in self.links.iter_mut().filter(|l| l.closed.is_none()) {
            for side in &mut link.sides {
                if side.node == node {
                    side.changes.extend(events.iter().map(|e| (e.seq, e.doc)));
                }
            }
        }
    }

    /// Runs the next store operation of one side of a link; returns its result, if any.
    fn run_op(
        &mut self,
        li: usize,
        side: usize,
    ) -> Option<Result<super::ops::OpResult, StoreError>> {
        let op = self.links[li].sides[side].ops.pop_front()?;
        let node = self.links[li].sides[side].node;
        let peer = self.links[li].sides[1 - side].node;
        let ctx = OpContext {
            facility: self.nodes[node].facility.clone(),
            kind: self.nodes[node].kind,
            peer: identity(&self.nodes[peer]),
        };
        let (result, events) = commit(&mut self.nodes[node].store, |b| ops::execute(b, &ctx, op));
        self.notify(node, events);
        Some(result)
    }

    fn step(&mut self) -> bool {
        for li in 0..self.links.len() {
            for side in 0..2 {
                // The driver prefers store results, then frames, then change notifications;
                // when reordering, any of them may come first.
                let first = self.next_random().map_or(0, |r| (r % 3) as usize);
                for k in 0..3 {
                    let moved = match (first + k) % 3 {
                        0 => self.step_op(li, side),
                        1 => self.step_frame(li, side),
                        _ => self.step_change(li, side),
                    };
                    if moved {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Runs one store operation and gives its result to the session. As in the driver,
    /// operations a session asked for before it ended still run (their results go nowhere).
    fn step_op(&mut self, li: usize, side: usize) -> bool {
        let now = self.now;
        let closed = self.links[li].closed.is_some();
        let Some(result) = self.run_op(li, side) else {
            return false;
        };
        if !closed {
            let link = &mut self.links[li];
            let fx = match result {
                Ok(r) => link.sides[side].session.on_store(r, now),
                Err(e) => link.sides[side].session.on_store_failed(e.to_string(), now),
            };
            Self::effects(link, side, fx);
        }
        true
    }

    /// Delivers one frame; frames stop at once when the session ends.
    fn step_frame(&mut self, li: usize, side: usize) -> bool {
        if self.links[li].closed.is_some() {
            return false;
        }
        let Some(frame) = self.next_frame(li, side) else {
            return false;
        };
        let link = &mut self.links[li];
        let fx = link.sides[side].session.on_frame(frame, self.now);
        Self::effects(link, side, fx);
        true
    }

    /// Tells the session of one change to its node's store.
    fn step_change(&mut self, li: usize, side: usize) -> bool {
        if self.links[li].closed.is_some() {
            return false;
        }
        let Some((seq, doc)) = self.links[li].sides[side].changes.pop_front() else {
            return false;
        };
        let link = &mut self.links[li];
        let fx = link.sides[side].session.on_local_change(seq, doc, self.now);
        Self::effects(link, side, fx);
        true
    }

    fn run_until_quiet(&mut self) {
        let mut steps = 0;
        while self.step() {
            steps += 1;
            assert!(steps < 2_000_000, "sync did not settle");
        }
    }

    fn create(&mut self, node: usize, audience: &[&str], title: &str) -> DocId {
        // As the service does: the creating facility is always in the audience.
        let mut codes: Vec<FacilityCode> = audience.iter().map(|c| c.parse().unwrap()).collect();
        codes.push(self.nodes[node].facility.clone());
        let title = title.to_string();
        let (r, events) = commit(&mut self.nodes[node].store, |b| {
            let mut doc = Automerge::new().with_actor(b.actor().clone());
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, "title", title.as_str())
            })
            .map_err(|f| StoreError::Invalid(f.error.to_string()))?;
            b.create(DocKind::Note, Audience::new(codes), doc)
        });
        self.notify(node, events);
        r.unwrap().id
    }

    fn edit(&mut self, node: usize, doc: DocId, key: &str, value: i64) {
        let key = key.to_string();
        let (r, events) = commit(&mut self.nodes[node].store, |b| {
            b.edit(&doc, |d| {
                d.transact::<_, _, automerge::AutomergeError>(|tx| {
                    tx.put(ROOT, key.as_str(), value)
                })
                .map(|_| ())
                .map_err(|f| StoreError::Invalid(f.error.to_string()))
            })
        });
        r.unwrap();
        self.notify(node, events);
    }

    fn heads(&mut self, node: usize, doc: DocId) -> Option<Vec<automerge::ChangeHash>> {
        commit(&mut self.nodes[node].store, |b| {
            if !b.exists(&doc)? {
                return Ok(None);
            }
            b.read(&doc, |d| Some(d.get_heads()))
        })
        .0
        .unwrap()
    }

    fn value(&mut self, node: usize, doc: DocId, key: &str) -> Option<i64> {
        commit(&mut self.nodes[node].store, |b| {
            b.read(&doc, |d| match d.get(ROOT, key) {
                Ok(Some((automerge::Value::Scalar(s), _))) => s.as_i64(),
                _ => None,
            })
        })
        .0
        .unwrap()
    }

    fn doc_count(&mut self, node: usize) -> usize {
        commit(&mut self.nodes[node].store, |b| b.list(None))
            .0
            .unwrap()
            .len()
    }
}

const CH: (&str, FacilityKind) = ("CH-01", FacilityKind::CountyHospital);
const TA: (&str, FacilityKind) = ("TC-A", FacilityKind::TownshipCenter);
const TB: (&str, FacilityKind) = ("TC-B", FacilityKind::TownshipCenter);
const TC: (&str, FacilityKind) = ("TC-C", FacilityKind::TownshipCenter);

#[test]
fn documents_flow_both_ways_and_concurrent_edits_converge() {
    let mut sim = Sim::new(&[CH, TA]);
    let d1 = sim.create(0, &["TC-A"], "from county");
    let d2 = sim.create(1, &["CH-01"], "from township");
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert!(sim.links[l].closed.is_none());
    assert_eq!(sim.heads(1, d1), sim.heads(0, d1));
    assert_eq!(sim.heads(0, d2), sim.heads(1, d2));

    // Offline, both edit the same document; after reconnecting they converge.
    sim.disconnect(l);
    sim.edit(0, d1, "bed", 3);
    sim.edit(1, d1, "bed", 5);
    sim.edit(1, d1, "ward", 2);
    sim.connect(0, 1);
    sim.run_until_quiet();
    assert_eq!(sim.heads(0, d1), sim.heads(1, d1));
    assert_eq!(sim.value(0, d1, "bed"), sim.value(1, d1, "bed"));
    assert_eq!(sim.value(0, d1, "ward"), Some(2));
    // Live: while connected, an edit flows without reconnecting.
    sim.edit(1, d2, "live", 7);
    sim.run_until_quiet();
    assert_eq!(sim.value(0, d2, "live"), Some(7));
}

#[test]
fn townships_that_never_meet_converge_through_the_county() {
    let mut sim = Sim::new(&[CH, TA, TB]);
    let doc = sim.create(1, &["TC-B"], "referral A->B");
    sim.connect(0, 1);
    sim.connect(0, 2);
    sim.run_until_quiet();
    assert_eq!(
        sim.heads(2, doc),
        sim.heads(1, doc),
        "B got A's document via the county"
    );
    sim.edit(2, doc, "accepted", 1);
    sim.run_until_quiet();
    assert_eq!(
        sim.value(1, doc, "accepted"),
        Some(1),
        "B's answer reached A via the county"
    );
}

#[test]
fn a_node_outside_the_audience_never_receives_the_document() {
    let mut sim = Sim::new(&[CH, TA, TC]);
    let secret = sim.create(1, &[], "only TC-A and the county");
    let shared = sim.create(1, &["TC-C"], "for TC-C too");
    sim.connect(1, 2); // direct link A <-> C
    sim.connect(0, 1);
    sim.connect(0, 2);
    sim.run_until_quiet();
    assert!(
        sim.heads(0, secret).is_some(),
        "the county holds every document"
    );
    assert!(
        sim.heads(2, secret).is_none(),
        "TC-C received a document outside its audience"
    );
    assert!(sim.heads(2, shared).is_some());
}

#[test]
fn a_no_op_reconnect_is_one_hello_each_way_whatever_the_number_of_documents() {
    let mut sim = Sim::new(&[CH, TA]);
    for i in 0..300 {
        sim.create(i % 2, &["CH-01", "TC-A"], &format!("doc {i}"));
    }
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert_eq!(sim.doc_count(0), 300);
    assert_eq!(sim.doc_count(1), 300);
    sim.disconnect(l);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert_eq!(sim.links[l].frames, [1, 1], "only the Hellos");
    assert!(
        sim.links[l].bytes.iter().all(|b| *b <= 1024),
        "{:?}",
        sim.links[l].bytes
    );
}

#[test]
fn document_frames_in_any_order_still_converge_and_reconnect_quietly() {
    for seed in [1, 7, 1234] {
        let mut sim = Sim::new(&[CH, TA]).reordering(seed);
        let docs: Vec<DocId> = (0..120)
            .map(|i| sim.create(i % 2, &["CH-01", "TC-A"], &format!("doc {i}")))
            .collect();
        let l = sim.connect(0, 1);
        sim.run_until_quiet();
        // Both sides edit every document while connected: pushes, acks and checkpoints cross.
        for (i, d) in docs.iter().enumerate() {
            sim.edit(0, *d, "county", i as i64);
            sim.edit(1, *d, "township", i as i64);
        }
        sim.run_until_quiet();
        assert!(sim.links[l].closed.is_none(), "{:?}", sim.links[l].closed);
        assert!(
            sim.links[l].overtook > 0,
            "seed {seed}: no frame was reordered"
        );
        for (i, d) in docs.iter().enumerate() {
            assert_eq!(sim.heads(0, *d), sim.heads(1, *d), "seed {seed}");
            assert_eq!(sim.value(0, *d, "township"), Some(i as i64));
            assert_eq!(sim.value(1, *d, "county"), Some(i as i64));
        }
        // Checkpoints recorded under reordering are still right: nothing to resend.
        sim.disconnect(l);
        let l = sim.connect(0, 1);
        sim.run_until_quiet();
        assert_eq!(sim.links[l].frames, [1, 1], "seed {seed}: only the Hellos");
    }
}

#[test]
fn a_change_a_scan_sees_before_its_notification_still_goes_out() {
    // The driver may hand a session a scan result before the notification of a change the scan
    // already covers. If the changed document was in flight then, the scan must still mark it
    // for another push: the late notification is ignored as already scanned.
    let mut sim = Sim::new(&[CH, TA]);
    let d = sim.create(0, &["TC-A"], "d");
    let e = sim.create(0, &["TC-A"], "e");
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.edit(0, d, "v", 1);
    // Run until the push of d is on its way, unacknowledged.
    while !sim.links[l].sides[1]
        .inbox
        .iter()
        .any(|f| matches!(f, Frame::Push { doc, .. } if *doc == d))
    {
        assert!(sim.step(), "the push of d never left");
    }
    // Two more changes before the session hears of either: e's notification triggers a scan
    // that already sees d's second change.
    sim.edit(0, e, "v", 1);
    sim.edit(0, d, "v", 2);
    sim.run_until_quiet();
    assert!(sim.links[l].closed.is_none());
    assert_eq!(sim.value(1, e, "v"), Some(1));
    assert_eq!(
        sim.value(1, d, "v"),
        Some(2),
        "d's second change was never sent"
    );
    assert_eq!(sim.heads(1, d), sim.heads(0, d));
}

#[test]
fn catch_up_costs_little_more_than_the_changes_themselves() {
    let mut sim = Sim::new(&[CH, TA]);
    let docs: Vec<DocId> = (0..100)
        .map(|i| sim.create(0, &["TC-A"], &format!("referral {i}")))
        .collect();
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    let mut change_bytes = 0u64;
    for d in &docs {
        let before = sim.heads(0, *d).unwrap();
        sim.edit(0, *d, "status", 2);
        change_bytes += commit(&mut sim.nodes[0].store, |b| {
            b.read(d, |doc| doc.save_after(&before).len() as u64)
        })
        .0
        .unwrap();
    }
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    let wire = sim.links[l].bytes[0] + sim.links[l].bytes[1];
    let budget = change_bytes * 3 / 2 + 200 * docs.len() as u64;
    assert!(
        wire <= budget,
        "catch-up used {wire} bytes for {change_bytes} bytes of changes (budget {budget})"
    );
    for d in &docs {
        assert_eq!(sim.value(1, *d, "status"), Some(2));
    }
}

#[test]
fn frames_out_of_order_close_the_session() {
    let mut sim = Sim::new(&[CH, TA]);
    let l = sim.connect(0, 1);
    // An Ack before the Hello.
    let fx = sim.links[l].sides[1].session.on_frame(
        Frame::Ack {
            doc: DocId([1; 16]),
            heads: vec![],
        },
        sim.now,
    );
    assert!(
        matches!(fx.last(), Some(Effect::Close(r)) if r.contains("expected Hello")),
        "{fx:?}"
    );
    // After the Hellos: an Ack for a document that was never pushed, and a second Hello.
    let mut sim = Sim::new(&[CH, TA]);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    let fx = sim.links[l].sides[1].session.on_frame(
        Frame::Ack {
            doc: DocId([2; 16]),
            heads: vec![],
        },
        sim.now,
    );
    assert!(
        matches!(fx.last(), Some(Effect::Close(r)) if r.contains("not pushed")),
        "{fx:?}"
    );
    let mut sim = Sim::new(&[CH, TA]);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    let fx = sim.links[l].sides[0].session.on_frame(
        Frame::Hello {
            version: super::proto::VERSION,
            store_id: [0; 16],
            last_seq: 0,
            have_yours: None,
            crl_number: 0,
        },
        sim.now,
    );
    assert!(
        matches!(fx.last(), Some(Effect::Close(r)) if r.contains("second Hello")),
        "{fx:?}"
    );
}

impl Sim {
    /// Closes a node's store, runs `f` on its file, and opens it again.
    fn with_store_file(&mut self, node: usize, f: impl FnOnce(&std::path::Path)) {
        let path = self.nodes[node]._dir.path().join("s.redb");
        let id = self.nodes[node].id;
        let placeholder = tempfile::tempdir().unwrap();
        let tmp = Store::create(
            &placeholder.path().join("t.redb"),
            id,
            StoreOptions::default(),
        )
        .unwrap();
        drop(std::mem::replace(&mut self.nodes[node].store, tmp));
        f(&path);
        self.nodes[node].store = Store::open(&path, id, StoreOptions::default()).unwrap();
    }
}

#[test]
fn a_peer_restored_from_an_old_backup_gets_everything_again() {
    let mut sim = Sim::new(&[CH, TA]);
    let doc = sim.create(0, &["TC-A"], "x");
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    let backup = tempfile::tempdir().unwrap();
    let saved = backup.path().join("backup.redb");
    sim.with_store_file(1, |p| {
        std::fs::copy(p, &saved).unwrap();
    });
    // More history reaches TC-A after the backup...
    sim.edit(0, doc, "later", 1);
    let newer = sim.create(0, &["TC-A"], "y");
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    assert_eq!(sim.value(1, doc, "later"), Some(1));
    // ...then TC-A is restored from the backup (same store id, older data).
    sim.with_store_file(1, |p| {
        std::fs::copy(&saved, p).unwrap();
    });
    assert!(sim.heads(1, newer).is_none());
    let restored_actor = commit(&mut sim.nodes[1].store, |b| Ok(b.actor().clone()))
        .0
        .unwrap();
    sim.edit(0, doc, "after", 2);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert!(
        sim.links[l]
            .closed
            .as_deref()
            .is_some_and(|r| r.contains("restored"))
    );
    assert!(
        sim.links[l]
            .events
            .iter()
            .any(|(side, e)| *side == 1 && matches!(e, SessionEvent::PeerAheadOfUs { .. })),
        "the restored node did not notice: {:?}",
        sim.links[l].events
    );
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert!(sim.links[l].closed.is_none(), "{:?}", sim.links[l].closed);
    assert!(
        sim.links[l]
            .events
            .iter()
            .any(|(side, e)| *side == 0 && *e == SessionEvent::PeerStoreReset)
    );
    assert_eq!(
        sim.heads(1, doc),
        sim.heads(0, doc),
        "changes it lost came back"
    );
    assert_eq!(sim.value(1, doc, "later"), Some(1));
    assert_eq!(sim.value(1, doc, "after"), Some(2));
    assert_eq!(
        sim.heads(1, newer),
        sim.heads(0, newer),
        "a document it lost came back"
    );
    // It writes with a new actor id (same node id), so it never reuses a change number.
    let actor = commit(&mut sim.nodes[1].store, |b| Ok(b.actor().clone()))
        .0
        .unwrap();
    assert_ne!(actor, restored_actor);
    assert_eq!(
        crate::identity::node_of_actor(&actor),
        Some(sim.nodes[1].id)
    );
}

impl Sim {
    /// Edits as `edit` does, but writes the change under `actor` (what yilian before issue 13
    /// did on a restored copy: it kept the backup's actor id).
    fn edit_as(
        &mut self,
        node: usize,
        doc: DocId,
        actor: &automerge::ActorId,
        key: &str,
        value: i64,
    ) {
        let key = key.to_string();
        let actor = actor.clone();
        let (r, events) = commit(&mut self.nodes[node].store, |b| {
            let own = b.actor().clone();
            b.edit(&doc, |d| {
                d.set_actor(actor);
                let r = d
                    .transact::<_, _, automerge::AutomergeError>(|tx| {
                        tx.put(ROOT, key.as_str(), value)
                    })
                    .map(|_| ())
                    .map_err(|f| StoreError::Invalid(f.error.to_string()));
                d.set_actor(own);
                r
            })
        });
        r.unwrap();
        self.notify(node, events);
    }

    /// The actor of a document's latest change on a node.
    fn last_actor(&mut self, node: usize, doc: DocId) -> automerge::ActorId {
        commit(&mut self.nodes[node].store, |b| {
            b.read(&doc, |d| {
                let heads = d.get_heads();
                d.get_change_by_hash(&heads[0]).unwrap().actor_id().clone()
            })
        })
        .0
        .unwrap()
    }

    /// Copies a node's store file aside (the node "stopped" for a moment).
    fn backup(&mut self, node: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("backup.redb");
        self.with_store_file(node, |p| {
            std::fs::copy(p, &saved).unwrap();
        });
        dir
    }

    /// Puts a backup taken by [`Sim::backup`] back in place.
    fn restore(&mut self, node: usize, backup: &tempfile::TempDir) {
        let saved = backup.path().join("backup.redb");
        self.with_store_file(node, |p| {
            std::fs::copy(&saved, p).unwrap();
        });
    }

    fn refusals(&self, link: usize) -> Vec<(usize, SessionEvent)> {
        self.links[link]
            .events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    SessionEvent::RefusedIncoming { .. } | SessionEvent::RefusedByPeer { .. }
                )
            })
            .cloned()
            .collect()
    }
}

#[test]
fn a_restored_node_that_wrote_before_reconnecting_sends_its_edit_and_gets_the_lost_one() {
    let mut sim = Sim::new(&[CH, TA]);
    let doc = sim.create(1, &["CH-01"], "x");
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    let backup = sim.backup(1);
    sim.edit(1, doc, "lost", 1);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    assert_eq!(sim.value(0, doc, "lost"), Some(1));
    // Restored, then written while offline: the edit takes the very sequence number the lost
    // one had, so the county's checkpoint matches by number alone.
    sim.restore(1, &backup);
    sim.edit(1, doc, "offline", 2);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert!(
        sim.links[l]
            .events
            .iter()
            .any(|(side, e)| *side == 1 && matches!(e, SessionEvent::PeerSawOtherHistory { .. })),
        "the restore went unnoticed: {:?}",
        sim.links[l].events
    );
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert!(sim.links[l].closed.is_none(), "{:?}", sim.links[l].closed);
    assert_eq!(sim.heads(0, doc), sim.heads(1, doc));
    assert_eq!(sim.value(0, doc, "offline"), Some(2));
    assert_eq!(sim.value(1, doc, "lost"), Some(1));
    assert!(sim.refusals(l).is_empty(), "{:?}", sim.refusals(l));
}

#[test]
fn a_plain_restart_keeps_the_checkpoint_and_reconnects_quietly() {
    let mut sim = Sim::new(&[CH, TA]);
    for i in 0..20 {
        sim.create(i % 2, &["CH-01", "TC-A"], &format!("doc {i}"));
    }
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    // Both restart (a new run each); nothing changed: still only the Hellos.
    sim.with_store_file(0, |_| {});
    sim.with_store_file(1, |_| {});
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert_eq!(sim.links[l].frames, [1, 1], "only the Hellos");
    // An edit after the restart, then another restart: the checkpoint naming the new run
    // still matches.
    let d = sim.create(1, &["CH-01"], "after the restart");
    sim.run_until_quiet();
    sim.disconnect(l);
    sim.with_store_file(1, |_| {});
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert_eq!(sim.links[l].frames, [1, 1], "only the Hellos");
    assert!(sim.heads(0, d).is_some());
}

#[test]
fn a_document_forked_by_an_earlier_version_is_repaired_by_its_owner() {
    let mut sim = Sim::new(&[CH, TA]);
    let doc = sim.create(1, &["CH-01"], "x");
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    let backup = sim.backup(1);
    sim.edit(1, doc, "lost", 1);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    let reused = sim.last_actor(1, doc);
    sim.restore(1, &backup);
    sim.edit_as(1, doc, &reused, "forked", 2);
    // The county edits too, so its pushes carry the lost change the restored node lacks.
    sim.edit(0, doc, "county", 3);
    let mut last = None;
    for _ in 0..3 {
        let l = sim.connect(0, 1);
        sim.run_until_quiet();
        last = Some(l);
        if sim.links[l].closed.is_none() {
            break;
        }
    }
    let l = last.unwrap();
    assert!(sim.links[l].closed.is_none(), "{:?}", sim.links[l].closed);
    assert_eq!(sim.heads(0, doc), sim.heads(1, doc));
    for node in 0..2 {
        assert_eq!(sim.value(node, doc, "lost"), Some(1));
        assert_eq!(sim.value(node, doc, "county"), Some(3));
    }
    // Both wrote "forked"/"lost"-era values; the repaired change is kept, re-created.
    let mut keys = commit(&mut sim.nodes[0].store, |b| {
        b.read(&doc, |d| {
            d.get_changes(&[])
                .iter()
                .map(|c| (c.actor_id().clone(), c.seq()))
                .collect::<Vec<_>>()
        })
    })
    .0
    .unwrap();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a duplicate (actor, seq) survived");
    assert!(
        sim.refusals(l).iter().all(|(_, e)| matches!(
            e,
            SessionEvent::RefusedIncoming {
                repair_expected: true,
                ..
            } | SessionEvent::RefusedByPeer {
                repair_expected: true,
                ..
            }
        )),
        "only refusals that lead to the repair: {:?}",
        sim.refusals(l)
    );
}

#[test]
fn a_fork_no_node_can_repair_is_refused_both_ways_once() {
    let mut sim = Sim::new(&[CH, TA]);
    let doc = sim.create(0, &["TC-A"], "x");
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    sim.disconnect(l);
    let stranger = automerge::ActorId::from(vec![0x77u8; 24]);
    sim.edit_as(0, doc, &stranger, "v", 1);
    sim.edit_as(1, doc, &stranger, "v", 2);
    let l = sim.connect(0, 1);
    sim.run_until_quiet();
    assert!(sim.links[l].closed.is_none(), "{:?}", sim.links[l].closed);
    assert_ne!(sim.heads(0, doc), sim.heads(1, doc));
    let refusals = sim.refusals(l);
    // Each side refuses the other's push as forked and sends its own copy whole; that copy is
    // refused outright, and nothing more goes back and forth.
    for side in 0..2 {
        assert!(
            refusals.iter().any(|(s, e)| *s == side
                && matches!(
                    e,
                    SessionEvent::RefusedIncoming {
                        repair_expected: true,
                        ..
                    }
                )),
            "{refusals:?}"
        );
        assert!(
            refusals.iter().any(|(s, e)| *s == side
                && matches!(
                    e,
                    SessionEvent::RefusedIncoming {
                        repair_expected: false,
                        ..
                    }
                )),
            "{refusals:?}"
        );
    }
    assert!(
        sim.links[l].frames.iter().all(|f| *f < 12),
        "{:?}",
        sim.links[l].frames
    );
}

#[test]
fn a_newer_revocation_list_travels_to_the_peer_once() {
    let mut sim = Sim::new(&[CH, TA]);
    let now = sim.now;
    let mut a = Session::new(
        LocalSummary {
            store_id: [1; 16],
            last_seq: 0,
            have_theirs: None,
            peer_store_seen: None,
            crl: Some((3, "LIST-3".into())),
            runs: Default::default(),
            resend_whole: vec![],
        },
        now,
    );
    let mut b = Session::new(
        LocalSummary {
            store_id: [2; 16],
            last_seq: 0,
            have_theirs: None,
            peer_store_seen: None,
            crl: Some((1, "LIST-1".into())),
            runs: Default::default(),
            resend_whole: vec![],
        },
        now,
    );
    let hello = |fx: Vec<Effect>| {
        fx.into_iter()
            .find_map(|e| match e {
                Effect::Send(f @ Frame::Hello { .. }) => Some(f),
                _ => None,
            })
            .unwrap()
    };
    let ha = hello(a.start());
    let hb = hello(b.start());
    let from_a = a.on_frame(hb, now);
    assert!(
        from_a
            .iter()
            .any(|e| matches!(e, Effect::Send(Frame::Crl { number: 3, .. }))),
        "{from_a:?}"
    );
    let from_b = b.on_frame(ha, now);
    assert!(
        !from_b
            .iter()
            .any(|e| matches!(e, Effect::Send(Frame::Crl { .. }))),
        "the older list was offered"
    );
    let got = b.on_frame(
        Frame::Crl {
            number: 3,
            pem: "LIST-3".into(),
        },
        now,
    );
    assert_eq!(got, vec![Effect::InstallCrl("LIST-3".into())]);
    // Once installed, B does not echo it back to A.
    assert!(b.on_crl(3, "LIST-3".into(), now).is_empty());
    // A list installed later on A goes to B at once.
    let later = a.on_crl(4, "LIST-4".into(), now);
    assert_eq!(
        later,
        vec![Effect::Send(Frame::Crl {
            number: 4,
            pem: "LIST-4".into()
        })]
    );
    drop(sim.links.drain(..));
}

#[derive(Debug, Clone)]
enum Action {
    Create(usize),
    Edit(usize, usize, i64),
    Toggle(usize),
    Settle,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0usize..3).prop_map(Action::Create),
        (0usize..3, 0usize..8, any::<i64>()).prop_map(|(n, d, v)| Action::Edit(n, d, v)),
        (0usize..2).prop_map(Action::Toggle),
        Just(Action::Settle),
    ]
}

/// Plays `actions` on a county and two townships, then brings every link up, and checks that
/// every document converged and no session ended.
fn edits_and_partitions_converge(mut sim: Sim, actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut docs: Vec<DocId> = Vec::new();
    // Links: county-A and county-B; each can be cut.
    let mut up = [None, None];
    for a in actions {
        match a {
            Action::Create(n) => docs.push(sim.create(n, &["CH-01", "TC-A", "TC-B"], "d")),
            Action::Edit(n, d, v) => {
                if let Some(doc) = docs.get(d).copied()
                    && sim.heads(n, doc).is_some()
                {
                    sim.edit(n, doc, "v", v);
                }
            }
            Action::Toggle(i) => match up[i].take() {
                Some(l) => sim.disconnect(l),
                None => up[i] = Some(sim.connect(0, i + 1)),
            },
            Action::Settle => sim.run_until_quiet(),
        }
    }
    for (i, slot) in up.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(sim.connect(0, i + 1));
        }
    }
    sim.run_until_quiet();
    for l in up.iter().flatten() {
        prop_assert!(sim.links[*l].closed.is_none(), "{:?}", sim.links[*l].closed);
    }
    for doc in docs {
        let h0 = sim.heads(0, doc);
        prop_assert!(h0.is_some());
        prop_assert_eq!(sim.heads(1, doc), h0.clone());
        prop_assert_eq!(sim.heads(2, doc), h0);
        prop_assert_eq!(sim.value(1, doc, "v"), sim.value(2, doc, "v"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any interleaving of edits, partitions and partial syncs converges once every link is up.
    #[test]
    fn any_edits_and_partitions_converge(actions in proptest::collection::vec(action(), 1..40)) {
        edits_and_partitions_converge(Sim::new(&[CH, TA, TB]), actions)?;
    }

    /// The same holds when document frames overtake each other and the session frames, as
    /// they may on their own QUIC streams.
    #[test]
    fn any_edits_partitions_and_delivery_orders_converge(
        actions in proptest::collection::vec(action(), 1..40),
        seed in any::<u64>(),
    ) {
        edits_and_partitions_converge(Sim::new(&[CH, TA, TB]).reordering(seed), actions)?;
    }
}
