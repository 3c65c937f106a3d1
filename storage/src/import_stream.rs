//! The users CSV of `POST /users/bulk`, imported from a file in constant memory: the upload is
//! spooled to a temporary file, read twice by the CSV parser on a blocking thread and inserted
//! in chunks as it is parsed. The first pass inserts the rows with an explicit id, the second
//! the rows without one (after the id sequence is moved past every explicit id), as
//! [`crate::import::insert_skipping_existing`] does for a parsed file. Every row is validated
//! in both passes, so the first bad row (in file order) stops the import with its line; the
//! caller's transaction then rolls back whatever was inserted before it.

use std::io::{Seek, SeekFrom};

use entity::user;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr};

use crate::import::{ImportError, advance_sequence, for_each_user, insert_skipping_existing};

/// Rows handed from the parser to the inserter at a time.
const CHUNK: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A row the import refuses (400).
    #[error("{0}")]
    Import(ImportError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<ImportError> for StreamError {
    fn from(e: ImportError) -> Self {
        Self::Import(e)
    }
}

fn io(e: &std::io::Error) -> StreamError {
    StreamError::Import(ImportError {
        line: None,
        message: format!("could not read the upload: {e}"),
    })
}

/// Imports the users of `file` (a CSV in the legacy format) inside `db`, which should be a
/// transaction; returns the rows inserted.
pub async fn import_users_file<C: ConnectionTrait>(
    db: &C,
    file: std::fs::File,
) -> Result<u64, StreamError> {
    let mut inserted = 0;
    for with_id in [true, false] {
        let mut reader = file.try_clone().map_err(|e| io(&e))?;
        reader.seek(SeekFrom::Start(0)).map_err(|e| io(&e))?;
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Result<Vec<user::ActiveModel>, ImportError>>(2);
        let parser = tokio::task::spawn_blocking(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            // Rows left for the other pass.
            let mut others = 0u64;
            let parsed = for_each_user(std::io::BufReader::new(reader), |row| {
                if row.get_primary_key_value().is_some() == with_id {
                    chunk.push(row);
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        // The inserter stopped (a database error): stop reading too.
                        tx.blocking_send(Ok(full)).map_err(|_| ImportError {
                            line: None,
                            message: "import stopped".to_owned(),
                        })?;
                    }
                } else {
                    others += 1;
                }
                Ok(())
            });
            let last = match parsed {
                Ok(()) => Ok(chunk),
                Err(e) => Err(e),
            };
            let _ = tx.blocking_send(last);
            others
        });
        while let Some(rows) = rx.recv().await {
            let rows = rows?;
            if !rows.is_empty() {
                inserted += insert_skipping_existing(db, rows, |_| {}).await?;
            }
        }
        // A file whose rows all carry an id (the seed's) is read once, not twice.
        if parser.await.unwrap_or(1) == 0 {
            break;
        }
    }
    advance_sequence(db, "users").await?;
    Ok(inserted)
}
