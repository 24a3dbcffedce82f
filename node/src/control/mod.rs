//! The control socket: how the `yilian` tool talks to a running node. A Unix domain socket in
//! the data directory (mode 0600); each message is one frame (see [`crate::framing`]) holding a
//! 2-byte big-endian protocol version followed by a postcard-encoded [`proto::Request`] or
//! [`proto::Response`]. One request, one response, in order, on a connection.

pub mod client;
pub mod proto;
pub mod server;

pub use client::{ClientError, ControlClient};
pub use proto::{ErrorKind, PROTOCOL_VERSION, Request, Response, StatusReport};
