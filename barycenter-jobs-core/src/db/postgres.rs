//! PostgreSQL: the fleet's coordination engine. Everything particular to PostgreSQL lives
//! here: connecting, its SQL (including the heap walk of the batched delete), its rows.

use sea_query::PostgresQueryBuilder;
use sea_query::{Alias, DeleteStatement, Expr, ExprTrait, Func, SelectStatement};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::backend::Dialect;
use super::{DeleteBatch, QueryStmt, SchemaStmt};
use crate::ident::Identifier;

/// The first PostgreSQL version with TID range scans; older servers would scan the whole
/// table for every range, so they get the index-ordered batches only.
const MIN_VERSION_FOR_RANGES: i64 = 140_000;

pub(crate) struct PostgresDialect;

impl Dialect for PostgresDialect {
    fn render(&self, stmt: QueryStmt<'_>) -> (String, SqlxValues) {
        match stmt {
            QueryStmt::Select(s) => s.build_sqlx(PostgresQueryBuilder),
            QueryStmt::Insert(s) => s.build_sqlx(PostgresQueryBuilder),
            QueryStmt::Update(s) => s.build_sqlx(PostgresQueryBuilder),
            QueryStmt::Delete(s) => s.build_sqlx(PostgresQueryBuilder),
        }
    }
    fn render_schema(&self, stmt: SchemaStmt<'_>) -> String {
        match stmt {
            SchemaStmt::TableCreate(s) => s.build(PostgresQueryBuilder),
            SchemaStmt::TableAlter(s) => s.build(PostgresQueryBuilder),
            SchemaStmt::TableDrop(s) => s.build(PostgresQueryBuilder),
            SchemaStmt::IndexCreate(s) => s.build(PostgresQueryBuilder),
            SchemaStmt::IndexDrop(s) => s.build(PostgresQueryBuilder),
        }
    }
    fn now_ms(&self) -> Expr {
        // The time of the statement, not of its transaction (`now()` would be the latter).
        Expr::cust("CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
    }
    fn reports_insert_id(&self) -> bool {
        false
    }
    fn update_returning(&self) -> bool {
        true
    }
    fn single_writer(&self) -> bool {
        false
    }
    /// `DELETE FROM t WHERE ctid IN (SELECT ctid FROM t WHERE <filter> ORDER BY <order> LIMIT
    /// n) AND <filter>`: the `ctid` list becomes a TID scan (a key list would be a hash join
    /// over the whole table); the filter is repeated so a row updated concurrently (a session
    /// extended between the subquery and the delete) is re-checked on its new version.
    fn batch_delete(&self, batch: &DeleteBatch, limit: u64) -> DeleteStatement {
        let ctid = Alias::new("ctid");
        sea_query::Query::delete()
            .from_table(batch.table.clone())
            .and_where(Expr::col(ctid.clone()).in_subquery(batch.select(ctid, limit)))
            .cond_where(batch.filter.clone())
            .to_owned()
    }
    fn heap_range_delete(
        &self,
        batch: &DeleteBatch,
        from: u64,
        to: u64,
    ) -> Option<DeleteStatement> {
        let ctid = Alias::new("ctid");
        let tid = |page: u64| Expr::val(format!("({page},0)")).cast_as(Alias::new("tid"));
        Some(
            sea_query::Query::delete()
                .from_table(batch.table.clone())
                .and_where(Expr::col(ctid.clone()).gte(tid(from)))
                .and_where(Expr::col(ctid).lt(tid(to)))
                .cond_where(batch.filter.clone())
                .to_owned(),
        )
    }
    fn heap_pages_query(&self, table: &Identifier) -> Option<SelectStatement> {
        let setting = |name: &str| {
            Func::cust(Alias::new("current_setting"))
                .arg(name)
                .cast_as(Alias::new("bigint"))
        };
        // The name goes in as a bound value, quoted so it resolves exactly like the DELETE's
        // table reference; identifiers are validated, so it cannot hold a quote.
        let relation = Expr::val(format!("\"{}\"", table.as_str())).cast_as(Alias::new("regclass"));
        let pages = Func::cust(Alias::new("pg_relation_size"))
            .arg(relation)
            .div(setting("block_size"));
        Some(
            sea_query::Query::select()
                .expr_as(
                    Expr::case(
                        setting("server_version_num").gte(MIN_VERSION_FOR_RANGES),
                        pages,
                    )
                    .finally(0),
                    Alias::new("pages"),
                )
                .to_owned(),
        )
    }
    fn is_duplicate_index(&self, error: &dyn sqlx::error::DatabaseError) -> bool {
        // PostgreSQL honours IF NOT EXISTS, but two sessions creating the index at once can
        // still collide: duplicate_table (42P07), or a unique violation in its catalog (23505).
        matches!(error.code().as_deref(), Some("42P07" | "23505"))
    }
}

/// The driver half: compiled only with the `postgres` feature.
#[cfg(feature = "postgres")]
pub(crate) mod driver {
    use std::time::{Duration, Instant};

