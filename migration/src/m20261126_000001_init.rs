//! Users, urls and events, with the column limits of the API contract and the indexes its
//! queries use.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, date_time, json_binary_null, string_len,
    string_len_null, string_len_uniq, text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(
    from: (&'static str, &'static str),
    to: &'static str,
    action: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{}_{}", from.0, from.1))
        .from(from.0, from.1)
        .to(to, "id")
        .on_delete(action)
        .to_owned()
}

fn index(table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(format!("idx_{table}_{}", columns.join("_")))
        .table(table);
    for column in columns {
        stmt.col(*column);
    }
    stmt.take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(big_pk_auto("id"))
                    .col(string_len("username", 120))
                    .col(string_len("email", 255))
                    .col(date_time("created_at"))
                    .to_owned(),
            )
            .await?;
        // Case-insensitive uniqueness is checked by the API; this index makes that look-up cheap.
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX idx_users_email_lower ON users (LOWER(email))")
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("urls")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("user_id"))
                    .col(string_len_uniq("short_code", 16))
                    .col(string_len("original_url", 2048))
                    .col(big_integer("original_url_hash"))
                    .col(string_len_null("title", 255))
                    .col(boolean("is_active"))
                    .col(date_time("created_at"))
                    .col(date_time("updated_at"))
                    .foreign_key(&mut fk(
                        ("urls", "user_id"),
                        "users",
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("urls", &["user_id"])).await?;
        manager
            .create_index(index("urls", &["original_url_hash"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("events")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("url_id"))
                    .col(big_integer_null("user_id"))
                    .col(string_len("event_type", 64))
                    .col(date_time("timestamp"))
                    .col(json_binary_null("details"))
                    .col(string_len_uniq("click_id", 36).null())
                    .col(string_len_null("visitor_hash", 64))
                    .col(text_null("user_agent"))
                    .col(text_null("referrer"))
                    .foreign_key(&mut fk(
                        ("events", "url_id"),
                        "urls",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        ("events", "user_id"),
                        "users",
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("events", &["url_id", "event_type"]))
            .await?;
        manager.create_index(index("events", &["user_id"])).await?;
        manager
            .create_index(index("events", &["event_type"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["events", "urls", "users"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
