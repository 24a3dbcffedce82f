//! What a document is, independent of how it is stored or synced: its kind, its audience (the
//! facilities allowed to hold it), the metadata the store keeps beside it, and the generic JSON
//! view operators see. Typed document kinds live in submodules.

pub mod catalog;
pub mod csvfile;
pub mod dispensing;
pub mod fhir;
pub mod fork;
pub mod keyed;
pub mod note;
pub mod outreach;
pub mod referral;
pub mod result;
pub mod validate;

use std::collections::BTreeSet;

use automerge::{Automerge, ChangeHash};
use serde::{Deserialize, Serialize};

use crate::ids::{DocId, FacilityCode};

/// What a document records. The kind decides its schema and its write rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DocKind {
    /// A free-form alliance note or notice with appended entries.
    Note,
    /// A two-way referral (双向转诊).
    Referral,
    /// A lab or imaging result (检查检验结果).
    Result,
    /// A facility's quality-control certification for result recognition.
    QcCert,
    /// An entry of the shared county drug catalog.
    Catalog,
    /// A facility's stock and availability rows.
    Stock,
    /// A facility's dispensing summary for a period.
    Dispensing,
    /// An outreach free-clinic event (义诊) with its visit log.
    Outreach,
}

impl DocKind {
    /// Every kind, in display order.
    pub const ALL: [DocKind; 8] = [
        DocKind::Note,
        DocKind::Referral,
        DocKind::Result,
        DocKind::QcCert,
        DocKind::Catalog,
        DocKind::Stock,
        DocKind::Dispensing,
        DocKind::Outreach,
    ];

    /// The kebab-case name used on the command line, in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Note => "note",
            DocKind::Referral => "referral",
            DocKind::Result => "result",
            DocKind::QcCert => "qc-cert",
            DocKind::Catalog => "catalog",
            DocKind::Stock => "stock",
            DocKind::Dispensing => "dispensing",
            DocKind::Outreach => "outreach",
        }
    }
}

impl std::fmt::Display for DocKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DocKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DocKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = DocKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown document kind {s:?}: use one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The facilities allowed to hold a document.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Audience(pub BTreeSet<FacilityCode>);

impl Audience {
    /// An audience of the given facilities.
    pub fn new(codes: impl IntoIterator<Item = FacilityCode>) -> Audience {
        Audience(codes.into_iter().collect())
    }

    /// Whether a facility may hold the document (also when the audience is everyone, `*`).
    pub fn contains(&self, code: &FacilityCode) -> bool {
        self.0.contains(code) || self.0.contains(&FacilityCode::everyone())
    }

    /// Adds a facility.
    pub fn insert(&mut self, code: FacilityCode) {
        self.0.insert(code);
    }

    /// The codes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &FacilityCode> {
        self.0.iter()
    }
}

/// Parses a comma-separated list of facility codes (`CH-01,TC-03`).
pub fn parse_audience(text: &str) -> Result<Audience, crate::ids::IdError> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<BTreeSet<_>, _>>()
        .map(Audience)
}

/// What the store knows about a document without loading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocInfo {
    /// The document id.
    pub id: DocId,
    /// What it records.
    pub kind: DocKind,
    /// Who may hold it.
    pub audience: Audience,
    /// Its current heads (the hashes of its latest changes), sorted.
    pub heads: Vec<[u8; 32]>,
    /// When this node first stored it (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it last changed on this node (ms since the Unix epoch).
    pub updated_ms: u64,
    /// Its place in this node's change sequence.
    pub seq: u64,
    /// Bytes on disk: snapshot plus increments.
    pub stored_bytes: u64,
}

impl DocInfo {
    /// Heads as lowercase hex strings.
    pub fn heads_hex(&self) -> Vec<String> {
        self.heads
            .iter()
            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
            .collect()
    }
}

/// The sorted heads of a document as raw bytes.
pub fn heads_of(doc: &Automerge) -> Vec<[u8; 32]> {
    let mut heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|h: &ChangeHash| h.0).collect();
    heads.sort_unstable();
    heads
}

/// The document's content as JSON (maps, lists, text and scalars; bytes as arrays).
pub fn to_json(doc: &Automerge) -> serde_json::Value {
    serde_json::to_value(automerge::AutoSerde::from(doc)).unwrap_or(serde_json::Value::Null)
}

/// Reads a whole typed document whose `schema` field this build must understand. `what` names
/// the kind in errors ("referral", "outreach event").
pub fn read_versioned<T: autosurgeon::Hydrate>(
    doc: &Automerge,
    what: &str,
    schema: impl Fn(&T) -> u64,
    known: u64,
) -> Result<T, String> {
    let v: T = autosurgeon::hydrate(doc).map_err(|e| format!("not a readable {what}: {e}"))?;
    let s = schema(&v);
    if s > known {
        return Err(format!(
            "the {what} has schema {s}; this yilian understands up to {known}: upgrade yilian to change it"
        ));
    }
    Ok(v)
}

/// Writes a whole typed document in one transaction (only what changed becomes a change).
pub fn write_whole<T: autosurgeon::Reconcile>(
    doc: &mut Automerge,
    what: &str,
    value: &T,
) -> Result<(), String> {
    doc.transact::<_, _, autosurgeon::ReconcileError>(|tx| autosurgeon::reconcile(tx, value))
        .map(|_| ())
        .map_err(|f| format!("cannot write the {what}: {}", f.error))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
