//! Visits to short codes that do not redirect (unknown or inactive: the redirect's 404), by
//! the code's *prefix*: its first two characters lowercased, or `other` when the code is not
//! one of the code alphabet (`[A-Za-z0-9_-]`, 1 to 16) or shorter than two. At most
//! 38 × 38 + 1 series, whatever is probed; the raw code or path is never a label.

use prometheus::{IntCounterVec, Opts, Registry};

use crate::short_code::ShortCode;

/// The label of anything that is not a code's prefix.
pub const OTHER: &str = "other";

/// `curtain_unknown_code_visits_total{prefix}`.
#[derive(Clone)]
pub struct UnknownCodeMetrics {
    visits: IntCounterVec,
}

impl UnknownCodeMetrics {
    pub(super) fn register(registry: &Registry) -> Self {
        let visits = IntCounterVec::new(
            Opts::new(
                "curtain_unknown_code_visits_total",
                "Redirects answered 404 (unknown or inactive code), by the code's first two \
                 characters lowercased ('other' outside the code alphabet).",
            ),
            &["prefix"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        registry
            .register(Box::new(visits.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        // Exported from the first scrape, as every family.
        visits.with_label_values(&[OTHER]);
        Self { visits }
    }

    /// Counts one visit to the code `raw` (as it came in the path).
    pub fn visit(&self, raw: &str) {
        self.visits.with_label_values(&[&prefix(raw)]).inc();
    }
}

/// The label of the code `raw`: see the module docs.
#[must_use]
pub fn prefix(raw: &str) -> String {
    match ShortCode::parse(raw) {
        Some(code) if code.as_str().len() >= 2 => code.as_str()[..2].to_ascii_lowercase(),
        _ => OTHER.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_two_lowercased_code_characters_or_other() {
        assert_eq!(prefix("AbC123"), "ab");
        assert_eq!(prefix("ab"), "ab");
        assert_eq!(prefix("_-x"), "_-");
        assert_eq!(prefix("a"), OTHER);
        assert_eq!(prefix(""), OTHER);
        assert_eq!(prefix("ab.php"), OTHER);
        assert_eq!(prefix("wp-admin/setup"), OTHER);
        assert_eq!(prefix("é1"), OTHER);
        assert_eq!(prefix(&"a".repeat(17)), OTHER);
    }
}
