//! The one-page HTML summary of the semiannual reports: findings, a bar chart per report
//! (inline SVG, no scripts or downloads, so it opens offline and prints), and the tables.

use std::fmt::Write;

use yilian_node::ids::FacilityCode;
use yilian_node::reports::{Period, Report};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One bar: label, value, optional target line, and whether it misses its target.
struct Bar {
    label: String,
    value: f64,
    target: Option<f64>,
    bad: bool,
}

/// A horizontal bar chart as inline SVG; `max` is the value of a full bar.
fn bars(title: &str, unit: &str, items: &[Bar], max: f64) -> String {
    const W: f64 = 520.0;
    const LABEL: f64 = 150.0;
    const ROW: f64 = 22.0;
    let max = items
        .iter()
        .map(|b| b.value.max(b.target.unwrap_or(0.0)))
        .fold(max, f64::max)
        .max(1.0);
    let scale = |v: f64| (v / max) * (W - LABEL - 60.0);
    let h = ROW * items.len().max(1) as f64 + 30.0;
    let mut s = format!(
        r#"<figure><figcaption>{}</figcaption><svg viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    if items.is_empty() {
        let _ = write!(s, r#"<text x="0" y="20">no data in this period</text>"#);
    }
    for (i, b) in items.iter().enumerate() {
        let y = 5.0 + i as f64 * ROW;
        let fill = if b.bad { "#c0392b" } else { "#2e86c1" };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{LABEL}" y="{y}" width="{:.1}" height="16" fill="{fill}"><title>{}: {:.1}{unit}</title></rect><text x="{:.1}" y="{}">{:.1}{unit}</text>"#,
            LABEL - 6.0,
            y + 13.0,
            esc(&b.label),
            scale(b.value),
            esc(&b.label),
            b.value,
            LABEL + scale(b.value) + 4.0,
            y + 13.0,
            b.value
        );
        if let Some(t) = b.target {
            let x = LABEL + scale(t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#333" stroke-dasharray="3,2"><title>target {t:.1}{unit}</title></line>"##,
                y - 2.0,
                y + 18.0
            );
        }
    }
    s.push_str("</svg></figure>");
    s
}

fn chart(r: &Report) -> String {
    match r {
        Report::Referrals(x) => {
            let mut by: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
            for row in &x.rows {
                let e = by.entry(row.facility.as_str()).or_default();
                e.0 += row.up;
                e.1 += row.down;
            }
            let items: Vec<Bar> = by
                .into_iter()
                .map(|(f, (u, d))| Bar {
                    label: format!("{f} (up {u} / down {d})"),
                    value: (u + d) as f64,
                    target: None,
                    bad: false,
                })
                .collect();
            bars("Referrals sent per facility", "", &items, 0.0)
        }
        Report::Recognition(x) => {
            let items: Vec<Bar> = x
                .rows
                .iter()
                .map(|r| Bar {
                    label: format!("{} {}", r.facility, r.class),
                    value: r.recognition_pct.unwrap_or(0.0),
                    target: None,
                    bad: false,
                })
                .collect();
            bars("Results recognisable (%)", "%", &items, 100.0)
        }
        Report::EssentialDrugs(x) => {
            let items: Vec<Bar> = x
                .rows
                .iter()
                .map(|r| Bar {
                    label: format!("{} ({})", r.facility, r.level.as_str()),
                    value: match x.metric {
                        yilian_node::reports::essential::Metric::Amount => r.amount_pct,
                        yilian_node::reports::essential::Metric::Quantity => r.quantity_pct,
                    }
                    .unwrap_or(0.0),
                    target: Some(r.target_pct),
                    bad: r.below_target,
                })
                .collect();
            bars(
                "Essential-medicine share (%), dashed line = target; red = below",
                "%",
                &items,
                100.0,
            )
        }
        Report::Outreach(x) => {
            let items: Vec<Bar> = x
                .events
                .iter()
                .map(|e| Bar {
                    label: format!("{} {}", e.township, e.start),
                    value: e.visits_per_day,
                    target: Some(f64::from(e.target_per_day)),
                    bad: e.visits_per_day < f64::from(e.target_per_day),
                })
                .collect();
            bars(
                "Outreach visits per day, dashed line = target",
                "",
                &items,
                0.0,
            )
        }
    }
}

fn table(r: &Report) -> String {
    let t = r.tabular();
    let mut s = String::from("<table><thead><tr>");
    for h in t.header() {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in t.rows() {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", esc(&c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn title(r: &Report) -> &'static str {
    match r {
        Report::Referrals(_) => "Two-way referrals (双向转诊)",
        Report::Recognition(_) => "Result mutual recognition (检查检验结果互认)",
        Report::EssentialDrugs(_) => "Essential-medicine usage (基本药物)",
        Report::Outreach(_) => "Outreach free clinics (义诊)",
    }
}

/// The summary page.
pub(crate) fn summary(
    year: i16,
    half: u8,
    period: Period,
    facility: Option<&FacilityCode>,
    reports: &[Report],
) -> String {
    let mut s = String::new();
    let scope = facility.map_or_else(|| "the whole alliance".to_string(), |f| f.to_string());
    let _ = write!(
        s,
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>医共体 {year} H{half} report</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:1100px;margin:1em auto;color:#222}}
section{{break-inside:avoid;margin-bottom:1.2em}}h1{{font-size:1.4em}}h2{{font-size:1.1em;border-bottom:1px solid #ccc}}
table{{border-collapse:collapse;font-size:.8em}}td,th{{border:1px solid #ccc;padding:2px 5px;text-align:right}}
th{{background:#f2f2f2}}svg text{{font-size:11px}}figure{{margin:.4em 0}}figcaption{{font-size:.85em;color:#555}}</style></head><body>
<h1>County medical alliance report, {year} half {half}</h1><p>Period {} to {}, {}. Generated by yilian {}.</p>"#,
        period.from,
        period.to,
        esc(&scope),
        env!("CARGO_PKG_VERSION")
    );
    for r in reports {
        let _ = write!(s, "<section><h2>{}</h2><ul>", esc(title(r)));
        for f in r.findings() {
            let _ = write!(s, "<li>{}</li>", esc(&f));
        }
        let _ = write!(s, "</ul>{}{}</section>", chart(r), table(r));
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_targets_are_drawn() {
        assert_eq!(esc("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
        let svg = bars(
            "t",
            "%",
            &[Bar {
                label: "TC<1>".into(),
                value: 50.0,
                target: Some(80.0),
                bad: true,
            }],
            100.0,
        );
        assert!(svg.contains("TC&lt;1&gt;") && !svg.contains("TC<1>"));
        assert!(svg.contains("#c0392b") && svg.contains("target 80.0%"));
    }
}
