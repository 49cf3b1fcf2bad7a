//! The migration of the fleet table (`job_fleet` by default): one row per running
//! scheduler (see `store::replicas`).

use sea_query::ColumnDef;

use super::{create_table, job_name_key, new_table};
use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::Fleet;

/// Version 15.
pub(super) async fn create(db: &Database, table: &Identifier) -> Result<()> {
    let text = |col: Fleet, len: u32| ColumnDef::new(col).string_len(len).not_null().to_owned();
    let number = |col: Fleet| ColumnDef::new(col).big_integer().not_null().to_owned();
    create_table(
        db,
        table,
        new_table(table)
            .col(job_name_key(Fleet::Holder))
            .col(text(Fleet::Instance, 255))
            .col(text(Fleet::Host, 255))
            .col(number(Fleet::Pid))
            .col(text(Fleet::Version, 64))
            .col(number(Fleet::StartedAtMs))
            .col(number(Fleet::LastSeenMs))
            .col(ColumnDef::new(Fleet::ClockSkewMs).big_integer().null())
            .col(number(Fleet::Running)),
    )
    .await
}
