//! The one batched-delete mechanism every built-in cleanup uses.
//!
//! A cleanup of a million rows must not hold the write lock for seconds (SQLite has one
//! writer; on PostgreSQL and MySQL a huge DELETE bloats locks and replication), yet it should
//! cost about as much as one plain `DELETE`. [`BatchedDelete`] deletes in bounded batches:
//!
//! - each batch is **one statement** that finds its rows by walking an index (the time column
//!   for expiry cleanups) in order, with a `LIMIT`, and deletes them by their physical address
//!   where the database has one, so it never scans the table;
//! - the batch size **adapts** so each statement takes about
//!   [`Batching::target_statement_ms`] (by default 10 ms on SQLite, 20 ms elsewhere): it
//!   doubles at most per batch while statements are faster than the target, and shrinks at
//!   once, in proportion, when one is slower;
//! - between batches it **pauses** so the host's own writes (logins, token refreshes) get the
//!   lock: at least [`Batching::pause_ms`], and on SQLite long enough that statements take at
//!   most a quarter of the time ([`Batching::lock_share_percent`]). SQLite admits one writer
//!   at a time and a waiting writer retries after growing sleeps, so short gaps starve the
//!   host's inserts; the cleanup is slower for it, but logins do not wait behind it;
//! - on SQLite the run uses a connection of its own with a large page cache that does not
//!   checkpoint inside its commits
//!   ([`Database::bulk_connection`](barycenter_jobs_core::Database::bulk_connection)); it
//!   checkpoints the WAL itself (passively, without blocking anybody) during the pause after
//!   each statement (or once its statements have held the lock for
//!   [`Batching::checkpoint_every_ms`] since the last one), and
//!   holds a read snapshot for the whole run, let go only during those checkpoints, so the
//!   automatic checkpoint after a host commit never copies and syncs pages inside the host's
//!   insert (on the benchmark, before the snapshot was held: insert p50 26 ms and p99 117 ms
//!   with a checkpoint every 16 batches; 8 ms and 49 to 54 ms with the snapshot held from each
//!   statement to the next checkpoint; 1.3 ms and 36 to 47 ms with it held throughout). The
//!   checkpoints are most of what the cleanup costs the database beside its statements (two
//!   syncs each, and a page that several statements changed copied every time); checkpointing
//!   less often did not reliably cut that on the bench (see [`Batching::checkpoint_every_ms`]);
//! - on PostgreSQL 14 and later it first **walks the heap** in ranges of pages (a TID range
//!   scan, `ctid >= '(b,0)' AND ctid < '(b+n,0)'`), so it reads the table in order as one plain
//!   `DELETE` does, instead of fetching each row at a random place by the index; PostgreSQL
//!   leaves index entries to vacuum, so a range of pages is all a batch touches. The range
//!   adapts to the target like the batch size does;
//! - a filter with a subquery over the whole table (the rotated refresh tokens: revoked rows
//!   that another row names as its parent) is **read once**: one `SELECT key ... WHERE
//!   <filter> ORDER BY key` finds the rows ([`BatchedDelete::keys_first`]), and the batches
//!   delete them by key, each re-checking the row's own part of the filter. A per-batch
//!   subquery would read the whole table again for every batch (or, in a heap walk, for every
//!   range of pages), so the pass would cost batches × table instead of table;
//! - index-ordered batches stop when one deletes nothing, so rows that match while they run are
//!   taken too; the heap walk goes on to the pages added while it ran, and leaves a row that
//!   appears behind it (in free space vacuum found) for the next run rather than follow it
//!   with an index pass that would step over every index entry the walk left for vacuum;
//! - `records_processed` is the exact sum of the rows each statement deleted. Each
//!   statement's count is also reported to the run as soon as the statement has committed
//!   ([`JobContext::report_processed`]), so a run that fails, times out or is cancelled
//!   half-way is recorded with the exact number of rows it did delete.
//!
//! # The statements
//!
//! Each statement is written by its backend's module in the core
//! ([`Backend::batch_delete`], [`Backend::heap_range_delete`]), beside the rest of what is
//! particular to that database:
//!
//! | backend | statement |
//! |---|---|
//! | SQLite | `DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE <filter> ORDER BY <order> LIMIT n)` |
//! | PostgreSQL ≥ 14, heap walk | `DELETE FROM t WHERE ctid >= CAST(p AS tid) AND ctid < CAST(q AS tid) AND <filter>` |
//! | PostgreSQL | `DELETE FROM t WHERE ctid IN (SELECT ctid FROM t WHERE <filter> ORDER BY <order> LIMIT n) AND <filter>` |
//! | MySQL / MariaDB | `DELETE FROM t WHERE <filter> ORDER BY <order> LIMIT n` |
//! | MySQL, filter reading `t` itself | `DELETE FROM t WHERE key IN (SELECT key FROM (SELECT key FROM t WHERE <filter> ORDER BY <order> LIMIT n) AS batch)` |
//!
//! On SQLite the subquery walks the index of `<order>` and the outer DELETE seeks each rowid;
//! writers are serialised, so nothing can change between the two. On PostgreSQL the `ctid`
//! list becomes a TID scan (a key list would be a hash join over the whole table); the filter
//! is repeated on the outer DELETE so a row updated concurrently (a session extended between
//! the subquery and the delete) is re-checked on its new version and kept. MySQL deletes with
//! `ORDER BY ... LIMIT` directly; it cannot read the table it deletes from in a subquery
//! (error 1093), so a filter that does goes through a materialised derived table.
//!
//! # Cancellation
//!
//! [`BatchedDelete::run`] checks the job's cancellation token before every batch and during
//! every pause. A cancelled run stops between two statements (every batch is its own committed
//! statement, so nothing is half done) and returns [`JobError::Cancelled`]; the scheduler
//! records the run as cancelled. The number of rows deleted until then is logged at `info`
//! level and was already reported to the run batch by batch
//! ([`JobContext::processed_so_far`]), and the next run finishes the work.

