//! `GET /admin/queues`: every job queue's depth, ages, throughput and live workers, plus who
//! rolls analytics up; `GET /admin/queues/table` is the table alone, which the page fetches
//! again every few seconds with htmx. Plain routes outside the OpenAPI service (an operator's
//! page, not part of the API).
//!
//! The numbers are one [`crate::queues::QueueMonitor::read`]: the same reading sets the
//! `curtain_queue_*` gauges of `/metrics`.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response};
use sea_orm::{EntityTrait, QuerySelect};
use serde::Serialize;

use crate::html;
use crate::state::AppState;

/// Which template a request gets.
#[derive(Debug, Clone, Copy)]
pub enum View {
    /// The whole page.
    Page,
    /// The table fragment the page refreshes itself with.
    Table,
}

/// Seconds between the page's refreshes.
const REFRESH_SECONDS: u64 = 5;

/// The rollup loop, as the page shows it.
#[derive(Debug, Serialize)]
struct Rollups {
    /// `in this process`, `curtain-worker` or `off`.
    runs_in: &'static str,
    every_seconds: u64,
    /// Seconds since the last successful run in this process (`None`: none yet, or elsewhere).
    last_success_age_seconds: Option<i64>,
    /// (link, hour) marks waiting for a rollup, and the oldest marked hour.
    pending_marks: Option<i64>,
    oldest_pending_hour: Option<String>,
}

async fn rollups(state: &AppState) -> Rollups {
    use entity::rollup::pending;
    use sea_orm::sea_query::{Expr, Func};
    let runs_in = match (&state.rollups.here, state.rollups.every_seconds) {
        (_, 0) => "off",
        (Some(_), _) => "in this process",
        (None, _) => "curtain-worker",
    };
    let last_success_age_seconds = state
        .rollups
        .here
        .as_ref()
        .map(|m| m.last_success.get())
        .filter(|&at| at > 0)
        .map(|at| (chrono::Utc::now().timestamp() - at).max(0));
    let marks: Result<Option<(i64, Option<chrono::NaiveDateTime>)>, _> = pending::Entity::find()
        .select_only()
        .expr_as(Func::count(Expr::col(pending::Column::Id)), "marks")
        .expr_as(Func::min(Expr::col(pending::Column::Hour)), "oldest")
        .into_tuple()
        .one(&state.db)
        .await;
    let (pending_marks, oldest_pending_hour) = match marks {
        Ok(Some((n, oldest))) => (Some(n), oldest.map(crate::models::ts)),
        Ok(None) => (Some(0), None),
        Err(e) => {
            tracing::warn!(error = %e, "reading rollup marks failed");
            (None, None)
        }
    };
    Rollups {
        runs_in,
        every_seconds: state.rollups.every_seconds,
        last_success_age_seconds,
        pending_marks,
        oldest_pending_hour,
    }
}

/// The endpoint of `view`.
#[must_use]
pub fn page(state: &Arc<AppState>, view: View) -> impl Endpoint<Output = Response> + use<> {
    let state = Arc::clone(state);
    poem::endpoint::make(move |_: Request| {
        let state = Arc::clone(&state);
        async move { render(&state, view).await }
    })
}

async fn render(state: &AppState, view: View) -> poem::Result<Response> {
    let queues = state.queues.read().await;
    let mut context = tera::Context::new();
    context.insert("queues", &queues);
    context.insert("windows", &crate::queues::WINDOWS);
    // The cells after the backend: 8 depth and age columns, the windows, workers alive.
    context.insert("note_columns", &(8 + crate::queues::WINDOWS.len() + 1));
    context.insert("rollups", &rollups(state).await);
    context.insert(
        "read_at",
        &crate::models::ts(chrono::Utc::now().naive_utc()),
    );
    context.insert("refresh_seconds", &REFRESH_SECONDS);
    let template = match view {
        View::Page => html::QUEUES,
        View::Table => html::QUEUES_TABLE,
    };
    let body = state.templates.render(template, &context).map_err(|e| {
        poem::Error::from_string(
            format!("rendering {template}: {e}"),
            poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        )
    })?;
    Ok(body
        .with_content_type("text/html; charset=utf-8")
        .with_header("Cache-Control", "no-store")
        .into_response())
}
