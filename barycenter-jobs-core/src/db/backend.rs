//! The private traits every backend implements, each in its own module (`sqlite`,
//! `postgres`, `mysql`): its SQL dialect, its pool, its rows and its bulk connection. The rest
//! of the crate reaches a backend only through these, so adding one is a new module plus its
//! conformance tests, and the compiler lists what it must provide. Each backend module writes
//! its impls out in full (`impl Pool for PgPool`, `impl Row for PgRow`, ...), as sqlx's own
//! drivers do, so that a search for an impl finds it.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_query::{DeleteStatement, Expr, QueryBuilder, SchemaBuilder, SelectStatement};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::{DbRow, DeleteBatch, QueryStmt, SchemaStmt};
use crate::error::Result;

/// How one backend writes SQL. Static: no connection needed.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// SQL and bound values of a query statement.
    fn render(&self, stmt: QueryStmt<'_>) -> (String, SqlxValues);
    /// SQL of a schema statement.
    fn render_schema(&self, stmt: SchemaStmt<'_>) -> String;
    /// The database's clock in epoch milliseconds, as a 64-bit integer expression.
    fn now_ms(&self) -> Expr;
    /// Whether the driver reports the id an INSERT generated (else the INSERT asks for it
    /// with `RETURNING`).
    fn reports_insert_id(&self) -> bool;
    /// Whether `UPDATE ... RETURNING` exists.
    fn update_returning(&self) -> bool;
    /// Whether the database admits one writer at a time (so a bulk writer must leave it
    /// gaps), rather than locking rows.
    fn single_writer(&self) -> bool;
    /// One batch of at most `limit` rows of `batch`.
    fn batch_delete(&self, batch: &DeleteBatch, limit: u64) -> DeleteStatement;
    /// Whether an error of this backend means "that index already exists".
    fn is_duplicate_index(&self, error: &dyn sqlx::error::DatabaseError) -> bool;
    /// A query listing (as `index_name`) the indexes of `table` whose first column is
    /// `column`, from the backend's catalogue.
    fn indexes_leading_with(
        &self,
        table: &crate::ident::Identifier,
        column: &str,
    ) -> SelectStatement;
    /// A query listing the columns of `table` (`column_name`, and `data_type`: the declared
    /// type as the catalogue spells it), from the backend's catalogue; no rows when there is
    /// no such table.
    fn table_columns(&self, table: &crate::ident::Identifier) -> SelectStatement;
    /// A condition true when `text` holds an instant written as RFC 3339 text in UTC,
    /// `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z` or `+00:00`: the text forms whose
    /// order as strings is their order in time (see [`super::Backend::is_utc_rfc3339`]).
    fn is_utc_rfc3339(&self, text: Expr) -> Expr;
    /// The DELETE of one range of heap pages, where the backend can walk its heap in ranges
    /// (PostgreSQL 14 and later: TID range scans).
    fn heap_range_delete(
        &self,
        _batch: &DeleteBatch,
        _from: u64,
        _to: u64,
    ) -> Option<DeleteStatement> {
        None
    }
    /// Constant SQL that copies the write-ahead log into the database file without blocking
    /// anybody, where the database has such a log that its writers copy back in their
    /// commits (SQLite in WAL mode); `None` elsewhere.
    fn passive_checkpoint(&self) -> Option<&'static str> {
        None
    }
    /// A query whose one row has `pages`: the heap pages of `table`, 0 when the server cannot
    /// walk them in ranges; `None` where heap walks do not exist.
    fn heap_pages_query(&self, _table: &crate::ident::Identifier) -> Option<SelectStatement> {
        None
    }
}

impl QueryStmt<'_> {
    /// SQL and bound values of the statement, written by `builder` (a dialect's `render`).
    pub(crate) fn build(self, builder: impl QueryBuilder) -> (String, SqlxValues) {
        match self {
            QueryStmt::Select(s) => s.build_sqlx(builder),
            QueryStmt::Insert(s) => s.build_sqlx(builder),
            QueryStmt::Update(s) => s.build_sqlx(builder),
            QueryStmt::Delete(s) => s.build_sqlx(builder),
        }
    }
}

