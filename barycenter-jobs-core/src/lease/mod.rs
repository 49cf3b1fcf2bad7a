//! Per-job leases in the shared database: how a fleet of replicas elects one runner per tick.
//!
//! Each job has one row in `job_leases`. A replica runs a job only after a conditional
//! `UPDATE` moved the row to itself:
//!
//! ```text
//! UPDATE job_leases
//!    SET holder = :me, token = token + 1, expires_at_ms = NOW_MS + :ttl, last_tick = :tick
//!  WHERE job_name = :job AND expires_at_ms <= NOW_MS
//!    AND last_tick < :tick AND :tick_ms <= NOW_MS + 1000
//! RETURNING token, NOW_MS
//! ```
//!
//! (The claim also sets `execution_id` from the row it replaces, NULL after a clean
//! release and -1 otherwise, and returns it: see [`Claimed::previous_unreleased`].)
//!
//! The database serialises the competing `UPDATE`s, so at most one replica sees "1 row
//! affected". `expires_at_ms <= now` gives no overlap (a held lease is never taken), and
//! `last_tick < tick` gives at most one run per tick even after the lease was released. The
//! runner renews the lease while the job runs; a replica that dies stops renewing and its
//! lease lapses after the TTL. `token` increases on every claim and fences renewals and
//! releases: a replica whose lease lapsed cannot renew or release the next holder's.
//!
//! # Clocks
//! `NOW_MS` is the **database's** clock ([`Database::now_ms_expr`]), never a replica's own:
//! a replica whose clock runs ahead or behind cannot see a held lease as expired, and cannot
//! claim a tick before the database says it is due (`:tick_ms <= NOW_MS + 1 s`). The tick
//! itself is the cron fire time, which every replica computes alike.
//!
//! # Failures
//! Every statement is bounded by the store's statement timeout: a lease row locked by
//! another session, a dead connection or an exhausted pool answer [`Error::Timeout`] instead
//! of hanging. A claim that succeeded but whose run then cannot start (the start row could
//! not be written) gives its tick back with [`LeaseStore::release_tick`], so another replica
//! (or this one, later) can still run it. On PostgreSQL and SQLite the claim and the read of
//! its token are one statement (`RETURNING`); MySQL/MariaDB needs a second statement, and a
//! failure of that one gives the tick back as well.
//!
//! The same mechanism works on SQLite, PostgreSQL and MySQL/MariaDB: it needs nothing but
//! single-row atomic `UPDATE`s.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_query::{
    Alias, Cond, Expr, ExprTrait, OnConflict, Query, ReturningClause, UpdateStatement,
};

use crate::db::{Database, from_millis};
use crate::error::{Error, Result};
use crate::ident::Identifier;
use crate::store::migrations;
use crate::store::schema::Lease as Col;

mod control;
pub use control::Waiting;
mod retry;
pub use retry::PendingRetry;
mod statements;

/// How far ahead of the database's clock a tick may be claimed: replicas fire on their own
/// clocks, which a well-run fleet keeps within milliseconds of each other.
const TICK_TOLERANCE_MS: i64 = 1_000;

/// Default time bound of one lease statement.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// A successful claim: the lease, and the database's clock when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The lease now held.
    pub lease: Lease,
    /// The database's time at the claim (for skew measurement); `None` when the backend
    /// could not say in the same statement.
    pub db_now: Option<DateTime<Utc>>,
    /// The previous holder did not give the lease back after a recorded run (it died, lost
    /// the lease, or could not write its run's end or start), so a run of the job may have
    /// been left open. `false` only when the lease was released cleanly (or never held).
    pub previous_unreleased: bool,
}

/// `execution_id` of a lease that was claimed and not released cleanly, while no execution
/// is noted on it: "a run of this job may be left open". Never a real execution id (those
/// are positive).
const UNRELEASED: i64 = -1;

