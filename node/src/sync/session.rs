//! One sync session with one peer, without I/O: it is fed frames, store results, local change
//! notifications and the time, and returns effects (frames to send, store operations to run,
//! events to report, or a reason to close). The driver moves bytes and runs store operations;
//! tests drive it directly (see `sim`).
//!
//! Outgoing: after the Hellos, the session scans this node's change sequence from the
//! checkpoint the peer holds, prepares a push per document (the store decides whether the peer
//! may hold it and what it lacks), keeps at most [`MAX_IN_FLIGHT`] documents and
//! [`MAX_IN_FLIGHT_BYTES`] in flight, and tells the peer how far it is complete with
//! `Checkpoint` frames. Local edits jump the queue (up to [`LIVE_RESERVE`] extra in flight).
//! Incoming: each push becomes a store operation; the ack goes out only once the store has
//! committed it. Store operations are run in the order they are returned, so a checkpoint is
//! never saved ahead of the data it describes.
//!
//! Restores and forks: a checkpoint names the sender's run at its number (see
//! [`crate::storage::Runs`]); a store that finds the peer's checkpoint of its own sequence
//! beyond its end, or naming another run, is a restored copy and takes a new identity. A push
//! that collides with this copy's history under one (actor, seq) is repaired by the store when
//! the actor id is this node's; otherwise it is refused with `Forked` and this node's whole copy
//! goes to the peer, so that its owner can repair it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::ops::{ApplyOutcome, OpResult, StoreOp};
use super::proto::{Frame, Hash, VERSION};
use crate::ids::DocId;
use crate::storage::{Checkpoint, Runs};

/// Documents pushed and not yet acknowledged, from the backlog.
pub const MAX_IN_FLIGHT: usize = 64;
/// Extra documents in flight for local edits, so a backlog does not starve them.
pub const LIVE_RESERVE: usize = 16;
/// Bytes pushed and not yet acknowledged (at least one document is always allowed).
pub const MAX_IN_FLIGHT_BYTES: usize = 4 * 1024 * 1024;
/// Change-sequence entries read per scan.
pub const SCAN_PAGE: usize = 256;
/// A checkpoint is sent when the session is idle, or every this many sequence numbers.
pub const CHECKPOINT_STRIDE: u64 = 256;
/// Send a ping when nothing was sent for this long.
pub const PING_EVERY: Duration = Duration::from_secs(60);
/// Close when nothing was received for this long.
pub const IDLE_LIMIT: Duration = Duration::from_secs(180);

/// What the session needs to know about this node at the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSummary {
    /// This node's store id.
    pub store_id: [u8; 16],
    /// The last number of this node's change sequence.
    pub last_seq: u64,
    /// How far into the peer's change sequence this node has everything.
    pub have_theirs: Option<Checkpoint>,
    /// The peer's store id when last seen.
    pub peer_store_seen: Option<[u8; 16]>,
    /// This node's revocation list (number, PEM), if any.
    pub crl: Option<(u64, String)>,
    /// The runs of this node's change sequence, to name in checkpoints and to check the
    /// peer's checkpoint against.
    pub runs: Runs,
    /// Documents to push whole at the start: ones this node refused from the peer as forked
    /// in an earlier session, whose repair the peer may not have finished.
    pub resend_whole: Vec<DocId>,
}

/// Something the driver should report (log, count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The peer's store is not the one seen before (reset or restored): it gets everything.
    PeerStoreReset,
    /// The peer holds a checkpoint past this store's end: this store looks restored from an
    /// older backup, so the peer gets everything again.
    PeerAheadOfUs {
        /// The peer's checkpoint.
        peer_has: u64,
        /// This store's last sequence number.
        last_seq: u64,
    },
    /// The peer holds a checkpoint of this store's sequence taken from another history (its
    /// run is not this store's run at that number): this store is a copy restored from a
    /// backup and has written since, so the peer gets everything again.
    PeerSawOtherHistory {
        /// The peer's checkpoint.
        peer_has: u64,
    },
    /// A push from the peer was refused.
    RefusedIncoming {
        /// The document.
        doc: DocId,
        /// Why.
        reason: String,
        /// A forked history that the peer is expected to repair (this node's whole copy went
        /// to it).
        repair_expected: bool,
    },
    /// The peer refused a push.
    RefusedByPeer {
        /// The document.
        doc: DocId,
        /// Why.
        reason: String,
        /// A forked history: the peer's whole copy follows, so that the owner can repair it.
        repair_expected: bool,
    },
}

