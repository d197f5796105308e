//! Input validation helpers shared by the domain constructors.

use crate::error::{Error, Result};

/// The longest name (partner, lead title, stage, …) accepted, in characters.
pub const MAX_NAME: usize = 200;
/// The longest free text (descriptions, comments, notes) accepted, in characters.
pub const MAX_TEXT: usize = 20_000;
/// The longest tag accepted, in characters.
pub const MAX_TAG: usize = 64;

/// Trims `value` and checks it is a non-empty name of at most [`MAX_NAME`] characters.
pub fn name(field: &str, value: &str) -> Result<String> {
    bounded(field, value, MAX_NAME, true)
}

/// Trims `value` and checks it is non-empty and at most `max` characters.
pub fn bounded(field: &str, value: &str, max: usize, required: bool) -> Result<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    let n = v.chars().count();
    if n > max {
        return Err(Error::invalid(
            field,
            format!("is {n} characters long; at most {max} are allowed"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(v.to_string())
}

/// An optional bounded text: empty after trimming becomes `None`.
pub fn optional(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = bounded(field, v, max, false)?;
            Ok(if v.is_empty() { None } else { Some(v) })
        }
    }
}

/// Checks an e-mail address's syntax and returns it trimmed.
pub fn email(field: &str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.len() > 254 {
        return Err(Error::invalid(field, "is longer than 254 characters"));
    }
    let parsed: email_address::EmailAddress = v
        .parse()
        .map_err(|e| Error::invalid(field, format!("`{v}` is not an e-mail address: {e}")))?;
    if !parsed.domain().contains('.') {
        return Err(Error::invalid(
            field,
            format!("`{v}` has no top-level domain after the @"),
        ));
    }
    Ok(v.to_string())
}

/// Checks a phone number: digits with the usual separators and an optional leading `+`, 6 to 20 digits.
pub fn phone(field: &str, value: &str) -> Result<String> {
    let v = value.trim();
    let ok_chars = v
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " -./()".contains(c) || (i == 0 && c == '+'));
    let digits = v.chars().filter(char::is_ascii_digit).count();
    if !ok_chars || !(6..=20).contains(&digits) {
        return Err(Error::invalid(
            field,
            format!("`{v}` is not a phone number (6 to 20 digits, optional leading +)"),
        ));
    }
    Ok(v.to_string())
}

/// Checks and normalises a tag: lower case, no spaces at the ends, at most [`MAX_TAG`] characters.
pub fn tag(field: &str, value: &str) -> Result<String> {
    let v = bounded(field, value, MAX_TAG, true)?;
    Ok(v.to_lowercase())
}

/// Checks an ISO 3166-1 alpha-2 country code (two upper-case letters).
pub fn country(field: &str, value: &str) -> Result<String> {
    let v = value.trim().to_uppercase();
    if v.len() != 2 || !v.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Error::invalid(
            field,
            format!("`{value}` is not a two-letter ISO 3166 country code"),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name("name", "  Acme ").unwrap(), "Acme");
        assert_eq!(name("name", "  ").unwrap_err().field(), Some("name"));
        assert!(name("name", &"x".repeat(201)).is_err());
        assert!(name("name", &"ă".repeat(200)).is_ok());
    }

    #[test]
    fn emails() {
        assert!(email("email", "ana@firma.ro").is_ok());
        for bad in [
            "ana",
            "ana@",
            "@firma.ro",
            "ana@@firma.ro",
            "ana@firma",
            "a b@firma.ro",
        ] {
            assert_eq!(
                email("email", bad).unwrap_err().field(),
                Some("email"),
                "{bad}"
            );
        }
    }

    #[test]
    fn phones() {
        assert!(phone("phone", "+40 721 234 567").is_ok());
        assert!(phone("phone", "0721-234-567").is_ok());
        assert!(phone("phone", "12").is_err());
        assert!(phone("phone", "call me").is_err());
    }
}
