//! PostgreSQL: the fleet's coordination engine. Everything particular to PostgreSQL lives
//! here: connecting, its SQL (including the heap walk of the batched delete), its rows.

use sea_query::PostgresQueryBuilder;
use sea_query::{Alias, DeleteStatement, Expr, ExprTrait, Func, SelectStatement};
use sea_query_sqlx::SqlxValues;

use super::backend::Dialect;
use super::{DeleteBatch, QueryStmt, SchemaStmt};
use crate::ident::Identifier;

/// The first PostgreSQL version with TID range scans; older servers would scan the whole
/// table for every range, so they get the index-ordered batches only.
const MIN_VERSION_FOR_RANGES: i64 = 140_000;

pub(crate) struct PostgresDialect;

impl Dialect for PostgresDialect {
    fn render(&self, stmt: QueryStmt<'_>) -> (String, SqlxValues) {
        stmt.build(PostgresQueryBuilder)
    }
    fn render_schema(&self, stmt: SchemaStmt<'_>) -> String {
        stmt.build(PostgresQueryBuilder)
    }
    /// The time of the statement, not of its transaction (`now()` would be the latter).
    fn now_ms(&self) -> Expr {
        Expr::cust("CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
    }
    /// The driver has no last-insert id: the INSERT asks for it with `RETURNING`.
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
    /// `pg_attribute` of the table the name resolves to through the search path (as the
    /// statements' own references do), live columns only; `data_type` is `format_type`'s
    /// spelling (`bigint`, `character varying(255)`, `timestamp with time zone`).
    fn table_columns(&self, table: &Identifier) -> SelectStatement {
        let a = Alias::new("a");
        let relation = Func::cust(Alias::new("to_regclass")).arg(format!("\"{}\"", table.as_str()));
        sea_query::Query::select()
            .expr_as(
                Expr::col((a.clone(), Alias::new("attname"))).cast_as(Alias::new("text")),
                Alias::new("column_name"),
            )
            .expr_as(
                Func::cust(Alias::new("format_type"))
                    .arg(Expr::col((a.clone(), Alias::new("atttypid"))))
                    .arg(Expr::col((a.clone(), Alias::new("atttypmod")))),
                Alias::new("data_type"),
            )
            .from_as(Alias::new("pg_attribute"), a.clone())
            .and_where(Expr::col((a.clone(), Alias::new("attrelid"))).eq(relation))
            .and_where(Expr::col((a.clone(), Alias::new("attnum"))).gt(0))
            .and_where(Expr::col((a, Alias::new("attisdropped"))).not())
            .to_owned()
    }
    /// The POSIX regular expression operator `~` (case-sensitive).
    fn is_utc_rfc3339(&self, text: Expr) -> Expr {
        text.binary(
            sea_query::BinOper::Custom("~"),
            Expr::val(super::UTC_RFC3339_REGEX),
        )
    }
    /// `pg_index` joined to the index's name and its first key column (`indkey[0]`); the
    /// table resolves through the search path, as the statements' own references do.
    fn indexes_leading_with(&self, table: &Identifier, column: &str) -> SelectStatement {
        let (i, c, a) = (Alias::new("i"), Alias::new("c"), Alias::new("a"));
        let relation = Func::cust(Alias::new("to_regclass")).arg(format!("\"{}\"", table.as_str()));
        sea_query::Query::select()
            .expr_as(
                Expr::col((c.clone(), Alias::new("relname"))),
                Alias::new("index_name"),
            )
            .from_as(Alias::new("pg_index"), i.clone())
            .join_as(
                sea_query::JoinType::InnerJoin,
                Alias::new("pg_class"),
                c.clone(),
                Expr::col((c.clone(), Alias::new("oid")))
                    .equals((i.clone(), Alias::new("indexrelid"))),
            )
            .join_as(
                sea_query::JoinType::InnerJoin,
                Alias::new("pg_attribute"),
                a.clone(),
                Expr::col((a.clone(), Alias::new("attrelid")))
                    .equals((i.clone(), Alias::new("indrelid")))
                    .and(
                        Expr::col((a.clone(), Alias::new("attnum"))).eq(Expr::cust("i.indkey[0]")),
                    ),
            )
            .and_where(Expr::col((i, Alias::new("indrelid"))).eq(relation))
            .and_where(Expr::col((a, Alias::new("attname"))).eq(column))
            .to_owned()
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
    use sqlx::pool::PoolConnection;
    use sqlx::postgres::{PgPool, PgPoolOptions, PgRow, Postgres};

    use crate::db::DbRow;
    use crate::db::backend::{Bulk, Pool, Row};
    use crate::db::int_column::IntColumn;
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
            sqlx::Pool::close(self).await
        }

        /// A plain pooled connection: row locks leave the host's writers room as they are.
        async fn bulk_connection(&self) -> Result<Box<dyn Bulk>> {
            Ok(Box::new(self.acquire().await?))
        }
    }

    impl Row for PgRow {
        fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
            integer(self, col)
        }

        fn opt_i64_at(&self, index: usize) -> Result<Option<i64>> {
            integer(self, index)
        }

        fn opt_string(&self, col: &str) -> Result<Option<String>> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
    }

    /// An integer column of any of PostgreSQL's integer types (`bigint`, `integer`,
    /// `smallint`) or a `boolean`.
    fn integer<I>(row: &PgRow, col: I) -> Result<Option<i64>>
    where
        I: sqlx::ColumnIndex<PgRow> + Copy + std::fmt::Display,
    {
        IntColumn::new(row, col)
            .width::<i64>()
            .width::<i32>()
            .width::<i16>()
            .or_bool()
    }

    /// Each statement in its own implicit transaction, its locks held for the whole
    /// statement; nothing to do between batches.
    #[async_trait]
    impl Bulk for PoolConnection<Postgres> {
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
