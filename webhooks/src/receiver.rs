//! A webhook receiver for tests and drills: a real HTTP server on loopback that records every
//! delivery (headers and raw body) and answers 500 on command: for the next `n` requests
//! ([`Receiver::fail_next`]) or until told otherwise ([`Receiver::set_failing`]); 200 else.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, Server, handler, post};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub event: String,
    /// `X-Curtain-Delivery`.
    pub delivery: String,
    /// `X-Curtain-Timestamp`.
    pub timestamp: String,
    /// `X-Curtain-Signature`.
    pub signature: String,
    /// The raw body (what the signature covers).
    pub body: String,
    /// The status answered.
    pub status: u16,
}

impl Received {
    /// The body as JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    fail_next: AtomicU32,
    failing: AtomicBool,
    requests: Mutex<Vec<Received>>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Vec<Received>> {
    shared
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct Receiver {
    /// The URL to subscribe (`http://127.0.0.1:<port>/hook`).
    pub url: String,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[handler]
async fn hook(req: &Request, body: poem::Body, shared: Data<&Arc<Shared>>) -> Response {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let body = body.into_string().await.unwrap_or_default();
    let fail = shared.failing.load(Ordering::SeqCst)
        || shared
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    lock(&shared).push(Received {
        event: header("x-curtain-event"),
        delivery: header("x-curtain-delivery"),
        timestamp: header("x-curtain-timestamp"),
        signature: header("x-curtain-signature"),
        body,
        status: status.as_u16(),
    });
    Response::builder()
        .status(status)
        .body(if fail { "failing on command" } else { "ok" })
}

impl Receiver {
    /// Starts on an ephemeral loopback port; stops when dropped.
    pub async fn start() -> std::io::Result<Self> {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .ok_or_else(|| std::io::Error::other("no tcp address"))?;
        let shared = Arc::new(Shared::default());
        let app = Route::new().at("/hook", post(hook)).data(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = stopped.await;
                    },
                    None,
                )
                .await;
        });
        Ok(Self {
            url: format!("http://{addr}/hook"),
            shared,
            _stop: stop,
        })
    }

    /// Answers 500 to the next `n` requests.
    pub fn fail_next(&self, n: u32) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Answers 500 to every request while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// Every request so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<Received> {
        lock(&self.shared).clone()
    }

    /// The requests answered 2xx.
    #[must_use]
    pub fn delivered(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}
