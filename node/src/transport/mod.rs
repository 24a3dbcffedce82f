//! Node-to-node transport: QUIC (quinn) with mutual TLS against the alliance CA.
//!
//! `endpoint` builds the tuned QUIC endpoint (windows and timers for 100-300 kbit/s links with
//! 200-600 ms RTT), `peer` reads and authorises a peer's identity from its certificate, and
//! `manager` owns every connection: it dials configured peers with jittered exponential backoff,
//! accepts incoming ones (with a bound on handshakes in progress), keeps one connection per pair
//! of nodes, and drops peers whose certificate is revoked. It only moves bytes and tracks state;
//! what flows over a connection is the sync layer's business.

pub mod endpoint;
pub mod manager;
pub mod peer;

pub use manager::{Network, NetworkError, PeerState, PeerStatus};
pub use peer::PeerIdentity;

/// QUIC application close codes.
pub mod close {
    /// The node is shutting down.
    pub const SHUTDOWN: u32 = 0;
    /// Another connection to the same peer was kept.
    pub const DUPLICATE: u32 = 1;
    /// The peer's certificate was revoked.
    pub const REVOKED: u32 = 2;
    /// The peer is not allowed to connect (wrong alliance, itself, removed).
    pub const UNAUTHORIZED: u32 = 3;
    /// The peer broke the sync protocol.
    pub const PROTOCOL: u32 = 4;
}
