//! The durable click spool: where a batch goes when the click queue cannot take it (refused,
//! or silent for [`PUSH_TIMEOUT`]). Each batch is one file, written to a temporary name,
//! fsync'd, renamed, and the folder fsync'd, so once [`Spool::store`] returns the batch
//! survives a crash or power loss, and a crash before leaves either a whole batch or nothing.
//! A background task pushes spooled batches to the queue once it answers again and deletes
//! each file only after its push succeeded; batches keep their id, so a batch delivered twice
//! is still counted once.
//!
//! The spool also remembers whether the queue is down ([`Spool::queue_down`]): the batcher
//! then spools at once instead of waiting for every push to time out, and the drainer clears
//! it when a push succeeds again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jobs::{ClickBatch, ClickQueue, QueueError};
use tokio::io::AsyncWriteExt;

/// The longest one push to the queue may take before its batch is spooled instead. The Redis
/// client's own response timeout does not bound a push that waits for a reconnection to a
/// server that accepts connections but never answers.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("no answer from the queue within {PUSH_TIMEOUT:?}")]
    Timeout,
}

/// Pushes an encoded batch, giving up after [`PUSH_TIMEOUT`].
pub async fn push_within(queue: &ClickQueue, payload: &[u8]) -> Result<(), PushError> {
    tokio::time::timeout(PUSH_TIMEOUT, queue.push_encoded(payload))
        .await
        .map_err(|_| PushError::Timeout)?
        .map_err(PushError::from)
}

pub struct Spool {
    dir: PathBuf,
    queue_down: AtomicBool,
}

