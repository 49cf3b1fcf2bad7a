//! The migration of the audit log (`job_audit` by default): who changed which job's runtime
//! settings, and when.

use sea_query::ColumnDef;

use super::{create_index, create_table, index_on, new_table};
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::Audit;

/// Version 6. The table, with the indexes of its two reads: newest of one job, and
/// retention.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    create_table(
        db,
        table,
        new_table(table)
            .col(
                ColumnDef::new(Audit::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(Audit::AtMs).big_integer().not_null())
            .col(ColumnDef::new(Audit::Actor).string_len(255).not_null())
            .col(ColumnDef::new(Audit::Action).string_len(32).not_null())
            .col(ColumnDef::new(Audit::JobName).string_len(191).not_null())
            .col(ColumnDef::new(Audit::Detail).text().null()),
    )
    .await?;
    create_index(
        db,
        &index_on(table, "_job_id_idx", [Audit::JobName, Audit::Id])?,
    )
    .await?;
    create_index(db, &index_on(table, "_at_idx", [Audit::AtMs])?).await
}
