//! A Discord stand-in: a real HTTP server on loopback that records every webhook request and
//! answers as told (for the tests and for drills). Unscripted requests get what Discord gives
//! a `?wait=true` send: 200 with the stored message. A message over Discord's limits gets
//! Discord's 400, so a test cannot pass with an oversized message.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Path};
use poem::{EndpointExt, Request, Response, Route, Server, handler, post};
use serde_json::{Value, json};

use crate::discord::{
    CONTENT_MAX, DESCRIPTION_MAX, EMBEDS_MAX, FIELD_NAME_MAX, FIELD_VALUE_MAX, FIELDS_MAX,
    MESSAGE_TOTAL_MAX, TITLE_MAX,
};

/// How the stand-in answers the next request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply {
    /// 200 with the message (what `?wait=true` gives).
    Ok,
    /// 204 without body (what Discord gives without `?wait=true`).
    NoContent,
    /// 429 with `{"retry_after": s, "global": false}` and `Retry-After`.
    RateLimited(f64),
    /// 429 with only a `Retry-After: s` header (no JSON body).
    RateLimitedHeader(u64),
    /// 500.
    ServerError,
    /// 404 `Unknown Webhook`.
    NotFound,
    /// Never answers (the sender's connection stays open).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The webhook's path segment (`/api/webhooks/<name>`).
    pub webhook: String,
    pub query: String,
    pub body: Value,
    pub at: Instant,
    /// The status answered, `None` while hanging.
    pub status: Option<u16>,
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
}

pub struct StandIn {
    pub base: String,
    shared: Arc<Mutex<Shared>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a message breaks of Discord's limits, if anything.
#[must_use]
pub fn violation(body: &Value) -> Option<String> {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let content = len(&body["content"]);
    if content > CONTENT_MAX {
        return Some(format!("content {content} > {CONTENT_MAX}"));
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > EMBEDS_MAX {
        return Some(format!("{} embeds", embeds.len()));
    }
    let mut total = content;
    for e in &embeds {
        let (title, description) = (len(&e["title"]), len(&e["description"]));
        if title > TITLE_MAX || description > DESCRIPTION_MAX {
            return Some(format!("title {title} / description {description}"));
        }
        total += title + description;
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > FIELDS_MAX {
            return Some(format!("{} fields", fields.len()));
        }
        for f in &fields {
            let (name, value) = (len(&f["name"]), len(&f["value"]));
            if name == 0 || value == 0 || name > FIELD_NAME_MAX || value > FIELD_VALUE_MAX {
                return Some(format!("field name {name} / value {value}"));
            }
            total += name + value;
        }
    }
    (total > MESSAGE_TOTAL_MAX).then(|| format!("message total {total} > {MESSAGE_TOTAL_MAX}"))
}

#[handler]
async fn webhook(
    req: &Request,
    Path(name): Path<String>,
    body: poem::Body,
    shared: Data<&Arc<Mutex<Shared>>>,
) -> Response {
    let body: Value =
        serde_json::from_slice(&body.into_vec().await.unwrap_or_default()).unwrap_or(Value::Null);
    let (reply, index) = {
        let mut s = lock(&shared);
        let reply = s.script.pop_front().unwrap_or(Reply::Ok);
        let reply = match violation(&body) {
            Some(_) if matches!(reply, Reply::Ok | Reply::NoContent) => None,
            _ => Some(reply),
        };
        s.requests.push(Recorded {
            webhook: name,
            query: req.uri().query().unwrap_or_default().to_owned(),
            body: body.clone(),
            at: Instant::now(),
            status: None,
        });
        (reply, s.requests.len() - 1)
    };
    let resp = match reply {
        None => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(json!({"message": "Invalid Form Body", "code": 50035, "limits": violation(&body)}).to_string()),
        Some(Reply::Hang) => std::future::pending().await,
        Some(Reply::Ok) => Response::builder()
            .content_type("application/json")
            .body(json!({"id": index.to_string(), "content": body["content"]}).to_string()),
        Some(Reply::NoContent) => Response::builder().status(StatusCode::NO_CONTENT).finish(),
        Some(Reply::RateLimited(seconds)) => Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("Retry-After", seconds.ceil().to_string())
            .content_type("application/json")
            .body(json!({"message": "You are being rate limited.", "retry_after": seconds, "global": false}).to_string()),
        Some(Reply::RateLimitedHeader(seconds)) => Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("Retry-After", seconds.to_string())
            .finish(),
        Some(Reply::ServerError) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body("upstream failure"),
        Some(Reply::NotFound) => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("application/json")
            .body(json!({"message": "Unknown Webhook", "code": 10015}).to_string()),
    };
    lock(&shared).requests[index].status = Some(resp.status().as_u16());
    resp
}

impl StandIn {
    /// Starts on an ephemeral loopback port; stops when dropped.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .ok_or_else(|| std::io::Error::other("no socket address"))?;
        let app = Route::new()
            .at("/api/webhooks/:name", post(webhook))
            .data(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = rx.await;
                    },
                    Some(std::time::Duration::from_millis(100)),
                )
                .await;
        });
        Ok(Self {
            base: format!("http://{addr}"),
            shared,
            _stop: tx,
        })
    }

    /// The URL of webhook `name` (any name is accepted).
    #[must_use]
    pub fn webhook(&self, name: &str) -> String {
        format!("{}/api/webhooks/{name}", self.base)
    }

    /// Queues answers for the next requests (then [`Reply::Ok`] again).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared).script.extend(replies);
    }

    /// Every request so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared).requests.clone()
    }

    /// The bodies of the messages answered 200 (stored, as far as the sender knows).
    #[must_use]
    pub fn delivered(&self) -> Vec<Value> {
        lock(&self.shared)
            .requests
            .iter()
            .filter(|r| r.status == Some(200))
            .map(|r| r.body.clone())
            .collect()
    }
}
