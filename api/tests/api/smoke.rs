//! The basic life of a link: create, read, redirect, count.

use serde_json::json;

use crate::backend_test;
use crate::helpers::parts;

backend_test! {
    async fn a_created_link_redirects_and_is_counted_once(app) {
        let url = app.create_url("https://example.com/landing").await;
        let code = url["short_code"].as_str().unwrap();
        assert_eq!(code.len(), 6);

        let resp = app.get(&format!("/r/{code}")).await;
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["location"], "https://example.com/landing");
        assert_eq!(resp.headers()["x-cache"], "HIT", "the create warmed the redirect cache");
        assert!(resp.text().await.unwrap().contains("Redirecting..."));

        app.run_pending_jobs().await;
        let (status, cache, body) = parts(app.get(&format!("/urls/{}/analytics", url["id"])).await).await;
        assert_eq!(status, 200);
        assert_eq!(cache.as_deref(), Some("MISS"));
        assert_eq!(body["redirect_count"], 1);
        assert_eq!(body["event_counts"], json!({"created": 1, "redirect": 1}));

        let (_, _, events) = parts(app.get(&format!("/events?url_id={}&event_type=redirect", url["id"])).await).await;
        assert_eq!(events.as_array().unwrap().len(), 1);
        assert_eq!(events[0]["details"], json!({"short_code": code}));
        assert_eq!(events[0]["user_id"], serde_json::Value::Null);
    }
}
