//! Sync frames (protocol version [`VERSION`]), postcard-encoded, one per length-prefixed frame
//! (see [`crate::framing`]). Session frames (`Hello`, `Checkpoint`, `Crl`, `Ping`) travel in
//! order on the connection's one bidirectional stream; document frames (`Push`, `Ack`,
//! `NeedAll`, `Refuse`, `Forked`) each travel on a unidirectional stream of their own, so a lost
//! datagram holds back only the frames it carried ([`Frame::own_stream`]).

use serde::{Deserialize, Serialize};

use crate::documents::{Audience, DocKind};
use crate::ids::DocId;
use crate::storage::Checkpoint;

/// The sync protocol version (3: checkpoints name the sender's run, and `Forked`).
pub const VERSION: u16 = 3;

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
        /// The sender's run that `seq` belongs to (see [`crate::storage::Runs`]).
        run: [u8; 8],
    },
    /// Keeps an idle session's reads inside their timeout.
    Ping,
    /// A push was refused because it holds a change whose (actor, seq) the receiver already
    /// has with other content (a forked history, see [`crate::documents::fork`]). The
    /// receiver's whole document follows as a push, so that the node whose actor id it is can
    /// repair the fork.
    Forked {
        /// The document.
        doc: DocId,
        /// Why.
        reason: String,
    },
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
            Frame::Forked { .. } => "Forked",
        }
    }

    /// Whether the frame travels on a stream of its own. Document frames may arrive in any
    /// order relative to each other and to session frames; the session depends only on causal
    /// order (an `Ack` answers a `Push` already sent; a `Checkpoint` is sent only after the acks
    /// of everything it covers, and acks only after the receiver committed).
    pub fn own_stream(&self) -> bool {
        matches!(
            self,
            Frame::Push { .. }
                | Frame::Ack { .. }
                | Frame::NeedAll { .. }
                | Frame::Refuse { .. }
                | Frame::Forked { .. }
        )
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
