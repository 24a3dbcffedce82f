//! The semiannual summary for the health commission (`summary.html`): one Chinese page, ready to
//! print on A4, with each report's findings, a chart and its table. Facilities appear by name
//! (from the facility directory) with their code; counts are integers, amounts in yuan and
//! counts carry thousands separators, shares are percentages. The CSV and JSON files beside it
//! keep their machine-readable field names; this page is for people.

use std::collections::BTreeMap;
use std::fmt::Write;

use yilian_node::documents::dispensing::{Level, yuan};
use yilian_node::ids::FacilityCode;
use yilian_node::reports::essential::{EssentialReport, Metric};
use yilian_node::reports::outreach::OutreachReport;
use yilian_node::reports::recognition::RecognitionReport;
use yilian_node::reports::referrals::{ReferralReport, ReferralRow};
use yilian_node::reports::{Period, Report};

use super::svg::{BLUE, Bar, RED, TEAL, bars, esc};

/// Facility names by code, for showing facilities as people know them.
#[derive(Debug, Default)]
pub(crate) struct Names(BTreeMap<String, String>);

impl Names {
    /// Names from (code, name) pairs.
    pub(crate) fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Names {
        Names(pairs.into_iter().collect())
    }

    /// The facility's name, or its code when the directory does not know it.
    fn name(&self, code: &str) -> String {
        match code {
            "all" => "合计".to_string(),
            c => self.0.get(c).cloned().unwrap_or_else(|| c.to_string()),
        }
    }

    /// Name and code, as HTML (the code small and grey).
    fn cell(&self, code: &str) -> String {
        match self.0.get(code) {
            Some(n) => format!(r#"{}<span class="code"> {}</span>"#, esc(n), esc(code)),
            None => esc(&self.name(code)),
        }
    }

    fn list(&self, codes: &[String]) -> String {
        codes
            .iter()
            .map(|c| self.name(c))
            .collect::<Vec<_>>()
            .join("、")
    }
}

/// What the page is about.
pub(crate) struct Page<'a> {
    /// Year.
    pub(crate) year: i16,
    /// 1 or 2.
    pub(crate) half: u8,
    /// The period.
    pub(crate) period: Period,
    /// Only this facility, if set.
    pub(crate) facility: Option<&'a FacilityCode>,
    /// Facility names.
    pub(crate) names: &'a Names,
    /// When it was made, local time, and the zone's name.
    pub(crate) generated: String,
}

/// An integer with thousands separators: 12,345.
fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Fen as yuan with thousands separators: 1,599.00.
fn money(fen: u64) -> String {
    let text = yuan(fen);
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    format!("{}.{cents}", int(whole.parse().unwrap_or(0)))
}

/// A share as shown in the reports (one decimal), or a dash when there is nothing to divide.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{x:.1}%"))
}

/// A target percentage without a useless decimal: 80%, 32.5%.
fn target(t: f64) -> String {
    if t.fract() == 0.0 {
        format!("{t:.0}%")
    } else {
        format!("{t:.1}%")
    }
}

fn decimal(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{x:.1}"))
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Primary => "基层",
        Level::Secondary => "二级",
        Level::Tertiary => "三级",
    }
}

fn class(c: &str) -> &str {
    match c {
        "lab" => "检验",
        "imaging" => "检查（影像）",
        "all" => "合计",
        other => other,
    }
}

fn retest_reason(r: &str) -> &str {
    match r {
        "condition-changed" => "病情变化",
        "fast-changing" => "指标变化快",
        "critical" => "危急（术前、输血等）",
        "emergency" => "急诊急救",
        "forensic" => "司法或伤残鉴定",
        "patient-request" => "患者要求",
        "lab-failed-qa" => "出具机构质控不合格",
        "too-old" => "超出时效",
        "other" => "其他",
        other => other,
    }
}

