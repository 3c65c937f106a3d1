//! Issue 11, link health checks: a destination that fails `LINK_HEALTH_FAILURES` checks in a
//! row is broken (one Discord message naming the link; redirects switch to its
//! `fallback_url`), one success makes it healthy again (one resolved message; redirects go
//! back), links with checks off are never probed, the schedule runs on its own, and
//! non-public destinations are refused unprobed. Both backends: SQLite + in-process cache,
//! PostgreSQL + Redis cache; checks and alerts run in process (no `REDIS_URL`), with the same
//! code as the worker's `check_links` job.

use std::time::{Duration, Instant};

use alerts::stand_in::StandIn;
use api::health::LinkChecks;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use storage::health::destination::{Answer, Destination};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

/// An app that may probe loopback (the destination), alerting to `stand_in`, with the
/// schedule every `every` seconds (0: off; tests check by hand).
async fn app_with(backend: Backend, stand_in: &StandIn, every: u64) -> TestApp {
    let hook = stand_in.webhook("health");
    TestApp::spawn_with(backend, move |c| {
        c.common.discord_webhook_urls = vec![hook];
        c.common.link_health_allow_private = true;
        c.common.link_health_failures = 2;
        c.common.link_health_timeout_seconds = 5;
        c.common.link_health_every_seconds = every;
    })
    .await
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One check of link `id`, run to its end in this process (what a `check_links` job does).
async fn check(app: &TestApp, id: i64) {
    check_all(app, &[id]).await;
}

/// One check of the links `ids` together (one job's batch).
async fn check_all(app: &TestApp, ids: &[i64]) {
    let LinkChecks::InProcess(checker) = &app.state.link_checks else {
        panic!("the test apps check in process");
    };
    checker
        .check_links(&app.state.db, &app.state.cache, app.state.as_ref(), ids)
        .await
        .unwrap();
}

/// Waits until every alert enqueued so far was delivered (or died), then returns the
/// messages Discord stored.
async fn delivered(app: &TestApp, stand_in: &StandIn) -> Vec<Value> {
    let api::alerts::AlertSink::Embedded(queue) = &app.state.alerts.sink else {
        panic!("the test apps deliver alerts in process");
    };
    let received = app.state.alerts.metrics.received.get();
    eventually(
        "alert deliveries to finish",
        Duration::from_secs(20),
        async || {
            let d = queue.depth();
            d.ready + d.future + d.running == 0 && queue.completed() + d.dead == received
        },
    )
    .await;
    stand_in.delivered()
}

async fn details(app: &TestApp, id: i64) -> Value {
    let (status, _, body) = parts(app.get(&format!("/urls/{id}/details")).await).await;
    assert_eq!(status, 200);
    body
}

/// The redirect of `code`: (status, Location).
async fn follow(app: &TestApp, code: &str) -> (u16, String) {
    let resp = app.get(&format!("/r/{code}")).await;
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), location)
}

async fn create(app: &TestApp, body: &Value) -> (i64, String) {
    let (status, _, link) = parts(app.post("/urls", body).await).await;
    assert_eq!(status, 201, "{link}");
    (
        link["id"].as_i64().unwrap(),
        link["short_code"].as_str().unwrap().to_owned(),
    )
}

async fn metric(app: &TestApp, line_start: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("metric {line_start} missing")) as u64
}

/// The text of every embed of `messages` (title, description, fields).
fn text_of(message: &Value) -> String {
    message.to_string()
}

