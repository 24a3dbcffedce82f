//! Dispensing summaries: what each facility dispensed per drug and month, so the county can
//! report essential-medicine usage against each level's target.
//!
//! # Layout (schema 1)
//!
//! One well-known document per facility and month (`kind = dispensing`, id [`summary_id`],
//! audience everyone): root scalars `facility`, `level`, `period` (`YYYY-MM`), and one
//! `{ quantity, amount_fen, updated_ms }` record per drug code. A summary row is the total for
//! the month: recording it again replaces it. Only the facility writes its own summaries.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::csvfile::{self, Column, CsvError, LineError, TextEncoding};
use crate::config::FacilityKind;
use crate::ids::DocId;

/// The schema version this build writes.
pub const SCHEMA: u64 = 1;

/// Level of care, which decides the essential-medicine usage target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// 基层: township centers and village clinics.
    Primary,
    /// 二级: most county hospitals.
    Secondary,
    /// 三级.
    Tertiary,
}

impl Level {
    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Primary => "primary",
            Level::Secondary => "secondary",
            Level::Tertiary => "tertiary",
        }
    }

    /// The level a facility kind has unless configured otherwise.
    pub fn of_kind(kind: FacilityKind) -> Level {
        match kind {
            FacilityKind::CountyHospital => Level::Secondary,
            FacilityKind::TownshipCenter | FacilityKind::VillageClinic => Level::Primary,
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "primary" => Ok(Level::Primary),
            "secondary" => Ok(Level::Secondary),
            "tertiary" => Ok(Level::Tertiary),
            _ => Err(format!(
                "unknown level {s:?}: use primary, secondary or tertiary"
            )),
        }
    }
}

/// The id of a facility's summary for a month (the same on every node).
pub fn summary_id(facility: &str, period: &str) -> DocId {
    DocId::derived(&format!("yilian/dispensing/v1/{facility}/{period}"))
}

/// One drug's total for the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct DispensedRow {
    /// Units dispensed.
    pub quantity: u64,
    /// Amount in fen (0.01 yuan).
    pub amount_fen: u64,
    /// Last recorded (ms since the Unix epoch).
    pub updated_ms: u64,
}

/// A facility's summary for one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The facility.
    pub facility: String,
    /// Its level when recorded.
    pub level: Level,
    /// `YYYY-MM`.
    pub period: String,
    /// Rows by drug code.
    pub rows: BTreeMap<String, DispensedRow>,
}

/// Checks a period: `YYYY-MM` (also `YYYY/MM`, `YYYYMM`, `YYYY年M月`), normalised.
pub fn check_period(text: &str) -> Result<String, String> {
    let t = text.trim();
    let digits: Vec<&str> = t
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let (y, m) = match digits.as_slice() {
        [ym] if ym.len() == 6 => (&ym[..4], &ym[4..]),
        [y, m] => (*y, *m),
        _ => ("", ""),
    };
    match (y.parse::<u32>(), m.parse::<u32>()) {
        (Ok(y), Ok(m)) if (2000..=2100).contains(&y) && (1..=12).contains(&m) => {
            Ok(format!("{y}-{m:02}"))
        }
        _ => Err(format!("period: {t:?} is not a month (YYYY-MM)")),
    }
}

/// Parses an amount in yuan (`1234.5`, `1,234.50`, `¥12`) into fen.
pub fn parse_amount(text: &str) -> Result<u64, String> {
    let t: String = text
        .trim()
        .trim_start_matches(['¥', '￥'])
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let bad = || {
        format!(
            "amount: {:?} is not an amount in yuan (e.g. 1234.50)",
            text.trim()
        )
    };
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let w: u64 = whole.parse().map_err(|_| bad())?;
    let f: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    w.checked_mul(100)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(bad)
}

/// Formats fen as yuan with two decimals.
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Parses a quantity (whole units).
pub fn parse_quantity(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| format!("quantity: {:?} is not a whole number of units", text.trim()))
}

