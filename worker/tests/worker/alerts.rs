//! Alert delivery in the production shape: the api enqueues `deliver_alert` jobs on Redis,
//! `curtain-worker` delivers them to a Discord stand-in (a real HTTP server started by each
//! test, recording requests and answering 200, 429, 500, 404 or nothing on command).

use std::collections::BTreeMap;
use std::time::Duration;

use alerts::stand_in::{Reply, StandIn, violation};
use serde_json::{Value, json};

use crate::helpers::*;

/// An Alertmanager v4 group `group` of `n` firing alerts; descriptions of varying length
/// (up to ~3,500 characters) so that messages must be split.
pub fn group_payload(group: &str, n: usize) -> Value {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": {"alertname": format!("{group}-{i}"), "severity": "page", "instance": format!("host-{i}:9100")},
                "annotations": {"summary": format!("{group} alert {i} is firing"), "description": "x".repeat((i * 397 + 50) % 3500)},
                "startsAt": "2026-12-03T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": format!("http://prometheus:9090/graph?g0.expr=up&i={i}"),
                "fingerprint": format!("{group}-fp-{i}"),
            })
        })
        .collect();
    json!({
        "version": "4", "groupKey": format!("{{}}:{{group=\"{group}\"}}"), "status": "firing",
        "receiver": "discord", "groupLabels": {"group": group}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts,
    })
}

