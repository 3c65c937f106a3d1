//! A link destination for health-check tests and drills (as `alerts::stand_in` is for
//! Discord): a real HTTP server on loopback that answers 200, 500 or closes the connection
//! without an answer, as told, and counts the requests per path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the destination answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Answer {
    /// 200.
    Ok = 0,
    /// 500.
    Error = 1,
    /// The connection closed without an answer.
    Close = 2,
}

pub struct Destination {
    base: String,
    port: u16,
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const ERROR: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

impl Destination {
    /// Starts on an ephemeral loopback port, answering 200; runs for the life of the runtime.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let mode = Arc::new(AtomicU8::new(Answer::Ok as u8));
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (m, s) = (mode.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (mode, seen) = (m.clone(), s.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head);
                    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    *seen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(path)
                        .or_default() += 1;
                    let answer = match mode.load(Ordering::SeqCst) {
                        0 => OK,
                        1 => ERROR,
                        _ => return,
                    };
                    let _ = socket.write_all(answer).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Ok(Self {
            base,
            port: addr.port(),
            mode,
            seen,
        })
    }

    /// The URL of `path` (`/...`) on this destination.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The loopback port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers every request from now on like this.
    pub fn answer(&self, answer: Answer) {
        self.mode.store(answer as u8, Ordering::SeqCst);
    }

    /// The requests received for `path`.
    #[must_use]
    pub fn requests(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}