/// A table: Chinese headers, then rows of (cell HTML, numeric?).
fn table(headers: &[&str], rows: &[Vec<(String, bool)>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for (cell, numeric) in row {
            if *numeric {
                let _ = write!(s, r#"<td class="n">{cell}</td>"#);
            } else {
                let _ = write!(s, "<td>{cell}</td>");
            }
        }
        s.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(
            s,
            r#"<tr><td colspan="{}">本期无数据</td></tr>"#,
            headers.len()
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn t(s: impl Into<String>) -> (String, bool) {
    (esc(&s.into()), false)
}

fn n(s: impl Into<String>) -> (String, bool) {
    (esc(&s.into()), true)
}

fn referrals(r: &ReferralReport, names: &Names) -> (Vec<String>, String) {
    let total = &r.total;
    let mut findings = vec![format!(
        "本期转诊共 {} 例：上转 {} 例，下转 {} 例；接收 {} 例{}；自申请至首次决定用时中位数 {} 小时；绿色通道占 {}。",
        int(total.up + total.down),
        int(total.up),
        int(total.down),
        int(total.accepted),
        total
            .acceptance_pct
            .map(|p| format!("（占已决定的 {p:.1}%）"))
            .unwrap_or_default(),
        decimal(total.median_decision_hours),
        pct(total.green_channel_pct)
    )];
    if !r.waiting.is_empty() {
        findings.push(format!(
            "期末有 {} 例转诊等待决定超过 {} 小时。",
            int(r.waiting.len() as u64),
            r.waiting_limit_hours
        ));
    }
    let mut by: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for row in &r.rows {
        let e = by.entry(row.facility.as_str()).or_default();
        e.0 += row.up;
        e.1 += row.down;
    }
    let items: Vec<Bar> = by
        .into_iter()
        .map(|(f, (up, down))| Bar {
            label: names.name(f),
            segments: vec![(up as f64, BLUE), (down as f64, TEAL)],
            value_text: format!(
                "{} 例（上转 {} / 下转 {}）",
                int(up + down),
                int(up),
                int(down)
            ),
            target: None,
        })
        .collect();
    let chart = bars(
        "各机构转出的转诊数（例）",
        &[(BLUE, "上转"), (TEAL, "下转")],
        &items,
        0.0,
    );
    let row = |x: &ReferralRow| {
        vec![
            t(if x.month == "all" {
                "全期".to_string()
            } else {
                x.month.clone()
            }),
            (names.cell(&x.facility), false),
            n(int(x.up)),
            n(int(x.down)),
            n(int(x.accepted)),
            n(int(x.rejected)),
            n(int(x.cancelled)),
            n(int(x.pending)),
            n(pct(x.acceptance_pct)),
            n(decimal(x.median_decision_hours)),
            n(int(x.green_channel)),
            n(pct(x.green_channel_pct)),
            n(int(x.waiting_over_limit)),
        ]
    };
    let rows: Vec<_> = r
        .rows
        .iter()
        .chain(std::iter::once(&r.total))
        .map(row)
        .collect();
    let mut html = chart;
    html.push_str(&table(
        &[
            "月份",
            "转出机构",
            "上转",
            "下转",
            "接收",
            "拒绝",
            "撤销",
            "待决定",
            "接收率",
            "决定用时中位数（小时）",
            "绿色通道",
            "绿色通道占比",
            &format!("等待超过 {} 小时", r.waiting_limit_hours),
        ],
        &rows,
    ));
    if !r.waiting.is_empty() {
        let rows: Vec<_> = r
            .waiting
            .iter()
            .map(|w| {
                vec![
                    t(w.number.clone()),
                    (names.cell(&w.from), false),
                    (names.cell(&w.to), false),
                    n(format!("{:.1}", w.hours)),
                    t(if w.green_channel { "是" } else { "否" }),
                ]
            })
            .collect();
        let _ = write!(
            html,
            "<h3>等待决定超过 {} 小时的转诊</h3>{}",
            r.waiting_limit_hours,
            table(
                &[
                    "转诊单号",
                    "转出机构",
                    "接收机构",
                    "已等待（小时）",
                    "绿色通道"
                ],
                &rows
            )
        );
    }
    (findings, html)
}

fn recognition(r: &RecognitionReport, names: &Names) -> (Vec<String>, String) {
    let total = &r.total;
    let mut findings = vec![format!(
        "本期检查检验结果 {} 项，可互认 {} 项（{}），其中仍复查 {} 项。",
        int(total.results),
        int(total.recognised),
        pct(total.recognition_pct),
        int(total.retested)
    )];
    if let Some((reason, count)) = r.retest_reasons.iter().max_by_key(|(_, c)| **c) {
        findings.push(format!(
            "最常见的复查原因：{}（{} 次）。",
            retest_reason(reason),
            int(*count)
        ));
    }
    let items: Vec<Bar> = r
        .rows
        .iter()
        .map(|x| Bar {
            label: format!("{} {}", names.name(&x.facility), class(&x.class)),
            segments: vec![(x.recognition_pct.unwrap_or(0.0), BLUE)],
            value_text: format!(
                "{}（{}/{} 项）",
                pct(x.recognition_pct),
                int(x.recognised),
                int(x.results)
            ),
            target: None,
        })
        .collect();
    let mut html = bars("各机构检查检验结果可互认比例（%）", &[], &items, 100.0);
    let rows: Vec<_> = r
        .rows
        .iter()
        .chain(std::iter::once(&r.total))
        .map(|x| {
            vec![
                (names.cell(&x.facility), false),
                t(class(&x.class)),
                n(int(x.results)),
                n(int(x.recognised)),
                n(pct(x.recognition_pct)),
                n(int(x.retested)),
            ]
        })
        .collect();
    html.push_str(&table(
        &[
            "出具机构",
            "类别",
            "结果数",
            "可互认",
            "可互认比例",
            "仍复查",
        ],
        &rows,
    ));
    if !r.retest_reasons.is_empty() {
        let rows: Vec<_> = r
            .retest_reasons
            .iter()
            .map(|(k, v)| vec![t(retest_reason(k)), n(int(*v))])
            .collect();
        let _ = write!(
            html,
            "<h3>复查原因</h3>{}",
            table(&["复查原因", "次数"], &rows)
        );
    }
    (findings, html)
}

fn essential(r: &EssentialReport, names: &Names) -> (Vec<String>, String) {
    let by = match r.metric {
        Metric::Amount => "按金额计",
        Metric::Quantity => "按数量计",
    };
    let measured = |x: &yilian_node::reports::essential::EssentialRow| match r.metric {
        Metric::Amount => x.amount_pct,
        Metric::Quantity => x.quantity_pct,
    };
    let below: Vec<String> = r
        .rows
        .iter()
        .filter(|x| x.below_target)
        .map(|x| {
            format!(
                "{} {}（目标 {}）",
                names.name(&x.facility),
                pct(measured(x)),
                target(x.target_pct)
            )
        })
        .collect();
    let mut findings = vec![format!(
        "{} 家机构报送了药品使用数据，{} 家未达到本级基本药物使用比例目标（{by}）。",
        int(r.rows.len() as u64),
        int(below.len() as u64)
    )];
    if !below.is_empty() {
        findings.push(format!("未达标：{}。", below.join("；")));
    }
    let items: Vec<Bar> = r
        .rows
        .iter()
        .map(|x| Bar {
            label: format!("{}（{}）", names.name(&x.facility), level(x.level)),
            segments: vec![(
                measured(x).unwrap_or(0.0),
                if x.below_target { RED } else { BLUE },
            )],
            value_text: format!("{}（目标 {}）", pct(measured(x)), target(x.target_pct)),
            target: Some((x.target_pct, format!("目标 {}", target(x.target_pct)))),
        })
        .collect();
    let mut html = bars(
        &format!("各机构基本药物使用比例（{by}，%）"),
        &[
            (BLUE, "达到目标"),
            (RED, "未达目标"),
            ("#111", "竖线：本级目标"),
        ],
        &items,
        100.0,
    );
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|x| {
            vec![
                (names.cell(&x.facility), false),
                t(level(x.level)),
                n(int(x.months)),
                n(money(x.amount_fen)),
                n(money(x.essential_amount_fen)),
                n(pct(x.amount_pct)),
                n(int(x.quantity)),
                n(int(x.essential_quantity)),
                n(pct(x.quantity_pct)),
                n(target(x.target_pct)),
                t(if x.below_target {
                    "未达标"
                } else {
                    "达标"
                }),
                n(int(x.unknown_codes)),
            ]
        })
        .collect();
    html.push_str(&table(
        &[
            "机构",
            "级别",
            "月数",
            "药品金额（元）",
            "基本药物金额（元）",
            "金额占比",
            "药品数量",
            "基本药物数量",
            "数量占比",
            "目标",
            &format!("是否达标（{by}）"),
            "目录外编码数",
        ],
        &rows,
    ));
    html.push_str(
        r#"<p class="note">占比保留一位小数、只舍不入（如 79.95% 记为 79.9%），与目标比较时不经舍入。</p>"#,
    );
    (findings, html)
}

fn outreach(r: &OutreachReport, names: &Names) -> (Vec<String>, String) {
    let days: u64 = r.events.iter().map(|e| e.days.len() as u64).sum();
    let met: u64 = r.events.iter().map(|e| e.days_met).sum();
    let mut findings = vec![format!(
        "本期义诊活动 {} 次，就诊 {} 人次；{} 个活动日中有 {} 日达到日就诊目标。",
        int(r.events.len() as u64),
        int(r.visits),
        int(days),
        int(met)
    )];
    if !r.townships_not_visited.is_empty() {
        findings.push(format!(
            "尚未开展义诊的乡镇卫生院：{}。",
            names.list(&r.townships_not_visited)
        ));
    }
    let items: Vec<Bar> = r
        .events
        .iter()
        .map(|e| {
            let n_days = e.days.len().max(1) as u64;
            // Compared on whole counts, not on the rounded daily mean.
            let below = e.visits < u64::from(e.target_per_day) * n_days;
            Bar {
                label: format!("{} {}", names.name(&e.township), e.start),
                segments: vec![(e.visits_per_day, if below { RED } else { BLUE })],
                value_text: format!(
                    "日均 {:.1} 人次（目标 {}）",
                    e.visits_per_day,
                    int(u64::from(e.target_per_day))
                ),
                target: Some((
                    f64::from(e.target_per_day),
                    format!("日目标 {} 人次", e.target_per_day),
                )),
            }
        })
        .collect();
    let mut html = bars(
        "各次义诊日均就诊人次",
        &[
            (BLUE, "达到日目标"),
            (RED, "未达日目标"),
            ("#111", "竖线：日目标"),
        ],
        &items,
        0.0,
    );
    let rows: Vec<_> = r
        .events
        .iter()
        .map(|e| {
            vec![
                t(e.number.clone()),
                (names.cell(&e.host), false),
                (names.cell(&e.township), false),
                t(if e.start == e.end {
                    e.start.clone()
                } else {
                    format!("{} 至 {}", e.start, e.end)
                }),
                n(int(e.visits)),
                n(format!("{:.1}", e.visits_per_day)),
                n(int(u64::from(e.target_per_day))),
                n(format!("{}/{}", int(e.days_met), int(e.days.len() as u64))),
                n(int(e.lectures)),
                n(int(e.referrals)),
                n(int(e.below_mid_level)),
            ]
        })
        .collect();
    html.push_str(&table(
        &[
            "编号",
            "牵头机构",
            "乡镇",
            "日期",
            "就诊人次",
            "日均人次",
            "日目标",
            "达标天数",
            "健康讲座",
            "转诊",
            "中级以下职称人数",
        ],
        &rows,
    ));
    (findings, html)
}

fn section(r: &Report, names: &Names) -> (&'static str, Vec<String>, String) {
    match r {
        Report::Referrals(x) => {
            let (f, h) = referrals(x, names);
            ("一、双向转诊", f, h)
        }
        Report::Recognition(x) => {
            let (f, h) = recognition(x, names);
            ("二、检查检验结果互认", f, h)
        }
        Report::EssentialDrugs(x) => {
            let (f, h) = essential(x, names);
            ("三、基本药物使用", f, h)
        }
        Report::Outreach(x) => {
            let (f, h) = outreach(x, names);
            ("四、义诊", f, h)
        }
    }
}

const STYLE: &str = r#"@page{size:A4;margin:14mm 12mm 16mm}
html{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC","SimSun",sans-serif;font-size:10.5pt;color:#222}
body{max-width:186mm;margin:0 auto}
@media screen{body{margin:1.5em auto;padding:0 1em}}
h1{font-size:16pt;text-align:center;margin:.2em 0}
p.meta{text-align:center;color:#555;margin:.2em 0 1em}
h2{font-size:12.5pt;border-bottom:1px solid #999;margin:1.2em 0 .4em;break-after:avoid}
h3{font-size:10.5pt;margin:.8em 0 .3em;break-after:avoid}
ul{margin:.3em 0 .5em;padding-left:1.4em}
table{width:100%;border-collapse:collapse;font-size:8.5pt;margin:.4em 0}
th,td{border:1px solid #bbb;padding:2px 4px;vertical-align:top}
th{background:#f0f0f0;font-weight:600;text-align:center}
td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
thead{display:table-header-group}tr{break-inside:avoid}
.code{color:#777;font-size:85%}
figure{margin:.4em 0;break-inside:avoid}figcaption{font-weight:600;font-size:9.5pt}
svg{width:100%;height:auto;display:block}svg text{font-size:12px;fill:#222}
.legend{font-size:8.5pt;color:#444}.legend span{margin-right:1.2em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
p.note{font-size:8.5pt;color:#555}"#;

/// The summary page.
pub(crate) fn summary(page: &Page<'_>, reports: &[Report]) -> String {
    let scope = page.facility.map_or_else(
        || "全医共体".to_string(),
        |f| format!("{}（{}）", page.names.name(f.as_str()), f),
    );
    let half = if page.half == 1 { "上" } else { "下" };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>县域医共体 {year} 年{half}半年运行情况报告</title><style>{STYLE}</style></head><body>
<h1>县域医共体 {year} 年{half}半年运行情况报告</h1><p class="meta">统计期间：{} 至 {}　范围：{}<br>生成时间：{}　yilian {}</p>"#,
        page.period.from,
        page.period.to,
        esc(&scope),
        esc(&page.generated),
        env!("CARGO_PKG_VERSION"),
        year = page.year,
    );
    for r in reports {
        let (title, findings, body) = section(r, page.names);
        let _ = write!(s, "<section><h2>{title}</h2><ul>");
        for f in findings {
            let _ = write!(s, "<li>{}</li>", esc(&f));
        }
        let _ = write!(s, "</ul>{body}</section>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1_000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(money(159_900), "1,599.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(pct(Some(79.9)), "79.9%");
        assert_eq!(pct(None), "—");
        assert_eq!(
            (target(80.0).as_str(), target(32.5).as_str()),
            ("80%", "32.5%")
        );
    }

    #[test]
    fn facilities_show_by_name_with_their_code() {
        let names = Names::new([("TC-01".to_string(), "城关镇卫生院".to_string())]);
        assert_eq!(names.name("TC-01"), "城关镇卫生院");
        assert_eq!(names.name("TC-09"), "TC-09");
        assert_eq!(names.name("all"), "合计");
        assert!(
            names.cell("TC-01").contains("城关镇卫生院") && names.cell("TC-01").contains("TC-01")
        );
    }
}
