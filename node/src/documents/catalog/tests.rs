use super::*;

fn plan(bytes: &[u8], current: &BTreeMap<String, CatalogEntry>) -> ImportReport {
    plan_import(bytes, current, "CH-01", 1).unwrap().0
}

fn catalog_of(bytes: &[u8]) -> BTreeMap<String, CatalogEntry> {
    let (report, writes) = plan_import(bytes, &BTreeMap::new(), "CH-01", 1).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    writes.into_iter().map(|e| (e.code.clone(), e)).collect()
}

#[test]
fn a_realistic_3000_row_catalog_reads_the_same_in_every_encoding() {
    let text = sample_csv(3000);
    let mut catalogs = Vec::new();
    for enc in [TextEncoding::Utf8, TextEncoding::Utf8Bom, TextEncoding::Gbk] {
        let bytes = csvfile::encode(&text, enc).unwrap();
        let (report, writes) = plan_import(&bytes, &BTreeMap::new(), "CH-01", 1).unwrap();
        assert_eq!(report.encoding, enc);
        assert_eq!(report.rows, 3000);
        assert_eq!(report.added.len(), 3000);
        assert!(report.rejected.is_empty(), "{:?}", &report.rejected[..3]);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(report.added[0].line, 2);
        catalogs.push(writes);
    }
    assert!(catalogs.windows(2).all(|w| w[0] == w[1]));
    let essential = catalogs[0].iter().filter(|e| e.essential).count();
    assert!((1000..1400).contains(&essential), "{essential}");
    assert!(catalogs[0].iter().any(|e| e.generic_name == "阿莫西林"
        && e.insurance_class == InsuranceClass::B
        && e.manufacturer.contains("华北")));
}

#[test]
fn export_then_import_changes_nothing() {
    let current = catalog_of(sample_csv(50).as_bytes());
    let again = export_csv(&current);
    let r = plan(again.as_bytes(), &current);
    assert_eq!(r.unchanged, 50);
    assert!(r.added.is_empty() && r.changed.is_empty() && r.withdrawn.is_empty());
}

#[test]
fn every_bad_line_is_reported_with_its_reason() {
    let good = sample_csv(3);
    let mut lines: Vec<&str> = good.lines().collect();
    let dup = lines[1].to_string();
    let bad_class = lines[2].replace(",甲,", ",丙,").replace(",乙,", ",丙,");
    lines[2] = &bad_class;
    let short = "XA01ABA001A001000110000,阿莫西林";
    let bad_code = lines[3].replacen('X', "Q", 1);
    lines[3] = &bad_code;
    lines.push(&dup);
    lines.push(short);
    let text = lines.join("\n");
    let r = plan(text.as_bytes(), &BTreeMap::new());
    let got: Vec<(u64, &str)> = r
        .rejected
        .iter()
        .map(|e| (e.line, e.reason.as_str()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0].0, 3);
    assert!(got[0].1.contains("insurance_class: \"丙\""), "{got:?}");
    assert_eq!(got[1].0, 4);
    assert!(got[1].1.starts_with("code:"), "{got:?}");
    assert_eq!(got[2].0, 5);
    assert!(got[2].1.contains("repeats line 2"), "{got:?}");
    assert_eq!(got[3].0, 6);
    assert!(got[3].1.contains("has 2 cells"), "{got:?}");
}

#[test]
fn a_missing_column_refuses_the_file_naming_it() {
    let text = "医保药品代码,通用名,剂型,规格,医保类别\nX,Y,Z,W,甲\n";
    let e = plan_import(text.as_bytes(), &BTreeMap::new(), "CH-01", 1).unwrap_err();
    assert!(e.to_string().contains("missing columns: essential"), "{e}");
}

