//! Pipeline tests against real PostgreSQL and Redis: redirects to events and sharded counters,
//! and each apalis-redis defect the worker must survive. They need the services; without them
//! they show as ignored with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod alerts;
mod blackhole;
mod coalesce;
mod defects;
mod faults;
mod keys;
mod kills;
mod link_health;
mod metrics;
mod pipeline;
mod queue_page;
mod rebuild;
mod warming;
mod webhooks;
