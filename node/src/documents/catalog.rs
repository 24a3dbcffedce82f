//! The shared county drug catalog (统一县域药品目录) and each facility's stock rows.
//!
//! # Layout (schema 1)
//!
//! The catalog is one well-known document (`kind = catalog`, id [`catalog_id`], audience
//! everyone): one record per drug under its national insurance drug code,
//! `{ code, generic_name, dosage_form, strength, package, manufacturer, insurance_class,
//! essential, long_prescription, status, updated_ms, updated_by, essential_history: [{
//! since_ms, essential }] }` (the history is added when the flag first changes). Only nodes with the
//! `pharmacy` role write it; entries are withdrawn, never deleted.
//!
//! Each facility's stock is another well-known document (`kind = stock`, id [`stock_id`],
//! audience everyone, root `facility`): one `{ available, quantity, updated_ms }` record per
//! drug code, written only by that facility.
//!
//! CSV import and export ([`plan_import`], [`export_csv`]) use the header mapping in
//! [`COLUMNS`] (documented in docs/operations.md); an import is planned in full first and
//! written in one transaction only when no row is rejected.

use std::collections::{BTreeMap, BTreeSet};

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::csvfile::{self, Column, CsvError, LineError, TextEncoding};
use crate::ids::DocId;

/// The schema version this build writes.
pub const SCHEMA: u64 = 1;

/// The catalog document's id (the same on every node).
pub fn catalog_id() -> DocId {
    DocId::derived("yilian/catalog/v1")
}

/// The id of a facility's stock document (the same on every node).
pub fn stock_id(facility: &str) -> DocId {
    DocId::derived(&format!("yilian/stock/v1/{facility}"))
}

/// Medical insurance class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "kebab-case")]
pub enum InsuranceClass {
    /// 甲类: fully covered.
    A,
    /// 乙类: partly covered.
    B,
}

impl InsuranceClass {
    /// The Chinese name used in files (甲 or 乙).
    pub fn as_cn(self) -> &'static str {
        match self {
            InsuranceClass::A => "甲",
            InsuranceClass::B => "乙",
        }
    }
}

impl std::str::FromStr for InsuranceClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().trim_end_matches('类') {
            "甲" | "A" | "a" => Ok(InsuranceClass::A),
            "乙" | "B" | "b" => Ok(InsuranceClass::B),
            other => Err(format!(
                "insurance_class: {other:?} is not a class (甲/乙 or A/B)"
            )),
        }
    }
}

/// Whether an entry may be prescribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(rename_all = "kebab-case")]
pub enum EntryStatus {
    /// 在用.
    Active,
    /// 停用: kept for history, not prescribed.
    Withdrawn,
}

impl EntryStatus {
    /// The Chinese name used in files.
    pub fn as_cn(self) -> &'static str {
        match self {
            EntryStatus::Active => "在用",
            EntryStatus::Withdrawn => "停用",
        }
    }
}

impl std::str::FromStr for EntryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_lowercase().as_str() {
            "" | "在用" | "active" | "启用" => Ok(EntryStatus::Active),
            "停用" | "withdrawn" | "撤销" => Ok(EntryStatus::Withdrawn),
            other => Err(format!(
                "status: {other:?} is not a status (在用/active or 停用/withdrawn)"
            )),
        }
    }
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct CatalogEntry {
    /// National insurance drug code (23 characters).
    pub code: String,
    /// 通用名.
    pub generic_name: String,
    /// 剂型.
    pub dosage_form: String,
    /// 规格.
    pub strength: String,
    /// 包装.
    pub package: String,
    /// 生产企业.
    pub manufacturer: String,
    /// 医保类别.
    pub insurance_class: InsuranceClass,
    /// 基本药物.
    pub essential: bool,
    /// Eligible for chronic-disease long prescriptions (长处方).
    pub long_prescription: bool,
    /// Active or withdrawn.
    pub status: EntryStatus,
    /// Last changed (ms since the Unix epoch).
    pub updated_ms: u64,
    /// Facility that last changed it.
    pub updated_by: String,
    /// Changes of `essential` over time, so a report for a past period counts the flag then in
    /// force. Empty while the flag never changed (it held `essential` all along).
    #[autosurgeon(missing = "Vec::new")]
    #[serde(default)]
    pub essential_history: Vec<EssentialSince>,
}

