//! CSV import in the legacy data set's format (`users.csv`, `urls.csv`, `events.csv`), shared
//! by `POST /users/bulk` and `curtain-ops import`.
//!
//! A file is parsed and validated completely before anything is written, so a bad row inserts
//! nothing and the error names its line. Rows are keyed by explicit id: a row whose id already
//! exists is skipped, so importing the same file twice inserts nothing the second time.
//! PostgreSQL sequences are advanced past the largest imported id.

use std::fmt;

use chrono::NaiveDateTime;
use entity::{event, url, user};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ConnectionTrait, DbBackend, DbErr, EntityTrait,
};

use domain::now;

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

/// Reads CSV records as strings, tolerating a BOM and refusing non-UTF-8 bytes by line.
/// A header row and the data rows with their 1-based line numbers.
type Records = (Vec<String>, Vec<(u64, Vec<String>)>);

fn records(data: &[u8]) -> Result<Records, ImportError> {
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
fn each_record<R: std::io::Read>(
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

struct Row<'a> {
    line: u64,
    headers: &'a [String],
    fields: &'a [String],
}

impl Row<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let idx = self.headers.iter().position(|h| h == name)?;
        self.fields
            .get(idx)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn id(&self, name: &str) -> Result<Option<i64>, ImportError> {
        self.get(name)
            .map(|raw| {
                raw.parse::<i64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| err(self.line, format!("invalid {name} '{raw}'")))
            })
            .transpose()
    }

    fn timestamp(&self, name: &str) -> Result<Option<NaiveDateTime>, ImportError> {
        self.get(name)
            .map(|raw| {
                parse_timestamp(raw)
                    .ok_or_else(|| err(self.line, format!("invalid {name} '{raw}'")))
            })
            .transpose()
    }

    fn text(&self, name: &str, max: usize) -> Result<Option<String>, ImportError> {
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

fn rows<'a>(
    headers: &'a [String],
    data: &'a [(u64, Vec<String>)],
) -> impl Iterator<Item = Row<'a>> {
    data.iter().map(move |(line, fields)| Row {
        line: *line,
        headers,
        fields,
    })
}

fn opt<T: Into<sea_orm::Value> + Clone>(v: Option<T>) -> sea_orm::ActiveValue<T> {
    v.map_or(NotSet, Set)
}

/// Parses `users.csv`: `username`, `email` required; `id`, `created_at` optional.
pub fn parse_users(data: &[u8]) -> Result<Vec<user::ActiveModel>, ImportError> {
    let mut out = Vec::new();
    for_each_user(data, |row| {
        out.push(row);
        Ok(())
    })?;
    Ok(out)
}

/// The users of a `users.csv` read from `reader`, validated and handed to `each` one at a time
/// (constant memory: see [`crate::import_stream`]).
pub fn for_each_user<R: std::io::Read>(
    reader: R,
    mut each: impl FnMut(user::ActiveModel) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    each_record(reader, |line, headers, fields| {
        let row = Row {
            line,
            headers,
            fields: &fields,
        };
        each(user_row(&row)?)
    })
    .map(|_| ())
}

fn user_row(row: &Row<'_>) -> Result<user::ActiveModel, ImportError> {
    let (Some(_), Some(_)) = (row.get("username"), row.get("email")) else {
        return Err(ImportError {
            line: None,
            message: USERS_REQUIRED.to_owned(),
        });
    };
    let email = row.text("email", 255)?.unwrap_or_default();
    Ok(user::ActiveModel {
        id: opt(row.id("id")?),
        username: Set(row.text("username", 120)?.unwrap_or_default()),
        email: Set(email.clone()),
        email_key: Set(Some(email.to_lowercase())),
        created_at: Set(row.timestamp("created_at")?.unwrap_or_else(now)),
    })
}

