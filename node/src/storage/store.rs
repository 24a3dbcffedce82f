//! The store and its operations. Every operation runs inside a [`Batch`] (one redb write
//! transaction shared by every operation the worker has queued); the batch commits durably
//! before any caller is answered. Operations validate everything before writing, so an
//! operation that fails leaves nothing behind in the batch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::cache::DocCache;
use super::error::StoreError;
use super::tables::{
    self, CHANGES, DOCS, DocRecord, FACILITIES, FacilityEntry, INCREMENTS, KIND_COUNTS, META,
    PEER_CHECKPOINTS, PEER_HEADS, PEER_STORES, RUNS, SNAPSHOTS,
};
use crate::documents::{self, Audience, DocInfo, DocKind};
use crate::identity::actor_id;
use crate::ids::{DocId, MIN_PREFIX, NodeId};

/// Increments are folded into a new snapshot once they exceed the snapshot's size, and never
/// below this many bytes (tiny documents would otherwise compact on every edit).
pub const MIN_COMPACT_BYTES: u64 = 2048;

/// redb's page cache.
pub const REDB_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Largest document accepted by import, in bytes.
pub const MAX_DOC_BYTES: usize = 8 * 1024 * 1024;

/// Store tuning.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How many loaded documents stay in memory.
    pub cache_docs: usize,
    /// Increments are compacted once they exceed the snapshot and this many bytes.
    pub compact_min_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_docs: 2048,
            compact_min_bytes: MIN_COMPACT_BYTES,
        }
    }
}

/// Counts and sizes for `yilian status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Documents per kind.
    pub docs_by_kind: BTreeMap<String, u64>,
    /// All documents.
    pub docs_total: u64,
    /// Size of the database file in bytes.
    pub file_bytes: u64,
    /// The last local change sequence number used.
    pub last_seq: u64,
    /// Documents loaded in memory now.
    pub cached_docs: u64,
    /// Cache hits and misses since start.
    pub cache_hits: u64,
    /// Cache misses since start.
    pub cache_misses: u64,
    /// This store's random identity (new for every store and every restore found by a
    /// peer), hex.
    pub store_id: String,
}

/// An open document store. Owned by one thread (see [`super::worker`]).
pub struct Store {
    path: PathBuf,
    db: Option<Database>,
    cache: DocCache,
    actor: ActorId,
    store_id: [u8; 16],
    needs_reopen: bool,
    compact_min_bytes: u64,
    node: NodeId,
    pending_identity: Option<([u8; 16], [u8; 8])>,
    /// The incarnation in `actor`.
    incarnation: [u8; 8],
    /// Whether `incarnation` is recorded in the store (with the first batch that writes).
    recorded: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("cached_docs", &self.cache.len())
            .finish_non_exhaustive()
    }
}

fn open_db(path: &Path, create: bool) -> Result<Database, StoreError> {
    if !create && !path.exists() {
        return Err(StoreError::NotFound(format!(
            "database {} (run `yilian init` first)",
            path.display()
        )));
    }
    if create && path.exists() {
        return Err(StoreError::Invalid(format!(
            "{} already exists: refusing to overwrite a store",
            path.display()
        )));
    }
    // redb may panic on some damaged files; a damaged file must be an error, never a crash.
    let mut builder = redb::Builder::new();
    // redb's default page cache is 1 GiB; documents are cached separately, so keep it small.
    builder.set_cache_size(REDB_CACHE_BYTES);
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.create(path)))
        .map_err(|p| StoreError::Corrupt {
            what: path.display().to_string(),
            reason: panic_text(&p),
        })?;
    let db = opened.map_err(|e| match StoreError::from(e) {
        StoreError::Database(msg) => StoreError::Corrupt {
            what: path.display().to_string(),
            reason: msg,
        },
        other => other,
    })?;
    tables::migrate(&db)?;
    Ok(db)
}

pub(crate) fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

impl Store {
    /// Creates a new store file; fails if one exists.
    pub fn create(path: &Path, node: NodeId, opts: StoreOptions) -> Result<Store, StoreError> {
        let db = open_db(path, true)?;
        Store::from_db(path, db, node, opts)
    }

    /// Opens an existing store file.
    pub fn open(path: &Path, node: NodeId, opts: StoreOptions) -> Result<Store, StoreError> {
        let db = open_db(path, false)?;
        Store::from_db(path, db, node, opts)
    }