async fn broken_destination_alerts_once_and_redirects_to_the_fallback_until_it_recovers(
    backend: Backend,
) {
    let stand_in = StandIn::start().await.unwrap();
    let dest = Destination::start().await.unwrap();
    let app = app_with(backend, &stand_in, 0).await;
    let target = dest.url("/landing");
    let fallback = "https://fallback.example/sorry";
    let (id, code) = create(
        &app,
        &json!({"original_url": target, "health_check": true, "fallback_url": fallback}),
    )
    .await;
    let d = details(&app, id).await;
    assert_eq!(d["health_status"], "unknown");
    assert_eq!(d["fallback_url"], fallback);
    assert_eq!(d["fallback_on_broken"], true);

    check(&app, id).await;
    assert_eq!(dest.requests("/landing"), 1, "one HEAD");
    let d = details(&app, id).await;
    assert_eq!(d["health_status"], "healthy");
    assert!(d["health_checked_at"].is_string());
    // Cached in every tier before it breaks: the switch must reach them.
    assert_eq!(follow(&app, &code).await, (302, target.clone()));
    assert_eq!(follow(&app, &code).await, (302, target.clone()));

    // One failure is a blip: still healthy, no alert, same target.
    dest.answer(Answer::Error);
    check(&app, id).await;
    let d = details(&app, id).await;
    assert_eq!(d["health_status"], "healthy");
    assert_eq!(d["health_last_error"], "HTTP 500");
    assert_eq!(follow(&app, &code).await, (302, target.clone()));
    assert!(delivered(&app, &stand_in).await.is_empty());

    // The second in a row: broken, one message naming the link, redirects to the fallback.
    check(&app, id).await;
    assert_eq!(details(&app, id).await["health_status"], "broken");
    assert_eq!(follow(&app, &code).await, (302, fallback.to_owned()));
    // A third failure (and a retried job) changes nothing more.
    check(&app, id).await;
    check(&app, id).await;
    let messages = delivered(&app, &stand_in).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = text_of(&messages[0]);
    assert!(text.contains("CurtainLinkBroken"), "{text}");
    assert!(text.contains(&format!("Link {code} is broken")), "{text}");
    assert!(text.contains(&target), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
    assert_eq!(
        metric(&app, "curtain_link_health_transitions_total{to=\"broken\"}").await,
        1
    );
    // One alert enqueued (not several that the repeat window then suppressed).
    assert_eq!(
        metric(&app, "curtain_alert_groups_received_total ").await,
        1
    );
    assert_eq!(
        metric(&app, "curtain_link_health_checks_total{result=\"failed\"}").await,
        4
    );
    assert_eq!(follow(&app, &code).await, (302, fallback.to_owned()));

    // Recovery: one resolved message, redirects back to the target.
    dest.answer(Answer::Ok);
    check(&app, id).await;
    let d = details(&app, id).await;
    assert_eq!(d["health_status"], "healthy");
    assert_eq!(d["health_last_error"], Value::Null);
    assert_eq!(follow(&app, &code).await, (302, target.clone()));
    check(&app, id).await;
    let messages = delivered(&app, &stand_in).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    let text = text_of(&messages[1]);
    assert!(text.contains(&format!("Link {code} recovered")), "{text}");
    assert!(text.contains("RESOLVED"), "{text}");
    assert_eq!(
        metric(
            &app,
            "curtain_link_health_transitions_total{to=\"healthy\"}"
        )
        .await,
        1
    );
    assert_eq!(
        metric(&app, "curtain_alert_groups_received_total ").await,
        2
    );
}

mod broken_destination_alerts_once_and_redirects_to_the_fallback_until_it_recovers {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::broken_destination_alerts_once_and_redirects_to_the_fallback_until_it_recovers(
            Backend::Sqlite,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(curtain_services),
        ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
    )]
    async fn postgres() {
        super::broken_destination_alerts_once_and_redirects_to_the_fallback_until_it_recovers(
            Backend::Postgres,
        )
        .await;
    }
}

async fn a_link_without_fallback_alerts_but_keeps_its_target(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    let dest = Destination::start().await.unwrap();
    let app = app_with(backend, &stand_in, 0).await;
    let target = dest.url("/plain");
    let (id, code) = create(&app, &json!({"original_url": target, "health_check": true})).await;
    dest.answer(Answer::Close);
    check(&app, id).await;
    check(&app, id).await;
    assert_eq!(dest.requests("/plain"), 2);
    let d = details(&app, id).await;
    assert_eq!(d["health_status"], "broken");
    let error = d["health_last_error"].as_str().unwrap().to_owned();
    assert!(!error.contains("HTTP"), "no answer at all: {error}");
    assert_eq!(follow(&app, &code).await, (302, target.clone()));
    let messages = delivered(&app, &stand_in).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = text_of(&messages[0]);
    assert!(text.contains(&format!("Link {code} is broken")), "{text}");
    assert!(text.contains("It has no fallback"), "{text}");
}

