//! Durable document storage on redb.
//!
//! The store owns the database file and the in-memory cache of loaded documents. Each document
//! is kept as a compacted Automerge snapshot plus appended incremental changes, so a small edit
//! is a small durable write; when the increments outgrow the snapshot they are folded into a new
//! snapshot in the same transaction. A local change sequence records which document changed in
//! what order, for sync.
//!
//! Only one thread touches the database: [`worker`] runs it and batches every queued operation
//! into one write transaction (group commit), committing durably before any caller hears back.
//! Async code talks to it through a [`StoreHandle`].
//!
//! Submodules: [`tables`] (every table and its layout, migrations), `store` (operations inside a
//! batch), `cache` (bounded LRU of loaded documents), [`worker`] (the storage thread).

mod cache;
mod error;
mod store;
pub mod tables;
pub mod worker;

pub use error::StoreError;
pub(crate) use store::panic_text;
pub use store::{
    Applied, Batch, ChangeEvent, Checkpoint, MAX_DOC_BYTES, MIN_COMPACT_BYTES, REDB_CACHE_BYTES,
    Runs, Store, StoreOptions, StoreStats, load_untrusted,
};
pub use tables::FacilityEntry;
pub use worker::StoreHandle;

#[cfg(test)]
mod tests;
