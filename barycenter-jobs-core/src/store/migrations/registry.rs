//! The migration of the job registry (`job_registry` by default): when each job was first
//! seen by this database.

use sea_query::{ColumnDef, Table};

use super::create_table;
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::JobRegistry;

/// Version 8. Ticks before a job's first sighting never make it overdue.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    create_table(
        db,
        table,
        Table::create()
            .table(table.clone())
            .if_not_exists()
            .col(
                ColumnDef::new(JobRegistry::JobName)
                    .string_len(191)
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(JobRegistry::FirstSeenAt)
                    .big_integer()
                    .not_null(),
            ),
    )
    .await
}