/// What a claim asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// Run the scheduled tick at this instant; refused if that tick (or a later one) was
    /// already claimed by anybody, or if the database's clock says it is not due yet.
    Tick(DateTime<Utc>),
    /// Run now, outside the schedule (manual trigger, start-up sweep).
    Now,
    /// Run the retry `attempt` of `tick` that a failed run left on the lease row; refused
    /// unless that very retry is still waiting there (taken once, and dropped when a newer
    /// tick was claimed).
    Retry {
        /// The tick the retry serves.
        tick: DateTime<Utc>,
        /// Its attempt (2 for the first retry).
        attempt: u32,
    },
    /// Run this tick of a backfill: refused unless it is newer than the backfill tick
    /// claimed last (so each runs once, oldest first). Leaves the schedule's own ticks and
    /// a waiting retry alone.
    Backfill(DateTime<Utc>),
}

impl ClaimKind {
    fn tick(self) -> Option<DateTime<Utc>> {
        match self {
            ClaimKind::Tick(t) => Some(t),
            ClaimKind::Now | ClaimKind::Retry { .. } | ClaimKind::Backfill(_) => None,
        }
    }
}

/// Reads and writes the lease table.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    db: Database,
    table: Identifier,
    statement_timeout: Duration,
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

impl LeaseStore {
    /// Leases in `table` (created by [`LeaseStore::migrate`]), each statement bounded by 5 s.
    pub fn new(db: Database, table: Identifier) -> Self {
        Self {
            db,
            table,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
        }
    }

