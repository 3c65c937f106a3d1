//! Faults under load, with real processes on loopback: redirects of a known link keep
//! answering 302, and after recovery the events table holds every click exactly once
//! (compared with the load generator's own count of 302s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A TCP proxy whose upstream can be cut: while cut, open connections are dropped and new ones
/// are closed at once, as if the server were unreachable.
pub(crate) struct CuttableProxy {
    pub(crate) port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
}

impl CuttableProxy {
    pub(crate) async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (upstream, up2, gen2) = (upstream.to_owned(), up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let (upstream, up3, gen3) = (upstream.clone(), up2.clone(), gen2.clone());
                let born = gen3.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    tokio::pin!(copy);
                    loop {
                        tokio::select! {
                            _ = &mut copy => return,
                            () = tokio::time::sleep(Duration::from_millis(20)) => {
                                if !up3.load(Ordering::SeqCst) || gen3.load(Ordering::SeqCst) != born {
                                    return; // cut: both sockets are dropped
                                }
                            }
                        }
                    }
                });
            }
        });
        Self {
            port,
            up,
            generation,
        }
    }

    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Redirect load from `conns` loops until `stop`; returns (302s, other answers). Each loop
/// finishes its request in flight, so the count is exact.
pub(crate) fn redirect_load(
    url: String,
    conns: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let ok = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let mut loops = Vec::new();
        for _ in 0..conns {
            let (client, url, ok, bad, stop) = (
                client.clone(),
                url.clone(),
                ok.clone(),
                bad.clone(),
                stop.clone(),
            );
            loops.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    match client.get(&url).send().await {
                        Ok(r) if r.status() == 302 => ok.fetch_add(1, Ordering::SeqCst),
                        _ => bad.fetch_add(1, Ordering::SeqCst),
                    };
                }
            }));
        }
        for l in loops {
            l.await.unwrap();
        }
        (ok.load(Ordering::SeqCst), bad.load(Ordering::SeqCst))
    })
}

/// A link whose redirect caches are warm: a known link needs no database from here on.
/// Returns (id, code).
pub(crate) async fn warm_link(client: &reqwest::Client, api: &ApiServer) -> (i64, String) {
    let (id, code) = create_link(client, api, "https://example.com/fault").await;
    let status = client
        .get(format!("{}/r/{code}", api.address))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 302);
    (id, code)
}

/// Redirect load on `url` from 8 loops; `fault` runs after 1 s, `recover` `outage` later, the
/// load stops 1 s after that. Asserts every answer was a 302; returns how many there were.
async fn under_load(
    url: String,
    outage: Duration,
    fault: impl FnOnce(),
    recover: impl FnOnce(),
) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let load = redirect_load(url, 8, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    fault();
    tokio::time::sleep(outage).await;
    recover();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, bad) = load.await.unwrap();
    assert_eq!(
        bad, 0,
        "every redirect of the known link answered 302 during the fault"
    );
    ok
}

const REDIRECT_EVENTS: &str = "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'";

/// Waits until `expected` redirect events exist, then checks there is not one more and that
/// every click id is there once.
async fn assert_each_click_once(
    conn: &sea_orm::DatabaseConnection,
    expected: i64,
    within: Duration,
) {
    eventually(within, "every click ingested", || async {
        count(conn, REDIRECT_EVENTS).await >= expected
    })
    .await;
    assert_eq!(
        count(conn, REDIRECT_EVENTS).await,
        expected,
        "no click counted twice"
    );
}

