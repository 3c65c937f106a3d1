//! Reading a CSV file into validated rows: records, their fields, and timestamps.

use chrono::NaiveDateTime;

use super::{ImportError, err};

/// Reads CSV records as strings, tolerating a BOM and refusing non-UTF-8 bytes by line.
/// A header row and the data rows with their 1-based line numbers.
type Records = (Vec<String>, Vec<(u64, Vec<String>)>);

pub(super) fn records(data: &[u8]) -> Result<Records, ImportError> {
    let mut rows = Vec::new();
    let headers = each_record(data, |line, _, fields| {
        rows.push((line, fields));
        Ok(())
    })?;
    Ok((headers, rows))
}

/// Reads the CSV records of `reader` one at a time, tolerating a BOM and refusing non-UTF-8
/// bytes and NULs by line; blank rows are skipped. `each` gets the 1-based line, the header
/// names (trimmed, lower case) and the fields. Returns the header names.
pub(super) fn each_record<R: std::io::Read>(
    reader: R,
    mut each: impl FnMut(u64, &[String], Vec<String>) -> Result<(), ImportError>,
) -> Result<Vec<String>, ImportError> {
    let mut reader = std::io::BufReader::new(reader);
    {
        use std::io::BufRead;
        let start = reader.fill_buf().map_err(|e| ImportError {
            line: Some(1),
            message: format!("unreadable: {e}"),
        })?;
        if start.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        }
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = reader
        .byte_headers()
        .map_err(|e| ImportError {
            line: Some(1),
            message: format!("unreadable header: {e}"),
        })?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    for (i, record) in reader.byte_records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| err(line, format!("unreadable: {e}")))?;
        let fields = record
            .iter()
            .map(|f| String::from_utf8(f.to_vec()).map_err(|_| err(line, "not valid UTF-8")))
            .collect::<Result<Vec<_>, _>>()?;
        if fields.iter().any(|f| f.contains('\0')) {
            return Err(err(line, "contains a NUL character"));
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        each(line, &headers, fields)?;
    }
    Ok(headers)
}

pub(super) struct Row<'a> {
    pub(super) line: u64,
    pub(super) headers: &'a [String],
    pub(super) fields: &'a [String],
}

impl Row<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        let idx = self.headers.iter().position(|h| h == name)?;
        self.fields
            .get(idx)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    pub(super) fn id(&self, name: &str) -> Result<Option<i64>, ImportError> {
        self.get(name)
            .map(|raw| {
                raw.parse::<i64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| err(self.line, format!("invalid {name} '{raw}'")))
            })
            .transpose()
    }

    pub(super) fn timestamp(&self, name: &str) -> Result<Option<NaiveDateTime>, ImportError> {
        self.get(name)
            .map(|raw| {
                parse_timestamp(raw)
                    .ok_or_else(|| err(self.line, format!("invalid {name} '{raw}'")))
            })
            .transpose()
    }

    pub(super) fn text(&self, name: &str, max: usize) -> Result<Option<String>, ImportError> {
        match self.get(name) {
            Some(v) if v.chars().count() > max => Err(err(
                self.line,
                format!("{name} longer than {max} characters"),
            )),
            other => Ok(other.map(str::to_owned)),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (fractions of a second are dropped).
#[must_use]
pub fn parse_timestamp(raw: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
    .map(TruncateNanos::with_nanosecond_zero)
}

trait TruncateNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl TruncateNanos for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

pub(super) fn rows<'a>(
    headers: &'a [String],
    data: &'a [(u64, Vec<String>)],
) -> impl Iterator<Item = Row<'a>> {
    data.iter().map(move |(line, fields)| Row {
        line: *line,
        headers,
        fields,
    })
}