/// Parses `urls.csv`: `id, user_id, short_code, original_url, title, is_active, created_at,
/// updated_at`; `short_code` and `original_url` required.
pub fn parse_urls(data: &[u8]) -> Result<Vec<url::ActiveModel>, ImportError> {
    let (headers, data) = records(data)?;
    let mut out = Vec::with_capacity(data.len());
    for row in rows(&headers, &data) {
        let code = row
            .get("short_code")
            .filter(|c| domain::ShortCode::parse(c).is_some())
            .ok_or_else(|| err(row.line, "short_code must be 1-16 base62 characters"))?;
        let raw_target = row
            .text("original_url", 2048)?
            .ok_or_else(|| err(row.line, "original_url is required"))?;
        // The same rule as `POST /urls`: an import must not smuggle in a `javascript:` link.
        let target = domain::TargetUrl::parse(&raw_target)
            .ok_or_else(|| {
                err(
                    row.line,
                    format!("original_url '{raw_target}' must be an http(s) URL with a valid host"),
                )
            })?
            .into_string();
        let is_active = match row.get("is_active").map(str::to_ascii_lowercase).as_deref() {
            None | Some("true" | "1" | "t" | "yes") => true,
            Some("false" | "0" | "f" | "no") => false,
            Some(other) => return Err(err(row.line, format!("invalid is_active '{other}'"))),
        };
        let created = row.timestamp("created_at")?.unwrap_or_else(now);
        out.push(url::ActiveModel {
            id: opt(row.id("id")?),
            user_id: Set(row.id("user_id")?),
            short_code: Set(code.to_owned()),
            original_url_hash: Set(domain::url_hash(&target)),
            original_url: Set(target),
            title: Set(row.text("title", 255)?),
            is_active: Set(is_active),
            created_at: Set(created),
            updated_at: Set(row.timestamp("updated_at")?.unwrap_or(created)),
        });
    }
    Ok(out)
}

/// Parses `events.csv`: `id, url_id, user_id, event_type, timestamp, details` (details a JSON
/// object or empty).
pub fn parse_events(data: &[u8]) -> Result<Vec<event::ActiveModel>, ImportError> {
    let (headers, data) = records(data)?;
    let mut out = Vec::with_capacity(data.len());
    for row in rows(&headers, &data) {
        let event_type = row
            .text("event_type", 64)?
            .ok_or_else(|| err(row.line, "event_type is required"))?;
        let details = row
            .get("details")
            .map(|raw| match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(v @ serde_json::Value::Object(_)) => Ok(v),
                _ => Err(err(row.line, "details must be a JSON object")),
            })
            .transpose()?;
        out.push(event::ActiveModel {
            id: opt(row.id("id")?),
            url_id: Set(row.id("url_id")?),
            user_id: Set(row.id("user_id")?),
            event_type: Set(event_type),
            timestamp: Set(row.timestamp("timestamp")?.unwrap_or_else(now)),
            details: Set(details),
            click_id: Set(None),
            visitor_hash: Set(None),
            user_agent: Set(None),
            referrer: Set(None),
        });
    }
    Ok(out)
}

const CHUNK: usize = 500;

