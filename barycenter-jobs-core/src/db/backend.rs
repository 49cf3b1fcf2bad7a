//! The private traits every backend implements, each in its own module (`sqlite`,
//! `postgres`, `mysql`): its SQL dialect, its pool, its rows and its bulk connection. The rest
//! of the crate reaches a backend only through these, so adding one is a new module plus its
//! conformance tests, and the compiler lists what it must provide. What the backends would
//! write alike is written once here, as macros a backend module invokes with only what differs:
//! `dialect_facts!` (builder, clock, capabilities), `sqlx_driver!` (pool and row impls) and
//! `pooled_bulk!` (the bulk connection of the backends that need no setup of their own).

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

/// The part of a dialect that is values, not code, written inside its `impl Dialect` as
/// `name: value` lines: the sea-query builder its SQL is written with, its clock (constant
/// SQL, see [`Dialect::now_ms`]) and the three capabilities the shared code branches on.
macro_rules! dialect_facts {
    (
        builder: $builder:expr,
        now_ms: $now_ms:literal,
        reports_insert_id: $reports_insert_id:literal,
        update_returning: $update_returning:literal,
        single_writer: $single_writer:literal $(,)?
    ) => {
        fn render(&self, stmt: $crate::db::QueryStmt<'_>) -> (String, sea_query_sqlx::SqlxValues) {
            stmt.build($builder)
        }
        fn render_schema(&self, stmt: $crate::db::SchemaStmt<'_>) -> String {
            stmt.build($builder)
        }
        fn now_ms(&self) -> sea_query::Expr {
            sea_query::Expr::cust($now_ms)
        }
        fn reports_insert_id(&self) -> bool {
            $reports_insert_id
        }
        fn update_returning(&self) -> bool {
            $update_returning
        }
        fn single_writer(&self) -> bool {
            $single_writer
        }
    };
}
pub(crate) use dialect_facts;

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
                // Checked: an unsigned value past i64::MAX (MySQL `BIGINT UNSIGNED`) is a
                // decode error, never a silent wrap to a negative number.
                Ok(v) => {
                    return v
                        .map(|v| {
                            i64::try_from(v).map_err(|_| {
                                $crate::error::Error::Database(sqlx::Error::Decode(
                                    format!("column {}: {v} does not fit a 64-bit signed integer", $col)
                                        .into(),
                                ))
                            })
                        })
                        .transpose();
                }
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

/// The driver code every sqlx backend shares, written once: [`Pool`] for the backend's pool
/// type (running statements, closing) and [`Row`] for its row type (integer columns of the
/// widths listed, then booleans; text). The backend module writes only what differs, as
/// closure-like bodies with the pool bound to the name given: how an INSERT reports its id
/// (`insert_returning_id`) and which connection a bulk writer gets (`bulk_connection`).
macro_rules! sqlx_driver {
    (
        pool: $pool:ty,
        row: $row:ty,
        ints: [$($int:ty),+],
        $(#[$insert_meta:meta])*
        insert_returning_id:
            |$ip:ident, $sql:ident, $values:ident, $id_column:pat_param| $insert:expr,
        $(#[$bulk_meta:meta])*
        bulk_connection: |$bp:ident| $bulk:expr $(,)?
    ) => {
        #[async_trait::async_trait]
        impl $crate::db::backend::Pool for $pool {
            async fn execute(
                &self,
                sql: String,
                values: sea_query_sqlx::SqlxValues,
            ) -> $crate::error::Result<u64> {
                Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
                    .execute(self)
                    .await?
                    .rows_affected())
            }
            async fn fetch_all(
                &self,
                sql: String,
                values: sea_query_sqlx::SqlxValues,
            ) -> $crate::error::Result<Vec<$crate::db::DbRow>> {
                Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
                    .fetch_all(self)
                    .await?
                    .into_iter()
                    .map($crate::db::DbRow::new)
                    .collect())
            }
            async fn execute_schema(&self, sql: String) -> $crate::error::Result<()> {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(self).await?;
                Ok(())
            }
            async fn close(&self) {
                sqlx::Pool::close(self).await
            }
            $(#[$insert_meta])*
            async fn insert_returning_id(
                &self,
                $sql: String,
                $values: sea_query_sqlx::SqlxValues,
                $id_column: &str,
            ) -> $crate::error::Result<i64> {
                let $ip = self;
                $insert
            }
            $(#[$bulk_meta])*
            async fn bulk_connection(
                &self,
            ) -> $crate::error::Result<Box<dyn $crate::db::backend::Bulk>> {
                let $bp = self;
                $bulk
            }
        }

        impl $crate::db::backend::Row for $row {
            fn opt_i64(&self, col: &str) -> $crate::error::Result<Option<i64>> {
                $crate::db::backend::try_int_widths!(self, col, $($int),+)
            }
            fn opt_i64_at(&self, index: usize) -> $crate::error::Result<Option<i64>> {
                $crate::db::backend::try_int_widths!(self, index, $($int),+)
            }
            fn opt_string(&self, col: &str) -> $crate::error::Result<Option<String>> {
                use sqlx::Row as _;
                Ok(self.try_get(col)?)
            }
        }
    };
}
pub(crate) use sqlx_driver;

/// [`Bulk`] for a plain pooled connection of database `$db`, for the backends whose bulk
/// writer needs no setup of its own: each statement in its own implicit transaction, locks
/// held for the whole statement, nothing to do between batches.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! pooled_bulk {
    ($db:ty) => {
        #[async_trait::async_trait]
        impl $crate::db::backend::Bulk for sqlx::pool::PoolConnection<$db> {
            async fn execute(
                &mut self,
                sql: String,
                values: sea_query_sqlx::SqlxValues,
            ) -> $crate::error::Result<(u64, std::time::Instant)> {
                let started = std::time::Instant::now();
                let done = sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
                    .execute(&mut **self)
                    .await?;
                Ok((done.rows_affected(), started))
            }
            async fn fetch_optional(
                &mut self,
                sql: String,
                values: sea_query_sqlx::SqlxValues,
            ) -> $crate::error::Result<Option<$crate::db::DbRow>> {
                Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
                    .fetch_optional(&mut **self)
                    .await?
                    .map($crate::db::DbRow::new))
            }
            async fn checkpoint(&mut self) -> $crate::error::Result<std::time::Duration> {
                Ok(std::time::Duration::ZERO)
            }
            async fn finish(self: Box<Self>) -> $crate::error::Result<()> {
                Ok(())
            }
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use pooled_bulk;
