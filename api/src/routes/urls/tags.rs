//! Tags of links: their rules, the `url_tags` rows that hold them, and the list filter
//! `GET /urls?tag=...&tag_mode=any|all`.

use std::collections::HashMap;

use entity::{url, url_tag};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::fields::char_len;

/// Most tags on one link.
pub const MAX_TAGS: usize = 20;
/// Longest tag.
pub const MAX_TAG: usize = 64;

/// A list of 0 to [`MAX_TAGS`] tags, each trimmed, 1 to [`MAX_TAG`] characters without commas
/// (the list filter's separator) or control characters; duplicates count once.
pub fn parse(value: &Value) -> ApiResult<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(ApiError::bad_request(
            "Field 'tags' must be a list of strings",
        ));
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(raw) = item else {
            return Err(ApiError::bad_request(
                "Field 'tags' must be a list of strings",
            ));
        };
        let tag = raw.trim();
        let valid = !tag.is_empty()
            && char_len(tag) <= MAX_TAG
            && !tag.chars().any(|c| c == ',' || c.is_control());
        if !valid {
            return Err(ApiError::bad_request(format!(
                "Field 'tags' items must be 1 to {MAX_TAG} characters without commas or control characters"
            )));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "Field 'tags' must hold at most {MAX_TAGS} tags"
        )));
    }
    out.sort();
    Ok(out)
}

/// Sets the tags of link `id` to `tags` (none for an empty list).
pub async fn replace_tags(
    db: &impl ConnectionTrait,
    id: i64,
    tags: &[String],
) -> Result<(), DbErr> {
    url_tag::Entity::delete_many()
        .filter(url_tag::Column::UrlId.eq(id))
        .exec(db)
        .await?;
    if !tags.is_empty() {
        url_tag::Entity::insert_many(tags.iter().map(|tag| url_tag::ActiveModel {
            url_id: Set(id),
            tag: Set(tag.clone()),
        }))
        .exec(db)
        .await?;
    }
    Ok(())
}

/// The tags of each of `ids`, sorted (links without tags are absent).
pub async fn tags_of(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, DbErr> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = url_tag::Entity::find()
        .filter(url_tag::Column::UrlId.is_in(ids.iter().copied()))
        .order_by_asc(url_tag::Column::UrlId)
        .order_by_asc(url_tag::Column::Tag)
        .all(db)
        .await?;
    for row in rows {
        out.entry(row.url_id).or_default().push(row.tag);
    }
    Ok(out)
}

/// `?tag=` (repeated and/or comma-separated; blanks ignored) and `?tag_mode=any|all`.
pub struct TagFilter {
    tags: Vec<String>,
    all: bool,
}

impl TagFilter {
    pub fn parse(raw: Option<&[String]>, mode: Option<&str>) -> ApiResult<Option<Self>> {
        let all = match mode.map(|m| m.trim().to_ascii_lowercase()).as_deref() {
            None | Some("any") => false,
            Some("all") => true,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Query parameter 'tag_mode' must be any or all",
                ));
            }
        };
        let mut tags: Vec<String> = raw
            .unwrap_or_default()
            .iter()
            .flat_map(|t| t.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        tags.sort();
        tags.dedup();
        Ok((!tags.is_empty()).then_some(Self { tags, all }))
    }

    /// Its part of the list's cache key.
    pub fn key(&self) -> String {
        let mode = if self.all { "all" } else { "any" };
        format!("tags={:?};mode={mode}", self.tags)
    }

    /// Links with any (or all) of the tags.
    pub fn condition(&self) -> sea_orm::sea_query::SimpleExpr {
        use sea_orm::sea_query::{Expr, ExprTrait, Func, Query as SqlQuery};
        let mut tagged = SqlQuery::select();
        tagged
            .column(url_tag::Column::UrlId)
            .from(url_tag::Entity)
            .and_where(url_tag::Column::Tag.is_in(self.tags.iter().cloned()));
        if self.all {
            tagged.group_by_col(url_tag::Column::UrlId).and_having(
                Expr::expr(Func::count(Expr::col(url_tag::Column::Tag))).eq(self.tags.len() as i64),
            );
        }
        url::Column::Id.in_subquery(tagged)
    }
}
