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
    /// The request body is larger than this endpoint reads.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// A user field is invalid (users endpoints only).
    #[oai(status = 422)]
    Unprocessable(Json<FieldErrors>),
    /// An unexpected failure; it is logged with the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
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
        tracing::error!(error = %cause, "request failed");
        Self::Internal(body("Internal server error"))
    }

    /// The message of a `{"error": ...}` envelope (used by the HTML UI).
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(b)
            | Self::NotFound(b)
            | Self::PayloadTooLarge(b)
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

/// Maps anything that escaped the handlers to the contract's envelopes.
pub async fn catch_all<E: Endpoint>(ep: E, req: Request) -> poem::Result<Response> {
    match ep.call(req).await {
        Ok(resp) => Ok(resp.into_response()),
        Err(err) => Ok(error_response(err)),
    }
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
        tracing::error!(error = %err, "request failed");
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    }
    if status == StatusCode::NOT_FOUND {
        return json_error(status, "Not found");
    }
    json_error(status, &err.to_string())
}