    use async_trait::async_trait;
    use sea_query_sqlx::SqlxValues;
    use sqlx::AssertSqlSafe;
    use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};

    use crate::db::DbRow;
    use crate::db::backend::{Bulk, Pool, Row, try_int_widths};
    use crate::error::Result;

    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
        Ok(PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?)
    }

    #[async_trait]
    impl Pool for PgPool {
        async fn execute(&self, sql: String, values: SqlxValues) -> Result<u64> {
            Ok(sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(self)
                .await?
                .rows_affected())
        }
        async fn fetch_all(&self, sql: String, values: SqlxValues) -> Result<Vec<DbRow>> {
            Ok(sqlx::query_with(AssertSqlSafe(sql), values)
                .fetch_all(self)
                .await?
                .into_iter()
                .map(DbRow::new)
                .collect())
        }
        /// `sql` ends in `RETURNING id_column` (see `Database::insert_returning_id`).
        async fn insert_returning_id(
            &self,
            sql: String,
            values: SqlxValues,
            id_column: &str,
        ) -> Result<i64> {
            let row = sqlx::query_with(AssertSqlSafe(sql), values)
                .fetch_one(self)
                .await?;
            DbRow::new(row).i64(id_column)
        }
        async fn execute_schema(&self, sql: String) -> Result<()> {
            sqlx::query(AssertSqlSafe(sql)).execute(self).await?;
            Ok(())
        }
        async fn close(&self) {
            PgPool::close(self).await
        }
        async fn bulk_connection(&self) -> Result<Box<dyn Bulk>> {
            Ok(Box::new(self.acquire().await?))
        }
    }

    impl Row for PgRow {
        fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
            try_int_widths!(self, col, i64, i32, i16)
        }
        fn opt_i64_at(&self, index: usize) -> Result<Option<i64>> {
            try_int_widths!(self, index, i64, i32, i16)
        }
        fn opt_string(&self, col: &str) -> Result<Option<String>> {
            use sqlx::Row as _;
            Ok(self.try_get(col)?)
        }
    }

    #[async_trait]
    impl Bulk for sqlx::pool::PoolConnection<sqlx::Postgres> {
        async fn execute(&mut self, sql: String, values: SqlxValues) -> Result<(u64, Instant)> {
            let started = Instant::now();
            let done = sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(&mut **self)
                .await?;
            Ok((done.rows_affected(), started))
        }
        async fn fetch_optional(
            &mut self,
            sql: String,
            values: SqlxValues,
        ) -> Result<Option<DbRow>> {
            Ok(sqlx::query_with(AssertSqlSafe(sql), values)
                .fetch_optional(&mut **self)
                .await?
                .map(DbRow::new))
        }
        async fn checkpoint(&mut self) -> Result<Duration> {
            Ok(Duration::ZERO)
        }
        async fn finish(self: Box<Self>) -> Result<()> {
            Ok(())
        }
    }
}