    /// Takes the store for this process: every opening gets a fresh incarnation (the actor id
    /// suffix). It is recorded in `runs_v1`, with the point of the change sequence where this
    /// process starts writing, in the same transaction as the first write made with it (so an
    /// opening that only reads writes nothing, even on a full disk). No two processes ever
    /// write with the same actor id, even when one of them works on a copy restored from a
    /// backup: none can reuse a sequence number (Automerge's or the store's) that another
    /// process has used under the same name.
    fn from_db(
        path: &Path,
        db: Database,
        node: NodeId,
        opts: StoreOptions,
    ) -> Result<Store, StoreError> {
        let store_id = {
            let rtx = redb::ReadableDatabase::begin_read(&db)?;
            let meta = rtx.open_table(META)?;
            meta.get("store_id")?
                .map(|v| v.value().to_vec())
                .unwrap_or_default()
        };
        let store_id: [u8; 16] = store_id.try_into().map_err(|_| StoreError::Corrupt {
            what: "store id".into(),
            reason: "missing or wrong length".into(),
        })?;
        let incarnation: [u8; 8] = crate::identity::random_bytes();
        Ok(Store {
            path: path.to_path_buf(),
            db: Some(db),
            cache: DocCache::new(opts.cache_docs),
            actor: actor_id(node, incarnation),
            store_id,
            needs_reopen: false,
            compact_min_bytes: opts.compact_min_bytes,
            node,
            pending_identity: None,
            incarnation,
            recorded: false,
        })
    }

    /// The actor id local edits are written with.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// This store's random identity.
    pub fn store_id(&self) -> [u8; 16] {
        self.store_id
    }

    /// Starts a batch: one write transaction for every operation until [`Batch::commit`].
    /// Reopens the database first if an earlier write failed on the disk.
    pub fn batch(&mut self) -> Result<Batch<'_>, StoreError> {
        if let Some((store_id, incarnation)) = self.pending_identity.take() {
            self.store_id = store_id;
            self.actor = actor_id(self.node, incarnation);
            self.incarnation = incarnation;
            self.recorded = false;
            // Loaded documents carry the old actor id.
            self.cache = DocCache::new(self.cache.capacity());
        }
        if self.needs_reopen || self.db.is_none() {
            self.db = None; // release the file before opening it again
            let db = open_db(&self.path, false)?;
            tracing::info!(path = %self.path.display(), "database reopened after an I/O failure");
            self.db = Some(db);
            self.needs_reopen = false;
        }
        let db = self.db.as_ref().ok_or(StoreError::Closed)?;
        let txn = db.begin_write()?;
        let run_start = if self.recorded {
            None
        } else {
            let next = txn
                .open_table(META)?
                .get("next_seq")?
                .map(|v| tables::be_u64(v.value()))
                .unwrap_or(1);
            Some(next)
        };
        Ok(Batch {
            txn,
            cache: &mut self.cache,
            incarnation: self.incarnation,
            run_start,
            recorded: &mut self.recorded,
            actor: &self.actor,
            store_id: self.store_id,
            path: &self.path,
            needs_reopen: &mut self.needs_reopen,
            pending_identity: &mut self.pending_identity,
            compact_min_bytes: self.compact_min_bytes,
            dirty: false,
            touched: Vec::new(),
            changed: Vec::new(),
        })
    }
}

/// The operations of one group commit. Dropping a batch without [`Batch::commit`] rolls it
/// back.
pub struct Batch<'s> {
    txn: WriteTransaction,
    cache: &'s mut DocCache,
    incarnation: [u8; 8],
    /// Where this process's run starts, while its incarnation is not recorded yet.
    run_start: Option<u64>,
    recorded: &'s mut bool,
    actor: &'s ActorId,
    store_id: [u8; 16],
    path: &'s Path,
    needs_reopen: &'s mut bool,
    pending_identity: &'s mut Option<([u8; 16], [u8; 8])>,
    compact_min_bytes: u64,
    dirty: bool,
    touched: Vec<DocId>,
    changed: Vec<ChangeEvent>,
}

/// A document that changed in a committed batch, at its new place in the change sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Its new sequence number.
    pub seq: u64,
    /// The document.
    pub doc: DocId,
}

/// A peer's position in its own change sequence that this node holds everything up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The peer store the sequence numbers belong to.
    pub store_id: [u8; 16],
    /// Everything up to and including this sequence number is here.
    pub seq: u64,
    /// The peer's run (see [`Batch::runs`]) that `seq` belongs to: a copy of the peer's store
    /// restored from a backup has other runs after the backup, so a checkpoint taken from the
    /// lost history does not match it even where the numbers do.
    pub run: [u8; 8],
}

