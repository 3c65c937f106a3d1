//! `POST /users/bulk`: CSV import of users (multipart part `file`). The file is validated
//! whole before anything is written; rows whose id exists are skipped; one transaction.

use poem::web::Multipart;
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::multipart::Upload;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Multipart as MultipartDoc,
    OpenApi,
};
use sea_orm::TransactionTrait;

use super::{Api, Tag};
use crate::error::{ApiError, ApiResult};
use crate::models::ImportCount;
use storage::import_stream::{StreamError, import_users_file};

pub struct BulkApi(pub Api);

/// CSV uploads may be much larger than JSON bodies.
pub const CSV_BODY_LIMIT: usize = 64 * 1024 * 1024;
const FILE_REQUIRED: &str = "Field 'file' is required";

/// Multipart form of `POST /users/bulk`.
#[derive(Debug, MultipartDoc)]
pub struct UsersCsv {
    /// CSV with a header row: `username`, `email` (required), optional `id` and `created_at`
    /// (`YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`). UTF-8; a BOM is tolerated.
    pub file: Upload,
}

/// The uploaded `file` part, streamed into an unnamed temporary file (deleted when closed), or
/// `None` when the part is missing or has no file name. Nothing of the upload is held in memory
/// beyond one read buffer.
pub struct CsvUpload(Option<std::fs::File>);

/// Copies the `file` part into a temporary file, at most [`CSV_BODY_LIMIT`] bytes (413 past it).
async fn spool(field: poem::web::Field) -> Result<std::fs::File, ApiError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let unreadable =
        |e: std::io::Error| ApiError::bad_request(format!("Could not read the request body: {e}"));
    let temp = tempfile::tempfile().map_err(|e| ApiError::internal(&e))?;
    let mut file = tokio::fs::File::from_std(temp);
    let mut reader = std::pin::pin!(field.into_async_read());
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    loop {
        let n = reader.read(&mut buf).await.map_err(unreadable)?;
        if n == 0 {
            break;
        }
        total += n;
        if total > CSV_BODY_LIMIT {
            return Err(ApiError::too_large());
        }
        file.write_all(&buf[..n])
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    file.flush().await.map_err(|e| ApiError::internal(&e))?;
    file.rewind().await.map_err(|e| ApiError::internal(&e))?;
    Ok(file.into_std().await)
}

impl<'a> ApiExtractor<'a> for CsvUpload {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <UsersCsv as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "multipart/form-data",
                schema: <UsersCsv as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        // A declared length past the limit is refused before anything is read.
        let declared = req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > CSV_BODY_LIMIT as u64) {
            return Err(ApiError::too_large().into());
        }
        let Ok(mut multipart) = <Multipart as FromRequest>::from_request(req, body).await else {
            return Ok(Self(None));
        };
        while let Ok(Some(field)) = multipart.next_field().await {
            if field.name() == Some("file") && field.file_name().is_some_and(|n| !n.is_empty()) {
                return Ok(Self(Some(spool(field).await?)));
            }
        }
        Ok(Self(None))
    }
}

#[derive(ApiResponse)]
pub enum Imported {
    /// Rows were inserted.
    #[oai(status = 201)]
    Created(Json<ImportCount>),
    /// Nothing new: every row's id already existed (or the file had no rows).
    #[oai(status = 200)]
    Unchanged(Json<ImportCount>),
}

#[OpenApi(tag = "Tag::Users")]
impl BulkApi {
    /// Import users from CSV
    ///
    /// Multipart part `file`. A row without username or email, an unparseable id or
    /// created_at, or a non-UTF-8 byte answers 400 and inserts nothing. Rows whose id already
    /// exists are skipped, so re-uploading a file inserts nothing. Answers `{"count": n}`: 201
    /// if n > 0, else 200.
    #[oai(path = "/users/bulk", method = "post")]
    async fn bulk(&self, upload: CsvUpload) -> ApiResult<Imported> {
        let file = upload
            .0
            .ok_or_else(|| ApiError::bad_request(FILE_REQUIRED))?;
        // One transaction: a bad row rolls back whatever was inserted before it.
        let txn = self.0.db.begin().await?;
        let count = match import_users_file(&txn, file).await {
            Ok(count) => count,
            Err(StreamError::Import(e)) => return Err(ApiError::bad_request(e.to_string())),
            Err(StreamError::Db(e)) => return Err(e.into()),
        };
        txn.commit().await?;
        let body = Json(ImportCount { count });
        Ok(if count > 0 {
            Imported::Created(body)
        } else {
            Imported::Unchanged(body)
        })
    }
}