impl SchemaStmt<'_> {
    /// SQL of the statement, written by `builder` (a dialect's `render_schema`).
    pub(crate) fn build(self, builder: impl SchemaBuilder) -> String {
        match self {
            SchemaStmt::TableCreate(s) => s.build(builder),
            SchemaStmt::TableAlter(s) => s.build(builder),
            SchemaStmt::TableDrop(s) => s.build(builder),
            SchemaStmt::IndexCreate(s) => s.build(builder),
            SchemaStmt::IndexDrop(s) => s.build(builder),
        }
    }
}

/// A backend's pool: runs rendered statements. [`super::Database`] holds one of the sqlx pools
/// and hands each statement, already rendered by the [`Dialect`], to this.
#[async_trait]
pub(crate) trait Pool: Send + Sync {
    /// Run a statement that returns no rows; the rows it affected (an UPDATE's count is how
    /// a lease claim knows it won).
    async fn execute(&self, sql: String, values: SqlxValues) -> Result<u64>;
    /// Run a statement that returns rows (a SELECT, or anything with `RETURNING`).
    async fn fetch_all(&self, sql: String, values: SqlxValues) -> Result<Vec<DbRow>>;
    /// Run an INSERT of one row; its auto-increment id (`sql` already ends in `RETURNING
    /// id_column` where the dialect needs that). Apart from [`execute`](Self::execute)
    /// because each driver reports the id its own way: a last-insert id from the driver,
    /// or a returned row.
    async fn insert_returning_id(
        &self,
        sql: String,
        values: SqlxValues,
        id_column: &str,
    ) -> Result<i64>;
    /// Run a schema statement (DDL, or a constant pragma): SQL with no bound values, as
    /// sea-query renders DDL.
    async fn execute_schema(&self, sql: String) -> Result<()>;
    /// Close every connection of the pool.
    async fn close(&self);
    /// A connection of its own for a long sequence of writes (a batched cleanup), set up the
    /// way this backend needs so that the host's writers get room between statements.
    async fn bulk_connection(&self) -> Result<Box<dyn Bulk>>;
}

/// A result row of one backend. [`DbRow`] wraps it, so the code above the backends reads
/// rows without naming a driver.
pub(crate) trait Row: Send + Sync + std::fmt::Debug {
    /// A nullable integer column, read at whatever width the table declares it (and
    /// booleans), because tables created by other tools use narrower types (`INTEGER` on
    /// PostgreSQL, `TINYINT` on MySQL). A value that does not fit 64 signed bits is a
    /// decode error, never a wrap.
    fn opt_i64(&self, col: &str) -> Result<Option<i64>>;
    /// [`opt_i64`](Self::opt_i64) by position, for expressions without a name (a
    /// `RETURNING` list).
    fn opt_i64_at(&self, index: usize) -> Result<Option<i64>>;
    /// A nullable text column.
    fn opt_string(&self, col: &str) -> Result<Option<String>>;
}

/// A backend's connection for a long sequence of writes.
#[async_trait]
pub(crate) trait Bulk: Send + std::fmt::Debug {
    /// Run a statement in a transaction of its own; rows affected and when it had its locks
    /// (the cleanup paces itself by how long it held them, not by how long it waited).
    async fn execute(&mut self, sql: String, values: SqlxValues) -> Result<(u64, Instant)>;
    /// Run a SELECT on this connection (the next batch's bounds), first row if any.
    async fn fetch_optional(&mut self, sql: String, values: SqlxValues) -> Result<Option<DbRow>>;
    /// Work between batches that keeps the next one cheap (SQLite: copy the WAL back);
    /// returns how long it took, zero where there is nothing to do.
    async fn checkpoint(&mut self) -> Result<Duration>;
    /// The end of the sequence: undo what [`Pool::bulk_connection`] set up and close.
    async fn finish(self: Box<Self>) -> Result<()>;
}
