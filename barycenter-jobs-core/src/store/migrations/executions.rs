//! The migrations of the execution history (`job_executions` by default): Barycenter's table,
//! then the columns and indexes this crate adds to it.

use sea_query::ColumnDef;

use super::{add_columns, create_index, create_table, index_on, new_table};
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::Exec;

/// Version 1. Barycenter's table, exactly: an existing one is left as it is.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    create_table(
        db,
        table,
        new_table(table)
            .col(
                ColumnDef::new(Exec::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(Exec::JobName).string_len(191).not_null())
            .col(ColumnDef::new(Exec::StartedAt).big_integer().not_null())
            .col(ColumnDef::new(Exec::CompletedAt).big_integer().null())
            .col(ColumnDef::new(Exec::Success).big_integer().null())
            .col(ColumnDef::new(Exec::ErrorMessage).text().null())
            .col(ColumnDef::new(Exec::RecordsProcessed).big_integer().null()),
    )
    .await
}

/// Version 2. The columns Barycenter's table lacks, each added only if missing, all nullable
/// so that Barycenter's own rows stay valid.
pub(super) async fn add_detail_columns(db: &Database, table: &Identifier) -> Result<()> {
    let columns = [
        (
            Exec::Status,
            ColumnDef::new(Exec::Status)
                .string_len(16)
                .null()
                .to_owned(),
        ),
        (
            Exec::TriggerKind,
            ColumnDef::new(Exec::TriggerKind)
                .string_len(16)
                .null()
                .to_owned(),
        ),
        (
            Exec::Instance,
            ColumnDef::new(Exec::Instance)
                .string_len(255)
                .null()
                .to_owned(),
        ),
        (
            Exec::DurationMs,
            ColumnDef::new(Exec::DurationMs)
                .big_integer()
                .null()
                .to_owned(),
        ),
        (
            Exec::ScheduledFor,
            ColumnDef::new(Exec::ScheduledFor)
                .big_integer()
                .null()
                .to_owned(),
        ),
    ];
    add_columns(db, table, columns).await
}

/// Version 3. The indexes of the history's reads, unless the host has one on the same first
/// column.
pub(super) async fn add_indexes(db: &Database, table: &Identifier) -> Result<()> {
    // "latest N of job X": WHERE job_name = ? ORDER BY id DESC
    let by_job = index_on(table, "_job_id_idx", [Exec::JobName, Exec::Id])?;
    // "latest N failures": WHERE success = 0 ORDER BY id DESC
    let by_outcome = index_on(table, "_success_id_idx", [Exec::Success, Exec::Id])?;
    // retention: WHERE started_at < ?
    let by_start = index_on(table, "_started_idx", [Exec::StartedAt])?;
    for (index, leading) in [
        (by_job, "job_name"),
        (by_outcome, "success"),
        (by_start, "started_at"),
    ] {
        // An index the host already has on the same first column serves the same lookups
        // (Barycenter's `idx_job_executions_started`): reuse it rather than add a second
        // one the host did not ask for. Our own index of that name counts too, so a re-run
        // of this step adds nothing.
        let existing = db
            .fetch_all(&db.backend().indexes_leading_with(table, leading))
            .await?;
        if !existing.is_empty() {
            tracing::debug!(table = %table, column = leading, "an index on this column exists; not adding another");
            continue;
        }
        create_index(db, &index).await?;
    }
    Ok(())
}

/// Version 7. "Last success / last failure of job X" (health, metrics): `WHERE job_name = ?
/// AND success = ? ORDER BY id DESC LIMIT 1` is one index probe at any history size.
pub(super) async fn add_job_outcome_index(db: &Database, table: &Identifier) -> Result<()> {
    let columns = [Exec::JobName, Exec::Success, Exec::Id];
    create_index(db, &index_on(table, "_job_success_id_idx", columns)?).await
}

/// Version 12. Which attempt at its tick a run is (1, or more for a retry); NULL reads as 1.
pub(super) async fn add_attempt_column(db: &Database, table: &Identifier) -> Result<()> {
    let attempt = ColumnDef::new(Exec::Attempt)
        .big_integer()
        .null()
        .to_owned();
    add_columns(db, table, [(Exec::Attempt, attempt)]).await
}