/// A change sequence's runs, as [`Batch::runs`] returns them: (first seq, incarnation), in
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs(pub Vec<(u64, [u8; 8])>);

impl Runs {
    /// The run a sequence number belongs to (the last one starting at or before it).
    pub fn at(&self, seq: u64) -> Option<[u8; 8]> {
        let i = self.0.partition_point(|(start, _)| *start <= seq);
        i.checked_sub(1).map(|i| self.0[i].1)
    }
}

/// What happened to bytes from a peer applied to a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied and stored (or nothing new); the document's heads now.
    Stored {
        /// Heads after applying.
        heads: Vec<ChangeHash>,
        /// Whether anything new was stored.
        changed: bool,
    },
    /// The bytes depend on changes this node lacks; nothing was stored.
    MissingDeps,
    /// The bytes hold a change whose (actor, seq) this document already has with other
    /// content: the two histories forked (see [`crate::documents::fork`]); nothing was stored.
    Forked {
        /// The actor whose changes differ.
        actor: ActorId,
        /// The sequence number found twice.
        seq: u64,
    },
}

/// Records this process's incarnation, and the run of the change sequence it starts, in the
/// transaction of its first write.
fn record_run(
    txn: &WriteTransaction,
    run_start: Option<u64>,
    incarnation: [u8; 8],
) -> Result<(), StoreError> {
    if let Some(start) = run_start {
        txn.open_table(META)?
            .insert("incarnation", incarnation.as_slice())?;
        txn.open_table(RUNS)?.insert(start, incarnation)?;
    }
    Ok(())
}

