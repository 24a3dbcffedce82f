//! CSV injection ("formula injection", OWASP): a spreadsheet that opens a CSV file takes a cell
//! starting with `=`, `+`, `-` or `@` (or a tab or carriage return before one) for a formula and
//! runs it — `=HYPERLINK("http://…","点击查看说明书")` or a DDE call such as
//! `=cmd|' /C calc'!A0` on the pharmacist's PC.
//!
//! The rule, applied by [`super::write`] to every cell of every CSV file yilian writes:
//!
//! - a cell whose first character — after any leading apostrophes and spaces — is `=`, `+`,
//!   `-`, `@`, tab or CR gets one more apostrophe `'` in front (spreadsheets show it as text);
//! - except a plain decimal number (`-5`, `+3`, `-12.50`) and the lone `-` that reports print
//!   for "no value": they cannot run anything, so figures stay numbers.
//!
//! [`super::read`] undoes exactly that: one leading apostrophe in front of such a cell is taken
//! off, so importing an exported file gives back every value unchanged (an apostrophe that was
//! part of the value was doubled on export). A formula-like cell without the apostrophe is
//! kept as text and reported as a warning with its line and column.

use std::borrow::Cow;

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A plain decimal number: an optional sign, digits, at most one decimal point.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !(whole.is_empty() && frac.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a spreadsheet could take `cell` for a formula.
pub fn is_formula(cell: &str) -> bool {
    let t = cell.trim_start_matches(' ');
    t.starts_with(FORMULA_START) && t != "-" && !is_number(t)
}

/// Whether `cell` is written with an apostrophe in front: it is formula-like once its own
/// leading apostrophes are set aside.
fn needs_mark(cell: &str) -> bool {
    is_formula(cell.trim_start_matches('\''))
}

/// The cell as it is written to a file: with an apostrophe in front when a spreadsheet could
/// run it — its first character, after any apostrophes and spaces, is `=`, `+`, `-`, `@`, tab
/// or CR — unless it is a plain decimal number (`-5`, `+3.5`) or a lone `-`.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if needs_mark(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The value of a cell read from a file: [`neutralise`] undone (one apostrophe in front of a
/// cell that needed it comes off), so `restore(&neutralise(v)) == v` for every value.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_mark(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_undoes_neutralise() {
        for v in [
            "=1+1", "'=1+1", "''=1+1", "@a", "-", "-5", "'-5", "'", "''", "", "+", " =x", "'x",
            "-.5", ".", "--5", "1-2",
        ] {
            assert_eq!(restore(&neutralise(v)), v, "{v:?}");
        }
        assert!(is_number("-.5") && is_number("+3") && !is_number(".") && !is_number("--5"));
    }
}
