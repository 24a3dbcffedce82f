//! # yilian-node
//!
//! The library behind a yilian node: an offline-first sync node for a county medical alliance
//! (县域医共体). Every facility runs one; it keeps working without a network and syncs
//! Automerge documents with its peers whenever a path exists.
//!
//! # Layout
//!
//! | module | owns |
//! | --- | --- |
//! | [`ids`] | document ids, node ids, facility codes |
//! | [`config`] | the node's TOML configuration |
//! | [`datadir`] | the data directory: which file is where, `init`, opening, locking |
//! | [`identity`] | the node key, node id and actor id |
//! | [`documents`] | document kinds, audiences, metadata, typed document schemas, fork repair |
//! | [`framing`] | length-prefixed frames with size and time limits |
//! | [`storage`] | the redb store: snapshots + increments, change sequence, cache, storage thread |
//! | [`transport`] | QUIC endpoint, mutual TLS peers, connection manager |
//! | [`sync`] | the sync protocol: frames, sans-IO session, store operations, driver |
//! | [`control`] | the control socket: protocol messages, framing, server, client |
//! | [`revocation`] | the revocation list in force: install (from the operator or a peer), enforce, spread |
//! | [`service`] | what each control request does, against the store |
//! | [`daemon`] | the node process: start-up, serving, clean shutdown |
//!
//! Wire and disk formats are described in `docs/architecture.md`.

pub mod config;
pub mod control;
pub mod daemon;
pub mod datadir;
pub mod documents;
pub mod framing;
pub mod identity;
pub mod ids;
pub mod reports;
pub mod revocation;
pub mod service;
pub mod storage;
pub mod sync;
pub mod transport;
mod trust;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Crates whose types appear in this crate's API, re-exported so callers use the same versions.
pub mod reexports {
    pub use automerge;
}
