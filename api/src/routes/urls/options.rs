//! Link options beyond the contract's `Url`: what a create may carry besides `original_url`,
//! `title` and `user_id`. Each option is checked after the contract's own fields, so a request
//! the contract knows gets the contract's first error.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::short_code::{AliasError, ShortCode};

/// The options of a create request, validated.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// The alias the client chose as the short code.
    pub custom_code: Option<ShortCode>,
}

impl CreateOptions {
    /// Reads the options of a create body; absent or null means "not set".
    pub fn parse(obj: &Map<String, Value>) -> ApiResult<Self> {
        let custom_code = match obj.get("custom_code") {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => Some(custom_code(raw)?),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Field 'custom_code' must be a string",
                ));
            }
        };
        Ok(Self { custom_code })
    }

    /// True when the create carries no option: the contract's idempotent create applies.
    pub fn is_plain(&self) -> bool {
        self.custom_code.is_none()
    }
}

fn custom_code(raw: &str) -> ApiResult<ShortCode> {
    ShortCode::custom(raw).map_err(|e| {
        ApiError::bad_request(match e {
            AliasError::Length | AliasError::Alphabet => {
                "Field 'custom_code' must be 3 to 16 characters of A-Z, a-z, 0-9, '_' and '-'"
                    .to_owned()
            }
            AliasError::Reserved => format!("Field 'custom_code' is a reserved word: '{raw}'"),
        })
    })
}

/// The 409 of a code already in use.
pub fn code_taken(code: &str) -> ApiError {
    ApiError::conflict(format!("Short code '{code}' is already taken"))
}
