//! Real services for the pipeline tests: a PostgreSQL database per test, a Redis namespace
//! (queue name and key prefix) per test, extra `redis-server` processes for counter shards,
//! the api served in-process on an ephemeral port, and the worker in-process or as a process.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::sync::oneshot;

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set for the pipeline tests"))
}

/// A PostgreSQL database created for one test and dropped after it.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        // reqwest is built with TLS but no default crypto provider: install it before any
        // client of a test is built.
        telemetry::install_crypto_provider();
        let admin = env("CURTAIN_TEST_DATABASE_URL");
        let name = format!("curtain_wtest_{}", uuid::Uuid::new_v4().simple());
        let conn = Database::connect(&admin).await.unwrap();
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        conn.close().await.ok();
        let base = admin.rsplit_once('/').unwrap().0;
        let url = format!("{base}/{name}");
        // Schema now, so tests can insert before any process starts.
        storage::db::connect_db(&url, 2)
            .await
            .unwrap()
            .close()
            .await
            .ok();
        Self { url, name }
    }

    /// The same database reached through a proxy on `port` (for outage tests); not dropped.
    pub fn proxied(db: &TestDb, port: u16) -> ProxiedDb {
        let (scheme_user, rest) = db.url.split_once('@').unwrap();
        let path = rest.split_once('/').map_or("", |(_, p)| p);
        ProxiedDb {
            url: format!("{scheme_user}@127.0.0.1:{port}/{path}"),
        }
    }

    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(conn) = Database::connect(&env("CURTAIN_TEST_DATABASE_URL")).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A database URL that is not owned (nothing to drop).
pub struct ProxiedDb {
    pub url: String,
}

/// Anything with a database URL.
pub trait HasUrl {
    fn db_url(&self) -> &str;
}

impl HasUrl for TestDb {
    fn db_url(&self) -> &str {
        &self.url
    }
}

impl HasUrl for ProxiedDb {
    fn db_url(&self) -> &str {
        &self.url
    }
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throw-away `redis-server` (no persistence) on its own port; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        telemetry::install_crypto_provider();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers, the way a
    /// hung or blackholed host looks; its data stays.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT), its data intact.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success(), "kill {sig} {pid}");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Names of one test's queue and keys.
pub struct Namespace {
    pub prefix: String,
    pub queue: String,
    pub alert_queue: String,
}

impl Namespace {
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            prefix: format!("wtest-{id}"),
            queue: format!("wtest-{id}:clicks"),
            alert_queue: format!("wtest-{id}:alerts"),
        }
    }
}

pub fn worker_config(
    db: &impl HasUrl,
    redis_url: &str,
    shards: &[String],
    ns: &Namespace,
) -> worker::Config {
    use clap::Parser;
    let mut config = worker::Config::parse_from(["curtain-worker", "--redis-url", redis_url]);
    config.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    db.db_url().clone_into(&mut config.common.database_url);
    config.common.database_max_connections = 8;
    config.common.redis_shards = shards.to_vec();
    config.common.cache_redis_url = Some(redis_url.to_owned());
    config.common.cache_prefix.clone_from(&ns.prefix);
    config.common.click_queue.clone_from(&ns.queue);
    config.common.alert_queue.clone_from(&ns.alert_queue);
    config.common.warm_queue = format!("{}:warm", ns.prefix);
    config.common.counters_queue = format!("{}:counters", ns.prefix);
    config.common.health_queue = format!("{}:health", ns.prefix);
    config.common.webhook_queue = format!("{}:webhooks", ns.prefix);
    config.click_concurrency = 4;
    config.common.instance = Some("test-worker".into());
    config
}

/// The worker running in this process until the returned sender fires.
pub fn spawn_worker(
    config: worker::Config,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker::run(config, async move {
        let _ = rx.await;
    }));
    (tx, handle)
}