/// From `since_ms` on, the entry's essential-medicine flag was `essential`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct EssentialSince {
    /// When the flag took this value (ms since the Unix epoch; 0: from the start).
    pub since_ms: u64,
    /// The flag.
    pub essential: bool,
}

impl CatalogEntry {
    /// Whether two entries say the same thing (ignoring who changed them when, and the
    /// flag's history).
    pub fn same_content(&self, o: &CatalogEntry) -> bool {
        let strip = |e: &CatalogEntry| CatalogEntry {
            updated_ms: 0,
            updated_by: String::new(),
            essential_history: Vec::new(),
            ..e.clone()
        };
        strip(self) == strip(o)
    }

    /// The essential-medicine flag in force at `ms`: the latest change at or before it. Before
    /// the first recorded change (or with none), the earliest value known.
    pub fn essential_at(&self, ms: u64) -> bool {
        let mut h: Vec<&EssentialSince> = self.essential_history.iter().collect();
        h.sort_by_key(|x| x.since_ms);
        match h.iter().rev().find(|x| x.since_ms <= ms).or(h.first()) {
            Some(x) => x.essential,
            None => self.essential,
        }
    }

    /// Carries the flag's history from the entry this one replaces (`old`, if any) and, when
    /// the flag changes, records the change at this entry's `updated_ms` (the first change
    /// also records the old value as held from the start).
    pub fn carry_history(&mut self, old: Option<&CatalogEntry>) {
        let Some(old) = old else { return };
        let mut h = old.essential_history.clone();
        if old.essential != self.essential {
            if h.is_empty() {
                h.push(EssentialSince {
                    since_ms: 0,
                    essential: old.essential,
                });
            }
            h.push(EssentialSince {
                since_ms: self.updated_ms,
                essential: self.essential,
            });
        }
        self.essential_history = h;
    }
}

/// One facility's stock row for a drug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct StockRow {
    /// Whether the facility can dispense it now.
    pub available: bool,
    /// Units on hand, if counted.
    pub quantity: Option<u64>,
    /// Last changed (ms since the Unix epoch).
    pub updated_ms: u64,
}

/// The columns of a catalog file. The first alias is the header `catalog export` writes.
pub const COLUMNS: &[Column] = &[
    Column {
        field: "code",
        aliases: &["医保药品代码", "国家医保药品编码", "药品代码", "drug_code"],
        required: true,
    },
    Column {
        field: "generic_name",
        aliases: &["通用名", "药品通用名", "通用名称"],
        required: true,
    },
    Column {
        field: "dosage_form",
        aliases: &["剂型", "form"],
        required: true,
    },
    Column {
        field: "strength",
        aliases: &["规格", "spec"],
        required: true,
    },
    Column {
        field: "package",
        aliases: &["包装", "包装规格"],
        required: false,
    },
    Column {
        field: "manufacturer",
        aliases: &["生产企业", "厂家", "生产厂家"],
        required: false,
    },
    Column {
        field: "insurance_class",
        aliases: &["医保类别", "医保分类", "class"],
        required: true,
    },
    Column {
        field: "essential",
        aliases: &["基本药物", "国家基本药物", "是否基本药物"],
        required: true,
    },
    Column {
        field: "long_prescription",
        aliases: &["长处方", "可长处方", "是否长处方"],
        required: false,
    },
    Column {
        field: "status",
        aliases: &["状态", "使用状态"],
        required: false,
    },
];

/// Checks a national insurance drug code: 23 characters, X (western) or Z (Chinese patent)
/// then letters and digits (e.g. `XA01ABD075A002010100483`).
pub fn check_code(code: &str) -> Result<String, String> {
    let c = code.trim().to_ascii_uppercase();
    let ok = c.len() == 23
        && c.bytes().all(|b| b.is_ascii_alphanumeric())
        && (c.starts_with('X') || c.starts_with('Z'));
    if ok {
        Ok(c)
    } else {
        Err(format!(
            "code: {:?} is not a national insurance drug code (23 letters and digits starting with X or Z)",
            code.trim()
        ))
    }
}

fn required(row: &csvfile::Row, field: &str, max: usize) -> Result<String, String> {
    let v = row.get(field);
    if v.is_empty() {
        return Err(format!("{field}: is empty"));
    }
    if v.chars().count() > max {
        return Err(format!("{field}: longer than {max} characters"));
    }
    Ok(v.to_string())
}