use std::time::{Duration, Instant};

use barycenter_jobs_core::{
    Backend, BulkConnection, DeleteBatch, Identifier, JobContext, JobError,
};
use sea_query::{Condition, DeleteStatement, Expr, Order, Query, Value};
use serde::{Deserialize, Serialize};

/// Batching settings shared by the four cleanups (`[batch]` in [`BuiltinConfig`]).
///
/// ```
/// use barycenter_jobs_builtin::Batching;
///
/// let b: Batching = toml::from_str("target_statement_ms = 15\npause_ms = 2").unwrap();
/// assert_eq!(b.target_statement_ms, Some(15));
/// assert_eq!(b.initial_batch_size, Batching::default().initial_batch_size);
/// ```
///
/// [`BuiltinConfig`]: crate::BuiltinConfig
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Batching {
    /// Rows in the first batch (default 1,000).
    pub initial_batch_size: u64,
    /// Smallest batch (default 100): a slow database does not make the cleanup crawl row by
    /// row.
    pub min_batch_size: u64,
    /// Largest batch (default 100,000).
    pub max_batch_size: u64,
    /// How long one DELETE statement should take, in milliseconds. The batch size follows
    /// from the measured speed of the previous statements. Unset (the default) means 10 on
    /// SQLite and 20 elsewhere: a SQLite statement holds the database's only write lock, so a
    /// host insert that arrives during it waits for its end (on the cleanup benchmark, insert
    /// p99 26 ms with 10 ms statements against 36 to 47 ms with 20 ms ones, for a run about 5%
    /// longer); PostgreSQL and MySQL lock rows, and there fewer, longer statements are faster.
    pub target_statement_ms: Option<u64>,
    /// Shortest pause between two batches, in milliseconds, during which the host's writes get
    /// the lock (default 2). `0` still yields to the runtime.
    pub pause_ms: u64,
    /// Largest share of the run, in percent, spent inside DELETE statements; the pause after
    /// each statement is stretched to keep to it. Unset (the default) means 25 on SQLite and
    /// 100 elsewhere: SQLite has one writer at a time, and a host insert that finds it busy
    /// sleeps in growing steps (1, 2, 5, 10 ms ...), so it needs gaps longer than a step to get
    /// in; PostgreSQL and MySQL lock rows, so deleting expired rows does not hold up inserts.
    pub lock_share_percent: Option<u8>,
    /// On SQLite, how long the statements may hold the write lock in total, in milliseconds,
    /// before the WAL is copied into the database file (a checkpoint, during the pause after
    /// a statement). Unset (the default) means 0: a checkpoint after every statement. A
    /// longer interval makes fewer checkpoints, each copying once a page that several
    /// statements changed, but the WAL then grows (the host's lookups keep it from starting
    /// over) and the statements slow down reading their pages from it. On the cleanup bench
    /// (1,000,000 rows) 100 ms gave 2.57x against 4.67x one DELETE in lock held with
    /// checkpoints on a loaded machine, and 2.87x against 2.77x, insert p99 141 against
    /// 41 ms and a WAL of 385 MiB against 21 MiB on a quieter one; 500 ms and 2,000 ms
    /// grew the WAL to 300 to 680 MiB, and 2,000 ms gave an insert p99 of 978 ms. No effect
    /// elsewhere.
    pub checkpoint_every_ms: Option<u64>,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            initial_batch_size: 1_000,
            min_batch_size: 100,
            max_batch_size: 100_000,
            target_statement_ms: None,
            pause_ms: 2,
            lock_share_percent: None,
            checkpoint_every_ms: None,
        }
    }
}

