//! The database handle: one of the three sqlx pools, chosen at run time.
//!
//! sea-query picks its SQL dialect statically, so the run-time choice between SQLite,
//! PostgreSQL and MySQL/MariaDB is a `match` on [`Database`] here, and nowhere else: callers
//! hand over a sea-query statement and get rows affected, an id, or [`DbRow`]s back.

use std::str::FromStr;
use std::time::Duration;

use sea_query::{InsertStatement, SchemaStatementBuilder};
use sea_query_sqlx::SqlxBinder;
use sqlx::{AssertSqlSafe, Row as _};

use crate::error::{Error, Result};

#[cfg(feature = "mysql")]
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

/// How long SQLite waits for a lock before answering "database is locked".
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which SQL dialect a [`Database`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite (embedded, bundled).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

/// A connection pool to the host's database.
///
/// Cloning is cheap (the pools are reference counted). Build one from a URL with
/// [`Database::connect`], or wrap a pool the host already has with `From`:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use barycenter_jobs_core::{Backend, Database};
///
/// let dir = tempfile::tempdir()?;
/// let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
/// let db = Database::connect(&url).await?;
/// assert_eq!(db.backend(), Backend::Sqlite);
///
/// // or: let db = Database::from(my_existing_sqlx_pool);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Database {
    /// A SQLite pool.
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    /// A PostgreSQL pool.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    /// A MySQL / MariaDB pool.
    #[cfg(feature = "mysql")]
    MySql(MySqlPool),
}

#[cfg(feature = "sqlite")]
impl From<SqlitePool> for Database {
    fn from(pool: SqlitePool) -> Self {
        Database::Sqlite(pool)
    }
}

#[cfg(feature = "postgres")]
impl From<PgPool> for Database {
    fn from(pool: PgPool) -> Self {
        Database::Postgres(pool)
    }
}

#[cfg(feature = "mysql")]
impl From<MySqlPool> for Database {
    fn from(pool: MySqlPool) -> Self {
        Database::MySql(pool)
    }
}

