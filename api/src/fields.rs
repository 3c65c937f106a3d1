//! Reading fields of a JSON body and query parameters with the contract's exact rules.
//!
//! serde_json is built with `arbitrary_precision`, so an integer literal too large for `i64`
//! stays recognisable as an integer (an unknown id, not a type error), and `1.0` stays a float.

use serde_json::Value;

/// What a JSON value is, seen as an integer field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntValue {
    /// A JSON integer that fits an `i64`.
    Int(i64),
    /// A JSON integer literal outside the `i64` range: a valid integer that can name no row.
    OutOfRange,
    /// `null`.
    Null,
    /// Anything else: floats, strings, booleans, arrays, objects.
    NotInt,
}

#[must_use]
pub fn int_value(value: &Value) -> IntValue {
    match value {
        Value::Null => IntValue::Null,
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                IntValue::Int(i)
            } else if is_integer_literal(&n.to_string()) {
                IntValue::OutOfRange
            } else {
                IntValue::NotInt
            }
        }
        _ => IntValue::NotInt,
    }
}

fn is_integer_literal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A query parameter or path segment that should be an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntParam {
    Int(i64),
    /// Digits, but too large for any id: matches nothing.
    OutOfRange,
}

/// Parses an integer written in decimal (optional leading `-`), as query filters accept.
#[must_use]
pub fn parse_int_param(raw: &str) -> Option<IntParam> {
    let raw = raw.trim();
    if !is_integer_literal(raw) {
        return None;
    }
    Some(
        raw.parse::<i64>()
            .map_or(IntParam::OutOfRange, IntParam::Int),
    )
}

/// Parses a path id: plain digits only (no sign). `None` means the route itself does not
/// match (generic 404); `OutOfRange` is a well-formed id that names no row.
#[must_use]
pub fn parse_path_id(raw: &str) -> Option<IntParam> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        raw.parse::<i64>()
            .map_or(IntParam::OutOfRange, IntParam::Int),
    )
}

/// Length in characters (the unit of the contract's column limits).
#[must_use]
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// True if any string inside `value` contains a NUL character (PostgreSQL cannot store it).
#[must_use]
pub fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// Pagination from `page` / `per_page`: `None` when neither is given (the whole list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub per_page: u64,
}

pub const PAGINATION_ERROR: &str = "Pagination parameters must be positive integers";
pub const MAX_PER_PAGE: u64 = 1000;

pub fn parse_page(
    page: Option<&str>,
    per_page: Option<&str>,
) -> Result<Option<Page>, &'static str> {
    if page.is_none() && per_page.is_none() {
        return Ok(None);
    }
    let positive = |raw: Option<&str>, default: u64| -> Result<u64, &'static str> {
        match raw {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                // All digits but larger than u64: still a positive integer.
                Err(_) if is_integer_literal(raw.trim()) && !raw.trim().starts_with('-') => {
                    Ok(u64::MAX)
                }
                _ => Err(PAGINATION_ERROR),
            },
        }
    };
    let page = positive(page, 1)?;
    let per_page = positive(per_page, 20)?.min(MAX_PER_PAGE);
    Ok(Some(Page { page, per_page }))
}

impl Page {
    /// Rows to skip, saturating (a page far past the end is simply empty).
    #[must_use]
    pub fn offset(&self) -> u64 {
        // Databases take a signed 64-bit offset: anything past that is past the end anyway.
        (self.page - 1)
            .saturating_mul(self.per_page)
            .min(i64::MAX as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_floats_and_out_of_range_are_told_apart() {
        assert_eq!(int_value(&json!(5)), IntValue::Int(5));
        assert_eq!(int_value(&json!(-5)), IntValue::Int(-5));
        assert_eq!(int_value(&json!(1.0)), IntValue::NotInt);
        assert_eq!(int_value(&json!(true)), IntValue::NotInt);
        assert_eq!(int_value(&json!("5")), IntValue::NotInt);
        assert_eq!(int_value(&Value::Null), IntValue::Null);
        let big: Value = serde_json::from_str("99999999999999999999").unwrap();
        assert_eq!(int_value(&big), IntValue::OutOfRange);
        let exp: Value = serde_json::from_str("1e20").unwrap();
        assert_eq!(int_value(&exp), IntValue::NotInt);
    }

    #[test]
    fn path_ids_are_plain_digits() {
        assert_eq!(parse_path_id("12"), Some(IntParam::Int(12)));
        assert_eq!(parse_path_id("-1"), None);
        assert_eq!(parse_path_id("abc"), None);
        assert_eq!(
            parse_path_id("99999999999999999999"),
            Some(IntParam::OutOfRange)
        );
    }

    #[test]
    fn pagination_rules() {
        assert_eq!(parse_page(None, None), Ok(None));
        assert_eq!(
            parse_page(Some("2"), None),
            Ok(Some(Page {
                page: 2,
                per_page: 20
            }))
        );
        assert_eq!(
            parse_page(None, Some("5000")),
            Ok(Some(Page {
                page: 1,
                per_page: 1000
            }))
        );
        assert_eq!(parse_page(Some("0"), None), Err(PAGINATION_ERROR));
        assert_eq!(parse_page(Some("-1"), None), Err(PAGINATION_ERROR));
        assert_eq!(parse_page(None, Some("x")), Err(PAGINATION_ERROR));
        assert_eq!(parse_page(Some("1.5"), None), Err(PAGINATION_ERROR));
    }

    #[test]
    fn nul_is_found_anywhere() {
        assert!(contains_nul(&json!({"a": ["x\u{0}"]})));
        assert!(!contains_nul(&json!({"a": ["x"]})));
    }
}
