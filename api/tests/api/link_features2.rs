//! Issue 11, more link features: QR codes of short URLs, bot flagging of clicks, password
//! links and the unknown-code counter. New data is read only through new endpoints, opt-in
//! query parameters or the details endpoints; the contract's payloads keep their exact keys.

use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{TestApp, parts};

/// `GET path` as (status, content type, bytes).
async fn raw(app: &TestApp, path: &str) -> (u16, String, Vec<u8>) {
    let resp = app.get(path).await;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.bytes().await.unwrap().to_vec())
}

/// Decodes a PNG: (width, height, 8-bit luminance pixels).
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The text of the one QR code in a luminance image.
fn read_qr(width: u32, pixels: &[u8]) -> String {
    let w = width as usize;
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(w, pixels.len() / w, |x, y| pixels[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// A 400 or 404 in the contract's envelope with this exact message.
async fn refused(app: &TestApp, path: &str, status: u16, message: &str) {
    let (got, _, body) = parts(app.get(path).await).await;
    assert_eq!(got, status, "{path} -> {body}");
    assert_eq!(body, json!({ "error": message }), "{path}");
}

backend_test! {
    async fn qr_png_has_the_asked_size_and_encodes_the_short_url(app) {
        let url = app.create_url("https://example.com/qr").await;
        let (id, code) = (&url["id"], url["short_code"].as_str().unwrap());
        let short_url = app.url(&format!("/r/{code}"));

        // Default: a PNG of 256 × 256.
        let (status, content_type, bytes) = raw(&app, &format!("/urls/{id}/qr")).await;
        assert_eq!((status, content_type.as_str()), (200, "image/png"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let (w, h, pixels) = decode_png(&bytes);
        assert_eq!((w, h), (256, 256));
        assert_eq!(read_qr(w, &pixels), short_url);

        for size in [64, 300, 2048] {
            let (status, content_type, bytes) =
                raw(&app, &format!("/urls/{id}/qr?format=png&size={size}")).await;
            assert_eq!((status, content_type.as_str()), (200, "image/png"), "size {size}");
            let (w, h, pixels) = decode_png(&bytes);
            assert_eq!((w, h), (size, size));
            if size <= 300 {
                assert_eq!(read_qr(w, &pixels), short_url, "size {size}");
            }
        }
    }
}

backend_test! {
    async fn qr_svg_is_xml_of_the_asked_size(app) {
        let url = app.create_url("https://example.com/qr-svg").await;
        let id = &url["id"];
        let (status, content_type, bytes) = raw(&app, &format!("/urls/{id}/qr?format=svg&size=512")).await;
        assert_eq!((status, content_type.as_str()), (200, "image/svg+xml"));
        let mut reader = quick_xml::Reader::from_reader(bytes.as_slice());
        let mut buf = Vec::new();
        let mut root = None;
        let mut elements = 0;
        loop {
            match reader.read_event_into(&mut buf).expect("well-formed XML") {
                quick_xml::events::Event::Eof => break,
                quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                    elements += 1;
                    if root.is_none() {
                        let attr = |name: &str| {
                            e.try_get_attribute(name).unwrap().map(|a| a.unescape_value().unwrap().into_owned())
                        };
                        root = Some((
                            String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                            attr("width"),
                            attr("height"),
                        ));
                    }
                }
                _ => {}
            }
            buf.clear();
        }
        assert_eq!(
            root,
            Some(("svg".to_owned(), Some("512".to_owned()), Some("512".to_owned())))
        );
        // The background and the modules.
        assert_eq!(elements, 3);
    }
}

backend_test! {
    async fn qr_refuses_bad_formats_and_sizes_and_unknown_links(app) {
        let url = app.create_url("https://example.com/qr-bad").await;
        let id = &url["id"];
        for format in ["gif", "", "png%20svg"] {
            refused(&app, &format!("/urls/{id}/qr?format={format}"), 400,
                "Query parameter 'format' must be 'png' or 'svg'").await;
        }
        for size in ["63", "2049", "0", "-256", "abc", "256.5", ""] {
            refused(&app, &format!("/urls/{id}/qr?size={size}"), 400,
                "Query parameter 'size' must be an integer from 64 to 2048").await;
        }
        refused(&app, "/urls/999999/qr", 404, "URL not found").await;
        refused(&app, "/urls/99999999999999999999/qr", 404, "URL not found").await;
        refused(&app, "/urls/abc/qr", 404, "Not found").await;
    }
}

backend_test! {
    async fn link_page_shows_the_qr_code(app) {
        let url = app.create_url("https://example.com/qr-page").await;
        let code = url["short_code"].as_str().unwrap();
        let (status, content_type, bytes) = raw(&app, &format!("/ui/links/{code}")).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = String::from_utf8(bytes).unwrap();
        let (_, qr) = page.split_once("<figure id=\"qr\">").expect("a QR figure");
        assert!(qr.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{qr}");
        // The markup is the image itself, not escaped text.
        assert!(!page.contains("&lt;svg"));
        assert!(qr.contains(&format!("/urls/{}/qr?format=png", url["id"])));
    }
}

/// The user agents of the bot-flagging tests.
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// A redirect of `code` by `method` with this user agent from this (forwarded) client.
async fn visit(app: &TestApp, method: reqwest::Method, code: &str, agent: &str, client: &str) {
    let resp = app
        .client
        .request(method.clone(), app.url(&format!("/r/{code}")))
        .header("user-agent", agent)
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "{method} /r/{code} by {agent}");
}

/// (is_bot, user agent) of the link's redirect events, oldest first.
async fn flags(app: &TestApp, url: i64) -> Vec<(bool, Option<String>)> {
    use entity::event;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    event::Entity::find()
        .filter(event::Column::UrlId.eq(url))
        .filter(event::Column::EventType.eq("redirect"))
        .order_by_asc(event::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.is_bot, e.user_agent))
        .collect()
}

/// `GET path` as JSON, asserting 200.
async fn read(app: &TestApp, path: &str) -> Value {
    let (status, _, body) = parts(app.get(path).await).await;
    assert_eq!(status, 200, "{path} -> {body}");
    body
}

/// The analytics and time series of `url` over `[from, to)`, by hour and day, with and
/// without bots.
async fn answers(app: &TestApp, url: i64, from: &str, to: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for query in ["", "?exclude_bots=false", "?exclude_bots=true"] {
        out.push(read(app, &format!("/urls/{url}/analytics{query}")).await);
    }
    for granularity in ["hour", "day"] {
        for bots in ["", "&exclude_bots=true"] {
            out.push(
                read(
                    app,
                    &format!(
                        "/urls/{url}/analytics/timeseries?granularity={granularity}&from={from}&to={to}{bots}"
                    ),
                )
                .await,
            );
        }
    }
    out
}

/// The one non-empty bucket of a series: (events, clicks, unique visitors).
fn busy_bucket(series: &Value) -> (u64, u64, u64) {
    let busy: Vec<&Value> = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["events"] != 0)
        .collect();
    assert_eq!(busy.len(), 1, "{series}");
    let n = |k: &str| busy[0][k].as_u64().unwrap();
    (n("events"), n("clicks"), n("unique_visitors"))
}

async fn bots_are_flagged_and_excluded_before_and_after_a_rollup(app: TestApp) {
    use chrono::Duration;
    use entity::event;
    use entity::rollup::{hourly, pending};
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

    let url = app.create_url("https://example.com/bots").await;
    let (id, code) = (
        url["id"].as_i64().unwrap(),
        url["short_code"].as_str().unwrap(),
    );
    visit(&app, reqwest::Method::GET, code, GOOGLEBOT, "198.51.100.1").await;
    visit(&app, reqwest::Method::HEAD, code, FIREFOX, "198.51.100.2").await;
    visit(&app, reqwest::Method::GET, code, FIREFOX, "198.51.100.3").await;
    app.run_pending_jobs().await;
    assert_eq!(
        flags(&app, id).await,
        vec![
            (true, Some(GOOGLEBOT.to_owned())),
            (true, Some(FIREFOX.to_owned())),
            (false, Some(FIREFOX.to_owned())),
        ]
    );

    // The created event and the three redirects, moved into a closed hour and marked there
    // (as late events are), so that a rollup can take them.
    let db = &app.state.db;
    let now = api::models::now();
    let hour = storage::rollup::hour_floor(now) - Duration::hours(3);
    event::Entity::update_many()
        .col_expr(
            event::Column::Timestamp,
            sea_orm::sea_query::Expr::value(hour + Duration::minutes(10)),
        )
        .filter(event::Column::UrlId.eq(id))
        .exec(db)
        .await
        .unwrap();
    pending::Entity::delete_many().exec(db).await.unwrap();
    pending::Entity::insert(pending::ActiveModel {
        url_id: Set(Some(id)),
        hour: Set(hour),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap();
    app.state.cache.invalidate_analytics(&[id]).await;

    let ts = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let (from, to) = (ts(hour - Duration::days(2)), ts(hour + Duration::hours(2)));
    let before = answers(&app, id, &from, &to).await;
    let [
        all,
        all_again,
        humans,
        by_hour,
        by_hour_humans,
        by_day,
        by_day_humans,
    ] = before.as_slice()
    else {
        panic!("seven answers");
    };
    // Without the flag, or with it false, every event counts and the answer keeps its keys.
    assert_eq!(all, all_again);
    assert_eq!(
        (
            &all["total_events"],
            &all["redirect_count"],
            &all["event_counts"]
        ),
        (&json!(4), &json!(3), &json!({"created": 1, "redirect": 3})),
        "{all}"
    );
    // Without bots: the created event and the browser's GET.
    assert_eq!(
        (
            &humans["total_events"],
            &humans["redirect_count"],
            &humans["event_counts"]
        ),
        (&json!(2), &json!(1), &json!({"created": 1, "redirect": 1})),
        "{humans}"
    );
    let mut keys_all: Vec<&String> = all.as_object().unwrap().keys().collect();
    let mut keys_humans: Vec<&String> = humans.as_object().unwrap().keys().collect();
    keys_all.sort();
    keys_humans.sort();
    assert_eq!(keys_all, keys_humans);
    assert_eq!(busy_bucket(by_hour), (4, 3, 3));
    assert_eq!(busy_bucket(by_hour_humans), (2, 1, 1));
    assert_eq!(busy_bucket(by_day), (4, 3, 3));
    assert_eq!(busy_bucket(by_day_humans), (2, 1, 1));

    let report = storage::rollup::run_once(db, now).await.unwrap();
    assert_eq!(report.hours, 1, "{report:?}");
    let row = hourly::Entity::find()
        .filter(hourly::Column::UrlId.eq(id))
        .filter(hourly::Column::EventType.eq("redirect"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.events, row.bot_events), (3, 2));
    app.state.cache.invalidate_analytics(&[id]).await;
    assert_eq!(
        answers(&app, id, &from, &to).await,
        before,
        "after the rollup"
    );

    // Retention drops the raw redirects; the rows still tell bots apart.
    storage::rollup::prune(db, now).await.unwrap();
    assert!(flags(&app, id).await.is_empty());
    app.state.cache.invalidate_analytics(&[id]).await;
    assert_eq!(
        answers(&app, id, &from, &to).await,
        before,
        "after retention"
    );

    refused(
        &app,
        &format!("/urls/{id}/analytics?exclude_bots=yes"),
        400,
        "Query parameter 'exclude_bots' must be true or false",
    )
    .await;
    refused(
        &app,
        &format!("/urls/{id}/analytics/timeseries?exclude_bots=1"),
        400,
        "Query parameter 'exclude_bots' must be true or false",
    )
    .await;
}

mod bots_are_flagged_and_excluded_before_and_after_a_rollup {
    use crate::helpers::{Backend, TestApp};

    async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |c| {
            c.trusted_proxy = Some("127.0.0.1".parse().unwrap());
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::bots_are_flagged_and_excluded_before_and_after_a_rollup(
            spawn(Backend::Sqlite).await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(curtain_services),
        ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
    )]
    async fn postgres() {
        super::bots_are_flagged_and_excluded_before_and_after_a_rollup(
            spawn(Backend::Postgres).await,
        )
        .await;
    }
}

/// The value of `curtain_unknown_code_visits_total{prefix="<prefix>"}` on `/metrics` (0 when
/// the series is not there yet).
async fn unknown_visits(app: &TestApp, prefix: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let series = format!("curtain_unknown_code_visits_total{{prefix=\"{prefix}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

backend_test! {
    async fn unknown_code_visits_are_counted_by_prefix(app) {
        // Exported from the first scrape.
        let first = app.get("/metrics").await.text().await.unwrap();
        assert!(first.contains("curtain_unknown_code_visits_total{prefix=\"other\"} 0"), "{first}");

        let known = app.create_url("https://example.com/known").await;
        let code = known["short_code"].as_str().unwrap();
        let (zq, other) = (unknown_visits(&app, "zq").await, unknown_visits(&app, "other").await);
        let own = code[..2].to_ascii_lowercase();
        let own_before = unknown_visits(&app, &own).await;
        // Every redirect route, any case of the prefix.
        for path in [
            "/r/zqnope01",
            "/r/ZQnope02",
            "/r/zQ-nope_3",
            "/urls/short/zqnope04",
            "/urls/Zqnope05/redirect",
        ] {
            assert_eq!(app.get(path).await.status(), 404, "{path}");
        }
        // Not codes: one label for all of them.
        for path in ["/r/z", "/r/zq.php", "/r/%E2%9C%93zq", "/urls/short/zqzqzqzqzqzqzqzqzq"] {
            assert_eq!(app.get(path).await.status(), 404, "{path}");
        }
        // A deactivated code answers 404 like an unknown one and is counted with them.
        let (status, _, _) = parts(app.put(&format!("/urls/{}", known["id"]), &json!({"is_active": false})).await).await;
        assert_eq!(status, 200);
        assert_eq!(app.get(&format!("/r/{code}")).await.status(), 404);

        // (A generated code may itself start with "zq".)
        assert_eq!(unknown_visits(&app, "zq").await - zq, 5 + u64::from(own == "zq"));
        assert_eq!(unknown_visits(&app, "other").await - other, 4);
        if own != "zq" {
            assert_eq!(unknown_visits(&app, &own).await - own_before, 1);
        }
        let text = app.get("/metrics").await.text().await.unwrap();
        assert!(!text.contains("nope"), "a raw code became a label");
    }
}
