//! `/admin/queues` of an api beside a real worker: the jobs the worker completed (and pruned)
//! are counted once each in the click queue's throughput, and its worker is seen alive.

use std::time::Duration;

use crate::helpers::{
    Namespace, RedisServer, TestDb, eventually, http_client, seed_links, spawn_api, spawn_worker,
    worker_config,
};

/// The number in the click queue's row after `marker`.
fn clicks_cell(html: &str, marker: &str) -> Option<u64> {
    let start = html.find("<tr id=\"queue-clicks\"")?;
    let row = &html[start..start + html[start..].find("</tr>")?];
    let at = row.find(marker)? + marker.len();
    row[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn jobs_completed_by_a_worker_are_counted_once_on_the_queue_page() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 1).await;
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let client = http_client();
    // Each redirect is answered once its click is in Redis: one at a time, one job each.
    for _ in 0..5 {
        let resp = client
            .get(format!("{}/r/{}", api.address, links[0].1))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
    }
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    assert_eq!(queue.depth().await.unwrap().ready, 5);
    assert_eq!(queue.completed_total().await.unwrap(), 0);

    let (_stop, _worker) = spawn_worker(worker_config(&db, &redis.url(), &[redis.addr()], &ns));
    eventually(Duration::from_secs(20), "5 jobs run and pruned", || async {
        let d = queue.depth().await.unwrap();
        d.pending() == 0 && d.done == 0
    })
    .await;
    // Pruned, and still counted: once each.
    assert_eq!(queue.completed_total().await.unwrap(), 5);
    let page = format!("{}/admin/queues", api.address);
    let read = || async {
        client
            .get(&page)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    eventually(
        Duration::from_secs(10),
        "the page sees the worker",
        || async {
            clicks_cell(&read().await, "data-field=\"workers-alive\">").is_some_and(|n| n >= 1)
        },
    )
    .await;
    let html = read().await;
    let completed = "data-window=\"5\"><span data-field=\"completed\">";
    assert_eq!(clicks_cell(&html, completed), Some(5), "{html}");
    assert_eq!(
        clicks_cell(&html, "data-state=\"ready\">"),
        Some(0),
        "{html}"
    );
    assert_eq!(
        clicks_cell(&html, "data-state=\"done\">"),
        Some(0),
        "{html}"
    );
}
