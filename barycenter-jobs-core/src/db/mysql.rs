//! MySQL and MariaDB. Everything particular to them lives here: connecting, their SQL, their
//! rows, their error numbers.

use sea_query::MysqlQueryBuilder;
use sea_query::{Alias, DeleteStatement, Expr, ExprTrait, Order};
use sea_query_sqlx::SqlxValues;

use super::backend::Dialect;
use super::{DeleteBatch, QueryStmt, SchemaStmt};

/// ER_DUP_KEYNAME: the only error that means "an index of that name exists". Its SQLSTATE,
/// 42000, is shared with access denied, key too long and a BLOB/TEXT column indexed without
/// a key length, which must fail the migration.
const ER_DUP_KEYNAME: u16 = 1061;

pub(crate) struct MySqlDialect;

impl Dialect for MySqlDialect {
    fn render(&self, stmt: QueryStmt<'_>) -> (String, SqlxValues) {
        stmt.build(MysqlQueryBuilder)
    }
    fn render_schema(&self, stmt: SchemaStmt<'_>) -> String {
        stmt.build(MysqlQueryBuilder)
    }
    fn now_ms(&self) -> Expr {
        Expr::cust("CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)")
    }
    fn reports_insert_id(&self) -> bool {
        true
    }
    /// MariaDB has DELETE/INSERT ... RETURNING, neither has UPDATE ... RETURNING.
    fn update_returning(&self) -> bool {
        false
    }
    fn single_writer(&self) -> bool {
        false
    }
    /// `DELETE FROM t WHERE <filter> ORDER BY <order> LIMIT n`. MySQL cannot read the table it
    /// deletes from in a subquery (error 1093), so a filter that does goes through a
    /// materialised derived table: `DELETE FROM t WHERE key IN (SELECT key FROM (SELECT key
    /// FROM t WHERE <filter> ORDER BY <order> LIMIT n) AS batch)`.
    fn batch_delete(&self, batch: &DeleteBatch, limit: u64) -> DeleteStatement {
        let mut delete = sea_query::Query::delete();
        delete.from_table(batch.table.clone());
        if batch.reads_own_table {
            let derived_name = Alias::new("batch");
            let derived = sea_query::Query::select()
                .column((derived_name.clone(), batch.key.clone()))
                .from_subquery(batch.select(batch.key.clone(), limit), derived_name)
                .to_owned();
            delete.and_where(Expr::col(batch.key.clone()).in_subquery(derived));
        } else {
            delete
                .cond_where(batch.filter.clone())
                .order_by((batch.table.clone(), batch.order_by.clone()), Order::Asc)
                .limit(limit);
        }
        delete
    }
    /// `information_schema.statistics`: one row per index column, `seq_in_index` 1 the first.
    fn indexes_leading_with(
        &self,
        table: &crate::ident::Identifier,
        column: &str,
    ) -> sea_query::SelectStatement {
        let stats = (Alias::new("information_schema"), Alias::new("statistics"));
        sea_query::Query::select()
            .expr_as(
                Expr::col(Alias::new("index_name")),
                Alias::new("index_name"),
            )
            .from(stats)
            .and_where(Expr::col(Alias::new("table_schema")).eq(Expr::cust("DATABASE()")))
            .and_where(Expr::col(Alias::new("table_name")).eq(table.as_str()))
            .and_where(Expr::col(Alias::new("seq_in_index")).eq(1))
            .and_where(Expr::col(Alias::new("column_name")).eq(column))
            .to_owned()
    }
    /// `information_schema.columns` of the connection's database; `data_type` is the bare
    /// type (`bigint`, `varchar`, `datetime`).
    fn table_columns(&self, table: &crate::ident::Identifier) -> sea_query::SelectStatement {
        sea_query::Query::select()
            .expr_as(
                Expr::col(Alias::new("column_name")),
                Alias::new("column_name"),
            )
            .expr_as(Expr::col(Alias::new("data_type")), Alias::new("data_type"))
            .from((Alias::new("information_schema"), Alias::new("columns")))
            .and_where(Expr::col(Alias::new("table_schema")).eq(Expr::cust("DATABASE()")))
            .and_where(Expr::col(Alias::new("table_name")).eq(table.as_str()))
            .to_owned()
    }
    /// `REGEXP` (ICU on MySQL 8, PCRE on MariaDB: the expression means the same to both).
    fn is_utc_rfc3339(&self, text: Expr) -> Expr {
        text.binary(
            sea_query::BinOper::Custom("REGEXP"),
            Expr::val(super::UTC_RFC3339_REGEX),
        )
    }
    fn is_duplicate_index(&self, error: &dyn sqlx::error::DatabaseError) -> bool {
        #[cfg(feature = "mysql")]
        return error
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| e.number() == ER_DUP_KEYNAME);
        #[cfg(not(feature = "mysql"))]
        {
            // Without the driver no MySQL error can reach us.
            let _ = (error, ER_DUP_KEYNAME);
            false
        }
    }
}

/// The driver half: compiled only with the `mysql` feature.
#[cfg(feature = "mysql")]
pub(crate) mod driver {
    use std::time::{Duration, Instant};

    use async_trait::async_trait;
    use sea_query_sqlx::SqlxValues;
    use sqlx::AssertSqlSafe;
    use sqlx::mysql::{MySql, MySqlPool, MySqlPoolOptions, MySqlRow};
    use sqlx::pool::PoolConnection;

    use crate::db::DbRow;
    use crate::db::backend::{Bulk, Pool, Row};
    use crate::db::int_column::IntColumn;
    use crate::error::Result;

    /// Open a pool; `mariadb://` is accepted as a synonym of `mysql://`.
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool> {
        let url = url.replacen("mariadb:", "mysql:", 1);
        Ok(MySqlPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await?)
    }

    #[async_trait]
    impl Pool for MySqlPool {
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

        async fn insert_returning_id(
            &self,
            sql: String,
            values: SqlxValues,
            _id_column: &str,
        ) -> Result<i64> {
            let id = sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(self)
                .await?
                .last_insert_id();
            Ok(i64::try_from(id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?)
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

    impl Row for MySqlRow {
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

    /// An integer column of MySQL's signed types from `BIGINT` down to `TINYINT`, an
    /// unsigned `BIGINT` or `INT` (a value past `i64::MAX` is an error), or a boolean.
    fn integer<I>(row: &MySqlRow, col: I) -> Result<Option<i64>>
    where
        I: sqlx::ColumnIndex<MySqlRow> + Copy + std::fmt::Display,
    {
        IntColumn::new(row, col)
            .width::<i64>()
            .width::<i32>()
            .width::<i16>()
            .width::<i8>()
            .width::<u64>()
            .width::<u32>()
            .or_bool()
    }

    /// Each statement in its own implicit transaction, its locks held for the whole
    /// statement; nothing to do between batches.
    #[async_trait]
    impl Bulk for PoolConnection<MySql> {
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
