//! CSV files as pharmacies and statisticians exchange them: text encodings (UTF-8 with or
//! without a byte-order mark, GBK/GB18030 as Excel on Chinese Windows writes, UTF-16 "Unicode
//! text"), comma or tab separated, a header row whose names map to fields through aliases
//! (Chinese and English), and every data row with its line number. Encoding for export too.
//! What the rows mean is up to the caller (the catalog, dispensing summaries).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The text encoding of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 with a byte-order mark (what Excel writes as "CSV UTF-8").
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
    /// GBK / GB18030 (what Excel on Chinese Windows writes as plain "CSV").
    Gbk,
    /// UTF-16 little-endian with a byte-order mark (Excel's "Unicode text").
    #[serde(rename = "utf-16le")]
    Utf16Le,
}

impl TextEncoding {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Utf8Bom => "utf-8-bom",
            TextEncoding::Gbk => "gbk",
            TextEncoding::Utf16Le => "utf-16le",
        }
    }
}

impl std::str::FromStr for TextEncoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(TextEncoding::Utf8),
            "utf-8-bom" | "utf8-bom" => Ok(TextEncoding::Utf8Bom),
            "gbk" | "gb18030" | "gb2312" => Ok(TextEncoding::Gbk),
            _ => Err(format!(
                "unknown encoding {s:?}: use utf-8, utf-8-bom or gbk"
            )),
        }
    }
}

/// A file that cannot be read as a table at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// No bytes.
    #[error("the file is empty")]
    Empty,
    /// Not text in a known encoding.
    #[error("the file is neither UTF-8 nor GBK text (first undecodable byte near offset {offset})")]
    Encoding {
        /// Byte offset of the first bad sequence.
        offset: usize,
    },
    /// Header row problems: every missing required column, unknown or repeated ones.
    #[error("line 1 (header): {0}")]
    Header(String),
    /// The CSV structure itself is broken (an unclosed quote...).
    #[error("line {line}: {reason}")]
    Structure {
        /// Line number, 1-based.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Decodes file bytes, detecting the encoding: a UTF-8 or UTF-16 byte-order mark, else valid
/// UTF-8, else GBK (GB18030). Text that is none of them is an error naming where it broke.
pub fn decode(bytes: &[u8]) -> Result<(String, TextEncoding), CsvError> {
    if bytes.is_empty() {
        return Err(CsvError::Empty);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return std::str::from_utf8(rest)
            .map(|s| (s.to_string(), TextEncoding::Utf8Bom))
            .map_err(|e| CsvError::Encoding {
                offset: e.valid_up_to() + 3,
            });
    }
    if bytes.starts_with(&[0xFF, 0xFE]) {
        // `decode` removes the byte-order mark.
        let (text, _, bad) = encoding_rs::UTF_16LE.decode(bytes);
        if bad {
            return Err(CsvError::Encoding { offset: 0 });
        }
        return Ok((text.into_owned(), TextEncoding::Utf16Le));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s.to_string(), TextEncoding::Utf8)),
        Err(utf8) => encoding_rs::GBK
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|s| (s.into_owned(), TextEncoding::Gbk))
            .ok_or(CsvError::Encoding {
                offset: utf8.valid_up_to(),
            }),
    }
}

/// Encodes text for a file. GBK cannot hold every character: those are named in the error.
pub fn encode(text: &str, enc: TextEncoding) -> Result<Vec<u8>, String> {
    match enc {
        TextEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
        TextEncoding::Utf8Bom => {
            let mut out = vec![0xEF, 0xBB, 0xBF];
            out.extend_from_slice(text.as_bytes());
            Ok(out)
        }
        TextEncoding::Gbk => {
            let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
            if unmappable {
                let bad: String = text
                    .chars()
                    .filter(|c| {
                        let mut b = [0u8; 4];
                        encoding_rs::GBK.encode(c.encode_utf8(&mut b)).2
                    })
                    .take(5)
                    .collect();
                return Err(format!(
                    "characters {bad:?} have no GBK form: export as utf-8-bom instead"
                ));
            }
            Ok(bytes.into_owned())
        }
        TextEncoding::Utf16Le => {
            let mut out = vec![0xFF, 0xFE];
            for u in text.encode_utf16() {
                out.extend_from_slice(&u.to_le_bytes());
            }
            Ok(out)
        }
    }
}

/// One column a table may have.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The field's stable name (also its English header).
    pub field: &'static str,
    /// Header names accepted for it (compared without case, spaces, `_`, `-` or brackets).
    pub aliases: &'static [&'static str],
    /// Whether a file without it is refused.
    pub required: bool,
}

