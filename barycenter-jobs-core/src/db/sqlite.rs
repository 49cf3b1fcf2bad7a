//! SQLite: the embedded default (bundled library, WAL mode). Everything that is particular to
//! SQLite lives here: connecting, its SQL, its rows, and the bulk connection that keeps the
//! host's writers moving while a cleanup runs.

use sea_query::SqliteQueryBuilder;
use sea_query::{Alias, DeleteStatement, Expr, ExprTrait};
use sea_query_sqlx::SqlxValues;

use super::backend::Dialect;
use super::{DeleteBatch, QueryStmt, SchemaStmt};

pub(crate) struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn render(&self, stmt: QueryStmt<'_>) -> (String, SqlxValues) {
        stmt.build(SqliteQueryBuilder)
    }
    fn render_schema(&self, stmt: SchemaStmt<'_>) -> String {
        stmt.build(SqliteQueryBuilder)
    }
    /// `unixepoch('subsec')` has millisecond precision (SQLite 3.42+, bundled).
    fn now_ms(&self) -> Expr {
        Expr::cust("CAST(unixepoch('subsec') * 1000 AS INTEGER)")
    }
    fn reports_insert_id(&self) -> bool {
        true
    }
    fn update_returning(&self) -> bool {
        true
    }
    fn single_writer(&self) -> bool {
        true
    }
    fn passive_checkpoint(&self) -> Option<&'static str> {
        Some("PRAGMA wal_checkpoint(PASSIVE)")
    }
    /// `DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE <filter> ORDER BY <order>
    /// LIMIT n)`: the subquery walks the index of `<order>` and the outer DELETE seeks each
    /// rowid; writers are serialised, so nothing can change between the two.
    fn batch_delete(&self, batch: &DeleteBatch, limit: u64) -> DeleteStatement {
        let rowid = Alias::new("rowid");
        sea_query::Query::delete()
            .from_table(batch.table.clone())
            .and_where(Expr::col(rowid.clone()).in_subquery(batch.select(rowid, limit)))
            .to_owned()
    }
    /// `pragma_index_list` / `pragma_index_info` as table-valued functions (SQLite 3.16+).
    fn indexes_leading_with(
        &self,
        table: &crate::ident::Identifier,
        column: &str,
    ) -> sea_query::SelectStatement {
        let (list, info) = (Alias::new("il"), Alias::new("ii"));
        sea_query::Query::select()
            .expr_as(
                Expr::col((list.clone(), Alias::new("name"))),
                Alias::new("index_name"),
            )
            .from_function(
                sea_query::Func::cust(Alias::new("pragma_index_list")).arg(table.as_str()),
                list.clone(),
            )
            .from_function(
                sea_query::Func::cust(Alias::new("pragma_index_info"))
                    .arg(Expr::col((list, Alias::new("name")))),
                info.clone(),
            )
            .and_where(Expr::col((info.clone(), Alias::new("seqno"))).eq(0))
            .and_where(Expr::col((info, Alias::new("name"))).eq(column))
            .to_owned()
    }
    /// `pragma_table_info` as a table-valued function (SQLite 3.16+); `type` is the declared
    /// type, from which SQLite derives the column's affinity.
    fn table_columns(&self, table: &crate::ident::Identifier) -> sea_query::SelectStatement {
        sea_query::Query::select()
            .expr_as(Expr::col(Alias::new("name")), Alias::new("column_name"))
            .expr_as(Expr::col(Alias::new("type")), Alias::new("data_type"))
            .from_function(
                sea_query::Func::cust(Alias::new("pragma_table_info")).arg(table.as_str()),
                Alias::new("ti"),
            )
            .to_owned()
    }
    /// No regular expressions without an extension: the fixed-width shape by `GLOB`, the zone
    /// by the ending, and validity by SQLite's own date parser, which returns NULL for a
    /// field out of range or anything after the zone.
    fn is_utc_rfc3339(&self, text: Expr) -> Expr {
        use sea_query::extension::sqlite::SqliteBinOper::Glob;
        const SHAPE: &str =
            "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*";
        text.clone()
            .binary(Glob, SHAPE)
            .and(
                text.clone()
                    .binary(Glob, "*Z")
                    .or(text.clone().binary(Glob, "*+00:00")),
            )
            .and(
                sea_query::Func::cust(Alias::new("julianday"))
                    .arg(text)
                    .is_not_null(),
            )
    }
    fn is_duplicate_index(&self, _error: &dyn sqlx::error::DatabaseError) -> bool {
        false // CREATE INDEX IF NOT EXISTS, under the one writer lock: no race to lose
    }
}

/// The driver half: compiled only with the `sqlite` feature.
#[cfg(feature = "sqlite")]
pub(crate) mod driver {
    use std::str::FromStr;
    use std::time::{Duration, Instant};

