//! The one error type of the HTTP API and the catch-all that turns every other failure (unknown
//! route, wrong method, framework parse errors, panics) into the contract's JSON envelopes.
//!
//! Rules: 4xx bodies say what the client did wrong; a 5xx body never leaks internals and is
//! logged exactly once, here, with the request id.

use std::collections::BTreeMap;

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The error envelope: `{"error": "<message>"}`.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

/// The user-validation envelope: `{"errors": {"<field>": "<message>"}}` (first error only).
#[derive(Debug, Clone, Object)]
pub struct FieldErrors {
    /// The field that failed and why.
    pub errors: BTreeMap<String, String>,
}

/// Every error an API operation can answer.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is invalid; the message names the field or parameter.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The resource does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The resource conflicts with an existing one (e.g. a custom alias already taken).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is larger than this endpoint reads.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// A user field is invalid (users endpoints only).
    #[oai(status = 422)]
    Unprocessable(Json<FieldErrors>),
    /// The client spent its rate limit (writes, bulk imports) or its attempts at a password
    /// link; `Retry-After` says when to retry, `RateLimit-Limit`/`-Remaining`/`-Reset`
    /// describe the write budgets.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
    /// An unexpected failure; it is logged with the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// Too many requests in progress, a request that ran past `REQUEST_TIMEOUT_SECONDS`, or a
    /// dependency that is not configured.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

pub type ApiResult<T> = Result<T, ApiError>;

fn body(message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: message.into(),
    })
}

impl ApiError {
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(body(message))
    }

    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(body(message))
    }

    #[must_use]
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(body(message))
    }

    #[must_use]
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(body(message))
    }

    /// A 429 with `Retry-After: retry_after` (seconds).
    #[must_use]
    pub fn too_many(message: impl Into<String>, retry_after: u64) -> Self {
        Self::TooManyRequests(body(message), Some(retry_after))
    }

    #[must_use]
    pub fn too_large() -> Self {
        Self::PayloadTooLarge(body("Request body too large"))
    }

    #[must_use]
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Unprocessable(Json(FieldErrors {
            errors: BTreeMap::from([(field.to_owned(), message.into())]),
        }))
    }

    /// A generic 500; `cause` is logged (once, here) and never shown to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %current_request_id(), error = %cause, "request failed");
        Self::Internal(body("Internal server error"))
    }

    /// The message of a `{"error": ...}` envelope (used by the HTML UI).
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(b)
            | Self::NotFound(b)
            | Self::Conflict(b)
            | Self::PayloadTooLarge(b)
            | Self::TooManyRequests(b, _)
            | Self::Unavailable(b)
            | Self::Internal(b) => b.error.clone(),
            Self::Unprocessable(f) => f.errors.values().next().cloned().unwrap_or_default(),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::internal(&err)
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

/// A JSON error response with the contract's envelope.
#[must_use]
pub fn json_error(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::json!({ "error": message }).to_string())
}

/// The header carrying the request id (taken from the client when it is a sane token,
/// generated otherwise) and echoed on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub(crate) fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Maps anything that escaped the handlers to the contract's envelopes.
///
/// Every request runs in a span carrying its request id, so a 500 is logged (once, where it
/// is turned into the envelope) with that id. A panicking handler is a 500 too, not a dropped
/// connection.
pub async fn catch_all<E: Endpoint>(
    allowed: std::sync::Arc<crate::spec::AllowedMethods>,
    ep: E,
    req: Request,
) -> poem::Result<Response> {
    use futures_util::FutureExt;

    let id = request_id(&req);
    let path = req.uri().path().to_owned();
    // A task-local rather than a tracing span: the id costs nothing unless something is logged.
    let outcome = REQUEST_ID
        .scope(
            id.clone(),
            std::panic::AssertUnwindSafe(ep.call(req)).catch_unwind(),
        )
        .await;
    let mut resp = match outcome {
        Ok(Ok(resp)) => resp.into_response(),
        Ok(Err(err)) => REQUEST_ID.sync_scope(id.clone(), || error_response(err)),
        Err(panic) => {
            let cause = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            tracing::error!(request_id = %id, panic = %cause, "request panicked");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = allowed.for_path(&path)
        && let Ok(value) = poem::http::HeaderValue::from_str(methods)
    {
        resp.headers_mut().insert(poem::http::header::ALLOW, value);
    }
    set_request_id(&mut resp, &id);
    Ok(resp)
}

/// Echoes the request id on a response.
pub(crate) fn set_request_id(resp: &mut Response, id: &str) {
    if let Ok(value) = poem::http::HeaderValue::from_str(id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served (for logs), or `-` outside a request.
pub(crate) fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

fn error_response(err: poem::Error) -> Response {
    use poem::error::{MethodNotAllowedError, NotFoundError, ReadBodyError};
    if err.is::<NotFoundError>() {
        return json_error(StatusCode::NOT_FOUND, "Not found");
    }
    if err.is::<MethodNotAllowedError>() {
        return json_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    if let Some(ReadBodyError::PayloadTooLarge) = err.downcast_ref::<ReadBodyError>() {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    }
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    if status.is_server_error() {
        tracing::error!(request_id = %current_request_id(), error = %err, "request failed");
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    }
    if status == StatusCode::NOT_FOUND {
        return json_error(status, "Not found");
    }
    if status == StatusCode::UNAUTHORIZED {
        return json_error(
            status,
            "Missing or malformed Authorization: Bearer <token> header",
        );
    }
    json_error(status, &err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_a_json_500_with_a_request_id() {
        let ep = poem::endpoint::make_sync(|_| -> &'static str { panic!("boom") });
        let resp = catch_all(std::sync::Arc::default(), ep, Request::default())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(resp.headers().contains_key(REQUEST_ID_HEADER));
        let body = resp.into_body().into_string().await.unwrap();
        assert_eq!(body, r#"{"error":"Internal server error"}"#);
    }

    #[tokio::test]
    async fn a_sane_client_request_id_is_echoed_and_junk_is_replaced() {
        let ep = poem::endpoint::make_sync(|_| "ok");
        let req = Request::builder()
            .header(REQUEST_ID_HEADER, "abc-123")
            .finish();
        let resp = catch_all(std::sync::Arc::default(), ep, req).await.unwrap();
        assert_eq!(resp.headers()[REQUEST_ID_HEADER], "abc-123");
        let ep = poem::endpoint::make_sync(|_| "ok");
        let req = Request::builder().header(REQUEST_ID_HEADER, "a b").finish();
        let resp = catch_all(std::sync::Arc::default(), ep, req).await.unwrap();
        assert_ne!(resp.headers()[REQUEST_ID_HEADER], "a b");
    }
}