/// The columns of a dispensing file.
pub const COLUMNS: &[Column] = &[
    Column {
        field: "period",
        aliases: &["统计期间", "期间", "月份"],
        required: true,
    },
    Column {
        field: "code",
        aliases: &["医保药品代码", "国家医保药品编码", "药品代码", "drug_code"],
        required: true,
    },
    Column {
        field: "generic_name",
        aliases: &["通用名", "药品通用名"],
        required: false,
    },
    Column {
        field: "quantity",
        aliases: &["数量", "发药数量"],
        required: true,
    },
    Column {
        field: "amount",
        aliases: &["金额", "金额元", "发药金额"],
        required: true,
    },
];

/// One validated row of a dispensing file or command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispensingLine {
    /// `YYYY-MM`.
    pub period: String,
    /// Drug code.
    pub code: String,
    /// Units.
    pub quantity: u64,
    /// Fen.
    pub amount_fen: u64,
}

/// What a dispensing import did or would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispensingReport {
    /// Detected encoding.
    pub encoding: TextEncoding,
    /// Rows read.
    pub rows: usize,
    /// Rows recorded (new or replacing an earlier total).
    pub recorded: usize,
    /// Months touched.
    pub periods: Vec<String>,
    /// Rejected rows; when any, nothing was written.
    pub rejected: Vec<LineError>,
    /// Cells a spreadsheet would run as formulas (CSV injection), by line and column.
    #[serde(default)]
    pub formula_cells: Vec<LineError>,
    /// Whether anything was written.
    pub applied: bool,
}

/// Reads a dispensing file. `known` tells whether a code is in the catalog (unknown codes are
/// rejected so usage rates stay meaningful).
pub fn parse_file(
    bytes: &[u8],
    known: impl Fn(&str) -> bool,
) -> Result<(DispensingReport, Vec<DispensingLine>), CsvError> {
    let table = csvfile::read(bytes, COLUMNS)?;
    let rows = table.rows.len() + table.errors.len();
    let mut rejected = table.errors;
    let mut lines = Vec::new();
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    for row in &table.rows {
        let mut errs = Vec::new();
        let period = check_period(row.get("period"))
            .map_err(|e| errs.push(e))
            .ok();
        let code = super::catalog::check_code(row.get("code"))
            .map_err(|e| errs.push(e))
            .ok();
        let quantity = parse_quantity(row.get("quantity"))
            .map_err(|e| errs.push(e))
            .ok();
        let amount = parse_amount(row.get("amount"))
            .map_err(|e| errs.push(e))
            .ok();
        if let Some(c) = &code
            && !known(c)
        {
            errs.push(format!("code: {c} is not in the county catalog"));
        }
        if let (Some(p), Some(c)) = (&period, &code)
            && let Some(first) = seen.insert((p.clone(), c.clone()), row.line)
        {
            errs.push(format!("code: {c} for {p} repeats line {first}"));
        }
        match (period, code, quantity, amount) {
            (Some(period), Some(code), Some(quantity), Some(amount_fen)) if errs.is_empty() => {
                lines.push(DispensingLine {
                    period,
                    code,
                    quantity,
                    amount_fen,
                })
            }
            _ => rejected.push(LineError {
                line: row.line,
                reason: errs.join("; "),
            }),
        }
    }
    rejected.sort_by_key(|e| e.line);
    let mut periods: Vec<String> = lines.iter().map(|l| l.period.clone()).collect();
    periods.sort();
    periods.dedup();
    Ok((
        DispensingReport {
            encoding: table.encoding,
            rows,
            recorded: lines.len(),
            periods,
            rejected,
            formula_cells: table.formulas,
            applied: false,
        },
        lines,
    ))
}

