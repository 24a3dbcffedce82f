//! Horizontal bar charts as inline SVG for the semiannual summary: no scripts or downloads, so
//! the page opens offline and prints. A bar may be split into segments (up and down referrals);
//! a target is a solid line drawn over its bar and beyond it, so a bar that ends at its target
//! never hides it, and the value is written past both.

use std::fmt::Write;

/// Escapes text for HTML and SVG.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bar colours.
pub(crate) const BLUE: &str = "#2e6da4";
pub(crate) const TEAL: &str = "#76b7b2";
pub(crate) const RED: &str = "#c0392b";
const TARGET: &str = "#111";

/// One bar: its label, its segments (value, colour), the text written after it, and its target.
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) segments: Vec<(f64, &'static str)>,
    pub(crate) value_text: String,
    pub(crate) target: Option<(f64, String)>,
}

/// A chart: a caption naming what is measured and in what unit, a legend, bars; `max` is the
/// value of a full bar (raised to the largest value or target).
pub(crate) fn bars(caption: &str, legend: &[(&str, &str)], items: &[Bar], max: f64) -> String {
    const W: f64 = 680.0;
    const LABEL: f64 = 210.0;
    const VALUE: f64 = 90.0;
    const ROW: f64 = 24.0;
    const TOP: f64 = 8.0;
    let total = |b: &Bar| b.segments.iter().map(|s| s.0).sum::<f64>();
    let max = items
        .iter()
        .map(|b| total(b).max(b.target.as_ref().map_or(0.0, |t| t.0)))
        .fold(max, f64::max)
        .max(1.0);
    let scale = |v: f64| v.max(0.0) / max * (W - LABEL - VALUE);
    let h = TOP + ROW * items.len().max(1) as f64 + 6.0;
    let mut s = format!(r#"<figure><figcaption>{}</figcaption>"#, esc(caption));
    if !legend.is_empty() {
        s.push_str(r#"<div class="legend">"#);
        for (colour, text) in legend {
            let _ = write!(
                s,
                r#"<span><i style="background:{colour}"></i>{}</span>"#,
                esc(text)
            );
        }
        s.push_str("</div>");
    }
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(caption)
    );
    if items.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{LABEL}" y="{}">本期无数据</text>"#,
            TOP + 14.0
        );
    }
    for (i, b) in items.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL - 6.0,
            y + 13.0,
            esc(&b.label)
        );
        let mut x = LABEL;
        for (v, colour) in &b.segments {
            let w = scale(*v);
            if w > 0.0 {
                let _ = write!(
                    s,
                    r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="16" fill="{colour}"/>"#
                );
            }
            x += w;
        }
        let mut end = x;
        if let Some((t, text)) = &b.target {
            // Drawn after the bar, above and below it: visible even where the bar ends at it.
            let tx = LABEL + scale(*t);
            let _ = write!(
                s,
                r#"<line class="target" x1="{tx:.1}" x2="{tx:.1}" y1="{}" y2="{}" stroke="{TARGET}" stroke-width="2.5"><title>{}</title></line>"#,
                y - 3.0,
                y + 19.0,
                esc(text)
            );
            end = end.max(tx + 2.0);
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}">{}</text>"#,
            end + 6.0,
            y + 13.0,
            esc(&b.value_text)
        );
    }
    s.push_str("</svg></figure>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_targets_are_drawn_over_their_bars() {
        assert_eq!(esc("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
        let svg = bars(
            "基本药物使用占比（按金额计，%）",
            &[(RED, "未达标")],
            &[Bar {
                label: "TC<1>".into(),
                segments: vec![(80.0, BLUE)],
                value_text: "80.0%".into(),
                target: Some((80.0, "目标 80%".into())),
            }],
            100.0,
        );
        assert!(svg.contains("TC&lt;1&gt;") && !svg.contains("TC<1>"));
        // The target line comes after the bar's rectangle (painted over it) and reaches
        // beyond its top and bottom.
        let rect = svg.find("<rect").unwrap();
        let line = svg.find(r#"<line class="target""#).unwrap();
        assert!(line > rect);
        assert!(svg.contains(r#"y1="5" y2="27""#), "{svg}");
        assert!(svg.contains("目标 80%") && svg.contains("按金额计"));
    }
}
