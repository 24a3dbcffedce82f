//! The tokio/quinn layer of sync: it only moves bytes. For every authenticated connection it
//! opens (dialer) or accepts (listener) one bidirectional stream, runs a [`Session`] over it,
//! executes the session's store operations on the storage thread in order, feeds local change
//! notifications in, and keeps per-peer figures for `yilian status`. A reader task and a writer
//! task keep reading independent of writing, so two busy peers never wait on each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use super::ops::{self, ApplyOutcome, OpContext, OpResult, StoreOp};
use super::proto::{Frame, MAX_FRAME};
use super::session::{Effect, LocalSummary, Session, SessionEvent};
use crate::config::FacilityKind;
use crate::documents::now_ms;
use crate::framing::{self, FrameError};
use crate::identity::enroll::EnrollError;
use crate::ids::{DocId, FacilityCode, NodeId};
use crate::revocation::Revocation;
use crate::storage::{StoreError, StoreHandle};
use crate::transport::manager::Established;
use crate::transport::{PeerIdentity, close};

/// Frames queued for the writer task.
pub const WRITER_CAPACITY: usize = 1024;
/// Frames read ahead of the session.
pub const READER_CAPACITY: usize = 64;
/// Store results waiting for the session (bounded by the in-flight limits).
pub const RESULTS_CAPACITY: usize = 4096;
/// How long a frame may take to arrive once started (8 MiB at 256 kbit/s takes ~4.5 min).
pub const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the listener waits for the dialer to open the sync stream.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the next frame on the main stream. The session closes a silent peer after
/// [`IDLE_LIMIT`](super::session::IDLE_LIMIT) of silence on all streams; while document frames flow the main stream may
/// rightly stay quiet for a long time.
pub const MAIN_IDLE: Duration = Duration::from_secs(24 * 3600);
/// Document frames being written at once; more wait in the writer's channel. Matches what the
/// peer lets us open.
pub const MAX_LANES: usize = crate::transport::endpoint::MAX_UNI_STREAMS as usize;
/// How often a session is told the time.
pub const TICK: Duration = Duration::from_secs(5);

/// One peer's sync figures, for `yilian status` and `yilian sync wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSyncStatus {
    /// The peer.
    pub node_id: NodeId,
    /// Its facility.
    pub facility: FacilityCode,
    /// A session is running now.
    pub connected: bool,
    /// When the current or last session started (ms since the Unix epoch).
    pub session_started_ms: u64,
    /// When both directions were last settled (ms since the Unix epoch).
    pub last_synced_ms: Option<u64>,
    /// Both directions are settled now.
    pub caught_up: bool,
    /// Documents pushed to the peer (this session).
    pub docs_sent: u64,
    /// Documents received from the peer that changed something here (this session).
    pub docs_received: u64,
    /// Bytes written to the sync stream (this session).
    pub bytes_sent: u64,
    /// Bytes read from the sync stream (this session).
    pub bytes_received: u64,
    /// Frames written (this session).
    pub frames_sent: u64,
    /// Frames read (this session).
    pub frames_received: u64,
    /// Documents waiting to be settled with the peer (scanned, not yet acknowledged).
    pub backlog: u64,
    /// Whether this node's whole change sequence has been checked for the peer.
    pub scan_complete: bool,
    /// The peer's last change-sequence number.
    pub peer_last_seq: u64,
    /// How far into the peer's change sequence this node has everything.
    pub incoming_checkpoint: u64,
    /// Pushes refused either way (this session).
    pub refused: u64,
    /// Why the last session ended, if it did.
    pub last_error: Option<String>,
    /// Both directions are settled now: nothing is waiting to be sent or applied (documents
    /// may still be refused; `caught_up` says settled with nothing refused).
    pub settled: bool,
    /// Documents whose last exchange with this peer was refused, either way, since the node
    /// started (a document leaves the list once an exchange of it succeeds in that direction).
    pub refusals: Vec<Refusal>,
}

/// A document whose last exchange with a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The document.
    pub doc: DocId,
    /// Who refused whom.
    pub direction: RefusalDirection,
    /// Why, as the refusing node said.
    pub reason: String,
    /// A forked history whose repair is under way: the node that owns the forked actor id has
    /// been sent the other copy and is expected to repair it.
    pub repairing: bool,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// Which way a refused document went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalDirection {
    /// This node pushed it and the peer refused it.
    Sent,
    /// The peer pushed it and this node refused it.
    Received,
}

