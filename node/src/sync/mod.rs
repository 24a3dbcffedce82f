//! Sync between nodes.
//!
//! `proto` defines the frames. `session` is the protocol as a state machine without I/O: it is
//! fed frames, store results, change notifications and time, and returns frames to send and
//! store operations to run. `ops` runs those operations against the store and holds the
//! audience rules. `driver` is the thin tokio/quinn layer: one task per connection moves frames
//! between a QUIC stream and the session and runs store operations on the storage thread.
//! `sim` (tests only) connects sessions of several real stores in memory and drives them until
//! quiet, deterministically.

pub mod driver;
pub mod ops;
pub mod proto;
pub mod session;
#[cfg(test)]
mod sim;

pub use driver::{PeerSyncStatus, Refusal, RefusalDirection, SyncManager};