impl Batch<'_> {
    /// Commits durably (or does nothing if the batch wrote nothing). On failure every document
    /// touched by the batch is dropped from the cache so memory never runs ahead of the disk.
    pub fn commit(self) -> Result<Vec<ChangeEvent>, StoreError> {
        let Batch {
            txn,
            cache,
            needs_reopen,
            dirty,
            touched,
            changed,
            incarnation,
            run_start,
            recorded,
            ..
        } = self;
        let result = if dirty {
            record_run(&txn, run_start, incarnation)
                .and_then(|()| txn.commit().map_err(StoreError::from))
        } else {
            txn.abort().map_err(StoreError::from)
        };
        if result.is_ok() && dirty {
            *recorded = true;
        }
        if let Err(e) = &result {
            for id in &touched {
                cache.evict(id);
            }
            if e.is_io() {
                *needs_reopen = true;
            }
        }
        result.map(|()| changed)
    }

    /// Rolls the batch back, dropping touched documents from the cache.
    pub fn rollback(self) {
        for id in &self.touched {
            self.cache.evict(id);
        }
        let _ = self.txn.abort();
    }

    /// The actor id local edits are written with.
    pub fn actor(&self) -> &ActorId {
        self.actor
    }

    /// This store's random identity.
    pub fn store_id(&self) -> [u8; 16] {
        self.store_id
    }

    fn record(&self, id: &DocId) -> Result<Option<DocRecord>, StoreError> {
        let docs = self.txn.open_table(DOCS)?;
        let rec = docs.get(id.0)?;
        rec.map(|v| DocRecord::decode(&id.0, v.value())).transpose()
    }

    fn require(&self, id: &DocId) -> Result<DocRecord, StoreError> {
        self.record(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Whether a document exists.
    pub fn exists(&self, id: &DocId) -> Result<bool, StoreError> {
        Ok(self.record(id)?.is_some())
    }

    /// The metadata of a document.
    pub fn info(&self, id: &DocId) -> Result<DocInfo, StoreError> {
        Ok(info_of(*id, &self.require(id)?))
    }

    /// Turns a whole id or a unique prefix (at least [`MIN_PREFIX`] hex characters) into an id.
    pub fn resolve(&self, text: &str) -> Result<DocId, StoreError> {
        let t = text.trim().to_ascii_lowercase();
        if let Ok(id) = t.parse::<DocId>() {
            return if self.exists(&id)? {
                Ok(id)
            } else {
                Err(StoreError::NotFound(t))
            };
        }
        if t.len() < MIN_PREFIX || t.len() > 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Invalid(format!(
                "{text:?} is not a document id: give the 32-character id or at least {MIN_PREFIX} of its first characters"
            )));
        }
        let mut low = [0u8; 16];
        let mut high = [0xffu8; 16];
        for (i, c) in t.bytes().enumerate() {
            let nibble = (c as char).to_digit(16).unwrap_or(0) as u8;
            let shift = if i % 2 == 0 { 4 } else { 0 };
            low[i / 2] = (low[i / 2] & !(0xf << shift)) | (nibble << shift);
            high[i / 2] = (high[i / 2] & !(0xf << shift)) | (nibble << shift);
        }
        let docs = self.txn.open_table(DOCS)?;
        let mut found = docs.range(low..=high)?.take(2);
        let first = match found.next() {
            Some(r) => DocId(r?.0.value()),
            None => return Err(StoreError::NotFound(t)),
        };
        match found.next() {
            Some(r) => Err(StoreError::Ambiguous {
                prefix: t,
                first,
                second: DocId(r?.0.value()),
            }),
            None => Ok(first),
        }
    }

    /// Stores a new document under a fresh id.
    pub fn create(
        &mut self,
        kind: DocKind,
        audience: Audience,
        doc: Automerge,
    ) -> Result<DocInfo, StoreError> {
        let id = DocId::random();
        self.insert_new(id, kind, audience, doc)
    }

    /// Stores a document under a given id (a document first received from a peer, or one
    /// restored); fails if the id exists.
    pub fn insert_new(
        &mut self,
        id: DocId,
        kind: DocKind,
        audience: Audience,
        doc: Automerge,
    ) -> Result<DocInfo, StoreError> {
        let snapshot = doc.save();
        self.insert_loaded(id, kind, audience, doc, snapshot)
    }

    /// Stores a document first received from a peer, keeping the bytes it was loaded from as
    /// its snapshot instead of encoding it again. `doc` must be what `bytes` loads to (see
    /// [`load_untrusted`]); fails if the id exists.
    pub fn insert_received(
        &mut self,
        id: DocId,
        kind: DocKind,
        audience: Audience,
        doc: Automerge,
        bytes: Vec<u8>,
    ) -> Result<DocInfo, StoreError> {
        self.insert_loaded(id, kind, audience, doc, bytes)
    }

    fn insert_loaded(
        &mut self,
        id: DocId,
        kind: DocKind,
        audience: Audience,
        doc: Automerge,
        snapshot: Vec<u8>,
    ) -> Result<DocInfo, StoreError> {
        if self.exists(&id)? {
            return Err(StoreError::Invalid(format!("document {id} already exists")));
        }
        let now = documents::now_ms();
        let mut rec = DocRecord {
            kind,
            audience,
            heads: documents::heads_of(&doc),
            created_ms: now,
            updated_ms: now,
            seq: 0,
            snapshot_len: snapshot.len() as u64,
            increments_len: 0,
            next_increment: 0,
        };
        self.dirty = true;
        self.touched.push(id);
        self.txn
            .open_table(SNAPSHOTS)?
            .insert(id.0, snapshot.as_slice())?;
        self.bump_seq(id, &mut rec)?;
        self.txn
            .open_table(DOCS)?
            .insert(id.0, rec.encode().as_slice())?;
        {
            let mut counts = self.txn.open_table(KIND_COUNTS)?;
            let n = counts.get(kind.as_str())?.map(|v| v.value()).unwrap_or(0);
            counts.insert(kind.as_str(), n + 1)?;
        }
        let info = info_of(id, &rec);
        let mut cached = doc;
        cached.set_actor(self.actor.clone());
        self.cache.replace(id, cached);
        Ok(info)
    }

    /// Stores a document read from raw Automerge bytes (an export of this or any Automerge
    /// implementation) under a fresh id. The content and heads are kept exactly.
    pub fn import(
        &mut self,
        bytes: &[u8],
        kind: DocKind,
        audience: Audience,
    ) -> Result<DocInfo, StoreError> {
        if bytes.len() > MAX_DOC_BYTES {
            return Err(StoreError::InvalidDocument(format!(
                "{} bytes is more than the {} bytes a document may have",
                bytes.len(),
                MAX_DOC_BYTES
            )));
        }
        if bytes.is_empty() {
            return Err(StoreError::InvalidDocument("the file is empty".into()));
        }
        let doc = load_untrusted(bytes)?;
        if doc.get_heads().is_empty() {
            return Err(StoreError::InvalidDocument(
                "the file holds no changes (an empty document)".into(),
            ));
        }
        self.create(kind, audience, doc)
    }

    /// Loads a document (from the cache or the disk).
    fn load(&mut self, id: &DocId) -> Result<&mut Automerge, StoreError> {
        if self.cache.contains(id) {
            return self.cache.get_mut(id).ok_or(StoreError::Closed);
        }
        let rec = self.require(id)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            what: format!("document {id}"),
            reason,
        };
        let snapshot = self
            .txn
            .open_table(SNAPSHOTS)?
            .get(id.0)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| corrupt("snapshot missing".into()))?;
        let mut doc = Automerge::load(&snapshot).map_err(|e| corrupt(e.to_string()))?;
        {
            let incs = self.txn.open_table(INCREMENTS)?;
            for r in incs.range((id.0, 0)..(id.0, rec.next_increment))? {
                let (_, v) = r?;
                doc.load_incremental(v.value())
                    .map_err(|e| corrupt(e.to_string()))?;
            }
        }
        doc.set_actor(self.actor.clone());
        Ok(self.cache.insert(*id, doc))
    }

    /// Reads a document.
    pub fn read<R>(
        &mut self,
        id: &DocId,
        f: impl FnOnce(&Automerge) -> R,
    ) -> Result<R, StoreError> {
        let doc = self.load(id)?;
        Ok(f(doc))
    }

    /// Changes a document and stores only what changed. `f` must leave the document unchanged
    /// when it fails (Automerge transactions roll back on error); if it does not, the cached
    /// copy is dropped and reloaded from disk next time.
    pub fn edit<R>(
        &mut self,
        id: &DocId,
        f: impl FnOnce(&mut Automerge) -> Result<R, StoreError>,
    ) -> Result<(R, DocInfo), StoreError> {
        let before: Vec<ChangeHash> = self.load(id)?.get_heads();
        let doc = self.load(id)?;
        let out = f(doc);
        let after = doc.get_heads();
        match out {
            Err(e) => {
                if after != before {
                    self.cache.evict(id);
                }
                Err(e)
            }
            Ok(r) if after == before => Ok((r, self.info(id)?)),
            Ok(r) => {
                let info = self.persist_change(id, &before)?;
                Ok((r, info))
            }
        }
    }

    /// Writes the changes a cached document gained since `before` as an increment (or a new
    /// snapshot when increments outgrow the snapshot), and moves it to the end of the change
    /// sequence.
    fn persist_change(&mut self, id: &DocId, before: &[ChangeHash]) -> Result<DocInfo, StoreError> {
        let mut rec = self.require(id)?;
        let compact_min = self.compact_min_bytes;
        let doc = self.load(id)?;
        let increment = doc.save_after(before);
        let heads = documents::heads_of(doc);
        let compact =
            rec.increments_len + increment.len() as u64 > rec.snapshot_len.max(compact_min);
        let snapshot = compact.then(|| doc.save());
        self.dirty = true;
        self.touched.push(*id);
        if let Some(snapshot) = snapshot {
            let mut incs = self.txn.open_table(INCREMENTS)?;
            for n in 0..rec.next_increment {
                incs.remove((id.0, n))?;
            }
            self.txn
                .open_table(SNAPSHOTS)?
                .insert(id.0, snapshot.as_slice())?;
            rec.snapshot_len = snapshot.len() as u64;
            rec.increments_len = 0;
            rec.next_increment = 0;
        } else {
            self.txn
                .open_table(INCREMENTS)?
                .insert((id.0, rec.next_increment), increment.as_slice())?;
            rec.increments_len += increment.len() as u64;
            rec.next_increment += 1;
        }
        rec.heads = heads;
        rec.updated_ms = documents::now_ms();
        self.bump_seq(*id, &mut rec)?;
        self.txn
            .open_table(DOCS)?
            .insert(id.0, rec.encode().as_slice())?;
        Ok(info_of(*id, &rec))
    }

    fn bump_seq(&mut self, id: DocId, rec: &mut DocRecord) -> Result<(), StoreError> {
        let mut meta = self.txn.open_table(META)?;
        let seq = meta
            .get("next_seq")?
            .map(|v| tables::be_u64(v.value()))
            .unwrap_or(1);
        meta.insert("next_seq", (seq + 1).to_be_bytes().as_slice())?;
        let mut changes = self.txn.open_table(CHANGES)?;
        if rec.seq != 0 {
            changes.remove(rec.seq)?;
        }
        changes.insert(seq, id.0)?;
        rec.seq = seq;
        self.changed.push(ChangeEvent { seq, doc: id });
        Ok(())
    }

    /// Gives the store a new store id and a new actor id (from the next batch on): for a store
    /// found to be restored from an older backup, so that peers treat its change sequence as
    /// new (they send it everything again and forget what they knew it held).
    pub fn reincarnate(&mut self) -> Result<(), StoreError> {
        let store_id: [u8; 16] = crate::identity::random_bytes();
        let incarnation: [u8; 8] = crate::identity::random_bytes();
        // The new incarnation's run is recorded with its first write.
        self.txn
            .open_table(META)?
            .insert("store_id", store_id.as_slice())?;
        self.dirty = true;
        *self.pending_identity = Some((store_id, incarnation));
        Ok(())
    }

    /// The runs of this store's change sequence: where each opening of the store that wrote
    /// started, with its incarnation, in order; and this process's own run, which starts at the
    /// next sequence number if it has not written yet.
    pub fn runs(&self) -> Result<Runs, StoreError> {
        let t = self.txn.open_table(RUNS)?;
        let mut out = Vec::new();
        for r in t.iter()? {
            let (k, v) = r?;
            if self.run_start.is_none_or(|start| k.value() < start) {
                out.push((k.value(), v.value()));
            }
        }
        if let Some(start) = self.run_start {
            out.push((start, self.incarnation));
        }
        Ok(Runs(out))
    }

    /// Replaces a document's content with `doc`, which must hold everything the stored one
    /// holds (a repaired fork: [`crate::documents::fork`]). It is stored as a new snapshot and
    /// moves to the end of the change sequence, so peers are offered what is new.
    pub fn replace(&mut self, id: &DocId, doc: Automerge) -> Result<DocInfo, StoreError> {
        let mut rec = self.require(id)?;
        let snapshot = doc.save();
        self.dirty = true;
        self.touched.push(*id);
        {
            let mut incs = self.txn.open_table(INCREMENTS)?;
            for n in 0..rec.next_increment {
                incs.remove((id.0, n))?;
            }
        }
        self.txn
            .open_table(SNAPSHOTS)?
            .insert(id.0, snapshot.as_slice())?;
        rec.snapshot_len = snapshot.len() as u64;
        rec.increments_len = 0;
        rec.next_increment = 0;
        rec.heads = documents::heads_of(&doc);
        rec.updated_ms = documents::now_ms();
        self.bump_seq(*id, &mut rec)?;
        self.txn
            .open_table(DOCS)?
            .insert(id.0, rec.encode().as_slice())?;
        let mut cached = doc;
        cached.set_actor(self.actor.clone());
        self.cache.replace(*id, cached);
        Ok(info_of(*id, &rec))
    }

    /// Records a facility met through an authenticated peer.
    pub fn note_facility(&mut self, entry: &FacilityEntry) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(entry).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.dirty = true;
        self.txn
            .open_table(FACILITIES)?
            .insert(entry.code.as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// The facilities this node has met, by code.
    pub fn facilities(&self) -> Result<Vec<FacilityEntry>, StoreError> {
        let t = self.txn.open_table(FACILITIES)?;
        let mut out = Vec::new();
        for r in t.iter()? {
            let (k, v) = r?;
            out.push(
                postcard::from_bytes(v.value()).map_err(|e| StoreError::Corrupt {
                    what: format!("facility {}", k.value()),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    /// The last sequence number used in the local change sequence.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .txn
            .open_table(META)?
            .get("next_seq")?
            .map(|v| tables::be_u64(v.value()))
            .unwrap_or(1)
            .saturating_sub(1))
    }

    /// Heads `peer` is known to hold for `doc` (only those this node also has).
    pub fn peer_heads(
        &mut self,
        peer: &NodeId,
        doc: &DocId,
    ) -> Result<Vec<ChangeHash>, StoreError> {
        let raw = self
            .txn
            .open_table(PEER_HEADS)?
            .get((peer.0, doc.0))?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
        Ok(raw
            .chunks_exact(32)
            .filter_map(|c| ChangeHash::try_from(c).ok())
            .collect())
    }

    /// Records the heads `peer` is known to hold for `doc`.
    pub fn set_peer_heads(
        &mut self,
        peer: &NodeId,
        doc: &DocId,
        heads: &[ChangeHash],
    ) -> Result<(), StoreError> {
        let mut raw = Vec::with_capacity(heads.len() * 32);
        for h in heads {
            raw.extend_from_slice(&h.0);
        }
        self.dirty = true;
        self.txn
            .open_table(PEER_HEADS)?
            .insert((peer.0, doc.0), raw.as_slice())?;
        Ok(())
    }

    /// Forgets everything known about what `peer` holds (its store was reset).
    pub fn forget_peer(&mut self, peer: &NodeId) -> Result<(), StoreError> {
        self.dirty = true;
        let mut t = self.txn.open_table(PEER_HEADS)?;
        let keys: Vec<([u8; 16], [u8; 16])> = t
            .range((peer.0, [0u8; 16])..=(peer.0, [0xffu8; 16]))?
            .map(|r| r.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for k in keys {
            t.remove(k)?;
        }
        self.txn.open_table(PEER_CHECKPOINTS)?.remove(peer.0)?;
        Ok(())
    }

    /// The receiver-held checkpoint for `peer`'s change sequence.
    pub fn peer_checkpoint(&self, peer: &NodeId) -> Result<Option<Checkpoint>, StoreError> {
        let t = self.txn.open_table(PEER_CHECKPOINTS)?;
        let v = t.get(peer.0)?;
        Ok(v.and_then(|v| {
            let b = v.value();
            if b.len() != 32 {
                return None;
            }
            let store_id: [u8; 16] = b.get(..16)?.try_into().ok()?;
            let seq = tables::be_u64(b.get(16..24)?);
            let run: [u8; 8] = b.get(24..32)?.try_into().ok()?;
            Some(Checkpoint { store_id, seq, run })
        }))
    }

    /// Records the receiver-held checkpoint for `peer`. Call only once the data it describes
    /// is in this batch or an earlier one.
    pub fn set_peer_checkpoint(&mut self, peer: &NodeId, cp: Checkpoint) -> Result<(), StoreError> {
        let mut raw = cp.store_id.to_vec();
        raw.extend_from_slice(&cp.seq.to_be_bytes());
        raw.extend_from_slice(&cp.run);
        self.dirty = true;
        self.txn
            .open_table(PEER_CHECKPOINTS)?
            .insert(peer.0, raw.as_slice())?;
        Ok(())
    }

    /// The store id `peer` had when last seen.
    pub fn peer_store(&self, peer: &NodeId) -> Result<Option<[u8; 16]>, StoreError> {
        Ok(self
            .txn
            .open_table(PEER_STORES)?
            .get(peer.0)?
            .map(|v| v.value()))
    }

    /// Records the store id `peer` has now.
    pub fn set_peer_store(&mut self, peer: &NodeId, store: [u8; 16]) -> Result<(), StoreError> {
        self.dirty = true;
        self.txn.open_table(PEER_STORES)?.insert(peer.0, store)?;
        Ok(())
    }

    /// The changes of `doc` after `heads` (heads this node lacks are ignored), or the whole
    /// document when none of `heads` is known here; with the document's current heads and
    /// whether the bytes are the whole document.
    pub fn changes_after(
        &mut self,
        doc: &DocId,
        heads: &[ChangeHash],
    ) -> Result<(Vec<u8>, Vec<ChangeHash>, bool), StoreError> {
        // The whole of a document stored as one snapshot is that snapshot: send it as stored
        // rather than loading and encoding it again (first sync sends thousands of these).
        if heads.is_empty() && !self.cache.contains(doc) {
            let rec = self.require(doc)?;
            if rec.next_increment == 0
                && let Some(v) = self.txn.open_table(SNAPSHOTS)?.get(doc.0)?
            {
                let heads = rec.heads.iter().map(|h| ChangeHash(*h)).collect();
                return Ok((v.value().to_vec(), heads, true));
            }
        }
        self.read(doc, |d| {
            let now = d.get_heads();
            let known: Vec<ChangeHash> = heads
                .iter()
                .filter(|h| d.get_change_meta_by_hash(h).is_some())
                .copied()
                .collect();
            if known.is_empty() {
                (d.save(), now, true)
            } else {
                (d.save_after(&known), now, false)
            }
        })
    }

    /// Applies bytes from a peer (changes or a whole document) to an existing document and
    /// stores what is new. Bytes that Automerge rejects, or that panic inside it, leave the
    /// stored document untouched. Bytes that depend on changes this node lacks store nothing.
    pub fn apply_remote(&mut self, doc: &DocId, bytes: &[u8]) -> Result<Applied, StoreError> {
        let before = self.load(doc)?.get_heads();
        let d = self.load(doc)?;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            d.load_incremental(bytes).map(|_| d.get_missing_deps(&[]))
        }));
        let missing = match outcome {
            Ok(Ok(missing)) => missing,
            Ok(Err(automerge::AutomergeError::DuplicateSeqNumber(seq, actor))) => {
                self.cache.evict(doc);
                return Ok(Applied::Forked { actor, seq });
            }
            Ok(Err(e)) => {
                self.cache.evict(doc);
                return Err(StoreError::InvalidDocument(format!(
                    "changes rejected: {e}"
                )));
            }
            Err(p) => {
                self.cache.evict(doc);
                return Err(StoreError::InvalidDocument(format!(
                    "changes rejected: {}",
                    panic_text(&p)
                )));
            }
        };
        if !missing.is_empty() {
            // Queued changes live only in memory; drop them with the cached copy.
            self.cache.evict(doc);
            return Ok(Applied::MissingDeps);
        }
        let heads = d.get_heads();
        if heads == before {
            return Ok(Applied::Stored {
                heads,
                changed: false,
            });
        }
        self.persist_change(doc, &before)?;
        Ok(Applied::Stored {
            heads,
            changed: true,
        })
    }

    /// Documents, optionally of one kind, in id order.
    pub fn list(&self, kind: Option<DocKind>) -> Result<Vec<DocInfo>, StoreError> {
        let docs = self.txn.open_table(DOCS)?;
        let mut out = Vec::new();
        for r in docs.iter()? {
            let (k, v) = r?;
            let rec = DocRecord::decode(&k.value(), v.value())?;
            if kind.is_none_or(|k| k == rec.kind) {
                out.push(info_of(DocId(k.value()), &rec));
            }
        }
        Ok(out)
    }

    /// Documents that changed after local sequence number `after`, oldest first, at most
    /// `limit` of them, each with its sequence number.
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, DocId)>, StoreError> {
        let changes = self.txn.open_table(CHANGES)?;
        let mut out = Vec::new();
        for r in changes.range(after.saturating_add(1)..)?.take(limit) {
            let (k, v) = r?;
            out.push((k.value(), DocId(v.value())));
        }
        Ok(out)
    }

    /// The document's whole Automerge bytes (a compacted `save()`).
    pub fn export(&mut self, id: &DocId) -> Result<Vec<u8>, StoreError> {
        self.read(id, |d| d.save())
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let counts = self.txn.open_table(KIND_COUNTS)?;
        let mut docs_by_kind = BTreeMap::new();
        for r in counts.iter()? {
            let (k, v) = r?;
            docs_by_kind.insert(k.value().to_string(), v.value());
        }
        let docs_total = self.txn.open_table(DOCS)?.len()?;
        let last_seq = self
            .txn
            .open_table(META)?
            .get("next_seq")?
            .map(|v| tables::be_u64(v.value()))
            .unwrap_or(1)
            - 1;
        let (cache_hits, cache_misses) = self.cache.hits_misses();
        Ok(StoreStats {
            docs_by_kind,
            docs_total,
            file_bytes: std::fs::metadata(self.path).map(|m| m.len()).unwrap_or(0),
            last_seq,
            cached_docs: self.cache.len() as u64,
            cache_hits,
            cache_misses,
            store_id: self.store_id.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

/// Loads bytes from outside (a file or a peer), turning any failure, even a panic inside
/// Automerge, into an error.
pub fn load_untrusted(bytes: &[u8]) -> Result<Automerge, StoreError> {
    match std::panic::catch_unwind(|| Automerge::load(bytes)) {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => Err(StoreError::InvalidDocument(format!(
            "not a valid Automerge document: {e}"
        ))),
        Err(p) => Err(StoreError::InvalidDocument(format!(
            "not a valid Automerge document: {}",
            panic_text(&p)
        ))),
    }
}

fn info_of(id: DocId, rec: &DocRecord) -> DocInfo {
    DocInfo {
        id,
        kind: rec.kind,
        audience: rec.audience.clone(),
        heads: rec.heads.clone(),
        created_ms: rec.created_ms,
        updated_ms: rec.updated_ms,
        seq: rec.seq,
        stored_bytes: rec.snapshot_len + rec.increments_len,
    }
}
