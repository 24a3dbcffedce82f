//! Notes: a free-form alliance notice (通知) with a title and entries appended by any
//! facility in its audience. The simplest document kind, used by operators for notices and by
//! the demo and tests to exercise the store and sync without clinical rules.
//!
//! Layout (schema 1): `{ schema: 1, title: str, entries: [ { at: ms, by: facility, text } ] }`.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ROOT, ReadDoc};

use crate::ids::FacilityCode;

/// The schema version written into new notes.
pub const SCHEMA: u64 = 1;

/// Longest title or entry accepted, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;

/// A note that could not be written.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Empty or overlong text.
    #[error("{field} must be 1 to {MAX_TEXT} bytes, got {len}")]
    BadText {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The document is not a note of a known schema.
    #[error("the document is not a note: {0}")]
    NotANote(String),
}

fn check(field: &'static str, text: &str) -> Result<(), NoteError> {
    if text.trim().is_empty() || text.len() > MAX_TEXT {
        return Err(NoteError::BadText {
            field,
            len: text.len(),
        });
    }
    Ok(())
}

/// Validates a new note's fields.
pub fn validate(title: &str, text: Option<&str>) -> Result<(), NoteError> {
    check("title", title)?;
    if let Some(t) = text {
        check("text", t)?;
    }
    Ok(())
}

/// Writes a new note into an empty document.
pub fn init(
    doc: &mut Automerge,
    title: &str,
    first: Option<(&FacilityCode, u64, &str)>,
) -> Result<(), AutomergeError> {
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(ROOT, "schema", SCHEMA)?;
        tx.put(ROOT, "title", title)?;
        let entries = tx.put_object(ROOT, "entries", ObjType::List)?;
        if let Some((by, at, text)) = first {
            let e = tx.insert_object(&entries, 0, ObjType::Map)?;
            tx.put(&e, "at", at)?;
            tx.put(&e, "by", by.as_str())?;
            tx.put(&e, "text", text)?;
        }
        Ok(())
    })
    .map(|_| ())
    .map_err(|f| f.error)
}

/// Appends an entry to a note.
pub fn append(
    doc: &mut Automerge,
    by: &FacilityCode,
    at: u64,
    text: &str,
) -> Result<(), NoteError> {
    check("text", text)?;
    let entries = match doc.get(ROOT, "entries") {
        Ok(Some((automerge::Value::Object(ObjType::List), id))) => id,
        _ => return Err(NoteError::NotANote("it has no entries list".into())),
    };
    doc.transact::<_, _, AutomergeError>(|tx| {
        let n = tx.length(&entries);
        let e = tx.insert_object(&entries, n, ObjType::Map)?;
        tx.put(&e, "at", at)?;
        tx.put(&e, "by", by.as_str())?;
        tx.put(&e, "text", text)?;
        Ok(())
    })
    .map(|_| ())
    .map_err(|f| NoteError::NotANote(f.error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_take_entries_and_refuse_empty_text() {
        let by: FacilityCode = "TC-01".parse().unwrap();
        let mut doc = Automerge::new();
        init(&mut doc, "Flu season", Some((&by, 1, "first"))).unwrap();
        append(&mut doc, &by, 2, "second").unwrap();
        let json = crate::documents::to_json(&doc);
        assert_eq!(json["title"], "Flu season");
        assert_eq!(json["entries"][1]["text"], "second");
        assert!(matches!(
            append(&mut doc, &by, 3, "  "),
            Err(NoteError::BadText { .. })
        ));
        let mut other = Automerge::new();
        assert!(matches!(
            append(&mut other, &by, 3, "x"),
            Err(NoteError::NotANote(_))
        ));
    }
}
