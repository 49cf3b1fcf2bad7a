//! The deliveries table (`job_alerts`): one row per event, keyed so that every replica that
//! sees the event writes the same row, and claimed for each attempt by a conditional
//! `UPDATE` that only one replica's matches (the shape of a lease claim, `crate::lease`).
//!
//! ```sql
//! -- record (a key already there: nothing changes; a no-op update is valid on every backend)
//! INSERT INTO job_alerts (alert_key, event, job_name, payload, state, created_ms, next_attempt_ms)
//!   VALUES (?, ?, ?, ?, 'pending', NOW_MS, NOW_MS) ON CONFLICT (alert_key) DO UPDATE SET alert_key = alert_key
//! -- claim one attempt
//! UPDATE job_alerts SET claimed_by = ?, claimed_until_ms = NOW_MS + 30000, attempts = attempts + 1
//!   WHERE alert_key = ? AND state = 'pending' AND next_attempt_ms <= NOW_MS AND claimed_until_ms <= NOW_MS
//! -- settle it (only the claimant's write matches)
//! UPDATE job_alerts SET state = 'delivered' | next_attempt_ms = NOW_MS + ? | state = 'failed', ...
//!   WHERE alert_key = ? AND claimed_by = ? AND state = 'pending'
//! ```
//!
//! Every time is the database's clock (`NOW_MS`), so replicas with skewed clocks agree on
//! what is due.

use sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query, UpdateStatement};

use crate::db::Database;
use crate::error::Result;
use crate::ident::Identifier;
use crate::store::schema::Alerts as Col;

/// `state` of a row waiting for (another) attempt.
const PENDING: &str = "pending";
/// `state` of a row the webhook accepted.
const DELIVERED: &str = "delivered";
/// `state` of a row given up.
const FAILED: &str = "failed";

/// A row due for an attempt, as read with the database's clock.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    pub(crate) key: String,
    pub(crate) event: String,
    pub(crate) job_name: String,
    pub(crate) payload: String,
    /// Attempts made before this one.
    pub(crate) attempts: i64,
    pub(crate) created_ms: i64,
    /// The database's clock when the row was read.
    pub(crate) now_ms: i64,
}

/// Reads and writes the deliveries table.
#[derive(Debug, Clone)]
pub(crate) struct AlertStore {
    db: Database,
    table: Identifier,
}

impl AlertStore {
    pub(crate) fn new(db: Database, table: Identifier) -> Self {
        Self { db, table }
    }

    fn now_ms(&self) -> Expr {
        self.db.now_ms_expr()
    }

    /// Record an event under `key`, due at once; a key already recorded (another replica
    /// saw the same event) is left as it is.
    pub(crate) async fn record(
        &self,
        key: &str,
        event: &str,
        job_name: &str,
        payload: &str,
    ) -> Result<()> {
        let stmt = Query::insert()
            .into_table(self.table.clone())
            .columns([
                Col::AlertKey,
                Col::Event,
                Col::JobName,
                Col::Payload,
                Col::State,
                Col::CreatedMs,
                Col::NextAttemptMs,
            ])
            .values_panic([
                clip(key, 191).into(),
                event.into(),
                clip(job_name, 191).into(),
                payload.into(),
                PENDING.into(),
                self.now_ms(),
                self.now_ms(),
            ])
            .on_conflict(
                // As `register_jobs`: a no-op update rather than DO NOTHING, valid on SQLite,
                // PostgreSQL, MySQL and MariaDB alike.
                OnConflict::column(Col::AlertKey)
                    .update_column(Col::AlertKey)
                    .to_owned(),
            )
            .to_owned();
        self.db.execute(&stmt).await?;
        Ok(())
    }