impl Database {
    /// Open a pool from a URL: `sqlite://PATH` (created if missing, WAL mode, 5 s busy
    /// timeout), `postgres://...` or `mysql://...` (also used for MariaDB).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_max(url, 8).await
    }

    /// Like [`Database::connect`], with at most `max_connections` connections.
    pub async fn connect_with_max(url: &str, max_connections: u32) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .connect_with(options)
                    .await?;
                Ok(Database::Sqlite(pool))
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                Ok(Database::Postgres(pool))
            }
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => {
                let url = url.replacen("mariadb:", "mysql:", 1);
                let pool = MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await?;
                Ok(Database::MySql(pool))
            }
            _ => Err(Error::UnsupportedDatabase(redact_url(url))),
        }
    }

    /// The SQL dialect of this pool.
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            Database::MySql(_) => Backend::MySql,
        }
    }

    /// Close every connection of the pool.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => p.close().await,
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => p.close().await,
            #[cfg(feature = "mysql")]
            Database::MySql(p) => p.close().await,
        }
    }

    /// Run a query statement (UPDATE, DELETE, INSERT) and return the rows affected.
    pub async fn execute<S: SqlxBinder>(&self, stmt: &S) -> Result<u64> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => {
                let (sql, values) = stmt.build_sqlx(sea_query::SqliteQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => {
                let (sql, values) = stmt.build_sqlx(sea_query::PostgresQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
            #[cfg(feature = "mysql")]
            Database::MySql(p) => {
                let (sql, values) = stmt.build_sqlx(sea_query::MysqlQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
        })
    }

    /// Run an INSERT of one row and return the auto-increment id it got (column `id_column`).
    pub async fn insert_returning_id(
        &self,
        stmt: &InsertStatement,
        id_column: &str,
    ) -> Result<i64> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => {
                let (sql, values) = stmt.build_sqlx(sea_query::SqliteQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(p)
                    .await?
                    .last_insert_rowid()
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => {
                let mut stmt = stmt.clone();
                stmt.returning_col(sea_query::Alias::new(id_column));
                let (sql, values) = stmt.build_sqlx(sea_query::PostgresQueryBuilder);
                let row = sqlx::query_with(AssertSqlSafe(sql), values)
                    .fetch_one(p)
                    .await?;
                DbRow::Postgres(row).i64(id_column)?
            }
            #[cfg(feature = "mysql")]
            Database::MySql(p) => {
                let _ = id_column;
                let (sql, values) = stmt.build_sqlx(sea_query::MysqlQueryBuilder);
                let id = sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(p)
                    .await?
                    .last_insert_id();
                i64::try_from(id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?
            }
        })
    }

    /// Run a SELECT (or a statement with RETURNING) and return all rows.
    pub async fn fetch_all<S: SqlxBinder>(&self, stmt: &S) -> Result<Vec<DbRow>> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => {
                let (sql, values) = stmt.build_sqlx(sea_query::SqliteQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .fetch_all(p)
                    .await?
                    .into_iter()
                    .map(DbRow::Sqlite)
                    .collect()
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => {
                let (sql, values) = stmt.build_sqlx(sea_query::PostgresQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .fetch_all(p)
                    .await?
                    .into_iter()
                    .map(DbRow::Postgres)
                    .collect()
            }
            #[cfg(feature = "mysql")]
            Database::MySql(p) => {
                let (sql, values) = stmt.build_sqlx(sea_query::MysqlQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .fetch_all(p)
                    .await?
                    .into_iter()
                    .map(DbRow::MySql)
                    .collect()
            }
        })
    }

    /// Run a SELECT and return its first row, if any.
    pub async fn fetch_optional<S: SqlxBinder>(&self, stmt: &S) -> Result<Option<DbRow>> {
        Ok(self.fetch_all(stmt).await?.into_iter().next())
    }

    /// Run a schema statement (CREATE TABLE, ALTER TABLE, CREATE INDEX).
    pub async fn execute_schema<S: SchemaStatementBuilder>(&self, stmt: &S) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => {
                let sql = stmt.build(sea_query::SqliteQueryBuilder);
                sqlx::query(AssertSqlSafe(sql)).execute(p).await?;
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => {
                let sql = stmt.build(sea_query::PostgresQueryBuilder);
                sqlx::query(AssertSqlSafe(sql)).execute(p).await?;
            }
            #[cfg(feature = "mysql")]
            Database::MySql(p) => {
                let sql = stmt.build(sea_query::MysqlQueryBuilder);
                sqlx::query(AssertSqlSafe(sql)).execute(p).await?;
            }
        }
        Ok(())
    }

    /// A connection of its own for a long sequence of writes (a batched cleanup), set up so
    /// that the sequence is cheap and leaves the host's writers room between statements.
    ///
    /// On SQLite these are two connections taken out of the pool (closed when dropped, never
    /// returned with changed settings): a writer with a 64 MiB page cache that never
    /// checkpoints on its own, and a reader that holds a read snapshot from the first write to
    /// [`BulkConnection::finish`], let go only while [`BulkConnection::checkpoint`] runs.
    /// While that snapshot is held no checkpoint can copy newer WAL frames into the database
    /// file, so a host writer that gets the lock between two batches does not run that copy
    /// (and its syncs) inside its own automatic checkpoint; the cleanup's checkpoint does it
    /// instead, outside the lock. On the other backends it is a plain pooled connection.
    pub async fn bulk_connection(&self) -> Result<BulkConnection> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => {
                let mut writer = p.acquire().await?.detach();
                // Constant pragmas: nothing from outside goes into this SQL.
                sqlx::raw_sql("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0")
                    .execute(&mut writer)
                    .await?;
                BulkConnection::Sqlite(SqliteBulk {
                    writer,
                    pin: p.acquire().await?.detach(),
                    pinned: false,
                })
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => BulkConnection::Postgres(p.acquire().await?),
            #[cfg(feature = "mysql")]
            Database::MySql(p) => BulkConnection::MySql(p.acquire().await?),
        })
    }

    /// The database's own clock as an SQL expression: milliseconds since the Unix epoch, as a
    /// 64-bit integer. Leases, claims and (by default) cleanup cut-offs are judged by it, so
    /// that replicas whose clocks disagree still agree on what "now" is.
    ///
    /// | backend | expression |
    /// |---|---|
    /// | SQLite | `CAST(unixepoch('subsec') * 1000 AS INTEGER)` |
    /// | PostgreSQL | `CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)` |
    /// | MySQL / MariaDB | `CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)` |
    ///
    /// PostgreSQL's `clock_timestamp()` is the time of the statement, not of its transaction.
    pub fn now_ms_expr(&self) -> sea_query::Expr {
        // Constant SQL, nothing from outside goes in.
        sea_query::Expr::cust(match self.backend() {
            Backend::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            Backend::MySql => "CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)",
        })
    }

    /// The database's current time (see [`now_ms_expr`](Self::now_ms_expr)).
    pub async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        let row = self
            .fetch_optional(
                sea_query::Query::select()
                    .expr_as(self.now_ms_expr(), sea_query::Alias::new("now_ms")),
            )
            .await?
            .ok_or(Error::Database(sqlx::Error::RowNotFound))?;
        Ok(from_millis(row.i64("now_ms")?))
    }

    /// How far this process's `clock` is ahead of the database's (negative: behind),
    /// measured with one round trip and corrected for half of it.
    pub async fn clock_skew(&self, clock: &dyn crate::Clock) -> Result<chrono::Duration> {
        let before = clock.now();
        let db_now = self.now().await?;
        let after = clock.now();
        let local = before + (after - before) / 2;
        Ok(local - db_now)
    }

    /// The SQL text a statement renders to on this backend, for logs and tests
    /// (values are placeholders, never spliced in).
    pub fn render<S: SqlxBinder>(&self, stmt: &S) -> String {
        match self.backend() {
            Backend::Sqlite => stmt.build_sqlx(sea_query::SqliteQueryBuilder).0,
            Backend::Postgres => stmt.build_sqlx(sea_query::PostgresQueryBuilder).0,
            Backend::MySql => stmt.build_sqlx(sea_query::MysqlQueryBuilder).0,
        }
    }
}