impl PeerSyncStatus {
    fn note_refusal(&mut self, r: Refusal) {
        self.refused += 1;
        self.refusals
            .retain(|o| !(o.doc == r.doc && o.direction == r.direction));
        self.refusals.push(r);
    }

    fn clear_refusal(&mut self, doc: &DocId, direction: RefusalDirection) {
        self.refusals
            .retain(|o| !(o.doc == *doc && o.direction == direction));
    }
}

/// Where the storage thread hands a session its store results.
struct ResultsTx {
    tx: mpsc::Sender<Result<OpResult, StoreError>>,
    /// Told when a result found the channel full: the session would wait for it forever, so it
    /// ends instead.
    overflow: Arc<tokio::sync::Notify>,
}

/// Live byte and frame counters of one session.
#[derive(Debug, Default)]
struct Counters {
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    frames_out: AtomicU64,
    frames_in: AtomicU64,
}

struct Inner {
    counters: Mutex<HashMap<NodeId, Arc<Counters>>>,
    revocation: Option<Arc<Revocation>>,
    store: StoreHandle,
    facility: FacilityCode,
    kind: FacilityKind,
    status: Mutex<HashMap<NodeId, PeerSyncStatus>>,
    tasks: Mutex<JoinSet<()>>,
}

/// Runs a sync session for every connection the transport announces.
#[derive(Clone)]
pub struct SyncManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SyncManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncManager")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SyncManager {
    /// Starts serving sessions for the connections announced on `events`.
    pub fn spawn(
        store: StoreHandle,
        facility: FacilityCode,
        kind: FacilityKind,
        revocation: Option<Arc<Revocation>>,
        mut events: mpsc::Receiver<Established>,
    ) -> SyncManager {
        let mgr = SyncManager {
            inner: Arc::new(Inner {
                revocation,
                store,
                facility,
                kind,
                status: Mutex::new(HashMap::new()),
                counters: Mutex::new(HashMap::new()),
                tasks: Mutex::new(JoinSet::new()),
            }),
        };
        let inner = mgr.inner.clone();
        lock(&mgr.inner.tasks).spawn(async move {
            // Sessions by peer: a new connection to the same peer replaces the old session.
            let mut running: HashMap<NodeId, tokio::task::AbortHandle> = HashMap::new();
            while let Some(est) = events.recv().await {
                let node = est.peer.node_id;
                if let Some(old) = running.remove(&node) {
                    old.abort();
                }
                let task_inner = inner.clone();
                let handle = lock(&inner.tasks).spawn(async move {
                    run_session(task_inner, est).await;
                });
                running.insert(node, handle);
                running.retain(|_, h| !h.is_finished());
            }
        });
        mgr
    }

    /// Figures for every peer seen since start.
    pub fn status(&self) -> Vec<PeerSyncStatus> {
        let counters = lock(&self.inner.counters);
        let mut v: Vec<_> = lock(&self.inner.status)
            .values()
            .cloned()
            .map(|mut s| {
                if let Some(c) = counters.get(&s.node_id) {
                    s.bytes_sent = c.bytes_out.load(Ordering::Relaxed);
                    s.bytes_received = c.bytes_in.load(Ordering::Relaxed);
                    s.frames_sent = c.frames_out.load(Ordering::Relaxed);
                    s.frames_received = c.frames_in.load(Ordering::Relaxed);
                }
                s
            })
            .collect();
        v.sort_by(|a, b| a.facility.cmp(&b.facility));
        v
    }

    /// Stops every session (the connections are closed by the transport).
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

impl Inner {
    fn update(&self, peer: &PeerIdentity, f: impl FnOnce(&mut PeerSyncStatus)) {
        let mut st = lock(&self.status);
        let entry = st.entry(peer.node_id).or_insert_with(|| PeerSyncStatus {
            node_id: peer.node_id,
            facility: peer.facility.clone(),
            connected: false,
            session_started_ms: 0,
            last_synced_ms: None,
            caught_up: false,
            docs_sent: 0,
            docs_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
            frames_sent: 0,
            frames_received: 0,
            backlog: 0,
            scan_complete: false,
            peer_last_seq: 0,
            incoming_checkpoint: 0,
            refused: 0,
            last_error: None,
            settled: false,
            refusals: Vec::new(),
        });
        f(entry);
    }

