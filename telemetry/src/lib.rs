//! What every Curtain process starts with: its tracing subscriber, the signal that stops it and
//! the TLS crypto provider of its HTTPS clients. Shared by curtain-api, curtain-worker and
//! curtain-ops, so none of them depends on another's crate for it.

use std::sync::Once;

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Starts tracing for a service (api, worker): to stdout, `text` or `json`.
pub fn init_tracing(format: &str) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter());
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Starts tracing for a command-line tool: to stderr, so stdout carries only its output (a key
/// printed once, a report a script reads).
pub fn init_cli_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

static CRYPTO: Once = Once::new();

/// Installs rustls' ring provider as the process default, once (reqwest is built without a
/// default provider). Call it before building any HTTPS client.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Err means another part of the process installed one first: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