/// A connection for a sequence of writes; see [`Database::bulk_connection`].
#[derive(Debug)]
#[non_exhaustive]
pub enum BulkConnection {
    /// SQLite connections outside the pool, tuned for bulk writes.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteBulk),
    /// A pooled PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    /// A pooled MySQL / MariaDB connection.
    #[cfg(feature = "mysql")]
    MySql(sqlx::pool::PoolConnection<sqlx::MySql>),
}

/// The SQLite side of a [`BulkConnection`]: the writing connection, and a second one that
/// holds a read snapshot from a write to the next checkpoint (see
/// [`Database::bulk_connection`]).
#[cfg(feature = "sqlite")]
#[derive(Debug)]
pub struct SqliteBulk {
    writer: sqlx::SqliteConnection,
    pin: sqlx::SqliteConnection,
    pinned: bool,
}

#[cfg(feature = "sqlite")]
impl SqliteBulk {
    /// Start holding the snapshot, if not already.
    async fn pin(&mut self) -> Result<()> {
        if !self.pinned {
            // A deferred transaction's first read starts the snapshot it keeps until COMMIT.
            sqlx::raw_sql("BEGIN; SELECT 1 FROM sqlite_master LIMIT 1")
                .execute(&mut self.pin)
                .await?;
            self.pinned = true;
        }
        Ok(())
    }

    /// The writer, with the snapshot held so no checkpoint copies what it writes next.
    async fn writer(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        self.pin().await?;
        Ok(&mut self.writer)
    }

    /// Let go of the snapshot and copy the WAL into the database file; returns the WAL's
    /// frame count and how many of them are now in the database file.
    async fn copy_back(&mut self) -> Result<(i64, i64)> {
        if self.pinned {
            sqlx::raw_sql("COMMIT").execute(&mut self.pin).await?;
            self.pinned = false;
        }
        let (_busy, log, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut self.writer)
                .await?;
        Ok((log, copied))
    }

