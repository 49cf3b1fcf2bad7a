//! The migration of the lease table (`job_leases` by default): one row per job, claimed by
//! the replica that runs its tick (see [`crate::lease`]).

use sea_query::{ColumnDef, Table};

use super::create_table;
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::Lease;

/// Version 4. Also what [`LeaseStore::migrate`](crate::LeaseStore::migrate) runs, so that a
/// lease store used without the history gets the same table.
pub(crate) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    create_table(
        db,
        table,
        Table::create()
            .table(table.clone())
            .if_not_exists()
            .col(
                ColumnDef::new(Lease::JobName)
                    .string_len(191)
                    .not_null()
                    .primary_key(),
            )
            .col(ColumnDef::new(Lease::Holder).string_len(255).null())
            .col(
                ColumnDef::new(Lease::Token)
                    .big_integer()
                    .not_null()
                    .default(0),
            )
            .col(
                ColumnDef::new(Lease::ExpiresAtMs)
                    .big_integer()
                    .not_null()
                    .default(0),
            )
            .col(
                ColumnDef::new(Lease::LastTick)
                    .big_integer()
                    .not_null()
                    .default(0),
            )
            .col(ColumnDef::new(Lease::ExecutionId).big_integer().null()),
    )
    .await
}
