//! The store operations a sync session asks for, and how they run against a [`Batch`]. The
//! audience rules live here: a document is offered only to a peer allowed to hold it, and a
//! pushed document is stored only if this node may hold it and the sender may hold it too. The
//! county hospital is in every audience (it relays for everyone).

use automerge::{ChangeHash, ReadDoc};

use super::proto::{DocMeta, Hash};
use crate::config::FacilityKind;
use crate::documents::{Audience, fork};
use crate::identity::node_of_actor;
use crate::ids::{DocId, FacilityCode};
use crate::storage::{Applied, Batch, Checkpoint, StoreError, load_untrusted};
use crate::transport::PeerIdentity;

/// What a session asks of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Entries of the local change sequence after `after`, at most `limit`.
    Scan {
        /// Start after this sequence number.
        after: u64,
        /// At most this many.
        limit: usize,
    },
    /// What to push to the peer for a document (nothing if it may not hold it or has it all).
    Prepare {
        /// The document.
        doc: DocId,
        /// Ignore what the peer is known to hold and send the whole document.
        full: bool,
    },
    /// Apply a push from the peer.
    Apply {
        /// The document.
        doc: DocId,
        /// Present when the bytes are a whole document.
        meta: Option<DocMeta>,
        /// The peer's heads.
        heads: Vec<Hash>,
        /// Automerge bytes.
        bytes: Vec<u8>,
    },
    /// The peer acknowledged a push: remember what it holds.
    RecordAck {
        /// The document.
        doc: DocId,
        /// Heads that were pushed.
        sent: Vec<Hash>,
        /// Heads the peer reported.
        acked: Vec<Hash>,
    },
    /// Remember how far into the peer's change sequence this node has everything.
    SaveCheckpoint(Checkpoint),
    /// The peer's store is not the one last seen: forget what it was known to hold.
    ResetPeer {
        /// Its store id now.
        store_id: [u8; 16],
    },
    /// This store was found restored from an older backup: take a new store id and actor id.
    Reincarnate,
    /// First contact: remember the peer's store id.
    NotePeerStore {
        /// Its store id.
        store_id: [u8; 16],
    },
}

/// Why a push was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Stored (or nothing new); this node's heads now.
    Stored {
        /// Heads after applying.
        heads: Vec<Hash>,
        /// Whether anything new was stored.
        changed: bool,
    },
    /// The bytes need changes this node lacks.
    NeedAll,
    /// Refused, with the reason.
    Refused(String),
    /// Refused because the pushed history and this node's forked under an actor id that is
    /// not this node's: the node that owns it can repair it once it has this node's copy.
    Forked(String),
}

/// A push to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushData {
    /// Present when the bytes are the whole document.
    pub meta: Option<DocMeta>,
    /// This node's heads.
    pub heads: Vec<Hash>,
    /// Automerge bytes.
    pub bytes: Vec<u8>,
}

/// What the store answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// Answer to [`StoreOp::Scan`].
    Scanned {
        /// The `after` asked for.
        after: u64,
        /// (seq, doc) entries, in order.
        entries: Vec<(u64, DocId)>,
        /// Whether the sequence ended before the limit.
        end: bool,
    },
    /// Answer to [`StoreOp::Prepare`].
    Prepared {
        /// The document.
        doc: DocId,
        /// What to push, if anything.
        push: Option<PushData>,
    },
    /// Answer to [`StoreOp::Apply`].
    Applied {
        /// The document.
        doc: DocId,
        /// What happened.
        outcome: ApplyOutcome,
    },
    /// Answer to the bookkeeping operations.
    Done,
}

/// Who is talking: this node and the peer.
#[derive(Debug, Clone)]
pub struct OpContext {
    /// This node's facility.
    pub facility: FacilityCode,
    /// This node's facility kind.
    pub kind: FacilityKind,
    /// The peer.
    pub peer: PeerIdentity,
}

/// Whether a facility may hold a document with this audience.
pub fn may_hold(audience: &Audience, facility: &FacilityCode, kind: FacilityKind) -> bool {
    kind == FacilityKind::CountyHospital || audience.contains(facility)
}

fn to_hashes(h: &[Hash]) -> Vec<ChangeHash> {
    h.iter().map(|b| ChangeHash(*b)).collect()
}

