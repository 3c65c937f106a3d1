//! `/urls/<id>/details`: a link's options beyond the contract's `Url`, read (and, for the
//! options that may change, changed) apart from it so that the contract's payloads keep their
//! exact key set.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::{NOT_FOUND, find};
use crate::error::ApiResult;
use crate::models::LinkDetails;
use crate::routes::{Api, Tag, path_id};

pub struct DetailsApi(pub Api);

#[derive(ApiResponse)]
pub enum DetailsRead {
    /// The link's options.
    #[oai(status = 200)]
    Ok(Json<LinkDetails>),
}

#[OpenApi(tag = "Tag::Urls")]
impl DetailsApi {
    /// Get a link's options
    ///
    /// The options a link was created with (and has since been given): the same object
    /// `GET /urls/<id>?expand=details` shows as `details`. 404 for an unknown id.
    #[oai(path = "/urls/:id/details", method = "get")]
    async fn get_details(&self, id: Path<String>) -> ApiResult<DetailsRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let row = find(&self.0, id).await?;
        Ok(DetailsRead::Ok(Json(LinkDetails::of(&row))))
    }
}
