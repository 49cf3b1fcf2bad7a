//! Retries on the lease row: a failed run leaves its tick's next attempt there when it gives
//! the lease back, and any replica finds the ones overdue (see `scheduler::retry`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, Query};

use super::{Lease, LeaseStore, ttl_ms};
use crate::db::from_millis;
use crate::error::Result;
use crate::store::schema::Lease as Col;

/// A retry a failed run leaves on its job's lease row when it gives the lease back, for
/// whichever replica is free when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRetry {
    /// The tick it serves.
    pub tick: DateTime<Utc>,
    /// Its attempt (2 for the first retry).
    pub attempt: u32,
    /// When it may start.
    pub due: DateTime<Utc>,
}

impl LeaseStore {
    /// Give a lease back cleanly, leaving `retry` on the row for whichever replica is free
    /// when it is due (see [`ClaimKind::Retry`](super::ClaimKind::Retry)).
    pub async fn release_with_retry(
        &self,
        lease: &Lease,
        clean: bool,
        retry: PendingRetry,
    ) -> Result<()> {
        let mut stmt = self.unclaim_statement(
            &lease.job_name,
            &lease.holder,
            Some(lease.token),
            None,
            clean,
        );
        stmt.value(Col::RetryTick, retry.tick.timestamp())
            .value(Col::RetryAttempt, i64::from(retry.attempt))
            .value(Col::RetryDueMs, retry.due.timestamp_millis());
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }

    /// The retries waiting on lease rows whose lease is free and which were due at least
    /// `grace` ago by the database's clock (the replica that left one runs it at its time;
    /// the others only take over one it did not).
    pub async fn overdue_retries(&self, grace: Duration) -> Result<Vec<(String, PendingRetry)>> {
        let stmt = Query::select()
            // Qualified: see the settings store's read (SQLite's legacy quoting).
            .columns(
                [
                    Col::JobName,
                    Col::RetryTick,
                    Col::RetryAttempt,
                    Col::RetryDueMs,
                ]
                .map(|col| (self.table.clone(), col)),
            )
            .from(self.table.clone())
            .and_where(Expr::col(Col::RetryDueMs).lte(self.now_ms().sub(ttl_ms(grace))))
            .and_where(Expr::col(Col::ExpiresAtMs).lte(self.now_ms()))
            .to_owned();
        let rows = self.bounded(self.db.fetch_all(&stmt)).await?;
        rows.iter()
            .map(|row| {
                let tick = row.opt_i64("retry_tick")?.unwrap_or_default();
                Ok((
                    row.opt_string("job_name")?.unwrap_or_default(),
                    PendingRetry {
                        tick: DateTime::from_timestamp(tick, 0).unwrap_or_default(),
                        attempt: u32::try_from(row.opt_i64("retry_attempt")?.unwrap_or(0))
                            .unwrap_or(0),
                        due: from_millis(row.opt_i64("retry_due_ms")?.unwrap_or(0)),
                    },
                ))
            })
            .collect()
    }
}