mod a_link_without_fallback_alerts_but_keeps_its_target {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_link_without_fallback_alerts_but_keeps_its_target(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(curtain_services),
        ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
    )]
    async fn postgres() {
        super::a_link_without_fallback_alerts_but_keeps_its_target(Backend::Postgres).await;
    }
}

async fn the_schedule_checks_opted_in_links_on_its_own_and_never_the_others(backend: Backend) {
    let stand_in = StandIn::start().await.unwrap();
    let dest = Destination::start().await.unwrap();
    let app = app_with(backend, &stand_in, 1).await;
    let (on, _) = create(
        &app,
        &json!({"original_url": dest.url("/on"), "health_check": true}),
    )
    .await;
    let (off, _) = create(&app, &json!({"original_url": dest.url("/off")})).await;
    let (explicit_off, _) = create(
        &app,
        &json!({"original_url": dest.url("/explicit-off"), "health_check": false}),
    )
    .await;
    // Nobody asks: the schedule probes the opted-in link, period after period.
    eventually(
        "two scheduled checks",
        Duration::from_secs(20),
        async || dest.requests("/on") >= 2,
    )
    .await;
    eventually("the result recorded", Duration::from_secs(10), async || {
        details(&app, on).await["health_status"] == "healthy"
    })
    .await;
    assert_eq!(dest.requests("/off"), 0);
    assert_eq!(dest.requests("/explicit-off"), 0);
    assert_eq!(details(&app, off).await["health_status"], "unknown");
    assert_eq!(details(&app, explicit_off).await["health_check"], false);

    // By hand: 202 for a checked link, 409 for one whose checks are off, 404 for none.
    let before = dest.requests("/on");
    let (status, _, body) = parts(
        app.post(&format!("/urls/{on}/health/check"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body),
        (202, json!({"url_id": on, "status": "queued"}))
    );
    eventually("the manual check", Duration::from_secs(10), async || {
        dest.requests("/on") > before
    })
    .await;
    let (status, _, body) = parts(
        app.post(&format!("/urls/{off}/health/check"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["error"],
        "Health checks are off for this link: set health_check to true first"
    );
    let (status, _, body) = parts(app.post("/urls/999999/health/check", &json!({})).await).await;
    assert_eq!((status, body), (404, json!({"error": "URL not found"})));
    assert_eq!(dest.requests("/off"), 0);
}

mod the_schedule_checks_opted_in_links_on_its_own_and_never_the_others {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::the_schedule_checks_opted_in_links_on_its_own_and_never_the_others(Backend::Sqlite)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(curtain_services),
        ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
    )]
    async fn postgres() {
        super::the_schedule_checks_opted_in_links_on_its_own_and_never_the_others(
            Backend::Postgres,
        )
        .await;
    }
}

backend_test! {
    /// The SSRF guard (the default): a loopback destination is never requested.
    async fn non_public_destinations_fail_their_check_unprobed(app) {
        let dest = Destination::start().await.unwrap();
        let (id, _) = create(&app, &json!({"original_url": dest.url("/inside"), "health_check": true})).await;
        check(&app, id).await;
        assert_eq!(dest.requests("/inside"), 0);
        let d = details(&app, id).await;
        assert_eq!(d["health_last_error"], "refused: 127.0.0.1 is not a public address");
        // `localhost` resolves to loopback only: refused by the resolver.
        let port = dest.port();
        let (id, _) = create(&app, &json!({"original_url": format!("http://localhost:{port}/named"), "health_check": true})).await;
        check(&app, id).await;
        assert_eq!(dest.requests("/named"), 0);
        let error = details(&app, id).await["health_last_error"].as_str().unwrap().to_owned();
        assert!(error.contains("refused: localhost resolves to no public address"), "{error}");
    }
}

backend_test! {
    async fn health_options_are_validated_and_turning_checks_off_restores_the_target(app) {
        for (body, error) in [
            (json!({"original_url": "https://a.example", "fallback_url": "ftp://x"}), "Field 'fallback_url' must be a valid http or https URL"),
            (json!({"original_url": "https://a.example", "fallback_url": 5}), "Field 'fallback_url' must be a string"),
            (json!({"original_url": "https://a.example", "health_check": "yes"}), "Field 'health_check' must be a boolean"),
            (json!({"original_url": "https://a.example", "fallback_on_broken": 1}), "Field 'fallback_on_broken' must be a boolean"),
        ] {
            let (status, _, answer) = parts(app.post("/urls", &body).await).await;
            assert_eq!((status, answer), (400, json!({"error": error})), "{body}");
        }
        let (id, code) = create(&app, &json!({"original_url": "https://a.example/x"})).await;
        let d = details(&app, id).await;
        assert_eq!((d["health_check"].clone(), d["fallback_url"].clone(), d["fallback_on_broken"].clone()), (json!(false), Value::Null, json!(true)));
        let (status, _, d) = parts(app.request(reqwest::Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"fallback_url": " https://b.example/y ", "fallback_on_broken": false, "health_check": true}))).await).await;
        assert_eq!(status, 200);
        assert_eq!((d["fallback_url"].clone(), d["fallback_on_broken"].clone(), d["health_check"].clone()), (json!("https://b.example/y"), json!(false), json!(true)));
        // The plain create never returns a link with options.
        let (status, _, plain) = parts(app.post("/urls", &json!({"original_url": "https://a.example/x"})).await).await;
        assert_eq!(status, 201, "a link with options is never the idempotent answer");
        assert_ne!(plain["id"].as_i64(), Some(id));

        // A broken link (as a check would leave it) with its fallback on redirects there;
        // turning checks off forgets its health and restores the target.
        let (status, _, _) = parts(app.request(reqwest::Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"fallback_on_broken": null}))).await).await;
        assert_eq!(status, 200);
        app.state.db.execute_unprepared(&format!("UPDATE urls SET health_status = 'broken', health_failures = 2 WHERE id = {id}")).await.unwrap();
        app.state.cache.invalidate(storage::cache::Invalidation::link(id, &code)).await;
        assert_eq!(follow(&app, &code).await, (302, "https://b.example/y".to_owned()));
        let (status, _, d) = parts(app.request(reqwest::Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"health_check": false}))).await).await;
        assert_eq!((status, d["health_status"].clone()), (200, json!("unknown")));
        assert_eq!(follow(&app, &code).await, (302, "https://a.example/x".to_owned()));
        let (status, _, _) = parts(app.request(reqwest::Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"health_check": 1}))).await).await;
        assert_eq!(status, 400);
    }
}

backend_test! {
    /// A mass outage makes one delivery per check batch, not one Discord message per link.
    async fn links_broken_in_one_check_share_one_message(app) {
        let stand_in = StandIn::start().await.unwrap();
        let dest = Destination::start().await.unwrap();
        let app = app_with(app.backend, &stand_in, 0).await;
        let mut ids = Vec::new();
        let mut codes = Vec::new();
        for path in ["/one", "/two", "/three"] {
            let (id, code) = create(&app, &json!({"original_url": dest.url(path), "health_check": true})).await;
            ids.push(id);
            codes.push(code);
        }
        dest.answer(Answer::Error);
        check_all(&app, &ids).await;
        check_all(&app, &ids).await;
        let messages = delivered(&app, &stand_in).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0]["embeds"].as_array().unwrap().len(), 3);
        let text = text_of(&messages[0]);
        for code in &codes {
            assert!(text.contains(&format!("Link {code} is broken")), "{text}");
        }
        assert_eq!(
            metric(&app, "curtain_link_health_transitions_total{to=\"broken\"}").await,
            3
        );
    }
}
