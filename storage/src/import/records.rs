//! Reading a CSV file into validated rows: records, their fields, and timestamps.

use chrono::NaiveDateTime;

use super::{ImportError, err};

/// Reads CSV records as strings, tolerating a BOM and refusing non-UTF-8 bytes by line.
/// A header row and the data rows with their 1-based line numbers.
type Records = (Vec<String>, Vec<(u64, Vec<String>)>);

pub(super) fn records(data: &[u8]) -> Result<Records, ImportError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let headers = reader
        .byte_headers()
        .map_err(|e| ImportError {
            line: Some(1),
            message: format!("unreadable header: {e}"),
        })?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    let mut rows = Vec::new();
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
        rows.push((line, fields));
    }
    Ok((headers, rows))
}

pub(super) struct Row<'a> {
    pub(super) line: u64,
    headers: &'a [String],
    fields: &'a [String],
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
