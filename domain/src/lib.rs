//! Links as Curtain's domain knows them, apart from any web or storage layer: short codes
//! (their alphabet and the keyed permutation that makes them from ids), link targets (what a
//! link may point to, and the `Location` a stored target becomes), and the time and hash
//! conventions every writer shares. Used by the api, the CSV import and the worker alike.

pub mod short_code;
pub mod target_url;

pub use short_code::{CodeGenerator, ShortCode};
pub use target_url::{TargetUrl, to_location, with_query_params};

use chrono::NaiveDateTime;
use md5::{Digest, Md5};

/// Now, in UTC, truncated to whole seconds (what the API stores and shows).
#[must_use]
pub fn now() -> NaiveDateTime {
    use chrono::Timelike;
    let now = chrono::Utc::now().naive_utc();
    now.with_nanosecond(0).unwrap_or(now)
}

/// A 64-bit hash of a target, indexed for the idempotent-create look-up.
#[must_use]
pub fn url_hash(target: &str) -> i64 {
    let digest = Md5::digest(target.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}
