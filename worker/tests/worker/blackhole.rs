//! A queue Redis that accepts connections but never answers (a hung server, a blackholed
//! route): with `CLICK_DURABILITY=ack` every redirect still answers 302 within a bounded time,
//! and never before its click is in the durable spool; once the queue answers again the spool
//! drains and every click is ingested once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A TCP proxy that forwards to `upstream` until [`BlackholeProxy::blackhole`]: from then on it
/// stops forwarding on open connections and accepts new ones without reading a byte, holding
/// every socket open, until [`BlackholeProxy::restore`] closes them (clients then reconnect).
struct BlackholeProxy {
    port: u16,
    holed: Arc<AtomicBool>,
}

async fn hold_while(holed: &AtomicBool) {
    while holed.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl BlackholeProxy {
    async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let holed = Arc::new(AtomicBool::new(false));
        let (upstream, holed2) = (upstream.to_owned(), holed.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (upstream, holed) = (upstream.clone(), holed2.clone());
                tokio::spawn(async move {
                    if !holed.load(Ordering::SeqCst) {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                        tokio::pin!(copy);
                        loop {
                            tokio::select! {
                                _ = &mut copy => return,
                                () = tokio::time::sleep(Duration::from_millis(20)) => {
                                    if holed.load(Ordering::SeqCst) {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    // Blackholed: the socket stays open and nothing is read or answered.
                    hold_while(&holed).await;
                    drop(client);
                });
            }
        });
        Self { port, holed }
    }

    fn blackhole(&self) {
        self.holed.store(true, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.holed.store(false, Ordering::SeqCst);
    }
}

async fn metric(client: &reqwest::Client, api: &ApiServer, name: &str) -> u64 {
    let text = client
        .get(format!("{}/metrics", api.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} is exported"))
        .trim()
        .parse()
        .unwrap()
}

/// Clicks held by the spool's batch files.
fn spooled_clicks(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        // A file the drainer deleted meanwhile holds nothing any more.
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| {
            let batch: jobs::ClickBatch = serde_json::from_slice(&bytes).unwrap();
            batch.clicks.len()
        })
        .sum()
}

/// Redirects from `conns` loops for `run`; returns the 302s and the slowest answer. Any other
/// answer, or none within 10 s, fails the test.
async fn redirects_for(url: &str, conns: usize, run: Duration) -> (u64, Duration) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let ok = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + run;
    let mut loops = Vec::new();
    for _ in 0..conns {
        let (client, url, ok, slowest) =
            (client.clone(), url.to_owned(), ok.clone(), slowest.clone());
        loops.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                let started = Instant::now();
                let status = client.get(&url).send().await.map(|r| r.status().as_u16());
                assert_eq!(
                    status.ok(),
                    Some(302),
                    "a redirect answered 302 within 10 s"
                );
                slowest.fetch_max(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                ok.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for l in loops {
        l.await.unwrap();
    }
    (
        ok.load(Ordering::SeqCst),
        Duration::from_millis(slowest.load(Ordering::SeqCst)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_blackholed_queue_answers_each_redirect_only_after_its_click_is_spooled() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let queue_redis = RedisServer::start();
    let proxy = BlackholeProxy::start(&queue_redis.addr()).await;
    let queue_url = format!("redis://127.0.0.1:{}/", proxy.port);
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api_with_cache(
        &db,
        &queue_url,
        &env("CURTAIN_TEST_REDIS_URL"),
        &[queue_redis.addr()],
        &ns,
        spool.path(),
    )
    .await;
    let client = http_client();
    let (_, code) = create_link(&client, &api, "https://example.com/blackhole").await;
    let url = format!("{}/r/{code}", api.address);
    let warm = client.get(&url).send().await.unwrap().status();
    assert_eq!(warm, 302);
    assert_eq!(
        metric(&client, &api, "curtain_clicks_enqueued_total").await,
        1
    );

    proxy.blackhole();
    let (ok, slowest) = redirects_for(&url, 8, Duration::from_secs(6)).await;
    // Read at once: every click answered is already durable, none is still on its way. (A
    // push already on the wire when the proxy went silent may still have been answered.)
    let spooled = metric(&client, &api, "curtain_clicks_spooled_total").await;
    let enqueued = metric(&client, &api, "curtain_clicks_enqueued_total").await - 1;
    eprintln!(
        "blackhole: {ok} redirects answered 302, {spooled} clicks spooled, {enqueued} enqueued \
         as the proxy went silent, slowest redirect {slowest:?}"
    );
    assert!(spooled > 0 && enqueued < spooled);
    assert_eq!(
        spooled + enqueued,
        ok,
        "every 302 answered during the blackhole was queued or spooled before it was sent"
    );
    assert_eq!(spooled_clicks(spool.path()), spooled as usize);
    assert!(
        slowest < Duration::from_secs(4),
        "the push to a silent queue is bounded: slowest redirect took {slowest:?}"
    );

    // The queue answers again: the spool drains and every click is ingested exactly once.
    proxy.restore();
    let (_stop_worker, _worker) = spawn_worker(worker_config(
        &db,
        &queue_redis.url(),
        &[queue_redis.addr()],
        &ns,
    ));
    let conn = db.connect().await;
    // The blackholed 302s plus the warming one.
    let expected = ok as i64 + 1;
    eventually(Duration::from_mins(1), "every click ingested", || async {
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'",
        )
        .await
            >= expected
    })
    .await;
    eventually(Duration::from_secs(10), "the spool is empty", || async {
        spooled_clicks(spool.path()) == 0
    })
    .await;
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'"
        )
        .await,
        expected,
        "no click counted twice"
    );
}
