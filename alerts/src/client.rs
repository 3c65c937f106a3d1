//! The Discord webhook client: one message, one POST with `?wait=true` (without it Discord
//! answers 204 even for a message it drops; with it a 2xx means the message exists), and the
//! answer classified for the caller: sent, rate limited (with Discord's `retry_after`),
//! retryable (5xx, network) or permanent (any other 4xx: the webhook is gone or refuses us).

use std::time::Duration;

use crate::discord::Message;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("rate limited by Discord for {retry_after:?} (global: {global})")]
    RateLimited { retry_after: Duration, global: bool },
    #[error("Discord or the network failed: {0}")]
    Retryable(String),
    #[error("Discord refused the message for good ({status}): {body}")]
    Permanent { status: u16, body: String },
}

/// A reqwest client for Discord: HTTPS through rustls with the ring provider.
#[derive(Clone)]
pub struct DiscordClient {
    http: reqwest::Client,
}

pub use telemetry::install_crypto_provider;

impl DiscordClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("curtain-alerts/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }

    /// Posts `message` to `webhook`; `Ok` once Discord confirms it stored the message.
    pub async fn send(&self, webhook: &str, message: &Message) -> Result<(), SendError> {
        let separator = if webhook.contains('?') { '&' } else { '?' };
        let url = format!("{webhook}{separator}wait=true");
        let resp = self
            .http
            .post(url)
            .json(message)
            .send()
            .await
            .map_err(|e| SendError::Retryable(without_url(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let header_wait = header_seconds(resp.headers(), "retry-after")
            .or_else(|| header_seconds(resp.headers(), "x-ratelimit-reset-after"));
        let body = resp.text().await.unwrap_or_default();
        if status.as_u16() == 429 {
            let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
            let body_wait = parsed
                .as_ref()
                .and_then(|v| v.get("retry_after"))
                .and_then(serde_json::Value::as_f64);
            let global = parsed
                .as_ref()
                .and_then(|v| v.get("global"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let seconds = body_wait.or(header_wait).unwrap_or(1.0).clamp(0.0, 3600.0);
            return Err(SendError::RateLimited {
                retry_after: Duration::from_secs_f64(seconds),
                global,
            });
        }
        let body = crate::discord::cut(&body, 300);
        if status.is_server_error() || status.as_u16() == 408 {
            return Err(SendError::Retryable(format!("{status}: {body}")));
        }
        Err(SendError::Permanent {
            status: status.as_u16(),
            body,
        })
    }
}

fn header_seconds(headers: &reqwest::header::HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

/// A reqwest error without its URL: a webhook URL carries its token.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    format!("{kind} error: {detail}")
}
