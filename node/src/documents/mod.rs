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

/// What people call a document, for lists: a note's or outreach event's title, a referral's
/// or certification's number, a result's item, the facility (and month) of stock and
/// dispensing documents. None for kinds without one (the catalog) or when the document lacks
/// the field.
pub fn title(kind: DocKind, doc: &Automerge) -> Option<String> {
    let path: &[&str] = match kind {
        DocKind::Note | DocKind::Outreach => &["title"],
        DocKind::Referral => &["request", "number"],
        DocKind::Result => &["item", "name"],
        DocKind::QcCert => &["number"],
        DocKind::Stock => &["facility"],
        DocKind::Dispensing => {
            let facility = text_at(doc, &["facility"])?;
            return Some(match text_at(doc, &["period"]) {
                Some(p) => format!("{facility} {p}"),
                None => facility,
            });
        }
        DocKind::Catalog => return None,
    };
    text_at(doc, path)
}

/// The text at a path of map keys from the root, if it is there.
fn text_at(doc: &Automerge, path: &[&str]) -> Option<String> {
    use automerge::{ReadDoc, Value};
    let (last, maps) = path.split_last()?;
    let mut obj = automerge::ROOT;
    for key in maps {
        match doc.get(&obj, *key).ok()?? {
            (Value::Object(automerge::ObjType::Map), id) => obj = id,
            _ => return None,
        }
    }
    match doc.get(&obj, *last).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            automerge::ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        (Value::Object(automerge::ObjType::Text), id) => doc.text(&id).ok(),
        _ => None,
    }
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

/// Why the value under the root key `key` cannot be read as a `T`, if it cannot: the key is
/// absent, or the value inside is missing a field or has another type. For errors that name
/// the part of a document that is wrong instead of autosurgeon's bare "unexpected None".
pub fn part_problem<T: autosurgeon::Hydrate>(doc: &Automerge, key: &str) -> Option<String> {
    use automerge::ReadDoc;
    match doc.get(automerge::ROOT, key) {
        Ok(None) => Some(format!("it has no `{key}`")),
        Ok(Some(_)) => autosurgeon::hydrate_prop::<_, T, _, _>(doc, &automerge::ROOT, key)
            .err()
            .map(|e| match e {
                autosurgeon::HydrateError::Unexpected(autosurgeon::hydrate::Unexpected::None) => {
                    format!("`{key}` lacks a field it must have")
                }
                other => format!("`{key}` has a value of the wrong type ({other})"),
            }),
        Err(e) => Some(e.to_string()),
    }
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

/// Milliseconds since the Unix epoch, now: the time records are stamped with.
///
/// Debug builds (tests) honour `YILIAN_TEST_NOW` (an RFC 3339 instant such as
/// `2026-03-31T16:30:00Z`), so a test can create a record at a chosen instant through the real
/// binary; release builds ignore it.
pub fn now_ms() -> u64 {
    #[cfg(debug_assertions)]
    if let Some(ms) = test_now_ms() {
        return ms;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(debug_assertions)]
fn test_now_ms() -> Option<u64> {
    static NOW: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| {
        let text = std::env::var("YILIAN_TEST_NOW").ok()?;
        let t: jiff::Timestamp = text.parse().ok()?;
        u64::try_from(t.as_millisecond()).ok()
    })
}

/// Today's date in a time zone.
pub fn today(tz: &jiff::tz::TimeZone) -> jiff::civil::Date {
    local_date(now_ms(), tz)
}

/// The local date of an instant (ms since the Unix epoch) in a time zone.
pub fn local_date(ms: u64, tz: &jiff::tz::TimeZone) -> jiff::civil::Date {
    jiff::Timestamp::from_millisecond(ms as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
        .date()
}

/// An instant (ms since the Unix epoch) as RFC 3339 text with the offset it has in a time zone,
/// e.g. `2026-04-01T00:30:00+08:00` (milliseconds only when there are some).
pub fn rfc3339(ms: u64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms as i64) {
        Ok(t) => t.display_with_offset(tz.to_offset(t)).to_string(),
        Err(_) => ms.to_string(),
    }
}
