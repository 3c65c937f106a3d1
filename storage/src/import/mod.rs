//! CSV import in the legacy data set's format (`users.csv`, `urls.csv`, `events.csv`), shared
//! by `POST /users/bulk` and `curtain-ops import`.
//!
//! A file is parsed and validated completely before anything is written (an upload is parsed
//! while it is inserted, inside one transaction: [`crate::import_stream`]), so a bad row inserts
//! nothing and the error names its line. Rows are keyed by explicit id: a row whose id already
//! exists is skipped, so importing the same file twice inserts nothing the second time.
//! PostgreSQL sequences are advanced past the largest imported id.

mod parse;
mod records;
mod write;

use std::fmt;

pub use parse::{for_each_user, parse_events, parse_urls, parse_users};
pub use records::parse_timestamp;
pub use write::{advance_sequence, insert_skipping_existing};

/// A row that cannot be imported. `line` is 1-based and counts the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "CSV row {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ImportError {}

pub const USERS_REQUIRED: &str = "CSV rows must include username and email";

fn err(line: u64, message: impl Into<String>) -> ImportError {
    ImportError {
        line: Some(line),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
