//! Link health checks in the production shape: two workers share the schedule
//! (`LINK_HEALTH_EVERY_SECONDS=1`, one claims each period), run the `check_links` jobs, switch
//! the api's Redis-cached redirect to the fallback and back, and alert through the
//! `deliver_alert` queue to a Discord stand-in: one message per transition whatever the
//! number of workers.

use std::time::{Duration, Instant};

use alerts::stand_in::StandIn;
use serde_json::json;
use storage::health::destination::{Answer, Destination};

use crate::helpers::*;

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
    let dest = Destination::start().await.unwrap();
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
    let target = dest.url("/landing");
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
    dest.answer(Answer::Error);
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
    dest.answer(Answer::Ok);
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