pub async fn post_alerts(client: &reqwest::Client, api: &str, payload: &Value) -> u16 {
    client
        .post(format!("{api}/alerts/alertmanager"))
        .bearer_auth(ALERT_TOKEN)
        .json(payload)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// How many times each alert title was delivered (in messages answered 200).
fn delivered_titles(stand_in: &StandIn) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for body in stand_in.delivered() {
        for embed in body["embeds"].as_array().unwrap() {
            *seen
                .entry(embed["title"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    seen
}

/// A metric's value from a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("metric {name} missing")) as u64
}

async fn worker_metric(config: &worker::Config, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{}/metrics", config.listen))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metric(&text, name)
}

async fn dead_jobs(redis: &str, queue: &str) -> u64 {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SCARD")
        .arg(format!("{queue}:dead"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_storm_of_50_alerts_in_5_groups_is_delivered_whole_within_discord_limits() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let stand_in = StandIn::start().await.unwrap();
    // Discord pushes back in the middle of the storm: two rate limits and a 500.
    stand_in.script([
        Reply::Ok,
        Reply::RateLimited(0.3),
        Reply::Ok,
        Reply::ServerError,
        Reply::RateLimitedHeader(1),
    ]);
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.common.discord_webhook_urls = vec![stand_in.webhook("storm")];
    let (_stop, _worker) = spawn_worker(config.clone());
    let client = http_client();
    for g in 0..5 {
        let status = post_alerts(&client, &api.address, &group_payload(&format!("G{g}"), 10)).await;
        assert_eq!(status, 202);
    }
    eventually(
        Duration::from_mins(1),
        "all 50 alerts delivered",
        || async { delivered_titles(&stand_in).len() == 50 },
    )
    .await;
    let titles = delivered_titles(&stand_in);
    for g in 0..5 {
        for i in 0..10 {
            assert_eq!(
                titles.get(&format!("[FIRING] G{g}-{i}")),
                Some(&1),
                "G{g}-{i} once"
            );
        }
    }
    let requests = stand_in.requests();
    for r in &requests {
        assert_eq!(violation(&r.body), None, "no message over Discord's limits");
        assert_eq!(r.query, "wait=true");
    }
    let messages = stand_in.delivered().len() as u64;
    assert!(
        messages > 5,
        "long alerts were split over several messages ({messages})"
    );
    eventually(Duration::from_secs(5), "metrics exported", || async {
        worker_metric(&config, "curtain_alerts_delivered_total").await == 50
    })
    .await;
    assert_eq!(
        worker_metric(&config, "curtain_alert_messages_sent_total").await,
        messages
    );
    assert_eq!(
        worker_metric(&config, "curtain_alert_rate_limited_total").await,
        2
    );
    assert_eq!(
        worker_metric(&config, "curtain_alerts_failed_total").await,
        1
    );
    assert_eq!(worker_metric(&config, "curtain_alerts_dead_total").await, 0);
    assert_eq!(
        requests.len() as u64,
        messages + 3,
        "only the 3 refused sends were repeated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn an_alert_is_delivered_after_its_worker_is_sigkilled_mid_delivery() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let stand_in = StandIn::start().await.unwrap();
    stand_in.script([Reply::Hang]);
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.common.discord_webhook_urls = vec![stand_in.webhook("kill")];
    let mut first = worker_process(&config);
    let status = post_alerts(&http_client(), &api.address, &group_payload("K", 3)).await;
    assert_eq!(status, 202);
    eventually(
        Duration::from_secs(20),
        "the first worker is sending",
        || async { stand_in.requests().len() == 1 },
    )
    .await;
    first.kill().unwrap(); // SIGKILL, while Discord has not answered
    first.wait().unwrap();
    config.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut second = worker_process(&config);
    eventually(
        Duration::from_secs(30),
        "the alert delivered by the second worker",
        || async { stand_in.delivered().len() == 1 },
    )
    .await;
    let titles = delivered_titles(&stand_in);
    assert_eq!(titles.len(), 3);
    assert!(titles.values().all(|n| *n == 1));
    assert_eq!(
        stand_in.requests()[0].status,
        None,
        "the first send was never answered"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_webhook_answering_404_ends_the_job_dead_and_counted_without_retries() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let stand_in = StandIn::start().await.unwrap();
    stand_in.script([Reply::NotFound]);
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.common.discord_webhook_urls = vec![stand_in.webhook("gone")];
    let (_stop, _worker) = spawn_worker(config.clone());
    let status = post_alerts(&http_client(), &api.address, &group_payload("D", 2)).await;
    assert_eq!(status, 202);
    eventually(
        Duration::from_secs(20),
        "the job in the dead set",
        || async { dead_jobs(&redis.url(), &ns.alert_queue).await == 1 },
    )
    .await;
    assert_eq!(worker_metric(&config, "curtain_alerts_dead_total").await, 1);
    assert_eq!(
        worker_metric(&config, "curtain_alerts_delivered_total").await,
        0
    );
    // A retry would come back after 1 s: give it the chance to, then check it did not.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        stand_in.requests().len(),
        1,
        "a refused webhook is not retried"
    );
    assert_eq!(dead_jobs(&redis.url(), &ns.alert_queue).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn click_jobs_dead_after_25_attempts_reach_discord_once_firing_then_resolved() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let stand_in = StandIn::start().await.unwrap();
    // A click batch apalis-redis buried after 25 failed attempts (empty: it ingests fine once
    // re-driven).
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let id = "01JDEADJOB0000000000000000";
    let batch = serde_json::to_string(&jobs::ClickBatch::new(Vec::new())).unwrap();
    let () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{}:data", ns.queue))
        .arg(id)
        .arg(batch)
        .ignore()
        .cmd("HSET")
        .arg(format!("{}:meta:{id}", ns.queue))
        .arg("attempts")
        .arg(25)
        .arg("max_attempts")
        .arg(25)
        .arg("status")
        .arg("Killed")
        .ignore()
        .cmd("SADD")
        .arg(format!("{}:dead", ns.queue))
        .arg(id)
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.common.discord_webhook_urls = vec![stand_in.webhook("own")];
    config.condition_resolve_seconds = 1;
    // Two workers: the condition is delivered once, not once per worker.
    let (_stop, _worker) = spawn_worker(config.clone());
    let mut second = config.clone();
    second.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (_stop2, _worker2) = spawn_worker(second);
    eventually(
        Duration::from_secs(20),
        "firing and resolved delivered",
        || async { stand_in.delivered().len() >= 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // a duplicate would be here by now
    let titles: Vec<String> = stand_in
        .delivered()
        .iter()
        .map(|b| b["embeds"][0]["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        titles,
        vec![
            "[FIRING] CurtainDeadClickJobs",
            "[RESOLVED] CurtainDeadClickJobs"
        ]
    );
    let first = &stand_in.delivered()[0]["embeds"][0];
    assert_eq!(first["color"], 0x00E0_1E5A);
    assert!(
        first["description"]
            .as_str()
            .unwrap()
            .contains("1 click batches")
    );
}