    /// Documents this node refused from `peer` as forked and whose repair may not be done.
    fn repairs_pending(&self, peer: &NodeId) -> Vec<DocId> {
        lock(&self.status).get(peer).map_or_else(Vec::new, |s| {
            s.refusals
                .iter()
                .filter(|r| r.repairing && r.direction == RefusalDirection::Received)
                .map(|r| r.doc)
                .collect()
        })
    }
}

async fn run_session(inner: Arc<Inner>, est: Established) {
    let peer = est.peer.clone();
    inner.update(&peer, |s| {
        s.connected = true;
        s.session_started_ms = now_ms();
        s.caught_up = false;
        s.docs_sent = 0;
        s.docs_received = 0;
        s.bytes_sent = 0;
        s.bytes_received = 0;
        s.frames_sent = 0;
        s.frames_received = 0;
        s.refused = 0;
        s.last_error = None;
    });
    let reason = match session(&inner, &est).await {
        Ok(()) => "connection closed".to_string(),
        Err(reason) => reason,
    };
    tracing::info!(peer = %peer.node_id, facility = %peer.facility, %reason, "sync session ended");
    inner.update(&peer, |s| {
        s.connected = false;
        s.caught_up = false;
        s.settled = false;
        s.last_error = Some(reason);
    });
}

