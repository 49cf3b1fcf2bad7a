//! Retries on the lease row: a failed run leaves its tick's next attempt there when it gives
//! the lease back, and any replica finds the ones overdue ([`LeaseStore::waiting`], and
//! `scheduler::retry`).

use chrono::{DateTime, Utc};
use sea_query::Expr;

use super::{Lease, LeaseStore};
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
    /// It never starts at or after this instant (the job's next tick when the retry was
    /// left); `None`: no limit.
    pub until: Option<DateTime<Utc>>,
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
            .value(Col::RetryDueMs, retry.due.timestamp_millis())
            .value(
                Col::RetryUntilMs,
                Expr::val(retry.until.map(|t| t.timestamp_millis())),
            );
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }
}
