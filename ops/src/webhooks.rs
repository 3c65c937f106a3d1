//! `curtain-ops webhooks`: the dead-letter list of webhook deliveries and its replay.

use clap::Subcommand;
use sea_orm::DatabaseConnection;
use storage::webhooks::{self, DeliveryState};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Make dead deliveries pending again (attempts 0, due now): the worker (or the embedded
    /// api) delivers them within seconds. Prints how many.
    Replay {
        /// Only this webhook's dead deliveries.
        #[arg(long)]
        webhook: Option<i64>,
        /// Only this delivery (if it is dead).
        #[arg(long)]
        delivery: Option<i64>,
    },
    /// List dead deliveries: id, webhook, event, attempts, last status and error.
    ListDead {
        /// Only this webhook's.
        #[arg(long)]
        webhook: Option<i64>,
        /// At most this many per webhook, newest first.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

pub async fn run(db: &DatabaseConnection, command: WebhooksCommand) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Replay { webhook, delivery } => {
            let n = webhooks::replay(db, webhook, delivery, chrono::Utc::now().naive_utc()).await?;
            println!("replayed {n} dead deliveries");
        }
        WebhooksCommand::ListDead { webhook, limit } => {
            let hooks = match webhook {
                Some(id) => webhooks::get(db, id).await?.into_iter().collect(),
                None => webhooks::list(db).await?,
            };
            for hook in hooks {
                for d in webhooks::deliveries(db, hook.id, Some(DeliveryState::Dead), limit).await?
                {
                    println!(
                        "{}\twebhook {}\t{}\tattempts {}\tstatus {}\t{}",
                        d.id,
                        hook.id,
                        d.event,
                        d.attempts,
                        d.last_status
                            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                        d.last_error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
    }
    Ok(())
}
