//! Optional API keys (issue 8, item 8): off by default (no key needed, keys sent are ignored);
//! with `CURTAIN_REQUIRE_API_KEY=true` writes need `links:write`, `/metrics` and `/debug/*`
//! need `admin`, with 401 (no, unknown or revoked key) and 403 (scope missing) in the
//! contract's envelope; revoking a key stops it at once; only a hash is stored.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use storage::api_keys::{self, Scope};

use crate::backend_test;
use crate::helpers::TestApp;

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn link(n: u32) -> Value {
    json!({"original_url": format!("https://example.com/keys/{n}")})
}

backend_test! {
    async fn without_the_setting_no_key_is_needed_and_keys_sent_are_ignored(app) {
        let (status, _) = send(&app, Method::POST, "/urls", None, Some(link(1))).await;
        assert_eq!(status, 201);
        let (status, _) = send(&app, Method::POST, "/urls", Some("ck_nonsense"), Some(link(2))).await;
        assert_eq!(status, 201);
        let (status, _) = send(&app, Method::GET, "/metrics", None, None).await;
        assert_eq!(status, 200);
    }
}

backend_test! {
    async fn required_keys_guard_writes_metrics_and_debug_by_scope(app) {
        let app = TestApp::spawn_on(app.backend, app.storage.clone(), |c| {
            c.common.require_api_key = true;
            c.enable_incident_debug_routes = true;
        })
        .await;
        let writer = api_keys::create(&app.state.db, Some("ci writer"), &[Scope::LinksWrite]).await.unwrap();
        let admin = api_keys::create(&app.state.db, None, &[Scope::Admin]).await.unwrap();
        let reader = api_keys::create(&app.state.db, None, &[Scope::AnalyticsRead]).await.unwrap();

        // No key: 401 with the way to send one; nothing was created.
        let (status, body) = send(&app, Method::POST, "/urls", None, Some(link(1))).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"error": "API key required (scope links:write): send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"}));
        let resp = app.client.post(app.url("/urls")).json(&link(1)).send().await.unwrap();
        assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"curtain\"");
        // A made-up key of the right shape, and a real key with one character changed.
        let mut forged = writer.token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        for bad in [forged.as_str(), "ck_0123456789ab_0000000000000000000000000000000000000000000000000000000000000000"] {
            let (status, body) = send(&app, Method::POST, "/urls", Some(bad), Some(link(1))).await;
            assert_eq!((status, body), (401, json!({"error": "Invalid or revoked API key"})));
        }
        // The wrong scope: 403.
        let (status, body) = send(&app, Method::POST, "/urls", Some(&reader.token), Some(link(1))).await;
        assert_eq!((status, body), (403, json!({"error": "This API key lacks the links:write scope"})));
        let (_, urls) = send(&app, Method::GET, "/urls", None, None).await;
        assert_eq!(urls, json!([]), "no refused write created anything");

        // links:write creates, updates and deletes, by either header.
        let (status, created) = send(&app, Method::POST, "/urls", Some(&writer.token), Some(link(1))).await;
        assert_eq!(status, 201);
        let id = created["id"].as_i64().unwrap();
        let resp = app.client.put(app.url(&format!("/urls/{id}")))
            .bearer_auth(&writer.token)
            .json(&json!({"title": "updated"}))
            .send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let resp = app.client.delete(app.url(&format!("/urls/{id}"))).bearer_auth(&writer.token).send().await.unwrap();
        assert_eq!(resp.status(), 204);
        let (_, created) = send(&app, Method::POST, "/urls", Some(&writer.token), Some(link(4))).await;
        let id = created["id"].as_i64().unwrap();
        // Reads and redirects stay open.
        let (status, _) = send(&app, Method::GET, &format!("/urls/{id}"), None, None).await;
        assert_eq!(status, 200);
        let (status, _) = send(&app, Method::GET, &format!("/urls/{id}/analytics"), None, None).await;
        assert_eq!(status, 200);
        let code = created["short_code"].as_str().unwrap();
        let resp = app.client.get(app.url(&format!("/r/{code}"))).send().await.unwrap();
        assert_eq!(resp.status(), 302);

        // /metrics and /debug/*: admin only.
        for path in ["/metrics", "/debug/fail"] {
            let (status, _) = send(&app, Method::GET, path, None, None).await;
            assert_eq!(status, 401, "{path}");
            let (status, _) = send(&app, Method::GET, path, Some(&writer.token), None).await;
            assert_eq!(status, 403, "{path}");
        }
        let (status, metrics) = send(&app, Method::GET, "/metrics", Some(&admin.token), None).await;
        assert_eq!(status, 200);
        // The four refused creates above (no key twice, two bad keys) were counted as 401s.
        let refused = metrics.as_str().unwrap().lines()
            .find(|l| l.starts_with("http_requests_total{") && l.contains(r#"method="POST",path="/urls",status_code="401""#))
            .expect("a series of the refused creates")
            .to_owned();
        assert!(refused.ends_with(" 4"), "{refused}");
        let (status, _) = send(&app, Method::GET, "/debug/fail", Some(&admin.token), None).await;
        assert_eq!(status, 500, "admin reaches the drill");
        // admin grants every scope.
        let (status, _) = send(&app, Method::POST, "/urls", Some(&admin.token), Some(link(2))).await;
        assert_eq!(status, 201);

        // Revoked: 401 at once.
        assert!(api_keys::revoke(&app.state.db, &writer.info.id).await.unwrap());
        assert!(!api_keys::revoke(&app.state.db, &writer.info.id).await.unwrap());
        let (status, _) = send(&app, Method::POST, "/urls", Some(&writer.token), Some(link(3))).await;
        assert_eq!(status, 401);
        let listed = api_keys::list(&app.state.db).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().find(|k| k.id == writer.info.id).unwrap().revoked_at.is_some());
    }
}

