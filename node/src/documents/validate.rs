//! Field checks shared by the clinical document kinds. Every error names the field and never
//! echoes a patient identifier back (only its length or shape).

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn err(field: &'static str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field,
        problem: problem.into(),
    }
}

/// A required text field: non-blank, at most `max` characters.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(err(field, "is required"));
    }
    if v.chars().count() > max {
        return Err(err(field, format!("is longer than {max} characters")));
    }
    Ok(v.to_string())
}

/// An optional text field: absent or blank is `None`, otherwise as [`text`].
pub fn optional(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    value
        .filter(|s| !s.trim().is_empty())
        .map(|s| text(field, &s, max))
        .transpose()
}

/// An ICD-10 code as the clinical edition writes it: a letter, two digits, optionally `.` and
/// digits, optionally `x` and three digits (e.g. `K35.800`, `E14.900x001`). Normalised to upper
/// case letter and lower case `x`.
pub fn icd10(value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    let b = v.as_bytes();
    let bad = || {
        err(
            "icd10",
            format!(
                "{v:?} is not an ICD-10 code (letter, two digits, optional .digits, optional x and three digits: e.g. K35.800)"
            ),
        )
    };
    if b.len() < 3
        || !b[0].is_ascii_alphabetic()
        || !b[1].is_ascii_digit()
        || !b[2].is_ascii_digit()
    {
        return Err(bad());
    }
    let mut rest = &v[3..];
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &r[digits..];
    }
    if let Some(r) = rest.strip_prefix(['x', 'X']) {
        if r.len() != 3 || !r.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        rest = "";
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    let mut out = v.to_string();
    out[..1].make_ascii_uppercase();
    Ok(out.replace('X', "x"))
}

/// A calendar date `YYYY-MM-DD`.
pub fn date(field: &'static str, value: &str) -> Result<jiff::civil::Date, FieldError> {
    value.trim().parse::<jiff::civil::Date>().map_err(|_| {
        err(
            field,
            format!("{:?} is not a date (YYYY-MM-DD)", value.trim()),
        )
    })
}

/// A date and time `YYYY-MM-DDTHH:MM` (local clinic time), returned as given.
pub fn datetime(field: &'static str, value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    v.parse::<jiff::civil::DateTime>()
        .map(|_| v.to_string())
        .map_err(|_| {
            err(
                field,
                format!("{v:?} is not a date and time (YYYY-MM-DDTHH:MM)"),
            )
        })
}

/// A resident identity card number (GB 11643-1999): 17 digits and a check character computed
/// with ISO 7064 MOD 11-2. The birth date inside must be a real date.
pub fn national_id(value: &str) -> Result<String, FieldError> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let v = value.trim().to_ascii_uppercase();
    let b = v.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return Err(err(
            "id_number",
            format!(
                "must be 17 digits and a check character (got {} characters)",
                b.len()
            ),
        ));
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    if CHECK[(sum % 11) as usize] != b[17] {
        return Err(err(
            "id_number",
            "the check character does not match (GB 11643): a digit was mistyped",
        ));
    }
    date(
        "id_number",
        &format!("{}-{}-{}", &v[6..10], &v[10..12], &v[12..14]),
    )
    .map_err(|_| {
        err(
            "id_number",
            "the birth date inside the number is not a real date",
        )
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd10_codes_of_the_clinical_edition() {
        for ok in ["K35.800", "E14.900x001", "J18", "j18.9", "S72.001x002"] {
            assert!(icd10(ok).is_ok(), "{ok}");
        }
        assert_eq!(icd10("e14.900X001").unwrap(), "E14.900x001");
        for bad in [
            "",
            "K3",
            "35.8",
            "K35.",
            "K35.8x1",
            "K35.8y001",
            "K35 8",
            "KK35",
        ] {
            assert_eq!(icd10(bad).unwrap_err().field, "icd10", "{bad}");
        }
    }

    #[test]
    fn national_id_check_character() {
        // A well-known valid sample number (GB 11643 example).
        assert!(national_id("11010519491231002X").is_ok());
        assert!(national_id("11010519491231002x").is_ok());
        let e = national_id("110105194912310021").unwrap_err();
        assert!(e.problem.contains("check character"), "{e}");
        assert!(
            !e.to_string().contains("110105"),
            "a patient identifier leaked into an error"
        );
        assert!(national_id("1101051949123100").is_err());
        // Valid check character, impossible birth date (Feb 30).
        let mut digits = *b"11010519490230002";
        let weights = [7u32, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = digits
            .iter_mut()
            .zip(weights)
            .map(|(d, w)| u32::from(*d - b'0') * w)
            .sum();
        let check = b"10X98765432"[(sum % 11) as usize] as char;
        let id = format!("{}{check}", std::str::from_utf8(&digits).unwrap());
        assert!(national_id(&id).unwrap_err().problem.contains("birth date"));
    }

    #[test]
    fn dates_and_text() {
        assert!(date("birth_date", "1960-02-29").is_ok());
        assert!(date("birth_date", "1961-02-29").is_err());
        assert!(datetime("slot", "2026-12-01T09:30").is_ok());
        assert!(datetime("slot", "tomorrow").is_err());
        assert_eq!(text("reason", "  ", 10).unwrap_err().problem, "is required");
        assert!(text("reason", &"长".repeat(11), 10).is_err());
    }
}
