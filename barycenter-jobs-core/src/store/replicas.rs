//! The fleet table: one row per running scheduler, refreshed while it runs (one statement
//! every few seconds) and removed at a clean shutdown, so operators see which replicas are
//! alive, what they run and how far their clocks are from the database's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, OnConflict, Order, Query};

use super::ExecutionStore;
use super::schema::Fleet;
use crate::db::from_millis;
use crate::error::Result;

/// What a scheduler says of itself at each refresh (see [`ExecutionStore::heartbeat`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReplicaBeat {
    /// Its lease holder, unique per scheduler (the row's key).
    pub holder: String,
    /// Its instance label.
    pub instance: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The crate's version.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its clock minus the database's, as last measured.
    pub clock_skew: Option<chrono::Duration>,
    /// Runs in progress in it.
    pub running: u32,
}

impl ReplicaBeat {
    /// A scheduler's beat.
    pub fn new(holder: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            holder: holder.into(),
            instance: instance.into(),
            host: String::new(),
            pid: 0,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: DateTime::<Utc>::MIN_UTC,
            clock_skew: None,
            running: 0,
        }
    }
}

/// A scheduler of the fleet, as its last refresh left it (see
/// [`ExecutionStore::replicas`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Replica {
    /// Its instance label.
    pub instance: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The crate's version.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last refresh, by the database's clock.
    pub last_seen_at: DateTime<Utc>,
    /// Its clock minus the database's, as it last measured it.
    pub clock_skew: Option<chrono::Duration>,
    /// Runs in progress in it at its last refresh.
    pub running: u32,
}

/// What a row says of its scheduler (all but the key), in the order written and read.
const SEEN: [Fleet; 8] = [
    Fleet::Instance,
    Fleet::Host,
    Fleet::Pid,
    Fleet::Version,
    Fleet::StartedAtMs,
    Fleet::LastSeenMs,
    Fleet::ClockSkewMs,
    Fleet::Running,
];

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl ExecutionStore {
    /// Write `beat` as its scheduler's row, seen now by the database's clock. One statement
    /// (an upsert).
    pub async fn heartbeat(&self, beat: &ReplicaBeat) -> Result<()> {
        let now = self.db.now_ms_expr();
        let skew = beat.clock_skew.map(|d| d.num_milliseconds());
        let stmt = Query::insert()
            .into_table(self.tables.fleet.clone())
            .columns(std::iter::once(Fleet::Holder).chain(SEEN))
            .values_panic([
                clip(&beat.holder, 191).into(),
                clip(&beat.instance, 255).into(),
                clip(&beat.host, 255).into(),
                i64::from(beat.pid).into(),
                clip(&beat.version, 64).into(),
                beat.started_at.timestamp_millis().into(),
                now,
                Expr::val(skew),
                i64::from(beat.running).into(),
            ])
            .on_conflict(
                OnConflict::column(Fleet::Holder)
                    .update_columns([Fleet::LastSeenMs, Fleet::ClockSkewMs, Fleet::Running])
                    .to_owned(),
            )
            .to_owned();
        self.db.execute(&stmt).await?;
        Ok(())
    }

    /// The schedulers seen within `within` of the database's now, by instance label.
    pub async fn replicas(&self, within: Duration) -> Result<Vec<Replica>> {
        let within_ms = i64::try_from(within.as_millis()).unwrap_or(i64::MAX / 4);
        let stmt = Query::select()
            .columns(SEEN.map(|col| (self.tables.fleet.clone(), col)))
            .from(self.tables.fleet.clone())
            .and_where(Expr::col(Fleet::LastSeenMs).gte(self.db.now_ms_expr().sub(within_ms)))
            .order_by(Fleet::Instance, Order::Asc)
            .order_by(Fleet::StartedAtMs, Order::Asc)
            .to_owned();
        let rows = self.db.fetch_all(&stmt).await?;
        rows.iter()
            .map(|row| {
                let count = |col: &str| -> Result<u32> {
                    Ok(u32::try_from(row.opt_i64(col)?.unwrap_or(0)).unwrap_or(0))
                };
                Ok(Replica {
                    instance: row.opt_string("instance")?.unwrap_or_default(),
                    host: row.opt_string("host")?.unwrap_or_default(),
                    pid: count("pid")?,
                    version: row.opt_string("version")?.unwrap_or_default(),
                    started_at: from_millis(row.opt_i64("started_at_ms")?.unwrap_or(0)),
                    last_seen_at: from_millis(row.opt_i64("last_seen_ms")?.unwrap_or(0)),
                    clock_skew: row
                        .opt_i64("clock_skew_ms")?
                        .map(chrono::Duration::milliseconds),
                    running: count("running")?,
                })
            })
            .collect()
    }

    /// Remove the row of the scheduler that holds `holder` (its clean shutdown).
    pub async fn leave(&self, holder: &str) -> Result<()> {
        let stmt = Query::delete()
            .from_table(self.tables.fleet.clone())
            .and_where(Expr::col(Fleet::Holder).eq(holder))
            .to_owned();
        self.db.execute(&stmt).await?;
        Ok(())
    }
}