    /// Run `stmt` in a transaction that takes the write lock first, so the time the lock is
    /// held can be told from the time spent waiting for it; returns the rows affected and when
    /// the lock was taken.
    async fn execute_locked<S: SqlxBinder>(
        &mut self,
        stmt: &S,
    ) -> Result<(u64, std::time::Instant)> {
        let (sql, values) = stmt.build_sqlx(sea_query::SqliteQueryBuilder);
        let writer = self.writer().await?;
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *writer)
            .await?;
        let locked = std::time::Instant::now();
        let done = match sqlx::query_with(AssertSqlSafe(sql), values)
            .execute(&mut *writer)
            .await
        {
            Ok(done) => sqlx::raw_sql("COMMIT")
                .execute(&mut *writer)
                .await
                .map(|_| done),
            Err(e) => Err(e),
        };
        match done {
            Ok(done) => Ok((done.rows_affected(), locked)),
            Err(e) => {
                // Best effort: the error that matters is the statement's.
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *writer).await;
                Err(e.into())
            }
        }
    }

    async fn checkpoint(&mut self) -> Result<()> {
        let mut last = self.copy_back().await?;
        // Host commits that landed during the copy are copied too (a few frames), so that
        // the snapshot taken next finds nothing left to copy. Such a snapshot leaves the next
        // writer free to start the WAL over, and the host's commits until the next batch find
        // nothing their automatic checkpoint may copy, so none of them syncs the WAL and the
        // database file (with this batch's pages still being written back) inside its commit.
        for _ in 0..3 {
            let now = self.copy_back().await?;
            if now == last {
                break;
            }
            last = now;
        }
        self.pin().await
    }
}

/// What [`BulkConnection::execute`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Executed {
    /// Rows affected.
    pub rows: u64,
    /// How long the statement held its locks. On SQLite, from the moment it had the
    /// database's write lock to the end of its commit (time spent waiting for a host writer
    /// to let go of the lock is not counted); elsewhere, the statement's whole time.
    pub lock_held: std::time::Duration,
}

impl BulkConnection {
    /// Run a query statement in a transaction of its own.
    pub async fn execute<S: SqlxBinder>(&mut self, stmt: &S) -> Result<Executed> {
        let started = std::time::Instant::now();
        let (rows, locked) = match self {
            #[cfg(feature = "sqlite")]
            BulkConnection::Sqlite(c) => c.execute_locked(stmt).await?,
            #[cfg(feature = "postgres")]
            BulkConnection::Postgres(c) => {
                let (sql, values) = stmt.build_sqlx(sea_query::PostgresQueryBuilder);
                let done = sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(&mut **c)
                    .await?;
                (done.rows_affected(), started)
            }
            #[cfg(feature = "mysql")]
            BulkConnection::MySql(c) => {
                let (sql, values) = stmt.build_sqlx(sea_query::MysqlQueryBuilder);
                let done = sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(&mut **c)
                    .await?;
                (done.rows_affected(), started)
            }
        };
        Ok(Executed {
            rows,
            lock_held: locked.elapsed(),
        })
    }

    /// Run a SELECT on this connection and return its first row, if any.
    pub async fn fetch_optional<S: SqlxBinder>(&mut self, stmt: &S) -> Result<Option<DbRow>> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            BulkConnection::Sqlite(c) => {
                let (sql, values) = stmt.build_sqlx(sea_query::SqliteQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .fetch_optional(&mut c.writer)
                    .await?
                    .map(DbRow::Sqlite)
            }
            #[cfg(feature = "postgres")]
            BulkConnection::Postgres(c) => {
                let (sql, values) = stmt.build_sqlx(sea_query::PostgresQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .fetch_optional(&mut **c)
                    .await?
                    .map(DbRow::Postgres)
            }
            #[cfg(feature = "mysql")]
            BulkConnection::MySql(c) => {
                let (sql, values) = stmt.build_sqlx(sea_query::MysqlQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql), values)
                    .fetch_optional(&mut **c)
                    .await?
                    .map(DbRow::MySql)
            }
        })
    }

    /// Move what the WAL holds into the database file without waiting for, or blocking,
    /// anybody (SQLite `wal_checkpoint(PASSIVE)`, after letting go of the snapshot that held
    /// checkpoints back, which is taken again right after); a no-op on the other backends.
    pub async fn checkpoint(&mut self) -> Result<()> {
        #[cfg(feature = "sqlite")]
        if let BulkConnection::Sqlite(c) = self {
            c.checkpoint().await?;
        }
        Ok(())
    }

    /// The last [`checkpoint`](Self::checkpoint), after which the host's own automatic
    /// checkpoints take over again; closes the connection.
    pub async fn finish(self) -> Result<()> {
        #[cfg(feature = "sqlite")]
        if let BulkConnection::Sqlite(mut c) = self {
            let _ = c.copy_back().await?;
            sqlx::Connection::close(c.pin).await?;
            sqlx::Connection::close(c.writer).await?;
        }
        Ok(())
    }
}

