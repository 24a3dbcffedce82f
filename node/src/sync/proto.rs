//! Sync frames (protocol version [`VERSION`]), postcard-encoded, one per length-prefixed frame
//! on a QUIC stream (see [`crate::framing`]).

use serde::{Deserialize, Serialize};

use crate::documents::{Audience, DocKind};
use crate::ids::DocId;
use crate::storage::Checkpoint;

/// The sync protocol version.
pub const VERSION: u16 = 1;

/// Largest sync frame (a whole document plus a little).
pub const MAX_FRAME: usize = crate::storage::MAX_DOC_BYTES + 64 * 1024;

/// A change hash on the wire.
pub type Hash = [u8; 32];

/// What a receiver needs to store a document it has never seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocMeta {
    /// Its kind.
    pub kind: DocKind,
    /// Who may hold it.
    pub audience: Audience,
}

/// One sync frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Frame {
    /// First frame each way.
    Hello {
        /// Sync protocol version.
        version: u16,
        /// The sender's store id.
        store_id: [u8; 16],
        /// The last number of the sender's change sequence.
        last_seq: u64,
        /// How far into the receiver's change sequence the sender has everything.
        have_yours: Option<Checkpoint>,
        /// The number of the sender's alliance revocation list (0: none).
        crl_number: u64,
    },
    /// A newer alliance revocation list (the receiver checks the CA's signature).
    Crl {
        /// Its number, as claimed by the sender.
        number: u64,
        /// The list, PEM.
        pem: String,
    },
    /// Changes of a document the receiver lacks (or the whole document, with `meta`).
    Push {
        /// The document.
        doc: DocId,
        /// Present when the bytes are the whole document.
        meta: Option<DocMeta>,
        /// The sender's heads once these bytes are applied.
        heads: Vec<Hash>,
        /// Automerge bytes: `save()` or `save_after(..)`.
        bytes: Vec<u8>,
    },
    /// A push was applied and is durable; the receiver's heads now.
    Ack {
        /// The document.
        doc: DocId,
        /// The receiver's heads.
        heads: Vec<Hash>,
    },
    /// A push depended on changes the receiver lacks: send the whole document.
    NeedAll {
        /// The document.
        doc: DocId,
    },
    /// A push was refused and will not be stored (audience, invalid bytes).
    Refuse {
        /// The document.
        doc: DocId,
        /// Why.
        reason: String,
    },
    /// Every change of the sender's sequence up to `seq` is with the receiver (or not for it).
    Checkpoint {
        /// Sequence number.
        seq: u64,
    },
    /// Keeps an idle session's reads inside their timeout.
    Ping,
}

impl Frame {
    /// The frame's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Push { .. } => "Push",
            Frame::Ack { .. } => "Ack",
            Frame::NeedAll { .. } => "NeedAll",
            Frame::Refuse { .. } => "Refuse",
            Frame::Checkpoint { .. } => "Checkpoint",
            Frame::Ping => "Ping",
            Frame::Crl { .. } => "Crl",
        }
    }

    /// Encodes the frame's payload.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a payload; the error names what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<Frame, String> {
        postcard::from_bytes(bytes)
            .map_err(|e| format!("malformed sync frame ({} bytes): {e}", bytes.len()))
    }
}
