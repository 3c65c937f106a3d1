//! Integration tests of the HTTP contract: the real app over real HTTP, each test with its own
//! database and Redis namespace (see `helpers`).

// Test data writes ids as the JSON clients send them (e.g. 99999999999999999999).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::unreadable_literal
)]

mod helpers;

mod alerts;
mod analytics;
mod bulk;
mod cache;
mod deployment;
mod events;
mod hostile;
mod keys;
mod limits;
mod link_features;
mod link_features2;
mod link_health;
mod link_passwords;
mod migrations;
mod openapi;
mod queues;
mod redirects;
mod rollups;
mod smoke;
mod system;
mod ui;
mod urls;
mod users;
mod warming;
mod webhooks;