    /// The key and event of the newest `failure`, `overdue` or `recovery` alert of
    /// `job_name`, if any: what a success may recover. (A `paused` alert follows the failure
    /// that caused it, and must not hide it.)
    pub(crate) async fn newest_of(&self, job_name: &str) -> Result<Option<(String, String)>> {
        let q = Query::select()
            .columns([Col::AlertKey, Col::Event])
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(clip(job_name, 191)))
            .and_where(Expr::col(Col::Event).is_in(["failure", "overdue", "recovery"]))
            .order_by(Col::CreatedMs, Order::Desc)
            .order_by(Col::AlertKey, Order::Desc)
            .limit(1)
            .to_owned();
        Ok(match self.db.fetch_optional(&q).await? {
            Some(row) => Some((
                row.opt_string("alert_key")?.unwrap_or_default(),
                row.opt_string("event")?.unwrap_or_default(),
            )),
            None => None,
        })
    }

    /// Up to `limit` rows due for an attempt and not claimed, oldest first.
    pub(crate) async fn due(&self, limit: u64) -> Result<Vec<Due>> {
        let q = Query::select()
            .columns([
                Col::AlertKey,
                Col::Event,
                Col::JobName,
                Col::Payload,
                Col::Attempts,
                Col::CreatedMs,
            ])
            .expr_as(self.now_ms(), Alias::new("now_ms"))
            .from(self.table.clone())
            .and_where(Expr::col(Col::State).eq(PENDING))
            .and_where(Expr::col(Col::NextAttemptMs).lte(self.now_ms()))
            .and_where(Expr::col(Col::ClaimedUntilMs).lte(self.now_ms()))
            .order_by(Col::NextAttemptMs, Order::Asc)
            .limit(limit)
            .to_owned();
        self.db
            .fetch_all(&q)
            .await?
            .iter()
            .map(|row| {
                Ok(Due {
                    key: row.opt_string("alert_key")?.unwrap_or_default(),
                    event: row.opt_string("event")?.unwrap_or_default(),
                    job_name: row.opt_string("job_name")?.unwrap_or_default(),
                    payload: row.opt_string("payload")?.unwrap_or_default(),
                    attempts: row.i64("attempts")?,
                    created_ms: row.i64("created_ms")?,
                    now_ms: row.i64("now_ms")?,
                })
            })
            .collect()
    }

    /// Claim one attempt at `key` for `holder` for `ttl_ms`; `false`: another replica has
    /// it, or it is no longer due.
    pub(crate) async fn claim(&self, key: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        let stmt = Query::update()
            .table(self.table.clone())
            .value(Col::ClaimedBy, holder)
            .value(Col::ClaimedUntilMs, self.now_ms().add(ttl_ms))
            .value(Col::Attempts, Expr::col(Col::Attempts).add(1))
            .and_where(Expr::col(Col::AlertKey).eq(key))
            .and_where(Expr::col(Col::State).eq(PENDING))
            .and_where(Expr::col(Col::NextAttemptMs).lte(self.now_ms()))
            .and_where(Expr::col(Col::ClaimedUntilMs).lte(self.now_ms()))
            .to_owned();
        Ok(self.db.execute(&stmt).await? == 1)
    }

    /// `UPDATE ... WHERE alert_key = ? AND claimed_by = ? AND state = 'pending'`: the
    /// claimant's settling of its attempt.
    fn settle(&self, key: &str, holder: &str) -> UpdateStatement {
        Query::update()
            .table(self.table.clone())
            .value(Col::ClaimedBy, Option::<String>::None)
            .value(Col::ClaimedUntilMs, 0i64)
            .and_where(Expr::col(Col::AlertKey).eq(key))
            .and_where(Expr::col(Col::ClaimedBy).eq(holder))
            .and_where(Expr::col(Col::State).eq(PENDING))
            .to_owned()
    }

    /// The webhook accepted it.
    pub(crate) async fn delivered(&self, key: &str, holder: &str) -> Result<()> {
        let mut stmt = self.settle(key, holder);
        stmt.value(Col::State, DELIVERED)
            .value(Col::DeliveredAtMs, self.now_ms())
            .value(Col::LastError, Option::<String>::None);
        self.db.execute(&stmt).await?;
        Ok(())
    }

    /// Try again `delay_ms` from now.
    pub(crate) async fn retry(
        &self,
        key: &str,
        holder: &str,
        delay_ms: i64,
        error: &str,
    ) -> Result<()> {
        let mut stmt = self.settle(key, holder);
        stmt.value(Col::NextAttemptMs, self.now_ms().add(delay_ms))
            .value(Col::LastError, clip(error, 1000));
        self.db.execute(&stmt).await?;
        Ok(())
    }

    /// Give it up.
    pub(crate) async fn give_up(&self, key: &str, holder: &str, error: &str) -> Result<()> {
        let mut stmt = self.settle(key, holder);
        stmt.value(Col::State, FAILED)
            .value(Col::LastError, clip(error, 1000));
        self.db.execute(&stmt).await?;
        Ok(())
    }
}

