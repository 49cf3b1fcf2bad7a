//! The one definition of a cleanup job: [`Cleanup<K>`] is the [`Job`], and a
//! [`CleanupKind`] says what `K` deletes.
//!
//! Everything the four built-ins have in common lives here once: the job's identity from
//! the kind's constants, construction from the kind's configuration, the batching settings,
//! reading the cut-off clock once per run and taking the safety margin off it, running the
//! passes one after the other, and keeping the [`DeleteReport`] of the last run. A kind is
//! only its validated table layout and the [`BatchedDelete`]s it wants for a cut-off.
//!
//! The same pattern serves a host's own cleanup of another table:
//!
//! ```
//! use barycenter_jobs_builtin::{BatchedDelete, Cleanup, CleanupKind, TimeFormat};
//! use barycenter_jobs_core::sea_query::{Cond, Expr, ExprTrait};
//! use barycenter_jobs_core::{Backend, Error, Identifier, Job};
//! use chrono::{DateTime, Duration, Utc};
//!
//! /// Authorization codes: deleted ten minutes after they were issued.
//! #[derive(Debug, Clone)]
//! struct AuthCodes {
//!     table: Identifier,
//! }
//!
//! impl CleanupKind for AuthCodes {
//!     const NAME: &'static str = "cleanup_auth_codes";
//!     const DESCRIPTION: &'static str = "Clean up old authorization codes";
//!     const SCHEDULE: &'static str = "0 */10 * * * *";
//!     type Config = String; // the table name
//!
//!     fn from_config(table: &String) -> Result<Self, Error> {
//!         Ok(Self { table: Identifier::new(table.as_str())? })
//!     }
//!
//!     fn keep_if_younger(&self) -> Duration {
//!         Duration::zero()
//!     }
//!
//!     fn passes(&self, _backend: Backend, now: DateTime<Utc>) -> Vec<BatchedDelete> {
//!         let issued = Identifier::new("issued_at").unwrap();
//!         let cutoff = TimeFormat::EpochSeconds.value(now - Duration::minutes(10));
//!         let filter = Cond::all().add(Expr::col((self.table.clone(), issued.clone())).lt(cutoff));
//!         let key = Identifier::new("code").unwrap();
//!         vec![BatchedDelete::new(self.table.clone(), key, issued, filter)]
//!     }
//! }
//!
//! let job = Cleanup::<AuthCodes>::new(&"auth_codes".to_owned())?;
//! assert_eq!(job.name(), "cleanup_auth_codes");
//! assert!(job.last_report().is_none(), "no run yet");
//! assert!(Cleanup::<AuthCodes>::new(&"auth codes".to_owned()).is_err());
//! # Ok::<(), Error>(())
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use barycenter_jobs_core::{
    Backend, DryRunOutput, Error, Job, JobContext, JobError, JobOutput, async_trait,
};
use chrono::{DateTime, Duration, Utc};

use crate::batch::{BatchedDelete, Batching, DeleteReport};
use crate::schema::{CheckedColumn, check_columns};
use crate::table::earlier;

/// What one cleanup deletes: its identity, its configuration, and the passes of one run.
///
/// A value of the kind is its configuration validated (table and column names checked,
/// durations converted), built once by [`from_config`](Self::from_config); the job,
/// [`Cleanup<K>`], holds it and asks it for the passes of every run.
pub trait CleanupKind: Clone + fmt::Debug + Send + Sync + 'static {
    /// The job's name.
    const NAME: &'static str;
    /// The job's one-line description.
    const DESCRIPTION: &'static str;
    /// The job's default schedule (cron, six fields).
    const SCHEDULE: &'static str;
    /// The host's settings for it; the default is Barycenter's schema.
    type Config: Default;

    /// Validate `config`; fails with [`Error::InvalidIdentifier`] on a table or column name
    /// that is not a plain SQL identifier.
    fn from_config(config: &Self::Config) -> Result<Self, Error>;

    /// The safety margin (`keep_if_younger_secs`) taken off the cut-off before any pass sees
    /// it.
    fn keep_if_younger(&self) -> Duration;

    /// The deletes of one run on `backend`, in the order they run, for the cut-off `now`
    /// (the run's cut-off clock with the margin already taken off). They get the job's
    /// batching settings before they run, so a kind leaves batching alone. The backend is
    /// there for comparisons that differ per database (RFC 3339 text, see
    /// [`TimeFormat::Iso8601Text`](crate::TimeFormat::Iso8601Text)).
    fn passes(&self, backend: Backend, now: DateTime<Utc>) -> Vec<BatchedDelete>;

    /// The columns the passes read, checked against the database's catalogue before every
    /// run and dry run: a missing table or column, or a time column whose type cannot hold
    /// its format, makes the run fail with a [`SchemaError`](crate::SchemaError) instead of
    /// deleting nothing (or the wrong rows) and succeeding. The default, none, checks
    /// nothing.
    fn columns(&self) -> Vec<CheckedColumn> {
        Vec::new()
    }
}

