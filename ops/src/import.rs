//! `curtain-ops import --dir`: loads the three CSV files in dependency order (users, urls,
//! events), each file atomically, with a progress bar. A bad row stops the import with the
//! file and line named; nothing of that file is written.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, TransactionTrait};
use storage::import::{
    ImportError, advance_sequence, insert_skipping_existing, parse_events, parse_urls, parse_users,
};

/// Rows inserted per file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub users: u64,
    pub urls: u64,
    pub events: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inserted: users {}, urls {}, events {}",
            self.users, self.urls, self.events
        )
    }
}

fn bar(show: bool, len: usize, name: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} rows") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_owned());
    bar
}

async fn load<E, A>(
    db: &DatabaseConnection,
    path: &Path,
    table: &str,
    parse: fn(&[u8]) -> Result<Vec<A>, ImportError>,
    show: bool,
) -> anyhow::Result<u64>
where
    E: EntityTrait,
    A: ActiveModelTrait<Entity = E> + Send,
{
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let rows = parse(&data).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let progress = bar(show, rows.len(), table);
    let txn = db.begin().await?;
    let inserted = insert_skipping_existing(&txn, rows, |n| progress.inc(n))
        .await
        .with_context(|| format!("{}: inserting rows", path.display()))?;
    advance_sequence(&txn, table).await?;
    txn.commit().await?;
    progress.finish();
    Ok(inserted)
}

/// Imports `users.csv`, `urls.csv` and `events.csv` from `dir` (a missing file is an error).
pub async fn import_dir(db: &DatabaseConnection, dir: &Path, show: bool) -> anyhow::Result<Report> {
    Ok(Report {
        users: load(db, &dir.join("users.csv"), "users", parse_users, show).await?,
        urls: load(db, &dir.join("urls.csv"), "urls", parse_urls, show).await?,
        events: load(db, &dir.join("events.csv"), "events", parse_events, show).await?,
    })
}