    /// Bound every lease statement by `timeout` instead.
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The time bound of one statement.
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// Run `statement` within the statement timeout.
    async fn bounded<T>(&self, statement: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.statement_timeout, statement)
            .await
            .map_err(|_| Error::Timeout(self.statement_timeout))?
    }

    /// Create the lease table if it is missing. Idempotent and safe from several replicas at
    /// once; the lease table's schema is its own, apart from the history's, so a scheduler
    /// without history still gets it, and a lease table renamed in the configuration is
    /// created under its new name.
    pub async fn migrate(&self) -> Result<()> {
        self.bounded(migrations::leases::create(&self.db, &self.table))
            .await?;
        self.bounded(migrations::leases::add_retry_columns(&self.db, &self.table))
            .await?;
        self.bounded(migrations::leases::add_run_control_columns(
            &self.db,
            &self.table,
        ))
        .await
    }

    fn now_ms(&self) -> Expr {
        self.db.now_ms_expr()
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
            self.bounded(self.db.execute(&stmt)).await?;
        }
        Ok(())
    }

    /// Try to take the lease of `job_name` for `ttl` (from the database's now). `Ok(None)`
    /// means somebody else holds it (or, for a tick, already ran that tick, or the tick is
    /// not due yet by the database's clock).
    pub async fn claim(
        &self,
        job_name: &str,
        holder: &str,
        kind: ClaimKind,
        ttl: Duration,
    ) -> Result<Option<Claimed>> {
        let mut stmt = self.claim_statement(job_name, holder, kind, ttl);
        if self.db.update_returning() {
            // One statement: the claim and what it gave us.
            stmt.returning(ReturningClause::Exprs(vec![
                Expr::col(Col::Token),
                self.now_ms(),
                Expr::col(Col::ExecutionId),
            ]));
            let Some(row) = self.bounded(self.db.fetch_optional(&stmt)).await? else {
                return Ok(None);
            };
            return Ok(Some(Claimed {
                lease: Lease {
                    job_name: job_name.to_owned(),
                    holder: holder.to_owned(),
                    token: row.i64_at(0)?,
                },
                db_now: Some(from_millis(row.i64_at(1)?)),
                previous_unreleased: row.opt_i64_at(2)?.is_some(),
            }));
        }
        if self.bounded(self.db.execute(&stmt)).await? != 1 {
            return Ok(None);
        }
        // MySQL has no UPDATE ... RETURNING: read the token back. If that fails the claim is
        // undone, so a tick is never lost to a claim nobody acts on.
        let read = Query::select()
            .column(Col::Token)
            .expr_as(self.now_ms(), Alias::new("db_now_ms"))
            .column(Col::ExecutionId)
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::Holder).eq(holder))
            .to_owned();
        match self.bounded(self.db.fetch_optional(&read)).await {
            Ok(Some(row)) => Ok(Some(Claimed {
                lease: Lease {
                    job_name: job_name.to_owned(),
                    holder: holder.to_owned(),
                    token: row.i64("token")?,
                },
                db_now: Some(from_millis(row.i64("db_now_ms")?)),
                previous_unreleased: row.opt_i64("execution_id")?.is_some(),
            })),
            Ok(None) => Ok(None),
            Err(e) => {
                let undo = self.unclaim_statement(job_name, holder, None, kind.tick(), false);
                if let Err(undo_error) = self.bounded(self.db.execute(&undo)).await {
                    tracing::warn!(job = job_name, error = %undo_error, "could not undo a claim; it lapses after its TTL");
                }
                Err(e)
            }
        }
    }

    /// Note the execution a lease is running (for operators reading the table).
    pub async fn set_execution(&self, lease: &Lease, execution_id: i64) -> Result<()> {
        let stmt = Query::update()
            .table(self.table.clone())
            .value(Col::ExecutionId, execution_id)
            .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
            .and_where(Expr::col(Col::Token).eq(lease.token))
            .to_owned();
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }

    /// Extend a held lease to the database's now + `ttl`. `Ok(false)` means it was lost (it
    /// lapsed and somebody else claimed it).
    pub async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let stmt = Query::update()
            .table(self.table.clone())
            .value(Col::ExpiresAtMs, self.now_ms().add(ttl_ms(ttl)))
            .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
            .and_where(Expr::col(Col::Holder).eq(lease.holder.as_str()))
            .and_where(Expr::col(Col::Token).eq(lease.token))
            .to_owned();
        if self.bounded(self.db.execute(&stmt)).await? == 1 {
            return Ok(true);
        }
        // MySQL counts changed rows, not matched ones: an identical value reports 0.
        self.holds(lease).await
    }

    /// Whether `lease` is still the current one.
    pub async fn holds(&self, lease: &Lease) -> Result<bool> {
        let stmt = Query::select()
            .column(Col::Token)
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
            .and_where(Expr::col(Col::Holder).eq(lease.holder.as_str()))
            .and_where(Expr::col(Col::Token).eq(lease.token))
            .to_owned();
        Ok(self.bounded(self.db.fetch_optional(&stmt)).await?.is_some())
    }

    /// Give a lease back so another replica (or a manual trigger) can take it at once. The
    /// caller says that no run of the job it knows of is left open (its run's end is
    /// recorded, or there was no history to write); otherwise use
    /// [`release_unclean`](Self::release_unclean).
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        let stmt = self.unclaim_statement(
            &lease.job_name,
            &lease.holder,
            Some(lease.token),
            None,
            true,
        );
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }

    /// Give a lease back whose run may be left open (its end could not be written, or its
    /// start was sent but not confirmed): the next holder closes it as abandoned.
    pub async fn release_unclean(&self, lease: &Lease) -> Result<()> {
        let stmt = self.unclaim_statement(
            &lease.job_name,
            &lease.holder,
            Some(lease.token),
            None,
            false,
        );
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }

    /// Give a lease back together with its tick: the run of `tick` could not start, so the
    /// tick is claimable again by any replica. Its start row may have been written without
    /// the answer reaching us, so the next holder looks for it (as after
    /// [`release_unclean`](Self::release_unclean)).
    pub async fn release_tick(&self, lease: &Lease, tick: DateTime<Utc>) -> Result<()> {
        let stmt = self.unclaim_statement(
            &lease.job_name,
            &lease.holder,
            Some(lease.token),
            Some(tick),
            false,
        );
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }

    /// Whether anybody holds the lease of `job_name` now, by the database's clock.
    pub async fn is_held(&self, job_name: &str) -> Result<bool> {
        let stmt = Query::select()
            .column(Col::JobName)
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::ExpiresAtMs).gt(self.now_ms()))
            .to_owned();
        Ok(self.bounded(self.db.fetch_optional(&stmt)).await?.is_some())
    }
}