async fn session(inner: &Arc<Inner>, est: &Established) -> Result<(), String> {
    let conn = &est.conn;
    let peer = est.peer.clone();
    let (send, recv) = if est.outbound {
        conn.open_bi()
            .await
            .map_err(|e| format!("cannot open the sync stream: {e}"))?
    } else {
        tokio::time::timeout(STREAM_TIMEOUT, conn.accept_bi())
            .await
            .map_err(|_| "the peer opened no sync stream".to_string())?
            .map_err(|e| format!("no sync stream: {e}"))?
    };
    // Subscribe before reading the summary, so no change falls between the two.
    let mut changes = inner.store.subscribe();
    let mut crls = inner.revocation.as_ref().map(|r| r.subscribe());
    let crl = crls.as_mut().and_then(|rx| {
        rx.borrow_and_update()
            .as_ref()
            .map(|c| (c.number, c.pem.clone()))
    });
    let node = peer.node_id;
    let resend_whole = inner.repairs_pending(&node);
    let summary = inner
        .store
        .call(move |b| {
            Ok(LocalSummary {
                store_id: b.store_id(),
                last_seq: b.last_seq()?,
                have_theirs: b.peer_checkpoint(&node)?,
                peer_store_seen: b.peer_store(&node)?,
                crl,
                runs: b.runs()?,
                resend_whole,
            })
        })
        .await
        .map_err(|e| format!("storage failure: {e}"))?;
    // Remember the facility: referrals and certifications are checked against those met.
    let met = crate::storage::FacilityEntry {
        code: peer.facility.to_string(),
        name: peer.name.clone(),
        kind: peer.kind,
        node: peer.node_id,
        seen_ms: now_ms(),
    };
    inner
        .store
        .call(move |b| b.note_facility(&met))
        .await
        .map_err(|e| format!("storage failure: {e}"))?;
    let ctx = Arc::new(OpContext {
        facility: inner.facility.clone(),
        kind: inner.kind,
        peer: peer.clone(),
    });

    let counters = Arc::new(Counters::default());
    lock(&inner.counters).insert(peer.node_id, counters.clone());
    let (writer_tx, writer_rx) = mpsc::channel::<Frame>(WRITER_CAPACITY);
    let writer = tokio::spawn(write_frames(
        conn.clone(),
        send,
        writer_rx,
        counters.clone(),
    ));
    let (frames_tx, mut frames_rx) = mpsc::channel::<Result<Frame, String>>(READER_CAPACITY);
    let reader = tokio::spawn(read_frames(conn.clone(), recv, frames_tx, counters.clone()));
    let (tx, mut results_rx) = mpsc::channel::<Result<OpResult, StoreError>>(RESULTS_CAPACITY);
    let results_tx = ResultsTx {
        tx,
        overflow: Arc::new(tokio::sync::Notify::new()),
    };

    let mut s = Session::new(summary, Instant::now());
    let mut tick = tokio::time::interval(TICK);
    let mut effects = s.start();
    let outcome: Result<(), String> = loop {
        if let Err(reason) =
            apply_effects(inner, &ctx, &peer, effects, &writer_tx, &results_tx).await
        {
            if reason.starts_with("protocol violation") {
                conn.close(close::PROTOCOL.into(), reason.as_bytes());
            } else if reason.starts_with("restart") {
                conn.close(close::SHUTDOWN.into(), reason.as_bytes());
            }
            break Err(reason);
        }
        let p = s.progress();
        inner.update(&peer, |st| {
            st.docs_sent = p.docs_sent;
            st.docs_received = p.docs_received;
            st.backlog = p.outgoing_pending;
            st.scan_complete = p.scan_complete;
            st.peer_last_seq = p.peer_last_seq;
            st.incoming_checkpoint = p.incoming_checkpoint;
            st.settled = p.caught_up;
            let caught_up = p.caught_up && st.refusals.is_empty();
            if caught_up && !st.caught_up {
                st.last_synced_ms = Some(now_ms());
            }
            st.caught_up = caught_up;
        });
        effects = tokio::select! {
            biased;
            r = results_rx.recv() => match r {
                Some(Ok(result)) => {
                    if let OpResult::Applied { doc, outcome: ApplyOutcome::Stored { .. } } = &result {
                        inner.update(&peer, |st| st.clear_refusal(doc, RefusalDirection::Received));
                    }
                    s.on_store(result, Instant::now())
                }
                Some(Err(e)) => s.on_store_failed(e.to_string(), Instant::now()),
                None => break Err("the store closed".into()),
            },
            f = frames_rx.recv() => match f {
                Some(Ok(frame)) => s.on_frame(frame, Instant::now()),
                Some(Err(reason)) => {
                    if reason.starts_with("malformed") || reason.contains("exceeds") {
                        vec![Effect::Close(reason)]
                    } else {
                        break Err(reason);
                    }
                }
                None => break Err("the peer ended the sync stream".into()),
            },
            ev = changes.recv() => match ev {
                Ok(e) => s.on_local_change(e.seq, e.doc, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(_)) => s.on_lagged(Instant::now()),
                Err(broadcast::error::RecvError::Closed) => break Err("the store closed".into()),
            },
            _ = tick.tick() => s.on_tick(Instant::now()),
            Some(Ok(())) = async {
                match crls.as_mut() {
                    Some(rx) => Some(rx.changed().await),
                    None => std::future::pending().await,
                }
            } => {
                let latest = crls.as_mut().and_then(|rx| rx.borrow_and_update().clone());
                match latest {
                    Some(c) => s.on_crl(c.number, c.pem, Instant::now()),
                    None => vec![],
                }
            }
            reason = conn.closed() => break Err(format!("connection closed: {reason}")),
            () = results_tx.overflow.notified() => {
                let reason = "restart: the session fell behind its store results";
                tracing::warn!(peer = %peer.node_id, facility = %peer.facility, "sync session fell behind its store results; ending it so that the next one starts afresh");
                conn.close(close::SHUTDOWN.into(), reason.as_bytes());
                break Err(reason.into());
            }
        };
    };
    reader.abort();
    drop(writer_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    outcome
}

fn count(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// Sends the session's frames: session frames in order on the main stream, each document frame
/// on a unidirectional stream of its own (written by its own task, so a large push never holds
/// back a small ack). Ends at the first failure; the session then finds its channel closed.
async fn write_frames(
    conn: quinn::Connection,
    mut main: quinn::SendStream,
    mut frames: mpsc::Receiver<Frame>,
    counters: Arc<Counters>,
) -> Result<(), String> {
    let mut lanes: JoinSet<Result<(), String>> = JoinSet::new();
    loop {
        tokio::select! {
            // Backpressure: while every lane is busy, the session's effects wait.
            frame = frames.recv(), if lanes.len() < MAX_LANES => {
                let Some(frame) = frame else { break };
                let bytes = frame.encode();
                if frame.own_stream() {
                    // Replies free the peer's in-flight slots: they go before pushes.
                    let priority = if matches!(frame, Frame::Push { .. }) { 0 } else { 1 };
                    let conn = conn.clone();
                    let counters = counters.clone();
                    lanes.spawn(async move {
                        let mut s = conn
                            .open_uni()
                            .await
                            .map_err(|e| format!("cannot open a stream: {e}"))?;
                        let _ = s.set_priority(priority);
                        framing::write_frame(&mut s, &bytes, MAX_FRAME)
                            .await
                            .map_err(|e| format!("cannot send: {e}"))?;
                        let _ = s.finish();
                        count(&counters.bytes_out, bytes.len() + 4);
                        count(&counters.frames_out, 1);
                        Ok(())
                    });
                } else {
                    framing::write_frame(&mut main, &bytes, MAX_FRAME)
                        .await
                        .map_err(|e| format!("cannot send: {e}"))?;
                    count(&counters.bytes_out, bytes.len() + 4);
                    count(&counters.frames_out, 1);
                }
            }
            Some(done) = lanes.join_next() => {
                done.map_err(|e| format!("a send task failed: {e}"))??;
            }
        }
    }
    while let Some(done) = lanes.join_next().await {
        done.map_err(|e| format!("a send task failed: {e}"))??;
    }
    let _ = main.finish();
    Ok(())
}

/// Reads one frame off a stream, as the session wants it.
async fn read_one(
    stream: &mut quinn::RecvStream,
    idle: Duration,
    counters: &Counters,
) -> Option<Result<Frame, String>> {
    match framing::read_frame(stream, MAX_FRAME, idle, FRAME_BODY_TIMEOUT).await {
        Ok(Some(bytes)) => {
            count(&counters.bytes_in, bytes.len() + 4);
            count(&counters.frames_in, 1);
            Some(Frame::decode(&bytes))
        }
        Ok(None) => None,
        Err(FrameError::TooLarge { len, max }) => Some(Err(format!(
            "frame of {len} bytes exceeds the {max}-byte limit"
        ))),
        Err(e) => Some(Err(format!("cannot read: {e}"))),
    }
}

/// Receives the peer's frames: the main stream in order, and, once the peer's `Hello` has been
/// read, every unidirectional stream the peer opens (a frame or more each), in whatever order
/// they complete. Document frames are never handed to the session before the `Hello`.
async fn read_frames(
    conn: quinn::Connection,
    mut main: quinn::RecvStream,
    frames: mpsc::Sender<Result<Frame, String>>,
    counters: Arc<Counters>,
) {
    // Lane readers live as long as this task: aborting it aborts them.
    let mut lanes: JoinSet<()> = JoinSet::new();
    let mut first = true;
    loop {
        // The session closes an idle peer (it sees every stream); this only bounds a stall.
        let item = read_one(&mut main, MAIN_IDLE, &counters)
            .await
            .unwrap_or_else(|| Err("the peer ended the sync stream".to_string()));
        let stop = item.is_err();
        if frames.send(item).await.is_err() || stop {
            break;
        }
        if std::mem::take(&mut first) {
            let (conn, frames, counters) = (conn.clone(), frames.clone(), counters.clone());
            lanes.spawn(async move {
                let mut readers = JoinSet::new();
                while let Ok(mut stream) = conn.accept_uni().await {
                    let (frames, counters) = (frames.clone(), counters.clone());
                    readers.spawn(async move {
                        while let Some(item) =
                            read_one(&mut stream, FRAME_BODY_TIMEOUT, &counters).await
                        {
                            let stop = item.is_err();
                            if frames.send(item).await.is_err() || stop {
                                return;
                            }
                        }
                    });
                    while readers.try_join_next().is_some() {}
                }
            });
        }
    }
    // Keep the lanes alive until the session (the receiver of `frames`) is gone.
    frames.closed().await;
    drop(lanes);
}

/// Carries out a session's effects: frames to the writer, store operations to the storage
/// thread in order, events to the log. Returns the close reason if the session must end.
async fn apply_effects(
    inner: &Arc<Inner>,
    ctx: &Arc<OpContext>,
    peer: &PeerIdentity,
    effects: Vec<Effect>,
    writer: &mpsc::Sender<Frame>,
    results: &ResultsTx,
) -> Result<(), String> {
    for e in effects {
        match e {
            Effect::Send(frame) => {
                if writer.send(frame).await.is_err() {
                    return Err("the sync stream failed".into());
                }
            }
            Effect::Store(op) => {
                if let StoreOp::RecordAck { doc, .. } = &op {
                    inner.update(peer, |st| st.clear_refusal(doc, RefusalDirection::Sent));
                }
                submit(inner, ctx, op, results).await?
            }
            Effect::Event(ev) => report(inner, peer, ev),
            Effect::Close(reason) => {
                tracing::warn!(peer = %peer.node_id, facility = %peer.facility, %reason, "closing sync session: protocol violation");
                return Err(format!("protocol violation: {reason}"));
            }
            Effect::InstallCrl(pem) => {
                if let Some(r) = &inner.revocation {
                    match r.install(&pem) {
                        Ok((crl, dropped)) => tracing::info!(
                            from = %peer.facility, number = crl.number, dropped = dropped.len(),
                            "installed a newer revocation list received from a peer"
                        ),
                        // Two peers may send the same list; the second is no news.
                        Err(EnrollError::NotNewer { .. }) => {}
                        Err(e) => {
                            tracing::warn!(from = %peer.facility, error = %e, "refused a revocation list from a peer")
                        }
                    }
                }
            }
            Effect::End(reason) => {
                tracing::warn!(peer = %peer.node_id, facility = %peer.facility, %reason, "ending sync session");
                return Err(format!("restart: {reason}"));
            }
        }
    }
    Ok(())
}

async fn submit(
    inner: &Arc<Inner>,
    ctx: &Arc<OpContext>,
    op: StoreOp,
    results: &ResultsTx,
) -> Result<(), String> {
    let ctx = ctx.clone();
    let tx = results.tx.clone();
    let overflow = results.overflow.clone();
    inner
        .store
        .submit(
            move |b| ops::execute(b, &ctx, op),
            move |r| match tx.try_send(r) {
                Ok(()) => {}
                // The session has ended: nobody waits for this result any more.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
                // The session would miss a result it waits for and stall: end it instead, so
                // that the connection is closed and the next session starts afresh.
                Err(mpsc::error::TrySendError::Full(_)) => overflow.notify_one(),
            },
        )
        .await
        .map_err(|e| format!("storage failure: {e}"))
}

fn report(inner: &Arc<Inner>, peer: &PeerIdentity, ev: SessionEvent) {
    match ev {
        SessionEvent::PeerStoreReset => tracing::info!(
            peer = %peer.node_id, facility = %peer.facility,
            "the peer's store was reset or restored: sending it everything again"
        ),
        SessionEvent::PeerAheadOfUs { peer_has, last_seq } => tracing::warn!(
            peer = %peer.node_id, facility = %peer.facility, peer_has, last_seq,
            "the peer has seen more of this node's changes than this store holds: \
             this store looks restored from an older backup; resending everything"
        ),
        SessionEvent::PeerSawOtherHistory { peer_has } => tracing::warn!(
            peer = %peer.node_id, facility = %peer.facility, peer_has,
            "the peer has seen other changes under this store's sequence numbers: \
             this store looks restored from an older backup and written since; resending everything"
        ),
        SessionEvent::RefusedIncoming {
            doc,
            reason,
            repair_expected,
        } => {
            tracing::warn!(peer = %peer.node_id, facility = %peer.facility, %doc, %reason, repair_expected, "refused a document from the peer");
            inner.update(peer, |s| {
                s.note_refusal(Refusal {
                    doc,
                    direction: RefusalDirection::Received,
                    reason,
                    repairing: repair_expected,
                    at_ms: now_ms(),
                })
            });
        }
        SessionEvent::RefusedByPeer {
            doc,
            reason,
            repair_expected,
        } => {
            tracing::warn!(peer = %peer.node_id, facility = %peer.facility, %doc, %reason, repair_expected, "the peer refused a document");
            inner.update(peer, |s| {
                s.note_refusal(Refusal {
                    doc,
                    direction: RefusalDirection::Sent,
                    reason,
                    repairing: repair_expected,
                    at_ms: now_ms(),
                })
            });
        }
    }
}