/// One result row, from whichever backend produced it.
///
/// The getters accept any integer width (and booleans) for integer columns, so tables
/// created by other tools (`INTEGER` on PostgreSQL, `TINYINT` on MySQL) read back fine.
#[derive(Debug)]
#[non_exhaustive]
pub enum DbRow {
    /// A SQLite row.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteRow),
    /// A PostgreSQL row.
    #[cfg(feature = "postgres")]
    Postgres(PgRow),
    /// A MySQL / MariaDB row.
    #[cfg(feature = "mysql")]
    MySql(MySqlRow),
}

macro_rules! try_int_widths {
    ($row:expr, $col:expr, $($ty:ty),+) => {{
        let mut first: Option<sqlx::Error> = None;
        $(
            match $row.try_get::<Option<$ty>, _>($col) {
                Ok(v) => return Ok(v.map(|v| v as i64)),
                Err(e @ sqlx::Error::ColumnDecode { .. }) => {
                    first.get_or_insert(e);
                }
                Err(e) => return Err(e.into()),
            }
        )+
        match $row.try_get::<Option<bool>, _>($col) {
            Ok(v) => return Ok(v.map(i64::from)),
            Err(e) => return Err(first.unwrap_or(e).into()),
        }
    }};
}

impl DbRow {
    /// A nullable integer column.
    pub fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        match self {
            #[cfg(feature = "sqlite")]
            DbRow::Sqlite(r) => try_int_widths!(r, col, i64),
            #[cfg(feature = "postgres")]
            DbRow::Postgres(r) => try_int_widths!(r, col, i64, i32, i16),
            #[cfg(feature = "mysql")]
            DbRow::MySql(r) => try_int_widths!(r, col, i64, i32, i16, i8, u64, u32),
        }
    }

    /// A nullable integer column, by position (for expressions without a name, such as a
    /// `RETURNING` list).
    pub fn opt_i64_at(&self, index: usize) -> Result<Option<i64>> {
        match self {
            #[cfg(feature = "sqlite")]
            DbRow::Sqlite(r) => try_int_widths!(r, index, i64),
            #[cfg(feature = "postgres")]
            DbRow::Postgres(r) => try_int_widths!(r, index, i64, i32, i16),
            #[cfg(feature = "mysql")]
            DbRow::MySql(r) => try_int_widths!(r, index, i64, i32, i16, i8, u64, u32),
        }
    }

    /// A non-null integer column, by position.
    pub fn i64_at(&self, index: usize) -> Result<i64> {
        self.opt_i64_at(index)?.ok_or_else(|| {
            Error::Database(sqlx::Error::ColumnDecode {
                index: index.to_string(),
                source: "unexpected NULL".into(),
            })
        })
    }

    /// A non-null integer column.
    pub fn i64(&self, col: &str) -> Result<i64> {
        self.opt_i64(col)?.ok_or_else(|| {
            Error::Database(sqlx::Error::ColumnDecode {
                index: col.to_owned(),
                source: "unexpected NULL".into(),
            })
        })
    }

    /// A nullable text column.
    pub fn opt_string(&self, col: &str) -> Result<Option<String>> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            DbRow::Sqlite(r) => r.try_get(col)?,
            #[cfg(feature = "postgres")]
            DbRow::Postgres(r) => r.try_get(col)?,
            #[cfg(feature = "mysql")]
            DbRow::MySql(r) => r.try_get(col)?,
        })
    }
}

/// An instant from epoch milliseconds (clamped to the representable range).
pub(crate) fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// A URL with any password replaced, safe to show in an error message.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}://{}:***{}", &url[..s], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://user:secret@host/db"),
            "redis://user:***@host/db"
        );
        assert_eq!(redact_url("foo://host/db"), "foo://host/db");
    }
}