/// Waits until the link's real-time total reaches `expected` with every shard read, then
/// checks it is exactly that (a batch counted twice would show as more).
pub(crate) async fn assert_counted_once(
    client: &reqwest::Client,
    api: &ApiServer,
    id: i64,
    expected: i64,
) {
    let url = format!("{}/urls/{id}/analytics/realtime", api.address);
    eventually(
        Duration::from_secs(30),
        "the real-time total settles",
        || async {
            let r = get_json(client, &url).await;
            r["unavailable_shards"] == 0 && r["total_clicks"].as_i64() >= Some(expected)
        },
    )
    .await;
    let r = get_json(client, &url).await;
    assert_eq!(
        r["total_clicks"].as_i64(),
        Some(expected),
        "counted once: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn postgres_unreachable_for_10s_under_load_loses_and_doubles_no_click() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let pg_port = db
        .url
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let proxy = CuttableProxy::start(&pg_port).await;
    let proxied = TestDb::proxied(&db, proxy.port);
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&proxied, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let (_stop_worker, _worker) =
        spawn_worker(worker_config(&proxied, &redis.url(), &[redis.addr()], &ns));
    let client = http_client();
    let (id, code) = warm_link(&client, &api).await;

    let ok = under_load(
        format!("{}/r/{code}", api.address),
        Duration::from_secs(10),
        || proxy.cut(),
        || proxy.restore(),
    )
    .await;
    // Plus the warming redirect.
    assert_each_click_once(&db.connect().await, ok as i64 + 1, Duration::from_secs(90)).await;
    assert_counted_once(&client, &api, id, ok as i64 + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn queue_redis_unreachable_for_10s_under_load_loses_and_doubles_no_click() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let queue_redis = RedisServer::start();
    let proxy = CuttableProxy::start(&queue_redis.addr()).await;
    let queue_url = format!("redis://127.0.0.1:{}/", proxy.port);
    let cache_redis = env("CURTAIN_TEST_REDIS_URL");
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api_with_cache(
        &db,
        &queue_url,
        &cache_redis,
        &[queue_redis.addr()],
        &ns,
        spool.path(),
    )
    .await;
    let client = http_client();
    let (id, code) = warm_link(&client, &api).await;
    let (_stop_worker, _worker) =
        spawn_worker(worker_config(&db, &queue_url, &[queue_redis.addr()], &ns));

    let ok = under_load(
        format!("{}/r/{code}", api.address),
        Duration::from_secs(10),
        || proxy.cut(),
        || proxy.restore(),
    )
    .await;
    let metrics = client
        .get(format!("{}/metrics", api.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spooled: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("curtain_clicks_spooled_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        spooled > 0.0,
        "clicks went to the durable spool while the queue was unreachable"
    );
    assert_each_click_once(&db.connect().await, ok as i64 + 1, Duration::from_mins(1)).await;
    assert_counted_once(&client, &api, id, ok as i64 + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_counter_shard_hung_under_load_fails_no_redirect_and_counts_every_click_once() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = env("CURTAIN_TEST_REDIS_URL");
    let shards = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let addrs: Vec<String> = shards.iter().map(RedisServer::addr).collect();
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis, &addrs, &ns, spool.path()).await;
    let config = worker_config(&db, &redis, &addrs, &ns);
    let worker_metrics = format!("http://{}/metrics", config.listen);
    let (_stop_worker, _worker) = spawn_worker(config);
    let client = http_client();
    let (id, code) = warm_link(&client, &api).await;
    let owner = storage::ring::HashRing::new(3).owner(&code).unwrap();

    // The owner hangs (SIGSTOP: connections open, nothing answers) for 5 s under load.
    let ok = under_load(
        format!("{}/r/{code}", api.address),
        Duration::from_secs(5),
        || shards[owner].pause(),
        || shards[owner].resume(),
    )
    .await;
    assert_each_click_once(&db.connect().await, ok as i64 + 1, Duration::from_mins(1)).await;
    // Counts written meanwhile went clockwise to a live shard; once the owner answers again
    // every click is counted exactly once across the shards.
    assert_counted_once(&client, &api, id, ok as i64 + 1).await;
    let failovers = metric(&worker_metrics, "curtain_counter_shard_failovers_total").await;
    assert!(
        failovers >= 1.0,
        "clicks were counted on a failover shard: {failovers}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn the_worker_killed_with_sigkill_under_load_loses_and_doubles_no_click() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    let worker = std::sync::Mutex::new(worker_process(&config));
    let client = http_client();
    let (id, code) = warm_link(&client, &api).await;
    let conn = db.connect().await;
    eventually(
        Duration::from_secs(30),
        "the worker is ingesting",
        || async { count(&conn, REDIRECT_EVENTS).await >= 1 },
    )
    .await;

    let ok = under_load(
        format!("{}/r/{code}", api.address),
        Duration::from_secs(3),
        || {
            // SIGKILL mid-stream: whatever it was ingesting is orphaned.
            let mut child = worker.lock().unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
        },
        || *worker.lock().unwrap() = worker_process(&config),
    )
    .await;
    assert_each_click_once(&conn, ok as i64 + 1, Duration::from_secs(90)).await;
    assert_counted_once(&client, &api, id, ok as i64 + 1).await;
    let mut child = worker.into_inner().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}
