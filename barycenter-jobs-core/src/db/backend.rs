//! The private traits every backend implements, each in its own module (`sqlite`,
//! `postgres`, `mysql`): its SQL dialect, its pool, its rows and its bulk connection. The rest
//! of the crate reaches a backend only through these, so adding one is a new module plus its
//! conformance tests, and the compiler lists what it must provide.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_query::{DeleteStatement, Expr, SelectStatement};
use sea_query_sqlx::SqlxValues;

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
    /// A query whose one row has `pages`: the heap pages of `table`, 0 when the server cannot
    /// walk them in ranges; `None` where heap walks do not exist.
    fn heap_pages_query(&self, _table: &crate::ident::Identifier) -> Option<SelectStatement> {
        None
    }
}

/// A backend's pool: runs rendered statements.
#[async_trait]
pub(crate) trait Pool: Send + Sync {
    async fn execute(&self, sql: String, values: SqlxValues) -> Result<u64>;
    async fn fetch_all(&self, sql: String, values: SqlxValues) -> Result<Vec<DbRow>>;
    /// Run an INSERT of one row; its auto-increment id (`sql` already ends in `RETURNING
    /// id_column` where the dialect needs that).
    async fn insert_returning_id(
        &self,
        sql: String,
        values: SqlxValues,
        id_column: &str,
    ) -> Result<i64>;
    async fn execute_schema(&self, sql: String) -> Result<()>;
    async fn close(&self);
    async fn bulk_connection(&self) -> Result<Box<dyn Bulk>>;
}

/// A result row of one backend.
pub(crate) trait Row: Send + Sync + std::fmt::Debug {
    fn opt_i64(&self, col: &str) -> Result<Option<i64>>;
    fn opt_i64_at(&self, index: usize) -> Result<Option<i64>>;
    fn opt_string(&self, col: &str) -> Result<Option<String>>;
}

/// A backend's connection for a long sequence of writes.
#[async_trait]
pub(crate) trait Bulk: Send + std::fmt::Debug {
    /// Run a statement in a transaction of its own; rows affected and when it had its locks.
    async fn execute(&mut self, sql: String, values: SqlxValues) -> Result<(u64, Instant)>;
    async fn fetch_optional(&mut self, sql: String, values: SqlxValues) -> Result<Option<DbRow>>;
    /// Work between batches that keeps the next one cheap (SQLite: copy the WAL back);
    /// returns how long it took, zero where there is nothing to do.
    async fn checkpoint(&mut self) -> Result<Duration>;
    async fn finish(self: Box<Self>) -> Result<()>;
}

/// Decode an integer column of any width (and booleans), so tables created by other tools
/// (`INTEGER` on PostgreSQL, `TINYINT` on MySQL) read back fine.
macro_rules! try_int_widths {
    ($row:expr, $col:expr, $($ty:ty),+) => {{
        use sqlx::Row as _;
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
pub(crate) use try_int_widths;
