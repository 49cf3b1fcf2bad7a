//! The migration of the audit log (`job_audit` by default): who changed which job's runtime
//! settings, and when.

use sea_query::{ColumnDef, Index, Table};

use super::create_table;
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
        Table::create()
            .table(table.clone())
            .if_not_exists()
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
    let by_job = Index::create()
        .name(table.with_suffix("_job_id_idx")?.as_str())
        .table(table.clone())
        .col(Audit::JobName)
        .col(Audit::Id)
        .if_not_exists()
        .to_owned();
    let by_time = Index::create()
        .name(table.with_suffix("_at_idx")?.as_str())
        .table(table.clone())
        .col(Audit::AtMs)
        .if_not_exists()
        .to_owned();
    for index in [by_job, by_time] {
        if let Err(e) = db.execute_schema(&index).await
            && !db.is_duplicate_index(&e)
        {
            return Err(e);
        }
    }
    Ok(())
}
