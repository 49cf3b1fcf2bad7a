//! The migration of the job registry (`job_registry` by default): when each job was first
//! seen by this database.

use sea_query::ColumnDef;

use super::{create_table, job_name_key, new_table};
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::JobRegistry;

/// Version 8. Ticks before a job's first sighting never make it overdue.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    create_table(
        db,
        table,
        new_table(table)
            .col(job_name_key(JobRegistry::JobName))
            .col(
                ColumnDef::new(JobRegistry::FirstSeenAt)
                    .big_integer()
                    .not_null(),
            ),
    )
    .await
}