/// `curtain-worker` as a separate process (for SIGKILL tests).
pub fn worker_process(config: &worker::Config) -> Child {
    Command::new(env!("CARGO_BIN_EXE_curtain-worker"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CURTAIN_LISTEN", config.listen.to_string())
        .env("DATABASE_URL", &config.common.database_url)
        .env("REDIS_URL", &config.redis_url)
        .env("REDIS_SHARDS", config.common.redis_shards.join(","))
        .env(
            "CACHE_REDIS_URL",
            config.common.cache_redis_url.clone().unwrap_or_default(),
        )
        .env("CACHE_PREFIX", &config.common.cache_prefix)
        .env("CLICK_QUEUE", &config.common.click_queue)
        .env(
            "CLICK_WORKER_CONCURRENCY",
            config.click_concurrency.to_string(),
        )
        .env("ALERT_QUEUE", &config.common.alert_queue)
        .env(
            "DISCORD_WEBHOOK_URL",
            config.common.discord_webhook_urls.join(","),
        )
        .env("WARM_QUEUE", &config.common.warm_queue)
        .env("COUNTERS_QUEUE", &config.common.counters_queue)
        .env("HEALTH_QUEUE", &config.common.health_queue)
        .env("WEBHOOK_QUEUE", &config.common.webhook_queue)
        .env(
            "WORKER_MAX_RESTARTS",
            config.max_restarts_per_minute.to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The bearer token the test api expects from Alertmanager.
pub const ALERT_TOKEN: &str = "test-alertmanager-token";

/// The api served in this process; `redis_url` set means clicks go to the queue.
pub struct ApiServer {
    pub address: String,
    _shutdown: oneshot::Sender<()>,
}

pub async fn spawn_api(
    db: &impl HasUrl,
    redis_url: &str,
    shards: &[String],
    ns: &Namespace,
    spool: &std::path::Path,
) -> ApiServer {
    spawn_api_with_cache(db, redis_url, redis_url, shards, ns, spool).await
}

/// The api with its queue on `redis_url` and its cache on `cache_url`.
pub async fn spawn_api_with_cache(
    db: &impl HasUrl,
    redis_url: &str,
    cache_url: &str,
    shards: &[String],
    ns: &Namespace,
    spool: &std::path::Path,
) -> ApiServer {
    use clap::Parser;
    let mut config = api::Config::parse_from(["curtain-api"]);
    db.db_url().clone_into(&mut config.common.database_url);
    config.common.database_max_connections = 8;
    config.redis_url = Some(redis_url.to_owned());
    config.common.redis_shards = shards.to_vec();
    config.common.cache_redis_url = Some(cache_url.to_owned());
    config.common.cache_prefix.clone_from(&ns.prefix);
    config.common.click_queue.clone_from(&ns.queue);
    config.common.alert_queue.clone_from(&ns.alert_queue);
    config.alertmanager_webhook_token = Some(ALERT_TOKEN.to_owned());
    config.common.warm_queue = format!("{}:warm", ns.prefix);
    config.common.counters_queue = format!("{}:counters", ns.prefix);
    config.common.health_queue = format!("{}:health", ns.prefix);
    config.common.webhook_queue = format!("{}:webhooks", ns.prefix);
    config.click_spool_dir = spool.to_owned();
    serve_api(&config).await
}

/// The api served in this process with `config`.
pub async fn serve_api(config: &api::Config) -> ApiServer {
    let app = api::App::build(config).await.unwrap();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let address = format!(
        "http://{}",
        acceptor.local_addr()[0].as_socket_addr().unwrap()
    );
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(api::serve(app, acceptor, async move {
        let _ = rx.await;
    }));
    ApiServer {
        address,
        _shutdown: tx,
    }
}

/// Polls `check` until it holds or `timeout` passes (never a fixed sleep).
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Inserts `n` links directly and returns (id, code) pairs.
pub async fn seed_links(db: &DatabaseConnection, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let code = format!("t{i:05}");
        let stmt = format!(
            "INSERT INTO urls (short_code, original_url, original_url_hash, is_active, created_at, updated_at) \
             VALUES ('{code}', 'https://example.com/{i}', {i}, true, NOW(), NOW()) RETURNING id"
        );
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                stmt,
            ))
            .await
            .unwrap()
            .unwrap();
        out.push((row.try_get_by_index::<i64>(0).unwrap(), code));
    }
    out
}

pub fn click(url_id: i64, code: &str, visitor: &str) -> jobs::Click {
    jobs::Click {
        click_id: uuid::Uuid::new_v4().to_string(),
        url_id,
        short_code: code.to_owned(),
        at: chrono::Utc::now().naive_utc(),
        visitor_hash: visitor.to_owned(),
        user_agent: None,
        referrer: None,
        head: false,
    }
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// An HTTP client that does not follow redirects (a 302 is the answer under test).
pub fn http_client() -> reqwest::Client {
    telemetry::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Creates a link through the api and returns (id, short code).
pub async fn create_link(client: &reqwest::Client, api: &ApiServer, target: &str) -> (i64, String) {
    let created: serde_json::Value = client
        .post(format!("{}/urls", api.address))
        .json(&serde_json::json!({ "original_url": target }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        created["id"].as_i64().unwrap(),
        created["short_code"].as_str().unwrap().to_owned(),
    )
}

/// GET `url` and parse the JSON answer.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The value of a metric with one series on a `/metrics` page (0 when absent).
pub async fn metric(url: &str, name: &str) -> f64 {
    metric_where(url, name, "").await
}

/// The value of the series of `name` whose labels contain `labels` (e.g. `queue="q"`; empty:
/// the first series), 0 when absent.
pub async fn metric_where(url: &str, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => {
                    let (set, value) = labelled.split_once("} ")?;
                    set.contains(labels).then_some(value)?
                }
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse().ok()
        })
        .unwrap_or(0.0)
}
