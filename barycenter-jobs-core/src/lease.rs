//! Per-job leases in the shared database: how a fleet of replicas elects one runner per tick.
//!
//! Each job has one row in `job_leases`. A replica runs a job only after a conditional
//! `UPDATE` moved the row to itself:
//!
//! ```text
//! UPDATE job_leases
//!    SET holder = :me, token = token + 1, expires_at_ms = :now + :ttl, last_tick = :tick
//!  WHERE job_name = :job AND expires_at_ms <= :now AND last_tick < :tick
//! ```
//!
//! The database serialises the competing `UPDATE`s, so at most one replica sees "1 row
//! affected". `expires_at_ms <= now` gives no overlap (a held lease is never taken), and
//! `last_tick < tick` gives at most one run per tick even after the lease was released. The
//! runner renews the lease while the job runs; a replica that dies stops renewing and its
//! lease lapses after the TTL. `token` increases on every claim and fences renewals and
//! releases: a replica whose lease lapsed cannot renew or release the next holder's.
//!
//! Clocks: `now` is each replica's own clock. The tick is the cron fire time, which every
//! replica computes alike, so skew cannot cause a second run of one tick. Skew does shorten
//! a lease as seen by a replica whose clock runs ahead; it is safe while skew stays below
//! `ttl - renew_interval` (20 s with the defaults of 30 s and 10 s).
//!
//! The same mechanism works on SQLite, PostgreSQL and MySQL/MariaDB: it needs nothing but
//! single-row atomic `UPDATE`s.

use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, OnConflict, Query};

use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::Lease as Col;

/// A lease this process holds on one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_name: String,
    /// The holder (instance id).
    pub holder: String,
    /// Fencing token: increases with every claim of this job.
    pub token: i64,
}

/// What a claim asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// Run the scheduled tick at this instant; refused if that tick (or a later one) was
    /// already claimed by anybody.
    Tick(DateTime<Utc>),
    /// Run now, outside the schedule (manual trigger, start-up sweep).
    Now,
}

/// Reads and writes the lease table.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    db: Database,
    table: Identifier,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl LeaseStore {
    /// Leases in `table` (created by the execution store's migrations).
    pub fn new(db: Database, table: Identifier) -> Self {
        Self { db, table }
    }

    /// Make sure every job has its row; existing rows are left alone.
    pub async fn ensure_rows<S: AsRef<str>>(&self, job_names: &[S]) -> Result<()> {
        for name in job_names {
            let stmt = Query::insert()
                .into_table(self.table.clone())
                .columns([Col::JobName, Col::Token, Col::ExpiresAtMs, Col::LastTick])
                .values_panic([name.as_ref().into(), 0i64.into(), 0i64.into(), 0i64.into()])
                .on_conflict(
                    // A no-op update rather than DO NOTHING: sea-query's MySQL rendering of
                    // DO NOTHING is not valid on MariaDB, and this form is valid everywhere.
                    OnConflict::column(Col::JobName)
                        .update_column(Col::JobName)
                        .to_owned(),
                )
                .to_owned();
            self.db.execute(&stmt).await?;
        }
        Ok(())
    }

    /// Try to take the lease of `job_name` for `ttl`. `Ok(None)` means somebody else holds it
    /// (or, for a tick, already ran that tick).
    pub async fn claim(
        &self,
        job_name: &str,
        holder: &str,
        kind: ClaimKind,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let mut stmt = Query::update()
            .table(self.table.clone())
            .value(Col::Holder, holder)
            .value(Col::Token, Expr::col(Col::Token).add(1))
            .value(Col::ExpiresAtMs, ms(now).saturating_add(ttl_ms))
            .value(Col::ExecutionId, Option::<i64>::None)
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::ExpiresAtMs).lte(ms(now)))
            .to_owned();
        if let ClaimKind::Tick(tick) = kind {
            stmt.value(Col::LastTick, tick.timestamp())
                .and_where(Expr::col(Col::LastTick).lt(tick.timestamp()));
        }
        if self.db.execute(&stmt).await? != 1 {
            return Ok(None);
        }
        let row = self
            .db
            .fetch_optional(
                Query::select()
                    .columns([Col::Token])
                    .from(self.table.clone())
                    .and_where(Expr::col(Col::JobName).eq(job_name))
                    .and_where(Expr::col(Col::Holder).eq(holder)),
            )
            .await?;
        Ok(match row {
            Some(row) => Some(Lease {
                job_name: job_name.to_owned(),
                holder: holder.to_owned(),
                token: row.i64("token")?,
            }),
            None => None,
        })
    }

    /// Note the execution a lease is running (for operators reading the table).
    pub async fn set_execution(&self, lease: &Lease, execution_id: i64) -> Result<()> {
        self.db
            .execute(
                Query::update()
                    .table(self.table.clone())
                    .value(Col::ExecutionId, execution_id)
                    .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
                    .and_where(Expr::col(Col::Token).eq(lease.token)),
            )
            .await?;
        Ok(())
    }

    /// Extend a held lease to `now + ttl`. `Ok(false)` means it was lost (it lapsed and
    /// somebody else claimed it).
    pub async fn renew(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let n = self
            .db
            .execute(
                Query::update()
                    .table(self.table.clone())
                    .value(Col::ExpiresAtMs, ms(now).saturating_add(ttl_ms))
                    .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
                    .and_where(Expr::col(Col::Holder).eq(lease.holder.as_str()))
                    .and_where(Expr::col(Col::Token).eq(lease.token)),
            )
            .await?;
        if n == 1 {
            return Ok(true);
        }
        // MySQL counts changed rows, not matched ones: an identical value reports 0.
        self.holds(lease).await
    }

    /// Whether `lease` is still the current one.
    pub async fn holds(&self, lease: &Lease) -> Result<bool> {
        Ok(self
            .db
            .fetch_optional(
                Query::select()
                    .column(Col::Token)
                    .from(self.table.clone())
                    .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
                    .and_where(Expr::col(Col::Holder).eq(lease.holder.as_str()))
                    .and_where(Expr::col(Col::Token).eq(lease.token)),
            )
            .await?
            .is_some())
    }

    /// Give a lease back so another replica (or a manual trigger) can take it at once.
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        self.db
            .execute(
                Query::update()
                    .table(self.table.clone())
                    .value(Col::ExpiresAtMs, 0i64)
                    .value(Col::Holder, Option::<String>::None)
                    .value(Col::ExecutionId, Option::<i64>::None)
                    .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
                    .and_where(Expr::col(Col::Holder).eq(lease.holder.as_str()))
                    .and_where(Expr::col(Col::Token).eq(lease.token)),
            )
            .await?;
        Ok(())
    }

    /// Whether anybody holds the lease of `job_name` at `now`.
    pub async fn is_held(&self, job_name: &str, now: DateTime<Utc>) -> Result<bool> {
        Ok(self
            .db
            .fetch_optional(
                Query::select()
                    .column(Col::JobName)
                    .from(self.table.clone())
                    .and_where(Expr::col(Col::JobName).eq(job_name))
                    .and_where(Expr::col(Col::ExpiresAtMs).gt(ms(now))),
            )
            .await?
            .is_some())
    }
}
