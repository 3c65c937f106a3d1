//! `/users`: create, list, read, update, delete, and CSV bulk import.
//!
//! User validation answers 422 `{"errors": {"<field>": "<message>"}}` with the first failure
//! only, in the contract's order. Email uniqueness is case-insensitive and checked here (the
//! legacy data holds one duplicate, so it is not a schema constraint).

use entity::{event, url, user};
use poem_openapi::param::Path;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::{Map, Value};

use super::{Api, Tag, path_id};
use crate::body::JsonBody;
use crate::cache::Invalidation;
use crate::error::{ApiError, ApiResult};
use crate::fields::{char_len, parse_page};
use crate::models::{User, UserInput, now};

pub struct UsersApi(pub Api);

const NOT_FOUND: &str = "User not found";

#[derive(ApiResponse)]
pub enum UserCreated {
    /// The user was created.
    #[oai(status = 201)]
    Created(Json<User>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted; the body is empty.
    #[oai(status = 204)]
    NoContent,
}

/// Validates one string field: type, blank, NUL, length. Returns the trimmed value.
fn text_field(field: &str, value: &Value, max: usize) -> ApiResult<String> {
    let Value::String(s) = value else {
        return Err(ApiError::field(
            field,
            format!("Field '{field}' must be a string"),
        ));
    };
    let s = s.trim();
    if s.is_empty() {
        return Err(ApiError::field(
            field,
            format!("Field '{field}' must not be empty"),
        ));
    }
    if s.contains('\0') {
        return Err(ApiError::field(
            field,
            format!("Field '{field}' must not contain NUL characters"),
        ));
    }
    if char_len(s) > max {
        return Err(ApiError::field(
            field,
            format!("Field '{field}' must be at most {max} characters"),
        ));
    }
    Ok(s.to_owned())
}

fn valid_email(email: &str) -> bool {
    email
        .rfind('@')
        .is_some_and(|at| email[at + 1..].contains('.'))
}

/// The create/update rules; `require` is false for partial updates.
fn validate(
    body: &JsonBody<UserInput>,
    require: bool,
) -> ApiResult<(Option<String>, Option<String>)> {
    let Some(obj) = body.object() else {
        return Err(ApiError::field("request", "JSON body must be an object"));
    };
    if require {
        for field in ["username", "email"] {
            if !obj.contains_key(field) {
                return Err(ApiError::field(
                    field,
                    format!("Field '{field}' is required"),
                ));
            }
        }
    }
    let get = |obj: &Map<String, Value>, field: &str, max| {
        obj.get(field)
            .map(|v| text_field(field, v, max))
            .transpose()
    };
    let username = get(obj, "username", 120)?;
    let email = get(obj, "email", 255)?;
    if let Some(email) = &email
        && !valid_email(email)
    {
        return Err(ApiError::field(
            "email",
            "Field 'email' must be a valid email address",
        ));
    }
    Ok((username, email))
}

impl UsersApi {
    async fn find(&self, id: i64) -> ApiResult<user::Model> {
        user::Entity::find_by_id(id)
            .one(&self.0.db)
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))
    }

    async fn ensure_email_unique(&self, email: &str, except: Option<i64>) -> ApiResult<()> {
        let mut query =
            user::Entity::find().filter(user::Column::EmailKey.eq(email.to_lowercase()));
        if let Some(id) = except {
            query = query.filter(user::Column::Id.ne(id));
        }
        if query.count(&self.0.db).await? > 0 {
            return Err(ApiError::field("email", "Field 'email' must be unique"));
        }
        Ok(())
    }
}

/// The list, streamed from the database (constant memory whatever its length).
#[derive(poem_openapi::ApiResponse)]
pub enum UserList {
    /// The users, ordered by id.
    #[oai(status = 200)]
    Ok(crate::stream::JsonArray<User>),
}

