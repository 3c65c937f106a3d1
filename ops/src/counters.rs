//! `curtain-ops counters rebuild`: the real-time counters rebuilt from the events table, as a
//! job for the workers (default) or in this process (`--inline`).

use anyhow::Context;
use clap::Subcommand;
use jobs::RebuildCounters;
use storage::counters::{Counters, RebuildScope};

#[derive(Debug, Subcommand)]
pub enum CountersCommand {
    /// Rebuild the real-time counters (totals, 72 h hourly buckets, unique visitors) of every
    /// link, of one shard's links or of one link from the events, exactly, while clicks keep
    /// arriving (their counter updates for those links wait until it ends).
    Rebuild {
        /// Only the links the shard with this index (0-based, in `REDIS_SHARDS` order) owns.
        #[arg(long, conflicts_with = "code")]
        shard: Option<usize>,
        /// Only this short code.
        #[arg(long)]
        code: Option<String>,
        /// Rebuild here and print the report, instead of enqueueing a job for the workers.
        #[arg(long)]
        inline: bool,
        /// Redis URL of the job queue.
        #[arg(long, env = "REDIS_URL")]
        redis_url: Option<String>,
        #[arg(long, env = "COUNTERS_QUEUE", default_value = jobs::CounterRebuild::QUEUE)]
        counters_queue: String,
        /// Counter shards, as the workers have them (`--inline`; default: `REDIS_URL`).
        #[arg(long, env = "REDIS_SHARDS", value_delimiter = ',')]
        redis_shards: Vec<String>,
        #[arg(long, env = "CACHE_PREFIX", default_value = "curtain")]
        cache_prefix: String,
    },
}

pub async fn run(db: &sea_orm::DatabaseConnection, command: CountersCommand) -> anyhow::Result<()> {
    let CountersCommand::Rebuild {
        shard,
        code,
        inline,
        redis_url,
        counters_queue,
        redis_shards,
        cache_prefix,
    } = command;
    let job = RebuildCounters {
        shard,
        code,
        reason: "curtain-ops counters rebuild".to_owned(),
    };
    if !inline {
        let url = redis_url.context(
            "REDIS_URL is needed to enqueue the rebuild (the embedded default rebuilds its \
             in-process counters at every start)",
        )?;
        let queue = jobs::JobQueue::connect(&url, Some(&counters_queue)).await?;
        queue.push_job(&job).await?;
        println!("rebuild enqueued on {counters_queue}");
        return Ok(());
    }
    let shards = if redis_shards.is_empty() {
        vec![redis_url.context("REDIS_SHARDS or REDIS_URL is needed")?]
    } else {
        redis_shards
    };
    let deployment = storage::settings::deployment_id(db).await?;
    let counters = Counters::for_deployment(&shards, &cache_prefix, &deployment)?;
    let scope = RebuildScope::from(&job);
    let report = counters.rebuild(db, &scope).await?;
    println!(
        "rebuilt: {} clicks, {} links, {} batches marked, {} stale keys removed in {:.2} s ({:.0} clicks/s)",
        report.clicks,
        report.codes,
        report.batches_marked,
        report.stale_keys_removed,
        report.seconds,
        report.clicks as f64 / report.seconds.max(1e-9)
    );
    Ok(())
}