/// Largest batch a cleanup deletes in one statement (`max_batch_size` and the others).
pub const MAX_BATCH_SIZE: u64 = 1_000_000;
/// Longest pause or statement-time target, in milliseconds (a minute).
pub const MAX_BATCH_MS: u64 = 60_000;

impl Batching {
    /// Check the sizes and times against their bounds (batch sizes up to
    /// [`MAX_BATCH_SIZE`], pauses and targets up to [`MAX_BATCH_MS`], checkpoints up to an
    /// hour, the lock share 1 to 100 %); [`configure`](crate::configure) calls it, so a
    /// value that would only fail at the first run (a `LIMIT` past what the database binds)
    /// is refused with its key when the configuration is read.
    ///
    /// ```
    /// use barycenter_jobs_builtin::{BuiltinConfig, configure};
    /// use barycenter_jobs_core::{Error, Registry};
    ///
    /// let config: BuiltinConfig = toml::from_str("[batch]\nmax_batch_size = 0").unwrap();
    /// let Err(err) = configure(Registry::builder().with_inventory(), &config) else {
    ///     panic!("a batch size of 0 is refused");
    /// };
    /// assert!(matches!(err, Error::OutOfBounds { ref key, .. } if key == "batch.max_batch_size"));
    /// ```
    pub fn validate(&self) -> Result<(), barycenter_jobs_core::Error> {
        use barycenter_jobs_core::scheduler::bounds::check;
        check(
            "batch.initial_batch_size",
            self.initial_batch_size,
            1,
            MAX_BATCH_SIZE,
        )?;
        check(
            "batch.min_batch_size",
            self.min_batch_size,
            1,
            MAX_BATCH_SIZE,
        )?;
        check(
            "batch.max_batch_size",
            self.max_batch_size,
            1,
            MAX_BATCH_SIZE,
        )?;
        if let Some(ms) = self.target_statement_ms {
            check("batch.target_statement_ms", ms, 1, MAX_BATCH_MS)?;
        }
        check("batch.pause_ms", self.pause_ms, 0, MAX_BATCH_MS)?;
        if let Some(ms) = self.checkpoint_every_ms {
            check("batch.checkpoint_every_ms", ms, 1, 3_600_000)?;
        }
        if let Some(share) = self.lock_share_percent {
            check("batch.lock_share_percent", share.into(), 1, 100)?;
        }
        Ok(())
    }

    fn normalised(&self) -> Batching {
        let min = self.min_batch_size.max(1);
        let max = self.max_batch_size.max(min);
        Batching {
            initial_batch_size: self.initial_batch_size.clamp(min, max),
            min_batch_size: min,
            max_batch_size: max,
            target_statement_ms: self.target_statement_ms.map(|ms| ms.max(1)),
            pause_ms: self.pause_ms,
            lock_share_percent: self.lock_share_percent,
            checkpoint_every_ms: self.checkpoint_every_ms,
        }
    }

    /// Statement time to accumulate between two checkpoints.
    fn checkpoint_every(&self) -> Duration {
        Duration::from_millis(
            self.checkpoint_every_ms
                .unwrap_or(DEFAULT_CHECKPOINT_EVERY_MS),
        )
    }

    /// How long one statement should take on `backend`, in milliseconds.
    fn target_ms(&self, backend: Backend) -> u64 {
        self.target_statement_ms
            .unwrap_or(if backend.single_writer() { 10 } else { 20 })
            .max(1)
    }

    /// The pause after a statement that took `elapsed` on `backend`.
    fn pause_after(&self, backend: Backend, elapsed: Duration) -> Duration {
        let share = self
            .lock_share_percent
            .unwrap_or(if backend.single_writer() { 25 } else { 100 })
            .clamp(1, 100);
        let stretch = elapsed.mul_f64(f64::from(100 - share) / f64::from(share));
        stretch.max(Duration::from_millis(self.pause_ms))
    }

    /// The size of the batch after one that deleted `deleted` of `size` requested rows in
    /// `elapsed`.
    fn next_size(&self, backend: Backend, size: u64, deleted: u64, elapsed: Duration) -> u64 {
        resize(size, deleted >= size, elapsed, self.target_ms(backend))
            .clamp(self.min_batch_size, self.max_batch_size)
    }
}

