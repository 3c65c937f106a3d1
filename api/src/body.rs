//! Request bodies read the contract's way.
//!
//! The contract treats malformed JSON, an empty body and a non-JSON content type alike as "no
//! body" and wants each endpoint to word its own message, so bodies are not parsed by
//! poem-openapi's `Json<T>` (which answers its own 400s). [`JsonBody<T>`] reads the raw bytes up
//! to [`JSON_BODY_LIMIT`] (413 beyond), parses them leniently, and still documents `T` as the
//! request schema in the OpenAPI spec.

use std::marker::PhantomData;

use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;

use crate::error::ApiError;

/// JSON bodies up to 2 MiB are read (so an over-long URL gets its own message).
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A JSON request body: `value` is `None` when the body is absent, empty, malformed or not
/// declared as JSON. `T` only documents the expected shape.
pub struct JsonBody<T> {
    pub value: Option<Value>,
    _schema: PhantomData<fn() -> T>,
}

impl<T> JsonBody<T> {
    /// The body as a JSON object, or `None` if it is something else (or nothing).
    pub fn object(&self) -> Option<&serde_json::Map<String, Value>> {
        self.value.as_ref().and_then(Value::as_object)
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
        })
}

/// Reads at most `limit` bytes of the body; more is a 413.
pub async fn read_limited(body: &mut RequestBody, limit: usize) -> Result<Vec<u8>, ApiError> {
    let Some(body) = body.take().ok() else {
        return Ok(Vec::new());
    };
    match body.into_bytes_limit(limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(ApiError::too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "Could not read the request body: {e}"
        ))),
    }
}

/// A body parsed without failing: whatever arrives becomes "no body" if it is not of the
/// documented type, and each endpoint words its own message.
trait LenientBody {
    const CONTENT_TYPE: &'static str;
    fn parse(content_type: Option<&str>, bytes: &[u8]) -> Self;
}

/// The poem-openapi extractor of a [`LenientBody`]: reads at most [`JSON_BODY_LIMIT`] bytes
/// (413 beyond) and documents `T` under the body's content type. (A macro because a blanket
/// impl would overlap poem-openapi's own for `FromRequest` types.)
macro_rules! lenient_extractor {
    ($body:ident) => {
        impl<'a, T: Type> ApiExtractor<'a> for $body<T> {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut Registry) {
                T::register(registry);
            }

            fn request_meta() -> Option<MetaRequest> {
                Some(MetaRequest {
                    description: None,
                    content: vec![MetaMediaType {
                        content_type: <Self as LenientBody>::CONTENT_TYPE,
                        schema: T::schema_ref(),
                    }],
                    required: true,
                })
            }

            async fn from_request(
                request: &'a Request,
                body: &mut RequestBody,
                _param_opts: ExtractParamOptions<Self::ParamType>,
            ) -> poem::Result<Self> {
                let bytes = read_limited(body, JSON_BODY_LIMIT).await?;
                Ok(<Self as LenientBody>::parse(request.content_type(), &bytes))
            }
        }
    };
}

impl<T> LenientBody for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn parse(content_type: Option<&str>, bytes: &[u8]) -> Self {
        let value = (is_json(content_type) && !bytes.is_empty())
            .then(|| serde_json::from_slice::<Value>(bytes).ok())
            .flatten();
        Self {
            value,
            _schema: PhantomData,
        }
    }
}

lenient_extractor!(JsonBody);

/// A `application/x-www-form-urlencoded` body as name/value pairs (empty when the body is
/// something else). `T` only documents the expected fields.
pub struct FormBody<T> {
    pub fields: Vec<(String, String)>,
    _schema: PhantomData<fn() -> T>,
}

impl<T> FormBody<T> {
    /// The first value of a field.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<T> LenientBody for FormBody<T> {
    const CONTENT_TYPE: &'static str = "application/x-www-form-urlencoded";

    fn parse(content_type: Option<&str>, bytes: &[u8]) -> Self {
        let is_form =
            content_type.is_some_and(|ct| ct.to_ascii_lowercase().starts_with(Self::CONTENT_TYPE));
        let fields = if is_form {
            serde_urlencoded::from_bytes(bytes).unwrap_or_default()
        } else {
            Vec::new()
        };
        Self {
            fields,
            _schema: PhantomData,
        }
    }
}

lenient_extractor!(FormBody);

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("application/json; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}
