//! Printing: tables, JSON, errors and exit codes.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use yilian_node::control::ErrorKind;

/// Exit code of a failure with no more specific class.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// The named document or object does not exist.
pub(crate) const EXIT_NOT_FOUND: u8 = 3;
/// The input was invalid.
pub(crate) const EXIT_INVALID: u8 = 4;
/// The store failed (disk full, I/O).
pub(crate) const EXIT_STORAGE: u8 = 5;
/// The node is not reachable or is shutting down.
pub(crate) const EXIT_UNAVAILABLE: u8 = 6;
/// Documents were refused by a peer or from a peer (`sync wait`).
pub(crate) const EXIT_REFUSED: u8 = 7;

/// Documents that a sync exchange refused; the message names them.
#[derive(Debug)]
pub(crate) struct DocumentsRefused(pub(crate) String);

impl std::fmt::Display for DocumentsRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DocumentsRefused {}

/// The node refused a request.
#[derive(Debug)]
pub(crate) struct NodeRefused {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl std::fmt::Display for NodeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeRefused {}

/// Prints an error with its whole chain of causes.
pub(crate) fn error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

/// The exit code for an error.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<DocumentsRefused>().is_some() {
        return EXIT_REFUSED;
    }
    if let Some(r) = e.downcast_ref::<NodeRefused>() {
        return match r.kind {
            ErrorKind::NotFound => EXIT_NOT_FOUND,
            ErrorKind::InvalidInput | ErrorKind::Protocol => EXIT_INVALID,
            ErrorKind::Storage => EXIT_STORAGE,
            _ => EXIT_UNAVAILABLE,
        };
    }
    if e.chain().any(|c| {
        c.downcast_ref::<yilian_node::control::ClientError>()
            .is_some()
    }) {
        return EXIT_UNAVAILABLE;
    }
    EXIT_FAILURE
}

/// A table with the house style.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// Prints a value as pretty JSON.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Writes pretty JSON to a file (atomically) or to standard output.
pub(crate) fn write_json(
    v: &serde_json::Value,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = serde_json::to_string_pretty(v)?;
    match out {
        None => {
            println!("{text}");
            Ok(())
        }
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text.as_bytes())
                .and_then(|_| std::fs::rename(&tmp, path))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// Writes a file atomically (a temporary file renamed into place), naming it on failure.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A yes/no mark for tables.
pub(crate) fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "-" }
}

/// Prints a line.
pub(crate) fn line(s: impl std::fmt::Display) {
    println!("{s}");
}

/// Prints a note for the operator on stderr (kept out of piped output).
pub(crate) fn note(s: impl std::fmt::Display) {
    eprintln!("{s}");
}

/// A millisecond timestamp as UTC text.
pub(crate) fn time(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::time(1_795_000_000_000), "2026-11-18 11:06:40Z");
    }
}
