//! `POST /alerts/alertmanager`: authentication (401, 503), validation (400) and delivery in the
//! embedded default (no `REDIS_URL`: the in-process queue runs the same job body as the
//! worker) to a Discord stand-in started by each test.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alerts::stand_in::{Reply, StandIn, violation};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

const TOKEN: &str = "am-secret-token";

/// Runs `$body(backend)` as `<name>::sqlite` and `<name>::postgres`.
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(curtain_services), ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set")]
            async fn postgres() {
                $body(Backend::Postgres).await;
            }
        }
    };
}

fn alert(name: &str, status: &str, description: usize) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": name, "severity": "page", "instance": "api-1:5000"},
        "annotations": {"summary": format!("{name} summary"), "description": "d".repeat(description)},
        "startsAt": "2026-12-03T10:00:00Z",
        "endsAt": if status == "resolved" { "2026-12-03T10:07:30Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28x%5B5m%5D%29",
        "fingerprint": format!("fp-{name}"),
    })
}

fn group(key: &str, alerts: Vec<Value>) -> Value {
    let alerts = Value::Array(alerts);
    json!({
        "version": "4", "groupKey": key, "status": "firing", "receiver": "discord",
        "groupLabels": {"alertname": key}, "commonLabels": {"severity": "page"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts,
        "truncatedAlerts": 0,
    })
}

async fn app_with(backend: Backend, token: Option<&str>, stand_in: Option<&StandIn>) -> TestApp {
    let token = token.map(str::to_owned);
    let hook = stand_in.map(|s| s.webhook("test"));
    TestApp::spawn_with(backend, move |c| {
        c.alertmanager_webhook_token = token;
        c.common.discord_webhook_urls = hook.into_iter().collect();
    })
    .await
}

async fn post(app: &TestApp, auth: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = app.client.post(app.url("/alerts/alertmanager")).json(body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("metric {name} missing")) as u64
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn without_a_configured_token_the_receiver_answers_503(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    let app = app_with(backend, None, Some(&stand_in)).await;
    let body = group("G", vec![alert("A", "firing", 10)]);
    let (status, answer) = post(&app, Some("Bearer anything"), &body).await;
    assert_eq!(status, 503);
    assert_eq!(
        answer,
        json!({"error": "Alert intake is disabled: ALERTMANAGER_WEBHOOK_TOKEN is not configured"})
    );
    assert!(stand_in.requests().is_empty());
}
both_backends!(
    without_a_configured_token_the_receiver_answers_503,
    super::without_a_configured_token_the_receiver_answers_503
);

async fn a_missing_or_wrong_bearer_token_is_401(backend: Backend) {
    let app = app_with(backend, Some(TOKEN), None).await;
    let body = group("G", vec![alert("A", "firing", 10)]);
    let (status, answer) = post(&app, None, &body).await;
    assert_eq!(status, 401);
    assert_eq!(
        answer,
        json!({"error": "Missing or malformed Authorization: Bearer <token> header"})
    );
    let (status, answer) = post(&app, Some("Bearer am-secret-tokeX"), &body).await;
    assert_eq!(
        (status, answer),
        (401, json!({"error": "Invalid bearer token"}))
    );
    let (status, _) = post(&app, Some(&format!("Basic {TOKEN}")), &body).await;
    assert_eq!(status, 401);
    assert_eq!(metric(&app, "curtain_alert_groups_received_total").await, 0);
}
both_backends!(
    a_missing_or_wrong_bearer_token_is_401,
    super::a_missing_or_wrong_bearer_token_is_401
);

async fn invalid_payloads_are_400_with_the_reason(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    let app = app_with(backend, Some(TOKEN), Some(&stand_in)).await;
    let auth = format!("Bearer {TOKEN}");
    let mut wrong_version = group("G", vec![alert("A", "firing", 1)]);
    wrong_version["version"] = json!("3");
    let mut bad_status = group("G", vec![alert("A", "firing", 1)]);
    bad_status["alerts"][0]["status"] = json!("burning");
    let mut no_start = group("G", vec![alert("A", "firing", 1)]);
    no_start["alerts"][0]
        .as_object_mut()
        .unwrap()
        .remove("startsAt");
    let cases = [
        (
            json!([1, 2]),
            "Request body must be an Alertmanager webhook payload (a JSON object)",
        ),
        (
            wrong_version,
            "Unsupported Alertmanager payload version \"3\" (expected \"4\")",
        ),
        (
            group("G", vec![]),
            "An alert group must have 1 to 1000 alerts (got 0)",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(
            post(&app, Some(&auth), &body).await,
            (400, json!({"error": message}))
        );
    }
    for (body, needle) in [
        (bad_status, "unknown variant `burning`"),
        (no_start, "missing field `startsAt`"),
    ] {
        let (status, answer) = post(&app, Some(&auth), &body).await;
        assert_eq!(status, 400);
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.starts_with("Invalid Alertmanager payload: ") && error.contains(needle),
            "{error}"
        );
    }
    assert!(stand_in.requests().is_empty());
}
both_backends!(
    invalid_payloads_are_400_with_the_reason,
    super::invalid_payloads_are_400_with_the_reason
);

async fn embedded_delivery_sends_one_embed_per_alert_and_not_twice_in_the_window(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    let app = app_with(backend, Some(TOKEN), Some(&stand_in)).await;
    let auth = format!("Bearer {TOKEN}");
    let body = group(
        "HighErrorRate",
        vec![
            alert("HighErrorRate", "firing", 80),
            alert("DiskFull", "resolved", 0),
        ],
    );
    let (status, answer) = post(&app, Some(&auth), &body).await;
    assert_eq!(status, 202);
    assert_eq!(answer["alerts"], 2);
    eventually(
        "the message delivered",
        Duration::from_secs(10),
        async || stand_in.delivered().len() == 1,
    )
    .await;
    let message = &stand_in.delivered()[0];
    eprintln!(
        "rendered message: {}",
        serde_json::to_string_pretty(message).unwrap()
    );
    assert_eq!(stand_in.requests()[0].query, "wait=true");
    let embeds = message["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 2);
    assert_eq!(embeds[0]["title"], "[FIRING] HighErrorRate");
    assert_eq!(embeds[0]["color"], 0x00E0_1E5A);
    assert_eq!(
        embeds[0]["url"],
        "http://prometheus:9090/graph?g0.expr=rate%28x%5B5m%5D%29"
    );
    assert!(
        embeds[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("**HighErrorRate summary**\nddd")
    );
    assert_eq!(embeds[1]["title"], "[RESOLVED] DiskFull");
    assert_eq!(embeds[1]["color"], 0x002E_B67D);
    let fields: BTreeMap<&str, &str> = embeds[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        BTreeMap::from([
            ("instance", "api-1:5000"),
            ("severity", "page"),
            ("Started", "2026-12-03 10:00:00 UTC"),
            ("Ended", "2026-12-03 10:07:30 UTC")
        ])
    );
    assert_eq!(message["allowed_mentions"], json!({"parse": []}));
    assert_eq!(violation(message), None);

    // Alertmanager repeats the group: nothing is sent again within the repeat window.
    assert_eq!(post(&app, Some(&auth), &body).await.0, 202);
    eventually(
        "the repeat suppressed",
        Duration::from_secs(10),
        async || metric(&app, "curtain_alerts_suppressed_total").await == 2,
    )
    .await;
    assert_eq!(stand_in.requests().len(), 1);
    assert_eq!(metric(&app, "curtain_alerts_delivered_total").await, 2);
    assert_eq!(metric(&app, "curtain_alert_groups_received_total").await, 2);
    // The firing alert resolving is news: delivered as resolved.
    let resolved = group(
        "HighErrorRate",
        vec![alert("HighErrorRate", "resolved", 80)],
    );
    assert_eq!(post(&app, Some(&auth), &resolved).await.0, 202);
    eventually(
        "the resolution delivered",
        Duration::from_secs(10),
        async || stand_in.delivered().len() == 2,
    )
    .await;
    let last = &stand_in.delivered()[1]["embeds"][0];
    assert_eq!(
        (last["title"].as_str(), last["color"].as_u64()),
        (Some("[RESOLVED] HighErrorRate"), Some(0x002E_B67D))
    );
}
both_backends!(
    embedded_delivery_sends_one_embed_per_alert_and_not_twice_in_the_window,
    super::embedded_delivery_sends_one_embed_per_alert_and_not_twice_in_the_window
);

async fn embedded_delivery_waits_out_429_and_retries_500_with_backoff(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    stand_in.script([
        Reply::RateLimited(0.4),
        Reply::RateLimitedHeader(1),
        Reply::ServerError,
    ]);
    let app = app_with(backend, Some(TOKEN), Some(&stand_in)).await;
    let body = group("G", vec![alert("A", "firing", 10)]);
    assert_eq!(
        post(&app, Some(&format!("Bearer {TOKEN}")), &body).await.0,
        202
    );
    eventually(
        "delivered after the refusals",
        Duration::from_secs(15),
        async || stand_in.delivered().len() == 1,
    )
    .await;
    let r = stand_in.requests();
    let statuses: Vec<Option<u16>> = r.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(429), Some(429), Some(500), Some(200)]);
    assert!(
        r[1].at - r[0].at >= Duration::from_millis(400),
        "retry_after from the body"
    );
    assert!(
        r[2].at - r[1].at >= Duration::from_secs(1),
        "Retry-After header"
    );
    assert!(
        r[3].at - r[2].at >= Duration::from_secs(1),
        "back-off after a 500"
    );
    assert_eq!(metric(&app, "curtain_alert_rate_limited_total").await, 2);
    assert_eq!(metric(&app, "curtain_alerts_failed_total").await, 1);
    assert_eq!(metric(&app, "curtain_alerts_delivered_total").await, 1);
    assert_eq!(metric(&app, "curtain_alerts_dead_total").await, 0);
}
both_backends!(
    embedded_delivery_waits_out_429_and_retries_500_with_backoff,
    super::embedded_delivery_waits_out_429_and_retries_500_with_backoff
);

async fn embedded_delivery_ends_dead_on_404_and_is_counted(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    stand_in.script([Reply::NotFound]);
    let app = app_with(backend, Some(TOKEN), Some(&stand_in)).await;
    let body = group("G", vec![alert("A", "firing", 10)]);
    assert_eq!(
        post(&app, Some(&format!("Bearer {TOKEN}")), &body).await.0,
        202
    );
    eventually("the delivery dead", Duration::from_secs(10), async || {
        metric(&app, "curtain_alerts_dead_total").await == 1
    })
    .await;
    // A retry would come after 1 s: give it the chance to, then check it did not.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stand_in.requests().len(), 1);
    assert_eq!(metric(&app, "curtain_alerts_delivered_total").await, 0);
}
both_backends!(
    embedded_delivery_ends_dead_on_404_and_is_counted,
    super::embedded_delivery_ends_dead_on_404_and_is_counted
);

async fn embedded_storm_of_50_alerts_in_5_groups_is_delivered_whole(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    stand_in.script([
        Reply::Ok,
        Reply::RateLimited(0.2),
        Reply::ServerError,
        Reply::Ok,
        Reply::RateLimited(0.1),
    ]);
    let app = app_with(backend, Some(TOKEN), Some(&stand_in)).await;
    for g in 0..5 {
        let alerts = (0..10)
            .map(|i| alert(&format!("S{g}-{i}"), "firing", (i * 397 + 50) % 3500))
            .collect();
        assert_eq!(
            post(
                &app,
                Some(&format!("Bearer {TOKEN}")),
                &group(&format!("S{g}"), alerts)
            )
            .await
            .0,
            202
        );
    }
    let titles = || {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for b in stand_in.delivered() {
            for e in b["embeds"].as_array().unwrap() {
                *seen
                    .entry(e["title"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        seen
    };
    eventually("all 50 delivered", Duration::from_secs(30), async || {
        titles().len() == 50
    })
    .await;
    assert!(titles().values().all(|n| *n == 1), "none twice");
    for r in stand_in.requests() {
        assert_eq!(violation(&r.body), None);
    }
    assert_eq!(stand_in.requests().len(), stand_in.delivered().len() + 3);
    assert_eq!(metric(&app, "curtain_alerts_delivered_total").await, 50);
}
both_backends!(
    embedded_storm_of_50_alerts_in_5_groups_is_delivered_whole,
    super::embedded_storm_of_50_alerts_in_5_groups_is_delivered_whole
);
