//! The document header: what a document is (kind), who may hold it (audience) and who its
//! owning parties are, fixed when it is created.
//!
//! A document with a random id has a [`SignedHeader`], signed by its creator over
//! `b"yilian/header/v1\0" ‖ postcard(DocHeader)`; the header names the document id, so it cannot
//! be replayed onto another document, and any change to kind, audience or parties breaks the
//! signature, so no relay can widen a document's audience or change its kind. Whether the
//! creator may create that kind with those parties is decided by [`super::rules`]. The header
//! also names the document's first change (`genesis`, by the creator): only that change may
//! make the containers other facilities' records go into (a referral's `acts`, a result's
//! `retests`...), so nobody, the creator included, can later make a second container that wins
//! the conflict and hides every record in the first.
//!
//! A well-known document (the drug catalog, a facility's stock rows, a facility's dispensing
//! summary for a month) has no creator: every node may create it independently under the same
//! derived id. Its [`WellKnown`] header is just its name; a receiver checks that
//! `DocId::derived(name)` is the document id and derives kind, audience (everyone) and owner
//! from the name. A signed header can never be of a well-known kind. Because a random id cannot
//! equal a derived one by chance, a signed header found for an id that a well-known name
//! derives to is proof that its creator squatted that id: a well-known header that verifies for
//! an id always wins over a signed one (part B applies this when headers disagree).
//!
//! Encoding (stored and sent): one format byte [`HEADER_FORMAT`], then postcard of [`Header`].
//! Enum variants are encoded by position: new variants of [`Parties`] and [`Header`] go at the
//! end. The kind is encoded by its name, so the order of `DocKind` does not matter.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use super::sign::{self, SigError, Signature};
use crate::documents::{Audience, DocKind};
use crate::ids::{DocId, FacilityCode, NodeId};

/// Version of [`DocHeader`] this build writes and reads.
pub(crate) const HEADER_V1: u32 = 1;
/// Format byte in front of an encoded [`Header`].
pub(crate) const HEADER_FORMAT: u8 = 1;
/// Longest encoded header accepted.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest well-known name accepted.
pub(crate) const MAX_NAME: usize = 128;

/// Name of the drug catalog.
pub(crate) const CATALOG_NAME: &str = "yilian/catalog/v1";
const STOCK_PREFIX: &str = "yilian/stock/v1/";
const DISPENSING_PREFIX: &str = "yilian/dispensing/v1/";

/// A header that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum HeaderError {
    /// Could not be encoded.
    #[error("the header cannot be encoded: {0}")]
    Encode(String),
    /// Could not be decoded.
    #[error("the header is unreadable: {0}")]
    Decode(String),
    /// An encoding this build does not know.
    #[error(
        "the header is in format {0}; this yilian reads format {HEADER_FORMAT}: upgrade yilian"
    )]
    UnknownFormat(u8),
    /// A header version this build does not know.
    #[error("the header has version {0}; this yilian reads version {HEADER_V1}: upgrade yilian")]
    UnknownVersion(u32),
    /// Longer than any honest header.
    #[error("the header is {0} bytes, more than the {MAX_HEADER_BYTES} a header may have")]
    TooLarge(usize),
    /// Made for another document.
    #[error(
        "the header belongs to document {header}, not to {doc}: it was replayed onto another document"
    )]
    WrongDocument {
        /// The id in the header.
        header: DocId,
        /// The document it came with.
        doc: DocId,
    },
    /// A signed header claiming a kind that only well-known documents have.
    #[error("a {0} document is well-known (named, not created): it cannot have a signed header")]
    WellKnownKind(DocKind),
    /// Nobody may hold it.
    #[error("the header's audience is empty")]
    EmptyAudience,
    /// The signature is not the creator's over this header.
    #[error(
        "the header's signature does not verify (kind, audience or parties were changed after signing, or it is forged): {0}"
    )]
    BadSignature(SigError),
    /// Not a well-known name.
    #[error("{0:?} is not the name of a well-known document")]
    BadName(String),
    /// The name does not derive to this document id.
    #[error("the well-known name {name:?} belongs to document {expected}, not to {doc}")]
    NameMismatch {
        /// The name.
        name: String,
        /// The id it derives to.
        expected: DocId,
        /// The document it came with.
        doc: DocId,
    },
}

/// The owning parties of a document, per kind, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Parties {
    /// No owning party (a QC certification, the drug catalog).
    None,
    /// A referral: the sending and the receiving facility.
    Referral {
        /// Sender.
        from: FacilityCode,
        /// Receiver.
        to: FacilityCode,
    },
    /// A result: the performing facility.
    Result {
        /// The facility that performed the test or exam.
        performer: FacilityCode,
    },
    /// The facility that owns the document's fixed fields (a note's author, a stock or
    /// dispensing document's facility).
    Owner {
        /// The facility.
        facility: FacilityCode,
    },
    /// An outreach event: the host sending the team and the township visited.
    Outreach {
        /// Host facility.
        host: FacilityCode,
        /// Township visited.
        township: FacilityCode,
    },
}

