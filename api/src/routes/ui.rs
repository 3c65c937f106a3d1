//! The HTML UI: `GET /` (the shorten form, a tera template) and `POST /shorten-ui` (an htmx
//! fragment). The fragment endpoint shares [`create_url`] with `POST /urls`, so rules, events
//! and cache invalidation are the same.
//!
//! Both are tera templates ([`crate::html`]): values are escaped there, the contract's way.

use poem::Request;
use poem_openapi::payload::Html;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::{Map, Value};

use super::base_url;
use super::urls::create_url;
use super::{Api, Tag};
use crate::body::FormBody;
use crate::error::{ApiError, ApiResult};
use crate::fields::{IntParam, parse_int_param};
use crate::html;

pub struct UiApi(pub Api);

/// The routes listed on the home page, written the contract's way.
const ROUTES: &[&str] = &[
    "GET /health",
    "GET /metrics",
    "POST /users",
    "GET /users",
    "GET /users/<id>",
    "PUT /users/<id>",
    "DELETE /users/<id>",
    "POST /users/bulk",
    "POST /urls",
    "GET /urls",
    "GET /urls/<id>",
    "PUT /urls/<id>",
    "DELETE /urls/<id>",
    "GET /urls/<id>/analytics",
    "GET /urls/<id>/details",
    "PATCH /urls/<id>/details",
    "GET /urls/<id>/qr",
    "GET /r/<short_code>",
    "GET /urls/short/<short_code>",
    "GET /urls/<short_code>/redirect",
    "GET /events",
    "GET /events/<id>",
    "POST /events",
    "GET /openapi.json",
    "GET /docs",
];

/// Form fields of `POST /shorten-ui`.
#[derive(Debug, Object)]
pub struct ShortenForm {
    /// The URL to shorten (or use `long_url`).
    pub original_url: Option<String>,
    /// Alias of `original_url`.
    pub long_url: Option<String>,
    /// Optional title.
    pub title: Option<String>,
    /// Optional owner id; blank means no owner.
    pub user_id: Option<String>,
    /// Optional custom alias (as `custom_code` of `POST /urls`); blank means a generated code.
    pub custom_code: Option<String>,
}

#[derive(ApiResponse)]
pub enum Fragment {
    /// An active link with this URL already existed.
    #[oai(status = 200)]
    Existing(Html<String>),
    /// The link was created.
    #[oai(status = 201)]
    Created(Html<String>),
    /// Invalid input; the fragment carries the same message as the JSON API.
    #[oai(status = 400)]
    Invalid(Html<String>),
    /// The custom alias is taken; the fragment carries the same message as the JSON API.
    #[oai(status = 409)]
    Taken(Html<String>),
}

/// The form as the JSON object `POST /urls` would receive.
fn form_to_json(form: &FormBody<ShortenForm>) -> Value {
    let mut obj = Map::new();
    for field in ["original_url", "long_url", "title"] {
        if let Some(v) = form.get(field) {
            obj.insert(field.to_owned(), Value::String(v.to_owned()));
        }
    }
    if let Some(code) = form.get("custom_code").filter(|s| !s.trim().is_empty()) {
        obj.insert("custom_code".to_owned(), Value::String(code.to_owned()));
    }
    if let Some(raw) = form.get("user_id").map(str::trim).filter(|s| !s.is_empty()) {
        // A form field is text: any decimal integer (leading zeros included, as typed into an
        // input) is that integer; anything else stays text and fails as "must be an integer".
        let value = match parse_int_param(raw) {
            Some(IntParam::Int(id)) => Value::from(id),
            Some(IntParam::OutOfRange) => {
                let (sign, digits) = raw.strip_prefix('-').map_or(("", raw), |d| ("-", d));
                let digits = digits.trim_start_matches('0');
                serde_json::from_str(&format!("{sign}{digits}"))
                    .unwrap_or_else(|_| Value::String(raw.to_owned()))
            }
            None => Value::String(raw.to_owned()),
        };
        obj.insert("user_id".to_owned(), value);
    }
    Value::Object(obj)
}