/// A cleanup job: deletes, in bounded batches, what its [`CleanupKind`] `K` selects.
///
/// Every run reads the cut-off clock ([`JobContext::cutoff_now`], the database's by default)
/// once, takes the margin off it, and runs the kind's passes in order against that same
/// instant, so the passes of one run agree with each other and the margin applies to all of
/// them alike. `records_processed` is the sum of the rows every pass deleted.
///
/// Clones share their [`last_report`](Self::last_report): keep one and register another, and
/// the one kept tells what the registered one's runs did.
pub struct Cleanup<K: CleanupKind> {
    kind: K,
    batching: Batching,
    last: Arc<Mutex<Option<DeleteReport>>>,
}

impl<K: CleanupKind> Cleanup<K> {
    /// The job's name.
    pub const NAME: &'static str = K::NAME;
    /// The job's description.
    pub const DESCRIPTION: &'static str = K::DESCRIPTION;
    /// The job's default schedule.
    pub const SCHEDULE: &'static str = K::SCHEDULE;

    /// A cleanup configured by `config`, with the default batching; fails with
    /// [`Error::InvalidIdentifier`] on a name that is not a plain SQL identifier.
    pub fn new(config: &K::Config) -> Result<Self, Error> {
        Ok(Self {
            kind: K::from_config(config)?,
            batching: Batching::default(),
            last: Arc::default(),
        })
    }

    /// Use these batching settings.
    pub fn with_batching(mut self, batching: &Batching) -> Self {
        self.batching = batching.clone();
        self
    }

    /// What the most recent run did, all its passes summed ([`DeleteReport::merge`]): rows
    /// deleted, statements, the longest statement and the total time locks were held.
    ///
    /// `None` before the first run, while a run is in progress, and after a run that failed
    /// or was cancelled (the rows such a run deleted are its `records_processed` in the
    /// execution history). Shared between clones of this job.
    pub fn last_report(&self) -> Option<DeleteReport> {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kind's [`columns`](CleanupKind::columns) against the catalogue, before anything
    /// is read or deleted. Checked on every run rather than once at start-up: a migration
    /// may change the table while the scheduler runs, and the check is one catalogue query
    /// per table. A refusal is logged here, with the job's name, besides being the run's
    /// recorded error.
    async fn check(&self, ctx: &JobContext) -> Result<(), JobError> {
        match check_columns(ctx.db(), &self.kind.columns()).await? {
            None => Ok(()),
            Some(refusal) => {
                tracing::error!(job = K::NAME, error = %refusal, "cleanup refused to run");
                Err(refusal.into())
            }
        }
    }

    fn set_last_report(&self, report: Option<DeleteReport>) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = report;
    }
}

impl<K: CleanupKind> Default for Cleanup<K> {
    fn default() -> Self {
        Self::new(&K::Config::default()).expect("the default names are valid identifiers")
    }
}

impl<K: CleanupKind> Clone for Cleanup<K> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind.clone(),
            batching: self.batching.clone(),
            last: Arc::clone(&self.last),
        }
    }
}