backend_test! {
    async fn analytics_need_analytics_read_only_when_asked(app) {
        let app = TestApp::spawn_on(app.backend, app.storage.clone(), |c| {
            c.common.require_api_key = true;
            c.require_api_key_for_analytics = true;
        })
        .await;
        let writer = api_keys::create(&app.state.db, None, &[Scope::LinksWrite]).await.unwrap();
        let reader = api_keys::create(&app.state.db, None, &[Scope::AnalyticsRead]).await.unwrap();
        let (_, created) = send(&app, Method::POST, "/urls", Some(&writer.token), Some(link(1))).await;
        let id = created["id"].as_i64().unwrap();
        for path in [format!("/urls/{id}/analytics"), format!("/urls/{id}/analytics/realtime")] {
            assert_eq!(send(&app, Method::GET, &path, None, None).await.0, 401, "{path}");
            assert_eq!(send(&app, Method::GET, &path, Some(&writer.token), None).await.0, 403, "{path}");
            assert_eq!(send(&app, Method::GET, &path, Some(&reader.token), None).await.0, 200, "{path}");
        }
        assert_eq!(send(&app, Method::GET, &format!("/urls/{id}"), None, None).await.0, 200);
    }
}

backend_test! {
    async fn only_a_hash_of_the_key_is_stored(app) {
        use sea_orm::{ConnectionTrait, Statement};
        let key = api_keys::create(&app.state.db, Some("n"), &[Scope::Admin]).await.unwrap();
        let backend = app.state.db.get_database_backend();
        let row = app.state.db
            .query_one_raw(Statement::from_string(backend, "SELECT id, scopes, secret_hash FROM api_keys"))
            .await.unwrap().unwrap();
        let id: String = row.try_get("", "id").unwrap();
        let hash: String = row.try_get("", "secret_hash").unwrap();
        let scopes: String = row.try_get("", "scopes").unwrap();
        assert_eq!(id, key.info.id);
        assert_eq!(scopes, "admin");
        // Exactly the SHA-256 of the key: no secret part is kept in the clear.
        let expected = hex::encode(Sha256::digest(key.token.as_bytes()));
        assert_eq!(hash, expected);
        let secret = key.token.rsplit('_').next().unwrap();
        assert!(!hash.contains(secret));
        assert!(api_keys::verify(&app.state.db, &key.token).await.unwrap().is_some());
    }
}
