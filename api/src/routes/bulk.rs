//! `POST /users/bulk`: CSV import of users (multipart part `file`). The file is validated
//! whole before anything is written; rows whose id exists are skipped; one transaction.

use poem::web::Multipart;
use poem::{Body, FromRequest, Request, RequestBody};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::multipart::Upload;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Multipart as MultipartDoc,
    OpenApi,
};
use sea_orm::TransactionTrait;

use super::{Api, Tag};
use crate::body::read_limited;
use crate::error::{ApiError, ApiResult};
use crate::import::{advance_sequence, insert_skipping_existing, parse_users};
use crate::models::ImportCount;

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

/// The uploaded `file` part, or `None` when the part is missing or has no file name.
pub struct CsvUpload(Option<Vec<u8>>);

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
        let bytes = read_limited(body, CSV_BODY_LIMIT).await?;
        let mut body = RequestBody::new(Body::from(bytes));
        let Ok(mut multipart) = <Multipart as FromRequest>::from_request(req, &mut body).await
        else {
            return Ok(Self(None));
        };
        while let Ok(Some(field)) = multipart.next_field().await {
            if field.name() == Some("file") && field.file_name().is_some_and(|n| !n.is_empty()) {
                return Ok(Self(field.bytes().await.ok()));
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
        let data = upload
            .0
            .ok_or_else(|| ApiError::bad_request(FILE_REQUIRED))?;
        let rows = parse_users(&data).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let txn = self.0.db.begin().await?;
        let count = insert_skipping_existing(&txn, rows, |_| {}).await?;
        advance_sequence(&txn, "users").await?;
        txn.commit().await?;
        let body = Json(ImportCount { count });
        Ok(if count > 0 {
            Imported::Created(body)
        } else {
            Imported::Unchanged(body)
        })
    }
}