/// The next amount of work (rows, or heap pages) after `size` took `elapsed`: shrink in
/// proportion at once when slower than the target, grow towards it (at most doubling) when
/// faster and the batch was `full`; a partial batch says little about the speed of a full one.
fn resize(size: u64, full: bool, elapsed: Duration, target_ms: u64) -> u64 {
    let target = Duration::from_millis(target_ms).as_secs_f64();
    let took = elapsed.as_secs_f64().max(1e-6);
    if took > target {
        (size as f64 * target / took) as u64
    } else if full {
        (size as f64 * (target / took).min(2.0)) as u64
    } else {
        size
    }
}

/// [`Batching::checkpoint_every_ms`] when unset.
const DEFAULT_CHECKPOINT_EVERY_MS: u64 = 0;

/// Heap pages in the first range of a PostgreSQL heap walk, and the bounds of the range.
const FIRST_RANGE_PAGES: u64 = 32;
const MAX_RANGE_PAGES: u64 = 1 << 20;
/// Most keys one statement of a [`BatchedDelete::keys_first`] pass binds: well within
/// SQLite's 32,766 bound values and the 65,535 of PostgreSQL and MySQL.
const MAX_KEYS_PER_STATEMENT: u64 = 10_000;
/// What one [`BatchedDelete::run`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteReport {
    /// Rows deleted (the sum of the rows affected by every statement).
    pub deleted: u64,
    /// Statements executed, including the final one that found nothing.
    pub statements: u64,
    /// The longest time one statement held its locks (see
    /// [`Executed::lock_held`](barycenter_jobs_core::Executed::lock_held)).
    pub longest_statement: Duration,
    /// The total time the statements held their locks.
    pub lock_held: Duration,
    /// The total time spent copying the WAL into the database file between batches (SQLite;
    /// zero elsewhere). The checkpoints hold no write lock, but they are work the cleanup
    /// adds to the database.
    pub checkpoints: Duration,
    /// The time spent reading which rows to delete, for a pass that finds them first
    /// ([`BatchedDelete::keys_first`]; zero otherwise). A read: it holds no write lock and
    /// is not one of [`statements`](Self::statements).
    pub selecting: Duration,
    /// Statement time since the last checkpoint (SQLite), while the run goes on.
    unflushed: Duration,
}

impl DeleteReport {
    /// The sum of two reports (two passes of one cleanup, say); the longest statement is the
    /// longer of the two.
    pub fn merge(self, other: DeleteReport) -> DeleteReport {
        DeleteReport {
            deleted: self.deleted + other.deleted,
            statements: self.statements + other.statements,
            longest_statement: self.longest_statement.max(other.longest_statement),
            lock_held: self.lock_held + other.lock_held,
            checkpoints: self.checkpoints + other.checkpoints,
            selecting: self.selecting + other.selecting,
            unflushed: Duration::ZERO,
        }
    }
}

/// Deletes the rows of one table that match a filter, in adaptive, index-ordered batches.
///
/// The filter is a sea-query [`Condition`] on the table; column references should be
/// qualified with the table (`Expr::col((table, column))`). See the [module docs](self) for
/// the statements each backend gets.
///
/// ```
/// use barycenter_jobs_builtin::BatchedDelete;
/// use barycenter_jobs_core::sea_query::{Cond, Expr, ExprTrait};
/// use barycenter_jobs_core::{Backend, Identifier};
///
/// let t = Identifier::new("sessions").unwrap();
/// let expires = Identifier::new("expires_at").unwrap();
/// let delete = BatchedDelete::new(
///     t.clone(),
///     Identifier::new("session_id").unwrap(),
///     expires.clone(),
///     Cond::all().add(Expr::col((t, expires)).lt(1_700_000_000_i64)),
/// );
/// let (sql, _) = delete
///     .statement(Backend::Sqlite, 500)
///     .build(barycenter_jobs_core::sea_query::SqliteQueryBuilder);
/// assert_eq!(
///     sql,
///     r#"DELETE FROM "sessions" WHERE "rowid" IN (SELECT "rowid" FROM "sessions" WHERE "sessions"."expires_at" < ? ORDER BY "sessions"."expires_at" ASC LIMIT ?)"#
/// );
/// ```
#[derive(Debug, Clone)]
pub struct BatchedDelete {
    batch: DeleteBatch,
    batching: Batching,
    /// Set by [`keys_first`](Self::keys_first): what each by-key batch re-checks.
    keys_first: Option<Condition>,
}

