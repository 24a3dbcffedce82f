//! Text encodings of CSV files: detecting them on import (byte-order marks, UTF-8, GBK, UTF-16
//! with or without a mark), encoding on export, and recognising files that are not text at all
//! — an Excel workbook renamed to `.csv` — so the pharmacist is told what to do instead of
//! where decoding broke.

use serde::{Deserialize, Serialize};

use super::CsvError;

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
    /// UTF-16 little-endian (Excel's "Unicode text"), with a byte-order mark or without.
    #[serde(rename = "utf-16le")]
    Utf16Le,
    /// UTF-16 big-endian, with a byte-order mark or without.
    #[serde(rename = "utf-16be")]
    Utf16Be,
}

impl TextEncoding {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Utf8Bom => "utf-8-bom",
            TextEncoding::Gbk => "gbk",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
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

const ZIP: &[u8] = b"PK\x03\x04";
const OLE2: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a file that is not text is, judged by its first bytes (and, for containers, by the
/// names of the parts inside, which both formats store uncompressed): `Ok` for a spreadsheet,
/// which can be saved as CSV, `Err` for anything else.
fn binary_kind(bytes: &[u8]) -> Option<Result<&'static str, &'static str>> {
    if bytes.starts_with(ZIP) {
        // An .xlsx keeps its sheets under `xl/`; an .ods names its type in `mimetype`.
        return Some(if contains(bytes, b"xl/") {
            Ok("an Excel workbook (.xlsx)")
        } else if contains(bytes, b"opendocument.spreadsheet") {
            Ok("an OpenDocument spreadsheet (.ods)")
        } else {
            Err("a ZIP archive")
        });
    }
    if bytes.starts_with(OLE2) {
        // An .xls keeps its sheets in a stream named "Workbook" (or "Book" before Excel 97),
        // its name stored in UTF-16LE.
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let xls = ["Workbook", "Book"]
            .iter()
            .any(|name| contains(bytes, &utf16(name)));
        return Some(if xls {
            Ok("an Excel 97-2003 workbook (.xls)")
        } else {
            Err("a Microsoft Office document (OLE2)")
        });
    }
    None
}

/// Which UTF-16 a file without a byte-order mark is in, if it is: CSV text never holds NUL,
/// but UTF-16 holds one in every ASCII character (its commas, line ends and codes), after it
/// in little-endian order, before it in big-endian.
fn utf16_without_bom(bytes: &[u8]) -> Option<TextEncoding> {
    let sample = &bytes[..bytes.len().min(64 * 1024)];
    let (mut even, mut odd) = (0usize, 0usize);
    for (i, b) in sample.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 {
                even += 1;
            } else {
                odd += 1;
            }
        }
    }
    if odd > 4 * even {
        Some(TextEncoding::Utf16Le)
    } else if even > 4 * odd {
        Some(TextEncoding::Utf16Be)
    } else {
        None
    }
}

/// Decodes UTF-16 `bytes` (the mark, if any, already removed; `base` is its length, for the
/// offsets in errors).
fn decode_utf16(bytes: &[u8], enc: TextEncoding, base: usize) -> Result<String, CsvError> {
    if bytes.len() % 2 == 1 {
        return Err(CsvError::Utf16 {
            offset: base + bytes.len() - 1,
        });
    }
    let units = bytes.chunks_exact(2).map(|p| match enc {
        TextEncoding::Utf16Be => u16::from_be_bytes([p[0], p[1]]),
        _ => u16::from_le_bytes([p[0], p[1]]),
    });
    let mut text = String::with_capacity(bytes.len());
    let mut at = 0;
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => {
                at += c.len_utf16();
                text.push(c);
            }
            Err(_) => {
                return Err(CsvError::Utf16 {
                    offset: base + at * 2,
                });
            }
        }
    }
    Ok(text)
}

/// Decodes file bytes, detecting the encoding: a UTF-8 or UTF-16 byte-order mark, else UTF-16
/// by its NUL bytes, else valid UTF-8, else GBK (GB18030). A workbook or archive is named as
/// such; text that is none of these encodings is an error naming where it broke.
pub fn decode(bytes: &[u8]) -> Result<(String, TextEncoding), CsvError> {
    if bytes.is_empty() {
        return Err(CsvError::Empty);
    }
    match binary_kind(bytes) {
        Some(Ok(spreadsheet)) => return Err(CsvError::Workbook(spreadsheet)),
        Some(Err(other)) => return Err(CsvError::NotText(other)),
        None => {}
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return std::str::from_utf8(rest)
            .map(|s| (s.to_string(), TextEncoding::Utf8Bom))
            .map_err(|e| CsvError::Encoding {
                offset: e.valid_up_to() + 3,
            });
    }
    for (mark, enc) in [
        ([0xFF, 0xFE], TextEncoding::Utf16Le),
        ([0xFE, 0xFF], TextEncoding::Utf16Be),
    ] {
        if let Some(rest) = bytes.strip_prefix(&mark) {
            return Ok((decode_utf16(rest, enc, 2)?, enc));
        }
    }
    if let Some(enc) = utf16_without_bom(bytes) {
        return Ok((decode_utf16(bytes, enc, 0)?, enc));
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
            out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            Ok(out)
        }
        TextEncoding::Utf16Be => {
            let mut out = vec![0xFE, 0xFF];
            out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
            Ok(out)
        }
    }
}
