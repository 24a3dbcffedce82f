//! CSV files as pharmacies and statisticians exchange them: text encodings (UTF-8 with or
//! without a byte-order mark, GBK/GB18030 as Excel on Chinese Windows writes, UTF-16 "Unicode
//! text" in either byte order; a workbook saved under a .csv name is named as such), comma or
//! tab separated, a header row whose names map to fields through aliases (Chinese and English,
//! bracketed annotations ignored), and every data row with its line number. The one writer of
//! CSV text, which neutralises cells a spreadsheet would run as formulas (CSV injection).
//! What the rows mean is up to the caller (the catalog, dispensing summaries, reports).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod encoding;
mod formula;
mod header;

pub use encoding::{TextEncoding, decode, encode};
pub use formula::{is_formula, neutralise, restore};

/// A file that cannot be read as a table at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// No bytes.
    #[error("the file is empty")]
    Empty,
    /// A spreadsheet workbook (a renamed `.xlsx`, `.xls` or `.ods`), not CSV text.
    #[error(
        "this is {0}, not a CSV file: open it in Excel or WPS and save it as CSV \
         (文件 > 另存为 > \"CSV UTF-8 (逗号分隔)\"), then import the .csv file"
    )]
    Workbook(&'static str),
    /// Some other binary file.
    #[error("this is {0}, not a CSV text file")]
    NotText(&'static str),
    /// Not text in a known encoding.
    #[error("the file is neither UTF-8 nor GBK text (first undecodable byte near offset {offset})")]
    Encoding {
        /// Byte offset of the first bad sequence.
        offset: usize,
    },
    /// UTF-16 (by its byte-order mark or NUL bytes) that does not decode.
    #[error(
        "the file looks like UTF-16 text but does not decode (first bad byte near offset {offset})"
    )]
    Utf16 {
        /// Byte offset of the first bad code unit.
        offset: usize,
    },
    /// Header row problems: every missing required column, unknown or repeated ones.
    #[error("line 1 (header): {0}")]
    Header(String),
    /// A header and no data rows: almost certainly the wrong file.
    #[error(
        "the file has a header row but no data rows: nothing to import (is it the right file?)"
    )]
    NoRows,
    /// The CSV structure itself is broken (an unclosed quote...).
    #[error("line {line}: {reason}")]
    Structure {
        /// Line number, 1-based.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// One column a table may have.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The field's stable name (also its English header).
    pub field: &'static str,
    /// Header names accepted for it (compared without case, spaces, `_` or `-`, bracketed
    /// annotations such as `(甲/乙)` or `（元）` set aside; `【名称】` reads as 名称).
    pub aliases: &'static [&'static str],
    /// Whether a file without it is refused.
    pub required: bool,
}

/// A data row: its line number in the file and its values by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Values by field name, trimmed, the export's formula mark taken off (see [`restore`]);
    /// absent columns are absent.
    pub values: BTreeMap<&'static str, String>,
}

impl Row {
    /// A value, or the empty string.
    pub fn get(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }
}

/// A problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong, naming the column.
    pub reason: String,
}

/// A decoded table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its encoding.
    pub encoding: TextEncoding,
    /// Data rows (blank lines skipped).
    pub rows: Vec<Row>,
    /// Rows with the wrong number of cells.
    pub errors: Vec<LineError>,
    /// Cells a spreadsheet would run as formulas (`=HYPERLINK(...)`), one per cell, naming
    /// the column. They are read as text; exports neutralise them.
    pub formulas: Vec<LineError>,
}

/// Reads a table: decodes the bytes, maps the header through `columns`, and returns every row.
/// A missing required column, an unknown column or a repeated one refuses the whole file,
/// naming each; so does a file with no data rows.
pub fn read(bytes: &[u8], columns: &[Column]) -> Result<Table, CsvError> {
    let (text, encoding) = decode(bytes)?;
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.contains('\t') && !first.contains(',') {
        b'\t'
    } else {
        b','
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut records = rdr.records();
    let header = match records.next() {
        None => return Err(CsvError::Empty),
        Some(Err(e)) => return Err(structure(&e)),
        Some(Ok(h)) => h,
    };
    let map = header::map(header.iter(), columns)?;
    let newlines: Vec<u64> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i as u64)
        .collect();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut formulas = Vec::new();
    for rec in records {
        let rec = rec.map_err(|e| structure(&e))?;
        let line = rec.position().map_or(0, |p| {
            // csv reports the end of the previous record's terminator; skip to the record.
            let skip = text.as_bytes()[(p.byte() as usize).min(text.len())..]
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            line_of(&newlines, p.byte() + skip as u64)
        });
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rec.len() != map.len() {
            errors.push(LineError {
                line,
                reason: format!("has {} cells, the header has {}", rec.len(), map.len()),
            });
            continue;
        }
        let mut values = BTreeMap::new();
        for ((field, cell), name) in map.iter().zip(rec.iter()).zip(header.iter()) {
            let Some(field) = field else { continue };
            let cell = cell.trim();
            if is_formula(cell) {
                formulas.push(LineError {
                    line,
                    reason: format!(
                        "column {:?} ({field}) starts with {:?}: a spreadsheet would run it as a formula; \
                         kept as text (exports write it with a leading ')",
                        name.trim(),
                        cell.chars().next().unwrap_or_default()
                    ),
                });
            }
            values.insert(*field, restore(cell).trim().to_string());
        }
        rows.push(Row { line, values });
    }
    if rows.is_empty() && errors.is_empty() {
        return Err(CsvError::NoRows);
    }
    Ok(Table {
        encoding,
        rows,
        errors,
        formulas,
    })
}

/// The 1-based line holding byte `offset`, given the offsets of every newline.
fn line_of(newlines: &[u64], offset: u64) -> u64 {
    newlines.partition_point(|&n| n < offset) as u64 + 1
}

fn structure(e: &csv::Error) -> CsvError {
    CsvError::Structure {
        line: e.position().map_or(0, |p| p.line()),
        reason: e.to_string(),
    }
}

/// Writes rows as CSV text (quoted where needed, CRLF line ends as Excel expects). Every CSV
/// file yilian writes goes through here, so every cell a spreadsheet could run as a formula is
/// neutralised (see [`neutralise`]); numbers stay numbers.
pub fn write(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(header.iter().map(|c| neutralise(c).into_owned()));
    for r in rows {
        let _ = w.write_record(r.iter().map(|c| neutralise(c).into_owned()));
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Parses a yes/no cell: 是/否, Y/N, yes/no, true/false, 1/0, √/×.
pub fn yes_no(field: &str, v: &str) -> Result<bool, String> {
    match v.trim().to_lowercase().as_str() {
        "是" | "y" | "yes" | "true" | "1" | "√" => Ok(true),
        "否" | "n" | "no" | "false" | "0" | "×" | "" => Ok(false),
        other => Err(format!("{field}: {other:?} is not yes/no (是/否)")),
    }
}

#[cfg(test)]
mod tests;
