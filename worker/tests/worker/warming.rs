//! Cache warming by the worker: the `warm_cache` job after a create (the first redirect needs
//! no database), and the start-up pass over the most-redirected links of the last hour.

use std::time::Duration;

use crate::faults::CuttableProxy;
use crate::helpers::*;

/// The value of metric `name` (no labels) on the worker's `/metrics`.
async fn worker_metric(client: &reqwest::Client, config: &worker::Config, name: &str) -> u64 {
    let Ok(resp) = client
        .get(format!("http://{}/metrics", config.listen))
        .send()
        .await
    else {
        return 0;
    };
    resp.text()
        .await
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_created_link_is_warmed_by_the_worker_and_its_first_redirect_reads_no_database() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let pg = db
        .url
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap()
        .to_owned();
    // The api reaches PostgreSQL through a proxy that the test cuts; the worker directly.
    let proxy = CuttableProxy::start(&pg).await;
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(
        &TestDb::proxied(&db, proxy.port),
        &redis.url(),
        &[redis.addr()],
        &ns,
        spool.path(),
    )
    .await;
    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    let (_stop, _worker) = spawn_worker(config.clone());
    let client = http_client();
    let (_, code) = create_link(&client, &api, "https://example.com/warmed-by-worker").await;
    eventually(
        Duration::from_secs(10),
        "the worker warmed the new link",
        || async { worker_metric(&client, &config, "curtain_cache_warmed_links_total").await == 1 },
    )
    .await;
    proxy.cut();
    let resp = client
        .get(format!("{}/r/{code}", api.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()["x-cache"].to_str().unwrap(),
            resp.headers()["location"].to_str().unwrap()
        ),
        (302, "HIT", "https://example.com/warmed-by-worker")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn the_worker_warms_the_most_redirected_links_of_the_last_hour_at_start_up() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis_url = env("CURTAIN_TEST_REDIS_URL");
    let conn = db.connect().await;
    let links = seed_links(&conn, 4).await;
    // Link 0: 3 redirects, link 1: 2, link 2: 1 within the hour; link 3: 5, but 2 hours ago.
    for (i, (when, n)) in [
        ("NOW()", 3),
        ("NOW()", 2),
        ("NOW()", 1),
        ("NOW() - INTERVAL '2 hours'", 5),
    ]
    .iter()
    .enumerate()
    {
        let (id, code) = &links[i];
        for _ in 0..*n {
            count(&conn, &format!(
                "WITH e AS (INSERT INTO events (url_id, event_type, timestamp, details) \
                 VALUES ({id}, 'redirect', {when}, '{{\"short_code\": \"{code}\"}}') RETURNING 1) SELECT count(*) FROM e"
            )).await;
        }
    }
    let mut config = worker_config(&db, &redis_url, &[], &ns);
    config.warm_top_n = 2;
    let (_stop, _worker) = spawn_worker(config.clone());
    let client = http_client();
    eventually(
        Duration::from_secs(10),
        "the start-up warming pass",
        || async { worker_metric(&client, &config, "curtain_cache_warmed_links_total").await >= 2 },
    )
    .await;
    assert_eq!(
        worker_metric(&client, &config, "curtain_cache_warmed_links_total").await,
        2
    );
    let mut redis = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut warmed = Vec::new();
    for (_, code) in &links {
        let key = format!("{}:cache:redirect:{code}@0", ns.prefix);
        let exists: bool = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        warmed.push(exists);
    }
    assert_eq!(
        warmed,
        [true, true, false, false],
        "the top 2 of the last hour, nothing older"
    );
}
