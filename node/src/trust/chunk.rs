//! Automerge chunks as they arrive from a peer: splitting a concatenation of chunks without
//! parsing it, and parsing one untrusted change chunk with every check Automerge does not make.
//!
//! A chunk is `magic (4) | checksum (4) | type (1) | LEB128 length | data`; the change hash is
//! SHA-256 over (type, length, data), so it does not cover the checksum and does not depend on
//! compression. [`parse_change`] accepts only what Automerge's own encoder writes for a change
//! made by a transaction: one uncompressed change chunk (compressed chunks inflate without
//! limit), whose checksum is the first 4 bytes of its hash (`Change::try_from` ignores it), with
//! no author footer, in canonical encoding (decode + encode gives the same hash: no unsorted
//! dependencies, unknown columns or odd column runs), within the caps below.

use automerge::Change;

use super::guard;

/// The four bytes every Automerge chunk starts with.
pub(crate) const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of a whole document (`save()`).
pub(crate) const CHUNK_DOCUMENT: u8 = 0;
/// Chunk type of one change.
pub(crate) const CHUNK_CHANGE: u8 = 1;
/// Chunk type of one deflated change (never accepted).
pub(crate) const CHUNK_COMPRESSED: u8 = 2;

/// Longest change chunk accepted: the largest document a node stores (8 MiB), so no honest
/// change is ever longer.
pub(crate) const MAX_CHANGE_BYTES: usize = 8 * 1024 * 1024;
/// Length of an actor id: node id (16) + incarnation (8).
pub(crate) const ACTOR_LEN: usize = 24;
/// Most dependencies of one change.
pub(crate) const MAX_DEPS: usize = 64;
/// Longest change message, bytes.
pub(crate) const MAX_MESSAGE: usize = 1024;
/// Most operations in one change.
pub(crate) const MAX_OPS: usize = 10_000;
/// Most actors other than its author that one change may refer to.
pub(crate) const MAX_OTHER_ACTORS: usize = 16;

/// What was wrong with a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ChunkError {
    /// The bytes do not start with the Automerge magic number.
    #[error("not an Automerge chunk (bad magic number at byte {at})")]
    BadMagic {
        /// Offset of the chunk in the input.
        at: usize,
    },
    /// The chunk's length field is unreadable.
    #[error("the chunk length at byte {at} is unreadable")]
    BadLength {
        /// Offset of the chunk in the input.
        at: usize,
    },
    /// The chunk claims more bytes than there are.
    #[error("the chunk at byte {at} is cut short: it needs {needed} bytes, {have} are left")]
    Truncated {
        /// Offset of the chunk in the input.
        at: usize,
        /// Bytes the chunk claims.
        needed: u64,
        /// Bytes left in the input.
        have: usize,
    },
    /// Longer than any honest change.
    #[error("the change is {len} bytes, more than the {max} a change may have")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not an uncompressed change chunk.
    #[error("a chunk of type {got} ({}) where one uncompressed change was expected", chunk_name(*got))]
    WrongType {
        /// The chunk type found.
        got: u8,
    },
    /// Automerge could not parse it.
    #[error("not a readable change: {0}")]
    Unparsable(String),
    /// The header checksum is not the start of the change hash.
    #[error("the chunk checksum does not match its content (corrupted in transit or forged)")]
    ChecksumMismatch,
    /// An author footer or other trailing bytes (yilian never writes them; Automerge panics on
    /// some).
    #[error("the change carries {len} extra bytes (an author footer): yilian never writes one")]
    ExtraBytes {
        /// How many.
        len: usize,
    },
    /// Not what Automerge's own encoder writes for these operations.
    #[error(
        "the change is not canonically encoded (decoding and encoding it again gives another hash)"
    )]
    NotCanonical,
    /// The actor id is not a yilian actor id.
    #[error("the actor id is {len} bytes; a yilian actor id has {ACTOR_LEN}")]
    ActorLength {
        /// Its length.
        len: usize,
    },
    /// Too many dependencies.
    #[error("the change has {n} dependencies, more than {MAX_DEPS}")]
    TooManyDeps {
        /// How many.
        n: usize,
    },
    /// Too long a message.
    #[error("the change message is {len} bytes, more than {MAX_MESSAGE}")]
    MessageTooLong {
        /// Its length.
        len: usize,
    },
    /// Too many operations.
    #[error("the change has {n} operations, more than {MAX_OPS}")]
    TooManyOps {
        /// How many.
        n: usize,
    },
    /// Refers to too many other actors.
    #[error("the change refers to {n} other actors, more than {MAX_OTHER_ACTORS}")]
    TooManyActors {
        /// How many.
        n: usize,
    },
    /// A claimed time before 1970.
    #[error("the change claims the time {time}, before 1970")]
    NegativeTime {
        /// The claimed time.
        time: i64,
    },
    /// Automerge panicked while reading it.
    #[error("reading the change crashed Automerge: {0}")]
    Panicked(String),
}

