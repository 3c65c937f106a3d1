//! `GET /urls/<id>/qr`: the QR code of a link's short URL (`<base>/r/<code>`, the base being
//! `PUBLIC_BASE_URL` or the request's host), as PNG or SVG. Drawn per request: no cache, no
//! event (showing a code is not a click).

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi, ResponseContent};

use super::{NOT_FOUND, find};
use crate::error::{ApiError, ApiResult};
use crate::qr::{self, DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, QrError};
use crate::routes::{Api, Tag, base_url, path_id};

pub struct QrApi(pub Api);

/// The image, in the format asked for.
#[derive(ResponseContent)]
pub enum QrImage {
    /// `format=png` (default): 1-bit grayscale, `size` × `size` pixels.
    #[oai(content_type = "image/png")]
    Png(Binary<Vec<u8>>),
    /// `format=svg`: `width` and `height` are `size`.
    #[oai(content_type = "image/svg+xml")]
    Svg(Binary<Vec<u8>>),
}

#[derive(ApiResponse)]
pub enum QrRead {
    /// The QR code of the link's short URL.
    #[oai(status = 200)]
    Ok(QrImage),
}

#[derive(Clone, Copy)]
enum Format {
    Png,
    Svg,
}

fn parse_format(raw: Option<&str>) -> ApiResult<Format> {
    match raw.map(|f| f.trim().to_ascii_lowercase()).as_deref() {
        None | Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        Some(_) => Err(ApiError::bad_request(
            "Query parameter 'format' must be 'png' or 'svg'",
        )),
    }
}

fn parse_size(raw: Option<&str>) -> ApiResult<u32> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_SIZE);
    };
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|s| (MIN_SIZE..=MAX_SIZE).contains(s))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Query parameter 'size' must be an integer from {MIN_SIZE} to {MAX_SIZE}"
            ))
        })
}

#[OpenApi(tag = "Tag::Urls")]
impl QrApi {
    /// QR code of a link
    ///
    /// The QR code of the link's short URL (`<base>/r/<code>`), for print or screens.
    /// `format` is `png` (default) or `svg`; `size` is the image's width and height in
    /// pixels, 64 to 2048 (default 256). 400 for another format or size (or a size below the
    /// code's module count, which only a very long base URL can reach); 404 for an unknown id.
    #[oai(path = "/urls/:id/qr", method = "get")]
    async fn qr(
        &self,
        id: Path<String>,
        format: Query<Option<String>>,
        size: Query<Option<String>>,
        req: &Request,
    ) -> ApiResult<QrRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let format = parse_format(format.as_deref())?;
        let size = parse_size(size.as_deref())?;
        let link = find(&self.0, id).await?;
        let short_url = format!("{}/r/{}", base_url(&self.0, req), link.short_code);
        let image = match format {
            Format::Png => qr::png(&short_url, size).map(|b| QrImage::Png(Binary(b))),
            Format::Svg => qr::svg(&short_url, size).map(|s| QrImage::Svg(Binary(s.into_bytes()))),
        };
        match image {
            Ok(image) => Ok(QrRead::Ok(image)),
            Err(QrError::TooSmall(min)) => Err(ApiError::bad_request(format!(
                "Query parameter 'size' must be at least {min} for this link"
            ))),
            Err(e) => Err(ApiError::internal(&e)),
        }
    }
}