fn to_wire(h: &[ChangeHash]) -> Vec<Hash> {
    h.iter().map(|c| c.0).collect()
}

/// Runs one operation inside a batch.
pub fn execute(b: &mut Batch<'_>, ctx: &OpContext, op: StoreOp) -> Result<OpResult, StoreError> {
    let peer = &ctx.peer;
    match op {
        StoreOp::Scan { after, limit } => {
            let entries = b.changes_since(after, limit)?;
            let end = entries.len() < limit;
            Ok(OpResult::Scanned {
                after,
                entries,
                end,
            })
        }
        StoreOp::Prepare { doc, full } => {
            let info = match b.info(&doc) {
                Ok(i) => i,
                Err(StoreError::NotFound(_)) => return Ok(OpResult::Prepared { doc, push: None }),
                Err(e) => return Err(e),
            };
            if !may_hold(&info.audience, &peer.facility, peer.kind) {
                return Ok(OpResult::Prepared { doc, push: None });
            }
            let known = if full {
                Vec::new()
            } else {
                b.peer_heads(&peer.node_id, &doc)?
            };
            let (bytes, heads, whole) = b.changes_after(&doc, &known)?;
            if !whole && bytes.is_empty() {
                // The peer holds everything already.
                return Ok(OpResult::Prepared { doc, push: None });
            }
            let meta = whole.then(|| DocMeta {
                kind: info.kind,
                audience: info.audience.clone(),
            });
            Ok(OpResult::Prepared {
                doc,
                push: Some(PushData {
                    meta,
                    heads: to_wire(&heads),
                    bytes,
                }),
            })
        }
        StoreOp::Apply {
            doc,
            meta,
            heads,
            bytes,
        } => {
            let outcome = apply(b, ctx, doc, meta, &heads, &bytes)?;
            Ok(OpResult::Applied { doc, outcome })
        }
        StoreOp::RecordAck { doc, sent, acked } => {
            // What the peer reported, if this node knows all of it; otherwise what was sent.
            // Usually the peer reports exactly what was sent: no need to load the document.
            let same = {
                let (mut a, mut s) = (acked.clone(), sent.clone());
                a.sort_unstable();
                s.sort_unstable();
                a == s
            };
            let acked = to_hashes(&acked);
            let all_known = same
                || b.read(&doc, |d| {
                    acked.iter().all(|h| d.get_change_meta_by_hash(h).is_some())
                })?;
            let known = if all_known && !acked.is_empty() {
                acked
            } else {
                to_hashes(&sent)
            };
            b.set_peer_heads(&peer.node_id, &doc, &known)?;
            Ok(OpResult::Done)
        }
        StoreOp::SaveCheckpoint(cp) => {
            b.set_peer_checkpoint(&peer.node_id, cp)?;
            Ok(OpResult::Done)
        }
        StoreOp::ResetPeer { store_id } => {
            b.forget_peer(&peer.node_id)?;
            b.set_peer_store(&peer.node_id, store_id)?;
            Ok(OpResult::Done)
        }
        StoreOp::Reincarnate => {
            b.reincarnate()?;
            Ok(OpResult::Done)
        }
        StoreOp::NotePeerStore { store_id } => {
            b.set_peer_store(&peer.node_id, store_id)?;
            Ok(OpResult::Done)
        }
    }
}

