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
        TextEncoding::Utf16Be,
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

/// The cells of CSV text as a spreadsheet would get them (quotes undone, nothing trimmed).
fn raw_cells(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn formula_cells_are_written_as_text() {
    let cells = [
        (
            "=HYPERLINK(\"http://x.cn\",\"点击查看说明书\")",
            "'=HYPERLINK(\"http://x.cn\",\"点击查看说明书\")",
        ),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+2", "'+1+2"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        (" =1+1", "' =1+1"),
        // An apostrophe already in front gets one more, so import can take one back.
        ("'=1+1", "''=1+1"),
        // Numbers and the lone dash reports print for "no value" cannot run anything.
        ("-5", "-5"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("-", "-"),
        ("0.25g", "0.25g"),
        ("阿莫西林", "阿莫西林"),
        ("'quoted'", "'quoted'"),
        ("", ""),
    ];
    let row: Vec<String> = cells.iter().map(|(c, _)| c.to_string()).collect();
    let text = write(&["h"; 17], &[row]);
    let got = raw_cells(&text);
    let want: Vec<String> = cells.iter().map(|(_, w)| w.to_string()).collect();
    assert_eq!(got[1], want);
    // Headers go through the same rule.
    assert_eq!(raw_cells(&write(&["=h"], &[]))[0], vec!["'=h"]);
}

#[test]
fn import_takes_back_the_export_mark_so_a_round_trip_keeps_every_value() {
    let values = [
        "=HYPERLINK(\"http://x.cn\",\"说明书\")",
        "=cmd|' /C calc'!A0",
        "@x",
        "-2+3",
        "'=1+1",
        "''@a",
        "-5",
        "-",
        "'plain",
        "'",
    ];
    let rows: Vec<Vec<String>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| vec![format!("A{i}"), v.to_string()])
        .collect();
    let t = read(write(&["代码", "名称"], &rows).as_bytes(), COLS).unwrap();
    let got: Vec<&str> = t.rows.iter().map(|r| r.get("name")).collect();
    assert_eq!(got, values);
}

#[test]
fn formula_cells_are_imported_as_text_with_a_warning_naming_line_and_column() {
    let text = "代码,名称,备注\nA1,\"=HYPERLINK(\"\"http://x.cn\"\",\"\"说明书\"\")\",-5\nA2,'=1+1,  @SUM(A1)\nA3,-,+\n";
    let t = read(text.as_bytes(), COLS).unwrap();
    assert_eq!(
        t.rows[0].get("name"),
        "=HYPERLINK(\"http://x.cn\",\"说明书\")"
    );
    assert_eq!(t.rows[0].get("note"), "-5");
    // The export's mark comes off and draws no warning: the file was safe.
    assert_eq!(t.rows[1].get("name"), "=1+1");
    assert_eq!(t.rows[1].get("note"), "@SUM(A1)");
    let got: Vec<(u64, &str)> = t
        .formulas
        .iter()
        .map(|w| (w.line, w.reason.as_str()))
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].0, 2);
    assert!(
        got[0]
            .1
            .starts_with("column \"名称\" (name) starts with '='"),
        "{got:?}"
    );
    assert_eq!(got[1].0, 3);
    assert!(
        got[1]
            .1
            .starts_with("column \"备注\" (note) starts with '@'"),
        "{got:?}"
    );
    assert_eq!(got[2].0, 4);
    assert!(
        got[2]
            .1
            .starts_with("column \"备注\" (note) starts with '+'"),
        "{got:?}"
    );
}

#[test]
fn a_header_without_rows_is_refused() {
    for text in ["代码,名称\r\n", "代码,名称", "代码,名称\r\n\r\n,\r\n"] {
        let e = read(text.as_bytes(), COLS).unwrap_err();
        assert!(e.to_string().contains("no data rows"), "{text:?}: {e}");
    }
}

#[test]
fn workbooks_are_named_instead_of_decoded() {
    let mut xlsx = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
    xlsx.extend_from_slice(b"[Content_Types].xml\x9d\x93\xcb\x6e\xc2 ... xl/workbook.xml");
    let e = read(&xlsx, COLS).unwrap_err().to_string();
    assert!(e.contains("an Excel workbook (.xlsx)"), "{e}");
    assert!(e.contains("save it as CSV"), "{e}");
    let mut xls = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    xls.extend_from_slice(&[0; 64]);
    xls.extend("Workbook".encode_utf16().flat_map(u16::to_le_bytes));
    let e = read(&xls, COLS).unwrap_err().to_string();
    assert!(e.contains("an Excel 97-2003 workbook (.xls)"), "{e}");
    assert!(e.contains("save it as CSV"), "{e}");
    let mut ods = b"PK\x03\x04\x14\x00\x00\x00mimetype".to_vec();
    ods.extend_from_slice(b"application/vnd.oasis.opendocument.spreadsheet");
    let e = read(&ods, COLS).unwrap_err().to_string();
    assert!(e.contains("OpenDocument spreadsheet (.ods)"), "{e}");
    let zip = b"PK\x03\x04\x14\x00\x00\x00readme.txt".to_vec();
    let e = read(&zip, COLS).unwrap_err().to_string();
    assert!(e.contains("a ZIP archive"), "{e}");
}

#[test]
fn utf16_big_endian_and_without_a_byte_order_mark() {
    let text = "代码\t名称\r\nA1\t阿莫西林\r\n";
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be_bom: Vec<u8> = [0xFE, 0xFF].into_iter().chain(be.clone()).collect();
    for (what, bytes) in [("BE with BOM", be_bom), ("BE", be), ("LE", le)] {
        let t = read(&bytes, COLS).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(t.rows.len(), 1, "{what}");
        assert_eq!(t.rows[0].get("name"), "阿莫西林", "{what}");
        assert_eq!(t.rows[0].line, 2, "{what}");
    }
    // An odd number of bytes is not UTF-16.
    let e = read(&[0xFE, 0xFF, 0x00, 0x41, 0x00], COLS).unwrap_err();
    assert_eq!(e, CsvError::Utf16 { offset: 4 });
    assert!(e.to_string().contains("UTF-16"), "{e}");
}

#[test]
fn bracketed_annotations_in_headers_are_ignored() {
    for header in [
        "【代码】,名称(甲/乙),备注（选填）",
        "[code],名称（元）,【备注】",
        "代码(必填),[名称],备注(x)",
        "（代码）,名称［中文］,〔备注〕",
        // The old reading (brackets dropped, their text kept) still works.
        "代(码),名称,备注",
    ] {
        let t = read(format!("{header}\nA1,阿莫西林,x\n").as_bytes(), COLS)
            .unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(t.rows[0].get("code"), "A1", "{header}");
        assert_eq!(t.rows[0].get("name"), "阿莫西林", "{header}");
        assert_eq!(t.rows[0].get("note"), "x", "{header}");
    }
    // An annotation is no column name, and a name cannot appear twice in disguise.
    let e = read("代码,名称,(甲/乙)\n".as_bytes(), COLS)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown column \"(甲/乙)\""), "{e}");
    let e = read("代码,名称,名称(甲/乙)\n".as_bytes(), COLS)
        .unwrap_err()
        .to_string();
    assert!(e.contains("column \"名称(甲/乙)\" appears twice"), "{e}");
}

#[test]
fn gbk_refuses_characters_it_cannot_hold() {
    assert!(encode("😀", TextEncoding::Gbk).unwrap_err().contains("GBK"));
}