impl BatchedDelete {
    /// Delete rows of `table` matching `filter`, oldest `order_by` first. `key` is a unique
    /// column (the primary key); `order_by` should be indexed.
    pub fn new(
        table: Identifier,
        key: Identifier,
        order_by: Identifier,
        filter: impl Into<Condition>,
    ) -> Self {
        Self {
            batch: DeleteBatch::new(table, key, order_by, filter.into()),
            batching: Batching::default(),
            keys_first: None,
        }
    }

    /// Find the rows once, then delete them by key: one read, `SELECT key FROM t WHERE
    /// <filter> ORDER BY key`, and batches of `DELETE FROM t WHERE key IN (...) AND
    /// <recheck>` over the keys it returned, sized like the other batches.
    ///
    /// For a filter whose subquery reads the whole table (a self-join without an index on
    /// the joined column, such as the rotated refresh tokens'), which the database would
    /// evaluate again for every batch: read once, the pass costs one pass over the table
    /// plus a key lookup per row deleted. `recheck` is the part of the filter about the row
    /// itself (the rotated token's `revoked` flag), checked again when it is deleted, so a
    /// row that changed since the read is kept; the rest of the filter is judged once, at
    /// the read, as one plain `DELETE` judges it at its start. The keys are held in memory
    /// for the pass (for 100,000 rows of 40-character keys, about 10 MB).
    pub fn keys_first(mut self, recheck: impl Into<Condition>) -> Self {
        self.keys_first = Some(recheck.into());
        self
    }

    /// Declare that the filter has a subquery on the table being deleted from (MySQL then
    /// selects the batch through a derived table).
    pub fn reads_own_table(mut self) -> Self {
        self.batch.reads_own_table = true;
        self
    }

    /// Use these batching settings instead of the defaults.
    pub fn with_batching(mut self, batching: &Batching) -> Self {
        self.batching = batching.normalised();
        self
    }

    /// The table rows are deleted from.
    pub fn table(&self) -> &Identifier {
        &self.batch.table
    }

    /// The DELETE statement for one batch of at most `limit` rows on `backend`; each
    /// backend's module in the core writes its own ([`Backend::batch_delete`], and the
    /// [module docs](self) for the statements).
    pub fn statement(&self, backend: Backend, limit: u64) -> DeleteStatement {
        backend.batch_delete(&self.batch, limit)
    }

    /// The DELETE statement for the heap pages `from..to` of a table, where `backend` can walk
    /// its heap in ranges (PostgreSQL 14 and later), `None` elsewhere.
    pub fn range_statement(&self, backend: Backend, from: u64, to: u64) -> Option<DeleteStatement> {
        backend.heap_range_delete(&self.batch, from, to)
    }

    /// The pages of the table's heap when the database can walk it in ranges (PostgreSQL 14
    /// and later), `None` otherwise.
    async fn heap_pages(
        &self,
        backend: Backend,
        conn: &mut BulkConnection,
    ) -> Result<Option<u64>, JobError> {
        let Some(query) = backend.heap_pages_query(&self.batch.table) else {
            return Ok(None);
        };
        let Some(row) = conn.fetch_optional(&query).await? else {
            return Ok(None);
        };
        // 0 means: too old a server for range scans, a partitioned table (no heap of its
        // own: its rows are found by the index batches) or an empty one, which the index
        // batches also cost nothing on.
        let pages = u64::try_from(row.i64("pages")?).unwrap_or(0);
        Ok((pages > 0).then_some(pages))
    }