/// Inserts rows, skipping ids that exist; returns how many were inserted. Call inside a
/// transaction to make the whole file atomic. `progress` is told after each chunk.
///
/// Rows with an explicit id go first; rows without one are inserted afterwards, with fresh
/// ids from a sequence advanced past every explicit id. (One multi-row `INSERT` cannot mix
/// them: the missing ids would be sent as `NULL`, which PostgreSQL refuses, and a sequence
/// still behind the explicit ids would hand out ids that then clash and are silently skipped.)
pub async fn insert_skipping_existing<E, A, C, P>(
    db: &C,
    rows: Vec<A>,
    mut progress: P,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    C: ConnectionTrait,
    P: FnMut(u64),
{
    let (with_id, without_id): (Vec<A>, Vec<A>) = rows
        .into_iter()
        .partition(|row| row.get_primary_key_value().is_some());
    let mut inserted = insert_chunks(db, with_id, &mut progress).await?;
    if !without_id.is_empty() {
        advance_sequence(db, E::default().table_name()).await?;
        inserted += insert_chunks(db, without_id, &mut progress).await?;
    }
    Ok(inserted)
}

async fn insert_chunks<E, A, C, P>(db: &C, rows: Vec<A>, progress: &mut P) -> Result<u64, DbErr>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    C: ConnectionTrait,
    P: FnMut(u64),
{
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        let n = chunk.len() as u64;
        let pk = E::PrimaryKey::iter().map(sea_orm::PrimaryKeyToColumn::into_column);
        let result = E::insert_many(chunk)
            .on_conflict(OnConflict::columns(pk).do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
        inserted += result;
        progress(n);
    }
    Ok(inserted)
}

/// Moves a PostgreSQL id sequence past the largest id (SQLite's AUTOINCREMENT does this itself).
/// It only ever moves forward, like AUTOINCREMENT: ids handed out before (even of rows deleted
/// since) are never handed out again, and an empty table still starts at 1.
pub async fn advance_sequence<C: ConnectionTrait>(db: &C, table: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(&format!(
            "WITH s AS (SELECT pg_get_serial_sequence('{table}', 'id') AS seq), \
                  m AS (SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), \
                                        COALESCE(pg_sequence_last_value((SELECT seq FROM s)::regclass), 0)) AS v) \
             SELECT setval((SELECT seq FROM s), GREATEST((SELECT v FROM m), 1), (SELECT v FROM m) > 0)"
        ))
        .await?;
    }
    Ok(())
}

use sea_orm::Iterable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_csv_with_bom_and_both_timestamp_forms() {
        let data = "\u{feff}id,username,email,created_at\n1,a,a@x.io,2025-01-02 03:04:05\n,b,b@x.io,2025-01-02T03:04:05\n";
        let rows = parse_users(data.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let e = parse_users(b"id,username,email\n1,a,a@x.io\nx,b,b@x.io\n").unwrap_err();
        assert_eq!(e.to_string(), "CSV row 3: invalid id 'x'");
        let e = parse_users(b"username,email,created_at\na,a@x.io,yesterday\n").unwrap_err();
        assert_eq!(e.to_string(), "CSV row 2: invalid created_at 'yesterday'");
        let e = parse_users(b"username,email\na,a@x.io\n\xff,b@x.io\n").unwrap_err();
        assert_eq!(e.to_string(), "CSV row 3: not valid UTF-8");
        let e = parse_users(b"username,email\na,\n").unwrap_err();
        assert_eq!(e.to_string(), USERS_REQUIRED);
    }

    #[test]
    fn seed_style_urls_and_events_parse() {
        let urls = "id,user_id,short_code,original_url,title,is_active,created_at,updated_at\n\
                    1,1,d5DnL5,https://a.io/1,Title,True,2025-10-14 15:07:51,2026-01-22 14:39:15\n\
                    2,,KZ6mAC,https://a.io/2,,False,2025-05-17 10:37:38,2025-12-12 13:13:18\n";
        assert_eq!(parse_urls(urls.as_bytes()).unwrap().len(), 2);
        let events = "id,url_id,user_id,event_type,timestamp,details\n\
                      1,1,1,created,2025-10-14 15:07:51,\"{\"\"short_code\"\":\"\"d5DnL5\"\"}\"\n\
                      2,1,,deleted,2025-10-14 15:07:51,\n";
        assert_eq!(parse_events(events.as_bytes()).unwrap().len(), 2);
        let bad = "id,url_id,user_id,event_type,timestamp,details\n1,1,1,created,2025-10-14 15:07:51,[1]\n";
        let xss =
            "id,short_code,original_url\n1,aaaaaa,https://a.io/1\n2,bbbbbb,javascript:alert(1)\n";
        assert_eq!(
            parse_urls(xss.as_bytes()).unwrap_err().to_string(),
            "CSV row 3: original_url 'javascript:alert(1)' must be an http(s) URL with a valid host"
        );
        let port = "id,short_code,original_url\n1,aaaaaa,https://a.io:99999/\n";
        assert_eq!(parse_urls(port.as_bytes()).unwrap_err().line, Some(2));
        assert_eq!(
            parse_events(bad.as_bytes()).unwrap_err().to_string(),
            "CSV row 2: details must be a JSON object"
        );
    }
}
