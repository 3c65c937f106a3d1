//! Helpers of `ops/bench.sh`: the bare poem baseline, a fixed-rate load generator and a
//! synthetic click backlog. The script starts the real binaries and measures them with wrk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jobs::{Click, ClickBatch, ClickQueue};
use poem::listener::TcpListener;
use poem::web::Path;
use poem::{IntoResponse, Response, Route, Server, get, handler};

#[handler]
fn bare_redirect(Path(code): Path<String>) -> Response {
    // What a minimal shortener answers: a 302 with a Location and a tiny HTML body.
    Response::builder()
        .status(poem::http::StatusCode::FOUND)
        .header("Location", format!("https://example.com/{code}"))
        .content_type("text/html; charset=utf-8")
        .body("<a href=\"https://example.com/\">Redirecting...</a>")
        .into_response()
}

/// The ceiling: a bare poem server answering 302 on `/r/<code>`.
pub async fn bare(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    Server::new(TcpListener::bind(listen))
        .run(Route::new().at("/r/:code", get(bare_redirect)))
        .await?;
    Ok(())
}

/// Sends GET `url` at `rate` requests per second for `seconds`, from `connections` tasks.
/// Prints and returns (sent, non-302 answers).
pub async fn load(
    url: &str,
    rate: u64,
    seconds: u64,
    connections: usize,
) -> anyhow::Result<(u64, u64)> {
    telemetry::install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let sent = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let total = rate * seconds;
    let per_task = rate as f64 / connections as f64;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, sent, bad) = (client.clone(), url.to_owned(), sent.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                // Pace each task on its own schedule: request n is due at n / per_task seconds.
                let due = started + Duration::from_secs_f64(n as f64 / per_task);
                tokio::time::sleep_until(due.into()).await;
                if sent.fetch_add(1, Ordering::Relaxed) >= total {
                    break;
                }
                match client.get(&url).send().await {
                    Ok(resp) if resp.status() == 302 => {}
                    _ => {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let sent = sent.load(Ordering::Relaxed).min(total);
    let bad = bad.load(Ordering::Relaxed);
    println!(
        "sent {sent} requests in {:.1} s, {bad} not 302",
        started.elapsed().as_secs_f64()
    );
    Ok((sent, bad))
}

/// Pushes `clicks` synthetic clicks for one link as batches of `batch` onto the queue.
pub async fn enqueue(
    redis_url: &str,
    queue: &str,
    url_id: i64,
    code: &str,
    clicks: u64,
    batch: usize,
) -> anyhow::Result<()> {
    let q = ClickQueue::connect(redis_url, Some(queue)).await?;
    let started = Instant::now();
    let mut left = clicks;
    while left > 0 {
        let n = left.min(batch as u64);
        let now = chrono::Utc::now().naive_utc();
        let batch = ClickBatch::new(
            (0..n)
                .map(|i| Click {
                    click_id: uuid::Uuid::now_v7().to_string(),
                    url_id,
                    short_code: code.to_owned(),
                    at: now,
                    visitor_hash: format!("visitor{}", i % 5_000),
                    user_agent: Some("bench".into()),
                    referrer: None,
                    head: false,
                })
                .collect(),
        );
        q.push(&batch).await?;
        left -= n;
    }
    println!(
        "enqueued {clicks} clicks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