    /// How many rows [`run`](Self::run) would delete now: one `SELECT COUNT(*)` with the
    /// same filter, deleting nothing (the dry run of a cleanup).
    pub async fn count(&self, ctx: &JobContext) -> Result<u64, JobError> {
        let query = sea_query::Query::select()
            .expr_as(
                sea_query::Func::count(Expr::col(sea_query::Asterisk)),
                sea_query::Alias::new("n"),
            )
            .from(self.batch.table.clone())
            .cond_where(self.batch.filter.clone())
            .to_owned();
        let n = match ctx.db().fetch_optional(&query).await? {
            Some(row) => row.i64("n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Delete every matching row, batch after batch, until a batch deletes nothing.
    ///
    /// Every statement's deleted rows are added to the run's progress
    /// ([`JobContext::report_processed`]) right after it commits, including a final `0`, so
    /// the progress always equals the rows this run has removed, whatever ends it.
    ///
    /// Fails with [`JobError::Cancelled`] when the context is cancelled (between two
    /// batches), and with the database error of a failed statement (rows deleted by earlier
    /// batches stay deleted; the next run continues).
    pub async fn run(&self, ctx: &JobContext) -> Result<DeleteReport, JobError> {
        let db = ctx.db();
        let backend = db.backend();
        let batching = &self.batching;
        let mut report = DeleteReport::default();
        // One connection for the whole run: on SQLite it keeps the pages of one batch cached
        // for the next and checkpoints between batches rather than inside each commit.
        let mut conn = db.bulk_connection().await?;

        if let Some(recheck) = &self.keys_first {
            self.run_by_keys(ctx, &mut conn, recheck, &mut report)
                .await?;
        } else if let Some(mut pages) = self.heap_pages(backend, &mut conn).await? {
            // No index pass after the walk: its first batch would step over every index
            // entry the walk left for vacuum. Rows written meanwhile go to new pages at the
            // end, which the walk takes too; anything else waits for the next run.
            let mut from = 0;
            let mut range = FIRST_RANGE_PAGES;
            while from < pages {
                let to = from.saturating_add(range);
                let Some(stmt) = self.range_statement(backend, from, to) else {
                    break; // heap_pages says the backend walks heaps; defensive
                };
                let (_, elapsed) = self.batch(ctx, &mut conn, &stmt, &mut report).await?;
                from = to;
                range = resize(range, true, elapsed, batching.target_ms(backend))
                    .clamp(1, MAX_RANGE_PAGES);
                if from >= pages {
                    pages = self.heap_pages(backend, &mut conn).await?.unwrap_or(0);
                }
            }
        } else {
            let mut size = batching.initial_batch_size;
            loop {
                let stmt = self.statement(backend, size);
                let (deleted, elapsed) = self.batch(ctx, &mut conn, &stmt, &mut report).await?;
                if deleted == 0 {
                    break;
                }
                size = batching.next_size(backend, size, deleted, elapsed);
            }
        }
        if report.unflushed > Duration::ZERO {
            // The statements since the last checkpoint: copied now and counted, rather than
            // by the uncounted last copy of `finish`.
            report.checkpoints += conn.checkpoint().await?;
            report.unflushed = Duration::ZERO;
        }
        conn.finish().await?;
        tracing::info!(
            table = %self.batch.table,
            deleted = report.deleted,
            statements = report.statements,
            longest_ms = report.longest_statement.as_millis() as u64,
            "table done"
        );
        Ok(report)
    }

    /// The [`keys_first`](Self::keys_first) pass: read the keys, then delete them in batches.
    async fn run_by_keys(
        &self,
        ctx: &JobContext,
        conn: &mut BulkConnection,
        recheck: &Condition,
        report: &mut DeleteReport,
    ) -> Result<(), JobError> {
        let keys = self.candidate_keys(ctx, report).await?;
        let backend = ctx.db().backend();
        let mut size = self.batching.initial_batch_size;
        let mut rest = &keys[..];
        while !rest.is_empty() {
            let n = size.min(MAX_KEYS_PER_STATEMENT).min(rest.len() as u64) as usize;
            let (chunk, after) = rest.split_at(n);
            rest = after;
            let stmt = self.key_statement(chunk, recheck);
            let (_, elapsed) = self.batch(ctx, conn, &stmt, report).await?;
            // The time follows the keys asked for, whether or not they were all still there.
            size = self.batching.next_size(backend, size, n as u64, elapsed);
        }
        Ok(())
    }

    /// `DELETE FROM t WHERE t.key IN (<keys>) AND <recheck>`: one batch of a
    /// [`keys_first`](Self::keys_first) pass, a key lookup per row and no subquery.
    fn key_statement(&self, keys: &[Value], recheck: &Condition) -> DeleteStatement {
        Query::delete()
            .from_table(self.batch.table.clone())
            .and_where(sea_query::ExprTrait::is_in(
                Expr::col((self.batch.table.clone(), self.batch.key.clone())),
                keys.iter().cloned(),
            ))
            .cond_where(recheck.clone())
            .to_owned()
    }

    /// `SELECT key FROM t WHERE <filter> ORDER BY key`, on the pool (a read: on SQLite it
    /// takes no write lock), as bindable values.
    async fn candidate_keys(
        &self,
        ctx: &JobContext,
        report: &mut DeleteReport,
    ) -> Result<Vec<Value>, JobError> {
        let key = (self.batch.table.clone(), self.batch.key.clone());
        let query = Query::select()
            .column(key.clone())
            .from(self.batch.table.clone())
            .cond_where(self.batch.filter.clone())
            .order_by(key, Order::Asc)
            .to_owned();
        let began = Instant::now();
        let rows = ctx.db().fetch_all(&query).await?;
        report.selecting += began.elapsed();
        let name = self.batch.key.as_str();
        rows.iter()
            .map(|row| match row.opt_string(name) {
                Ok(Some(text)) => Ok(Value::from(text)),
                // An integer key (the column is the primary key: never NULL).
                _ => Ok(Value::from(row.i64(name)?)),
            })
            .collect()
    }

    /// Run one batch and the pause after it; returns the rows it deleted and how long it held
    /// its locks.
    async fn batch(
        &self,
        ctx: &JobContext,
        conn: &mut BulkConnection,
        stmt: &DeleteStatement,
        report: &mut DeleteReport,
    ) -> Result<(u64, Duration), JobError> {
        if ctx.is_cancelled() {
            return Err(self.cancelled(report));
        }
        let executed = conn.execute(stmt).await?;
        let ended = Instant::now();
        // Sizes and pauses follow the time the lock was held, not time spent queueing for it
        // behind the host's writes.
        let (deleted, elapsed) = (executed.rows, executed.lock_held);
        // The statement has committed: report it before anything else can fail or be
        // cancelled, so the history of a cut-short run counts exactly these rows.
        ctx.report_processed(deleted);
        report.deleted += deleted;
        report.statements += 1;
        report.longest_statement = report.longest_statement.max(elapsed);
        report.lock_held += elapsed;
        if deleted == 0 {
            // The last, empty batch of every pass says nothing the pass's end does not.
            tracing::trace!(table = %self.batch.table, "empty batch");
            return Ok((0, elapsed));
        }
        tracing::info!(
            table = %self.batch.table,
            deleted,
            lock_ms = elapsed.as_millis() as u64,
            "batch deleted"
        );
        // The pause runs from the end of the statement; the checkpoint, which does not hold
        // the write lock, happens during it.
        let resume = tokio::time::Instant::from_std(ended)
            + self.batching.pause_after(ctx.db().backend(), elapsed);
        report.unflushed += elapsed;
        if report.unflushed >= self.batching.checkpoint_every() {
            report.checkpoints += conn.checkpoint().await?;
            report.unflushed = Duration::ZERO;
        }
        tokio::select! {
            biased;
            _ = ctx.cancellation().cancelled() => return Err(self.cancelled(report)),
            _ = tokio::time::sleep_until(resume) => {}
        }
        Ok((deleted, elapsed))
    }

    fn cancelled(&self, report: &DeleteReport) -> JobError {
        tracing::info!(
            table = %self.batch.table,
            deleted = report.deleted,
            "cleanup cancelled between batches"
        );
        JobError::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use sea_query::Cond;

    use super::*;

    #[test]
    fn batch_size_adapts_towards_the_target() {
        use Backend::{Postgres, Sqlite};
        let b = Batching::default().normalised();
        let ms = Duration::from_millis;
        for (backend, size, deleted, took, next, why) in [
            (
                Postgres,
                1_000,
                1_000,
                ms(1),
                2_000,
                "fast, full batch: doubles at most",
            ),
            (
                Postgres,
                1_000,
                1_000,
                Duration::from_micros(13_334),
                1_499,
                "fast enough to reach the target by 1.5x",
            ),
            (
                Postgres,
                1_000,
                1_000,
                ms(40),
                500,
                "too slow: shrinks in proportion",
            ),
            (Sqlite, 1_000, 1_000, ms(20), 500, "SQLite aims at 10 ms"),
            (
                Postgres,
                1_000,
                10,
                ms(1),
                1_000,
                "partial batch: unchanged",
            ),
            (Postgres, 150, 150, ms(1_000), 100, "lower bound"),
            (Postgres, 90_000, 90_000, ms(1), 100_000, "upper bound"),
        ] {
            assert_eq!(b.next_size(backend, size, deleted, took), next, "{why}");
        }
    }

    fn delete() -> BatchedDelete {
        let t = Identifier::new("sessions").unwrap();
        let e = Identifier::new("expires_at").unwrap();
        BatchedDelete::new(
            t.clone(),
            Identifier::new("session_id").unwrap(),
            e.clone(),
            Cond::all().add(sea_query::ExprTrait::lt(
                Expr::col((t.clone(), e.clone())),
                5_i64,
            )),
        )
    }

    #[test]
    fn statements_per_backend() {
        let pg = delete()
            .statement(Backend::Postgres, 10)
            .build(sea_query::PostgresQueryBuilder)
            .0;
        assert_eq!(
            pg,
            r#"DELETE FROM "sessions" WHERE "ctid" IN (SELECT "ctid" FROM "sessions" WHERE "sessions"."expires_at" < $1 ORDER BY "sessions"."expires_at" ASC LIMIT $2) AND "sessions"."expires_at" < $3"#
        );
        let my = delete()
            .statement(Backend::MySql, 10)
            .build(sea_query::MysqlQueryBuilder)
            .0;
        assert_eq!(
            my,
            "DELETE FROM `sessions` WHERE `sessions`.`expires_at` < ? ORDER BY `sessions`.`expires_at` ASC LIMIT ?"
        );
        let my = delete()
            .reads_own_table()
            .statement(Backend::MySql, 10)
            .build(sea_query::MysqlQueryBuilder)
            .0;
        assert_eq!(
            my,
            "DELETE FROM `sessions` WHERE `session_id` IN (SELECT `batch`.`session_id` FROM (SELECT `session_id` FROM `sessions` WHERE `sessions`.`expires_at` < ? ORDER BY `sessions`.`expires_at` ASC LIMIT ?) AS `batch`)"
        );
    }

    #[test]
    fn keys_first_batches_delete_by_key_without_the_subquery() {
        use sea_query::ExprTrait as _;
        let t = Identifier::new("refresh_tokens").unwrap();
        let key = Identifier::new("token").unwrap();
        let revoked =
            Cond::all().add(Expr::col((t.clone(), Identifier::new("revoked").unwrap())).ne(0));
        let d = BatchedDelete::new(t.clone(), key.clone(), key, revoked.clone())
            .keys_first(revoked.clone());
        let keys = [Value::from("a"), Value::from("b")];
        for (sql, want) in [
            (
                d.key_statement(&keys, &revoked)
                    .build(sea_query::SqliteQueryBuilder)
                    .0,
                r#"DELETE FROM "refresh_tokens" WHERE "refresh_tokens"."token" IN (?, ?) AND "refresh_tokens"."revoked" <> ?"#,
            ),
            (
                d.key_statement(&keys, &revoked)
                    .build(sea_query::PostgresQueryBuilder)
                    .0,
                r#"DELETE FROM "refresh_tokens" WHERE "refresh_tokens"."token" IN ($1, $2) AND "refresh_tokens"."revoked" <> $3"#,
            ),
            (
                d.key_statement(&keys, &revoked)
                    .build(sea_query::MysqlQueryBuilder)
                    .0,
                "DELETE FROM `refresh_tokens` WHERE `refresh_tokens`.`token` IN (?, ?) AND `refresh_tokens`.`revoked` <> ?",
            ),
        ] {
            assert_eq!(sql, want);
        }
    }

    #[test]
    fn heap_ranges_on_postgres() {
        let (sql, values) = delete()
            .range_statement(Backend::Postgres, 64, 128)
            .unwrap()
            .build(sea_query::PostgresQueryBuilder);
        assert_eq!(
            sql,
            r#"DELETE FROM "sessions" WHERE "ctid" >= CAST($1 AS tid) AND "ctid" < CAST($2 AS tid) AND "sessions"."expires_at" < $3"#
        );
        assert_eq!(
            values.0[..2],
            [Value::from("(64,0)"), Value::from("(128,0)")]
        );
    }

    #[test]
    fn pauses_keep_the_lock_share() {
        let b = Batching::default();
        let ms = Duration::from_millis;
        // SQLite: at most a quarter of the time inside statements.
        assert_eq!(b.pause_after(Backend::Sqlite, ms(20)), ms(60));
        // Row-locking databases: just the minimum pause.
        assert_eq!(b.pause_after(Backend::Postgres, ms(20)), ms(2));
        assert_eq!(b.pause_after(Backend::MySql, ms(20)), ms(2));
        let half = Batching {
            lock_share_percent: Some(50),
            ..Batching::default()
        };
        assert_eq!(half.pause_after(Backend::Postgres, ms(20)), ms(20));
        // Never below the minimum pause.
        assert_eq!(b.pause_after(Backend::Sqlite, Duration::ZERO), ms(2));
    }

    #[test]
    fn checkpoints_follow_the_statement_time() {
        assert_eq!(
            Batching::default().checkpoint_every(),
            Duration::ZERO,
            "after every statement"
        );
        let every: Batching = toml::from_str("checkpoint_every_ms = 100").unwrap();
        assert_eq!(every.checkpoint_every(), Duration::from_millis(100));
    }

    #[test]
    fn odd_settings_are_normalised() {
        let b = Batching {
            initial_batch_size: 0,
            min_batch_size: 0,
            max_batch_size: 0,
            target_statement_ms: Some(0),
            pause_ms: 0,
            lock_share_percent: Some(0),
            checkpoint_every_ms: Some(0),
        }
        .normalised();
        assert_eq!(
            (b.initial_batch_size, b.min_batch_size, b.max_batch_size),
            (1, 1, 1)
        );
        assert_eq!(b.target_statement_ms, Some(1));
        assert_eq!(b.target_ms(Backend::Sqlite), 1);
    }
}
