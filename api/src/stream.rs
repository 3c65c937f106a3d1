//! Lists answered as a stream: `GET /users` and `GET /events` without paging would otherwise
//! hold the whole table in memory (2,000,000 events in the benchmark database). Rows are read
//! from the database as a stream and written as one JSON array in chunks of about 64 KiB,
//! through a bounded channel, so memory stays constant whatever the table's size. A database
//! error in the middle ends the body abruptly (the client sees a truncated answer, never a
//! short but valid-looking array).

use std::marker::PhantomData;

use futures_util::{Stream, TryStreamExt};
use poem::{Body, IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, FromQueryResult, Select};
use serde::Serialize;

/// Chunk size written at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks buffered between the database reader and the client.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A JSON array of `T`, documented as `Vec<T>`, produced by a background reader.
pub struct JsonArray<T> {
    chunks: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    _item: PhantomData<fn() -> T>,
}

impl<T: Type> Payload for JsonArray<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        <Vec<T> as Type>::schema_ref()
    }

    fn register(registry: &mut Registry) {
        <Vec<T> as Type>::register(registry);
    }
}

impl<T: Send> IntoResponse for JsonArray<T> {
    fn into_response(self) -> Response {
        let body = futures_util::stream::unfold(self.chunks, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        Response::builder()
            .content_type(CONTENT_TYPE)
            .body(Body::from_bytes_stream(body))
    }
}

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Streams the rows of `select`, each turned into `T` by `map`, as one JSON array.
pub fn rows<E, M, T>(db: &DatabaseConnection, select: Select<E>, map: M) -> JsonArray<T>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync + 'static,
    M: Fn(E::Model) -> T + Send + 'static,
    T: Serialize + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    let db = db.clone();
    tokio::spawn(async move {
        let result = async {
            let rows = select.stream(&db).await?;
            write_array(rows.map_ok(map), &tx).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "streamed list failed part-way; the answer is cut short");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    JsonArray {
        chunks: rx,
        _item: PhantomData,
    }
}

async fn write_array<T: Serialize>(
    rows: impl Stream<Item = Result<T, DbErr>>,
    tx: &tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
) -> Result<(), DbErr> {
    let mut rows = std::pin::pin!(rows);
    let mut buf = Vec::with_capacity(CHUNK + 1024);
    buf.push(b'[');
    let mut first = true;
    while let Some(row) = rows.try_next().await? {
        if !first {
            buf.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut buf, &row).map_err(|e| DbErr::Custom(e.to_string()))?;
        if buf.len() >= CHUNK {
            let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 1024));
            if tx.send(Ok(chunk.into())).await.is_err() {
                // The client went away: stop reading.
                return Ok(());
            }
        }
    }
    buf.push(b']');
    let _ = tx.send(Ok(buf.into())).await;
    Ok(())
}