    use async_trait::async_trait;
    use sea_query_sqlx::SqlxValues;
    use sqlx::AssertSqlSafe;
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    };

    use crate::db::backend::{Bulk, Pool, Row};
    use crate::db::int_column::IntColumn;
    use crate::db::{DbRow, SQLITE_BUSY_TIMEOUT};
    use crate::error::Result;

    /// Open a pool: created if missing, 5 s busy timeout. A database this call creates is
    /// put in WAL mode (readers never wait for the writer); an existing one keeps the
    /// journal mode it has, because WAL is persistent and changing it is the host's choice
    /// (set `PRAGMA journal_mode = WAL` once, or hand over a pool of your own).
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<SqlitePool> {
        let mut options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let path = options.get_filename().to_path_buf();
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let exists = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        if in_memory || !exists {
            options = options.journal_mode(SqliteJournalMode::Wal);
            tracing::debug!(path = %path.display(), "new SQLite database: WAL journal mode");
        } else {
            tracing::info!(path = %path.display(), "existing SQLite database: its journal mode is kept");
        }
        Ok(SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?)
    }

    #[async_trait]
    impl Pool for SqlitePool {
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
            Ok(sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(self)
                .await?
                .last_insert_rowid())
        }

        async fn execute_schema(&self, sql: String) -> Result<()> {
            sqlx::query(AssertSqlSafe(sql)).execute(self).await?;
            Ok(())
        }

        async fn close(&self) {
            sqlx::Pool::close(self).await
        }

        /// Two connections taken out of the pool (closed when done, never returned with changed
        /// settings): a writer with a 64 MiB page cache that never checkpoints on its own, and a
        /// reader that holds a read snapshot from the first write to the end, let go only while
        /// [`checkpoint`](Bulk::checkpoint) runs. While that snapshot is held no checkpoint can
        /// copy newer WAL frames into the database file, so a host writer that gets the lock
        /// between two batches does not run that copy (and its syncs) inside its own automatic
        /// checkpoint; the cleanup's checkpoint does it instead, outside the lock.
        async fn bulk_connection(&self) -> Result<Box<dyn Bulk>> {
            let mut writer = self.acquire().await?.detach();
            // Constant pragmas: nothing from outside goes into this SQL.
            sqlx::raw_sql("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0")
                .execute(&mut writer)
                .await?;
            Ok(Box::new(SqliteBulk {
                writer,
                pin: self.acquire().await?.detach(),
                pinned: false,
            }))
        }
    }

    impl Row for SqliteRow {
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

    /// An integer column: SQLite has one integer type, 64 bits wide, whatever the column's
    /// declared type (a boolean declared as such decodes as a bool).
    fn integer<I>(row: &SqliteRow, col: I) -> Result<Option<i64>>
    where
        I: sqlx::ColumnIndex<SqliteRow> + Copy + std::fmt::Display,
    {
        IntColumn::new(row, col).width::<i64>().or_bool()
    }

    /// The SQLite bulk connection: the writing connection, and a second one that holds a read
    /// snapshot from a write to the next checkpoint (see
    /// [`Database::bulk_connection`](crate::Database::bulk_connection)).
    #[derive(Debug)]
    pub struct SqliteBulk {
        writer: sqlx::SqliteConnection,
        pin: sqlx::SqliteConnection,
        pinned: bool,
    }

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
    }

    #[async_trait]
    impl Bulk for SqliteBulk {
        /// The statement runs in a transaction that takes the write lock first, so the time the
        /// lock is held can be told from the time spent waiting for it.
        async fn execute(&mut self, sql: String, values: SqlxValues) -> Result<(u64, Instant)> {
            self.pin().await?;
            let writer = &mut self.writer;
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut *writer)
                .await?;
            let locked = Instant::now();
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

        async fn fetch_optional(
            &mut self,
            sql: String,
            values: SqlxValues,
        ) -> Result<Option<DbRow>> {
            Ok(sqlx::query_with(AssertSqlSafe(sql), values)
                .fetch_optional(&mut self.writer)
                .await?
                .map(DbRow::new))
        }

        async fn checkpoint(&mut self) -> Result<Duration> {
            let began = Instant::now();
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
            self.pin().await?;
            Ok(began.elapsed())
        }

        /// The last checkpoint, after which the host's own automatic checkpoints take over again.
        async fn finish(mut self: Box<Self>) -> Result<()> {
            let _ = self.copy_back().await?;
            let SqliteBulk { writer, pin, .. } = *self;
            sqlx::Connection::close(pin).await?;
            sqlx::Connection::close(writer).await?;
            Ok(())
        }
    }
}