#[OpenApi(tag = "Tag::Users")]
impl UsersApi {
    /// Create a user
    ///
    /// `username` and `email` are trimmed. The first failing rule answers 422, in this order:
    /// body not an object (`request`), a missing field, then per field (username first) not a
    /// string, blank, too long (120 / 255), then an invalid email, then an email already used
    /// by another user (case-insensitive). Unknown fields are ignored.
    #[oai(path = "/users", method = "post")]
    async fn create(&self, body: JsonBody<UserInput>) -> ApiResult<UserCreated> {
        let (Some(username), Some(email)) = validate(&body, true)? else {
            return Err(ApiError::field("request", "JSON body must be an object"));
        };
        self.ensure_email_unique(&email, None).await?;
        let model = user::ActiveModel {
            username: Set(username),
            email_key: Set(Some(email.to_lowercase())),
            email: Set(email),
            created_at: Set(now()),
            ..Default::default()
        }
        .insert(&self.0.db)
        .await?;
        Ok(UserCreated::Created(Json(model.into())))
    }

    /// List users
    ///
    /// Ordered by id. Without `page`/`per_page` the whole list; with either, that page
    /// (defaults 1 and 20; `per_page` is capped at 1000; a page past the end is `[]`). Zero,
    /// negative or non-integer values answer 400.
    #[oai(path = "/users", method = "get")]
    async fn list(
        &self,
        page: Query<Option<String>>,
        per_page: Query<Option<String>>,
    ) -> ApiResult<UserList> {
        let page =
            parse_page(page.0.as_deref(), per_page.0.as_deref()).map_err(ApiError::bad_request)?;
        let mut query = user::Entity::find().order_by_asc(user::Column::Id);
        if let Some(p) = page {
            query = query.offset(p.offset()).limit(p.per_page);
        }
        Ok(UserList::Ok(crate::stream::rows(
            &self.0.db,
            query,
            User::from,
        )))
    }

    /// Get a user
    #[oai(path = "/users/:id", method = "get")]
    async fn get(&self, id: Path<String>) -> ApiResult<Json<User>> {
        let id = path_id(&id, NOT_FOUND)?;
        Ok(Json(self.find(id).await?.into()))
    }

    /// Update a user
    ///
    /// Partial update with the create rules (minus "required"): 404 first, then 422. The email
    /// must stay unique among other users. `id`, `created_at` and unknown fields are ignored;
    /// `{}` answers 200 unchanged.
    #[oai(path = "/users/:id", method = "put")]
    async fn update(&self, id: Path<String>, body: JsonBody<UserInput>) -> ApiResult<Json<User>> {
        let id = path_id(&id, NOT_FOUND)?;
        let existing = self.find(id).await?;
        let (username, email) = validate(&body, false)?;
        if let Some(email) = &email {
            self.ensure_email_unique(email, Some(id)).await?;
        }
        if username.is_none() && email.is_none() {
            return Ok(Json(existing.into()));
        }
        let mut active: user::ActiveModel = existing.into();
        if let Some(username) = username {
            active.username = Set(username);
        }
        if let Some(email) = email {
            active.email_key = Set(Some(email.to_lowercase()));
            active.email = Set(email);
        }
        Ok(Json(active.update(&self.0.db).await?.into()))
    }

    /// Delete a user
    ///
    /// The user's links and events survive with `user_id = null` (one transaction); every
    /// cached payload showing the user is invalidated.
    #[oai(path = "/users/:id", method = "delete")]
    async fn delete(&self, id: Path<String>) -> ApiResult<Deleted> {
        let id = path_id(&id, NOT_FOUND)?;
        self.find(id).await?;
        let txn = self.0.db.begin().await?;
        let owned: Vec<i64> = url::Entity::find()
            .select_only()
            .column(url::Column::Id)
            .filter(url::Column::UserId.eq(id))
            .into_tuple()
            .all(&txn)
            .await?;
        url::Entity::update_many()
            .col_expr(url::Column::UserId, Expr::value(Option::<i64>::None))
            .filter(url::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        event::Entity::update_many()
            .col_expr(event::Column::UserId, Expr::value(Option::<i64>::None))
            .filter(event::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = user::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(NOT_FOUND));
        }
        self.0
            .cache
            .invalidate(Invalidation::owner_changed(owned))
            .await;
        Ok(Deleted::NoContent)
    }
}
