//! The durable click spool: where a batch goes when the click queue cannot take it. Each batch
//! is one file, written to a temporary name, fsync'd and renamed, so a crash leaves either a
//! whole batch or nothing. A background task pushes spooled batches to the queue once it
//! answers again and deletes each file only after its push succeeded; batches keep their id,
//! so a batch delivered twice is still counted once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jobs::{ClickBatch, ClickQueue};
use tokio::io::AsyncWriteExt;

pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Stores an encoded batch durably.
    pub async fn store(&self, batch_id: &str, payload: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{batch_id}.tmp"));
        let path = self.dir.join(format!("{batch_id}.json"));
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(payload).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    /// Spooled batch files, oldest first.
    pub async fn pending(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        let mut files = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let modified = entry.metadata().await?.modified()?;
                files.push((modified, path));
            }
        }
        files.sort();
        Ok(files.into_iter().map(|(_, p)| p).collect())
    }

    /// Pushes every spooled batch; returns how many were delivered.
    pub async fn drain(&self, queue: &ClickQueue) -> usize {
        let Ok(files) = self.pending().await else {
            return 0;
        };
        let mut delivered = 0;
        for path in files {
            let Ok(payload) = tokio::fs::read(&path).await else {
                continue;
            };
            if serde_json::from_slice::<ClickBatch>(&payload).is_err() {
                tracing::error!(file = %path.display(), "unreadable spool file kept aside");
                let _ = tokio::fs::rename(&path, path.with_extension("bad")).await;
                continue;
            }
            if queue.push_encoded(&payload).await.is_err() {
                break;
            }
            let _ = tokio::fs::remove_file(&path).await;
            delivered += 1;
        }
        delivered
    }

    /// Runs [`Spool::drain`] every second for as long as the process lives.
    pub fn spawn_drainer(self: &Arc<Self>, queue: Arc<ClickQueue>) {
        let spool = self.clone();
        tokio::spawn(async move {
            loop {
                let n = spool.drain(&queue).await;
                if n > 0 {
                    tracing::info!(batches = n, "spooled click batches delivered");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
