//! `/admin/queues`: real jobs pushed (onto the Redis queues, or through the embedded
//! default's in-process queues) are shown by number on the page, and `/metrics` shows the
//! same numbers.

use std::time::{Duration, Instant};

use alerts::stand_in::{Reply, StandIn};
use serde_json::json;

use crate::backend_test;
use crate::helpers::{Backend, TestApp};

/// The `<tr>` of the queue with role `role` (`clicks`, `warming`, `alerts`).
fn row<'a>(html: &'a str, role: &str) -> &'a str {
    let start = html
        .find(&format!("<tr id=\"queue-{role}\""))
        .unwrap_or_else(|| panic!("no row for {role} in {html}"));
    let end = html[start..].find("</tr>").expect("row end") + start;
    &html[start..end]
}

/// The number in the first cell of `row` opening with `marker` (e.g. `data-state="ready">`).
fn number_after(row: &str, marker: &str) -> u64 {
    let at = row
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {row}"))
        + marker.len();
    let digits: String = row[at..].chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {marker} in {row}"))
}

fn state(html: &str, role: &str, state: &str) -> u64 {
    number_after(row(html, role), &format!("data-state=\"{state}\">"))
}

fn completed(html: &str, role: &str, minutes: u64) -> u64 {
    number_after(
        row(html, role),
        &format!("data-window=\"{minutes}\"><span data-field=\"completed\">"),
    )
}

fn workers(html: &str, role: &str) -> u64 {
    let row = row(html, role);
    let cell = row
        .find("data-field=\"workers-alive\"")
        .expect("workers cell");
    number_after(&row[cell..], ">")
}

async fn page(app: &TestApp, path: &str) -> String {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    assert_eq!(
        resp.headers()["content-type"],
        "text/html; charset=utf-8",
        "{path}"
    );
    resp.text().await.unwrap()
}

/// The value of the sample `name{labels}` in `/metrics`.
async fn gauge(app: &TestApp, name: &str, labels: &str) -> Option<u64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    let series = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

backend_test! {
    async fn the_in_process_click_queue_shows_the_clicks_it_ingested(app) {
        let link = app.create_url("https://example.com/queued").await;
        let code = link["short_code"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        }
        app.run_pending_jobs().await;
        for path in ["/admin/queues", "/admin/queues/table"] {
            let html = page(&app, path).await;
            let clicks = row(&html, "clicks");
            assert!(clicks.contains("data-queue=\"curtain:clicks\""), "{clicks}");
            assert!(clicks.contains(">in process <small>(counts clicks)"), "{clicks}");
            assert_eq!(state(&html, "clicks", "ready"), 0);
            assert_eq!(state(&html, "clicks", "running"), 0);
            assert_eq!(state(&html, "clicks", "dead"), 0);
            assert_eq!(completed(&html, "clicks", 5), 3, "{clicks}");
            assert_eq!(completed(&html, "clicks", 15), 3, "{clicks}");
            assert_eq!(workers(&html, "clicks"), 1);
            // No queue for warming (in process, synchronous) nor alerts (no webhook).
            assert!(row(&html, "warming").contains("a link is warmed in process"));
            assert!(row(&html, "alerts").contains("no DISCORD_WEBHOOK_URL"));
            assert!(html.contains("<dd data-field=\"runs-in\">off</dd>"), "{html}");
        }
        // The page's reading is the gauges' reading.
        assert_eq!(
            gauge(&app, "curtain_queue_workers_alive", "queue=\"curtain:clicks\"").await,
            Some(1)
        );
        assert_eq!(
            gauge(&app, "curtain_queue_jobs", "queue=\"curtain:clicks\",state=\"ready\"").await,
            Some(0)
        );
    }
}

