//! sea-orm entities for Curtain's tables: users, urls, events and the analytics rollups.
//!
//! Timestamps are UTC `NaiveDateTime`s with whole seconds; ids are 64-bit. Click metadata of
//! `redirect` events lives in columns of its own (`click_id`, `visitor_hash`, `user_agent`,
//! `referrer`) so that `details` stays exactly what the API contract shows.

pub mod event;
pub mod rollup;
pub mod url;
pub mod url_tag;
pub mod user;

pub mod prelude {
    pub use super::event::{ActiveModel as EventActive, Entity as Event, Model as EventModel};
    pub use super::url::{ActiveModel as UrlActive, Entity as Url, Model as UrlModel};
    pub use super::user::{ActiveModel as UserActive, Entity as User, Model as UserModel};
}
