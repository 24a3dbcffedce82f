//! Every redb table of the node, with its key and value layout, and the numbered migrations
//! run when the database is opened. Table names carry a version suffix; a layout change adds a
//! new name and a migration instead of reinterpreting old bytes.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta_v1` | `&str` name | bytes: `schema_version` (u32 BE), `store_id` (16 random bytes, new for every store and every restore found by a peer), `incarnation` (8 random bytes: the actor id suffix of the last process that wrote; every opening takes a new one), `next_seq` (u64 BE) |
//! | `docs_v1` | doc id `[u8;16]` | postcard `DocRecord` |
//! | `snapshots_v1` | doc id | Automerge `save()` bytes |
//! | `increments_v1` | (doc id, increment number u32) | Automerge change bytes (`save_after`) appended since the snapshot |
//! | `changes_v1` | seq u64 | doc id: the local change sequence, one entry per document at its latest seq |
//! | `kind_counts_v1` | kind name `&str` | number of documents of that kind (u64) |
//! | `peer_heads_v1` | (peer node id, doc id) | heads (n x 32 bytes) this node knows the peer durably holds |
//! | `peer_checkpoints_v1` | peer node id | 16-byte peer store id + u64 BE seq + 8-byte run (the peer's run covering seq): every change of that peer store up to seq is here (receiver-held checkpoint) |
//! | `peer_stores_v1` | peer node id | the peer's store id when last seen (a change means the peer's store was reset) |
//! | `facilities_v1` | facility code `&str` | postcard [`FacilityEntry`]: a facility of the alliance this node has met (from its certificate) |
//! | `runs_v1` | first seq u64 | 8 bytes: the incarnation of the process whose first write found `next_seq` at this number (recorded in that write's transaction); it names the stretch of the change sequence from here to the next run, so that a peer's checkpoint can be checked against this copy's history |

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::documents::{Audience, DocKind};

/// Named values about the store itself.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_v1");
/// One record per document.
pub(crate) const DOCS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("docs_v1");
/// Compacted snapshots.
pub(crate) const SNAPSHOTS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("snapshots_v1");
/// Incremental changes appended after the snapshot.
pub(crate) const INCREMENTS: TableDefinition<([u8; 16], u32), &[u8]> =
    TableDefinition::new("increments_v1");
/// The local change sequence.
pub(crate) const CHANGES: TableDefinition<u64, [u8; 16]> = TableDefinition::new("changes_v1");
/// Document counts per kind.
pub(crate) const KIND_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("kind_counts_v1");
/// Heads a peer is known to hold, per document.
pub(crate) const PEER_HEADS: TableDefinition<([u8; 16], [u8; 16]), &[u8]> =
    TableDefinition::new("peer_heads_v1");
/// Receiver-held checkpoints: how far into each peer's change sequence this node has everything.
pub(crate) const PEER_CHECKPOINTS: TableDefinition<[u8; 16], &[u8]> =
    TableDefinition::new("peer_checkpoints_v1");
/// Each peer's store id when last seen.
pub(crate) const PEER_STORES: TableDefinition<[u8; 16], [u8; 16]> =
    TableDefinition::new("peer_stores_v1");

/// Facilities of the alliance this node has met.
pub(crate) const FACILITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("facilities_v1");

/// Runs of the change sequence: the first sequence number each opening of the store that wrote
/// could use, and that process's incarnation.
pub(crate) const RUNS: TableDefinition<u64, [u8; 8]> = TableDefinition::new("runs_v1");

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 4;

/// A facility of the alliance, as learned from an authenticated peer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacilityEntry {
    /// Facility code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: crate::config::FacilityKind,
    /// The node that serves it.
    pub node: crate::ids::NodeId,
    /// When it was last met (ms since the Unix epoch).
    pub seen_ms: u64,
}