fn entry_of(row: &csvfile::Row, by: &str, now: u64) -> Result<CatalogEntry, Vec<String>> {
    let mut errs = Vec::new();
    let mut take = |r: Result<String, String>| r.map_err(|e| errs.push(e)).unwrap_or_default();
    let code = take(check_code(row.get("code")));
    let generic_name = take(required(row, "generic_name", 200));
    let dosage_form = take(required(row, "dosage_form", 50));
    let strength = take(required(row, "strength", 100));
    let package = row.get("package").to_string();
    let manufacturer = row.get("manufacturer").to_string();
    let class = row.get("insurance_class").parse::<InsuranceClass>();
    let essential = match row.get("essential") {
        "" => Err("essential: is empty (是/否)".to_string()),
        v => csvfile::yes_no("essential", v),
    };
    let long = csvfile::yes_no("long_prescription", row.get("long_prescription"));
    let status = row.get("status").parse::<EntryStatus>();
    match (class, essential, long, status) {
        (Ok(insurance_class), Ok(essential), Ok(long_prescription), Ok(status))
            if errs.is_empty() =>
        {
            Ok(CatalogEntry {
                code,
                generic_name,
                dosage_form,
                strength,
                package,
                manufacturer,
                insurance_class,
                essential,
                long_prescription,
                status,
                updated_ms: now,
                updated_by: by.to_string(),
                essential_history: Vec::new(),
            })
        }
        (c, e, l, s) => {
            errs.extend(c.err());
            errs.extend(e.err());
            errs.extend(l.err());
            errs.extend(s.err());
            Err(errs)
        }
    }
}

/// A row of the import report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedRow {
    /// Line in the file.
    pub line: u64,
    /// Drug code.
    pub code: String,
}

/// What an import did (or, in a dry run or when rows were rejected, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The file's encoding as detected.
    pub encoding: TextEncoding,
    /// Data rows read.
    pub rows: usize,
    /// New entries.
    pub added: Vec<ImportedRow>,
    /// Entries whose content changed (other than being withdrawn).
    pub changed: Vec<ImportedRow>,
    /// Active entries the file withdraws.
    pub withdrawn: Vec<ImportedRow>,
    /// Rows identical to the catalog.
    pub unchanged: usize,
    /// Rejected rows with every reason; when any, nothing was written.
    pub rejected: Vec<LineError>,
    /// Catalog rules the result breaks without being refused (一品两规), for the generic
    /// names this import adds, changes or withdraws.
    pub warnings: Vec<String>,
    /// Cells a spreadsheet would run as formulas (CSV injection), by line and column: imported
    /// as text, and neutralised on export.
    #[serde(default)]
    pub formula_cells: Vec<LineError>,
    /// Whether the catalog was written.
    pub applied: bool,
}

/// Plans an import of `bytes` against the `current` catalog: every row validated, duplicates
/// named with the line they repeat, and the entries to write. Writes nothing.
pub fn plan_import(
    bytes: &[u8],
    current: &BTreeMap<String, CatalogEntry>,
    by: &str,
    now: u64,
) -> Result<(ImportReport, Vec<CatalogEntry>), CsvError> {
    let table = csvfile::read(bytes, COLUMNS)?;
    let mut report = ImportReport {
        encoding: table.encoding,
        rows: table.rows.len() + table.errors.len(),
        added: vec![],
        changed: vec![],
        withdrawn: vec![],
        unchanged: 0,
        rejected: table.errors,
        warnings: vec![],
        formula_cells: table.formulas,
        applied: false,
    };
    let mut first_line: BTreeMap<String, u64> = BTreeMap::new();
    let mut writes = Vec::new();
    for row in &table.rows {
        let entry = match entry_of(row, by, now) {
            Ok(e) => e,
            Err(reasons) => {
                report.rejected.push(LineError {
                    line: row.line,
                    reason: reasons.join("; "),
                });
                continue;
            }
        };
        if let Some(first) = first_line.get(&entry.code) {
            report.rejected.push(LineError {
                line: row.line,
                reason: format!("code: {} repeats line {first}", entry.code),
            });
            continue;
        }
        first_line.insert(entry.code.clone(), row.line);
        let item = ImportedRow {
            line: row.line,
            code: entry.code.clone(),
        };
        match current.get(&entry.code) {
            None => report.added.push(item),
            Some(old) if old.same_content(&entry) => {
                report.unchanged += 1;
                continue;
            }
            Some(old)
                if old.status == EntryStatus::Active && entry.status == EntryStatus::Withdrawn =>
            {
                report.withdrawn.push(item)
            }
            Some(_) => report.changed.push(item),
        }
        writes.push(entry);
    }
    report.rejected.sort_by_key(|e| e.line);
    // 一品两规 is told only about the generic names this file changes (an entry's new name and,
    // if renamed, its old one): a catalog already over the limit for some drug is not named on
    // every import of an unrelated file.
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    let mut after = current.clone();
    for e in &writes {
        touched.insert(&e.generic_name);
        touched.extend(current.get(&e.code).map(|old| old.generic_name.as_str()));
        after.insert(e.code.clone(), e.clone());
    }
    report.warnings = two_specs_violations(&after)
        .into_iter()
        .filter(|(name, _)| touched.contains(name.as_str()))
        .map(|(_, warning)| warning)
        .collect();
    Ok((report, writes))
}