/// A data row: its line number in the file and its values by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Values by field name, trimmed; absent columns are absent.
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
}

fn normalise(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '(' | ')' | '（' | '）' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Reads a table: decodes the bytes, maps the header through `columns`, and returns every row.
/// A missing required column, an unknown column or a repeated one refuses the whole file,
/// naming each.
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
    let mut map: Vec<Option<&'static str>> = Vec::new();
    let mut problems = Vec::new();
    for h in header.iter() {
        let n = normalise(h);
        if n.is_empty() {
            map.push(None);
            continue;
        }
        let col = columns
            .iter()
            .find(|c| normalise(c.field) == n || c.aliases.iter().any(|a| normalise(a) == n));
        match col {
            Some(c) if map.contains(&Some(c.field)) => {
                problems.push(format!("column {:?} appears twice", h.trim()));
                map.push(None);
            }
            Some(c) => map.push(Some(c.field)),
            None => {
                problems.push(format!("unknown column {:?}", h.trim()));
                map.push(None);
            }
        }
    }
    let missing: Vec<String> = columns
        .iter()
        .filter(|c| c.required && !map.contains(&Some(c.field)))
        .map(|c| format!("{} ({})", c.field, c.aliases.first().copied().unwrap_or("")))
        .collect();
    if !missing.is_empty() {
        problems.insert(0, format!("missing columns: {}", missing.join(", ")));
    }
    if !problems.is_empty() {
        let known: Vec<String> = columns
            .iter()
            .map(|c| format!("{}/{}", c.aliases.first().copied().unwrap_or(""), c.field))
            .collect();
        return Err(CsvError::Header(format!(
            "{}; columns understood: {}",
            problems.join("; "),
            known.join(", ")
        )));
    }
    let newlines: Vec<u64> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i as u64)
        .collect();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
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
        let values = map
            .iter()
            .zip(rec.iter())
            .filter_map(|(f, v)| f.map(|f| (f, v.trim().to_string())))
            .collect();
        rows.push(Row { line, values });
    }
    Ok(Table {
        encoding,
        rows,
        errors,
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

/// Writes rows as CSV text (quoted where needed, CRLF line ends as Excel expects).
pub fn write(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(r);
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
mod tests {
    use super::*;

    const COLS: &[Column] = &[
        Column {
            field: "code",
            aliases: &["代码"],
            required: true,
        },
        Column {
            field: "name",
            aliases: &["名称"],
            required: true,
        },
        Column {
            field: "note",
            aliases: &["备注"],
            required: false,
        },
    ];

    #[test]
    fn every_encoding_reads_the_same_rows() {
        let text = "代码,名称\r\nA1,阿莫西林\r\n\r\nA2,\"布洛芬, 缓释\"\r\n";
        let mut seen = Vec::new();
        for enc in [
            TextEncoding::Utf8,
            TextEncoding::Utf8Bom,
            TextEncoding::Gbk,
            TextEncoding::Utf16Le,
        ] {
            let bytes = encode(text, enc).unwrap();
            let t = read(&bytes, COLS).unwrap();
            assert_eq!(t.encoding, enc);
            assert_eq!(t.rows.len(), 2);
            assert_eq!(t.rows[1].get("name"), "布洛芬, 缓释");
            assert_eq!(t.rows[1].line, 4);
            seen.push(t.rows);
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn header_problems_are_all_named() {
        let e = read("名称,价格,名称\n".as_bytes(), COLS).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("missing columns: code"), "{m}");
        assert!(m.contains("unknown column \"价格\""), "{m}");
        assert!(m.contains("appears twice"), "{m}");
        assert_eq!(read(b"", COLS).unwrap_err(), CsvError::Empty);
    }

    #[test]
    fn tabs_short_rows_and_bad_bytes() {
        let t = read("Code\tName\nA\tB\nC\n".as_bytes(), COLS).unwrap();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.errors[0].line, 3);
        // 0xFF 0xFF is neither UTF-8 nor GBK.
        let e = read(&[b'c', b',', 0xFF, 0xFF, b'\n'], COLS).unwrap_err();
        assert!(matches!(e, CsvError::Encoding { offset: 2 }), "{e:?}");
    }

    #[test]
    fn gbk_refuses_characters_it_cannot_hold() {
        assert!(encode("😀", TextEncoding::Gbk).unwrap_err().contains("GBK"));
    }
}
