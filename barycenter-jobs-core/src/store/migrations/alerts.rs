//! The migration of the alert deliveries table (`job_alerts` by default): one row per alert
//! event, claimed by one replica at a time for delivery (see `crate::alert`).

use sea_query::ColumnDef;

use super::{create_index, create_table, index_on, job_name_key, new_table, zero_default};
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::Alerts;

/// Version 17.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    let text = |col: Alerts, len: u32| ColumnDef::new(col).string_len(len).not_null().to_owned();
    create_table(
        db,
        table,
        new_table(table)
            // `failure:<execution id>`, `overdue:<job>:<tick>`...: a job's name fits the
            // MySQL key limit, so the key is the same 191 characters.
            .col(job_name_key(Alerts::AlertKey))
            .col(text(Alerts::Event, 32))
            .col(text(Alerts::JobName, 191))
            .col(ColumnDef::new(Alerts::Payload).text().not_null())
            .col(text(Alerts::State, 16))
            .col(zero_default(Alerts::Attempts))
            .col(zero_default(Alerts::CreatedMs))
            .col(zero_default(Alerts::NextAttemptMs))
            .col(ColumnDef::new(Alerts::ClaimedBy).string_len(255).null())
            .col(zero_default(Alerts::ClaimedUntilMs))
            .col(ColumnDef::new(Alerts::DeliveredAtMs).big_integer().null())
            .col(ColumnDef::new(Alerts::LastError).text().null()),
    )
    .await?;
    // The senders' poll: pending rows whose next attempt is due.
    create_index(
        db,
        &index_on(table, "_due_idx", [Alerts::State, Alerts::NextAttemptMs])?,
    )
    .await?;
    // "The newest alert of this job" (does a success recover something?).
    create_index(
        db,
        &index_on(table, "_job_idx", [Alerts::JobName, Alerts::CreatedMs])?,
    )
    .await
}
