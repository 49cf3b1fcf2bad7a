//! The database handle: one of the three sqlx pools, chosen at run time.
//!
//! Each backend is one module behind the private traits of `backend`: `sqlite`, `postgres`
//! and `mysql` each hold that database's SQL dialect (always compiled: rendering needs no
//! driver) and, behind its cargo feature, its pool, rows and bulk connection. This module
//! only dispatches: [`Backend::dialect`] and [`Database::pool`] are the two places that
//! choose a backend, so adding one is a new module plus its conformance tests. Callers hand
//! over a sea-query statement and get rows affected, an id, or [`DbRow`]s back.

mod backend;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod int_column;
mod mysql;
mod postgres;
mod sqlite;
mod statement;

use std::time::Duration;

/// The regular expression of [`Backend::is_utc_rfc3339`] on the backends that have them:
/// RFC 3339 date and time in UTC, fields bounded (a 60th second allowed, as RFC 3339 does).
/// Written without backslashes so that it means the same bound as a value in every
/// dialect.
const UTC_RFC3339_REGEX: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?(Z|[+]00:00)$";

use sea_query::{
    Condition, DeleteStatement, Expr, InsertStatement, IntoIden, Order, Query, SelectStatement,
};

use crate::error::{Error, Result};
use crate::ident::Identifier;
use backend::{Bulk, Dialect, Pool, Row};
pub use statement::{QueryStmt, SchemaStatement, SchemaStmt, Statement};

#[cfg(feature = "sqlite")]
pub use sqlite::driver::SqliteBulk;

#[cfg(feature = "mysql")]
use sqlx::mysql::MySqlPool;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqlitePool;

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

impl Backend {
    /// The backend's dialect: the one place a [`Backend`] value picks its module.
    fn dialect(self) -> &'static dyn Dialect {
        match self {
            Backend::Sqlite => &sqlite::SqliteDialect,
            Backend::Postgres => &postgres::PostgresDialect,
            Backend::MySql => &mysql::MySqlDialect,
        }
    }

    /// Whether the database admits one writer at a time (SQLite), so that a long sequence of
    /// writes must leave the host's writers gaps, rather than locking rows.
    pub fn single_writer(self) -> bool {
        self.dialect().single_writer()
    }

    /// The statement deleting one batch of at most `limit` rows of `batch` on this backend
    /// (see [`DeleteBatch`]).
    pub fn batch_delete(self, batch: &DeleteBatch, limit: u64) -> DeleteStatement {
        self.dialect().batch_delete(batch, limit)
    }

    /// The statement deleting the rows of `batch` in heap pages `from..to`, where the backend
    /// can walk a table's heap in ranges (PostgreSQL: TID range scans); `None` elsewhere.
    pub fn heap_range_delete(
        self,
        batch: &DeleteBatch,
        from: u64,
        to: u64,
    ) -> Option<DeleteStatement> {
        self.dialect().heap_range_delete(batch, from, to)
    }

    /// A query whose one row has a `pages` column: the heap pages of `table` to walk with
    /// [`heap_range_delete`](Self::heap_range_delete), 0 when this server cannot; `None`
    /// where heap walks do not exist.
    pub fn heap_pages_query(self, table: &Identifier) -> Option<SelectStatement> {
        self.dialect().heap_pages_query(table)
    }

    /// A query listing (as `index_name`) the indexes of `table` whose first column is
    /// `column`, from this backend's catalogue.
    pub fn indexes_leading_with(self, table: &Identifier, column: &str) -> SelectStatement {
        self.dialect().indexes_leading_with(table, column)
    }

    /// A query listing the columns of `table` as `column_name` and `data_type` (the declared
    /// type, as this backend's catalogue spells it: `bigint`, `character varying(255)`,
    /// `TEXT`, ...), from the catalogue; it returns no row when the table does not exist.
    /// The table resolves as the statements' own references to it do (the search path on
    /// PostgreSQL, the connection's database on MySQL).
    ///
    /// ```
    /// use barycenter_jobs_core::{Backend, Identifier};
    ///
    /// let t = Identifier::new("sessions").unwrap();
    /// assert_eq!(
    ///     Backend::Sqlite.render(&Backend::Sqlite.table_columns(&t)),
    ///     r#"SELECT "name" AS "column_name", "type" AS "data_type" FROM pragma_table_info(?) AS "ti""#
    /// );
    /// ```
    pub fn table_columns(self, table: &Identifier) -> SelectStatement {
        self.dialect().table_columns(table)
    }

    /// A condition true when `text` (a column, say) holds an instant written as RFC 3339
    /// text in UTC: `YYYY-MM-DDTHH:MM:SS` (a `T` between date and time), then an optional
    /// fraction of a second, then `Z` or `+00:00`. For exactly these forms, comparing the
    /// text as a string with another of them orders them in time (the first 19 characters
    /// are fixed-width digits in the same places); an instant in another zone, a local
    /// time without a zone, a space instead of the `T`, or text that is no date at all
    /// does not match, so a comparison guarded by this never takes it for an earlier
    /// instant.
    ///
    /// PostgreSQL (`~`) and MySQL / MariaDB (`REGEXP`) match a regular expression that also
    /// bounds the month, day, hour, minute and second; SQLite has no regular expressions by
    /// default, so it matches the shape with `GLOB` and asks its own date parser
    /// (`julianday`, NULL for anything it cannot read) whether the whole text is a valid
    /// date and time. MySQL's comparison follows the column's collation, so under a
    /// case-insensitive one a lowercase `t` or `z` matches too (and compares equal to the
    /// uppercase letter, so the order is unchanged).
    ///
    /// ```
    /// use barycenter_jobs_core::Backend;
    /// use barycenter_jobs_core::sea_query::{Expr, Query};
    ///
    /// let q = Query::select().expr(Backend::Postgres.is_utc_rfc3339(Expr::col("expires_at"))).to_owned();
    /// assert_eq!(Backend::Postgres.render(&q), r#"SELECT "expires_at" ~ $1"#);
    /// ```
    pub fn is_utc_rfc3339(self, text: Expr) -> Expr {
        self.dialect().is_utc_rfc3339(text)
    }

    /// The SQL text a statement renders to on this backend, for logs and tests (values are
    /// placeholders, never spliced in).
    pub fn render<S: Statement>(self, stmt: &S) -> String {
        self.dialect().render(stmt.as_query()).0
    }
}

