//! The migration of the runtime-settings table (`job_settings` by default): one row per job
//! with an operator's overrides, and the version row readers poll (see [`crate::settings`]).

use sea_query::{ColumnDef, Expr, ExprTrait, Query};

use super::{add_columns, create_table, job_name_key, new_table, zero_default};
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::{Settings, VERSION_ROW};

/// Version 5. The table, with its version row.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    create_table(
        db,
        table,
        new_table(table)
            .col(job_name_key(Settings::JobName))
            .col(ColumnDef::new(Settings::Paused).big_integer().null())
            .col(ColumnDef::new(Settings::Schedule).string_len(255).null())
            .col(ColumnDef::new(Settings::TimeZone).string_len(64).null())
            .col(ColumnDef::new(Settings::TimeoutSecs).big_integer().null())
            .col(ColumnDef::new(Settings::ChangedBy).string_len(255).null())
            .col(zero_default(Settings::ChangedAtMs))
            .col(zero_default(Settings::Revision)),
    )
    .await?;
    ensure_version_row(db, table).await
}

/// Version 9. The scheduling policies an operator sets at run time, and the note, end and
/// author of a pause; every column nullable ("as configured").
pub(super) async fn add_policy_columns(db: &Database, table: &Identifier) -> Result<()> {
    let text =
        |col: Settings, len: u32| (col, ColumnDef::new(col).string_len(len).null().to_owned());
    let number = |col: Settings| (col, ColumnDef::new(col).big_integer().null().to_owned());
    add_columns(
        db,
        table,
        [
            text(Settings::Misfire, 16),
            number(Settings::CatchUpWindowSecs),
            number(Settings::JitterSecs),
            number(Settings::PauseAfterFailures),
            text(Settings::PauseNote, 500),
            number(Settings::PausedUntilMs),
            text(Settings::PausedBy, 255),
        ],
    )
    .await
}

/// Version 10. Retries of a failed tick: how many, and the first delay.
pub(super) async fn add_retry_columns(db: &Database, table: &Identifier) -> Result<()> {
    let number = |col: Settings| (col, ColumnDef::new(col).big_integer().null().to_owned());
    add_columns(
        db,
        table,
        [
            number(Settings::RetryAttempts),
            number(Settings::RetryBackoffSecs),
        ],
    )
    .await
}

/// Version 13. The overlap policy, and a backfill in progress: its range (epoch seconds)
/// and who asked for it.
pub(super) async fn add_overlap_and_backfill_columns(
    db: &Database,
    table: &Identifier,
) -> Result<()> {
    let number = |col: Settings| (col, ColumnDef::new(col).big_integer().null().to_owned());
    add_columns(
        db,
        table,
        [
            (
                Settings::Overlap,
                ColumnDef::new(Settings::Overlap)
                    .string_len(16)
                    .null()
                    .to_owned(),
            ),
            number(Settings::BackfillFrom),
            number(Settings::BackfillTo),
            (
                Settings::BackfillBy,
                ColumnDef::new(Settings::BackfillBy)
                    .string_len(255)
                    .null()
                    .to_owned(),
            ),
        ],
    )
    .await
}

/// Create the version row if it is missing (tolerating a replica that creates it at the
/// same moment). The settings store calls it too, when a write finds the row missing.
pub(crate) async fn ensure_version_row(db: &Database, table: &Identifier) -> Result<()> {
    let exists = || async {
        db.fetch_optional(
            Query::select()
                .column(Settings::Revision)
                .from(table.clone())
                .and_where(Expr::col(Settings::JobName).eq(VERSION_ROW)),
        )
        .await
        .map(|r| r.is_some())
    };
    if exists().await? {
        return Ok(());
    }
    let insert = Query::insert()
        .into_table(table.clone())
        .columns([Settings::JobName, Settings::Revision])
        .values_panic([VERSION_ROW.into(), 0i64.into()])
        .to_owned();
    match db.execute(&insert).await {
        Err(e) if !exists().await? => Err(e),
        _ => Ok(()),
    }
}