impl Spool {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            queue_down: AtomicBool::new(false),
        })
    }

    /// Whether the last push failed and no push has succeeded since.
    pub fn queue_down(&self) -> bool {
        self.queue_down.load(Ordering::Relaxed)
    }

    pub fn mark_queue_down(&self) {
        self.queue_down.store(true, Ordering::Relaxed);
    }

    /// Stores an encoded batch durably: when this returns `Ok`, the file and its name are on
    /// disk.
    pub async fn store(&self, batch_id: &str, payload: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{batch_id}.tmp"));
        let path = self.dir.join(format!("{batch_id}.json"));
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(payload).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await?;
        // The rename lives in the folder: without this fsync a power loss can undo it.
        tokio::fs::File::open(&self.dir).await?.sync_all().await?;
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
        self.drain_into(|payload| async move { push_within(queue, &payload).await.is_ok() })
            .await
    }

    /// [`Spool::drain`] through `push`, which answers whether the batch is now in the queue.
    async fn drain_into<F, Fut>(&self, mut push: F) -> usize
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = bool>,
    {
        let Ok(files) = self.pending().await else {
            return 0;
        };
        if files.is_empty() {
            // Nothing to probe the queue with: let the batcher's next push find out.
            self.queue_down.store(false, Ordering::Relaxed);
            return 0;
        }
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
            if !push(payload).await {
                break;
            }
            self.queue_down.store(false, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stored_batch_is_pending_whole_and_a_torn_write_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.store("b1", b"{\"batch\":1}").await.unwrap();
        // A crash between create and rename leaves only the temporary name: never pending.
        std::fs::write(dir.path().join(".b2.tmp"), b"{\"bat").unwrap();
        let pending = spool.pending().await.unwrap();
        assert_eq!(pending, vec![dir.path().join("b1.json")]);
        assert_eq!(std::fs::read(&pending[0]).unwrap(), b"{\"batch\":1}");
    }

    #[tokio::test]
    async fn pending_batches_come_oldest_first_and_a_retry_overwrites_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        for id in ["c", "a", "b"] {
            spool.store(id, id.as_bytes()).await.unwrap();
            // mtime resolution: keep the order observable.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The same batch id stored again (a retried store) stays one file.
        spool.store("a", b"a").await.unwrap();
        let names: Vec<String> = spool
            .pending()
            .await
            .unwrap()
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["c", "b", "a"]);
    }

    #[test]
    fn queue_down_is_remembered_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert!(!spool.queue_down());
        spool.mark_queue_down();
        assert!(spool.queue_down());
    }

    /// A spooled batch as the batcher writes it.
    fn batch(id: &str) -> Vec<u8> {
        serde_json::to_vec(&ClickBatch {
            batch_id: id.to_owned(),
            clicks: Vec::new(),
        })
        .unwrap()
    }

    /// Stores batches `ids` in this order, keeping their modification times apart.
    async fn spool_with(ids: &[&str]) -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        for id in ids {
            spool.store(id, &batch(id)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (dir, spool)
    }

    /// A stand-in queue: records the batch ids pushed; refuses every push after `accept`.
    async fn drain(spool: &Spool, pushed: &mut Vec<String>, accept: usize) -> usize {
        let mut attempts = 0;
        drain_answering(spool, pushed, &mut attempts, |n| n < accept).await
    }

    /// A stand-in queue that answers attempt `n` (from 0) with `answer(n)`; counts attempts.
    async fn drain_answering(
        spool: &Spool,
        pushed: &mut Vec<String>,
        attempts: &mut usize,
        answer: impl Fn(usize) -> bool,
    ) -> usize {
        spool
            .drain_into(|payload| {
                let ok = answer(*attempts);
                *attempts += 1;
                if ok {
                    let b: ClickBatch = serde_json::from_slice(&payload).unwrap();
                    pushed.push(b.batch_id);
                }
                async move { ok }
            })
            .await
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn drain_replays_every_batch_oldest_first_once_and_deletes_it() {
        let (dir, spool) = spool_with(&["b3", "b1", "b2"]).await;
        let mut pushed = Vec::new();
        assert_eq!(drain(&spool, &mut pushed, usize::MAX).await, 3);
        assert_eq!(pushed, ["b3", "b1", "b2"]);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        assert_eq!(drain(&spool, &mut pushed, usize::MAX).await, 0);
        assert_eq!(pushed.len(), 3, "no batch replayed twice");
    }

    #[tokio::test]
    async fn a_refused_push_stops_the_drain_and_keeps_that_batch_and_the_later_ones() {
        let (dir, spool) = spool_with(&["b1", "b2", "b3"]).await;
        spool.mark_queue_down();
        let mut pushed = Vec::new();
        assert_eq!(drain(&spool, &mut pushed, 1).await, 1);
        assert_eq!(pushed, ["b1"]);
        assert_eq!(names(dir.path()), ["b2.json", "b3.json"]);
        assert!(!spool.queue_down(), "a push got through");

        spool.mark_queue_down();
        assert_eq!(drain(&spool, &mut pushed, 0).await, 0);
        assert!(spool.queue_down(), "no push got through");
        assert_eq!(names(dir.path()), ["b2.json", "b3.json"]);

        assert_eq!(drain(&spool, &mut pushed, usize::MAX).await, 2);
        assert_eq!(pushed, ["b1", "b2", "b3"], "each batch once, in order");
    }

    #[tokio::test]
    async fn after_a_refused_push_the_drain_tries_no_later_batch() {
        // Each push to a queue that is down waits out PUSH_TIMEOUT: one per drain, not one
        // per spooled batch; and no batch overtakes an older one.
        let (dir, spool) = spool_with(&["b1", "b2", "b3"]).await;
        let (mut pushed, mut attempts) = (Vec::new(), 0);
        // The queue refuses the first push only.
        let delivered = drain_answering(&spool, &mut pushed, &mut attempts, |n| n > 0).await;
        assert_eq!((delivered, attempts), (0, 1));
        assert!(pushed.is_empty());
        assert_eq!(names(dir.path()), ["b1.json", "b2.json", "b3.json"]);
    }

    #[tokio::test]
    async fn an_unreadable_batch_is_set_aside_and_a_torn_write_is_left_alone() {
        let (dir, spool) = spool_with(&["b1"]).await;
        // A batch file cut short (a corrupt disk, a copy gone wrong) and a write torn before
        // its rename.
        std::fs::write(dir.path().join("cut.json"), &batch("cut")[..10]).unwrap();
        std::fs::write(dir.path().join(".torn.tmp"), b"{\"bat").unwrap();
        let mut pushed = Vec::new();
        assert_eq!(drain(&spool, &mut pushed, usize::MAX).await, 1);
        assert_eq!(pushed, ["b1"]);
        assert_eq!(names(dir.path()), [".torn.tmp", "cut.bad"]);
        assert_eq!(drain(&spool, &mut pushed, usize::MAX).await, 0);
        assert_eq!(pushed, ["b1"]);
    }

    #[tokio::test]
    async fn an_empty_spool_clears_queue_down() {
        let (_dir, spool) = spool_with(&[]).await;
        spool.mark_queue_down();
        let mut pushed = Vec::new();
        assert_eq!(drain(&spool, &mut pushed, 0).await, 0);
        assert!(!spool.queue_down());
    }

    #[tokio::test]
    async fn store_leaves_only_the_renamed_file_and_reports_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("spool")).unwrap();
        spool.store("b1", &batch("b1")).await.unwrap();
        assert_eq!(names(&dir.path().join("spool")), ["b1.json"]);
        std::fs::remove_dir_all(dir.path().join("spool")).unwrap();
        assert!(
            spool.store("b2", &batch("b2")).await.is_err(),
            "a batch that is not on disk must not be reported stored"
        );
    }
}