/// What the session wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a frame.
    Send(Frame),
    /// Run a store operation (in the order given) and feed back the result.
    Store(StoreOp),
    /// Report something.
    Event(SessionEvent),
    /// The peer broke the protocol (or went silent): close with this reason.
    Close(String),
    /// End the session for a reason that is not the peer's fault; reconnecting starts afresh.
    End(String),
    /// The peer sent a revocation list: check and install it if it is newer.
    InstallCrl(String),
}

/// Where a session stands, for status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Hellos exchanged.
    pub running: bool,
    /// This node's last sequence number scanned for the peer.
    pub scanned_to: u64,
    /// Documents scanned and not yet settled with the peer.
    pub outgoing_pending: u64,
    /// The whole change sequence has been scanned.
    pub scan_complete: bool,
    /// The peer's last sequence number (from its Hello and checkpoints).
    pub peer_last_seq: u64,
    /// How far into the peer's sequence this node has everything.
    pub incoming_checkpoint: u64,
    /// Pushes from the peer being applied.
    pub applying: u64,
    /// Documents pushed to the peer (whole or changes).
    pub docs_sent: u64,
    /// Documents the peer pushed that changed something here.
    pub docs_received: u64,
    /// Both directions are settled.
    pub caught_up: bool,
}

#[derive(Debug, Default)]
struct Flight {
    preparing: bool,
    sent: Option<Vec<Hash>>,
    bytes: usize,
    again: bool,
    /// The next look sends the whole document.
    full: bool,
    live: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    AwaitHello,
    Running,
    Closed,
}

/// One peer's sync session.
#[derive(Debug)]
pub struct Session {
    local: LocalSummary,
    phase: Phase,
    now: Instant,
    last_recv: Instant,
    last_send: Instant,
    // Outgoing.
    scan_pos: u64,
    scanning: bool,
    scan_end: bool,
    rescan: bool,
    queue: VecDeque<DocId>,
    queued: HashSet<DocId>,
    flights: HashMap<DocId, Flight>,
    flight_bytes: usize,
    outstanding: BTreeMap<u64, DocId>,
    cp_sent: u64,
    // Incoming.
    peer_store: [u8; 16],
    peer_crl: u64,
    peer_last_seq: u64,
    cp_received: u64,
    applying: u64,
    docs_sent: u64,
    docs_received: u64,
    /// Documents this node pushed whole after refusing the peer's copy as forked: a second
    /// fork on the same document is refused outright, so two nodes that both cannot repair it
    /// do not send it back and forth.
    sent_whole: HashSet<DocId>,
}

impl Session {
    /// A session that has not started.
    pub fn new(local: LocalSummary, now: Instant) -> Session {
        Session {
            local,
            phase: Phase::AwaitHello,
            now,
            last_recv: now,
            last_send: now,
            scan_pos: 0,
            scanning: false,
            scan_end: false,
            rescan: false,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            flights: HashMap::new(),
            flight_bytes: 0,
            outstanding: BTreeMap::new(),
            cp_sent: 0,
            peer_store: [0; 16],
            peer_crl: 0,
            peer_last_seq: 0,
            cp_received: 0,
            applying: 0,
            docs_sent: 0,
            docs_received: 0,
            sent_whole: HashSet::new(),
        }
    }