#[OpenApi(tag = "Tag::Ui")]
impl UiApi {
    /// Link page
    ///
    /// The link's details, its real-time clicks and unique visitors, its event count, and a
    /// chart of clicks per hour over the last 24 hours (drawn in the browser by
    /// `/static/chart.js` from `GET /urls/<id>/analytics/timeseries`). 404 for an unknown code.
    #[oai(path = "/ui/links/:code", method = "get")]
    async fn link(
        &self,
        code: poem_openapi::param::Path<String>,
        req: &Request,
    ) -> ApiResult<Html<String>> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let link = entity::url::Entity::find()
            .filter(entity::url::Column::ShortCode.eq(code.0.as_str()))
            .one(&self.0.db)
            .await?
            .ok_or_else(|| ApiError::not_found(super::urls::NOT_FOUND))?;
        let now = crate::models::now();
        let counts = self.0.counters.read(&link.short_code, now).await;
        let totals = storage::rollup::totals(&self.0.db, link.id, now).await?;
        let mut context = tera::Context::new();
        context.insert("id", &link.id);
        context.insert("code", &link.short_code);
        context.insert(
            "short_url",
            &format!("{}/r/{}", base_url(&self.0, req), link.short_code),
        );
        context.insert(
            "qr_svg",
            &crate::qr::svg(
                &format!("{}/r/{}", base_url(&self.0, req), link.short_code),
                crate::qr::DEFAULT_SIZE,
            )
            .ok(),
        );
        context.insert("original_url", &link.original_url);
        context.insert("title", &link.title);
        context.insert("created_at", &crate::models::ts(link.created_at));
        context.insert("is_active", &link.is_active);
        context.insert("total_clicks", &counts.total);
        context.insert("unique_visitors", &counts.unique_visitors);
        context.insert(
            "total_events",
            &totals.values().map(|t| t.events).sum::<u64>(),
        );
        Ok(Html(self.render(html::LINK, &context)?))
    }

    /// Home page with the shorten form
    #[oai(path = "/", method = "get")]
    async fn index(&self) -> ApiResult<Html<String>> {
        let mut context = tera::Context::new();
        context.insert("routes", ROUTES);
        Ok(Html(self.render(html::INDEX, &context)?))
    }

    /// Shorten from the HTML form (htmx fragment)
    ///
    /// Same rules and code path as `POST /urls`; answers an HTML fragment instead of JSON. A JSON
    /// body is ignored (form fields only).
    #[oai(path = "/shorten-ui", method = "post")]
    async fn shorten(&self, form: FormBody<ShortenForm>, req: &Request) -> ApiResult<Fragment> {
        let body = form_to_json(&form);
        match create_url(&self.0, Some(&body)).await {
            Ok((row, created)) => {
                let mut context = tera::Context::new();
                context.insert("host", &base_url(&self.0, req));
                context.insert("code", &row.short_code);
                context.insert("id", &row.id);
                let html = self.render(html::SHORTEN_SUCCESS, &context)?;
                Ok(if created {
                    Fragment::Created(Html(html))
                } else {
                    Fragment::Existing(Html(html))
                })
            }
            Err(ApiError::BadRequest(e)) => {
                let mut context = tera::Context::new();
                context.insert("message", &e.error);
                Ok(Fragment::Invalid(Html(
                    self.render(html::SHORTEN_ERROR, &context)?,
                )))
            }
            Err(ApiError::Conflict(e)) => {
                let mut context = tera::Context::new();
                context.insert("message", &e.error);
                Ok(Fragment::Taken(Html(
                    self.render(html::SHORTEN_ERROR, &context)?,
                )))
            }
            Err(e) => Err(e),
        }
    }
}

impl UiApi {
    fn render(&self, template: &str, context: &tera::Context) -> ApiResult<String> {
        self.0
            .templates
            .render(template, context)
            .map_err(|e| ApiError::internal(&e))
    }
}