/// What a creator states about a new document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocHeader {
    /// [`HEADER_V1`].
    pub(crate) v: u32,
    /// The document.
    pub(crate) doc: DocId,
    /// What it records.
    #[serde(with = "kind_name")]
    pub(crate) kind: DocKind,
    /// Who may hold it.
    pub(crate) audience: Audience,
    /// Its owning parties.
    pub(crate) parties: Parties,
    /// When it was created (ms since the Unix epoch, the creator's clock).
    pub(crate) created_ms: u64,
    /// The node that created it and signed this header.
    pub(crate) creator: NodeId,
    /// The document's first change, made by the creator.
    #[serde(with = "hash_bytes")]
    pub(crate) genesis: ChangeHash,
}

/// A header with its creator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedHeader {
    /// The header.
    pub(crate) header: DocHeader,
    /// The creator's signature over [`sign::header_message`].
    #[serde(with = "sig_bytes")]
    pub(crate) sig: Signature,
}

/// The header of a well-known document: only its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WellKnown {
    /// `yilian/catalog/v1`, `yilian/stock/v1/<F>` or `yilian/dispensing/v1/<F>/<YYYY-MM>`.
    pub(crate) name: String,
}

/// A well-known name, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WellKnownName {
    /// The county drug catalog.
    Catalog,
    /// A facility's stock rows.
    Stock {
        /// The facility.
        facility: FacilityCode,
    },
    /// A facility's dispensing summary for a month.
    Dispensing {
        /// The facility.
        facility: FacilityCode,
        /// `YYYY-MM`.
        period: String,
    },
}

/// Either kind of header, as stored and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Header {
    /// A created document.
    Signed(SignedHeader),
    /// A well-known document.
    WellKnown(WellKnown),
}

/// What a verified header establishes; the rules read only this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocFacts {
    /// The document.
    pub(crate) doc: DocId,
    /// What it records.
    pub(crate) kind: DocKind,
    /// Who may hold it.
    pub(crate) audience: Audience,
    /// Its owning parties.
    pub(crate) parties: Parties,
    /// Its name, for a well-known document.
    pub(crate) well_known: Option<WellKnownName>,
    /// Its creator, for a created document.
    pub(crate) creator: Option<NodeId>,
    /// Its first change, for a created document.
    pub(crate) genesis: Option<ChangeHash>,
}

/// Whether documents of `kind` are well-known (named) rather than created.
pub(crate) fn is_well_known_kind(kind: DocKind) -> bool {
    matches!(
        kind,
        DocKind::Catalog | DocKind::Stock | DocKind::Dispensing
    )
}

impl DocHeader {
    /// A version-1 header.
    pub(crate) fn new(
        doc: DocId,
        kind: DocKind,
        audience: Audience,
        parties: Parties,
        created_ms: u64,
        creator: NodeId,
        genesis: ChangeHash,
    ) -> DocHeader {
        DocHeader {
            v: HEADER_V1,
            doc,
            kind,
            audience,
            parties,
            created_ms,
            creator,
            genesis,
        }
    }
}

impl SignedHeader {
    /// Checks everything that needs no more than the creator's public key: version, document
    /// id, kind, audience and signature. Whether the creator may create this document is for
    /// [`super::rules::check_creation`].
    pub(crate) fn check(&self, doc: &DocId, creator_key: &[u8; 32]) -> Result<(), HeaderError> {
        let h = &self.header;
        if h.v != HEADER_V1 {
            return Err(HeaderError::UnknownVersion(h.v));
        }
        if h.doc != *doc {
            return Err(HeaderError::WrongDocument {
                header: h.doc,
                doc: *doc,
            });
        }
        if is_well_known_kind(h.kind) {
            return Err(HeaderError::WellKnownKind(h.kind));
        }
        if h.audience.0.is_empty() {
            return Err(HeaderError::EmptyAudience);
        }
        let message = sign::header_message(h)?;
        sign::verify(h.creator, creator_key, &message, &self.sig).map_err(HeaderError::BadSignature)
    }

    /// The facts it states (only meaningful once [`SignedHeader::check`] passed).
    pub(crate) fn facts(&self) -> DocFacts {
        let h = &self.header;
        DocFacts {
            doc: h.doc,
            kind: h.kind,
            audience: h.audience.clone(),
            parties: h.parties.clone(),
            well_known: None,
            creator: Some(h.creator),
            genesis: Some(h.genesis),
        }
    }
}

fn canonical_facility(text: &str) -> Option<FacilityCode> {
    let code: FacilityCode = text.parse().ok()?;
    (code.as_str() == text && code.as_str() != FacilityCode::EVERYONE).then_some(code)
}

impl WellKnown {
    /// The catalog's header.
    pub(crate) fn catalog() -> WellKnown {
        WellKnown {
            name: CATALOG_NAME.into(),
        }
    }

    /// The header of `facility`'s stock document.
    pub(crate) fn stock(facility: &FacilityCode) -> WellKnown {
        WellKnown {
            name: format!("{STOCK_PREFIX}{facility}"),
        }
    }