/// Oral or injectable, from the dosage form's name (for 一品两规).
fn route(form: &str) -> Option<&'static str> {
    let f = form.to_lowercase();
    let oral = [
        "片", "胶囊", "颗粒", "口服", "丸", "散", "糖浆", "合剂", "tablet", "capsule", "granule",
        "oral", "syrup",
    ];
    if f.contains("注射") || f.contains("inject") {
        Some("injectable")
    } else if oral.iter().any(|o| f.contains(o)) {
        Some("oral")
    } else {
        None
    }
}

/// 一品两规: at most two oral and two injectable specifications per generic name, among
/// active entries. Returns one warning per generic name and route over the limit.
pub fn two_specs_rule(entries: &BTreeMap<String, CatalogEntry>) -> Vec<String> {
    two_specs_violations(entries)
        .into_iter()
        .map(|(_, warning)| warning)
        .collect()
}

/// [`two_specs_rule`] with the generic name of each warning.
fn two_specs_violations(entries: &BTreeMap<String, CatalogEntry>) -> Vec<(String, String)> {
    let mut specs: BTreeMap<(&str, &str), BTreeSet<(&str, &str)>> = BTreeMap::new();
    for e in entries.values().filter(|e| e.status == EntryStatus::Active) {
        if let Some(r) = route(&e.dosage_form) {
            specs
                .entry((e.generic_name.as_str(), r))
                .or_default()
                .insert((e.dosage_form.as_str(), e.strength.as_str()));
        }
    }
    specs
        .into_iter()
        .filter(|(_, s)| s.len() > 2)
        .map(|((name, r), s)| {
            let list: Vec<String> = s.iter().map(|(f, st)| format!("{f} {st}")).collect();
            let warning = format!(
                "{name}: {} {r} specifications ({}); 一品两规 allows two",
                s.len(),
                list.join(", ")
            );
            (name.to_string(), warning)
        })
        .collect()
}

/// The catalog as CSV text with the Chinese headers of [`COLUMNS`], in code order.
pub fn export_csv(entries: &BTreeMap<String, CatalogEntry>) -> String {
    let header: Vec<&str> = COLUMNS.iter().map(|c| c.aliases[0]).collect();
    let yn = |b: bool| if b { "是" } else { "否" }.to_string();
    let rows: Vec<Vec<String>> = entries
        .values()
        .map(|e| {
            vec![
                e.code.clone(),
                e.generic_name.clone(),
                e.dosage_form.clone(),
                e.strength.clone(),
                e.package.clone(),
                e.manufacturer.clone(),
                e.insurance_class.as_cn().to_string(),
                yn(e.essential),
                yn(e.long_prescription),
                e.status.as_cn().to_string(),
            ]
        })
        .collect();
    csvfile::write(&header, &rows)
}

/// Reads every entry of a catalog document. Unreadable entries are errors naming the key.
pub fn read_catalog(doc: &automerge::Automerge) -> Result<BTreeMap<String, CatalogEntry>, String> {
    super::keyed::records::<CatalogEntry>(doc)
        .into_iter()
        .map(|(k, r)| {
            r.map(|e| (k.clone(), e))
                .map_err(|e| format!("catalog entry {k}: {e}"))
        })
        .collect()
}

/// Writes entries into a catalog document in one transaction.
pub fn write_entries(
    doc: &mut automerge::Automerge,
    entries: &[CatalogEntry],
) -> Result<(), String> {
    super::keyed::put_all(
        doc,
        &[("schema", SCHEMA.into())],
        entries.iter().map(|e| (e.code.as_str(), e)),
    )
}