impl AlertStore {
    /// Delete up to `batch` settled rows (delivered or failed) created before `cutoff_ms`
    /// (epoch milliseconds), oldest first; returns how many. Pending rows stay, whatever
    /// their age: they are given up 10 minutes after their event anyway.
    pub(crate) async fn purge_batch(&self, cutoff_ms: i64, batch: u32) -> Result<u64> {
        let keys: Vec<String> = self
            .db
            .fetch_all(
                Query::select()
                    .column(Col::AlertKey)
                    .from(self.table.clone())
                    .and_where(Expr::col(Col::State).ne(PENDING))
                    .and_where(Expr::col(Col::CreatedMs).lt(cutoff_ms))
                    .order_by(Col::CreatedMs, Order::Asc)
                    .limit(u64::from(Ord::max(batch, 1))),
            )
            .await?
            .iter()
            .map(|r| Ok(r.opt_string("alert_key")?.unwrap_or_default()))
            .collect::<Result<_>>()?;
        if keys.is_empty() {
            return Ok(0);
        }
        self.db
            .execute(
                Query::delete()
                    .from_table(self.table.clone())
                    .and_where(Expr::col(Col::AlertKey).is_in(keys)),
            )
            .await
    }
}

/// At most `max` characters of `s` (the column's width).
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ExecutionStore, TableNames};

    async fn store() -> (AlertStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let db = Database::connect(&url).await.unwrap();
        ExecutionStore::new(db.clone()).migrate().await.unwrap();
        (AlertStore::new(db, TableNames::default().alerts), dir)
    }

    #[tokio::test]
    async fn one_row_per_key_one_claim_per_attempt_and_settled_rows_purged() {
        let (s, _dir) = store().await;
        s.record("failure:1", "failure", "j", "{}").await.unwrap();
        // A second replica seeing the same event changes nothing.
        s.record("failure:1", "failure", "j", "{\"other\":1}")
            .await
            .unwrap();
        let due = s.due(10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].payload.as_str(), due[0].attempts), ("{}", 0));
        assert!(s.claim("failure:1", "a#1", 30_000).await.unwrap());
        assert!(
            !s.claim("failure:1", "b#2", 30_000).await.unwrap(),
            "claimed"
        );
        assert!(
            s.due(10).await.unwrap().is_empty(),
            "claimed rows are not due"
        );
        // Only the claimant settles it.
        s.delivered("failure:1", "b#2").await.unwrap();
        s.retry("failure:1", "a#1", 0, "answered 500")
            .await
            .unwrap();
        assert_eq!(s.due(10).await.unwrap()[0].attempts, 1);
        assert!(s.claim("failure:1", "b#2", 30_000).await.unwrap());
        s.delivered("failure:1", "b#2").await.unwrap();
        assert!(s.due(10).await.unwrap().is_empty());
        assert_eq!(
            s.newest_of("j").await.unwrap(),
            Some(("failure:1".to_owned(), "failure".to_owned()))
        );
        s.record("paused:j:5", "paused", "j", "{}").await.unwrap();
        // A pause never hides the failure a success recovers.
        assert_eq!(s.newest_of("j").await.unwrap().unwrap().1, "failure");
        // Pending rows stay; settled ones older than the cut-off go.
        assert_eq!(s.purge_batch(i64::MAX, 10).await.unwrap(), 1);
        assert_eq!(s.due(10).await.unwrap().len(), 1);
    }
}
