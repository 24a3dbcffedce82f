//! Time and reports through the real binary (issue 13, items 8-13): dates in the facility's
//! time zone, reports of a closed period that do not change afterwards, targets compared on
//! unrounded shares, the Chinese print-ready summary, unreadable referrals named, titles in
//! `doc list`. Records are made at chosen instants with `YILIAN_TEST_NOW`, which debug builds
//! honour.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use yilian_tests::*;

const WAIT: Duration = Duration::from_secs(60);

/// Runs `yilian` on `dir` as if the clock read `now` (RFC 3339).
fn run_at(dir: &Path, now: &str, args: &[&str]) -> Output {
    yilian(dir)
        .env("YILIAN_TEST_NOW", now)
        .args(args)
        .output()
        .expect("run yilian")
}

fn ok_at(dir: &Path, now: &str, args: &[&str]) -> String {
    let out = run_at(dir, now, args);
    assert!(
        out.status.success(),
        "yilian {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_at(dir: &Path, now: &str, args: &[&str]) -> serde_json::Value {
    let text = ok_at(dir, now, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: invalid JSON ({e}): {text}"))
}

const REFERRAL: &[&str] = &[
    "referral",
    "create",
    "--to",
    "CH-01",
    "--to-department",
    "普外科",
    "--from-department",
    "门诊",
    "--patient-name",
    "王五",
    "--sex",
    "F",
    "--birth-date",
    "1949-12-31",
    "--reason",
    "右下腹痛 12 小时",
    "--icd10",
    "K35.800",
    "--diagnosis",
    "急性阑尾炎？",
    "--treatment",
    "补液",
    "--doctor",
    "李医生",
    "--json",
];

/// Copies a document from one stopped node to another as its raw Automerge bytes; returns
/// the id of the copy.
fn copy_doc(from: &Path, to: &Path, id: &str, kind: &str, audience: &str) -> String {
    let file = from.with_extension(format!("{id}.automerge"));
    ok(
        from,
        &["doc", "export", id, "--out", file.to_str().unwrap()],
    );
    json(
        to,
        &[
            "doc",
            "import",
            file.to_str().unwrap(),
            "--kind",
            kind,
            "--audience",
            audience,
            "--json",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Item 8: a referral made at 00:30 on 1 April in Beijing (16:30 UTC on 31 March) is numbered
/// for 1 April; `referral show` prints the decision made at 20:00 Beijing time as 20:00, and
/// the JSON carries RFC 3339 times with +08:00 and names the zone.
#[test]
fn dates_people_read_are_in_the_facility_s_time_zone() {
    let tmp = tempdir();
    let tc = tmp.path().join("tc");
    let ch = tmp.path().join("ch");
    for (dir, code, kind) in [
        (&tc, "TC-01", "township-center"),
        (&ch, "CH-01", "county-hospital"),
    ] {
        ok(
            dir,
            &[
                "init",
                "--facility",
                code,
                "--name",
                &format!("{code} 测试机构"),
                "--kind",
                kind,
                "--time-zone",
                "Asia/Shanghai",
            ],
        );
    }
    let (code, err) = fails(
        &tmp.path().join("bad"),
        &[
            "init",
            "--facility",
            "TC-09",
            "--name",
            "x",
            "--kind",
            "township-center",
            "--time-zone",
            "Asia/Shangai",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("\"Asia/Shangai\" is not a time zone"), "{err}");

    let created = json_at(&tc, "2026-03-31T16:30:00Z", REFERRAL);
    let id = created["id"].as_str().unwrap().to_string();
    let request = &created["referral"]["request"];
    let number = request["number"].as_str().unwrap();
    assert!(number.starts_with("TC-01-20260401-"), "{number}");
    assert_eq!(request["created_ms"], 1_774_974_600_000u64);
    assert_eq!(request["created_at"], "2026-04-01T00:30:00+08:00");
    assert_eq!(created["time_zone"], "Asia/Shanghai");

    // The county accepts at 20:00 Beijing time (12:00 UTC).
    let id = copy_doc(&tc, &ch, &id, "referral", "TC-01");
    ok_at(
        &ch,
        "2026-04-01T12:00:00Z",
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-04-02T09:00",
            "--department",
            "普外科",
        ],
    );
    let text = ok(&ch, &["referral", "show", &id]);
    assert!(text.contains("2026-04-01 20:00:00"), "{text}");
    assert!(!text.contains("12:00:00"), "{text}");
    let shown = json(&ch, &["referral", "show", &id, "--json"]);
    let act = &shown["referral"]["acts"][0];
    assert_eq!(act["time"], "2026-04-01T20:00:00+08:00");
    let listed = json(&ch, &["referral", "list", "--json"]);
    assert_eq!(listed[0]["created_at"], "2026-04-01T00:30:00+08:00");
    let docs = json(&ch, &["doc", "list", "--json"]);
    assert!(
        docs[0]["updated_at"].as_str().unwrap().ends_with("+08:00"),
        "{docs}"
    );
    let status = json(&ch, &["status", "--json"]);
    assert_eq!(status["time_zone"], "Asia/Shanghai");
    assert_eq!(status["facility"]["time_zone"], "Asia/Shanghai");
}

/// Items 12 and 13: `doc list --json` carries titles; a document of kind referral that is not
/// a referral is named with the reason by `referral show`, and by `referral list` on stderr
/// while its JSON stays a list.
#[test]
fn titles_are_listed_and_unreadable_referrals_are_named() {
    let tmp = tempdir();
    let tc = tmp.path().join("tc");
    init(&tc, "TC-01", "township-center");
    let referral = json(&tc, REFERRAL);
    let number = referral["referral"]["request"]["number"]
        .as_str()
        .unwrap()
        .to_string();
    let note = json(
        &tc,
        &["note", "add", "--title", "四月库存盘点通知", "--json"],
    );
    let note_id = note["id"].as_str().unwrap().to_string();
    // The note imported again as if it were a referral.
    let file = tmp.path().join("note.automerge");
    ok(
        &tc,
        &["doc", "export", &note_id, "--out", file.to_str().unwrap()],
    );
    let bad = json(
        &tc,
        &[
            "doc",
            "import",
            file.to_str().unwrap(),
            "--kind",
            "referral",
            "--json",
        ],
    );
    let bad_id = bad["id"].as_str().unwrap().to_string();

    let docs = json(&tc, &["doc", "list", "--json"]);
    let title = |id: &str| {
        docs.as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .map(|d| d["title"].clone())
            .unwrap()
    };
    assert_eq!(title(&note_id), "四月库存盘点通知");
    assert_eq!(title(referral["id"].as_str().unwrap()), number.as_str());
    assert_eq!(docs.as_array().unwrap().len(), 3);
    let table = ok(&tc, &["doc", "list"]);
    assert!(table.contains("四月库存盘点通知"), "{table}");

    let (code, err) = fails(&tc, &["referral", "show", &bad_id[..8]]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&bad_id), "{err}");
    assert!(err.contains("it has no `request`"), "{err}");
    assert!(!err.contains("unexpected None"), "{err}");

    let out = run(&tc, &["referral", "list", "--json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not be read") && stderr.contains(&bad_id),
        "{stderr}"
    );
    assert!(stderr.contains("it has no `request`"), "{stderr}");
    let out = run(&tc, &["referral", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&bad_id));
}

fn report(dir: &Path, kind: &str, from: &str, to: &str) -> serde_json::Value {
    json(
        dir,
        &[
            "report", kind, "--from", from, "--to", to, "--format", "json",
        ],
    )
}

/// Items 9, 10 and 11 on a county hospital that met a township: the first-half report is the
/// same before and after a late acceptance and a drug's reclassification; 29.95% of a 30%
/// target is below it and shown as 29.9; the summary is a Chinese A4 page with names.
#[test]
fn a_closed_half_year_reports_the_same_later_in_chinese_on_a4() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "某县医共体");
    let ch = alliance.node("CH-01", "county-hospital", "pharmacy");
    let tc = alliance.node("TC-01", "township-center", "");
    for d in [&ch, &tc] {
        set_time_zone(d, "Asia/Shanghai");
    }
    // A referral sent on 28 June at 10:00 Beijing time, not yet decided at the end of June.
    let id = json_at(&tc, "2026-06-28T02:00:00Z", REFERRAL)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The county meets the township (its facility directory learns the name) and gets it.
    let c = NodeProcess::start(&ch);
    let t = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);
    wait_converged(&[&ch, &tc], &id, WAIT);
    wait_until(WAIT, "the county to know the township", || {
        json(&ch, &["facility", "list", "--json"])
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["code"] == "TC-01"))
    });
    // The rest happens on the county's files, at chosen times.
    assert_eq!(c.stop(), 0);
    assert_eq!(t.stop(), 0);

    // The catalog: two drugs, one essential; June dispensing 599.00 essential of 2,000.00.
    let catalog = "医保药品代码,通用名,剂型,规格,包装,生产企业,医保类别,基本药物,长处方,状态\n\
        XA01ABD075A002010100483,阿莫西林,胶囊,0.25g,24粒/盒,华北制药,甲,是,否,在用\n\
        XC08CAA011A001010100483,硝苯地平,片剂,10mg,100片/瓶,石药集团,甲,否,否,在用\n";
    let file = tmp.path().join("catalog.csv");
    std::fs::write(&file, catalog).unwrap();
    ok(&ch, &["catalog", "import", file.to_str().unwrap()]);
    for (code, amount) in [
        ("XA01ABD075A002010100483", "599.00"),
        ("XC08CAA011A001010100483", "1401.00"),
    ] {
        ok(
            &ch,
            &[
                "dispensing",
                "add",
                "--period",
                "2026-06",
                "--code",
                code,
                "--quantity",
                "10",
                "--amount",
                amount,
            ],
        );
    }

    let (from, to) = ("2026-01-01", "2026-06-30");
    let referrals = report(&ch, "referrals", from, to);
    assert_eq!(referrals["total"]["pending"], 1);
    assert_eq!(referrals["total"]["waiting_over_limit"], 1, "{referrals}");
    let essential = report(&ch, "essential-drugs", from, to);
    let row = &essential["rows"][0];
    assert_eq!(row["amount_pct"], 29.9);
    assert_eq!(row["target_pct"], 30.0);
    assert_eq!(row["below_target"], true, "29.95% is below 30%");
    let csv = ok(
        &ch,
        &[
            "report",
            "essential-drugs",
            "--from",
            from,
            "--to",
            to,
            "--format",
            "csv",
        ],
    );
    assert!(
        csv.contains("CH-01,secondary,1,2000.00,599.00,29.9,20,10,50.0,30.0,BELOW,0"),
        "{csv}"
    );

    // In July the county accepts, and on 15 July the drug stops being essential.
    ok_at(
        &ch,
        "2026-07-02T01:00:00Z",
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-07-03T09:00",
            "--department",
            "普外科",
        ],
    );
    std::fs::write(&file, catalog.replace(",甲,是,否,在用", ",甲,否,否,在用")).unwrap();
    let imported = json_at(
        &ch,
        "2026-07-15T02:00:00Z",
        &["catalog", "import", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(imported["changed"].as_array().unwrap().len(), 1);
    let entry = json(
        &ch,
        &["catalog", "show", "XA01ABD075A002010100483", "--json"],
    );
    assert_eq!(entry["entry"]["essential"], false);
    assert_eq!(
        entry["entry"]["essential_history"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(report(&ch, "referrals", from, to), referrals);
    assert_eq!(report(&ch, "essential-drugs", from, to), essential);

    // The summary for the health commission.
    let out = tmp.path().join("h1");
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
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    for heading in [
        "县域医共体 2026 年上半年运行情况报告",
        "一、双向转诊",
        "二、检查检验结果互认",
        "三、基本药物使用",
        "四、义诊",
        "决定用时中位数",
        "按金额计",
    ] {
        assert!(html.contains(heading), "no {heading:?} in the summary");
    }
    // Facilities by name: this one, and the township from the directory.
    assert!(html.contains("CH-01 facility") && html.contains("TC-01 facility"));
    assert!(html.contains("@page{size:A4"), "no A4 page rule");
    assert!(html.contains("2,000.00") && html.contains("29.9%") && html.contains("未达标"));
    for raw in [
        "median_decision_hours",
        "acceptance_pct",
        "below_target",
        "amount_pct",
        ">BELOW<",
    ] {
        assert!(!html.contains(raw), "raw field {raw:?} in the summary");
    }
    // Counts are integers: one referral is "1 例", never "1.0".
    assert!(html.contains("1 例（上转 1 / 下转 0）"), "{html}");
    assert!(!html.contains("1.0 例") && !html.contains(">1.0<"));
    // The CSV and JSON beside it keep their machine-readable names.
    let csv = std::fs::read_to_string(out.join("referrals.csv")).unwrap();
    assert!(csv.contains("median_decision_hours"));
}
