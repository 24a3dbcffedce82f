//! Matching a file's header row to the fields a table has: names compared without case,
//! spaces, `_` or `-`, and bracketed annotations — full-width or half-width `（）【】［］〔〕()[]`
//! — set aside, as spreadsheets exported from hospital systems write them: `医保类别(甲/乙)`,
//! `金额（元）`, `【医保药品代码】`.

use super::{Column, CsvError};

const OPEN: [char; 6] = ['(', '（', '[', '［', '【', '〔'];
const CLOSE: [char; 6] = [')', '）', ']', '］', '】', '〕'];

/// A name as compared: trimmed, without a byte-order mark, spaces, `_`, `-`, lower case.
fn normalise(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{3000}' | '_' | '-' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The names a header may stand for, most specific first: the header without its bracketed
/// parts (`医保类别(甲/乙)` is 医保类别); for a header that is nothing but a bracketed part,
/// what it encloses (`【医保药品代码】`); and the header with its brackets dropped but their
/// text kept (`金额(元)` is also 金额元). Brackets of either width pair with each other; an
/// unclosed one runs to the end of the header.
fn names(h: &str) -> Vec<String> {
    let mut outside = String::new();
    let mut all = String::new();
    let mut groups: Vec<String> = Vec::new();
    let mut depth = 0usize;
    for c in h.chars() {
        if OPEN.contains(&c) {
            if depth == 0 {
                groups.push(String::new());
            }
            depth += 1;
        } else if CLOSE.contains(&c) {
            depth = depth.saturating_sub(1);
        } else {
            all.push(c);
            match groups.last_mut() {
                Some(g) if depth > 0 => g.push(c),
                _ => outside.push(c),
            }
        }
    }
    let mut out = vec![normalise(&outside)];
    if out[0].is_empty() {
        out.extend(groups.first().map(|g| normalise(g)));
    }
    out.push(normalise(&all));
    out.retain(|n| !n.is_empty());
    out.dedup();
    out
}

fn is_named(c: &Column, name: &str) -> bool {
    normalise(c.field) == name || c.aliases.iter().any(|a| normalise(a) == name)
}

/// Maps each header cell to its field (`None` for a blank header, whose column is ignored). A
/// missing required column, an unknown column or a repeated one refuses the file, naming each
/// and listing the columns understood.
pub(super) fn map<'h>(
    header: impl IntoIterator<Item = &'h str>,
    columns: &[Column],
) -> Result<Vec<Option<&'static str>>, CsvError> {
    let mut map: Vec<Option<&'static str>> = Vec::new();
    let mut problems = Vec::new();
    for h in header {
        let names = names(h);
        if names.is_empty() {
            map.push(None);
            continue;
        }
        let col = names
            .iter()
            .find_map(|n| columns.iter().find(|c| is_named(c, n)));
        match col {
            Some(c) if map.contains(&Some(c.field)) => {
                problems.push(format!("column {:?} appears twice", h.trim()));
                map.push(None);
            }
            Some(c) => map.push(Some(c.field)),
            None => {
                problems.push(format!("unknown column {:?}", h.trim()));
                map.push(None);
            }
        }
    }
    let missing: Vec<String> = columns
        .iter()
        .filter(|c| c.required && !map.contains(&Some(c.field)))
        .map(|c| format!("{} ({})", c.field, c.aliases.first().copied().unwrap_or("")))
        .collect();
    if !missing.is_empty() {
        problems.insert(0, format!("missing columns: {}", missing.join(", ")));
    }
    if problems.is_empty() {
        return Ok(map);
    }
    let known: Vec<String> = columns
        .iter()
        .map(|c| format!("{}/{}", c.aliases.first().copied().unwrap_or(""), c.field))
        .collect();
    Err(CsvError::Header(format!(
        "{}; columns understood: {}",
        problems.join("; "),
        known.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn annotations_are_set_aside_and_a_bracketed_name_is_unwrapped() {
        assert_eq!(names("医保类别(甲/乙)"), ["医保类别", "医保类别甲/乙"]);
        assert_eq!(names("【医保药品代码】"), ["医保药品代码"]);
        assert_eq!(
            names("【医保药品代码】（必填）"),
            ["医保药品代码", "医保药品代码必填"]
        );
        assert_eq!(names("金额（元）"), ["金额", "金额元"]);
        assert_eq!(names("规格(mg"), ["规格", "规格mg"]);
        assert_eq!(names(" Drug_Code "), ["drugcode"]);
        assert!(names("  ").is_empty() && names("()").is_empty());
    }
}