/// One batch of a batched delete, rendered per backend by [`Backend::batch_delete`]: the
/// rows of `table` matching `filter`, oldest `order_by` first, `key` a unique column.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeleteBatch {
    /// The table rows are deleted from.
    pub table: Identifier,
    /// A unique column (the primary key).
    pub key: Identifier,
    /// The column batches walk in order (should be indexed).
    pub order_by: Identifier,
    /// Which rows to delete; column references qualified with the table.
    pub filter: Condition,
    /// Whether the filter has a subquery on `table` itself (MySQL then selects the batch
    /// through a derived table).
    pub reads_own_table: bool,
}

impl DeleteBatch {
    /// A batch shape for the rows of `table` matching `filter`.
    pub fn new(
        table: Identifier,
        key: Identifier,
        order_by: Identifier,
        filter: Condition,
    ) -> Self {
        Self {
            table,
            key,
            order_by,
            filter,
            reads_own_table: false,
        }
    }

    /// `SELECT column FROM table WHERE filter ORDER BY order_by LIMIT limit`, the inner query
    /// of most dialects' batch.
    pub(crate) fn select(&self, column: impl IntoIden, limit: u64) -> SelectStatement {
        Query::select()
            .column(column)
            .from(self.table.clone())
            .cond_where(self.filter.clone())
            .order_by((self.table.clone(), self.order_by.clone()), Order::Asc)
            .limit(limit)
            .to_owned()
    }
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
            "sqlite" => Ok(sqlite::driver::connect(url, max_connections).await?.into()),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(postgres::driver::connect(url, max_connections)
                .await?
                .into()),
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => Ok(mysql::driver::connect(url, max_connections).await?.into()),
            _ => Err(Error::UnsupportedDatabase(redact_url(url))),
        }
    }

    /// The pool behind this handle: the one place a [`Database`] picks its module.
    fn pool(&self) -> &dyn Pool {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => p,
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => p,
            #[cfg(feature = "mysql")]
            Database::MySql(p) => p,
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

    fn dialect(&self) -> &'static dyn Dialect {
        self.backend().dialect()
    }

    /// The most connections the pool opens at once (its `max_connections`). Users of the
    /// pool that must leave room for the scheduler's own statements (the admin service's
    /// reads) take a share of it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// use barycenter_jobs_core::Database;
    /// let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    /// assert_eq!(Database::connect_with_max(&url, 3).await?.max_connections(), 3);
    /// assert_eq!(Database::connect(&url).await?.max_connections(), 8);
    /// # Ok(()) }
    /// ```
    pub fn max_connections(&self) -> u32 {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(p) => p.options().get_max_connections(),
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => p.options().get_max_connections(),
            #[cfg(feature = "mysql")]
            Database::MySql(p) => p.options().get_max_connections(),
        }
    }

    /// Close every connection of the pool.
    pub async fn close(&self) {
        self.pool().close().await
    }

    /// Run a query statement (UPDATE, DELETE, INSERT) and return the rows affected.
    pub async fn execute<S: Statement>(&self, stmt: &S) -> Result<u64> {
        let (sql, values) = self.dialect().render(stmt.as_query());
        self.pool().execute(sql, values).await
    }

    /// Run an INSERT of one row and return the auto-increment id it got (column `id_column`).
    pub async fn insert_returning_id(
        &self,
        stmt: &InsertStatement,
        id_column: &str,
    ) -> Result<i64> {
        let mut stmt = stmt.clone();
        if !self.dialect().reports_insert_id() {
            // No last-insert id from the driver (PostgreSQL): ask for it.
            stmt.returning_col(sea_query::Alias::new(id_column));
        }
        let (sql, values) = self.dialect().render(QueryStmt::Insert(&stmt));
        self.pool()
            .insert_returning_id(sql, values, id_column)
            .await
    }

    /// Run a SELECT (or a statement with RETURNING) and return all rows.
    pub async fn fetch_all<S: Statement>(&self, stmt: &S) -> Result<Vec<DbRow>> {
        let (sql, values) = self.dialect().render(stmt.as_query());
        self.pool().fetch_all(sql, values).await
    }

    /// Delete up to `batch` rows of `table` that match `filter`, lowest `id` first, and say
    /// how many went: one SELECT of their ids (with `LIMIT`, [`oldest_ids`](Self::oldest_ids)),
    /// then one DELETE by id, since PostgreSQL's `DELETE` takes no `LIMIT`. What retention
    /// uses for the audit log; call it until it returns less than `batch`.
    pub(crate) async fn delete_oldest(
        &self,
        table: &Identifier,
        id: impl IntoIden + Clone,
        filter: Condition,
        batch: u32,
    ) -> Result<u64> {
        let id = id.into_iden();
        let ids = self.oldest_ids(table, id.clone(), filter, batch).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        self.execute(
            Query::delete()
                .from_table(table.clone())
                .and_where(sea_query::ExprTrait::is_in(sea_query::Expr::col(id), ids)),
        )
        .await
    }

    /// The ids of up to `batch` rows of `table` that match `filter`, lowest first: what
    /// [`delete_oldest`](Self::delete_oldest) deletes, for a caller that deletes what hangs
    /// off those rows too (the history's logs).
    pub(crate) async fn oldest_ids(
        &self,
        table: &Identifier,
        id: impl IntoIden + Clone,
        filter: Condition,
        batch: u32,
    ) -> Result<Vec<i64>> {
        let id = id.into_iden();
        self.fetch_all(
            Query::select()
                .column(id.clone())
                .from(table.clone())
                .cond_where(filter)
                .order_by(id, Order::Asc)
                .limit(u64::from(Ord::max(batch, 1))),
        )
        .await?
        .iter()
        .map(|r| r.i64_at(0))
        .collect()
    }

    /// Run a SELECT and return its first row, if any.
    pub async fn fetch_optional<S: Statement>(&self, stmt: &S) -> Result<Option<DbRow>> {
        Ok(self.fetch_all(stmt).await?.into_iter().next())
    }

    /// Run a schema statement (CREATE TABLE, ALTER TABLE, CREATE INDEX).
    pub async fn execute_schema<S: SchemaStatement>(&self, stmt: &S) -> Result<()> {
        let sql = self.dialect().render_schema(stmt.as_schema());
        self.pool().execute_schema(sql).await
    }

    /// Copy SQLite's write-ahead log into the database file now, without blocking anybody
    /// (`wal_checkpoint(PASSIVE)`), so that the next commit to cross the automatic checkpoint
    /// threshold does not do it inside itself; a no-op on the other backends.
    pub(crate) async fn passive_checkpoint(&self) -> Result<()> {
        match self.dialect().passive_checkpoint() {
            Some(sql) => self.pool().execute_schema(sql.to_owned()).await,
            None => Ok(()),
        }
    }

    /// Whether `error` is this backend's "an index of that name already exists".
    pub fn is_duplicate_index(&self, error: &Error) -> bool {
        match error {
            Error::Database(sqlx::Error::Database(d)) => {
                self.dialect().is_duplicate_index(d.as_ref())
            }
            _ => false,
        }
    }

    /// A connection of its own for a long sequence of writes (a batched cleanup), set up so
    /// that the sequence is cheap and leaves the host's writers room between statements.
    ///
    /// On SQLite these are two connections taken out of the pool (closed when done, never
    /// returned with changed settings): a writer with a 64 MiB page cache that never
    /// checkpoints on its own, and a reader that holds a read snapshot from the first write to
    /// [`BulkConnection::finish`], let go only while [`BulkConnection::checkpoint`] runs.
    /// While that snapshot is held no checkpoint can copy newer WAL frames into the database
    /// file, so a host writer that gets the lock between two batches does not run that copy
    /// (and its syncs) inside its own automatic checkpoint; the cleanup's checkpoint does it
    /// instead, outside the lock. On the other backends it is a plain pooled connection.
    pub async fn bulk_connection(&self) -> Result<BulkConnection> {
        Ok(BulkConnection {
            dialect: self.dialect(),
            inner: self.pool().bulk_connection().await?,
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
        self.dialect().now_ms()
    }

    /// Whether this backend can return rows from an `UPDATE` (`RETURNING`).
    pub fn update_returning(&self) -> bool {
        self.dialect().update_returning()
    }

    /// The database's current time (see [`now_ms_expr`](Self::now_ms_expr)).
    pub async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        let row = self
            .fetch_optional(
                Query::select().expr_as(self.now_ms_expr(), sea_query::Alias::new("now_ms")),
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
    pub fn render<S: Statement>(&self, stmt: &S) -> String {
        self.backend().render(stmt)
    }
}

/// A connection for a sequence of writes; see [`Database::bulk_connection`].
#[derive(Debug)]
pub struct BulkConnection {
    dialect: &'static dyn Dialect,
    inner: Box<dyn Bulk>,
}

impl std::fmt::Debug for dyn Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dialect")
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
    pub async fn execute<S: Statement>(&mut self, stmt: &S) -> Result<Executed> {
        let (sql, values) = self.dialect.render(stmt.as_query());
        let (rows, locked) = self.inner.execute(sql, values).await?;
        Ok(Executed {
            rows,
            lock_held: locked.elapsed(),
        })
    }

    /// Run a SELECT on this connection and return its first row, if any.
    pub async fn fetch_optional<S: Statement>(&mut self, stmt: &S) -> Result<Option<DbRow>> {
        let (sql, values) = self.dialect.render(stmt.as_query());
        self.inner.fetch_optional(sql, values).await
    }

    /// Move what the WAL holds into the database file without waiting for, or blocking,
    /// anybody (SQLite `wal_checkpoint(PASSIVE)`, after letting go of the snapshot that held
    /// checkpoints back, which is taken again right after); a no-op on the other backends.
    /// Returns how long it took.
    pub async fn checkpoint(&mut self) -> Result<Duration> {
        self.inner.checkpoint().await
    }

    /// The last [`checkpoint`](Self::checkpoint), after which the host's own automatic
    /// checkpoints take over again; closes the connection.
    pub async fn finish(self) -> Result<()> {
        self.inner.finish().await
    }
}

/// One result row, from whichever backend produced it.
///
/// The getters accept any integer width (and booleans) for integer columns, so tables
/// created by other tools (`INTEGER` on PostgreSQL, `TINYINT` on MySQL) read back fine.
#[derive(Debug)]
pub struct DbRow(Box<dyn Row>);

impl DbRow {
    pub(crate) fn new(row: impl Row + 'static) -> Self {
        Self(Box::new(row))
    }

    /// A nullable integer column.
    pub fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        self.0.opt_i64(col)
    }

    /// A nullable integer column, by position (for expressions without a name, such as a
    /// `RETURNING` list).
    pub fn opt_i64_at(&self, index: usize) -> Result<Option<i64>> {
        self.0.opt_i64_at(index)
    }

    /// A non-null integer column, by position.
    pub fn i64_at(&self, index: usize) -> Result<i64> {
        self.opt_i64_at(index)?
            .ok_or_else(|| unexpected_null(index.to_string()))
    }

    /// A non-null integer column.
    pub fn i64(&self, col: &str) -> Result<i64> {
        self.opt_i64(col)?
            .ok_or_else(|| unexpected_null(col.to_owned()))
    }

    /// A nullable text column.
    pub fn opt_string(&self, col: &str) -> Result<Option<String>> {
        self.0.opt_string(col)
    }
}

fn unexpected_null(index: String) -> Error {
    Error::Database(sqlx::Error::ColumnDecode {
        index,
        source: "unexpected NULL".into(),
    })
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