impl<K: CleanupKind> fmt::Debug for Cleanup<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cleanup")
            .field("job", &K::NAME)
            .field("kind", &self.kind)
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<K: CleanupKind> Job for Cleanup<K> {
    fn name(&self) -> &str {
        K::NAME
    }

    fn description(&self) -> &str {
        K::DESCRIPTION
    }

    fn schedule(&self) -> &str {
        K::SCHEDULE
    }

    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        // Cleared first, so a reader never takes an earlier run's report for this one's.
        self.set_last_report(None);
        self.check(&ctx).await?;
        // Read once (it fails with ClockSkew before anything is deleted), margin taken off
        // here rather than per pass: see the type's docs.
        let now = earlier(ctx.cutoff_now().await?, self.kind.keep_if_younger());
        let mut total = DeleteReport::default();
        for pass in self.kind.passes(ctx.db().backend(), now) {
            // One line per phase (what, each batch, the end) at `info`: the run's log, kept
            // with its execution, then says what this run did without the host's debug logs.
            tracing::info!(table = %pass.table(), cutoff = %now.to_rfc3339(), "deleting expired rows");
            total = total.merge(pass.with_batching(&self.batching).run(&ctx).await?);
        }
        tracing::info!(
            deleted = total.deleted,
            statements = total.statements,
            "cleanup done"
        );
        self.set_last_report(Some(total));
        Ok(JobOutput::processed(total.deleted))
    }

    /// Count what [`run`](Job::run) would delete now, deleting nothing: the same cut-off
    /// (read once, margin taken off) and the same passes, each a `SELECT COUNT(*)` with its
    /// delete's filter. A row two passes both match (a rotated refresh token that has also
    /// expired) is counted by each, so the figure is an upper bound of what a run deletes.
    async fn dry_run(&self, ctx: JobContext) -> Result<DryRunOutput, JobError> {
        self.check(&ctx).await?;
        let now = earlier(ctx.cutoff_now().await?, self.kind.keep_if_younger());
        let mut total = 0u64;
        for pass in self.kind.passes(ctx.db().backend(), now) {
            total = total.saturating_add(pass.count(&ctx).await?);
        }
        Ok(DryRunOutput::would_process(total))
    }
}

#[cfg(test)]
mod tests {
    use barycenter_jobs_core::{CancellationToken, Database, ManualClock, SharedClock, Trigger};
    use barycenter_jobs_test_support::{raw, sqlite};
    use chrono::TimeZone;

    use super::*;
    use crate::ChallengesCleanup;

    const NOW: i64 = 1_790_000_000;

    fn ctx(db: &Database) -> JobContext {
        let clock = ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap());
        JobContext::new(
            db.clone(),
            Trigger::Manual,
            0,
            Arc::new(clock) as SharedClock,
            CancellationToken::new(),
        )
    }

    /// The challenges cleanup has two passes, so its report is a sum; batches of two rows
    /// make the statement count exact.
    #[tokio::test]
    async fn last_report_sums_the_passes_of_the_last_run_and_is_shared_by_clones() {
        let t = sqlite().await;
        raw(
            &t.db,
            &format!(
                "CREATE TABLE webauthn_challenges (
                    challenge TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER);
                 -- expired: the first pass
                 INSERT INTO webauthn_challenges VALUES ('e1', {n}, {n} - 1), ('e2', {n}, {n} - 2),
                     ('e3', {n}, {n} - 3);
                 -- not expired but created over five minutes ago: the second pass
                 INSERT INTO webauthn_challenges VALUES ('o1', {n} - 400, {n} + 60),
                     ('o2', {n} - 301, NULL);
                 -- live
                 INSERT INTO webauthn_challenges VALUES ('live', {n} - 10, {n} + 60);",
                n = NOW
            ),
        )
        .await;
        let batching = Batching {
            initial_batch_size: 2,
            min_batch_size: 2,
            max_batch_size: 2,
            pause_ms: 0,
            ..Batching::default()
        };
        let kept = ChallengesCleanup::default().with_batching(&batching);
        let registered = kept.clone();
        assert_eq!(kept.last_report(), None, "no run yet");

        let out = registered.run(ctx(&t.db)).await.unwrap();
        let report = kept.last_report().expect("the clone's finished run");
        assert_eq!(out.records_processed, 5);
        assert_eq!(report.deleted, 5);
        // 2 + 1 + 0 rows in the expiry pass, 2 + 0 in the age pass.
        assert_eq!(report.statements, 5);
        assert!(report.longest_statement <= report.lock_held);

        // A run that fails leaves no report behind, not the previous run's.
        raw(&t.db, "DROP TABLE webauthn_challenges").await;
        assert!(registered.run(ctx(&t.db)).await.is_err());
        assert_eq!(kept.last_report(), None);
    }
}