/// Reads a stock document: its facility and rows by drug code.
pub fn read_stock(
    doc: &automerge::Automerge,
) -> Result<(String, BTreeMap<String, StockRow>), String> {
    let facility = super::keyed::scalar_str(doc, "facility").unwrap_or_default();
    let rows = super::keyed::records::<StockRow>(doc)
        .into_iter()
        .map(|(k, r)| {
            r.map(|e| (k.clone(), e))
                .map_err(|e| format!("stock row {k}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok((facility, rows))
}

/// Writes one stock row of `facility`.
pub fn write_stock(
    doc: &mut automerge::Automerge,
    facility: &str,
    code: &str,
    row: &StockRow,
) -> Result<(), String> {
    super::keyed::put_all(
        doc,
        &[("schema", SCHEMA.into()), ("facility", facility.into())],
        [(code, row)],
    )
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod history_tests;

/// A synthetic but realistic catalog of `n` entries as CSV text (Chinese headers, two oral or
/// injectable specifications per generic name, about 40% essential medicines), for the demo,
/// benchmarks and tests. The same `n` always gives the same file.
pub fn sample_csv(n: usize) -> String {
    const NAMES: &[&str] = &[
        "阿莫西林",
        "头孢克肟",
        "左氧氟沙星",
        "阿奇霉素",
        "布洛芬",
        "对乙酰氨基酚",
        "二甲双胍",
        "格列美脲",
        "阿卡波糖",
        "硝苯地平",
        "氨氯地平",
        "缬沙坦",
        "厄贝沙坦",
        "美托洛尔",
        "阿司匹林",
        "氯吡格雷",
        "阿托伐他汀",
        "瑞舒伐他汀",
        "奥美拉唑",
        "雷贝拉唑",
        "多潘立酮",
        "蒙脱石",
        "氯雷他定",
        "西替利嗪",
        "沙丁胺醇",
        "布地奈德",
        "氨溴索",
        "甘草酸二铵",
        "呋塞米",
        "螺内酯",
        "地高辛",
        "胰岛素",
        "甲硝唑",
        "氟康唑",
        "阿昔洛韦",
        "利巴韦林",
    ];
    const FORMS: &[(&str, &str, &[&str])] = &[
        ("片剂", "A001", &["0.25g", "0.5g"]),
        ("胶囊", "A002", &["0.25g", "0.5g"]),
        ("颗粒剂", "A003", &["0.125g", "0.25g"]),
        ("注射液", "B001", &["2ml:10mg", "5ml:25mg"]),
    ];
    const MAKERS: &[&str] = &[
        "华北制药股份有限公司",
        "石药集团欧意药业有限公司",
        "国药集团致君(深圳)制药有限公司",
        "扬子江药业集团有限公司",
        "湖北科益药业股份有限公司",
    ];
    let header: Vec<&str> = COLUMNS.iter().map(|c| c.aliases[0]).collect();
    let rows: Vec<Vec<String>> = (0..n)
        .map(|i| {
            let generic = i / 2;
            let base = NAMES[generic % NAMES.len()];
            let name = if generic < NAMES.len() {
                base.to_string()
            } else {
                format!("{base}{}号", generic / NAMES.len())
            };
            let (form, form_code, strengths) = FORMS[generic % FORMS.len()];
            let code = format!(
                "X{}{:02}AB{}{:03}{form_code}{:04}{:05}",
                (b'A' + (generic % 14) as u8) as char,
                generic % 100,
                (b'A' + (generic / 1000 % 26) as u8) as char,
                generic % 1000,
                i % 2 + 1,
                10_000 + (i % MAKERS.len()) * 97
            );
            let yn = |b: bool| if b { "是" } else { "否" }.to_string();
            vec![
                code,
                name,
                form.to_string(),
                strengths[i % 2].to_string(),
                format!("{}/盒", if i % 3 == 0 { 24 } else { 12 }),
                MAKERS[i % MAKERS.len()].to_string(),
                if generic % 3 == 0 { "乙" } else { "甲" }.to_string(),
                yn(generic % 5 < 2),
                yn(generic % 4 == 0 && form != "注射液"),
                "在用".to_string(),
            ]
        })
        .collect();
    csvfile::write(&header, &rows)
}