/// What `docs_v1` holds for each document (postcard-encoded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocRecord {
    pub(crate) kind: DocKind,
    pub(crate) audience: Audience,
    pub(crate) heads: Vec<[u8; 32]>,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    pub(crate) seq: u64,
    pub(crate) snapshot_len: u64,
    pub(crate) increments_len: u64,
    /// Number of the next increment; increments `0..next_increment` may exist.
    pub(crate) next_increment: u32,
}

impl DocRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub(crate) fn decode(id: &[u8; 16], bytes: &[u8]) -> Result<DocRecord, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
            what: format!("record of document {}", crate::ids::DocId(*id)),
            reason: e.to_string(),
        })
    }
}

/// Creates missing tables and runs the migrations from the stored schema version up to
/// [`SCHEMA_VERSION`]. Refuses a database written by a newer yilian.
pub(crate) fn migrate(db: &redb::Database) -> Result<(), StoreError> {
    let found = {
        let rtx = db.begin_read()?;
        match rtx.open_table(META) {
            Ok(t) => t.get("schema_version")?.map(|v| be_u32(v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        }
    };
    match found {
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(v) if v >= 1 => {
            let wtx = db.begin_write()?;
            // Version 1 -> 2: the sync tables; 2 -> 3: the facility directory.
            if v < 3 {
                create_sync_tables(&wtx)?;
            }
            // 3 -> 4: runs of the change sequence, and checkpoints that name them.
            if v < 4 {
                migrate_3_to_4(&wtx)?;
            }
            wtx.open_table(META)?
                .insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
            wtx.commit()?;
            Ok(())
        }
        // Version 0 (nothing yet) -> current: create every table and the store's identity.
        _ => {
            let wtx = db.begin_write()?;
            {
                let mut meta = wtx.open_table(META)?;
                wtx.open_table(DOCS)?;
                wtx.open_table(SNAPSHOTS)?;
                wtx.open_table(INCREMENTS)?;
                wtx.open_table(CHANGES)?;
                wtx.open_table(KIND_COUNTS)?;
                create_sync_tables(&wtx)?;
                meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
                if meta.get("store_id")?.is_none() {
                    let id: [u8; 16] = crate::identity::random_bytes();
                    meta.insert("store_id", id.as_slice())?;
                    let inc: [u8; 8] = crate::identity::random_bytes();
                    meta.insert("incarnation", inc.as_slice())?;
                    meta.insert("next_seq", 1u64.to_be_bytes().as_slice())?;
                    wtx.open_table(RUNS)?.insert(1, inc)?;
                }
            }
            wtx.commit()?;
            Ok(())
        }
    }
}

fn create_sync_tables(wtx: &redb::WriteTransaction) -> Result<(), StoreError> {
    wtx.open_table(PEER_HEADS)?;
    wtx.open_table(PEER_CHECKPOINTS)?;
    wtx.open_table(PEER_STORES)?;
    wtx.open_table(FACILITIES)?;
    wtx.open_table(RUNS)?;
    Ok(())
}

/// Every change so far counts as one run, under the incarnation the store has now (before
/// version 4 a store's incarnation changed only together with its store id). Checkpoints held
/// for peers name no run of theirs and cannot be checked: they are dropped, so the first session
/// after the upgrade compares every document once (what peers are known to hold is kept, so
/// documents they have are not sent again).
fn migrate_3_to_4(wtx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let inc: [u8; 8] = wtx
        .open_table(META)?
        .get("incarnation")?
        .and_then(|v| v.value().try_into().ok())
        .ok_or_else(|| StoreError::Corrupt {
            what: "store incarnation".into(),
            reason: "missing or wrong length".into(),
        })?;
    wtx.open_table(RUNS)?.insert(1, inc)?;
    wtx.open_table(PEER_CHECKPOINTS)?.retain(|_, _| false)?;
    Ok(())
}

pub(crate) fn be_u32(b: &[u8]) -> u32 {
    b.try_into().map(u32::from_be_bytes).unwrap_or(0)
}

pub(crate) fn be_u64(b: &[u8]) -> u64 {
    b.try_into().map(u64::from_be_bytes).unwrap_or(0)
}