/// A push collided with this node's copy of `doc` under one (actor, seq). If the actor is this
/// node's, the fork is its own to repair: with the peer's whole document in hand it re-creates
/// its forked changes under a fresh actor id ([`fork::repair`]) and stores the result (Ok: the
/// heads now); with only changes in hand it asks for the whole document. Otherwise it refuses
/// and says whose the actor is.
fn repair_fork(
    b: &mut Batch<'_>,
    doc: DocId,
    whole: bool,
    bytes: &[u8],
    actor: &automerge::ActorId,
    seq: u64,
) -> Result<Result<Vec<ChangeHash>, ApplyOutcome>, StoreError> {
    let owner = node_of_actor(actor);
    let Some(me) = node_of_actor(b.actor()).filter(|me| owner == Some(*me)) else {
        let whose = owner.map_or_else(
            || "an actor id that is not a yilian node's".to_string(),
            |n| format!("an actor id of node {n}"),
        );
        return Ok(Err(ApplyOutcome::Forked(format!(
            "duplicate seq {seq} for actor {actor}: the two copies hold different changes under {whose}, which only that node can repair"
        ))));
    };
    if !whole {
        return Ok(Err(ApplyOutcome::NeedAll));
    }
    let remote = match load_untrusted(bytes) {
        Ok(d) => d,
        Err(StoreError::InvalidDocument(reason)) => return Ok(Err(ApplyOutcome::Refused(reason))),
        Err(e) => return Err(e),
    };
    let local = b.read(&doc, |d| d.clone())?;
    match fork::repair(&local, &remote, me) {
        Ok(r) => {
            tracing::warn!(
                %doc, %actor, seq, moved = r.moved, rewritten = r.rewritten,
                "repaired a document whose history forked under this node's actor id (an edit made on a restored copy by an earlier yilian): its forked changes were re-created under a new actor id"
            );
            let heads = r.doc.get_heads();
            b.replace(&doc, r.doc)?;
            Ok(Ok(heads))
        }
        Err(e) => Ok(Err(ApplyOutcome::Refused(format!(
            "duplicate seq {seq} for actor {actor} (a forked history): {e}"
        )))),
    }
}

fn apply(
    b: &mut Batch<'_>,
    ctx: &OpContext,
    doc: DocId,
    meta: Option<DocMeta>,
    heads: &[Hash],
    bytes: &[u8],
) -> Result<ApplyOutcome, StoreError> {
    let peer = &ctx.peer;
    if bytes.len() > crate::storage::MAX_DOC_BYTES {
        return Ok(ApplyOutcome::Refused(format!(
            "{} bytes is more than a document may have",
            bytes.len()
        )));
    }
    let exists = b.exists(&doc)?;
    let audience = if exists {
        b.info(&doc)?.audience
    } else {
        match &meta {
            Some(m) => m.audience.clone(),
            // Changes to a document this node never had: it needs the whole document.
            None => return Ok(ApplyOutcome::NeedAll),
        }
    };
    if !may_hold(&audience, &ctx.facility, ctx.kind) {
        return Ok(ApplyOutcome::Refused(format!(
            "{} is not in the document's audience",
            ctx.facility
        )));
    }
    if !may_hold(&audience, &peer.facility, peer.kind) {
        return Ok(ApplyOutcome::Refused(format!(
            "the sender {} is not in the document's audience",
            peer.facility
        )));
    }
    let (now, changed) = if exists {
        match b.apply_remote(&doc, bytes) {
            Ok(Applied::Stored { heads, changed }) => (heads, changed),
            Ok(Applied::MissingDeps) => return Ok(ApplyOutcome::NeedAll),
            Ok(Applied::Forked { actor, seq }) => {
                match repair_fork(b, doc, meta.is_some(), bytes, &actor, seq)? {
                    Ok(heads) => (heads, true),
                    Err(outcome) => return Ok(outcome),
                }
            }
            Err(StoreError::InvalidDocument(reason)) => return Ok(ApplyOutcome::Refused(reason)),
            Err(e) => return Err(e),
        }
    } else {
        let Some(m) = meta else {
            return Ok(ApplyOutcome::NeedAll);
        };
        let loaded = match load_untrusted(bytes) {
            Ok(d) => d,
            Err(StoreError::InvalidDocument(reason)) => return Ok(ApplyOutcome::Refused(reason)),
            Err(e) => return Err(e),
        };
        if !loaded.get_missing_deps(&[]).is_empty() {
            return Ok(ApplyOutcome::NeedAll);
        }
        if loaded.get_heads().is_empty() {
            return Ok(ApplyOutcome::Refused("an empty document".into()));
        }
        let heads = loaded.get_heads();
        b.insert_received(doc, m.kind, m.audience, loaded, bytes.to_vec())?;
        (heads, true)
    };
    // This node now holds everything the sender had (no dependency is missing): remember that
    // the sender holds at least its stated heads, as far as this node can name them.
    let sender: Vec<ChangeHash> = b.read(&doc, |d| {
        to_hashes(heads)
            .into_iter()
            .filter(|h| d.get_change_meta_by_hash(h).is_some())
            .collect()
    })?;
    if !sender.is_empty() {
        b.set_peer_heads(&peer.node_id, &doc, &sender)?;
    }
    Ok(ApplyOutcome::Stored {
        heads: to_wire(&now),
        changed,
    })
}
