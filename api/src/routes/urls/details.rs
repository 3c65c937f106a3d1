//! `/urls/<id>/details`: a link's options beyond the contract's `Url`, read and changed apart
//! from it so that the contract's payloads keep their exact key set.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, TransactionTrait, TryIntoModel};

use super::create::{after_link_write, link_data};
use super::options::{Change, OptionPatch, PATCH_KEYS, has_options};
use super::tags::{replace_tags, tags_of};
use super::{NOT_FOUND, find};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::models::{LinkDetails, LinkOptionsUpdate, now};
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
        let tags = tags_of(&self.0.db, &[id])
            .await?
            .remove(&id)
            .unwrap_or_default();
        Ok(DetailsRead::Ok(Json(LinkDetails::of(&row, tags))))
    }

    /// Change a link's options
    ///
    /// 404 first; the body must be an object of options to change (absent: unchanged, `null`:
    /// back to the default); any other key (the short code included: codes never change) is a
    /// 400 naming the first one (sorted), as is an invalid value. A change sets `updated_at`
    /// and invalidates every cache of the link, its redirect included, on every instance.
    /// `{}` answers 200 unchanged.
    #[oai(path = "/urls/:id/details", method = "patch")]
    async fn patch_details(
        &self,
        id: Path<String>,
        body: JsonBody<LinkOptionsUpdate>,
    ) -> ApiResult<DetailsRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let existing = find(&self.0, id).await?;
        let obj = body
            .object()
            .ok_or_else(|| ApiError::bad_request("JSON body must be an object"))?;
        let mut unknown: Vec<&String> = obj
            .keys()
            .filter(|k| !PATCH_KEYS.contains(&k.as_str()))
            .collect();
        unknown.sort();
        if let Some(key) = unknown.first() {
            return Err(ApiError::bad_request(format!(
                "Field '{key}' cannot be updated"
            )));
        }
        let patch = OptionPatch::parse(obj)?;
        let old_tags = tags_of(&self.0.db, &[id])
            .await?
            .remove(&id)
            .unwrap_or_default();
        if patch.is_empty() {
            return Ok(DetailsRead::Ok(Json(LinkDetails::of(&existing, old_tags))));
        }
        let mut active: entity::url::ActiveModel = existing.clone().into();
        let tags = match patch.apply(&mut active).await? {
            Change::Keep => old_tags.clone(),
            Change::Reset => Vec::new(),
            Change::To(tags) => tags,
        };
        let preview = active.clone().try_into_model()?;
        if preview == existing && tags == old_tags {
            return Ok(DetailsRead::Ok(Json(LinkDetails::of(&existing, old_tags))));
        }
        active.has_options = Set(has_options(&preview, !tags.is_empty()));
        active.updated_at = Set(now());
        let txn = self.0.db.begin().await?;
        let row = active.update(&txn).await?;
        if tags != old_tags {
            replace_tags(&txn, id, &tags).await?;
        }
        storage::webhooks::record_link_event(
            &txn,
            storage::webhooks::LINK_UPDATED,
            &link_data(&row, Some(LinkDetails::of(&row, tags.clone()))),
            now(),
        )
        .await?;
        txn.commit().await?;
        after_link_write(&self.0, &row).await;
        Ok(DetailsRead::Ok(Json(LinkDetails::of(&row, tags))))
    }
}
