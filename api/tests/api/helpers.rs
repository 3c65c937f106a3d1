//! `TestApp`: the real api, in-process, on an ephemeral port, with its own database (a SQLite
//! file, or a PostgreSQL database created and dropped per test) and its own Redis namespace.

use std::sync::Arc;

use api::{App, AppState, Config};
use clap::Parser;
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::{Client, Method, Response};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use tokio::sync::oneshot;

pub const SERVICES_REASON: &str = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process cache (the embedded default).
    Sqlite,
    /// PostgreSQL database + Redis cache namespace.
    Postgres,
}

/// Declares a test that runs on every backend: `<name>::sqlite` always, `<name>::postgres`
/// with the real services (ignored, with the reason, without them).
#[macro_export]
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::helpers::{Backend, TestApp};

            async fn body($app: TestApp) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body(TestApp::spawn(Backend::Sqlite).await).await;
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(curtain_services), ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set")]
            async fn postgres() {
                body(TestApp::spawn(Backend::Postgres).await).await;
            }
        }
    };
}

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} must be set to run this test ({SERVICES_REASON})"))
}

/// Owns the per-test storage and removes it on drop.
pub struct Storage {
    pub database_url: String,
    pub redis_url: Option<String>,
    pub cache_prefix: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Storage {
    pub async fn new(backend: Backend) -> Arc<Self> {
        // reqwest is built with TLS but no default crypto provider: install it before any
        // client of a test is built.
        api::install_crypto_provider();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let cache_prefix = format!("curtain-test-{id}");
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let database_url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("curtain.db").display()
                );
                Arc::new(Self {
                    database_url,
                    redis_url: None,
                    cache_prefix,
                    pg_name: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = env("CURTAIN_TEST_DATABASE_URL");
                let name = format!("curtain_test_{id}");
                let conn = Database::connect(&admin)
                    .await
                    .expect("connect to CURTAIN_TEST_DATABASE_URL");
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(b, _)| b)
                    .to_owned();
                Arc::new(Self {
                    database_url: format!("{base}/{name}"),
                    redis_url: Some(env("CURTAIN_TEST_REDIS_URL")),
                    cache_prefix,
                    pg_name: Some(name),
                    _dir: None,
                })
            }
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let pg = self.pg_name.take();
        let redis = self.redis_url.clone();
        let prefix = self.cache_prefix.clone();
        // Async clean-up from a destructor: a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Some(name) = pg
                    && let Ok(conn) = Database::connect(&env("CURTAIN_TEST_DATABASE_URL")).await
                {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
                if let Some(url) = redis
                    && let Ok(client) = redis::Client::open(url)
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let mut cursor: u64 = 0;
                    loop {
                        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(format!("{prefix}:*"))
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut conn)
                            .await
                            .unwrap_or((0, Vec::new()));
                        if !keys.is_empty() {
                            let _: Result<i64, _> =
                                redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                        }
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
            });
        })
        .join();
    }
}

/// An HTTP client that shows redirects instead of following them.
pub fn http_client() -> Client {
    api::install_crypto_provider();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub state: Arc<AppState>,
    pub backend: Backend,
    pub storage: Arc<Storage>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// The configuration a test app gets: every default, then the test's storage.
pub fn test_config(storage: &Storage) -> Config {
    let mut config = Config::parse_from(["curtain-api"]);
    config.common.database_url.clone_from(&storage.database_url);
    config.common.database_max_connections = 5;
    config.common.cache_redis_url.clone_from(&storage.redis_url);
    config.common.cache_prefix.clone_from(&storage.cache_prefix);
    // Queues are per test too (the api uses them only with `REDIS_URL`).
    config.common.health_queue = format!("{}:health", storage.cache_prefix);
    // Per-test queue names, for tests that turn the Redis queue on.
    config.common.webhook_queue = format!("{}:webhooks", storage.cache_prefix);
    config.public_base_url = None;
    config.enable_incident_debug_routes = false;
    config.common.instance = Some("test".into());
    // Tests roll analytics up when they mean to (`storage::rollup::run_once`).
    config.common.rollup_every_seconds = 0;
    // The limits tests turn them on.
    config.rate_limit_writes_per_minute = 0;
    config.rate_limit_bulk_per_minute = 0;
    config
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let storage = Storage::new(backend).await;
        Self::spawn_on(backend, storage, tweak).await
    }

    /// A second api process sharing this one's database and Redis namespace.
    pub async fn spawn_sibling(&self) -> Self {
        Self::spawn_on(self.backend, self.storage.clone(), |_| {}).await
    }

    /// An api process on existing storage (a restart, or one more replica), configured by
    /// `tweak` after the test defaults.
    pub async fn spawn_on(
        backend: Backend,
        storage: Arc<Storage>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = test_config(&storage);
        tweak(&mut config);
        let app = App::build(&config).await.expect("build app");
        let state = app.state.clone();
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let address = format!(
            "http://{}",
            acceptor.local_addr()[0]
                .as_socket_addr()
                .expect("tcp address")
        );
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            api::serve(app, acceptor, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        Self {
            address,
            client: http_client(),
            state,
            backend,
            storage,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path, None).await
    }

    /// Sends a raw body with a content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Waits until every click recorded so far is written (never sleep for background work).
    pub async fn run_pending_jobs(&self) {
        self.state.clicks.flush().await;
    }

    /// Creates a user and returns its JSON.
    pub async fn create_user(&self, username: &str, email: &str) -> Value {
        let resp = self
            .post(
                "/users",
                &serde_json::json!({ "username": username, "email": email }),
            )
            .await;
        assert_eq!(resp.status(), 201, "creating user {username}");
        resp.json().await.expect("json")
    }

    /// Creates a link and returns its JSON.
    pub async fn create_url(&self, original_url: &str) -> Value {
        let resp = self
            .post(
                "/urls",
                &serde_json::json!({ "original_url": original_url }),
            )
            .await;
        assert_eq!(resp.status(), 201, "creating url {original_url}");
        resp.json().await.expect("json")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads a response as (status, X-Cache, JSON body).
pub async fn parts(resp: Response) -> (u16, Option<String>, Value) {
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, cache, body)
}
