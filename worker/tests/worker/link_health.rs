//! Link health checks in the production shape: two workers share the schedule
//! (`LINK_HEALTH_EVERY_SECONDS=1`, one claims each period), run the `check_links` jobs, switch
//! the api's Redis-cached redirect to the fallback and back, and alert through the
//! `deliver_alert` queue to a Discord stand-in: one message per transition whatever the
//! number of workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alerts::stand_in::StandIn;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// A destination on loopback answering 200 (`ok`) or 500, counting requests per path.
struct Destination {
    base: String,
    failing: Arc<AtomicU8>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl Destination {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let failing = Arc::new(AtomicU8::new(0));
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (f, s) = (failing.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (failing, seen) = (f.clone(), s.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head);
                    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    *seen.lock().unwrap().entry(path).or_default() += 1;
                    let answer: &[u8] = if failing.load(Ordering::SeqCst) == 1 {
                        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    };
                    let _ = socket.write_all(answer).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            base,
            failing,
            seen,
        }
    }

    fn requests(&self, path: &str) -> usize {
        self.seen.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn location(client: &reqwest::Client, api: &ApiServer, code: &str) -> (u16, String) {
    let resp = client
        .get(format!("{}/r/{code}", api.address))
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), location)
}

/// One worker claims each period: four probes take at least three periods (two workers each
/// enqueueing would make two a period).
async fn one_scheduler_per_period(dest: &Destination) {
    let start = dest.requests("/landing");
    eventually(Duration::from_secs(20), "the next probe", || async {
        dest.requests("/landing") > start
    })
    .await;
    let first = Instant::now();
    let base = dest.requests("/landing");
    eventually(Duration::from_secs(30), "three more probes", || async {
        dest.requests("/landing") >= base + 3
    })
    .await;
    let span = first.elapsed();
    assert!(
        span >= Duration::from_millis(2200),
        "three more probes came {span:?} after one: more than one scheduler per period"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn two_workers_check_links_on_schedule_and_alert_once_per_transition() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let stand_in = StandIn::start().await.unwrap();
    let dest = Destination::start().await;
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
        config.common.discord_webhook_urls = vec![stand_in.webhook("health")];
        config.common.link_health_every_seconds = 1;
        config.common.link_health_allow_private = true;
        config.common.link_health_failures = 2;
        workers.push(spawn_worker(config));
    }
    let client = http_client();
    let target = format!("{}/landing", dest.base);
    let fallback = "https://fallback.example/sorry";
    let created: serde_json::Value = client
        .post(format!("{}/urls", api.address))
        .json(&json!({"original_url": target, "health_check": true, "fallback_url": fallback}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, code) = (
        created["id"].as_i64().unwrap(),
        created["short_code"].as_str().unwrap().to_owned(),
    );
    let details = format!("{}/urls/{id}/details", api.address);

    // Nobody asks: the schedule checks the link.
    eventually(Duration::from_secs(20), "a scheduled check", || async {
        get_json(&client, &details).await["health_status"] == "healthy"
    })
    .await;
    assert_eq!(location(&client, &api, &code).await, (302, target.clone()));

    one_scheduler_per_period(&dest).await;

    // Broken after two failures in a row: the redirect switches, one message.
    dest.failing.store(1, Ordering::SeqCst);
    eventually(
        Duration::from_secs(20),
        "the redirect on the fallback",
        || async { location(&client, &api, &code).await == (302, fallback.to_owned()) },
    )
    .await;
    assert_eq!(get_json(&client, &details).await["health_status"], "broken");
    eventually(Duration::from_secs(20), "the broken-link alert", || async {
        !stand_in.delivered().is_empty()
    })
    .await;
    // More failing periods add nothing.
    let after = dest.requests("/landing");
    eventually(
        Duration::from_secs(20),
        "two more failing probes",
        || async { dest.requests("/landing") >= after + 2 },
    )
    .await;
    let messages = stand_in.delivered();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = messages[0].to_string();
    assert!(text.contains(&format!("Link {code} is broken")), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");

    // Recovered: back to the target, one resolved message.
    dest.failing.store(0, Ordering::SeqCst);
    eventually(
        Duration::from_secs(20),
        "the redirect on the target",
        || async { location(&client, &api, &code).await == (302, target.clone()) },
    )
    .await;
    eventually(Duration::from_secs(20), "the resolved alert", || async {
        stand_in.delivered().len() >= 2
    })
    .await;
    let after = dest.requests("/landing");
    eventually(Duration::from_secs(20), "two more probes", || async {
        dest.requests("/landing") >= after + 2
    })
    .await;
    let messages = stand_in.delivered();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[1]
            .to_string()
            .contains(&format!("Link {code} recovered"))
    );

    // By hand, through the queue.
    let resp = client
        .post(format!("{}/urls/{id}/health/check", api.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    drop(workers);
}