    /// The first effects: this node's Hello.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        let hello = Frame::Hello {
            version: VERSION,
            store_id: self.local.store_id,
            last_seq: self.local.last_seq,
            have_yours: self.local.have_theirs,
            crl_number: self.local.crl.as_ref().map_or(0, |c| c.0),
        };
        self.send(&mut out, hello);
        out
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    fn send(&mut self, out: &mut Vec<Effect>, f: Frame) {
        self.last_send = self.now;
        out.push(Effect::Send(f));
    }

    fn close(&mut self, out: &mut Vec<Effect>, reason: String) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            out.push(Effect::Close(reason));
        }
    }

    /// A frame from the peer.
    pub fn on_frame(&mut self, frame: Frame, now: Instant) -> Vec<Effect> {
        self.now = now;
        self.last_recv = now;
        let mut out = Vec::new();
        match (&self.phase, frame) {
            (Phase::Closed, _) => {}
            (
                Phase::AwaitHello,
                Frame::Hello {
                    version,
                    store_id,
                    last_seq,
                    have_yours,
                    crl_number,
                },
            ) => {
                if version != VERSION {
                    self.close(&mut out, format!("sync protocol version {version} is not supported (this node speaks {VERSION})"));
                    return out;
                }
                self.peer_crl = crl_number;
                self.offer_crl(&mut out);
                self.on_hello(&mut out, store_id, last_seq, have_yours);
            }
            (Phase::AwaitHello, other) => {
                self.close(
                    &mut out,
                    format!("expected Hello first, got {}", other.name()),
                );
            }
            (Phase::Running, Frame::Hello { .. }) => self.close(&mut out, "a second Hello".into()),
            (
                Phase::Running,
                Frame::Push {
                    doc,
                    meta,
                    heads,
                    bytes,
                },
            ) => {
                self.applying += 1;
                out.push(Effect::Store(StoreOp::Apply {
                    doc,
                    meta,
                    heads,
                    bytes,
                }));
            }
            (Phase::Running, Frame::Ack { doc, heads }) => {
                let Some(sent) = self.flights.get_mut(&doc).and_then(|f| f.sent.take()) else {
                    self.close(
                        &mut out,
                        format!("Ack for document {doc}, which was not pushed"),
                    );
                    return out;
                };
                out.push(Effect::Store(StoreOp::RecordAck {
                    doc,
                    sent,
                    acked: heads,
                }));
                self.settle_push(&mut out, doc);
            }
            (Phase::Running, Frame::NeedAll { doc }) => {
                let Some(f) = self.flights.get_mut(&doc).filter(|f| f.sent.is_some()) else {
                    self.close(
                        &mut out,
                        format!("NeedAll for document {doc}, which was not pushed"),
                    );
                    return out;
                };
                f.sent = None;
                f.preparing = true;
                self.flight_bytes = self
                    .flight_bytes
                    .saturating_sub(std::mem::take(&mut f.bytes));
                out.push(Effect::Store(StoreOp::Prepare { doc, full: true }));
            }
            (Phase::Running, Frame::Refuse { doc, reason }) => {
                self.refused_by_peer(&mut out, doc, reason, false);
            }
            (Phase::Running, Frame::Forked { doc, reason }) => {
                self.refused_by_peer(&mut out, doc, reason, true);
            }
            (Phase::Running, Frame::Checkpoint { seq, run }) => {
                if seq > self.cp_received {
                    self.cp_received = seq;
                    self.peer_last_seq = self.peer_last_seq.max(seq);
                    out.push(Effect::Store(StoreOp::SaveCheckpoint(Checkpoint {
                        store_id: self.peer_store,
                        seq,
                        run,
                    })));
                }
            }
            (Phase::Running, Frame::Ping) => {}
            (Phase::Running, Frame::Crl { number, pem }) => {
                self.peer_crl = self.peer_crl.max(number);
                out.push(Effect::InstallCrl(pem));
            }
        }
        out
    }

    fn refused_by_peer(
        &mut self,
        out: &mut Vec<Effect>,
        doc: DocId,
        reason: String,
        repair_expected: bool,
    ) {
        if self.flights.get(&doc).is_none_or(|f| f.sent.is_none()) {
            let frame = if repair_expected { "Forked" } else { "Refuse" };
            self.close(
                out,
                format!("{frame} for document {doc}, which was not pushed"),
            );
            return;
        }
        out.push(Effect::Event(SessionEvent::RefusedByPeer {
            doc,
            reason,
            repair_expected,
        }));
        // A look asked for meanwhile (a newer change, or the whole document for a fork this
        // node found in the peer's copy) still happens.
        if let Some(f) = self.flights.get_mut(&doc) {
            f.sent = None;
        }
        self.settle_push(out, doc);
    }

    /// Pushes the whole document (again, once the flight in progress settles).
    fn push_whole(&mut self, out: &mut Vec<Effect>, doc: DocId) {
        match self.flights.get_mut(&doc) {
            Some(f) => {
                f.again = true;
                f.full = true;
            }
            None => {
                self.flights.insert(
                    doc,
                    Flight {
                        preparing: true,
                        ..Flight::default()
                    },
                );
                out.push(Effect::Store(StoreOp::Prepare { doc, full: true }));
            }
        }
    }

    fn on_hello(
        &mut self,
        out: &mut Vec<Effect>,
        store_id: [u8; 16],
        last_seq: u64,
        have_yours: Option<Checkpoint>,
    ) {
        self.peer_store = store_id;
        self.peer_last_seq = last_seq;
        match self.local.peer_store_seen {
            Some(seen) if seen != store_id => {
                out.push(Effect::Event(SessionEvent::PeerStoreReset));
                out.push(Effect::Store(StoreOp::ResetPeer { store_id }));
            }
            Some(_) => {}
            None => out.push(Effect::Store(StoreOp::NotePeerStore { store_id })),
        }
        // The checkpoint this node holds counts only for the peer's current store.
        self.cp_received = self
            .local
            .have_theirs
            .filter(|cp| cp.store_id == store_id && cp.seq <= last_seq)
            .map_or(0, |cp| cp.seq);
        let start = match have_yours {
            Some(cp)
                if cp.store_id == self.local.store_id
                    && cp.seq <= self.local.last_seq
                    && self.local.runs.at(cp.seq) == Some(cp.run) =>
            {
                cp.seq
            }
            Some(cp) if cp.store_id == self.local.store_id => {
                // The peer has seen changes of this store that it no longer holds, or other
                // changes under the same numbers: it was restored from an older backup (and
                // may have written since). Take a new identity so every peer treats it as a
                // new store and sends it everything, then start again.
                out.push(Effect::Event(if cp.seq > self.local.last_seq {
                    SessionEvent::PeerAheadOfUs {
                        peer_has: cp.seq,
                        last_seq: self.local.last_seq,
                    }
                } else {
                    SessionEvent::PeerSawOtherHistory { peer_has: cp.seq }
                }));
                out.push(Effect::Store(StoreOp::Reincarnate));
                self.phase = Phase::Closed;
                out.push(Effect::End(
                    "this store was restored from an older backup: it took a new identity; syncing again".into(),
                ));
                return;
            }
            _ => 0,
        };
        self.scan_pos = start;
        self.cp_sent = start;
        self.phase = Phase::Running;
        for doc in std::mem::take(&mut self.local.resend_whole) {
            self.sent_whole.insert(doc);
            self.push_whole(out, doc);
        }
        self.pump(out);
    }

    /// A store operation's result.
    pub fn on_store(&mut self, result: OpResult, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        match result {
            OpResult::Scanned { entries, end, .. } => {
                self.scanning = false;
                for (seq, doc) in entries {
                    self.scan_pos = self.scan_pos.max(seq);
                    self.outstanding.insert(seq, doc);
                    match self.flights.get_mut(&doc) {
                        // The flight may have read the document before this change: look
                        // again when it settles. (The change's own notification, if still on
                        // its way, is ignored as already scanned.)
                        Some(f) => f.again = true,
                        None => {
                            if self.queued.insert(doc) {
                                self.queue.push_back(doc);
                            }
                        }
                    }
                }
                self.scan_end = end;
                self.pump(&mut out);
            }
            OpResult::Prepared { doc, push } => {
                let Some(f) = self.flights.get_mut(&doc) else {
                    return out;
                };
                f.preparing = false;
                match push {
                    None => {
                        if f.again {
                            f.again = false;
                            f.preparing = true;
                            let full = std::mem::take(&mut f.full);
                            out.push(Effect::Store(StoreOp::Prepare { doc, full }));
                        } else {
                            self.complete(&mut out, doc);
                        }
                    }
                    Some(p) => {
                        f.sent = Some(p.heads.clone());
                        f.bytes = p.bytes.len();
                        self.flight_bytes += p.bytes.len();
                        self.docs_sent += 1;
                        self.send(
                            &mut out,
                            Frame::Push {
                                doc,
                                meta: p.meta,
                                heads: p.heads,
                                bytes: p.bytes,
                            },
                        );
                    }
                }
            }
            OpResult::Applied { doc, outcome } => {
                self.applying = self.applying.saturating_sub(1);
                match outcome {
                    ApplyOutcome::Stored { heads, changed } => {
                        if changed {
                            self.docs_received += 1;
                        }
                        self.send(&mut out, Frame::Ack { doc, heads });
                    }
                    ApplyOutcome::NeedAll => self.send(&mut out, Frame::NeedAll { doc }),
                    ApplyOutcome::Refused(reason) => {
                        out.push(Effect::Event(SessionEvent::RefusedIncoming {
                            doc,
                            reason: reason.clone(),
                            repair_expected: false,
                        }));
                        self.send(&mut out, Frame::Refuse { doc, reason });
                    }
                    ApplyOutcome::Forked(reason) => {
                        // The first time, the peer gets this node's whole copy, so that the
                        // node that owns the forked actor id can repair the document.
                        let first = self.sent_whole.insert(doc);
                        out.push(Effect::Event(SessionEvent::RefusedIncoming {
                            doc,
                            reason: reason.clone(),
                            repair_expected: first,
                        }));
                        if first {
                            self.send(&mut out, Frame::Forked { doc, reason });
                            self.push_whole(&mut out, doc);
                        } else {
                            self.send(&mut out, Frame::Refuse { doc, reason });
                        }
                    }
                }
            }
            OpResult::Done => {}
        }
        out
    }

    /// A store operation failed (the disk, not the peer): end the session.
    pub fn on_store_failed(&mut self, reason: String, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut out = Vec::new();
        self.close(&mut out, format!("storage failure: {reason}"));
        out
    }

    /// A document changed in this node's store (a local edit or a push from any peer).
    pub fn on_local_change(&mut self, seq: u64, doc: DocId, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut out = Vec::new();
        if self.phase != Phase::Running || seq <= self.scan_pos {
            return out;
        }
        self.rescan = true;
        match self.flights.get_mut(&doc) {
            Some(f) => f.again = true,
            None => {
                let live = self.flights.values().filter(|f| f.live).count();
                if live < LIVE_RESERVE {
                    self.flights.insert(
                        doc,
                        Flight {
                            preparing: true,
                            live: true,
                            ..Flight::default()
                        },
                    );
                    out.push(Effect::Store(StoreOp::Prepare { doc, full: false }));
                }
            }
        }
        self.pump(&mut out);
        out
    }

    /// This node installed a revocation list: pass it on if the peer's is older.
    pub fn on_crl(&mut self, number: u64, pem: String, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut out = Vec::new();
        self.local.crl = Some((number, pem));
        if self.phase == Phase::Running {
            self.offer_crl(&mut out);
        }
        out
    }

    fn offer_crl(&mut self, out: &mut Vec<Effect>) {
        if let Some((number, pem)) = self.local.crl.clone()
            && number > self.peer_crl
        {
            self.peer_crl = number;
            self.send(out, Frame::Crl { number, pem });
        }
    }

    /// Change notifications were lost (this session fell behind): rescan.
    pub fn on_lagged(&mut self, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut out = Vec::new();
        if self.phase == Phase::Running {
            self.rescan = true;
            self.pump(&mut out);
        }
        out
    }

    /// Time passes: pings and the idle limit.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        if now.saturating_duration_since(self.last_recv) >= IDLE_LIMIT {
            self.close(
                &mut out,
                format!(
                    "nothing received from the peer for {} s",
                    IDLE_LIMIT.as_secs()
                ),
            );
        } else if now.saturating_duration_since(self.last_send) >= PING_EVERY {
            self.send(&mut out, Frame::Ping);
        }
        out
    }

    /// Where the session stands.
    pub fn progress(&self) -> Progress {
        let running = self.phase == Phase::Running;
        let outgoing_pending = (self.queue.len() + self.flights.len()) as u64;
        let scan_complete = self.scan_end && !self.scanning && !self.rescan;
        Progress {
            running,
            scanned_to: self.scan_pos,
            outgoing_pending,
            scan_complete,
            peer_last_seq: self.peer_last_seq,
            incoming_checkpoint: self.cp_received,
            applying: self.applying,
            docs_sent: self.docs_sent,
            docs_received: self.docs_received,
            caught_up: running
                && scan_complete
                && outgoing_pending == 0
                && self.applying == 0
                && self.cp_received >= self.peer_last_seq,
        }
    }

    /// After an ack: push again if the document changed meanwhile, else settle it.
    fn settle_push(&mut self, out: &mut Vec<Effect>, doc: DocId) {
        let Some(f) = self.flights.get_mut(&doc) else {
            return;
        };
        self.flight_bytes = self
            .flight_bytes
            .saturating_sub(std::mem::take(&mut f.bytes));
        if f.again {
            f.again = false;
            f.preparing = true;
            let full = std::mem::take(&mut f.full);
            out.push(Effect::Store(StoreOp::Prepare { doc, full }));
        } else {
            self.complete(out, doc);
        }
    }

    fn complete(&mut self, out: &mut Vec<Effect>, doc: DocId) {
        if let Some(f) = self.flights.remove(&doc) {
            self.flight_bytes = self.flight_bytes.saturating_sub(f.bytes);
        }
        self.outstanding.retain(|_, d| *d != doc);
        self.pump(out);
    }

    /// Starts prepares and scans while there is room, and sends a checkpoint when it advanced.
    fn pump(&mut self, out: &mut Vec<Effect>) {
        if self.phase != Phase::Running {
            return;
        }
        loop {
            let backlog = self.flights.values().filter(|f| !f.live).count();
            let room = backlog < MAX_IN_FLIGHT
                && (self.flight_bytes < MAX_IN_FLIGHT_BYTES || self.flights.is_empty());
            if !room {
                break;
            }
            let Some(doc) = self.queue.pop_front() else {
                break;
            };
            self.queued.remove(&doc);
            if self.flights.contains_key(&doc) {
                continue;
            }
            self.flights.insert(
                doc,
                Flight {
                    preparing: true,
                    ..Flight::default()
                },
            );
            out.push(Effect::Store(StoreOp::Prepare { doc, full: false }));
        }
        if !self.scanning && self.queue.len() < SCAN_PAGE / 2 && (!self.scan_end || self.rescan) {
            self.scanning = true;
            self.rescan = false;
            out.push(Effect::Store(StoreOp::Scan {
                after: self.scan_pos,
                limit: SCAN_PAGE,
            }));
        }
        let mark = match self.outstanding.keys().next() {
            Some(first) => first - 1,
            None => self.scan_pos,
        };
        let idle = self.flights.is_empty() && self.queue.is_empty();
        if mark > self.cp_sent && (idle || mark - self.cp_sent >= CHECKPOINT_STRIDE) {
            self.cp_sent = mark;
            let run = self.local.runs.at(mark).unwrap_or_default();
            self.send(out, Frame::Checkpoint { seq: mark, run });
        }
    }
}