#[test]
fn changes_and_withdrawals_are_told_apart_and_the_two_spec_rule_warns() {
    let current = catalog_of(sample_csv(4).as_bytes());
    let text = sample_csv(4);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1] = lines[1].replace("在用", "停用");
    lines[2] = lines[2].replace("12/盒", "36/盒").replace("24/盒", "36/盒");
    // A third oral specification of the first generic name.
    let third = lines[3]
        .replacen("0.5g", "1g", 1)
        .replacen(",0.25g,", ",1g,", 1);
    let mut third_cells: Vec<String> = third.split(',').map(str::to_string).collect();
    third_cells[0] = "XA00ABA000A001000910000".into();
    third_cells[1] = "阿莫西林".into();
    lines.push(third_cells.join(","));
    let r = plan(lines.join("\n").as_bytes(), &current);
    assert_eq!(
        r.withdrawn.iter().map(|x| x.line).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(
        r.changed.iter().map(|x| x.line).collect::<Vec<_>>(),
        vec![3]
    );
    assert_eq!(r.added.iter().map(|x| x.line).collect::<Vec<_>>(), vec![6]);
    assert_eq!(r.unchanged, 2);
    // The withdrawn entry no longer counts: 阿莫西林 has its second spec plus the new one.
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    lines[1] = lines[1].replace("停用", "在用");
    let r = plan(lines.join("\n").as_bytes(), &current);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("阿莫西林: 3 oral"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn codes_are_checked() {
    assert_eq!(
        check_code(" xa01abd075a002010100483 ").unwrap(),
        "XA01ABD075A002010100483"
    );
    assert!(check_code("XA01").is_err());
    assert!(check_code("AA01ABD075A002010100483").is_err());
}

#[test]
fn stock_rows_merge_with_the_facility_named() {
    let mut a = automerge::Automerge::new();
    let row = StockRow {
        available: true,
        quantity: Some(40),
        updated_ms: 5,
    };
    write_stock(&mut a, "TC-01", "XA01ABD075A002010100483", &row).unwrap();
    let (facility, rows) = read_stock(&a).unwrap();
    assert_eq!(facility, "TC-01");
    assert_eq!(rows["XA01ABD075A002010100483"], row);
    assert_ne!(stock_id("TC-01"), stock_id("TC-02"));
    assert_eq!(catalog_id(), catalog_id());
}

/// A catalog whose 阿莫西林 already breaks 一品两规: three oral specifications.
fn over_the_limit() -> (String, BTreeMap<String, CatalogEntry>) {
    let text = sample_csv(4);
    let third: Vec<String> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|c| match c {
            "0.25g" | "0.5g" => "1g".to_string(),
            c => c.to_string(),
        })
        .collect();
    let mut third = third;
    third[0] = "XA00ABA000A001000910000".into();
    let all = format!("{}\r\n{}\r\n", text.trim_end(), third.join(","));
    let current = catalog_of(all.as_bytes());
    assert_eq!(two_specs_rule(&current).len(), 1);
    (text, current)
}

#[test]
fn the_two_spec_rule_warns_only_about_drugs_the_file_touches() {
    let (text, current) = over_the_limit();
    let header = text.lines().next().unwrap();
    // A file about another drug, and the whole catalog again unchanged: no warning.
    let other = text.lines().nth(3).unwrap().replace("12/盒", "48/盒");
    let r = plan(format!("{header}\n{other}\n").as_bytes(), &current);
    assert_eq!(r.changed.len(), 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let r = plan(export_csv(&current).as_bytes(), &current);
    assert_eq!(r.unchanged, current.len());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // A file that changes one 阿莫西林 entry (its package): the drug is named.
    let amox = text.lines().nth(1).unwrap().replace("24/盒", "6/盒");
    let r = plan(format!("{header}\n{amox}\n").as_bytes(), &current);
    assert_eq!(r.changed.len(), 1);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("阿莫西林: 3 oral"),
        "{:?}",
        r.warnings
    );
    // Renaming an entry from 阿莫西林 to 头孢克肟 changes both counts: 阿莫西林 is back within
    // the limit, 头孢克肟 goes over it.
    let renamed = text
        .lines()
        .nth(1)
        .unwrap()
        .replacen("阿莫西林", "头孢克肟", 1);
    let r = plan(format!("{header}\n{renamed}\n").as_bytes(), &current);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("头孢克肟: 3 oral"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn headers_with_annotations_as_hospital_systems_write_them() {
    let header =
        "【医保药品代码】,通用名,剂型,规格（单位）,医保类别(甲/乙),基本药物(是/否),[包装],生产企业";
    let text =
        format!("{header}\nXA01ABD075A002010100483,阿莫西林,胶囊,0.25g,甲,是,24粒/盒,华北制药\n");
    let (r, writes) = plan_import(text.as_bytes(), &BTreeMap::new(), "CH-01", 1).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(writes[0].insurance_class, InsuranceClass::A);
    assert_eq!(writes[0].package, "24粒/盒");
}

#[test]
fn formula_cells_warn_on_import_and_export_as_text_then_import_unchanged() {
    let header = sample_csv(0);
    let text = format!(
        "{}\"XA01ABD075A002010100483\",\"=HYPERLINK(\"\"http://x.cn\"\",\"\"点击查看说明书\"\")\",胶囊,0.25g,24/盒,=cmd|' /C calc'!A0,甲,是,否,在用\r\n",
        header
    );
    let (r, writes) = plan_import(text.as_bytes(), &BTreeMap::new(), "CH-01", 1).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let cells: Vec<(u64, &str)> = r
        .formula_cells
        .iter()
        .map(|w| (w.line, w.reason.as_str()))
        .collect();
    assert_eq!(cells.len(), 2, "{cells:?}");
    assert!(
        cells[0]
            .1
            .starts_with("column \"通用名\" (generic_name) starts with '='"),
        "{cells:?}"
    );
    assert!(
        cells[1].1.starts_with("column \"生产企业\" (manufacturer)"),
        "{cells:?}"
    );
    assert_eq!(
        writes[0].generic_name,
        "=HYPERLINK(\"http://x.cn\",\"点击查看说明书\")"
    );
    let current: BTreeMap<_, _> = writes.into_iter().map(|e| (e.code.clone(), e)).collect();
    let out = export_csv(&current);
    assert!(
        out.contains(",\"'=HYPERLINK(\"\"http://x.cn\"\",\"\"点击查看说明书\"\")\","),
        "{out}"
    );
    assert!(out.contains(",'=cmd|' /C calc'!A0,"), "{out}");
    let again = plan(out.as_bytes(), &current);
    assert_eq!(again.unchanged, 1);
    assert!(again.formula_cells.is_empty(), "{:?}", again.formula_cells);
}

#[test]
fn a_header_only_file_is_refused() {
    let e = plan_import(sample_csv(0).as_bytes(), &BTreeMap::new(), "CH-01", 1).unwrap_err();
    assert!(e.to_string().contains("no data rows"), "{e}");
}
