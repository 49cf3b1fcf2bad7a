//! The migration of the runs' logs (`job_execution_logs` by default): the lines each run
//! logged, applied with the history (a scheduler without history captures no logs).

use sea_query::ColumnDef;

use super::{create_index, create_table, index_on, new_table};
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::ExecLog;

/// Version 16. The table, with the index of both its reads (a run's log, and the purge of
/// the purged runs' logs): `execution_id`. No foreign key: Barycenter's history table may
/// predate ours, and the purge deletes the logs first anyway.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    create_table(
        db,
        table,
        new_table(table)
            .col(
                ColumnDef::new(ExecLog::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(ExecLog::ExecutionId)
                    .big_integer()
                    .not_null(),
            )
            .col(ColumnDef::new(ExecLog::Seq).big_integer().not_null())
            .col(ColumnDef::new(ExecLog::AtMs).big_integer().not_null())
            .col(ColumnDef::new(ExecLog::Level).string_len(8).not_null())
            .col(ColumnDef::new(ExecLog::Message).text().not_null()),
    )
    .await?;
    create_index(
        db,
        &index_on(
            table,
            "_execution_idx",
            [ExecLog::ExecutionId, ExecLog::Seq],
        )?,
    )
    .await
}