    /// The header of `facility`'s dispensing summary for `period` (`YYYY-MM`).
    pub(crate) fn dispensing(facility: &FacilityCode, period: &str) -> WellKnown {
        WellKnown {
            name: format!("{DISPENSING_PREFIX}{facility}/{period}"),
        }
    }

    /// The id its name derives to.
    pub(crate) fn doc_id(&self) -> DocId {
        DocId::derived(&self.name)
    }

    /// Reads the name. Only the spelling the code writes is accepted (upper-case facility
    /// code, `YYYY-MM`), so one document has exactly one name.
    pub(crate) fn parse(&self) -> Result<WellKnownName, HeaderError> {
        let bad = || HeaderError::BadName(self.name.chars().take(MAX_NAME).collect());
        let n = self.name.as_str();
        if n.len() > MAX_NAME {
            return Err(bad());
        }
        if n == CATALOG_NAME {
            return Ok(WellKnownName::Catalog);
        }
        if let Some(f) = n.strip_prefix(STOCK_PREFIX) {
            let facility = canonical_facility(f).ok_or_else(bad)?;
            return Ok(WellKnownName::Stock { facility });
        }
        if let Some(rest) = n.strip_prefix(DISPENSING_PREFIX) {
            let (f, period) = rest.split_once('/').ok_or_else(bad)?;
            let facility = canonical_facility(f).ok_or_else(bad)?;
            if crate::documents::dispensing::check_period(period)
                .ok()
                .as_deref()
                != Some(period)
            {
                return Err(bad());
            }
            return Ok(WellKnownName::Dispensing {
                facility,
                period: period.to_string(),
            });
        }
        Err(bad())
    }

    /// Checks the name against the document id and derives the facts.
    pub(crate) fn verify(&self, doc: &DocId) -> Result<DocFacts, HeaderError> {
        let name = self.parse()?;
        let expected = self.doc_id();
        if expected != *doc {
            return Err(HeaderError::NameMismatch {
                name: self.name.clone(),
                expected,
                doc: *doc,
            });
        }
        let (kind, parties) = match &name {
            WellKnownName::Catalog => (DocKind::Catalog, Parties::None),
            WellKnownName::Stock { facility } => (
                DocKind::Stock,
                Parties::Owner {
                    facility: facility.clone(),
                },
            ),
            WellKnownName::Dispensing { facility, .. } => (
                DocKind::Dispensing,
                Parties::Owner {
                    facility: facility.clone(),
                },
            ),
        };
        Ok(DocFacts {
            doc: *doc,
            kind,
            audience: Audience::new([FacilityCode::everyone()]),
            parties,
            well_known: Some(name),
            creator: None,
            genesis: None,
        })
    }
}

impl Header {
    /// The stored or sent form: [`HEADER_FORMAT`], then postcard.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, HeaderError> {
        postcard::to_extend(self, vec![HEADER_FORMAT])
            .map_err(|e| HeaderError::Encode(e.to_string()))
    }

    /// Reads what [`Header::encode`] wrote; refuses trailing bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Header, HeaderError> {
        if bytes.len() > MAX_HEADER_BYTES {
            return Err(HeaderError::TooLarge(bytes.len()));
        }
        let (&format, body) = bytes
            .split_first()
            .ok_or_else(|| HeaderError::Decode("empty".into()))?;
        if format != HEADER_FORMAT {
            return Err(HeaderError::UnknownFormat(format));
        }
        let (h, rest) = postcard::take_from_bytes::<Header>(body)
            .map_err(|e| HeaderError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(HeaderError::Decode(format!(
                "{} unexpected bytes after the header",
                rest.len()
            )));
        }
        Ok(h)
    }

    /// The creator, for a signed header.
    pub(crate) fn creator(&self) -> Option<NodeId> {
        match self {
            Header::Signed(s) => Some(s.header.creator),
            Header::WellKnown(_) => None,
        }
    }
}

/// `DocKind` by its name, so its declaration order never changes an encoding.
mod kind_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::documents::DocKind;

    pub(super) fn serialize<S: Serializer>(kind: &DocKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DocKind, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A change hash as its 32 raw bytes.
mod hash_bytes {
    use automerge::ChangeHash;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(h: &ChangeHash, s: S) -> Result<S::Ok, S::Error> {
        h.0.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChangeHash, D::Error> {
        <[u8; 32]>::deserialize(d).map(ChangeHash)
    }
}

/// A 64-byte signature as bytes (serde derives stop at 32-element arrays).
mod sig_bytes {
    use serde::{Deserializer, Serializer};

    use super::Signature;

    pub(super) fn serialize<S: Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(sig)
    }

    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Signature;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("64 signature bytes")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
            v.try_into()
                .map_err(|_| E::invalid_length(v.len(), &"64 bytes"))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Signature, A::Error> {
            let mut out = [0u8; 64];
            for (i, b) in out.iter_mut().enumerate() {
                *b = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(i, &"64 bytes"))?;
            }
            if seq.next_element::<u8>()?.is_some() {
                return Err(serde::de::Error::invalid_length(65, &"64 bytes"));
            }
            Ok(out)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        d.deserialize_bytes(Visitor)
    }
}
