//! Curtain's HTTP API: REST resources, redirects, the HTML UI, OpenAPI docs and metrics.
//!
//! `main.rs` only parses [`Config`] and calls [`run`]; tests build an [`App`] and serve it on
//! an ephemeral port with [`serve`].

pub mod alerts;
pub mod body;
pub mod click_limits;
pub mod clicks;
pub mod config;
pub mod error;
pub mod fields;
pub mod health;
pub mod html;
pub mod keys;
pub mod limits;
pub mod link_passwords;
pub mod metrics;
pub mod models;
pub mod qr;
pub mod queues;
pub mod routes;
pub mod spec;
pub mod spool;
pub mod state;
pub mod stream;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, IntoEndpoint, Server};

pub use config::Config;
pub use domain::{short_code, target_url};
pub use state::AppState;
pub use storage::cache;
pub use storage::{import, warm};
pub use telemetry::{init_tracing, install_crypto_provider, shutdown_signal};

/// A built application: state plus routes.
pub struct App {
    pub state: Arc<AppState>,
}

impl App {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        // Before any HTTPS client is built (reqwest is built without a default provider).
        install_crypto_provider();
        Ok(Self {
            state: AppState::build(config).await?,
        })
    }

    /// The whole HTTP surface with its middleware.
    #[must_use]
    pub fn endpoint(&self) -> poem::endpoint::BoxEndpoint<'static> {
        let mut metrics = self.state.metrics.clone();
        let spec = spec::refine(&routes::api_service(&self.state).spec());
        let allowed = Arc::new(spec::AllowedMethods::from_spec(&spec));
        if let Some(paths) = spec.get("paths").and_then(serde_json::Value::as_object) {
            metrics.templates =
                metrics::RouteTemplates::from_spec_paths(paths.keys().map(String::as_str));
            metrics.create_failure_series(paths);
        }
        let hot = metrics.hot_redirect();
        let metrics = Arc::new(metrics);
        let mut routes = routes::routes(&self.state, &spec).into_endpoint().boxed();
        if let Some(guard) = self.state.api_keys.clone() {
            routes = routes
                .around(move |ep, req| keys::require_key(Arc::clone(&guard), ep, req))
                .boxed();
        }
        if let Some(limits) = self.state.rate_limits.clone() {
            routes = routes
                .around(move |ep, req| limits::rate_limit(Arc::clone(&limits), ep, req))
                .boxed();
        }
        if let Some(timeout) = self.state.request_timeout {
            routes = routes
                .around(move |ep, req| limits::with_timeout(timeout, ep, req))
                .boxed();
        }
        let full = routes
            .around(move |ep, req| metrics::track(Arc::clone(&metrics), ep, req))
            .around(move |ep, req| error::catch_all(Arc::clone(&allowed), ep, req))
            .boxed();
        Front {
            state: Arc::clone(&self.state),
            in_progress: self
                .state
                .max_concurrent_requests
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
            hot,
            full,
        }
        .boxed()
    }
}

/// The outermost endpoint: redirects of codes cached in this process are answered here
/// ([`routes::redirects::hot`]), everything else by the full stack (router, metrics
/// middleware, error envelopes). Both give the same answer, headers and metrics.
struct Front {
    state: Arc<AppState>,
    /// Permits for requests in progress (`MAX_CONCURRENT_REQUESTS`).
    in_progress: Option<Arc<tokio::sync::Semaphore>>,
    hot: metrics::HotRedirectMetrics,
    full: poem::endpoint::BoxEndpoint<'static>,
}

impl poem::Endpoint for Front {
    type Output = poem::Response;

    async fn call(&self, req: poem::Request) -> poem::Result<poem::Response> {
        use poem::http::Method;
        let mut _permit = None;
        if let Some(permits) = &self.in_progress {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                let mut resp = limits::over_capacity();
                error::set_request_id(&mut resp, &error::request_id(&req));
                return Ok(resp);
            };
            _permit = Some(permit);
        }
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            let started = std::time::Instant::now();
            if let Some(mut resp) = routes::redirects::hot(&self.state, &req).await {
                error::set_request_id(&mut resp, &error::request_id(&req));
                self.hot.observe(req.method(), started);
                return Ok(resp);
            }
        }
        self.full.call(req).await
    }
}

/// Serves `app` on `acceptor` until `shutdown` resolves, then drains clicks.
pub async fn serve<A: Acceptor + 'static>(
    app: App,
    acceptor: A,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let endpoint = app.endpoint();
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(endpoint, shutdown, Some(Duration::from_secs(10)))
        .await?;
    app.state.clicks.flush().await;
    Ok(())
}

/// Runs `curtain-api` with `config` until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let app = App::build(&config).await?;
    let acceptor = TcpListener::bind(config.listen).into_acceptor().await?;
    tracing::info!(listen = %config.listen, db = %state::redact(&config.common.database_url), "curtain-api listening");
    serve(app, acceptor, shutdown).await
}
