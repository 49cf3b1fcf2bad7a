//! The migration of the lease table (`job_leases` by default): one row per job, claimed by
//! the replica that runs its tick (see [`crate::lease`]).

use sea_query::ColumnDef;

use super::{add_columns, create_table, job_name_key, new_table, zero_default};
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
        new_table(table)
            .col(job_name_key(Lease::JobName))
            .col(ColumnDef::new(Lease::Holder).string_len(255).null())
            .col(zero_default(Lease::Token))
            .col(zero_default(Lease::ExpiresAtMs))
            .col(zero_default(Lease::LastTick))
            .col(ColumnDef::new(Lease::ExecutionId).big_integer().null()),
    )
    .await
}

/// Version 11. A retry waiting on the job's lease row (its tick, its attempt, when it is
/// due), so any replica can run it if the one that scheduled it dies. Also run by
/// [`LeaseStore::migrate`](crate::LeaseStore::migrate).
pub(crate) async fn add_retry_columns(db: &Database, table: &Identifier) -> Result<()> {
    let number = |col: Lease| (col, ColumnDef::new(col).big_integer().null().to_owned());
    add_columns(
        db,
        table,
        [
            number(Lease::RetryTick),
            number(Lease::RetryAttempt),
            number(Lease::RetryDueMs),
        ],
    )
    .await
}

/// Version 14. Run controls on the lease row: the latest start of a waiting retry, a tick
/// buffered while the job ran, the newest backfill tick claimed, and a cancel asked of the
/// run holding the lease (its token and who asked). Also run by
/// [`LeaseStore::migrate`](crate::LeaseStore::migrate).
pub(crate) async fn add_run_control_columns(db: &Database, table: &Identifier) -> Result<()> {
    let number = |col: Lease| (col, ColumnDef::new(col).big_integer().null().to_owned());
    add_columns(
        db,
        table,
        [
            number(Lease::RetryUntilMs),
            number(Lease::BufferedTick),
            number(Lease::BackfillTick),
            number(Lease::CancelToken),
            (
                Lease::CancelBy,
                ColumnDef::new(Lease::CancelBy)
                    .string_len(255)
                    .null()
                    .to_owned(),
            ),
        ],
    )
    .await
}