backend_test! {
    async fn the_in_process_alert_queue_shows_dead_and_completed_deliveries(app) {
        let stand_in = StandIn::start().await.unwrap();
        stand_in.script([Reply::NotFound, Reply::Ok]);
        let hook = stand_in.webhook("queues");
        let app = TestApp::spawn_with(app.backend, move |c| {
            c.alertmanager_webhook_token = Some("t0ken".into());
            c.common.discord_webhook_urls = vec![hook];
        })
        .await;
        for key in ["G1", "G2"] {
            let body = json!({
                "version": "4", "groupKey": key, "status": "firing", "receiver": "discord",
                "groupLabels": {"alertname": key}, "commonLabels": {}, "commonAnnotations": {},
                "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
                "alerts": [{
                    "status": "firing", "labels": {"alertname": key}, "annotations": {},
                    "startsAt": "2026-12-03T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph", "fingerprint": key,
                }],
            });
            let resp = app
                .client
                .post(app.url("/alerts/alertmanager"))
                .header("authorization", "Bearer t0ken")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
        }
        let mut html = String::new();
        eventually("one delivery dead, one done", Duration::from_secs(10), async || {
            html = page(&app, "/admin/queues").await;
            state(&html, "alerts", "dead") == 1 && completed(&html, "alerts", 5) == 1
        })
        .await;
        assert_eq!(state(&html, "alerts", "ready"), 0);
        assert_eq!(state(&html, "alerts", "running"), 0);
        assert_eq!(state(&html, "alerts", "scheduled"), 0);
        assert_eq!(workers(&html, "alerts"), 1);
        assert_eq!(
            gauge(&app, "curtain_queue_jobs", "queue=\"curtain:alerts\",state=\"dead\"").await,
            Some(1)
        );
    }
}

/// Jobs waiting on the Redis queues (no worker runs): the page shows each queue's own count,
/// no live worker, and `/metrics` the same numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn jobs_waiting_in_redis_are_shown_by_queue_with_the_metrics_numbers() {
    let storage = crate::helpers::Storage::new(Backend::Postgres).await;
    let prefix = storage.cache_prefix.clone();
    let (clicks_q, warm_q, alert_q) = (
        format!("{prefix}:clicks"),
        format!("{prefix}:warm"),
        format!("{prefix}:alerts"),
    );
    let redis = storage.redis_url.clone().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_owned();
    let app = {
        let (clicks_q, warm_q, alert_q, redis) = (
            clicks_q.clone(),
            warm_q.clone(),
            alert_q.clone(),
            redis.clone(),
        );
        TestApp::spawn_on(Backend::Postgres, storage, move |c| {
            c.redis_url = Some(redis);
            c.common.click_queue = clicks_q;
            c.common.warm_queue = warm_q;
            c.common.alert_queue = alert_q;
            c.click_spool_dir = spool_dir;
            c.cache_warm_on_write = false;
        })
        .await
    };
    let warm = jobs::JobQueue::connect(&redis, Some(&warm_q))
        .await
        .unwrap();
    for id in 0..7 {
        warm.push_job(&jobs::WarmLinks { url_ids: vec![id] })
            .await
            .unwrap();
    }
    // Each redirect is answered once its click is in Redis, so one at a time makes one job each.
    let link = app.create_url("https://example.com/redis-queued").await;
    let code = link["short_code"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
    }
    let html = page(&app, "/admin/queues").await;
    for role in ["clicks", "warming", "alerts"] {
        assert!(row(&html, role).contains(">redis</td>"), "{role}: {html}");
        assert_eq!(workers(&html, role), 0, "{role}");
        assert_eq!(state(&html, role, "running"), 0, "{role}");
        assert_eq!(completed(&html, role, 5), 0, "{role}");
    }
    assert!(row(&html, "warming").contains(&format!("data-queue=\"{warm_q}\"")));
    assert_eq!(state(&html, "warming", "ready"), 7);
    assert_eq!(state(&html, "clicks", "ready"), 3);
    assert_eq!(state(&html, "alerts", "ready"), 0);
    assert!(
        html.contains("<dd data-field=\"runs-in\">off</dd>"),
        "{html}"
    );
    for (queue, ready) in [(&warm_q, 7), (&clicks_q, 3), (&alert_q, 0)] {
        assert_eq!(
            gauge(
                &app,
                "curtain_queue_jobs",
                &format!("queue=\"{queue}\",state=\"ready\"")
            )
            .await,
            Some(ready),
            "{queue}"
        );
        assert_eq!(
            gauge(
                &app,
                "curtain_queue_workers_alive",
                &format!("queue=\"{queue}\"")
            )
            .await,
            Some(0),
            "{queue}"
        );
    }
    // More jobs: the fragment the page refreshes itself with shows them.
    warm.push_job(&jobs::WarmLinks { url_ids: vec![99] })
        .await
        .unwrap();
    let table = page(&app, "/admin/queues/table").await;
    assert!(!table.contains("<html"), "a fragment: {table}");
    assert_eq!(state(&table, "warming", "ready"), 8);
}