fn chunk_name(t: u8) -> &'static str {
    match t {
        CHUNK_DOCUMENT => "a whole document",
        CHUNK_CHANGE => "a change",
        CHUNK_COMPRESSED => "a compressed change",
        3 => "a bundle",
        _ => "unknown",
    }
}

/// One chunk of a concatenation: its type and all of its bytes (header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk<'a> {
    /// The chunk type byte.
    pub(crate) kind: u8,
    /// The whole chunk.
    pub(crate) bytes: &'a [u8],
}

fn leb128_u64(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may only carry the top bit of a u64.
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Splits concatenated chunks (a `save_after` blob, or a `save()` with anything after it)
/// without decompressing or parsing any of them.
pub(crate) fn split_chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, ChunkError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 10 || rest[..4] != MAGIC {
            return Err(ChunkError::BadMagic { at });
        }
        let kind = rest[8];
        let (len, n) = leb128_u64(&rest[9..]).ok_or(ChunkError::BadLength { at })?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| (9 + n).checked_add(l))
            .filter(|&e| e <= rest.len())
            .ok_or(ChunkError::Truncated {
                at,
                needed: len,
                have: rest.len() - 9 - n,
            })?;
        out.push(Chunk {
            kind,
            bytes: &rest[..end],
        });
        rest = &rest[end..];
        at += end;
    }
    Ok(out)
}

/// Parses one untrusted change chunk, refusing anything an honest yilian node never sends.
pub(crate) fn parse_change(chunk: &[u8]) -> Result<Change, ChunkError> {
    if chunk.len() > MAX_CHANGE_BYTES {
        return Err(ChunkError::TooLarge {
            len: chunk.len(),
            max: MAX_CHANGE_BYTES,
        });
    }
    if chunk.len() < 10 || chunk[..4] != MAGIC {
        return Err(ChunkError::BadMagic { at: 0 });
    }
    if chunk[8] != CHUNK_CHANGE {
        return Err(ChunkError::WrongType { got: chunk[8] });
    }
    let change = guard(|| Change::try_from(chunk))
        .map_err(|p| ChunkError::Panicked(p.0))?
        .map_err(|e| ChunkError::Unparsable(e.to_string()))?;
    if chunk[4..8] != change.hash().0[..4] {
        return Err(ChunkError::ChecksumMismatch);
    }
    check_caps(&change)?;
    let canonical = guard(|| Change::from(change.decode()).hash() == change.hash())
        .map_err(|p| ChunkError::Panicked(p.0))?;
    if !canonical {
        return Err(ChunkError::NotCanonical);
    }
    Ok(change)
}

/// The limits every change must keep, also changes taken out of a whole document (which are
/// canonical by construction but may be of any size).
pub(crate) fn check_caps(c: &Change) -> Result<(), ChunkError> {
    if !c.extra_bytes().is_empty() {
        return Err(ChunkError::ExtraBytes {
            len: c.extra_bytes().len(),
        });
    }
    let actor = c.actor_id().to_bytes().len();
    if actor != ACTOR_LEN {
        return Err(ChunkError::ActorLength { len: actor });
    }
    if c.deps().len() > MAX_DEPS {
        return Err(ChunkError::TooManyDeps { n: c.deps().len() });
    }
    if let Some(m) = c.message()
        && m.len() > MAX_MESSAGE
    {
        return Err(ChunkError::MessageTooLong { len: m.len() });
    }
    if c.len() > MAX_OPS {
        return Err(ChunkError::TooManyOps { n: c.len() });
    }
    if c.other_actor_ids().len() > MAX_OTHER_ACTORS {
        return Err(ChunkError::TooManyActors {
            n: c.other_actor_ids().len(),
        });
    }
    if c.timestamp() < 0 {
        return Err(ChunkError::NegativeTime {
            time: c.timestamp(),
        });
    }
    Ok(())
}
