//! The checked-in `openapi.json` is generated from the code: this test rewrites it and fails
//! when it drifted, so a commit never carries a stale spec.

use crate::helpers::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_in_openapi_json_matches_the_served_spec() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let resp = app.get("/openapi.json").await;
    assert_eq!(resp.status(), 200);
    let served = resp.text().await.unwrap();
    let spec: serde_json::Value = serde_json::from_str(&served).unwrap();
    let pretty = serde_json::to_string_pretty(&spec).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current != pretty {
        std::fs::write(path, &pretty).unwrap();
        panic!("openapi.json was out of date and has been regenerated: review and commit it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_documented_with_its_error_statuses() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for expected in [
        "/users",
        "/users/{id}",
        "/users/bulk",
        "/urls",
        "/urls/{id}",
        "/urls/{id}/analytics",
        "/r/{short_code}",
        "/urls/short/{short_code}",
        "/urls/{short_code}/redirect",
        "/events",
        "/events/{id}",
        "/health",
        "/metrics",
        "/",
        "/shorten-ui",
        "/debug/fail",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the spec"
        );
    }
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
        }
    }
    assert!(spec["paths"]["/urls"]["post"]["responses"]["400"].is_object());
    assert!(spec["paths"]["/users"]["post"]["responses"]["422"].is_object());
    assert!(
        spec["paths"]["/r/{short_code}"]["get"]["responses"]["302"]["headers"]["LOCATION"]
            .is_object()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_is_served_at_docs() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let resp = app.get("/docs").await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page expected");
}