/// Reads a summary document.
pub fn read(doc: &automerge::Automerge) -> Result<Summary, String> {
    let facility = super::keyed::scalar_str(doc, "facility")
        .ok_or("a dispensing summary without a facility")?;
    let level = super::keyed::scalar_str(doc, "level")
        .ok_or("a dispensing summary without a level")?
        .parse()?;
    let period =
        super::keyed::scalar_str(doc, "period").ok_or("a dispensing summary without a period")?;
    let rows = super::keyed::records::<DispensedRow>(doc)
        .into_iter()
        .map(|(k, r)| {
            r.map(|e| (k.clone(), e))
                .map_err(|e| format!("row {k}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Summary {
        facility,
        level,
        period,
        rows,
    })
}

/// Writes rows of one month's summary in one transaction.
pub fn write(
    doc: &mut automerge::Automerge,
    facility: &str,
    level: Level,
    period: &str,
    rows: &[(String, DispensedRow)],
) -> Result<(), String> {
    super::keyed::put_all(
        doc,
        &[
            ("schema", SCHEMA.into()),
            ("facility", facility.into()),
            ("level", level.as_str().into()),
            ("period", period.into()),
        ],
        rows.iter().map(|(k, r)| (k.as_str(), r)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_amounts_and_quantities() {
        assert_eq!(check_period("2026-6").unwrap(), "2026-06");
        assert_eq!(check_period("202606").unwrap(), "2026-06");
        assert_eq!(check_period("2026年6月").unwrap(), "2026-06");
        assert!(check_period("2026-13").is_err());
        assert_eq!(parse_amount("1,234.5").unwrap(), 123_450);
        assert_eq!(parse_amount("¥12").unwrap(), 1200);
        assert!(parse_amount("12.345").is_err());
        assert!(parse_amount("-3").is_err());
        assert_eq!(yuan(123_405), "1234.05");
        assert!(parse_quantity("2.5").is_err());
    }

    #[test]
    fn a_file_with_bad_rows_is_reported_line_by_line() {
        let code = "XA01ABD075A002010100483";
        let text = format!(
            "统计期间,医保药品代码,数量,金额\n2026-06,{code},10,100\n2026-06,{code},5,50\n2026-13,{code},x,1\n2026-07,XZ,1,1\n"
        );
        let (r, lines) = parse_file(text.as_bytes(), |c| c == code).unwrap();
        assert_eq!(lines.len(), 1);
        let got: Vec<(u64, String)> = r
            .rejected
            .iter()
            .map(|e| (e.line, e.reason.clone()))
            .collect();
        assert_eq!(got[0].0, 3);
        assert!(got[0].1.contains("repeats line 2"), "{got:?}");
        assert_eq!(got[1].0, 4);
        assert!(
            got[1].1.contains("period") && got[1].1.contains("quantity"),
            "{got:?}"
        );
        assert_eq!(got[2].0, 5);
        assert!(got[2].1.contains("code"), "{got:?}");
        let (r, _) = parse_file(
            format!("期间,药品代码,数量,金额\n2026-06,{code},1,1\n").as_bytes(),
            |_| false,
        )
        .unwrap();
        assert!(r.rejected[0].reason.contains("not in the county catalog"));
    }

    #[test]
    fn annotated_headers_formula_cells_and_a_header_only_file() {
        let code = "XA01ABD075A002010100483";
        let text = format!(
            "【统计期间】,医保药品代码,通用名(参考),发药数量（盒）,发药金额（元）\n2026-06,{code},=1+1,10,100\n"
        );
        let (r, lines) = parse_file(text.as_bytes(), |_| true).unwrap();
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        assert_eq!(lines[0].amount_fen, 10_000);
        assert_eq!(r.formula_cells.len(), 1, "{:?}", r.formula_cells);
        assert_eq!(r.formula_cells[0].line, 2);
        assert!(r.formula_cells[0].reason.contains("(generic_name)"));
        let e = parse_file("统计期间,医保药品代码,数量,金额\r\n".as_bytes(), |_| true).unwrap_err();
        assert_eq!(e, CsvError::NoRows);
    }
}
